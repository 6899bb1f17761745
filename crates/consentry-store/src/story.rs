//! The behaviour story every [`Store`] implementation must pass: one set of expectations, run against
//! SQLite and PostgreSQL alike.
//!
//! The story creates everything it looks at under fresh random names and IDs and never assumes an
//! empty database, so it can run against a shared database, concurrently with other runs. Failures
//! panic with a message naming the expectation, as test helpers do.
//!
//! ```no_run
//! # async fn example(store: &dyn consentry_domain::Store) {
//! consentry_store::story::run(store).await;
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::Poll;

use consentry_domain::audit::{
    AuditAction, AuditEntry, BreakReason, ChainBreak, ChainVerifier, NewAuditEntry,
};
use consentry_domain::catalog::{ConsentMethod, PermissionType};
use consentry_domain::{
    Actor, AppId, AppProfile, AuthLeg, CertificateInfo, ConsentUser, DomainName, EventKind,
    GrantedPermission, NewHistoryEvent, ObjectId, OrgId, Organization, PageRequest,
    PendingAuthorization, ProfileFilter, ProfileId, ProfileStatus, ScanAuth, ScanProfile,
    ScanProfileId, SecretKind, StatusReason, Store, StoreError, Tenant, TenantId, Thumbprint, Upn,
};
use secrecy::{ExposeSecret as _, SecretSlice};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Runs every chapter of the story. Panics on the first unmet expectation.
pub async fn run(store: &dyn Store) {
    organizations(store).await;
    tenants(store).await;
    profile_round_trip(store).await;
    filters_and_search(store).await;
    pagination(store, 1234).await;
    counts(store).await;
    history(store).await;
    atomicity(store).await;
    conditional_save(store).await;
    refresh_redemption(store).await;
    secrets(store).await;
    pending(store).await;
    pending_under_concurrency(store).await;
    deletion(store).await;
    pending_deletion(store).await;
    scan_profiles(store).await;
    roles_and_tokens(store).await;
}

/// `url` (a PostgreSQL URL) with its database replaced by `database`, keeping user, host and the query
/// (TLS settings): how the PostgreSQL tests reach a database of their own on the configured server.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The variable naming the PostgreSQL server the tests use: an admin URL of a role with CREATEDB
/// (`scripts/ensure-postgres.sh` prints one; `scripts/test.sh` sets it).
pub const POSTGRES_URL_VAR: &str = "CONSENTRY_TEST_POSTGRES_URL";

/// The admin URL of the tests' PostgreSQL server, or `None` (with a printed note) when `what` is to be
/// skipped because the variable is unset. In CI (`CI` set) an unset variable fails the test instead:
/// CI must run every PostgreSQL test.
pub fn postgres_admin_url(what: &str) -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{POSTGRES_URL_VAR} is not set, and CI is: the {what} must run in CI. scripts/test.sh provides \
             PostgreSQL (it runs scripts/ensure-postgres.sh and exports {POSTGRES_URL_VAR}); run the tests through it."
        ),
        _ => {
            eprintln!(
                "{what} skipped: {POSTGRES_URL_VAR} is not set. Run `eval \"$(scripts/ensure-postgres.sh)\"` \
                 first (or scripts/test.sh) to include it."
            );
            None
        }
    }
}

/// A PostgreSQL database of a test's own under a random name, dropped (with its connections) when this
/// goes out of scope — also when the test panics.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// Its URL (the admin URL with the database swapped, TLS settings kept).
    pub url: String,
}

impl TestDatabase {
    /// Creates `{prefix}_{random}` on the server behind `admin_url`.
    pub async fn create(admin_url: &str, prefix: &str) -> TestDatabase {
        use sqlx::Connection as _;
        let name = format!("{prefix}_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("connect to {POSTGRES_URL_VAR}'s server: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("create database {name} (the role needs CREATEDB): {e}"));
        let _ = admin.close().await;
        TestDatabase {
            admin_url: admin_url.to_string(),
            url: with_database(admin_url, &name),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        use sqlx::Connection as _;
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        // A thread and runtime of its own: Drop may run inside the test's runtime, or while it unwinds.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                    let _ = c.close().await;
                }
            });
        })
        .join();
    }
}

/// A short random token to keep names unique between runs.
fn token() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// The current time, as a store would receive it from the clock (nanosecond precision).
fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Creates an organization with a fresh name.
pub async fn new_org(store: &dyn Store, label: &str) -> Organization {
    let org = Organization {
        id: OrgId::new_random(),
        name: format!("story {} {label}", token()),
        modules: BTreeSet::from(["planner".to_string(), "teams".to_string()]),
        created_at: now(),
    };
    store
        .insert_organization(&org)
        .await
        .expect("insert a fresh organization");
    org
}

/// Creates a tenant of `org` with a fresh ID and domain.
pub async fn new_tenant(store: &dyn Store, org: &Organization, prefix: &str) -> Tenant {
    let tenant = Tenant {
        id: TenantId::from_uuid(Uuid::new_v4()),
        org_id: org.id,
        primary_domain: DomainName::parse(&format!("{prefix}{}.onmicrosoft.com", token()))
            .expect("valid domain"),
        display_name: format!("Tenant {prefix}"),
        created_at: now(),
    };
    store
        .insert_tenant(&tenant)
        .await
        .expect("insert a fresh tenant");
    tenant
}

/// A profile with every optional field unset.
pub fn minimal_profile(tenant: &Tenant, created_at: OffsetDateTime) -> AppProfile {
    AppProfile {
        id: ProfileId::new_random(),
        org_id: tenant.org_id,
        tenant_id: tenant.id,
        app_type: "m365-all".into(),
        service: "insights".into(),
        application_id: None,
        consent_method: None,
        consent_user: None,
        granted_permissions: Vec::new(),
        certificate: None,
        functions: Vec::new(),
        scan_targets: Vec::new(),
        original_sign_in_ip: None,
        status: ProfileStatus::Pending,
        reason: Some(StatusReason::NotYetAuthorized),
        last_checked_at: None,
        consented_catalog_version: None,
        refresh_token_redeemed_at: None,
        authorized_at: None,
        created_at,
        updated_at: created_at,
    }
}

/// A profile with every optional field set (and non-UTC offsets and sub-microsecond times).
pub fn full_profile(tenant: &Tenant, created_at: OffsetDateTime) -> AppProfile {
    let ip: IpAddr = "2001:db8::7".parse().expect("valid IP");
    let plus2 = time::UtcOffset::from_hms(2, 0, 0).expect("valid offset");
    AppProfile {
        application_id: Some(AppId::from_uuid(Uuid::new_v4())),
        consent_method: Some(ConsentMethod::User),
        consent_user: Some(ConsentUser {
            object_id: ObjectId::from_uuid(Uuid::new_v4()),
            upn: Upn::parse(&format!("Adele.Vance.{}@Contoso.com", token())).expect("valid UPN"),
        }),
        granted_permissions: vec![
            GrantedPermission {
                name: "Tasks.ReadWrite.All".into(),
                kind: PermissionType::Role,
            },
            GrantedPermission {
                name: "User.Read".into(),
                kind: PermissionType::Scope,
            },
        ],
        certificate: Some(CertificateInfo {
            thumbprint: Thumbprint::parse("84E05C1D98BCE3A5421D225B140B36E86A3D5534")
                .expect("valid thumbprint"),
            subject: "CN=Consentry story, O=Contoso".into(),
            not_after: (created_at + Duration::days(365) + Duration::nanoseconds(123))
                .to_offset(plus2),
        }),
        functions: vec!["planner-comments".into(), "teams-posts".into()],
        scan_targets: vec!["environments".into(), "power-bi".into()],
        original_sign_in_ip: Some(ip),
        status: ProfileStatus::Invalid,
        reason: Some(StatusReason::ConditionalAccessBlocked {
            original_ip: Some(ip),
            outbound_addresses: vec!["198.51.100.10".into()],
        }),
        last_checked_at: Some(created_at + Duration::nanoseconds(987_654_321)),
        consented_catalog_version: Some(3),
        refresh_token_redeemed_at: Some(
            created_at + Duration::minutes(3) + Duration::nanoseconds(77),
        ),
        authorized_at: Some((created_at - Duration::hours(5)).to_offset(plus2)),
        updated_at: created_at + Duration::seconds(1),
        ..minimal_profile(tenant, created_at)
    }
}

/// The `Created` event of a profile.
pub fn created_event(p: &AppProfile) -> NewHistoryEvent {
    NewHistoryEvent {
        profile_id: p.id,
        at: p.created_at,
        actor: Actor::Operator("story@vendor.example".into()),
        kind: EventKind::Created,
        from_status: None,
        to_status: Some(p.status),
        reason: p.reason.clone(),
        detail: Some("created by the store story".into()),
    }
}

async fn expect_profile(store: &dyn Store, p: &AppProfile) {
    let got = store.get_profile(p.id).await.expect("get_profile");
    assert_eq!(
        got.as_ref(),
        Some(p),
        "profile {} must read back exactly as written",
        p.id
    );
}

/// Reads every page of `filter` (pages of `limit`) and checks that the pages chain correctly.
pub async fn collect_all(store: &dyn Store, filter: &ProfileFilter, limit: u32) -> Vec<AppProfile> {
    let mut out = Vec::new();
    let mut page = PageRequest { after: None, limit };
    for _ in 0..100_000 {
        let got = store
            .list_profiles(filter, &page)
            .await
            .expect("list_profiles");
        assert!(
            got.items.len() <= limit as usize,
            "a page must not exceed its limit"
        );
        let done = got.next_cursor.is_none();
        if !done {
            assert_eq!(
                got.items.len(),
                limit as usize,
                "only the last page may be short"
            );
        }
        out.extend(got.items);
        match got.next_cursor {
            Some(c) => page.after = Some(c),
            None => return out,
        }
    }
    panic!("pagination did not end");
}

/// Organizations: round trip, case-insensitive unique names, ordering, update, not-found cases.
pub async fn organizations(store: &dyn Store) {
    let t = token();
    let mk = |name: String| Organization {
        id: OrgId::new_random(),
        name,
        modules: BTreeSet::new(),
        created_at: now(),
    };
    let charlie = mk(format!("story {t} charlie"));
    let alpha = Organization {
        modules: BTreeSet::from(["power-bi".to_string(), "planner".to_string()]),
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

/// Every field of a profile round-trips, set and unset, through insert and save.
pub async fn profile_round_trip(store: &dyn Store) {
    let org = new_org(store, "round-trip").await;
    let tenant = new_tenant(store, &org, "rt").await;
    let t0 = now();
    let min = minimal_profile(&tenant, t0);
    let full = full_profile(&tenant, t0 + Duration::nanoseconds(1));
    store
        .insert_profile(&min, created_event(&min))
        .await
        .expect("insert minimal profile");
    store
        .insert_profile(&full, created_event(&full))
        .await
        .expect("insert full profile");
    expect_profile(store, &min).await;
    expect_profile(store, &full).await;
    assert_eq!(
        store.get_profile(ProfileId::new_random()).await.unwrap(),
        None
    );

    // Fill the minimal one, empty the full one: both directions of every optional field.
    let filled = AppProfile {
        id: min.id,
        created_at: min.created_at,
        ..full_profile(&tenant, min.created_at)
    };
    store
        .save_profile(&filled, None)
        .await
        .expect("save filled profile");
    expect_profile(store, &filled).await;
    let emptied = AppProfile {
        id: full.id,
        status: ProfileStatus::Valid,
        reason: None,
        ..minimal_profile(&tenant, full.created_at)
    };
    store
        .save_profile(&emptied, None)
        .await
        .expect("save emptied profile");
    // All but the refresh token's redemption time, which a save only moves forward.
    expect_profile(
        store,
        &AppProfile {
            refresh_token_redeemed_at: full.refresh_token_redeemed_at,
            ..emptied.clone()
        },
    )
    .await;

    // Every reason shape survives.
    let reasons = vec![
        StatusReason::PermissionsMissing {
            missing: vec!["Tasks.ReadWrite.All".into(), "Group.Read.All".into()],
        },
        StatusReason::CertificateExpired {
            not_after: t0 - Duration::days(2),
        },
        StatusReason::UnrecognizedError {
            aadsts: Some(9_999_999),
            error: "invalid_grant".into(),
        },
        StatusReason::ReauthorizationStarted {
            by: "ops@vendor".into(),
        },
    ];
    for r in reasons {
        let p = AppProfile {
            status: r.status(),
            reason: Some(r),
            ..filled.clone()
        };
        store
            .save_profile(&p, None)
            .await
            .expect("save with reason");
        expect_profile(store, &p).await;
    }

    // A duplicate ID is a conflict; a profile for an unknown tenant, or a tenant of another organization, is refused.
    assert!(matches!(
        store.insert_profile(&min, created_event(&min)).await,
        Err(StoreError::Conflict(_))
    ));
    let other_org = new_org(store, "round-trip-other").await;
    let stray = AppProfile {
        org_id: other_org.id,
        ..minimal_profile(&tenant, t0)
    };
    assert!(
        store
            .insert_profile(&stray, created_event(&stray))
            .await
            .is_err()
    );
    assert_eq!(store.get_profile(stray.id).await.unwrap(), None);
    let ghost = minimal_profile(
        &Tenant {
            id: TenantId::from_uuid(Uuid::new_v4()),
            ..tenant.clone()
        },
        t0,
    );
    assert!(matches!(
        store.insert_profile(&ghost, created_event(&ghost)).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.get_profile(ghost.id).await.unwrap(), None);
}

/// The reference meaning of a filter, against which the store's answers are compared.
fn filter_matches(f: &ProfileFilter, p: &AppProfile) -> bool {
    let search_ok = match f.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => true,
        Some(s) => {
            let s = s.to_lowercase();
            [
                Some(p.app_type.clone()),
                Some(p.service.clone()),
                p.consent_user.as_ref().map(|u| u.upn.to_string()),
                p.application_id.map(|a| a.to_string()),
            ]
            .into_iter()
            .flatten()
            .any(|v| v.to_lowercase().contains(&s))
        }
    };
    f.org_id.is_none_or(|o| o == p.org_id)
        && f.tenant_id.is_none_or(|t| t == p.tenant_id)
        && (f.statuses.is_empty() || f.statuses.contains(&p.status))
        && f.service.as_ref().is_none_or(|s| *s == p.service)
        && f.app_type.as_ref().is_none_or(|a| *a == p.app_type)
        && search_ok
}

fn ids(ps: &[AppProfile]) -> Vec<ProfileId> {
    ps.iter().map(|p| p.id).collect()
}

fn sorted_by_creation(mut ps: Vec<AppProfile>) -> Vec<AppProfile> {
    ps.sort_by_key(|p| (p.created_at, p.id.as_uuid()));
    ps
}

/// Filters by each field and in combination, and search (case-insensitive substring; `%` and `_`
/// in the input match literally).
pub async fn filters_and_search(store: &dyn Store) {
    let t = token();
    let org_a = new_org(store, "filters-a").await;
    let org_b = new_org(store, "filters-b").await;
    let ta1 = new_tenant(store, &org_a, "fa").await;
    let ta2 = new_tenant(store, &org_a, "fb").await;
    let tb = new_tenant(store, &org_b, "fc").await;
    let services = [
        format!("svc-{t}-one"),
        format!("svc-{t}%50"),
        format!("svc-{t}x50"),
    ];
    let app_types = [format!("app-{t}_z"), format!("app-{t}yz")];
    let base = now();
    let mut all = Vec::new();
    for i in 0..48usize {
        let tenant = [&ta1, &ta2, &tb][i % 3];
        let created = base + Duration::microseconds(i as i64);
        let mut p = if i % 2 == 0 {
            full_profile(tenant, created)
        } else {
            minimal_profile(tenant, created)
        };
        p.service = services[i % services.len()].clone();
        p.app_type = app_types[(i / 3) % app_types.len()].clone();
        p.status = ProfileStatus::ALL[(i / 2) % 4];
        store
            .insert_profile(&p, created_event(&p))
            .await
            .expect("insert profile");
        all.push(p);
    }
    let upn_fragment = all[0].consent_user.as_ref().unwrap().upn.as_str()[..17].to_uppercase();
    let app_id_fragment = all[2].application_id.unwrap().to_string()[9..23].to_uppercase();
    let mut filters = vec![
        ProfileFilter {
            org_id: Some(org_a.id),
            ..Default::default()
        },
        ProfileFilter {
            org_id: Some(org_b.id),
            ..Default::default()
        },
        ProfileFilter {
            tenant_id: Some(ta2.id),
            ..Default::default()
        },
        ProfileFilter {
            org_id: Some(org_a.id),
            tenant_id: Some(tb.id),
            ..Default::default()
        },
        ProfileFilter {
            service: Some(services[0].clone()),
            ..Default::default()
        },
        ProfileFilter {
            app_type: Some(app_types[1].clone()),
            ..Default::default()
        },
        ProfileFilter {
            org_id: Some(org_a.id),
            service: Some(services[1].clone()),
            app_type: Some(app_types[0].clone()),
            ..Default::default()
        },
        ProfileFilter {
            org_id: Some(OrgId::new_random()),
            ..Default::default()
        },
    ];
    for s in [
        t.to_uppercase(),
        format!("{t}%5"),
        format!("{t}_z"),
        format!("APP-{t}Y"),
        format!("  svc-{t}X  "),
        upn_fragment,
        app_id_fragment,
        format!("{t}\\"),
        format!("{t}%"),
        "no-such-thing-%-at-all".into(),
    ] {
        filters.push(ProfileFilter {
            search: Some(s),
            ..Default::default()
        });
    }
    for statuses in [
        vec![ProfileStatus::Invalid],
        vec![ProfileStatus::Valid, ProfileStatus::Pending],
        ProfileStatus::ALL.to_vec(),
    ] {
        filters.push(ProfileFilter {
            org_id: Some(org_a.id),
            statuses: statuses.clone(),
            ..Default::default()
        });
        filters.push(ProfileFilter {
            tenant_id: Some(tb.id),
            statuses: statuses.clone(),
            search: Some(format!("{t}X5")),
            ..Default::default()
        });
        filters.push(ProfileFilter {
            statuses,
            app_type: Some(app_types[0].clone()),
            ..Default::default()
        });
    }
    let our_ids: HashSet<ProfileId> = all.iter().map(|p| p.id).collect();
    for f in &filters {
        let expected = sorted_by_creation(
            all.iter()
                .filter(|p| filter_matches(f, p))
                .cloned()
                .collect(),
        );
        let got: Vec<AppProfile> = collect_all(store, f, 7)
            .await
            .into_iter()
            .filter(|p| our_ids.contains(&p.id))
            .collect();
        assert_eq!(ids(&got), ids(&expected), "filter {f:?}");
        assert_eq!(got, expected, "filter {f:?} returns whole profiles");
    }
    // Sanity of the reference itself: the wildcard searches must single out the literal values.
    let literal_percent = ProfileFilter {
        search: Some(format!("{t}%5")),
        ..Default::default()
    };
    assert!(
        all.iter()
            .filter(|p| filter_matches(&literal_percent, p))
            .all(|p| p.service == services[1])
    );
    assert_eq!(
        all.iter()
            .filter(|p| filter_matches(&literal_percent, p))
            .count(),
        16
    );
    let literal_underscore = ProfileFilter {
        search: Some(format!("{t}_z")),
        ..Default::default()
    };
    assert_eq!(
        all.iter()
            .filter(|p| filter_matches(&literal_underscore, p))
            .count(),
        24
    );
}

/// Keyset pagination over `n` profiles: no duplicates, no gaps, creation order (ties broken by ID),
/// the last page has no cursor, and bad cursors are refused.
pub async fn pagination(store: &dyn Store, n: usize) {
    let org = new_org(store, "pagination").await;
    let tenant = new_tenant(store, &org, "pg").await;
    let base = now();
    let mut all = Vec::with_capacity(n);
    for i in 0..n {
        // Groups of three share a creation time, so the ID must break ties.
        let mut p = minimal_profile(&tenant, base + Duration::microseconds((i / 3) as i64));
        p.status = ProfileStatus::ALL[i % 4];
        store
            .insert_profile(&p, created_event(&p))
            .await
            .expect("insert profile");
        all.push(p);
    }
    let expected = sorted_by_creation(all.clone());
    let filter = ProfileFilter {
        org_id: Some(org.id),
        ..Default::default()
    };
    for limit in [1u32, 100, 500] {
        if limit == 1 && n > 200 {
            continue;
        }
        let got = collect_all(store, &filter, limit).await;
        assert_eq!(
            got.len(),
            n,
            "page size {limit}: every profile exactly once"
        );
        let unique: HashSet<ProfileId> = got.iter().map(|p| p.id).collect();
        assert_eq!(unique.len(), n, "page size {limit}: no duplicates");
        assert_eq!(
            ids(&got),
            ids(&expected),
            "page size {limit}: creation order"
        );
    }
    // Asking for exactly what remains: the page that ends the list carries no cursor (no empty page follows).
    let mut after = None;
    let mut remaining = n;
    let mut seen = Vec::with_capacity(n);
    while remaining > 0 {
        let limit = remaining.min(500);
        let page = store
            .list_profiles(
                &filter,
                &PageRequest {
                    after: after.take(),
                    limit: u32::try_from(limit).unwrap(),
                },
            )
            .await
            .unwrap();
        assert_eq!(page.items.len(), limit);
        remaining -= limit;
        assert_eq!(
            page.next_cursor.is_some(),
            remaining > 0,
            "a cursor exactly when more follow"
        );
        seen.extend(page.items);
        after = page.next_cursor;
    }
    assert_eq!(ids(&seen), ids(&expected));
    // Filtered pagination.
    let invalid = ProfileFilter {
        org_id: Some(org.id),
        statuses: vec![ProfileStatus::Invalid, ProfileStatus::Pending],
        ..Default::default()
    };
    let got = collect_all(store, &invalid, 37).await;
    let want: Vec<ProfileId> = expected
        .iter()
        .filter(|p| matches!(p.status, ProfileStatus::Invalid | ProfileStatus::Pending))
        .map(|p| p.id)
        .collect();
    assert_eq!(ids(&got), want);
    // Bad cursors.
    for bad in ["garbage!", "", "cDE6eDp5", "AAAA"] {
        let r = store
            .list_profiles(
                &filter,
                &PageRequest {
                    after: Some(bad.into()),
                    limit: 10,
                },
            )
            .await;
        assert!(
            matches!(r, Err(StoreError::BadCursor)),
            "cursor {bad:?} must be refused"
        );
    }
    // An empty result has no cursor.
    let none = store
        .list_profiles(
            &ProfileFilter {
                org_id: Some(OrgId::new_random()),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.next_cursor.is_none());
}

/// Counts by status, for a filter; every status is present (zero when none match).
pub async fn counts(store: &dyn Store) {
    let org = new_org(store, "counts").await;
    let t1 = new_tenant(store, &org, "ca").await;
    let t2 = new_tenant(store, &org, "cb").await;
    let base = now();
    let mut all = Vec::new();
    for i in 0..23usize {
        let mut p = minimal_profile(
            if i % 3 == 0 { &t1 } else { &t2 },
            base + Duration::microseconds(i as i64),
        );
        p.status = ProfileStatus::ALL[(i * i + 1) % 4];
        p.service = if i % 2 == 0 {
            "insights".into()
        } else {
            "fly".into()
        };
        store.insert_profile(&p, created_event(&p)).await.unwrap();
        all.push(p);
    }
    let filters = [
        ProfileFilter {
            org_id: Some(org.id),
            ..Default::default()
        },
        ProfileFilter {
            tenant_id: Some(t1.id),
            ..Default::default()
        },
        ProfileFilter {
            org_id: Some(org.id),
            service: Some("fly".into()),
            statuses: vec![ProfileStatus::Valid, ProfileStatus::Invalid],
            ..Default::default()
        },
        ProfileFilter {
            org_id: Some(OrgId::new_random()),
            ..Default::default()
        },
    ];
    for f in &filters {
        let mut want: BTreeMap<ProfileStatus, u64> =
            ProfileStatus::ALL.into_iter().map(|s| (s, 0)).collect();
        for p in all.iter().filter(|p| filter_matches(f, p)) {
            *want.entry(p.status).or_default() += 1;
        }
        assert_eq!(
            store.count_profiles(f).await.unwrap(),
            want,
            "counts for {f:?}"
        );
    }
}

/// History: insert and save append events atomically, newest first, with increasing sequence numbers.
pub async fn history(store: &dyn Store) {
    let org = new_org(store, "history").await;
    let tenant = new_tenant(store, &org, "hi").await;
    let mut p = full_profile(&tenant, now());
    let mut sent = vec![created_event(&p)];
    store.insert_profile(&p, sent[0].clone()).await.unwrap();
    let other = minimal_profile(&tenant, now());
    store
        .insert_profile(&other, created_event(&other))
        .await
        .unwrap();

    let steps: Vec<(EventKind, ProfileStatus, Option<StatusReason>, Actor)> = vec![
        (
            EventKind::ReauthorizationStarted,
            ProfileStatus::Pending,
            Some(StatusReason::ReauthorizationStarted { by: "ops".into() }),
            Actor::Operator("ops".into()),
        ),
        (
            EventKind::ReauthorizationCompleted,
            ProfileStatus::Valid,
            None,
            Actor::System,
        ),
        (
            EventKind::StatusChanged,
            ProfileStatus::Invalid,
            Some(StatusReason::ConsentRevoked),
            Actor::System,
        ),
    ];
    for (i, (kind, status, reason, actor)) in steps.into_iter().enumerate() {
        let event = NewHistoryEvent {
            profile_id: p.id,
            at: p.created_at + Duration::minutes(i as i64 + 1),
            actor,
            kind,
            from_status: Some(p.status),
            to_status: Some(status),
            reason: reason.clone(),
            detail: if i == 1 {
                None
            } else {
                Some(format!("step {i}"))
            },
        };
        p.status = status;
        p.reason = reason;
        p.updated_at = event.at;
        store.save_profile(&p, Some(event.clone())).await.unwrap();
        sent.push(event);
    }
    // A save without an event appends nothing.
    p.last_checked_at = Some(p.updated_at + Duration::seconds(30));
    store.save_profile(&p, None).await.unwrap();
    expect_profile(store, &p).await;

    let got = store.list_history(p.id, 100).await.unwrap();
    assert_eq!(
        got.len(),
        sent.len(),
        "one event per insert/save with an event"
    );
    for w in got.windows(2) {
        assert!(w[0].seq > w[1].seq, "newest first, increasing seq");
    }
    for (got, sent) in got.iter().rev().zip(&sent) {
        assert_eq!(got.profile_id, sent.profile_id);
        assert_eq!(got.at, sent.at);
        assert_eq!(got.actor, sent.actor);
        assert_eq!(got.kind, sent.kind);
        assert_eq!(got.from_status, sent.from_status);
        assert_eq!(got.to_status, sent.to_status);
        assert_eq!(got.reason, sent.reason);
        assert_eq!(got.detail, sent.detail);
    }
    let newest_two = store.list_history(p.id, 2).await.unwrap();
    assert_eq!(newest_two, got[..2].to_vec(), "limit keeps the newest");
    let other_history = store.list_history(other.id, 100).await.unwrap();
    assert_eq!(other_history.len(), 1);
    assert_eq!(other_history[0].kind, EventKind::Created);
    assert!(
        store
            .list_history(ProfileId::new_random(), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A failed insert or save leaves neither a profile change nor a history event behind.
pub async fn atomicity(store: &dyn Store) {
    let org = new_org(store, "atomicity").await;
    let tenant = new_tenant(store, &org, "at").await;
    let p = minimal_profile(&tenant, now());
    store.insert_profile(&p, created_event(&p)).await.unwrap();

    // Inserting again (same ID, different content): conflict, the first version stays, no second event.
    let changed = AppProfile {
        service: "fly".into(),
        ..p.clone()
    };
    assert!(matches!(
        store
            .insert_profile(&changed, created_event(&changed))
            .await,
        Err(StoreError::Conflict(_))
    ));
    expect_profile(store, &p).await;
    assert_eq!(store.list_history(p.id, 10).await.unwrap().len(), 1);

    // An event that belongs to another profile is refused, and nothing is stored.
    let q = minimal_profile(&tenant, now());
    let wrong = created_event(&p);
    assert!(store.insert_profile(&q, wrong.clone()).await.is_err());
    assert_eq!(store.get_profile(q.id).await.unwrap(), None);
    assert_eq!(store.list_history(p.id, 10).await.unwrap().len(), 1);
    let p2 = AppProfile {
        status: ProfileStatus::Valid,
        reason: None,
        ..p.clone()
    };
    let foreign_event = created_event(&q);
    assert!(store.save_profile(&p2, Some(foreign_event)).await.is_err());
    expect_profile(store, &p).await;
    assert!(store.list_history(q.id, 10).await.unwrap().is_empty());

    // Saving an absent profile: NotFound, and no event recorded for it.
    assert!(matches!(
        store.save_profile(&q, Some(created_event(&q))).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.save_profile(&q, None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.list_history(q.id, 10).await.unwrap().is_empty());
    assert_eq!(store.get_profile(q.id).await.unwrap(), None);
}

/// Saves conditional on the profile as read (a check's result): written only while the stored
/// profile keeps the `updated_at` and status it was read with; otherwise nothing, event included.
pub async fn conditional_save(store: &dyn Store) {
    let org = new_org(store, "conditional").await;
    let tenant = new_tenant(store, &org, "cs").await;
    let p = minimal_profile(&tenant, now());
    store.insert_profile(&p, created_event(&p)).await.unwrap();
    let as_read = (p.updated_at, p.status);

    // Unchanged: saved, without an event in one statement, with one atomically.
    let checked = AppProfile {
        last_checked_at: Some(p.updated_at + Duration::seconds(5)),
        ..p.clone()
    };
    assert!(
        store
            .save_profile_if_unchanged(&checked, as_read, None)
            .await
            .unwrap()
    );
    expect_profile(store, &checked).await;
    let later = p.updated_at + Duration::seconds(10);
    let invalid = AppProfile {
        status: ProfileStatus::Invalid,
        reason: Some(StatusReason::AppRemovedFromTenant),
        updated_at: later,
        last_checked_at: Some(later),
        ..p.clone()
    };
    let event = NewHistoryEvent {
        profile_id: p.id,
        at: later,
        actor: Actor::System,
        kind: EventKind::StatusChanged,
        from_status: Some(p.status),
        to_status: Some(ProfileStatus::Invalid),
        reason: invalid.reason.clone(),
        detail: Some("check (scheduled)".into()),
    };
    assert!(
        store
            .save_profile_if_unchanged(&invalid, as_read, Some(event.clone()))
            .await
            .unwrap()
    );
    expect_profile(store, &invalid).await;
    assert_eq!(store.list_history(p.id, 10).await.unwrap().len(), 2);

    // Changed since it was read (its updated_at, or only its status): nothing written, no event.
    let stale = AppProfile {
        last_checked_at: Some(later + Duration::seconds(1)),
        ..checked.clone()
    };
    for expected in [
        as_read,
        (invalid.updated_at, ProfileStatus::Valid),
        (p.updated_at, ProfileStatus::Invalid),
    ] {
        assert!(
            !store
                .save_profile_if_unchanged(&stale, expected, None)
                .await
                .unwrap(),
            "{expected:?}"
        );
        assert!(
            !store
                .save_profile_if_unchanged(&stale, expected, Some(event.clone()))
                .await
                .unwrap()
        );
    }
    expect_profile(store, &invalid).await;
    assert_eq!(store.list_history(p.id, 10).await.unwrap().len(), 2);
    // As read now: saved.
    assert!(
        store
            .save_profile_if_unchanged(&stale, (invalid.updated_at, invalid.status), None)
            .await
            .unwrap()
    );
    expect_profile(store, &stale).await;

    // Absent: NotFound, with or without an event.
    let q = minimal_profile(&tenant, now());
    assert!(matches!(
        store
            .save_profile_if_unchanged(&q, (q.updated_at, q.status), None)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .save_profile_if_unchanged(&q, (q.updated_at, q.status), Some(created_event(&q)))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.list_history(q.id, 10).await.unwrap().is_empty());
}

/// The refresh token's redemption time: recorded without touching `updated_at`, and only ever moved
/// forward, by the recording call and by saves of a profile read before it.
pub async fn refresh_redemption(store: &dyn Store) {
    let org = new_org(store, "redemption").await;
    let tenant = new_tenant(store, &org, "redemption").await;
    let p = full_profile(&tenant, now());
    store.insert_profile(&p, created_event(&p)).await.unwrap();
    let first = p.refresh_token_redeemed_at.expect("set");

    let later = first + Duration::hours(1);
    store.record_refresh_redemption(p.id, later).await.unwrap();
    let got = store.get_profile(p.id).await.unwrap().unwrap();
    assert_eq!(got.refresh_token_redeemed_at, Some(later));
    assert_eq!(
        got.updated_at, p.updated_at,
        "recording does not change updated_at"
    );
    // An earlier time changes nothing.
    store
        .record_refresh_redemption(p.id, first - Duration::days(1))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_profile(p.id)
            .await
            .unwrap()
            .unwrap()
            .refresh_token_redeemed_at,
        Some(later)
    );
    // A save of the profile as read before the redemption keeps the later time, with or
    // without a condition; a save carrying a newer time moves it.
    store.save_profile(&p, None).await.unwrap();
    assert_eq!(
        store
            .get_profile(p.id)
            .await
            .unwrap()
            .unwrap()
            .refresh_token_redeemed_at,
        Some(later)
    );
    let cleared = AppProfile {
        refresh_token_redeemed_at: None,
        ..p.clone()
    };
    assert!(
        store
            .save_profile_if_unchanged(&cleared, (p.updated_at, p.status), None)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_profile(p.id)
            .await
            .unwrap()
            .unwrap()
            .refresh_token_redeemed_at,
        Some(later)
    );
    let newest = later + Duration::minutes(5);
    let renewed = AppProfile {
        refresh_token_redeemed_at: Some(newest),
        ..p.clone()
    };
    store.save_profile(&renewed, None).await.unwrap();
    expect_profile(store, &renewed).await;
    // An absent profile: nothing to record, no error.
    store
        .record_refresh_redemption(minimal_profile(&tenant, now()).id, newest)
        .await
        .unwrap();
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
    // The other profile keeps everything.
    expect_profile(store, &keep).await;
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

/// A fresh state hash: 64 lower-case hex digits, like the hex SHA-256 of a random OAuth state.
pub fn new_state_hash() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// Every byte value, twice: secrets are arbitrary bytes, not text.
fn every_byte_twice() -> Vec<u8> {
    (0..=255u8).chain(0..=255u8).collect()
}

/// A pending re-authorization of `profile` with every optional field set (non-UTC offset,
/// sub-microsecond times, a secrets blob holding every byte value).
pub fn full_pending(profile: ProfileId, created_at: OffsetDateTime) -> PendingAuthorization {
    let plus2 = time::UtcOffset::from_hms(2, 0, 0).expect("valid offset");
    let ip: IpAddr = "203.0.113.9".parse().expect("valid IP");
    PendingAuthorization {
        state_hash: new_state_hash(),
        profile_id: profile,
        started_by: Actor::Operator(format!("ops-{}@vendor.example", token())),
        method: ConsentMethod::Admin,
        leg: AuthLeg::AdminConsent,
        sign_in_follows: true,
        custom_app_id: Some(AppId::from_uuid(Uuid::new_v4())),
        functions: vec!["planner-comments".into(), "teams-posts".into()],
        scan_targets: vec!["solutions".into(), "power-bi".into()],
        nonce: format!("nonce-{}", token()),
        previous_status: ProfileStatus::Invalid,
        previous_reason: Some(StatusReason::ConditionalAccessBlocked {
            original_ip: Some(ip),
            outbound_addresses: vec!["198.51.100.10".into()],
        }),
        created_at: created_at.to_offset(plus2),
        expires_at: created_at + Duration::minutes(10) + Duration::nanoseconds(7),
        secrets: SecretSlice::from(every_byte_twice()),
        taken_until: None,
    }
}

/// A pending re-authorization of `profile` with every optional field unset and empty secrets.
pub fn minimal_pending(profile: ProfileId, created_at: OffsetDateTime) -> PendingAuthorization {
    PendingAuthorization {
        state_hash: new_state_hash(),
        profile_id: profile,
        started_by: Actor::System,
        method: ConsentMethod::User,
        leg: AuthLeg::SignIn,
        sign_in_follows: false,
        custom_app_id: None,
        functions: Vec::new(),
        scan_targets: Vec::new(),
        nonce: String::new(),
        previous_status: ProfileStatus::Pending,
        previous_reason: None,
        created_at,
        expires_at: created_at + Duration::minutes(10),
        secrets: SecretSlice::from(Vec::new()),
        taken_until: None,
    }
}

/// The deadline a test's take gives its taker: two minutes from now.
pub fn hold_until() -> OffsetDateTime {
    now() + Duration::minutes(2)
}

/// Asserts that `got` holds exactly what `want` does, field by field, secrets included.
pub fn assert_same_pending(got: &PendingAuthorization, want: &PendingAuthorization, what: &str) {
    assert_eq!(got.state_hash, want.state_hash, "{what}: state_hash");
    assert_eq!(got.profile_id, want.profile_id, "{what}: profile_id");
    assert_eq!(got.started_by, want.started_by, "{what}: started_by");
    assert_eq!(got.method, want.method, "{what}: method");
    assert_eq!(got.leg, want.leg, "{what}: leg");
    assert_eq!(
        got.sign_in_follows, want.sign_in_follows,
        "{what}: sign_in_follows"
    );
    assert_eq!(
        got.custom_app_id, want.custom_app_id,
        "{what}: custom_app_id"
    );
    assert_eq!(got.functions, want.functions, "{what}: functions");
    assert_eq!(got.scan_targets, want.scan_targets, "{what}: scan_targets");
    assert_eq!(got.nonce, want.nonce, "{what}: nonce");
    assert_eq!(
        got.previous_status, want.previous_status,
        "{what}: previous_status"
    );
    assert_eq!(
        got.previous_reason, want.previous_reason,
        "{what}: previous_reason"
    );
    assert_eq!(got.created_at, want.created_at, "{what}: created_at");
    assert_eq!(got.expires_at, want.expires_at, "{what}: expires_at");
    assert!(
        got.secrets.expose_secret() == want.secrets.expose_secret(),
        "{what}: the secrets blob must read back byte for byte ({} bytes read, {} written)",
        got.secrets.expose_secret().len(),
        want.secrets.expose_secret().len()
    );
}

async fn expect_pending_of(store: &dyn Store, want: &PendingAuthorization, what: &str) {
    let got = store
        .pending_for_profile(want.profile_id)
        .await
        .expect("pending_for_profile")
        .unwrap_or_else(|| panic!("{what}: profile {} has no pending record", want.profile_id));
    assert_same_pending(&got, want, what);
}

/// Polls every future to completion on this task, so that they run at the same time (each on its
/// own database connection); the outputs come back in the futures' order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}

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

/// A scan profile of `tenant` with the classic method.
pub fn classic_scan_profile(
    tenant: &Tenant,
    delegated: ProfileId,
    at: OffsetDateTime,
) -> ScanProfile {
    ScanProfile {
        id: ScanProfileId::new_random(),
        org_id: tenant.org_id,
        tenant_id: tenant.id,
        name: format!("Scan {}", token()),
        modules: BTreeSet::from(["planner".to_string(), "teams".to_string()]),
        authentication: ScanAuth::Classic {
            service_account: Upn::parse(&format!("svc.{}@contoso.com", token()))
                .expect("valid UPN"),
            delegated_profile: delegated,
        },
        planner_backup_enabled: false,
        created_at: at,
        updated_at: at,
    }
}

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

fn to_micros(t: OffsetDateTime) -> i128 {
    t.unix_timestamp_nanos() / 1000
}

/// Roles of accounts and personal access tokens: the role round-trips, tokens are found by hash only,
/// revocation is per account and once, uses are recorded, and tokens go with their account and its
/// organization.
pub async fn roles_and_tokens(store: &dyn Store) {
    use consentry_domain::{AccountScope, OperatorAccount, PersonalToken, Role};
    let org = new_org(store, "roles").await;
    let account = |name: &str, scope, role| OperatorAccount {
        id: Uuid::new_v4(),
        username: format!("{name}-{}", token()),
        scope,
        role,
        password_hash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        created_at: now(),
    };
    let viewer = account("viewer", AccountScope::Organization(org.id), Role::Viewer);
    let admin = account("admin", AccountScope::Organization(org.id), Role::Admin);
    let root = account("root", AccountScope::Platform, Role::Admin);
    for a in [&viewer, &admin, &root] {
        store.insert_account(a).await.expect("insert an account");
    }
    for a in [&viewer, &admin, &root] {
        let got = store
            .get_account(a.id)
            .await
            .expect("read an account")
            .expect("the account exists");
        assert_eq!(
            (got.role, got.scope),
            (a.role, a.scope),
            "role and scope round-trip"
        );
    }

    let t0 = now();
    let new_token = |account: Uuid, name: &str| PersonalToken {
        id: Uuid::new_v4(),
        account_id: account,
        name: name.into(),
        token_hash: format!("{}{}", token(), token()),
        created_at: t0,
        expires_at: t0 + Duration::days(30),
        last_used_at: None,
        revoked_at: None,
    };
    let v1 = new_token(viewer.id, "laptop");
    let v2 = new_token(viewer.id, "ci <script>");
    let a1 = new_token(admin.id, "admin's");
    for t in [&v1, &v2, &a1] {
        store
            .insert_personal_token(t)
            .await
            .expect("insert a personal token");
    }
    let dup = PersonalToken {
        id: Uuid::new_v4(),
        ..v1.clone()
    };
    assert!(
        matches!(
            store.insert_personal_token(&dup).await,
            Err(StoreError::Conflict(_))
        ),
        "a token hash is unique"
    );
    let ghost = new_token(Uuid::new_v4(), "ghost");
    assert!(
        matches!(
            store.insert_personal_token(&ghost).await,
            Err(StoreError::NotFound(_))
        ),
        "a token needs its account"
    );

    let found = store
        .find_personal_token(&v2.token_hash)
        .await
        .expect("find")
        .expect("found by hash");
    assert_eq!(
        (found.id, found.account_id, found.name.as_str()),
        (v2.id, viewer.id, "ci <script>")
    );
    assert_eq!(to_micros(found.expires_at), to_micros(v2.expires_at));
    assert_eq!((found.last_used_at, found.revoked_at), (None, None));
    assert!(
        store
            .find_personal_token("not-a-stored-hash")
            .await
            .expect("find")
            .is_none()
    );
    let listed: Vec<Uuid> = store
        .list_personal_tokens(viewer.id)
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(
        listed.into_iter().collect::<HashSet<_>>(),
        HashSet::from([v1.id, v2.id]),
        "an account lists its own tokens only"
    );

    let used = t0 + Duration::minutes(5);
    assert!(
        store
            .touch_personal_token(v1.id, used)
            .await
            .expect("touch")
    );
    assert!(
        !store
            .touch_personal_token(Uuid::new_v4(), used)
            .await
            .expect("touch")
    );
    let got = store
        .find_personal_token(&v1.token_hash)
        .await
        .expect("find")
        .expect("found");
    assert_eq!(got.last_used_at.map(to_micros), Some(to_micros(used)));

    assert!(
        !store
            .revoke_personal_token(admin.id, v1.id, used)
            .await
            .expect("revoke"),
        "another account cannot revoke a token"
    );
    assert!(
        store
            .revoke_personal_token(viewer.id, v1.id, used)
            .await
            .expect("revoke")
    );
    assert!(
        !store
            .revoke_personal_token(viewer.id, v1.id, used)
            .await
            .expect("revoke"),
        "a token is revoked once"
    );
    let got = store
        .find_personal_token(&v1.token_hash)
        .await
        .expect("find")
        .expect("a revoked token is still found (and refused by its revocation time)");
    assert_eq!(got.revoked_at.map(to_micros), Some(to_micros(used)));

    assert!(store.delete_account(viewer.id).await.expect("delete"));
    for t in [&v1, &v2] {
        assert!(
            store
                .find_personal_token(&t.token_hash)
                .await
                .expect("find")
                .is_none(),
            "tokens go with their account"
        );
    }
    assert!(store.delete_organization(org.id).await.expect("delete org"));
    assert!(store.get_account(admin.id).await.expect("read").is_none());
    assert!(
        store
            .find_personal_token(&a1.token_hash)
            .await
            .expect("find")
            .is_none(),
        "tokens go with their account's organization"
    );
    assert!(store.delete_account(root.id).await.expect("delete"));

    // A service key's last use.
    let org = new_org(store, "keys").await;
    let key = consentry_domain::ApiKey {
        id: Uuid::new_v4(),
        org_id: org.id,
        name: "service".into(),
        key_hash: format!("{}{}", token(), token()),
        created_at: t0,
        revoked_at: None,
        last_used_at: None,
    };
    store.insert_api_key(&key).await.expect("insert a key");
    let got = store
        .find_api_key(&key.key_hash)
        .await
        .expect("find")
        .expect("found");
    assert_eq!(got.last_used_at, None);
    assert!(store.touch_api_key(key.id, used).await.expect("touch"));
    let got = store
        .find_api_key(&key.key_hash)
        .await
        .expect("find")
        .expect("found");
    assert_eq!(got.last_used_at.map(to_micros), Some(to_micros(used)));
    assert!(
        !store
            .touch_api_key(Uuid::new_v4(), used)
            .await
            .expect("touch")
    );
}

fn audit_entry(org: Option<OrgId>, action: AuditAction, n: usize) -> NewAuditEntry {
    NewAuditEntry {
        at: now(),
        actor: Actor::Operator(format!("story-{n}")),
        org_id: org,
        action,
        target: format!("thing:{n}"),
        detail: serde_json::json!({"n": n, "note": "no secrets here", "nested": {"b": 2, "a": [1, "x"]}}),
    }
}

/// Every entry of the log and its head, verified from the first entry.
async fn verify_all(store: &dyn Store) -> Result<u64, ChainBreak> {
    let head = store.audit_head().await.expect("read the audit head");
    let mut v = ChainVerifier::new();
    let mut after = None;
    loop {
        let page = store
            .list_audit(None, after, 200)
            .await
            .expect("list the audit log");
        for e in &page {
            v.push(e)?;
        }
        match page.last() {
            Some(last) if page.len() == 200 => after = Some(last.seq),
            _ => break,
        }
    }
    v.finish(&head)
}

/// The audit log: appends come back as stored, chained and numbered; listing per organization pages
/// both ways; concurrent appends keep one linear chain that verifies.
pub async fn audit_log(store: std::sync::Arc<dyn Store>) {
    let a = new_org(store.as_ref(), "audit-a").await;
    let b = new_org(store.as_ref(), "audit-b").await;
    let mut mine = Vec::new();
    for n in 0..7 {
        let org = if n % 3 == 2 { b.id } else { a.id };
        let e = store
            .append_audit(&audit_entry(Some(org), AuditAction::WebhookCreated, n))
            .await
            .expect("append an audit entry");
        assert_eq!(
            e.hash,
            e.computed_hash(),
            "the stored hash covers the entry"
        );
        assert_eq!(e.action, "webhook_created");
        if let Some(prev) = mine.last() {
            let prev: &AuditEntry = prev;
            assert!(e.seq > prev.seq, "sequence numbers grow");
        }
        mine.push(e);
    }
    let platform = store
        .append_audit(&audit_entry(None, AuditAction::AccountCreated, 99))
        .await
        .unwrap();
    assert_eq!(platform.org_id, None);

    let a_all = store.list_audit(Some(a.id), None, 100).await.unwrap();
    let a_mine: Vec<&AuditEntry> = mine.iter().filter(|e| e.org_id == Some(a.id)).collect();
    assert_eq!(a_all.len(), a_mine.len(), "only org a's entries");
    for (got, want) in a_all.iter().zip(a_mine) {
        assert_eq!(got, want, "an entry reads back exactly as appended");
    }
    // Paging oldest first and newest first.
    let first_two = store.list_audit(Some(a.id), None, 2).await.unwrap();
    let next = store
        .list_audit(Some(a.id), Some(first_two[1].seq), 2)
        .await
        .unwrap();
    assert_eq!(first_two[0].seq, a_all[0].seq);
    assert_eq!(next[0].seq, a_all[2].seq);
    let newest = store.list_audit_newest(Some(a.id), None, 3).await.unwrap();
    assert_eq!(
        newest.iter().map(|e| e.seq).collect::<Vec<_>>(),
        a_all
            .iter()
            .rev()
            .take(3)
            .map(|e| e.seq)
            .collect::<Vec<_>>()
    );
    let older = store
        .list_audit_newest(Some(a.id), Some(newest[2].seq), 3)
        .await
        .unwrap();
    assert_eq!(older[0].seq, a_all[a_all.len() - 4].seq);
    let b_all = store
        .list_audit_newest(Some(b.id), None, 100)
        .await
        .unwrap();
    assert_eq!(b_all.len(), 2);
    assert!(b_all.iter().all(|e| e.org_id == Some(b.id)));

    // Concurrent appends: 8 writers × 15 entries, each gets its own number and the chain stays linear.
    let c = new_org(store.as_ref(), "audit-concurrent").await;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = std::sync::Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..15 {
                let e = store
                    .append_audit(&audit_entry(
                        Some(c.id),
                        AuditAction::TokenIssued,
                        w * 100 + i,
                    ))
                    .await?;
                seqs.push(e.seq);
            }
            Ok::<Vec<u64>, StoreError>(seqs)
        }));
    }
    let mut seqs = BTreeSet::new();
    for t in tasks {
        for s in t.await.unwrap().expect("no append fails under concurrency") {
            assert!(seqs.insert(s), "sequence number {s} handed out twice");
        }
    }
    assert_eq!(seqs.len(), 120);
    let listed = store.list_audit(Some(c.id), None, 500).await.unwrap();
    assert_eq!(listed.len(), 120);
    verify_all(store.as_ref())
        .await
        .expect("the chain verifies after concurrent appends");
}

/// Tampering underneath the store is detected, naming the entry: an edited row, a deleted row, rows
/// whose places were swapped, and a deleted last row. Needs a database of its own (the chain is
/// broken and repaired in turn) and `exec`, which runs one SQL statement on it directly, with the
/// append-only triggers already disabled.
pub async fn audit_tampering<F>(store: &dyn Store, exec: F)
where
    F: Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>>,
{
    let org = new_org(store, "audit-tamper").await;
    let mut e = Vec::new();
    for n in 0..5 {
        e.push(
            store
                .append_audit(&audit_entry(Some(org.id), AuditAction::SignIn, n))
                .await
                .unwrap(),
        );
    }
    let total = verify_all(store).await.expect("intact before tampering");
    assert!(total >= 5);
    exec("CREATE TABLE audit_backup AS SELECT * FROM audit_log".into()).await;
    let restore = || async {
        exec("DELETE FROM audit_log".into()).await;
        exec("INSERT INTO audit_log SELECT * FROM audit_backup".into()).await;
        assert_eq!(verify_all(store).await, Ok(total), "restored");
    };

    exec(format!(
        "UPDATE audit_log SET target = 'thing:mallory' WHERE seq = {}",
        e[2].seq
    ))
    .await;
    assert_eq!(
        verify_all(store).await,
        Err(ChainBreak {
            seq: e[2].seq,
            reason: BreakReason::Edited
        }),
        "an edited row"
    );
    restore().await;

    exec(format!("DELETE FROM audit_log WHERE seq = {}", e[1].seq)).await;
    let broken = verify_all(store).await.expect_err("a deleted row");
    assert_eq!(broken.seq, e[1].seq);
    assert!(
        matches!(broken.reason, BreakReason::Missing { .. }),
        "{broken}"
    );
    restore().await;

    // Swap the places of two rows (their sequence numbers).
    let (x, y) = (e[1].seq, e[3].seq);
    exec(format!(
        "UPDATE audit_log SET seq = -seq WHERE seq IN ({x}, {y})"
    ))
    .await;
    exec(format!(
        "UPDATE audit_log SET seq = {} + seq WHERE seq < 0",
        x + y
    ))
    .await;
    let broken = verify_all(store).await.expect_err("reordered rows");
    assert_eq!(broken.seq, x, "{broken}");
    assert_eq!(broken.reason, BreakReason::Edited);
    restore().await;

    // A row's hash recomputed after editing it: the next one no longer links.
    let mut forged = e[2].clone();
    forged.target = "thing:forged".into();
    forged.hash = forged.computed_hash();
    exec(format!(
        "UPDATE audit_log SET target = 'thing:forged', hash = '{}' WHERE seq = {}",
        forged.hash, forged.seq
    ))
    .await;
    assert_eq!(
        verify_all(store).await,
        Err(ChainBreak {
            seq: e[3].seq,
            reason: BreakReason::Unlinked
        })
    );
    restore().await;

    let last = e[4].seq;
    exec(format!("DELETE FROM audit_log WHERE seq = {last}")).await;
    let broken = verify_all(store).await.expect_err("a deleted last row");
    assert_eq!(broken.seq, last);
    assert!(
        matches!(broken.reason, BreakReason::Truncated { .. }),
        "{broken}"
    );
    restore().await;
    exec("DROP TABLE audit_backup".into()).await;
}
