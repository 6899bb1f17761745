//! Seeds a Consentry store with authorized certificate-based profiles across many tenants: the
//! organizations and tenants through the domain service, the profiles set-based through
//! `SqlStore::insert_profiles` (multi-row `INSERT`s, each profile's credential sealed by the store for
//! that profile, as every write seals it), fast enough for a million profiles on PostgreSQL.

use std::sync::Arc;

use base64::Engine as _;
use consentry_domain::catalog::ConsentMethod;
use consentry_domain::reauth::StoredCertificate;
use consentry_domain::{
    Actor, AppId, AppProfile, CertificateInfo, Consentry, DomainName, EventKind, GrantedPermission,
    NewHistoryEvent, ProfileId, ProfileStatus, SecretKind, StatusReason, TenantId, Thumbprint,
};
use consentry_store::{NewProfileRows, SqlStore};
use secrecy::SecretSlice;
use tokio::task::JoinSet;

use crate::scenario::{APPLICATION_PERMISSIONS, custom_app_id, tenant_domain, tenant_id};
use crate::sign::{DEMO_PFX, DEMO_PFX_PASSWORD, demo_certificate};

/// Tenants per organization unless the plan says otherwise.
pub const TENANTS_PER_ORG: usize = 10;

/// Profiles per transaction of the seed.
const BATCH: usize = 2_000;

/// Progress goes to stderr every this many profiles.
const REPORT_EVERY: usize = 100_000;

/// What to seed.
#[derive(Debug, Clone, Copy)]
pub struct SeedPlan {
    /// Profiles in all.
    pub profiles: usize,
    /// Tenants they are spread over (round-robin; `bench-0` … `bench-{n-1}`).
    pub tenants: usize,
    /// Every `invalid_every`-th profile is stored invalid (consent revoked); 0 for none.
    pub invalid_every: usize,
    /// Batches in flight on PostgreSQL (one on SQLite, which has one writer at a time).
    pub parallel: usize,
    /// Tenants per organization (0: [`TENANTS_PER_ORG`]).
    pub tenants_per_org: usize,
}

/// What was seeded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Seeded {
    /// Profiles written.
    pub profiles: usize,
    /// Of which invalid.
    pub invalid: usize,
    /// The first organization (for API keys, console accounts).
    pub first_org: String,
    /// Seconds it took.
    pub seconds: f64,
}

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// A domain service refused.
    #[error("seeding failed: {0}")]
    Domain(#[from] consentry_domain::DomainError),
    /// The store refused.
    #[error("seeding failed in the store: {0}")]
    Store(#[from] consentry_domain::StoreError),
    /// The demo certificate could not be used.
    #[error(transparent)]
    Bench(#[from] crate::BenchError),
    /// An ID could not be formed.
    #[error("seeding failed: {0}")]
    Id(String),
}

/// Writes organizations (one per `plan.tenants_per_org` tenants), the tenants and `plan.profiles`
/// authorized `custom-azure-app` profiles with the demo certificate sealed as their credential.
/// Organizations and tenants go through `svc`; the authorized profiles, which no service creates
/// directly, are written to `store` (the same database) in batches, `plan.parallel` at once.
pub async fn seed(svc: &Consentry, store: SqlStore, plan: SeedPlan) -> Result<Seeded, SeedError> {
    let started = std::time::Instant::now();
    let cert = demo_certificate()?;
    let now = svc.clock().now();
    let version = svc.catalog().version;
    let blob = serde_json::to_vec(&StoredCertificate {
        pfx_b64: base64::engine::general_purpose::STANDARD.encode(DEMO_PFX),
        password: DEMO_PFX_PASSWORD.into(),
    })
    .map_err(|e| SeedError::Id(e.to_string()))?;
    let certificate = CertificateInfo {
        thumbprint: Thumbprint::parse(&cert.sha1_thumbprint().hex_upper())
            .map_err(|e| SeedError::Id(e.to_string()))?,
        subject: cert.subject().to_string(),
        not_after: cert.not_after(),
    };
    let tenants = plan.tenants.max(1);
    let per_org = if plan.tenants_per_org == 0 {
        TENANTS_PER_ORG
    } else {
        plan.tenants_per_org
    };
    let mut first_org = None;
    let mut orgs = Vec::new();
    for i in 0..tenants {
        if i % per_org == 0 {
            let org = svc
                .create_organization(
                    &format!("Bench org {} {}", i / per_org, uuid::Uuid::new_v4()),
                    &[],
                )
                .await?;
            first_org.get_or_insert(org.id);
            orgs.push(org.id);
        }
        let tid =
            TenantId::parse(&tenant_id(i).to_string()).map_err(|e| SeedError::Id(e.to_string()))?;
        let domain =
            DomainName::parse(&tenant_domain(i)).map_err(|e| SeedError::Id(e.to_string()))?;
        svc.connect_tenant(
            orgs[orgs.len() - 1],
            tid,
            domain,
            Some(&format!("Bench {i}")),
            consentry_domain::Placement::In(&consentry_domain::CloudKey::global()),
        )
        .await?;
    }
    let granted: Vec<GrantedPermission> = APPLICATION_PERMISSIONS
        .iter()
        .map(|p| GrantedPermission {
            name: (*p).to_string(),
            kind: consentry_domain::catalog::PermissionType::Role,
        })
        .collect();
    let tenant_ids = (0..tenants)
        .map(|t| TenantId::parse(&tenant_id(t).to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SeedError::Id(e.to_string()))?;
    let app_ids = (0..tenants)
        .map(|t| AppId::parse(&custom_app_id(t).to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SeedError::Id(e.to_string()))?;
    let template = AppProfile {
        id: ProfileId::new_random(),
        org_id: orgs[0],
        tenant_id: tenant_ids[0],
        cloud: consentry_domain::CloudKey::global(),
        app_type: "custom-azure-app".into(),
        service: "cloud-backup-m365".into(),
        application_id: Some(app_ids[0]),
        consent_method: Some(ConsentMethod::Admin),
        consent_user: None,
        granted_permissions: granted,
        certificate: Some(certificate),
        functions: Vec::new(),
        scan_targets: Vec::new(),
        original_sign_in_ip: None,
        status: ProfileStatus::Valid,
        reason: None,
        last_checked_at: None,
        consented_catalog_version: Some(version),
        refresh_token_redeemed_at: None,
        authorized_at: Some(now),
        created_at: now,
        updated_at: now,
    };
    // Batches of BATCH profiles, `parallel` batches in flight, each one transaction of multi-row
    // INSERTs (`SqlStore::insert_profiles`); every secret is sealed for its own profile by the store.
    let blob = Arc::new(SecretSlice::from(blob));
    let template = Arc::new(template);
    let (tenant_ids, app_ids, orgs) = (Arc::new(tenant_ids), Arc::new(app_ids), Arc::new(orgs));
    let mut tasks = JoinSet::new();
    // SQLite has one writer at a time: batches in flight would only wait on its lock (and time out).
    let parallel = match store.dialect() {
        consentry_store::Dialect::Sqlite => 1,
        consentry_store::Dialect::Postgres => plan.parallel.max(1),
    };
    let mut invalid = 0;
    let mut written = 0;
    let mut next_report = REPORT_EVERY;
    for first in (0..plan.profiles).step_by(BATCH) {
        let last = (first + BATCH).min(plan.profiles);
        invalid += (first..last)
            .filter(|n| plan.invalid_every > 0 && n % plan.invalid_every == 0)
            .count();
        let (store, blob, template) = (store.clone(), blob.clone(), template.clone());
        let (tenant_ids, app_ids, orgs) = (tenant_ids.clone(), app_ids.clone(), orgs.clone());
        tasks.spawn(async move {
            let profiles: Vec<AppProfile> = (first..last)
                .map(|n| {
                    let t = n % tenants;
                    let bad = plan.invalid_every > 0 && n % plan.invalid_every == 0;
                    AppProfile {
                        id: ProfileId::new_random(),
                        org_id: orgs[t / per_org],
                        tenant_id: tenant_ids[t],
                        application_id: Some(app_ids[t]),
                        status: if bad {
                            ProfileStatus::Invalid
                        } else {
                            ProfileStatus::Valid
                        },
                        reason: bad.then_some(StatusReason::ConsentRevoked),
                        ..(*template).clone()
                    }
                })
                .collect();
            let events: Vec<NewHistoryEvent> = profiles
                .iter()
                .map(|p| NewHistoryEvent {
                    evidence: None,
                    profile_id: p.id,
                    at: now,
                    actor: Actor::Operator("bench".into()),
                    kind: EventKind::Created,
                    from_status: None,
                    to_status: Some(p.status),
                    reason: p.reason.clone(),
                    detail: Some("seeded by consentry-bench".into()),
                })
                .collect();
            let secrets = [(SecretKind::ClientCertificate, blob.as_ref())];
            let rows: Vec<NewProfileRows<'_>> = profiles
                .iter()
                .zip(&events)
                .map(|(profile, event)| NewProfileRows {
                    profile,
                    event,
                    secrets: &secrets,
                })
                .collect();
            store.insert_profiles(&rows).await?;
            Ok::<usize, SeedError>(rows.len())
        });
        while tasks.len() >= parallel {
            if let Some(done) = tasks.join_next().await {
                written += done.map_err(|e| SeedError::Id(e.to_string()))??;
            }
            if written >= next_report {
                eprintln!(
                    "seeded {written} profiles in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                next_report += REPORT_EVERY;
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        written += done.map_err(|e| SeedError::Id(e.to_string()))??;
    }
    debug_assert_eq!(written, plan.profiles);
    Ok(Seeded {
        profiles: plan.profiles,
        invalid,
        first_org: first_org.map(|o| o.to_string()).unwrap_or_default(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
