//! Chapters on organizations and tenants.

use super::*;

/// Organizations: round trip, case-insensitive unique names, ordering, update, not-found cases.
pub async fn organizations(store: &dyn Store) {
    let t = token();
    let mk = |name: String| Organization {
        id: OrgId::new_random(),
        name,
        modules: BTreeSet::new(),
        services: BTreeSet::new(),
        created_at: now(),
    };
    let charlie = mk(format!("story {t} charlie"));
    let alpha = Organization {
        modules: BTreeSet::from(["power-bi".to_string(), "planner".to_string()]),
        services: BTreeSet::from(["insights".to_string()]),
        ..mk(format!("story {t} alpha"))
    };
    let bravo = mk(format!("story {t} Bravo"));
    for o in [&charlie, &alpha, &bravo] {
        store
            .insert_organization(o)
            .await
            .expect("insert organization");
    }
    assert_eq!(
        store.get_organization(alpha.id).await.unwrap().as_ref(),
        Some(&alpha)
    );
    assert_eq!(
        store.get_organization(OrgId::new_random()).await.unwrap(),
        None
    );

    let ours: Vec<OrgId> = store
        .list_organizations()
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.name.starts_with(&format!("story {t} ")))
        .map(|o| o.id)
        .collect();
    assert_eq!(
        ours,
        vec![alpha.id, bravo.id, charlie.id],
        "organizations are listed by name, ignoring case"
    );

    // Same name in another case: conflict. Same ID: conflict.
    let dup = mk(format!("STORY {t} ALPHA"));
    assert!(matches!(
        store.insert_organization(&dup).await,
        Err(StoreError::Conflict(_))
    ));
    let same_id = Organization {
        name: format!("story {t} delta"),
        ..alpha.clone()
    };
    assert!(matches!(
        store.insert_organization(&same_id).await,
        Err(StoreError::Conflict(_))
    ));

    // Update: rename and modules; renaming onto another's name conflicts; absent is NotFound.
    let renamed = Organization {
        name: format!("story {t} alpha renamed"),
        modules: BTreeSet::from(["teams".to_string()]),
        services: BTreeSet::from(["insights".to_string(), "fly".to_string()]),
        ..alpha.clone()
    };
    store
        .update_organization(&renamed)
        .await
        .expect("update organization");
    assert_eq!(
        store.get_organization(alpha.id).await.unwrap(),
        Some(renamed.clone())
    );
    let clash = Organization {
        name: format!("Story {t} BRAVO"),
        ..renamed.clone()
    };
    assert!(matches!(
        store.update_organization(&clash).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.get_organization(alpha.id).await.unwrap(),
        Some(renamed.clone())
    );
    // Changing only the case of its own name is allowed.
    let recased = Organization {
        name: format!("STORY {t} ALPHA RENAMED"),
        ..renamed.clone()
    };
    store
        .update_organization(&recased)
        .await
        .expect("re-case own name");
    let absent = mk(format!("story {t} echo"));
    assert!(matches!(
        store.update_organization(&absent).await,
        Err(StoreError::NotFound(_))
    ));

    assert!(store.delete_organization(charlie.id).await.unwrap());
    assert!(!store.delete_organization(charlie.id).await.unwrap());
    assert_eq!(store.get_organization(charlie.id).await.unwrap(), None);
    // Its name is free again.
    store
        .insert_organization(&mk(format!("Story {t} Charlie")))
        .await
        .expect("a deleted organization's name can be reused");
}

/// Tenants: round trip, lookup by domain, listing, unique ID and domain, unknown organization.
pub async fn tenants(store: &dyn Store) {
    let org = new_org(store, "tenants").await;
    let other = new_org(store, "tenants-other").await;
    let b = new_tenant(store, &org, "b").await;
    let a = new_tenant(store, &org, "a").await;
    let c = new_tenant(store, &other, "c").await;

    assert_eq!(store.get_tenant(a.id).await.unwrap().as_ref(), Some(&a));
    assert_eq!(
        store
            .get_tenant(TenantId::from_uuid(Uuid::new_v4()))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .find_tenant_by_domain(&b.primary_domain)
            .await
            .unwrap()
            .as_ref(),
        Some(&b)
    );
    let unknown = DomainName::parse(&format!("z{}.onmicrosoft.com", token())).unwrap();
    assert_eq!(store.find_tenant_by_domain(&unknown).await.unwrap(), None);

    assert_eq!(
        store.list_tenants(Some(org.id)).await.unwrap(),
        vec![a.clone(), b.clone()],
        "by domain"
    );
    assert_eq!(
        store.list_tenants(Some(other.id)).await.unwrap(),
        vec![c.clone()]
    );
    assert!(
        store
            .list_tenants(Some(OrgId::new_random()))
            .await
            .unwrap()
            .is_empty()
    );
    let all = store.list_tenants(None).await.unwrap();
    let ours: Vec<TenantId> = all
        .iter()
        .filter(|t| [a.id, b.id, c.id].contains(&t.id))
        .map(|t| t.id)
        .collect();
    assert_eq!(ours, vec![a.id, b.id, c.id], "all tenants, by domain");

    let same_id = Tenant {
        primary_domain: DomainName::parse(&format!("d{}.onmicrosoft.com", token())).unwrap(),
        ..a.clone()
    };
    assert!(matches!(
        store.insert_tenant(&same_id).await,
        Err(StoreError::Conflict(_))
    ));
    let same_domain = Tenant {
        id: TenantId::from_uuid(Uuid::new_v4()),
        ..a.clone()
    };
    assert!(matches!(
        store.insert_tenant(&same_domain).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.get_tenant(same_domain.id).await.unwrap(), None);
    let orphan = Tenant {
        id: TenantId::from_uuid(Uuid::new_v4()),
        org_id: OrgId::new_random(),
        primary_domain: DomainName::parse(&format!("e{}.onmicrosoft.com", token())).unwrap(),
        ..a.clone()
    };
    assert!(matches!(
        store.insert_tenant(&orphan).await,
        Err(StoreError::NotFound(_))
    ));

    assert!(store.delete_tenant(c.id).await.unwrap());
    assert!(!store.delete_tenant(c.id).await.unwrap());
    assert_eq!(
        store
            .find_tenant_by_domain(&c.primary_domain)
            .await
            .unwrap(),
        None
    );
}

/// National clouds: a tenant keeps the cloud it was connected in through every read, and a profile keeps
/// its own copy through insert, conditional and unconditional saves and every listing.
pub async fn clouds(store: &dyn Store) {
    let org = new_org(store, "clouds").await;
    let global = new_tenant(store, &org, "cloudg").await;
    assert_eq!(
        global.cloud,
        CloudKey::global(),
        "the fixture's tenant is global"
    );
    let china = Tenant {
        id: TenantId::from_uuid(Uuid::new_v4()),
        org_id: org.id,
        primary_domain: DomainName::parse(&format!("cloudcn{}.partner.onmschina.cn", token()))
            .expect("valid domain"),
        display_name: "Tenant in China".into(),
        cloud: CloudKey::parse("china").expect("key"),
        verified: None,
        created_at: now(),
    };
    store
        .insert_tenant(&china)
        .await
        .expect("insert a China tenant");
    let read = store
        .get_tenant(china.id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(read.cloud.as_str(), "china", "get_tenant keeps the cloud");
    let by_domain = store
        .find_tenant_by_domain(&china.primary_domain)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(
        by_domain.cloud.as_str(),
        "china",
        "find_tenant_by_domain keeps the cloud"
    );
    let listed = store.list_tenants(Some(org.id)).await.expect("list");
    let clouds: Vec<(&str, &str)> = listed
        .iter()
        .map(|t| (t.display_name.as_str(), t.cloud.as_str()))
        .collect();
    assert!(clouds.contains(&("Tenant in China", "china")), "{clouds:?}");
    assert!(clouds.contains(&("Tenant cloudg", "global")), "{clouds:?}");

    let mut profile = minimal_profile(&china, now());
    assert_eq!(profile.cloud.as_str(), "china");
    store
        .insert_profile(&profile, created_event(&profile))
        .await
        .expect("insert a profile");
    let got = store
        .get_profile(profile.id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(
        got.cloud.as_str(),
        "china",
        "a profile keeps its tenant's cloud"
    );
    profile.updated_at = now();
    profile.last_checked_at = Some(now());
    store.save_profile(&profile, None).await.expect("save");
    let got = store
        .get_profile(profile.id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(got.cloud.as_str(), "china", "a save keeps the cloud");
    let page = store
        .list_profiles(
            &ProfileFilter {
                tenant_id: Some(china.id),
                ..ProfileFilter::default()
            },
            &PageRequest::default(),
        )
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1);
    assert_eq!(
        page.items[0].cloud.as_str(),
        "china",
        "listings keep the cloud"
    );
}
