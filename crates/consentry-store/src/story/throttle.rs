//! The chapter on the console's sign-in throttle: counts shared by concurrent writers, lockouts that
//! only move forward, forgetting, pruning, and known devices.

use super::*;

/// Failures per key are counted by single statements (concurrent failures each get their own count),
/// start again after `forget_before`, lock a key only forward, and are forgotten on success; the
/// latest lockout of a set of keys is found; pruning removes only old, unlocked entries; a device is
/// known for one account from a time on.
pub async fn sign_in_throttle(store: &dyn Store) {
    let key = format!("account:story-{}", token());
    let other = format!("client:story-{}", token());
    let t0 = now();
    let long_ago = t0 - Duration::hours(2);

    // Eight replicas counting one failure each at the same time: counts 1..=8, each once.
    let counts = join_all(
        (0..8)
            .map(|_| store.count_throttle_failure(&key, t0, long_ago))
            .collect(),
    )
    .await;
    let mut counts: Vec<u32> = counts
        .into_iter()
        .map(|c| c.expect("count a failure"))
        .collect();
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=8).collect::<Vec<u32>>(),
        "concurrent failures each counted once"
    );
    let entry = store
        .throttle_entry(&key)
        .await
        .expect("read an entry")
        .expect("the key has an entry");
    assert_eq!((entry.failures, entry.locked_until), (8, None));

    // A lockout moves forward only; the latest future lockout of the keys asked is the answer.
    store
        .lock_throttle_key(&key, t0 + Duration::minutes(5))
        .await
        .expect("lock");
    store
        .lock_throttle_key(&key, t0 + Duration::minutes(1))
        .await
        .expect("a shorter lock is ignored");
    store
        .count_throttle_failure(&other, t0, long_ago)
        .await
        .expect("count");
    store
        .lock_throttle_key(&other, t0 + Duration::minutes(2))
        .await
        .expect("lock");
    let until = store
        .throttle_locked_until(&[key.clone(), other.clone(), "client:nobody".into()], t0)
        .await
        .expect("read lockouts");
    assert_eq!(until, Some(t0 + Duration::minutes(5)), "the latest lockout");
    let until = store
        .throttle_locked_until(std::slice::from_ref(&other), t0 + Duration::minutes(3))
        .await
        .expect("read lockouts");
    assert_eq!(until, None, "an ended lockout is no lockout");

    // A failure after the forgetting horizon starts again at 1 and lifts the old lockout.
    let later = t0 + Duration::hours(2);
    let n = store
        .count_throttle_failure(&key, later, later - Duration::hours(1))
        .await
        .expect("count");
    assert_eq!(n, 1, "old failures are forgotten");
    let entry = store
        .throttle_entry(&key)
        .await
        .expect("read")
        .expect("entry");
    assert_eq!((entry.locked_until, entry.last_failure), (None, later));

    // Success forgets the keys.
    store
        .clear_throttle_keys(std::slice::from_ref(&key))
        .await
        .expect("clear");
    assert_eq!(store.throttle_entry(&key).await.expect("read"), None);

    // Pruning removes entries whose last failure and lockout are both before the horizon.
    let old = format!("client:story-old-{}", token());
    let old_locked = format!("client:story-old-locked-{}", token());
    let ancient = t0 - Duration::days(3650);
    for k in [&old, &old_locked] {
        store
            .count_throttle_failure(k, ancient, ancient - Duration::hours(1))
            .await
            .expect("count");
    }
    store
        .lock_throttle_key(&old_locked, t0 + Duration::minutes(10))
        .await
        .expect("lock");
    let pruned = store
        .prune_throttle(ancient + Duration::seconds(1))
        .await
        .expect("prune");
    assert!(pruned >= 1, "the old entry is pruned");
    assert_eq!(store.throttle_entry(&old).await.expect("read"), None);
    assert!(
        store
            .throttle_entry(&old_locked)
            .await
            .expect("read")
            .is_some(),
        "a key still locked out is kept"
    );
    assert!(
        store.throttle_entry(&other).await.expect("read").is_some(),
        "a recent entry is kept"
    );

    // Devices: known for the account they signed in to, from their last use on.
    let device = format!("{:0>64}", token());
    let alice = format!("alice-{}", token());
    assert!(
        !store
            .is_known_sign_in_device(&device, &alice, ancient)
            .await
            .expect("read")
    );
    store
        .remember_sign_in_device(&device, &alice, t0)
        .await
        .expect("remember");
    store
        .remember_sign_in_device(&device, &alice, t0)
        .await
        .expect("remembering twice refreshes");
    assert!(
        store
            .is_known_sign_in_device(&device, &alice, t0)
            .await
            .expect("read")
    );
    assert!(
        !store
            .is_known_sign_in_device(&device, "someone-else", ancient)
            .await
            .expect("read"),
        "a device is known for its account only"
    );
    assert!(
        !store
            .is_known_sign_in_device(&device, &alice, t0 + Duration::seconds(1))
            .await
            .expect("read"),
        "a device unused since the horizon is not known"
    );
    let stale = format!("{:1>64}", token());
    store
        .remember_sign_in_device(&stale, &alice, ancient)
        .await
        .expect("remember");
    store
        .prune_sign_in_devices(ancient + Duration::seconds(1))
        .await
        .expect("prune devices");
    assert!(
        !store
            .is_known_sign_in_device(&stale, &alice, ancient)
            .await
            .expect("read"),
        "a stale device is pruned"
    );
    assert!(
        store
            .is_known_sign_in_device(&device, &alice, t0)
            .await
            .expect("read")
    );
}
