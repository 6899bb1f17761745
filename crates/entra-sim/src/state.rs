//! The live state: the directory, issued codes and refresh tokens, sign-in flows in progress, the
//! adjustable clock and the fault rules. All directory semantics (consent, grants, conditional
//! access, user state) live here so that every endpoint applies them the same way.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use serde::Serialize;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::aad::AadError;
use crate::faults::FaultRule;
use crate::model::{
    App, AppRoleAssignment, CaAction, OAuth2PermissionGrant, ResourceApi, ServicePrincipal,
    Settings, Tenant, User,
};
use crate::scenario::{Scenario, split_permission};
use crate::wellknown::{OIDC_SCOPES, ROLE_GLOBAL_ADMIN, ROLE_PRIVILEGED_ROLE_ADMIN, synthetic_id};

mod applications;

/// An authorization code (single use, ~10 minutes).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AuthCode {
    pub client_id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub scopes: Vec<String>,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub nonce: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    pub redeemed: bool,
    pub sign_in_ip: IpAddr,
    pub mfa_done: bool,
}

/// What a refresh token stands for. The token string itself is the key of the map.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub(crate) struct RefreshGrant {
    pub client_id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub scopes: Vec<String>,
    /// Time of the interactive sign-in the grant comes from (compared with TokensValidFrom).
    #[serde(with = "time::serde::rfc3339")]
    pub auth_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_used: OffsetDateTime,
    /// IP address of the original interactive sign-in.
    pub sign_in_ip: IpAddr,
    pub mfa_done: bool,
    /// Issued to a public client (no credential): refreshed without one.
    #[serde(default)]
    pub public_client: bool,
}

/// Which page flow a browser is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum FlowKind {
    Authorize,
    AdminConsent,
    LegacyAdminConsent,
    /// The device code verification page: signs the user in for a device (see `device`).
    DeviceCode,
}

/// A sign-in flow in progress (the hidden `flow` field of the pages).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Flow {
    pub kind: FlowKind,
    /// Tenant named in the path (`None` for `common` / `organizations`).
    pub path_tenant: Option<Uuid>,
    pub client_id: Uuid,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub response_mode: String,
    pub prompt: Option<String>,
    pub login_hint: Option<String>,
    /// (tenant, user) whose password was checked; MFA may still be due.
    pub pending_user: Option<(Uuid, Uuid)>,
    /// Signed-in (tenant, user), all factors done.
    pub user: Option<(Uuid, Uuid)>,
    pub mfa_done: bool,
    pub sign_in_ip: Option<IpAddr>,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// The user code entered on the verification page (device code flows only).
    pub device_user_code: Option<String>,
}

/// What kind of sign-in a log entry records (the beta API's `signInEventTypes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum SignInEventType {
    /// A user signing in on the sign-in pages.
    InteractiveUser,
    /// A client redeeming a user's code or refresh token (no user present).
    NonInteractiveUser,
    /// An app signing in as itself (client credentials).
    ServicePrincipal,
}

impl SignInEventType {
    /// The name in `signInEventTypes` and `$filter`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InteractiveUser => "interactiveUser",
            Self::NonInteractiveUser => "nonInteractiveUser",
            Self::ServicePrincipal => "servicePrincipal",
        }
    }
}

/// A conditional access policy as evaluated for one sign-in (`appliedConditionalAccessPolicies`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct AppliedPolicy {
    pub id: Uuid,
    pub display_name: String,
    /// `success`, `failure`, `notApplied` or `notEnabled`.
    pub result: &'static str,
    /// `Block`, `Mfa`, `CompliantDevice`, `DomainJoinedDevice`, `ApprovedApplication`.
    pub grant_control: &'static str,
}

/// Conditional access evaluated for one sign-in: the error it raises, if any, and every policy's
/// result.
#[derive(Debug, Default)]
pub(crate) struct CaEvaluation {
    pub error: Option<AadError>,
    pub policies: Vec<AppliedPolicy>,
}

impl CaEvaluation {
    /// `conditionalAccessStatus`: `failure` when a policy failed, `success` when one applied and
    /// was satisfied, `notApplied` otherwise.
    pub fn status(&self) -> &'static str {
        if self.policies.iter().any(|p| p.result == "failure") {
            "failure"
        } else if self.policies.iter().any(|p| p.result == "success") {
            "success"
        } else {
            "notApplied"
        }
    }
}

/// One entry of the sign-in logs (`GET /auditLogs/signIns`): every sign-in, code or refresh-token
/// redemption and client-credentials request the simulator answers for a known tenant and app,
/// failures included.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SignInRecord {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    pub tenant_id: Uuid,
    pub app_id: Uuid,
    pub app_display_name: String,
    /// The user (object ID, UPN, display name); `None` for a service principal sign-in.
    pub user: Option<(Uuid, String, String)>,
    pub ip: IpAddr,
    pub event_type: SignInEventType,
    /// 0 on success, else the AADSTS code.
    pub error_code: u32,
    pub failure_reason: Option<String>,
    pub ca_status: &'static str,
    pub policies: Vec<AppliedPolicy>,
    pub resource_display_name: String,
    pub resource_id: Uuid,
    pub correlation_id: Uuid,
}

/// How many sign-in log entries the simulator keeps (the oldest are dropped first).
pub(crate) const SIGN_IN_LOG_CAPACITY: usize = 50_000;

/// A requested scope, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScopeRef {
    Oidc(String),
    /// `{resource}/.default`
    Default(usize),
    /// (resource index, value)
    Named(usize, String),
}

/// What a consent grants: delegated scopes per resource and application roles.
#[derive(Debug, Default)]
struct ConsentPlan {
    delegated: Vec<(usize, Vec<String>)>,
    roles: Vec<(usize, String)>,
}

impl ConsentPlan {
    fn delegate(&mut self, r: usize, v: String) {
        match self.delegated.iter_mut().find(|(x, _)| *x == r) {
            Some((_, vs)) => {
                if !vs.contains(&v) {
                    vs.push(v);
                }
            }
            None => self.delegated.push((r, vec![v])),
        }
    }
}

/// The whole simulator state. Its `Debug` leaves out codes and refresh tokens (they are bearer
/// secrets) and shows only how many there are.
pub(crate) struct State {
    /// Base URL of the simulator (`https://127.0.0.1:PORT`).
    pub base: String,
    pub settings: Settings,
    pub tenants: Vec<Tenant>,
    pub apps: Vec<App>,
    /// Owners of app registrations (user or service principal object IDs) by client ID: the
    /// creators of registrations made through Graph.
    pub app_owners: HashMap<Uuid, Vec<Uuid>>,
    /// End dates set by the control API on certificates (by keyId), earlier than the certificates'
    /// own: a certificate close to expiry.
    pub certificate_end_dates: HashMap<Uuid, OffsetDateTime>,
    pub resources: Vec<ResourceApi>,
    pub clock_offset: Duration,
    pub codes: HashMap<String, AuthCode>,
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    pub flows: HashMap<String, Flow>,
    /// Device codes (RFC 8628) by `device_code`; see `device`.
    pub device_codes: HashMap<String, crate::device::DeviceCode>,
    pub faults: Vec<FaultRule>,
    /// A defect put into every ID token issued while set (not saved with the state).
    pub id_token_fault: Option<crate::faults::IdTokenFault>,
    /// Token requests received since start, by (tenant ID, client ID, grant type), whatever their
    /// outcome. Counted only for a known tenant and app; not persisted.
    pub token_requests: HashMap<(Uuid, Uuid, String), u64>,
    /// HTTP exchanges with Graph, by (tenant ID, client ID) of the token: a direct request and a
    /// whole `$batch` count once each (round trips, not the requests a batch carries). Counted
    /// only for a valid token; not persisted.
    pub graph_exchanges: HashMap<(Uuid, Uuid), u64>,
    /// The throttling buckets and counts (`throttle`; not persisted).
    pub throttle: crate::throttle::Limiter,
    /// The sign-in logs, oldest first (not persisted; at most [`SIGN_IN_LOG_CAPACITY`]).
    pub sign_ins: std::collections::VecDeque<SignInRecord>,
    /// How many of the oldest entries were dropped (so an entry's sequence number, its position
    /// since start, stays stable for paging).
    pub sign_ins_dropped: u64,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("base", &self.base)
            .field("tenants", &self.tenants.len())
            .field("apps", &self.apps.len())
            .field("clock_offset", &self.clock_offset)
            .field("codes", &self.codes.len())
            .field("refresh_tokens", &self.refresh_tokens.len())
            .field("flows", &self.flows.len())
            .field("device_codes", &self.device_codes.len())
            .field("faults", &self.faults)
            .field("id_token_fault", &self.id_token_fault)
            .field("sign_ins", &self.sign_ins.len())
            .finish()
    }
}

impl State {
    /// Builds the state from a validated scenario: service principals for every resource API in every
    /// tenant, each app's service principal in its home tenant, and the scenario's pre-consents.
    pub fn new(scenario: Scenario, base: &str) -> Self {
        let mut st = Self {
            base: base.to_owned(),
            settings: scenario.settings,
            tenants: scenario.tenants,
            apps: scenario.apps,
            app_owners: HashMap::new(),
            certificate_end_dates: HashMap::new(),
            resources: scenario.resources,
            clock_offset: Duration::ZERO,
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            flows: HashMap::new(),
            device_codes: HashMap::new(),
            faults: scenario.faults,
            id_token_fault: None,
            token_requests: HashMap::new(),
            graph_exchanges: HashMap::new(),
            throttle: crate::throttle::Limiter::default(),
            sign_ins: std::collections::VecDeque::new(),
            sign_ins_dropped: 0,
        };
        let now = st.now();
        let microsoft_tenant =
            Uuid::parse_str(crate::wellknown::MICROSOFT_SERVICES_TENANT).unwrap_or_default();
        for t in 0..st.tenants.len() {
            for r in 0..st.resources.len() {
                let (app_id, name) = (st.resources[r].app_id, st.resources[r].display_name.clone());
                let tid = st.tenants[t].id;
                if !st.tenants[t]
                    .service_principals
                    .iter()
                    .any(|s| s.app_id == app_id)
                {
                    st.tenants[t].service_principals.push(ServicePrincipal {
                        id: synthetic_id("sp", &format!("{tid}/{app_id}")),
                        app_id,
                        display_name: name,
                        app_owner_organization_id: microsoft_tenant,
                        created_date_time: now,
                    });
                }
            }
        }
        for a in 0..st.apps.len() {
            let client_id = st.apps[a].client_id;
            if let Some(home) = st.tenant_idx(&st.apps[a].home_tenant.clone()) {
                st.ensure_sp(home, client_id);
            }
        }
        for t in 0..st.tenants.len() {
            for client_id in st.tenants[t].preconsented_apps.clone() {
                st.admin_consent(t, client_id, None);
            }
        }
        st
    }

    /// Rebuilds a saved state (see `persist`).
    #[allow(clippy::too_many_arguments)]
    pub fn resume(
        base: &str,
        settings: Settings,
        tenants: Vec<Tenant>,
        apps: Vec<App>,
        app_owners: HashMap<Uuid, Vec<Uuid>>,
        certificate_end_dates: HashMap<Uuid, OffsetDateTime>,
        resources: Vec<ResourceApi>,
        clock_offset: Duration,
        refresh_tokens: HashMap<String, RefreshGrant>,
        faults: Vec<FaultRule>,
    ) -> Self {
        Self {
            base: base.to_owned(),
            settings,
            tenants,
            apps,
            app_owners,
            certificate_end_dates,
            resources,
            clock_offset,
            codes: HashMap::new(),
            refresh_tokens,
            flows: HashMap::new(),
            device_codes: HashMap::new(),
            faults,
            id_token_fault: None,
            token_requests: HashMap::new(),
            graph_exchanges: HashMap::new(),
            throttle: crate::throttle::Limiter::default(),
            sign_ins: std::collections::VecDeque::new(),
            sign_ins_dropped: 0,
        }
    }

    /// The simulator's clock (real time plus the offset the control API advanced it by).
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.clock_offset
    }

    /// Finds a tenant by GUID or verified domain.
    pub fn tenant_idx(&self, segment: &str) -> Option<usize> {
        // A GUID is compared as a GUID: cheap even with thousands of tenants.
        if let Ok(id) = Uuid::parse_str(segment) {
            return self.tenant_by_id(id);
        }
        self.tenants.iter().position(|t| {
            t.id.to_string().eq_ignore_ascii_case(segment)
                || t.domains.iter().any(|d| d.eq_ignore_ascii_case(segment))
        })
    }

    /// Finds a tenant by ID.
    pub fn tenant_by_id(&self, id: Uuid) -> Option<usize> {
        self.tenants.iter().position(|t| t.id == id)
    }

    /// Finds an app registration by client ID.
    pub fn app(&self, client_id: Uuid) -> Option<&App> {
        self.apps.iter().find(|a| a.client_id == client_id)
    }

    /// Whether the app may be used in tenant `tenant_id`: multi-tenant apps in every tenant of their
    /// home tenant's cloud (an app registration lives in one cloud; a national cloud needs its own),
    /// single-tenant apps only in their home tenant.
    pub fn app_usable_in(&self, client_id: Uuid, tenant_id: Uuid) -> bool {
        let Some(app) = self.app(client_id) else {
            return false;
        };
        if crate::scenario::is_first_party(app) {
            return self.tenant_by_id(tenant_id).is_some();
        }
        let Some(home) = self.tenant_idx(&app.home_tenant) else {
            return false;
        };
        if app.sign_in_audience == crate::model::SignInAudience::AzureADMyOrg {
            return self.tenants[home].id == tenant_id;
        }
        self.tenant_by_id(tenant_id)
            .is_some_and(|t| self.tenants[t].cloud == self.tenants[home].cloud)
    }

    /// Finds a user (deleted ones included) by UPN or object ID, in any tenant.
    pub fn find_user(&self, r: &str) -> Option<(usize, usize)> {
        self.tenants.iter().enumerate().find_map(|(t, ten)| {
            ten.users
                .iter()
                .position(|u| {
                    u.upn.eq_ignore_ascii_case(r) || u.id.to_string().eq_ignore_ascii_case(r)
                })
                .map(|u| (t, u))
        })
    }

    /// A user by object ID in a tenant.
    pub fn user(&self, t: usize, id: Uuid) -> Option<&User> {
        self.tenants[t].users.iter().find(|u| u.id == id)
    }

    /// The service principal of `app_id` in tenant `t`.
    pub fn sp(&self, t: usize, app_id: Uuid) -> Option<&ServicePrincipal> {
        self.tenants[t]
            .service_principals
            .iter()
            .find(|s| s.app_id == app_id)
    }

    /// The service principal of resource `r` in tenant `t` (always present).
    pub fn resource_sp(&self, t: usize, r: usize) -> Uuid {
        let app_id = self.resources[r].app_id;
        self.sp(t, app_id).map_or_else(Uuid::nil, |s| s.id)
    }

    /// Creates the app's service principal in tenant `t` if it is missing; returns its object ID.
    pub fn ensure_sp(&mut self, t: usize, client_id: Uuid) -> Uuid {
        if let Some(sp) = self.sp(t, client_id) {
            return sp.id;
        }
        let now = self.now();
        let (name, owner) = match self.app(client_id) {
            Some(app) => {
                let owner = self
                    .tenant_idx(&app.home_tenant)
                    .map(|h| self.tenants[h].id)
                    .or_else(|| Uuid::parse_str(&app.home_tenant).ok());
                (app.display_name.clone(), owner.unwrap_or_default())
            }
            None => (client_id.to_string(), Uuid::nil()),
        };
        let id = Uuid::new_v4();
        self.tenants[t].service_principals.push(ServicePrincipal {
            id,
            app_id: client_id,
            display_name: name,
            app_owner_organization_id: owner,
            created_date_time: now,
        });
        id
    }

    /// Resolves the space-separated `scope` parameter.
    pub fn parse_scopes(&self, scopes: &[String]) -> Result<Vec<ScopeRef>, String> {
        scopes
            .iter()
            .map(|s| {
                if OIDC_SCOPES.contains(&s.as_str()) {
                    return Ok(ScopeRef::Oidc(s.clone()));
                }
                let (r, value) = split_permission(&self.resources, s).ok_or_else(|| s.clone())?;
                if value == ".default" {
                    return Ok(ScopeRef::Default(r));
                }
                if !s.contains('/')
                    && !self.resources[r]
                        .permissions
                        .iter()
                        .any(|p| p.value == value)
                {
                    // An unknown short-form scope is not a Graph permission.
                    return Err(s.clone());
                }
                Ok(ScopeRef::Named(r, value))
            })
            .collect()
    }

    /// The app's registered delegated permission values for resource `r`.
    pub fn registered_delegated(&self, app: &App, r: usize) -> Vec<String> {
        app.delegated
            .iter()
            .filter_map(|p| split_permission(&self.resources, p))
            .filter(|(idx, _)| *idx == r)
            .map(|(_, v)| v)
            .collect()
    }

    /// The app's registered application permissions as (resource index, value).
    pub fn registered_application(&self, app: &App) -> Vec<(usize, String)> {
        app.application
            .iter()
            .filter_map(|p| split_permission(&self.resources, p))
            .collect()
    }

    /// Delegated scopes the user may use for `client_id` on resource `r` in tenant `t`
    /// (AllPrincipals grants plus the user's own Principal grant).
    pub fn consented_scopes(
        &self,
        t: usize,
        client_id: Uuid,
        r: usize,
        user: Uuid,
    ) -> BTreeSet<String> {
        let Some(client_sp) = self.sp(t, client_id).map(|s| s.id) else {
            return BTreeSet::new();
        };
        let resource_sp = self.resource_sp(t, r);
        self.tenants[t]
            .oauth2_permission_grants
            .iter()
            .filter(|g| g.client_id == client_sp && g.resource_id == resource_sp)
            .filter(|g| g.consent_type == "AllPrincipals" || g.principal_id == Some(user))
            .flat_map(|g| {
                g.scope
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Whether the app has any grant (delegated or application) in tenant `t`.
    pub fn has_any_consent(&self, t: usize, client_id: Uuid, user: Uuid) -> bool {
        let Some(client_sp) = self.sp(t, client_id).map(|s| s.id) else {
            return false;
        };
        let ten = &self.tenants[t];
        ten.oauth2_permission_grants.iter().any(|g| {
            g.client_id == client_sp
                && (g.consent_type == "AllPrincipals" || g.principal_id == Some(user))
        })
    }

    /// Adds `scopes` to the grant (client, resource, consent type, principal), creating it if needed.
    pub fn grant_delegated(
        &mut self,
        t: usize,
        client_sp: Uuid,
        r: usize,
        principal: Option<Uuid>,
        scopes: &[String],
    ) {
        if scopes.is_empty() {
            return;
        }
        let resource_sp = self.resource_sp(t, r);
        let consent_type = if principal.is_some() {
            "Principal"
        } else {
            "AllPrincipals"
        };
        let grants = &mut self.tenants[t].oauth2_permission_grants;
        let existing = grants.iter_mut().find(|g| {
            g.client_id == client_sp
                && g.resource_id == resource_sp
                && g.consent_type == consent_type
                && g.principal_id == principal
        });
        match existing {
            Some(g) => {
                let mut all: Vec<String> = g.scope.split_whitespace().map(str::to_owned).collect();
                for s in scopes {
                    if !all.contains(s) {
                        all.push(s.clone());
                    }
                }
                g.scope = all.join(" ");
            }
            None => grants.push(OAuth2PermissionGrant {
                id: crate::crypto::random_token(32),
                client_id: client_sp,
                consent_type: consent_type.to_owned(),
                principal_id: principal,
                resource_id: resource_sp,
                scope: scopes.join(" "),
            }),
        }
    }

    /// Assigns application permission `value` of resource `r` to the client service principal.
    pub fn assign_app_role(&mut self, t: usize, client_sp: Uuid, r: usize, value: &str) {
        let Some(role_id) = self.resources[r]
            .permissions
            .iter()
            .find(|p| p.value == value)
            .and_then(|p| p.role_id)
        else {
            return;
        };
        let resource_sp = self.resource_sp(t, r);
        let now = self.now();
        let principal_name = self.tenants[t]
            .service_principals
            .iter()
            .find(|s| s.id == client_sp)
            .map(|s| s.display_name.clone())
            .unwrap_or_default();
        let resource_name = self.resources[r].display_name.clone();
        let list = &mut self.tenants[t].app_role_assignments;
        if list.iter().any(|a| {
            a.principal_id == client_sp && a.app_role_id == role_id && a.resource_id == resource_sp
        }) {
            return;
        }
        list.push(AppRoleAssignment {
            id: crate::crypto::random_token(32),
            app_role_id: role_id,
            principal_id: client_sp,
            principal_display_name: principal_name,
            resource_id: resource_sp,
            resource_display_name: resource_name,
            created_date_time: now,
        });
    }

    /// Tenant-wide admin consent for the app: creates the service principal, an AllPrincipals grant
    /// per resource for the delegated scopes and appRoleAssignments for the application permissions.
    /// `requested` = the scopes of the request (`None` = everything registered, as `/.default` and the
    /// legacy endpoint ask). Returns the granted scopes as full strings.
    pub fn admin_consent(
        &mut self,
        t: usize,
        client_id: Uuid,
        requested: Option<&[ScopeRef]>,
    ) -> Vec<String> {
        let Some(app) = self.app(client_id).cloned() else {
            return Vec::new();
        };
        let client_sp = self.ensure_sp(t, client_id);
        let mut granted = Vec::new();
        let mut plan = ConsentPlan::default();
        match requested {
            None => self.plan_everything(&app, None, &mut plan),
            Some(list) => {
                for s in list {
                    match s {
                        ScopeRef::Default(r) => self.plan_everything(&app, Some(*r), &mut plan),
                        ScopeRef::Named(r, v) => plan.delegate(*r, v.clone()),
                        ScopeRef::Oidc(v) if v != "offline_access" => {
                            plan.delegate(self.graph_idx(), v.clone())
                        }
                        ScopeRef::Oidc(_) => {}
                    }
                }
            }
        }
        let ConsentPlan { delegated, roles } = plan;
        for (r, values) in delegated {
            self.grant_delegated(t, client_sp, r, None, &values);
            granted.extend(values.iter().map(|v| self.full_scope(r, v)));
        }
        for (r, v) in roles {
            self.assign_app_role(t, client_sp, r, &v);
        }
        granted
    }

    fn plan_everything(&self, app: &App, only: Option<usize>, plan: &mut ConsentPlan) {
        for r in 0..self.resources.len() {
            if only.is_some_and(|o| o != r) {
                continue;
            }
            for v in self.registered_delegated(app, r) {
                plan.delegate(r, v);
            }
        }
        for (r, v) in self.registered_application(app) {
            if only.is_none_or(|o| o == r) && !plan.roles.contains(&(r, v.clone())) {
                plan.roles.push((r, v));
            }
        }
    }

    /// `User.Read` for Graph and OIDC scopes, `{uri}/{value}` for other resources.
    pub fn full_scope(&self, r: usize, value: &str) -> String {
        if r == self.graph_idx() || OIDC_SCOPES.contains(&value) {
            value.to_owned()
        } else {
            format!(
                "{}/{value}",
                self.resources[r].identifier_uri.trim_end_matches('/')
            )
        }
    }

    /// Index of Microsoft Graph among the resources.
    pub fn graph_idx(&self) -> usize {
        self.resources
            .iter()
            .position(|r| r.app_id.to_string() == crate::wellknown::GRAPH_APP_ID)
            .unwrap_or(0)
    }

    /// Application permissions granted to the app in tenant `t` on resource `r`.
    pub fn granted_roles(&self, t: usize, client_id: Uuid, r: usize) -> Vec<String> {
        let Some(client_sp) = self.sp(t, client_id).map(|s| s.id) else {
            return Vec::new();
        };
        let resource_sp = self.resource_sp(t, r);
        self.tenants[t]
            .app_role_assignments
            .iter()
            .filter(|a| a.principal_id == client_sp && a.resource_id == resource_sp)
            .filter_map(|a| {
                self.resources[r]
                    .permissions
                    .iter()
                    .find(|p| p.role_id == Some(a.app_role_id))
                    .map(|p| p.value.clone())
            })
            .collect()
    }

    /// Whether the user may grant tenant-wide consent (Global or Privileged Role Administrator).
    pub fn is_consent_admin(user: &User) -> bool {
        user.roles
            .iter()
            .any(|r| r == ROLE_GLOBAL_ADMIN || r == ROLE_PRIVILEGED_ROLE_ADMIN)
    }

    /// Evaluates the tenant's conditional access policies for a sign-in of `user` into `client_id`
    /// from `ip`, with each policy's result as the sign-in logs show them
    /// (`appliedConditionalAccessPolicies`). The first blocking policy in order decides the error
    /// (block wins over MFA); a required MFA not done is the error only when no policy blocks.
    pub fn evaluate_ca_detailed(
        &self,
        t: usize,
        user: &User,
        client_id: Uuid,
        ip: IpAddr,
        mfa_done: bool,
        interactive: bool,
    ) -> CaEvaluation {
        let mut mfa_needed = false;
        let mut out = CaEvaluation::default();
        let tid = self.tenants[t].id;
        for p in &self.tenants[t].ca_policies {
            let grant_control = match p.action {
                CaAction::Block => "Block",
                CaAction::RequireMfa => "Mfa",
                CaAction::RequireCompliantDevice => "CompliantDevice",
                CaAction::RequireDomainJoinedDevice => "DomainJoinedDevice",
                CaAction::RequireApprovedClientApp => "ApprovedApplication",
            };
            let mut applied = AppliedPolicy {
                id: synthetic_id("ca-policy", &format!("{tid}/{}", p.name)),
                display_name: p.name.clone(),
                result: "notApplied",
                grant_control,
            };
            let user_in_scope =
                p.users.is_empty() || p.users.iter().any(|u| u == &user.id.to_string());
            let app_in_scope = p.apps.is_empty() || p.apps.contains(&client_id);
            let trusted = p.allowed_ranges.iter().any(|n| n.contains(&ip));
            if !p.enabled {
                applied.result = "notEnabled";
            } else if user_in_scope && app_in_scope && !trusted {
                let error = match p.action {
                    CaAction::Block => Some(AadError::new(
                        53003,
                        "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
                        &self.settings,
                    )),
                    CaAction::RequireMfa => {
                        mfa_needed = true;
                        None
                    }
                    // Device and client-app controls: see `CaAction::RequireCompliantDevice`.
                    _ if interactive => None,
                    CaAction::RequireCompliantDevice => Some(AadError::new(
                        53000,
                        "Device is not in required device state: compliant. Conditional Access policy requires a compliant device, and the device is not compliant. The user must enroll their device with an approved MDM provider like Intune.",
                        &self.settings,
                    )),
                    CaAction::RequireDomainJoinedDevice => Some(AadError::new(
                        53001,
                        "Device is not in required device state: domain_joined. Conditional Access policy requires a domain joined device, and the device is not domain joined. Have the user use a domain joined device.",
                        &self.settings,
                    )),
                    CaAction::RequireApprovedClientApp => Some(AadError::new(
                        53002,
                        "The application used isn't an approved application for Conditional Access. User needs to use one of the apps from the list of approved applications to use in order to get access.",
                        &self.settings,
                    )),
                };
                let satisfied = match p.action {
                    CaAction::RequireMfa => mfa_done,
                    _ => error.is_none(),
                };
                applied.result = if satisfied { "success" } else { "failure" };
                if out.error.is_none() {
                    out.error = error;
                }
            }
            out.policies.push(applied);
        }
        if out.error.is_none() && mfa_needed && !mfa_done {
            out.error = Some(self.mfa_error());
        }
        out
    }

    /// The pending device code whose user code is `typed`.
    pub fn pending_device_code(
        &self,
        typed: &str,
    ) -> Result<&crate::device::DeviceCode, crate::device::UserCodeProblem> {
        let code = crate::device::normalize_user_code(typed);
        let lifetime = self.settings.device_code.lifetime_secs;
        let found = self
            .device_codes
            .values()
            .find(|d| !code.is_empty() && d.user_code == code)
            .ok_or(crate::device::UserCodeProblem::Unknown)?;
        if found.expired(self.now(), lifetime) {
            return Err(crate::device::UserCodeProblem::Expired);
        }
        if found.status != crate::device::DeviceStatus::Pending {
            return Err(crate::device::UserCodeProblem::AlreadyUsed);
        }
        Ok(found)
    }

    /// Marks the device code of `user_code` signed in by the user; the device's next poll gets
    /// the tokens.
    pub fn approve_device_code(
        &mut self,
        user_code: &str,
        approved: crate::device::DeviceStatus,
    ) -> Result<(), crate::device::UserCodeProblem> {
        self.pending_device_code(user_code)?;
        let code = crate::device::normalize_user_code(user_code);
        if let Some(d) = self.device_codes.values_mut().find(|d| d.user_code == code) {
            d.status = approved;
        }
        Ok(())
    }

    /// Marks the device code of `user_code` declined by the user.
    pub fn decline_device_code(&mut self, user_code: &str) {
        let code = crate::device::normalize_user_code(user_code);
        if let Some(d) = self
            .device_codes
            .values_mut()
            .find(|d| d.user_code == code && d.status == crate::device::DeviceStatus::Pending)
        {
            d.status = crate::device::DeviceStatus::Declined;
        }
    }

    /// Appends an entry to the sign-in logs, dropping the oldest beyond the capacity.
    pub fn record_sign_in(&mut self, record: SignInRecord) {
        if self.sign_ins.len() >= SIGN_IN_LOG_CAPACITY {
            self.sign_ins.pop_front();
            self.sign_ins_dropped += 1;
        }
        self.sign_ins.push_back(record);
    }

    /// AADSTS50076 for a resource.
    pub fn mfa_error(&self) -> AadError {
        AadError::new(
            50076,
            format!(
                "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '{}'.",
                crate::wellknown::GRAPH_APP_ID
            ),
            &self.settings,
        )
    }

    /// Drops expired codes and abandoned flows.
    pub fn sweep(&mut self) {
        let now = self.now();
        let code_life = Duration::seconds(self.settings.code_lifetime_secs);
        self.codes
            .retain(|_, c| c.issued_at + code_life + Duration::hours(1) > now);
        self.flows
            .retain(|_, f| f.created + Duration::hours(1) > now);
        let device_life = Duration::seconds(self.settings.device_code.lifetime_secs);
        self.device_codes
            .retain(|_, d| d.issued_at + device_life + Duration::hours(1) > now);
    }
}
