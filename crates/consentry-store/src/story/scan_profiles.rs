//! The chapter on scan profiles.

use super::*;

/// Scan profiles: round trip of both authentication methods, names unique per tenant (case-insensitive),
/// listing by name, update (conversion to an app profile), the app-profile lookup, deletion, and
/// scan profiles going with their tenant.
pub async fn scan_profiles(store: &dyn Store) {
    let org = new_org(store, "scan").await;
    let tenant = new_tenant(store, &org, "sp").await;
    let other = new_tenant(store, &org, "sq").await;
    let delegated = minimal_profile(&tenant, now());
    let app = minimal_profile(&tenant, now());
    for p in [&delegated, &app] {
        store.insert_profile(p, created_event(p)).await.unwrap();
    }

    let mut b = classic_scan_profile(&tenant, delegated.id, now());
    b.name = format!("B {}", token());
    let mut a = ScanProfile {
        id: ScanProfileId::new_random(),
        name: format!("a {}", token()),
        modules: BTreeSet::new(),
        authentication: ScanAuth::AppProfile {
            app_profile: app.id,
        },
        planner_backup_enabled: true,
        ..classic_scan_profile(&tenant, delegated.id, now() + Duration::nanoseconds(7))
    };
    store.insert_scan_profile(&b).await.unwrap();
    store.insert_scan_profile(&a).await.unwrap();
    assert_eq!(
        store.get_scan_profile(b.id).await.unwrap().as_ref(),
        Some(&b),
        "a classic scan profile reads back exactly as written"
    );
    assert_eq!(
        store.get_scan_profile(a.id).await.unwrap().as_ref(),
        Some(&a),
        "an app-profile scan profile reads back exactly as written"
    );
    assert_eq!(
        store
            .get_scan_profile(ScanProfileId::new_random())
            .await
            .unwrap(),
        None
    );

    // Names are unique per tenant, case-insensitively; another tenant may reuse one.
    let dup = ScanProfile {
        id: ScanProfileId::new_random(),
        name: a.name.to_uppercase(),
        ..a.clone()
    };
    assert!(
        matches!(
            store.insert_scan_profile(&dup).await,
            Err(StoreError::Conflict(_))
        ),
        "a second scan profile of the same name in a tenant is a conflict"
    );
    let elsewhere = ScanProfile {
        id: ScanProfileId::new_random(),
        tenant_id: other.id,
        ..dup.clone()
    };
    store.insert_scan_profile(&elsewhere).await.unwrap();
    let ghost = ScanProfile {
        id: ScanProfileId::new_random(),
        tenant_id: TenantId::from_uuid(Uuid::new_v4()),
        ..a.clone()
    };
    assert!(
        matches!(
            store.insert_scan_profile(&ghost).await,
            Err(StoreError::NotFound(_))
        ),
        "a scan profile of an unknown tenant is refused as not found"
    );

    // Listing: by name, case-insensitively, one tenant only.
    let listed = store.list_scan_profiles(tenant.id).await.unwrap();
    assert_eq!(
        listed.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![a.id, b.id],
        "a tenant's scan profiles, by name"
    );

    // Which scan profiles use an app profile (as app profile or as delegated profile).
    assert_eq!(
        store
            .scan_profiles_using(delegated.id)
            .await
            .unwrap()
            .iter()
            .map(|x| x.id)
            .collect::<Vec<_>>(),
        vec![b.id]
    );
    // `a` and its namesake in the other tenant.
    assert_eq!(store.scan_profiles_using(app.id).await.unwrap().len(), 2);

    // Converting the classic one: the method's columns are replaced as a whole.
    b.authentication = ScanAuth::AppProfile {
        app_profile: app.id,
    };
    b.planner_backup_enabled = true;
    b.modules.insert("power-bi".into());
    b.updated_at = now() + Duration::seconds(3);
    store.update_scan_profile(&b).await.unwrap();
    assert_eq!(
        store.get_scan_profile(b.id).await.unwrap().as_ref(),
        Some(&b)
    );
    assert!(
        store
            .scan_profiles_using(delegated.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.scan_profiles_using(app.id).await.unwrap().len(), 3);

    // Renaming onto another's name is a conflict and changes nothing.
    let before = store.get_scan_profile(a.id).await.unwrap();
    a.name = b.name.to_lowercase();
    assert!(matches!(
        store.update_scan_profile(&a).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.get_scan_profile(a.id).await.unwrap(), before);
    let missing = ScanProfile {
        id: ScanProfileId::new_random(),
        ..b.clone()
    };
    assert!(matches!(
        store.update_scan_profile(&missing).await,
        Err(StoreError::NotFound(_))
    ));

    // Deletion.
    assert!(store.delete_scan_profile(a.id).await.unwrap());
    assert!(!store.delete_scan_profile(a.id).await.unwrap());
    assert_eq!(store.get_scan_profile(a.id).await.unwrap(), None);

    // The classic method's second form: an app profile with an additional delegated app profile.
    let mut c = ScanProfile {
        id: ScanProfileId::new_random(),
        name: format!("C {}", token()),
        authentication: ScanAuth::ClassicAppProfile {
            app_profile: app.id,
            delegated_profile: delegated.id,
        },
        ..classic_scan_profile(&tenant, delegated.id, now())
    };
    store.insert_scan_profile(&c).await.unwrap();
    assert_eq!(
        store.get_scan_profile(c.id).await.unwrap().as_ref(),
        Some(&c),
        "a classic scan profile with an app profile reads back exactly as written"
    );
    assert_eq!(
        store
            .scan_profiles_using(delegated.id)
            .await
            .unwrap()
            .iter()
            .map(|x| x.id)
            .collect::<Vec<_>>(),
        vec![c.id],
        "its delegated profile is in use"
    );
    c.authentication = ScanAuth::AppProfile {
        app_profile: app.id,
    };
    c.updated_at = now() + Duration::seconds(5);
    store.update_scan_profile(&c).await.unwrap();
    assert_eq!(
        store.get_scan_profile(c.id).await.unwrap().as_ref(),
        Some(&c),
        "converted: the delegated profile is gone"
    );
    assert!(
        store
            .scan_profiles_using(delegated.id)
            .await
            .unwrap()
            .is_empty()
    );

    // Scan profiles go with their tenant.
    assert!(store.delete_tenant(other.id).await.unwrap());
    assert_eq!(store.get_scan_profile(elsewhere.id).await.unwrap(), None);
}
