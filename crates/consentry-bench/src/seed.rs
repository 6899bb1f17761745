//! Seeds a Consentry store with authorized certificate-based profiles across many tenants, through
//! the `Store` port (the same sealing as every write), fast enough for 100k profiles.

use std::sync::Arc;

use base64::Engine as _;
use consentry_domain::catalog::ConsentMethod;
use consentry_domain::reauth::StoredCertificate;
use consentry_domain::{
    Actor, AppId, AppProfile, CertificateInfo, Consentry, DomainName, EventKind, GrantedPermission,
    NewHistoryEvent, ProfileId, ProfileStatus, SecretKind, StatusReason, Store, TenantId,
    Thumbprint,
};
use secrecy::SecretSlice;
use tokio::task::JoinSet;

use crate::scenario::{APPLICATION_PERMISSIONS, custom_app_id, tenant_domain, tenant_id};
use crate::sign::{DEMO_PFX, DEMO_PFX_PASSWORD, demo_certificate};

/// Tenants per organization unless the plan says otherwise.
pub const TENANTS_PER_ORG: usize = 10;

/// What to seed.
#[derive(Debug, Clone, Copy)]
pub struct SeedPlan {
    /// Profiles in all.
    pub profiles: usize,
    /// Tenants they are spread over (round-robin; `bench-0` … `bench-{n-1}`).
    pub tenants: usize,
    /// Every `invalid_every`-th profile is stored invalid (consent revoked); 0 for none.
    pub invalid_every: usize,
    /// Writes in flight.
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
/// directly, are written to `store` (the same database).
pub async fn seed(
    svc: &Consentry,
    store: Arc<dyn Store>,
    plan: SeedPlan,
) -> Result<Seeded, SeedError> {
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
    let blob = Arc::new(blob);
    let granted: Vec<GrantedPermission> = APPLICATION_PERMISSIONS
        .iter()
        .map(|p| GrantedPermission {
            name: (*p).to_string(),
            kind: consentry_domain::catalog::PermissionType::Role,
        })
        .collect();
    let mut tasks = JoinSet::new();
    let parallel = plan.parallel.max(1);
    let mut invalid = 0;
    for n in 0..plan.profiles {
        let t = n % tenants;
        let bad = plan.invalid_every > 0 && n % plan.invalid_every == 0;
        invalid += usize::from(bad);
        let profile = AppProfile {
            id: ProfileId::new_random(),
            org_id: orgs[t / per_org],
            tenant_id: TenantId::parse(&tenant_id(t).to_string())
                .map_err(|e| SeedError::Id(e.to_string()))?,
            cloud: consentry_domain::CloudKey::global(),
            app_type: "custom-azure-app".into(),
            service: "cloud-backup-m365".into(),
            application_id: Some(
                AppId::parse(&custom_app_id(t).to_string())
                    .map_err(|e| SeedError::Id(e.to_string()))?,
            ),
            consent_method: Some(ConsentMethod::Admin),
            consent_user: None,
            granted_permissions: granted.clone(),
            certificate: Some(certificate.clone()),
            functions: Vec::new(),
            scan_targets: Vec::new(),
            original_sign_in_ip: None,
            status: if bad {
                ProfileStatus::Invalid
            } else {
                ProfileStatus::Valid
            },
            reason: bad.then_some(StatusReason::ConsentRevoked),
            last_checked_at: None,
            consented_catalog_version: Some(version),
            refresh_token_redeemed_at: None,
            authorized_at: Some(now),
            created_at: now,
            updated_at: now,
        };
        let store = store.clone();
        let blob = blob.clone();
        tasks.spawn(async move {
            let event = NewHistoryEvent {
                evidence: None,
                profile_id: profile.id,
                at: now,
                actor: Actor::Operator("bench".into()),
                kind: EventKind::Created,
                from_status: None,
                to_status: Some(profile.status),
                reason: profile.reason.clone(),
                detail: Some("seeded by consentry-bench".into()),
            };
            store.insert_profile(&profile, event).await?;
            store
                .put_secret(
                    profile.id,
                    SecretKind::ClientCertificate,
                    &SecretSlice::from(blob.as_ref().clone()),
                )
                .await
        });
        while tasks.len() >= parallel {
            if let Some(done) = tasks.join_next().await {
                done.map_err(|e| SeedError::Id(e.to_string()))??;
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| SeedError::Id(e.to_string()))??;
    }
    Ok(Seeded {
        profiles: plan.profiles,
        invalid,
        first_org: first_org.map(|o| o.to_string()).unwrap_or_default(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
