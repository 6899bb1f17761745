//! Chapters on pending re-authorizations, and concurrent writers.

use super::*;

/// Pending re-authorizations: round trip of every field, one per profile (a new start replaces the
/// old, whose state stops working), taken once, returned even when expired, state clashes,
/// deletion, and an unknown profile.
pub async fn pending(store: &dyn Store) {
    let org = new_org(store, "pending").await;
    let tenant = new_tenant(store, &org, "pe").await;
    let p = full_profile(&tenant, now());
    let q = minimal_profile(&tenant, now());
    for x in [&p, &q] {
        store.insert_profile(x, created_event(x)).await.unwrap();
    }
    assert!(store.pending_for_profile(p.id).await.unwrap().is_none());
    assert!(
        store
            .take_pending(&new_state_hash(), hold_until())
            .await
            .unwrap()
            .is_none(),
        "an unknown state finds nothing"
    );
    assert!(!store.delete_pending_for_profile(p.id).await.unwrap());

    // Every field, set and unset, reads back; reading does not remove.
    let full = full_pending(p.id, now());
    let min = minimal_pending(q.id, now());
    for x in [&full, &min] {
        store.put_pending(x).await.expect("put_pending");
    }
    for _ in 0..2 {
        expect_pending_of(store, &full, "full pending record").await;
        expect_pending_of(store, &min, "minimal pending record").await;
    }
    expect_profile(store, &p).await;
    assert_eq!(
        store.list_history(p.id, 10).await.unwrap().len(),
        1,
        "storing a pending record writes no history"
    );

    // A new start replaces the profile's pending record, every field of it: the old state is no
    // longer accepted.
    let second = PendingAuthorization {
        functions: vec!["onedrive-files".into()],
        scan_targets: vec!["copilot-studio".into()],
        nonce: format!("nonce-{}", token()),
        previous_status: ProfileStatus::Attention,
        previous_reason: Some(StatusReason::ConsentRevoked),
        secrets: SecretSlice::from(format!("verifier-{}", token()).into_bytes()),
        ..minimal_pending(p.id, now())
    };
    store.put_pending(&second).await.expect("replace");
    expect_pending_of(store, &second, "replacing pending record").await;
    assert!(
        store
            .take_pending(&full.state_hash, hold_until())
            .await
            .unwrap()
            .is_none(),
        "a replaced state must no longer be accepted"
    );
    expect_pending_of(store, &min, "another profile's pending record").await;

    // What a check of the current credentials found replaces what the record restores, while it
    // is untaken; another state changes nothing.
    assert!(
        store
            .note_pending_check(
                &second.state_hash,
                ProfileStatus::Invalid,
                Some(&StatusReason::AppRemovedFromTenant)
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .note_pending_check(&new_state_hash(), ProfileStatus::Valid, None)
            .await
            .unwrap()
    );
    let second = PendingAuthorization {
        previous_status: ProfileStatus::Invalid,
        previous_reason: Some(StatusReason::AppRemovedFromTenant),
        ..second
    };
    expect_pending_of(store, &second, "pending record after a check's note").await;

    // Taken once: the record comes back whole, marked taken until the deadline given, and stays
    // (so a taker that dies leaves what to restore) until it is deleted by its state hash.
    let deadline = hold_until();
    let taken = store
        .take_pending(&second.state_hash, deadline)
        .await
        .unwrap()
        .expect("the current state is accepted");
    assert_same_pending(&taken, &second, "taken pending record");
    assert_eq!(taken.taken_until, Some(deadline), "taken_until");
    assert!(
        store
            .take_pending(&second.state_hash, hold_until())
            .await
            .unwrap()
            .is_none(),
        "a state is accepted once"
    );
    let kept = store
        .pending_for_profile(p.id)
        .await
        .unwrap()
        .expect("a taken record stays");
    assert_eq!(kept.taken_until, Some(deadline), "taken_until read back");
    assert!(
        !store
            .note_pending_check(&second.state_hash, ProfileStatus::Valid, None)
            .await
            .unwrap(),
        "a taken record's restore status is the taker's"
    );
    assert!(kept.is_dead(deadline) && !kept.is_dead(deadline - Duration::seconds(1)));
    assert!(store.delete_pending(&second.state_hash).await.unwrap());
    assert!(!store.delete_pending(&second.state_hash).await.unwrap());
    assert!(store.pending_for_profile(p.id).await.unwrap().is_none());
    let taken = store
        .take_pending(&min.state_hash, hold_until())
        .await
        .unwrap()
        .expect("minimal record taken");
    assert_same_pending(&taken, &min, "taken minimal pending record");
    assert!(store.delete_pending(&min.state_hash).await.unwrap());

    // Expiry is the caller's decision: an expired record is still returned.
    let t = now();
    let expired = PendingAuthorization {
        created_at: t - Duration::minutes(70),
        expires_at: t - Duration::minutes(60),
        ..full_pending(p.id, t)
    };
    store.put_pending(&expired).await.unwrap();
    let got = store
        .take_pending(&expired.state_hash, hold_until())
        .await
        .unwrap()
        .expect("an expired record is returned");
    assert_same_pending(&got, &expired, "expired pending record");

    // A state already pending for another profile: Conflict, and nothing changes.
    let a = full_pending(p.id, now());
    store.put_pending(&a).await.unwrap();
    let clash = PendingAuthorization {
        state_hash: a.state_hash.clone(),
        ..minimal_pending(q.id, now())
    };
    let r = store.put_pending(&clash).await;
    assert!(
        matches!(r, Err(StoreError::Conflict(_))),
        "another profile's state must be refused: {r:?}"
    );
    assert!(store.pending_for_profile(q.id).await.unwrap().is_none());
    expect_pending_of(store, &a, "pending record after a refused clash").await;
    // The same record again (same profile, same state) is a plain replacement.
    store
        .put_pending(&a)
        .await
        .expect("put the same record again");
    expect_pending_of(store, &a, "pending record put twice").await;

    // Deleting a profile's pending record.
    assert!(store.delete_pending_for_profile(p.id).await.unwrap());
    assert!(!store.delete_pending_for_profile(p.id).await.unwrap());
    assert!(
        store
            .take_pending(&a.state_hash, hold_until())
            .await
            .unwrap()
            .is_none()
    );
    expect_profile(store, &p).await;

    // A profile that does not exist: NotFound, and nothing is stored.
    let ghost = full_pending(ProfileId::new_random(), now());
    let r = store.put_pending(&ghost).await;
    assert!(
        matches!(r, Err(StoreError::NotFound(_))),
        "a pending record of an unknown profile must be refused: {r:?}"
    );
    assert!(
        store
            .pending_for_profile(ghost.profile_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .take_pending(&ghost.state_hash, hold_until())
            .await
            .unwrap()
            .is_none()
    );
}

/// 16 tasks each create, seal a secret for, update and list 20 profiles at once: no write fails
/// (no lock errors surface) and every profile lands.
pub async fn concurrent_writers(store: std::sync::Arc<dyn Store>) {
    let org = new_org(store.as_ref(), "concurrent").await;
    let tenant = new_tenant(store.as_ref(), &org, "cc").await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = std::sync::Arc::clone(&store);
        let tenant = tenant.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                let p = minimal_profile(&tenant, OffsetDateTime::now_utc());
                store.insert_profile(&p, created_event(&p)).await?;
                store
                    .put_secret(
                        p.id,
                        SecretKind::RefreshToken,
                        &SecretSlice::from(b"RT".to_vec()),
                    )
                    .await?;
                let mut v = p.clone();
                v.status = ProfileStatus::Valid;
                v.reason = None;
                store.save_profile(&v, None).await?;
                store
                    .list_profiles(&ProfileFilter::default(), &PageRequest::default())
                    .await?;
            }
            Ok::<(), consentry_domain::StoreError>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("no write fails under concurrency");
    }
    let counts = store
        .count_profiles(&ProfileFilter {
            org_id: Some(org.id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(counts[&ProfileStatus::Valid], 320);
}

/// Single use under concurrency: of 16 simultaneous takes of one state exactly one gets the record;
/// of 8 simultaneous starts for one profile every one succeeds and exactly one record remains.
pub async fn pending_under_concurrency(store: &dyn Store) {
    let org = new_org(store, "pending-concurrency").await;
    let tenant = new_tenant(store, &org, "pc").await;
    let p = minimal_profile(&tenant, now());
    store.insert_profile(&p, created_event(&p)).await.unwrap();

    for round in 0..5 {
        let record = full_pending(p.id, now());
        store.put_pending(&record).await.unwrap();
        let outcomes = join_all(
            (0..16)
                .map(|_| store.take_pending(&record.state_hash, hold_until()))
                .collect(),
        )
        .await;
        let mut winners = Vec::new();
        for outcome in outcomes {
            if let Some(got) = outcome.expect("a concurrent take must not fail") {
                winners.push(got);
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one of 16 concurrent takes gets the record"
        );
        assert_same_pending(&winners[0], &record, "the concurrent take's record");
        let left = store
            .pending_for_profile(p.id)
            .await
            .unwrap()
            .expect("kept, taken");
        assert!(
            left.taken_until.is_some(),
            "round {round}: the record is marked taken"
        );
        assert!(store.delete_pending(&record.state_hash).await.unwrap());
    }

    let records: Vec<PendingAuthorization> = (0..8).map(|_| full_pending(p.id, now())).collect();
    let outcomes = join_all(records.iter().map(|r| store.put_pending(r)).collect()).await;
    for outcome in outcomes {
        outcome.expect("concurrent starts for one profile must all succeed");
    }
    let kept = store
        .pending_for_profile(p.id)
        .await
        .unwrap()
        .expect("one record remains");
    let Some(winner) = records.iter().find(|r| r.state_hash == kept.state_hash) else {
        panic!("the remaining record must be one of those put");
    };
    assert_same_pending(&kept, winner, "the record a concurrent start left");
    let mut accepted = 0;
    for r in &records {
        if store
            .take_pending(&r.state_hash, hold_until())
            .await
            .unwrap()
            .is_some()
        {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1, "only the remaining record's state is accepted");
}

/// A pending re-authorization goes with its profile; other profiles keep theirs.
pub async fn pending_deletion(store: &dyn Store) {
    let org = new_org(store, "pending-deletion").await;
    let tenant = new_tenant(store, &org, "pd").await;
    let gone = full_profile(&tenant, now());
    let kept = full_profile(&tenant, now());
    for x in [&gone, &kept] {
        store.insert_profile(x, created_event(x)).await.unwrap();
    }
    let gone_pending = full_pending(gone.id, now());
    let kept_pending = full_pending(kept.id, now());
    for x in [&gone_pending, &kept_pending] {
        store.put_pending(x).await.unwrap();
    }

    assert!(store.delete_profile(gone.id).await.unwrap());
    assert!(store.pending_for_profile(gone.id).await.unwrap().is_none());
    assert!(
        store
            .take_pending(&gone_pending.state_hash, hold_until())
            .await
            .unwrap()
            .is_none(),
        "a deleted profile's state must no longer be accepted"
    );
    expect_pending_of(store, &kept_pending, "another profile's pending record").await;
    assert!(matches!(
        store.put_pending(&gone_pending).await,
        Err(StoreError::NotFound(_))
    ));

    assert!(store.delete_profile(kept.id).await.unwrap());
    assert!(
        store
            .take_pending(&kept_pending.state_hash, hold_until())
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.delete_tenant(tenant.id).await.unwrap());
    assert!(store.delete_organization(org.id).await.unwrap());
}
