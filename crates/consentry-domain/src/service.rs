//! The domain services: one entry point per use case, shared by the console, the JSON API and the CLI.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use consentry_catalog::Catalog;

use crate::error::DomainError;
use crate::ids::{CloudKey, DomainName, OrgId, ProfileId, TenantId, TenantRef};
use crate::model::{
    Actor, AppProfile, EventKind, HistoryEvent, MAX_PAGE_SIZE, NewHistoryEvent, Organization, Page,
    PageRequest, ProfileFilter, Tenant,
};
use crate::ports::{Clock, Store, StoreError};
use crate::status::{ProfileStatus, StatusReason};

/// The longest name accepted for organizations and tenants.
pub const MAX_NAME_LEN: usize = 200;
/// The most history events returned at once.
pub const MAX_HISTORY: u32 = 1000;

/// What is needed to create an app profile.
#[derive(Debug, Clone)]
pub struct NewProfile {
    /// The tenant, by GUID or verified domain.
    pub tenant: TenantRef,
    /// Catalog key of the app type.
    pub app_type: String,
    /// Catalog key of the service using it; may be omitted when the app type serves one service.
    pub service: Option<String>,
}

/// The domain services over a store, a catalog and a clock.
#[derive(Debug, Clone)]
pub struct Consentry {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
}

fn check_name(field: &'static str, s: &str) -> Result<String, DomainError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if t.chars().count() > MAX_NAME_LEN {
        return Err(DomainError::invalid(
            field,
            format!("is longer than {MAX_NAME_LEN} characters"),
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(t.to_string())
}

/// Where a tenant being connected lives.
#[derive(Clone, Copy)]
pub enum Placement<'a> {
    /// Ask the identity platform (the tenant's OpenID metadata).
    Discover(&'a dyn crate::platform::IdentityPlatform),
    /// The caller knows: the cloud is taken as given (no call to Microsoft).
    In(&'a CloudKey),
}

impl std::fmt::Debug for Placement<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Placement::Discover(_) => f.write_str("Discover"),
            Placement::In(c) => f.debug_tuple("In").field(c).finish(),
        }
    }
}

/// The cloud a tenant lives in, from its OpenID metadata. Unknown to Microsoft: a 400 naming the
/// tenant ID (a typo); a transient failure: refused with "try again", never a guess.
async fn discover_cloud(
    platform: &dyn crate::platform::IdentityPlatform,
    tenant_id: TenantId,
) -> Result<CloudKey, DomainError> {
    use crate::platform::PlatformCause;
    match platform.tenant_cloud(&tenant_id.to_string()).await {
        Ok(found) if found.id == tenant_id => Ok(found.cloud),
        Ok(found) => Err(DomainError::invalid(
            "tenant_id",
            format!(
                "Microsoft's metadata for {tenant_id} names the tenant {}: give the tenant's own ID",
                found.id
            ),
        )),
        Err(e) => Err(match e.cause {
            PlatformCause::TenantNotFound => DomainError::invalid(
                "tenant_id",
                format!(
                    "Microsoft knows no tenant {tenant_id}: check the tenant ID (Entra admin center > Overview)"
                ),
            ),
            PlatformCause::Transient => DomainError::Unavailable(format!(
                "Microsoft could not be asked which cloud tenant {tenant_id} lives in ({}); try again",
                e.message
            )),
            _ => DomainError::invalid(
                "tenant_id",
                format!(
                    "the cloud of tenant {tenant_id} cannot be used: {}",
                    e.message
                ),
            ),
        }),
    }
}

impl Consentry {
    /// Builds the services.
    pub fn new(store: Arc<dyn Store>, catalog: Arc<Catalog>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            catalog,
            clock,
        }
    }

    /// The app-type catalog in force.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The store, for the services of this crate built on this one. Other crates reach storage
    /// through those services; their tests reach it with the `test-store` feature (a dev-dependency
    /// feature: a normal build of the product never has it).
    #[cfg(not(feature = "test-store"))]
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The store, for tests that set up or inspect what the services do not expose (the
    /// `test-store` feature; never on in a normal build).
    #[cfg(feature = "test-store")]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Whether the store answers (the health check): a read of one row.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.store
            .get_organization(OrgId::from_uuid(uuid::Uuid::nil()))
            .await
            .map(|_| ())
    }

    /// The monitor's check schedule and its leases.
    pub fn check_schedule(&self) -> Arc<dyn crate::ports::ScheduleStore> {
        self.store.clone()
    }

    /// Operator accounts and console sessions over this store and clock.
    pub fn accounts(
        &self,
        policy: crate::account::SessionPolicy,
        cost: crate::account::HashCost,
    ) -> crate::account::Accounts {
        crate::account::Accounts::new(self.store.clone(), self.clock.clone(), policy, cost)
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The console's sign-in throttle over the same store (shared by every replica) and clock.
    pub fn sign_in_throttle(&self) -> crate::throttle::SignInThrottle {
        crate::throttle::SignInThrottle::new(self.store.clone(), self.clock.clone())
    }

    /// The audit log over the same store and clock.
    pub fn audit(&self) -> crate::audit::AuditLog {
        crate::audit::AuditLog::new(self.store.clone(), self.clock.clone())
    }

    // ----- organizations -----

    fn check_modules(&self, modules: &[String]) -> Result<BTreeSet<String>, DomainError> {
        let mut out = BTreeSet::new();
        for m in modules {
            let m = m.trim();
            if self.catalog.module(m).is_none() {
                let known: Vec<&str> = self
                    .catalog
                    .modules
                    .iter()
                    .map(|m| m.key.as_str())
                    .collect();
                return Err(DomainError::invalid(
                    "modules",
                    format!("unknown module {m:?}; known modules: {}", known.join(", ")),
                ));
            }
            out.insert(m.to_string());
        }
        Ok(out)
    }

    /// Creates an organization subscribing to `modules` (catalog module keys).
    pub async fn create_organization(
        &self,
        name: &str,
        modules: &[String],
    ) -> Result<Organization, DomainError> {
        let org = Organization {
            id: OrgId::new_random(),
            name: check_name("name", name)?,
            modules: self.check_modules(modules)?,
            services: BTreeSet::new(),
            created_at: self.clock.now(),
        };
        self.store
            .insert_organization(&org)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => DomainError::Conflict(format!(
                    "an organization named {:?} already exists",
                    org.name
                )),
                e => e.into(),
            })?;
        Ok(org)
    }

    /// Reads an organization.
    pub async fn organization(&self, id: OrgId) -> Result<Organization, DomainError> {
        self.store
            .get_organization(id)
            .await?
            .ok_or_else(|| DomainError::NotFound {
                what: "organization",
                id: id.to_string(),
            })
    }

    /// All organizations.
    pub async fn organizations(&self) -> Result<Vec<Organization>, DomainError> {
        Ok(self.store.list_organizations().await?)
    }

    /// Changes the modules an organization subscribes to.
    pub async fn set_organization_modules(
        &self,
        id: OrgId,
        modules: &[String],
    ) -> Result<Organization, DomainError> {
        let mut org = self.organization(id).await?;
        org.modules = self.check_modules(modules)?;
        self.store.update_organization(&org).await?;
        Ok(org)
    }

    /// Changes the services an organization subscribes to (catalog service keys).
    pub async fn set_organization_services(
        &self,
        id: OrgId,
        services: &[String],
    ) -> Result<Organization, DomainError> {
        let mut org = self.organization(id).await?;
        let mut out = BTreeSet::new();
        for s in services.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            if self.catalog.service(s).is_none() {
                return Err(DomainError::invalid(
                    "services",
                    format!(
                        "unknown service {s:?}; the catalog's services are: {}",
                        self.catalog
                            .services
                            .iter()
                            .map(|s| s.key.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            out.insert(s.to_string());
        }
        org.services = out;
        self.store.update_organization(&org).await?;
        Ok(org)
    }

    /// Deletes an organization that has no tenants.
    pub async fn delete_organization(&self, id: OrgId) -> Result<(), DomainError> {
        self.organization(id).await?;
        let tenants = self.store.list_tenants(Some(id)).await?;
        if !tenants.is_empty() {
            return Err(DomainError::Conflict(format!(
                "organization {id} still has {} connected tenant(s); disconnect them first",
                tenants.len()
            )));
        }
        self.store.delete_organization(id).await?;
        Ok(())
    }

    // ----- tenants -----

    /// Connects a Microsoft tenant to an organization, in the cloud `placement` gives: found from the
    /// tenant's OpenID metadata ([`Placement::Discover`]) or given by the caller ([`Placement::In`]).
    pub async fn connect_tenant(
        &self,
        org_id: OrgId,
        tenant_id: TenantId,
        primary_domain: DomainName,
        display_name: Option<&str>,
        placement: Placement<'_>,
    ) -> Result<Tenant, DomainError> {
        self.organization(org_id).await?;
        if self
            .store
            .find_tenant_by_domain(&primary_domain)
            .await?
            .is_some()
        {
            return Err(DomainError::Conflict(format!(
                "a tenant with the domain {primary_domain} is already connected"
            )));
        }
        // Microsoft is asked last, after the local refusals.
        let cloud = match placement {
            Placement::In(cloud) => cloud.clone(),
            Placement::Discover(platform) => {
                if self.store.get_tenant(tenant_id).await?.is_some() {
                    return Err(DomainError::Conflict(format!(
                        "tenant {tenant_id} is already connected"
                    )));
                }
                discover_cloud(platform, tenant_id).await?
            }
        };
        let display_name = match display_name {
            Some(n) => check_name("display_name", n)?,
            None => primary_domain.to_string(),
        };
        let tenant = Tenant {
            id: tenant_id,
            org_id,
            primary_domain,
            display_name,
            cloud,
            created_at: self.clock.now(),
            verified: None,
        };
        self.store
            .insert_tenant(&tenant)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    DomainError::Conflict(format!("tenant {tenant_id} is already connected"))
                }
                e => e.into(),
            })?;
        Ok(tenant)
    }

    /// Finds a tenant by GUID or domain.
    pub async fn tenant(&self, tenant: &TenantRef) -> Result<Tenant, DomainError> {
        let found = match tenant {
            TenantRef::Id(id) => self.store.get_tenant(*id).await?,
            TenantRef::Domain(d) => self.store.find_tenant_by_domain(d).await?,
        };
        found.ok_or_else(|| DomainError::NotFound {
            what: "tenant",
            id: tenant.to_string(),
        })
    }

    /// Tenants of an organization (or all).
    pub async fn tenants(&self, org: Option<OrgId>) -> Result<Vec<Tenant>, DomainError> {
        if let Some(o) = org {
            self.organization(o).await?;
        }
        Ok(self.store.list_tenants(org).await?)
    }

    /// Disconnects a tenant that has no app profiles.
    pub async fn delete_tenant(&self, tenant: &TenantRef) -> Result<(), DomainError> {
        let t = self.tenant(tenant).await?;
        let counts = self
            .store
            .count_profiles(&ProfileFilter {
                tenant_id: Some(t.id),
                ..Default::default()
            })
            .await?;
        let n: u64 = counts.values().sum();
        if n > 0 {
            return Err(DomainError::Conflict(format!(
                "tenant {} still has {n} app profile(s); delete them first",
                t.id
            )));
        }
        self.store.delete_tenant(t.id).await?;
        Ok(())
    }

    // ----- profiles -----

    /// Creates an app profile for a tenant. It starts Invalid ("not yet authorized") until authorized.
    pub async fn create_profile(
        &self,
        new: NewProfile,
        actor: &Actor,
    ) -> Result<AppProfile, DomainError> {
        let tenant = self.tenant(&new.tenant).await?;
        let app_type = self.catalog.app_type(new.app_type.trim()).ok_or_else(|| {
            DomainError::invalid(
                "app_type",
                format!(
                    "unknown app type {:?}; `consentry catalog list` shows the app types",
                    new.app_type
                ),
            )
        })?;
        let service = match new.service.as_deref().map(str::trim) {
            Some(s) => {
                if !app_type.services.iter().any(|x| x == s) {
                    return Err(DomainError::invalid(
                        "service",
                        format!(
                            "app type {} is not used by service {s:?}; it serves: {}",
                            app_type.key,
                            app_type.services.join(", ")
                        ),
                    ));
                }
                s.to_string()
            }
            None if app_type.services.len() == 1 => app_type.services[0].clone(),
            None => {
                return Err(DomainError::invalid(
                    "service",
                    format!(
                        "app type {} serves several services; name one of: {}",
                        app_type.key,
                        app_type.services.join(", ")
                    ),
                ));
            }
        };
        let now = self.clock.now();
        let reason = StatusReason::NotYetAuthorized;
        let profile = AppProfile {
            id: ProfileId::new_random(),
            org_id: tenant.org_id,
            tenant_id: tenant.id,
            cloud: tenant.cloud.clone(),
            app_type: app_type.key.clone(),
            service,
            application_id: None,
            consent_method: None,
            consent_user: None,
            granted_permissions: vec![],
            certificate: None,
            functions: vec![],
            scan_targets: vec![],
            original_sign_in_ip: None,
            status: reason.status(),
            reason: Some(reason.clone()),
            last_checked_at: None,
            consented_catalog_version: None,
            refresh_token_redeemed_at: None,
            authorized_at: None,
            created_at: now,
            updated_at: now,
        };
        let event = NewHistoryEvent {
            evidence: None,
            profile_id: profile.id,
            at: now,
            actor: actor.clone(),
            kind: EventKind::Created,
            from_status: None,
            to_status: Some(profile.status),
            reason: Some(reason),
            detail: Some(format!(
                "{} for {}",
                app_type.display_name, tenant.primary_domain
            )),
        };
        self.store.insert_profile(&profile, event).await?;
        self.audit()
            .record(
                actor,
                Some(profile.org_id),
                crate::audit::AuditAction::ProfileCreated,
                format!("profile:{}", profile.id),
                serde_json::json!({
                    "app_type": profile.app_type,
                    "service": profile.service,
                    "tenant": profile.tenant_id.to_string(),
                }),
            )
            .await;
        Ok(profile)
    }

    /// Reads a profile.
    pub async fn profile(&self, id: ProfileId) -> Result<AppProfile, DomainError> {
        self.store
            .get_profile(id)
            .await?
            .ok_or_else(|| DomainError::NotFound {
                what: "app profile",
                id: id.to_string(),
            })
    }

    /// The sign-in log evidence kept with the profile's reason, when the reason is a refused
    /// sign-in of the consent user (see [`crate::evidence`]); `None` otherwise.
    pub async fn reason_evidence(
        &self,
        profile: &AppProfile,
    ) -> Result<Option<crate::evidence::Evidence>, DomainError> {
        if !profile
            .reason
            .as_ref()
            .is_some_and(crate::status::StatusReason::is_sign_in_failure)
        {
            return Ok(None);
        }
        Ok(self.store.reason_evidence(profile.id).await?)
    }

    /// Lists profiles, one page at a time.
    pub async fn profiles(
        &self,
        filter: &ProfileFilter,
        page: &PageRequest,
    ) -> Result<Page<AppProfile>, DomainError> {
        if page.limit == 0 || page.limit > MAX_PAGE_SIZE {
            return Err(DomainError::invalid(
                "limit",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        if let Some(s) = &filter.search
            && s.chars().count() > MAX_NAME_LEN
        {
            return Err(DomainError::invalid(
                "search",
                format!("is longer than {MAX_NAME_LEN} characters"),
            ));
        }
        for (field, value) in [
            ("search", &filter.search),
            ("service", &filter.service),
            ("app_type", &filter.app_type),
        ] {
            if let Some(v) = value {
                if v.chars().count() > MAX_NAME_LEN {
                    return Err(DomainError::invalid(
                        field,
                        format!("is longer than {MAX_NAME_LEN} characters"),
                    ));
                }
                if v.chars().any(char::is_control) {
                    return Err(DomainError::invalid(
                        field,
                        "must not contain control characters",
                    ));
                }
            }
        }
        self.store
            .list_profiles(filter, page)
            .await
            .map_err(|e| match e {
                StoreError::BadCursor => {
                    DomainError::invalid("after", StoreError::BadCursor.to_string())
                }
                e => e.into(),
            })
    }

    /// Counts profiles by status (health summary).
    pub async fn profile_counts(
        &self,
        filter: &ProfileFilter,
    ) -> Result<BTreeMap<ProfileStatus, u64>, DomainError> {
        Ok(self.store.count_profiles(filter).await?)
    }

    /// Counts profiles by status, each up to `limit` (see [`crate::ports::Store::count_profiles_up_to`]):
    /// for pages answered per request, whose cost must not grow with the number of profiles.
    pub async fn profile_counts_up_to(
        &self,
        filter: &ProfileFilter,
        limit: u64,
    ) -> Result<BTreeMap<ProfileStatus, crate::model::CappedCount>, DomainError> {
        Ok(self.store.count_profiles_up_to(filter, limit).await?)
    }

    /// A profile's history, newest first.
    pub async fn history(
        &self,
        id: ProfileId,
        limit: u32,
    ) -> Result<Vec<HistoryEvent>, DomainError> {
        self.profile(id).await?;
        Ok(self
            .store
            .list_history(id, limit.clamp(1, MAX_HISTORY))
            .await?)
    }

    /// Deletes a profile with its secrets and history. Refused while a scan profile authenticates
    /// with it.
    pub async fn delete_profile(&self, id: ProfileId) -> Result<(), DomainError> {
        if let Some(sp) = self.store.scan_profiles_using(id).await?.first() {
            return Err(DomainError::Conflict(format!(
                "app profile {id} is used by the scan profile {:?} ({}); edit the scan profile to use another app profile first",
                sp.name, sp.id
            )));
        }
        if !self.store.delete_profile(id).await? {
            return Err(DomainError::NotFound {
                what: "app profile",
                id: id.to_string(),
            });
        }
        Ok(())
    }
}
