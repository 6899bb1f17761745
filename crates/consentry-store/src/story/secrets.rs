//! Chapters on profiles' secrets and on deleting (a profile's schedule row comes and goes with it).

use super::*;

/// What the monitor reads for a lease at once: each profile as saved, its client certificate
/// (opened) or none, and nothing for an ID without a profile; more IDs than one statement takes.
pub async fn check_inputs(store: &dyn Store) {
    let org = new_org(store, "check inputs").await;
    let tenant = new_tenant(store, &org, "ci").await;
    let with_cert = full_profile(&tenant, now());
    let without = minimal_profile(&tenant, now());
    for x in [&with_cert, &without] {
        store.insert_profile(x, created_event(x)).await.unwrap();
    }
    let cert = every_byte_twice();
    store
        .put_secret(
            with_cert.id,
            SecretKind::ClientCertificate,
            &SecretSlice::from(cert.clone()),
        )
        .await
        .unwrap();
    // A refresh token is not a certificate.
    store
        .put_secret(
            without.id,
            SecretKind::RefreshToken,
            &SecretSlice::from(b"RT-not-a-certificate".to_vec()),
        )
        .await
        .unwrap();
    let mut ids: Vec<ProfileId> = (0..1_200).map(|_| ProfileId::new_random()).collect();
    ids.insert(3, with_cert.id);
    ids.push(without.id);
    let read = store.check_inputs(&ids).await.expect("check_inputs");
    assert_eq!(read.len(), 2, "IDs without a profile are left out");
    let find = |id: ProfileId| {
        read.iter()
            .find(|i| i.profile.id == id)
            .unwrap_or_else(|| panic!("profile {id} read"))
    };
    let a = find(with_cert.id);
    assert_eq!(
        a.profile,
        store.get_profile(with_cert.id).await.unwrap().unwrap()
    );
    assert_eq!(
        a.certificate.as_ref().map(|c| c.expose_secret().to_vec()),
        Some(cert)
    );
    let b = find(without.id);
    assert_eq!(
        b.profile,
        store.get_profile(without.id).await.unwrap().unwrap()
    );
    assert!(
        b.certificate.is_none(),
        "no certificate, whatever other secrets it has"
    );
    assert!(
        store.check_inputs(&[]).await.unwrap().is_empty(),
        "an empty lease reads nothing"
    );
}

/// Secrets: round trip of arbitrary bytes, replacement, per-kind and per-profile separation, absence.
pub async fn secrets(store: &dyn Store) {
    let org = new_org(store, "secrets").await;
    let tenant = new_tenant(store, &org, "se").await;
    let p = full_profile(&tenant, now());
    let q = full_profile(&tenant, now());
    for x in [&p, &q] {
        store.insert_profile(x, created_event(x)).await.unwrap();
    }
    let token_a = format!("RT-story-{}", token()).into_bytes();
    let all_bytes: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
    store
        .put_secret(
            p.id,
            SecretKind::RefreshToken,
            &SecretSlice::from(token_a.clone()),
        )
        .await
        .unwrap();
    store
        .put_secret(
            p.id,
            SecretKind::ClientCertificate,
            &SecretSlice::from(all_bytes.clone()),
        )
        .await
        .unwrap();
    let read = |id, kind| async move {
        store
            .get_secret(id, kind)
            .await
            .expect("get_secret")
            .map(|s| s.expose_secret().to_vec())
    };
    assert_eq!(
        read(p.id, SecretKind::RefreshToken).await,
        Some(token_a.clone())
    );
    assert_eq!(
        read(p.id, SecretKind::ClientCertificate).await,
        Some(all_bytes.clone())
    );
    assert_eq!(
        read(q.id, SecretKind::RefreshToken).await,
        None,
        "secrets are per profile"
    );

    // Replace (a rotated refresh token), and an empty secret.
    let token_b = format!("RT-story-rotated-{}", token()).into_bytes();
    store
        .put_secret(
            p.id,
            SecretKind::RefreshToken,
            &SecretSlice::from(token_b.clone()),
        )
        .await
        .unwrap();
    assert_eq!(read(p.id, SecretKind::RefreshToken).await, Some(token_b));
    store
        .put_secret(
            q.id,
            SecretKind::RefreshToken,
            &SecretSlice::from(Vec::new()),
        )
        .await
        .unwrap();
    assert_eq!(read(q.id, SecretKind::RefreshToken).await, Some(Vec::new()));

    assert!(
        store
            .delete_secret(p.id, SecretKind::RefreshToken)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_secret(p.id, SecretKind::RefreshToken)
            .await
            .unwrap()
    );
    assert_eq!(read(p.id, SecretKind::RefreshToken).await, None);
    assert_eq!(
        read(p.id, SecretKind::ClientCertificate).await,
        Some(all_bytes),
        "other kind untouched"
    );

    // A secret for a profile that does not exist is refused.
    let ghost = ProfileId::new_random();
    assert!(matches!(
        store
            .put_secret(
                ghost,
                SecretKind::RefreshToken,
                &SecretSlice::from(b"x".to_vec())
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(read(ghost, SecretKind::RefreshToken).await, None);
}

/// Deleting: a profile goes with its history and secrets; tenants and organizations in use stay.
pub async fn deletion(store: &dyn Store) {
    let org = new_org(store, "deletion").await;
    let tenant = new_tenant(store, &org, "de").await;
    let p = full_profile(&tenant, now());
    let keep = full_profile(&tenant, now());
    for x in [&p, &keep] {
        store.insert_profile(x, created_event(x)).await.unwrap();
        store
            .put_secret(
                x.id,
                SecretKind::RefreshToken,
                &SecretSlice::from(b"RT-delete-me".to_vec()),
            )
            .await
            .unwrap();
    }

    assert!(
        store.delete_tenant(tenant.id).await.is_err(),
        "a tenant with profiles is kept"
    );
    assert!(
        store.delete_organization(org.id).await.is_err(),
        "an organization with tenants is kept"
    );
    assert!(store.get_tenant(tenant.id).await.unwrap().is_some());

    // Each profile is in the monitor's schedule from its creation, due at once, leased by nobody.
    for x in [&p, &keep] {
        let s = store
            .check_schedule(x.id)
            .await
            .unwrap()
            .expect("a new profile is scheduled with its insert");
        assert_eq!(s.next_check_at, x.created_at, "due from its creation");
        assert_eq!((s.lease_owner, s.lease_until), (None, None));
        assert_eq!((s.transient_failures, s.last_error), (0, None));
    }

    assert!(store.delete_profile(p.id).await.unwrap());
    assert!(!store.delete_profile(p.id).await.unwrap());
    assert_eq!(store.get_profile(p.id).await.unwrap(), None);
    assert!(store.list_history(p.id, 10).await.unwrap().is_empty());
    assert!(
        store
            .get_secret(p.id, SecretKind::RefreshToken)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.check_schedule(p.id).await.unwrap(),
        None,
        "the schedule row goes with its profile"
    );
    // The other profile keeps everything.
    expect_profile(store, &keep).await;
    assert!(store.check_schedule(keep.id).await.unwrap().is_some());
    assert_eq!(store.list_history(keep.id, 10).await.unwrap().len(), 1);
    assert!(
        store
            .get_secret(keep.id, SecretKind::RefreshToken)
            .await
            .unwrap()
            .is_some()
    );

    assert!(store.delete_profile(keep.id).await.unwrap());
    assert!(store.delete_tenant(tenant.id).await.unwrap());
    assert!(store.delete_organization(org.id).await.unwrap());
    assert_eq!(store.get_organization(org.id).await.unwrap(), None);
}
