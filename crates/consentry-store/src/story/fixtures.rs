//! What the chapters build on: fresh organizations, tenants, profiles and pending re-authorizations,
//! and the checks they share.

use super::*;

/// A short random token to keep names unique between runs.
pub(super) fn token() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// The current time, as a store would receive it from the clock (nanosecond precision).
pub(super) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Creates an organization with a fresh name.
pub async fn new_org(store: &dyn Store, label: &str) -> Organization {
    let org = Organization {
        id: OrgId::new_random(),
        name: format!("story {} {label}", token()),
        modules: BTreeSet::from(["planner".to_string(), "teams".to_string()]),
        services: BTreeSet::new(),
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
        cloud: consentry_domain::CloudKey::global(),
        created_at: now(),
        verified: None,
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
        cloud: tenant.cloud.clone(),
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
        evidence: None,
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

pub(super) async fn expect_profile(store: &dyn Store, p: &AppProfile) {
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

/// A fresh state hash: 64 lower-case hex digits, like the hex SHA-256 of a random OAuth state.
pub fn new_state_hash() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// Every byte value, twice: secrets are arbitrary bytes, not text.
pub(super) fn every_byte_twice() -> Vec<u8> {
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

pub(super) async fn expect_pending_of(store: &dyn Store, want: &PendingAuthorization, what: &str) {
    let got = store
        .pending_for_profile(want.profile_id)
        .await
        .expect("pending_for_profile")
        .unwrap_or_else(|| panic!("{what}: profile {} has no pending record", want.profile_id));
    assert_same_pending(&got, want, what);
}

/// Polls every future to completion on this task, so that they run at the same time (each on its
/// own database connection); the outputs come back in the futures' order.
pub(super) async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
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

pub(super) fn to_micros(t: OffsetDateTime) -> i128 {
    t.unix_timestamp_nanos() / 1000
}

/// A history event of `kind` for `p` at `at` with `detail`.
pub(super) fn reauth_event(
    p: &AppProfile,
    kind: EventKind,
    at: OffsetDateTime,
    detail: &str,
) -> NewHistoryEvent {
    NewHistoryEvent {
        evidence: None,
        profile_id: p.id,
        at,
        actor: Actor::Operator("story@vendor.example".into()),
        kind,
        from_status: Some(p.status),
        to_status: Some(p.status),
        reason: p.reason.clone(),
        detail: Some(detail.into()),
    }
}
