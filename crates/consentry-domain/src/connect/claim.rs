//! A verified claim on a tenant: connect it to the organization, and what it does to other claims.
//! A verified claim is never blocked by another organization's unverified one (a tenant connected
//! by typing its ID): that claim is superseded — its tenant and its never-authorized app profiles
//! removed, with an audit entry in that organization naming no other organization. A tenant
//! verified by another organization is refused with a message naming no organization.

use consentry_catalog::Catalog;

use super::{ConnectOutcome, explain};
use crate::audit::AuditAction;
use crate::error::DomainError;
use crate::ids::DomainName;
use crate::model::{
    Actor, Organization, PageRequest, ProfileFilter, Tenant, TenantVerification, VerifiedBy,
};
use crate::platform::OrganizationFacts;
use crate::ports::PendingConnection;
use crate::service::Consentry;

/// An app type offered for a newly connected tenant ("Create selected app profiles").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedAppType {
    /// Catalog key.
    pub key: String,
    /// Its name.
    pub display_name: String,
    /// The service it is created for.
    pub service: String,
    /// The service's name.
    pub service_name: String,
    /// Checked in the form: the organization subscribes to the service.
    pub preselected: bool,
}

/// The app types of the services the organization subscribes to, checked — or, when it subscribes
/// to none, the catalog's every app type, none checked — one per (app type, service), leaving out
/// custom-app types (they need the customer's own app and certificate, given when re-authorizing).
pub(super) fn offer(catalog: &Catalog, org: &Organization) -> Vec<OfferedAppType> {
    let mut offered = Vec::new();
    let subscribed = !org.services.is_empty();
    for service in &catalog.services {
        if subscribed && !org.services.contains(&service.key) {
            continue;
        }
        for app in catalog.app_types_for_service(&service.key) {
            if app.custom_app {
                continue;
            }
            offered.push(OfferedAppType {
                key: app.key.clone(),
                display_name: app.display_name.clone(),
                service: service.key.clone(),
                service_name: service.name.clone(),
                preselected: subscribed,
            });
        }
    }
    offered
}

/// Connects the tenant Graph described to the pending connection's organization, verified.
pub(super) async fn claim_verified(
    core: &Consentry,
    pending: &PendingConnection,
    facts: OrganizationFacts,
    upn: &str,
) -> Result<ConnectOutcome, DomainError> {
    let org = pending.org_id;
    let failed = |f: explain::Failure| ConnectOutcome::Failed {
        org_id: org,
        message: f.message,
        remediation: f.remediation,
    };
    let Some(domain) = facts.verified_domains.first().cloned() else {
        return Ok(failed(explain::no_domain()));
    };
    let verification = TenantVerification {
        at: core.clock().now(),
        by: VerifiedBy::Consent,
    };
    let store = core.store();
    if let Some(existing) = store.get_tenant(facts.id).await? {
        if existing.org_id == org {
            let changed = store.verify_tenant(existing.id, &verification).await?;
            if changed {
                audit_verified(core, &pending.started_by, &existing, upn).await;
            }
            let tenant = store.get_tenant(existing.id).await?.unwrap_or(existing);
            return Ok(ConnectOutcome::Connected {
                tenant,
                already: true,
                upn: upn.to_string(),
            });
        }
        if existing.verified.is_some() || !supersede(core, &existing).await? {
            return Ok(failed(explain::claimed_elsewhere()));
        }
    }
    // A typed claim elsewhere may hold the domain under another (wrong) tenant ID.
    if let Some(existing) = store.find_tenant_by_domain(&domain).await?
        && existing.id != facts.id
        && (existing.verified.is_some() || !supersede(core, &existing).await?)
    {
        return Ok(failed(explain::claimed_elsewhere()));
    }
    let tenant = Tenant {
        id: facts.id,
        org_id: org,
        primary_domain: domain,
        display_name: display_name(&facts),
        created_at: core.clock().now(),
        verified: Some(verification),
        // Connected through Consentry's own app at the global authority, which refuses a tenant
        // of a national cloud: a tenant connected by consent lives in the global cloud.
        cloud: crate::ids::CloudKey::global(),
    };
    store.insert_tenant(&tenant).await?;
    core.audit()
        .record(
            &pending.started_by,
            Some(org),
            AuditAction::TenantCreated,
            format!("tenant:{}", tenant.id),
            serde_json::json!({
                "domain": tenant.primary_domain.to_string(),
                "verified_by": "consent",
                "consent_user": upn,
            }),
        )
        .await;
    Ok(ConnectOutcome::Connected {
        tenant,
        already: false,
        upn: upn.to_string(),
    })
}

fn display_name(facts: &OrganizationFacts) -> String {
    let name = facts.display_name.trim();
    if name.is_empty() {
        facts
            .verified_domains
            .first()
            .map(DomainName::to_string)
            .unwrap_or_default()
    } else {
        name.chars().take(200).collect()
    }
}

async fn audit_verified(core: &Consentry, actor: &Actor, tenant: &Tenant, upn: &str) {
    core.audit()
        .record(
            actor,
            Some(tenant.org_id),
            AuditAction::TenantVerified,
            format!("tenant:{}", tenant.id),
            serde_json::json!({ "by": "consent", "consent_user": upn }),
        )
        .await;
}

/// Removes another organization's unverified claim: its never-authorized profiles, then the
/// tenant. `false` (nothing removed) if a profile of it was ever authorized — a consent in the
/// tenant that did not verify it (kept rather than lost; the claim is then refused).
async fn supersede(core: &Consentry, tenant: &Tenant) -> Result<bool, DomainError> {
    let store = core.store();
    let filter = ProfileFilter {
        tenant_id: Some(tenant.id),
        ..ProfileFilter::default()
    };
    let mut profiles = Vec::new();
    let mut page = PageRequest {
        after: None,
        limit: crate::model::MAX_PAGE_SIZE,
    };
    loop {
        let got = store.list_profiles(&filter, &page).await?;
        profiles.extend(got.items);
        match got.next_cursor {
            Some(c) => page.after = Some(c),
            None => break,
        }
    }
    if profiles.iter().any(|p| p.authorized_at.is_some()) {
        return Ok(false);
    }
    for p in &profiles {
        store.delete_profile(p.id).await?;
    }
    store.delete_tenant(tenant.id).await?;
    // The entry is the superseded organization's; it names no other organization.
    core.audit()
        .record(
            &Actor::System,
            Some(tenant.org_id),
            AuditAction::TenantSuperseded,
            format!("tenant:{}", tenant.id),
            serde_json::json!({
                "domain": tenant.primary_domain.to_string(),
                "removed_profiles": profiles.len(),
                "why": "an administrator of the tenant connected it by consent; this connection was typed and never verified",
            }),
        )
        .await;
    Ok(true)
}
