//! The control API: every change a test or a demo needs, as Rust methods on [`SimControl`] and as
//! JSON under `/_sim/` (`POST /_sim/ops` with a [`ControlOp`], `GET /_sim/state`, `GET /_sim/clock`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use time::Duration;
use uuid::Uuid;

use crate::crypto::CertInfo;
use crate::ctx::Ctx;
use crate::error::ControlError;
use crate::faults::{FaultRule, IdTokenFault};
use crate::model::{CaPolicy, KeyCredential};
use crate::state::State as SimState;

/// Kind of a permission added to an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionKind {
    /// Delegated (scope).
    Delegated,
    /// Application (app role).
    Application,
}

/// One control operation. JSON form: `{"op": "reset_password", "user": "…", "new_password": "…"}`.
/// Users are named by UPN or object ID, tenants by ID or verified domain.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlOp {
    /// Admin resets the password: TokensValidFrom = now, so refresh tokens fail with 50173.
    ResetPassword {
        /// User.
        user: String,
        /// New password (demo value).
        new_password: SecretString,
    },
    /// Revoke the user's sessions (revokeSignInSessions): 50173 on refresh.
    RevokeSessions {
        /// User.
        user: String,
    },
    /// Enable or disable the account (disabled: 50057).
    SetUserEnabled {
        /// User.
        user: String,
        /// Enabled.
        enabled: bool,
    },
    /// Replace the user's active directory roles (template IDs or display names); `[]` removes
    /// every role (an administrator demoted to a plain member).
    SetUserRoles {
        /// User.
        user: String,
        /// The roles from now on.
        roles: Vec<String>,
    },
    /// Delete the user.
    DeleteUser {
        /// User.
        user: String,
    },
    /// Require (or stop requiring) MFA at sign-in; tokens without MFA then fail with 50076.
    SetMfaRequired {
        /// User.
        user: String,
        /// Required.
        required: bool,
    },
    /// Make a user a Viva Engage verified admin, or not (read by the Viva Engage REST API's
    /// `verified_admin`).
    SetVivaEngageVerifiedAdmin {
        /// User.
        user: String,
        /// Verified admin.
        verified_admin: bool,
    },
    /// Replace the tenant's conditional access policies.
    SetCaPolicies {
        /// Tenant.
        tenant: String,
        /// Policies (users by UPN or object ID).
        policies: Vec<CaPolicy>,
    },
    /// Set the tenant's "users can consent to apps" setting.
    SetUsersCanConsent {
        /// Tenant.
        tenant: String,
        /// Allowed.
        allowed: bool,
    },
    /// Set the tenant's Microsoft Entra ID plan (`free`, `p1`, `p2`); the sign-in logs need P1 or P2.
    SetEntraIdPlan {
        /// Tenant.
        tenant: String,
        /// The plan.
        plan: crate::model::EntraIdPlan,
    },
    /// Grant tenant-wide admin consent for everything the app registers (as an admin would).
    GrantAdminConsent {
        /// Tenant.
        tenant: String,
        /// App client ID.
        client_id: Uuid,
    },
    /// Revoke consent: delete the app's oauth2PermissionGrants and appRoleAssignments (65001 after).
    RevokeConsent {
        /// Tenant.
        tenant: String,
        /// App client ID.
        client_id: Uuid,
    },
    /// Delete the app's service principal (7000229 / 700016 after) with its grants.
    DeleteServicePrincipal {
        /// Tenant.
        tenant: String,
        /// App client ID.
        client_id: Uuid,
    },
    /// Register a certificate (PEM or base64 DER) on an app; returns its keyId.
    AddAppCertificate {
        /// App client ID.
        client_id: Uuid,
        /// Certificate.
        certificate: String,
    },
    /// Remove a certificate by keyId or hex SHA-1 thumbprint (700027 after).
    RemoveAppCertificate {
        /// App client ID.
        client_id: Uuid,
        /// keyId or thumbprint.
        key: String,
    },
    /// Add a permission to the app registration (existing consents do not cover it).
    AddAppPermission {
        /// App client ID.
        client_id: Uuid,
        /// Delegated or application.
        kind: PermissionKind,
        /// `User.Read` (Graph) or `{resource uri}/{value}`.
        permission: String,
    },
    /// Register another redirect URI on an app.
    AddRedirectUri {
        /// App client ID.
        client_id: Uuid,
        /// Redirect URI.
        uri: String,
    },
    /// Make the app's secrets (one, or all) expire now (7000222 after).
    ExpireSecret {
        /// App client ID.
        client_id: Uuid,
        /// Secret keyId; all secrets when absent.
        #[serde(default)]
        key_id: Option<Uuid>,
    },
    /// Set when a client secret expires (a credential close to expiry, or long expired): the
    /// secret's `endDateTime` on Graph, AADSTS7000222 after it.
    SetSecretEndDate {
        /// App client ID.
        client_id: Uuid,
        /// Secret keyId.
        key_id: Uuid,
        /// The new end date (RFC 3339).
        #[serde(with = "time::serde::rfc3339")]
        end_date_time: time::OffsetDateTime,
    },
    /// Bring a certificate's end date forward (a certificate close to expiry, or expired): the
    /// key credential's `endDateTime` on Graph, AADSTS700027 for assertions signed with it after it.
    SetCertificateEndDate {
        /// App client ID.
        client_id: Uuid,
        /// The certificate's keyId.
        key_id: Uuid,
        /// The new end date (RFC 3339); a date after the certificate's own `notAfter` changes nothing.
        #[serde(with = "time::serde::rfc3339")]
        end_date_time: time::OffsetDateTime,
    },
    /// Move the simulator's clock forward.
    AdvanceClock {
        /// Seconds (may be large: 91 days = 7862400).
        seconds: i64,
    },
    /// Replace the fault rules.
    SetFaults {
        /// Rules.
        faults: Vec<FaultRule>,
    },
    /// Replace the throttling limits (`{"op": "set_throttling", "throttling": {"enabled": true, …}}`;
    /// absent fields take their defaults). Every bucket starts full again and the counts of
    /// `GET /_sim/throttling` start from zero.
    SetThrottling {
        /// The limits.
        throttling: crate::throttle::ThrottleSettings,
    },
    /// Put a defect into every ID token issued from now on (`null` stops it).
    SetIdTokenFault {
        /// The defect, or none.
        #[serde(default)]
        fault: Option<IdTokenFault>,
    },
}

/// Handle on a running simulator's state.
#[derive(Debug, Clone)]
pub struct SimControl {
    ctx: Ctx,
}

impl SimControl {
    pub(crate) fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }

    /// Applies one operation; returns a JSON result (e.g. `{"key_id": …}`).
    pub fn apply(&self, op: ControlOp) -> Result<Value, ControlError> {
        let mut st = self.ctx.lock();
        apply(&mut st, op)
    }

    /// The state dump (`GET /_sim/state`): directory, refresh-token metadata, clock and faults.
    pub fn state_json(&self) -> Value {
        state_json(&self.ctx.lock())
    }

    /// The simulator's current time.
    pub fn now(&self) -> time::OffsetDateTime {
        self.ctx.lock().now()
    }

    /// See [`ControlOp::ResetPassword`].
    pub fn reset_password(&self, user: &str, new_password: &str) -> Result<(), ControlError> {
        self.apply(ControlOp::ResetPassword {
            user: user.into(),
            new_password: new_password.into(),
        })
        .map(drop)
    }
    /// See [`ControlOp::RevokeSessions`].
    pub fn revoke_sessions(&self, user: &str) -> Result<(), ControlError> {
        self.apply(ControlOp::RevokeSessions { user: user.into() })
            .map(drop)
    }
    /// See [`ControlOp::SetUserEnabled`].
    pub fn set_user_enabled(&self, user: &str, enabled: bool) -> Result<(), ControlError> {
        self.apply(ControlOp::SetUserEnabled {
            user: user.into(),
            enabled,
        })
        .map(drop)
    }
    /// See [`ControlOp::SetUserRoles`].
    pub fn set_user_roles(&self, user: &str, roles: &[&str]) -> Result<(), ControlError> {
        self.apply(ControlOp::SetUserRoles {
            user: user.into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        })
        .map(drop)
    }
    /// See [`ControlOp::DeleteUser`].
    pub fn delete_user(&self, user: &str) -> Result<(), ControlError> {
        self.apply(ControlOp::DeleteUser { user: user.into() })
            .map(drop)
    }
    /// See [`ControlOp::SetMfaRequired`].
    pub fn set_mfa_required(&self, user: &str, required: bool) -> Result<(), ControlError> {
        self.apply(ControlOp::SetMfaRequired {
            user: user.into(),
            required,
        })
        .map(drop)
    }
    /// See [`ControlOp::SetVivaEngageVerifiedAdmin`].
    pub fn set_viva_engage_verified_admin(
        &self,
        user: &str,
        verified_admin: bool,
    ) -> Result<(), ControlError> {
        self.apply(ControlOp::SetVivaEngageVerifiedAdmin {
            user: user.into(),
            verified_admin,
        })
        .map(drop)
    }
    /// See [`ControlOp::SetCaPolicies`].
    pub fn set_ca_policies(
        &self,
        tenant: &str,
        policies: Vec<CaPolicy>,
    ) -> Result<(), ControlError> {
        self.apply(ControlOp::SetCaPolicies {
            tenant: tenant.into(),
            policies,
        })
        .map(drop)
    }
    /// See [`ControlOp::SetUsersCanConsent`].
    pub fn set_users_can_consent(&self, tenant: &str, allowed: bool) -> Result<(), ControlError> {
        self.apply(ControlOp::SetUsersCanConsent {
            tenant: tenant.into(),
            allowed,
        })
        .map(drop)
    }
    /// See [`ControlOp::SetEntraIdPlan`].
    pub fn set_entra_id_plan(
        &self,
        tenant: &str,
        plan: crate::model::EntraIdPlan,
    ) -> Result<(), ControlError> {
        self.apply(ControlOp::SetEntraIdPlan {
            tenant: tenant.into(),
            plan,
        })
        .map(drop)
    }
    /// See [`ControlOp::GrantAdminConsent`].
    pub fn grant_admin_consent(&self, tenant: &str, client_id: Uuid) -> Result<(), ControlError> {
        self.apply(ControlOp::GrantAdminConsent {
            tenant: tenant.into(),
            client_id,
        })
        .map(drop)
    }
    /// See [`ControlOp::RevokeConsent`].
    pub fn revoke_consent(&self, tenant: &str, client_id: Uuid) -> Result<(), ControlError> {
        self.apply(ControlOp::RevokeConsent {
            tenant: tenant.into(),
            client_id,
        })
        .map(drop)
    }
    /// See [`ControlOp::DeleteServicePrincipal`].
    pub fn delete_service_principal(
        &self,
        tenant: &str,
        client_id: Uuid,
    ) -> Result<(), ControlError> {
        self.apply(ControlOp::DeleteServicePrincipal {
            tenant: tenant.into(),
            client_id,
        })
        .map(drop)
    }
    /// See [`ControlOp::AddAppCertificate`]; returns the keyId.
    pub fn add_app_certificate(
        &self,
        client_id: Uuid,
        certificate: &str,
    ) -> Result<Uuid, ControlError> {
        let v = self.apply(ControlOp::AddAppCertificate {
            client_id,
            certificate: certificate.into(),
        })?;
        v["key_id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| ControlError::Invalid("no key id".into()))
    }
    /// See [`ControlOp::RemoveAppCertificate`].
    pub fn remove_app_certificate(&self, client_id: Uuid, key: &str) -> Result<(), ControlError> {
        self.apply(ControlOp::RemoveAppCertificate {
            client_id,
            key: key.into(),
        })
        .map(drop)
    }
    /// See [`ControlOp::AddAppPermission`].
    pub fn add_app_permission(
        &self,
        client_id: Uuid,
        kind: PermissionKind,
        permission: &str,
    ) -> Result<(), ControlError> {
        self.apply(ControlOp::AddAppPermission {
            client_id,
            kind,
            permission: permission.into(),
        })
        .map(drop)
    }
    /// See [`ControlOp::AddRedirectUri`].
    pub fn add_redirect_uri(&self, client_id: Uuid, uri: &str) -> Result<(), ControlError> {
        self.apply(ControlOp::AddRedirectUri {
            client_id,
            uri: uri.into(),
        })
        .map(drop)
    }
    /// See [`ControlOp::ExpireSecret`].
    pub fn expire_secret(&self, client_id: Uuid, key_id: Option<Uuid>) -> Result<(), ControlError> {
        self.apply(ControlOp::ExpireSecret { client_id, key_id })
            .map(drop)
    }
    /// See [`ControlOp::SetSecretEndDate`].
    pub fn set_secret_end_date(
        &self,
        client_id: Uuid,
        key_id: Uuid,
        end_date_time: time::OffsetDateTime,
    ) -> Result<(), ControlError> {
        self.apply(ControlOp::SetSecretEndDate {
            client_id,
            key_id,
            end_date_time,
        })
        .map(drop)
    }
    /// See [`ControlOp::SetCertificateEndDate`].
    pub fn set_certificate_end_date(
        &self,
        client_id: Uuid,
        key_id: Uuid,
        end_date_time: time::OffsetDateTime,
    ) -> Result<(), ControlError> {
        self.apply(ControlOp::SetCertificateEndDate {
            client_id,
            key_id,
            end_date_time,
        })
        .map(drop)
    }
    /// See [`ControlOp::AdvanceClock`].
    pub fn advance_clock(&self, by: std::time::Duration) -> Result<(), ControlError> {
        let seconds = i64::try_from(by.as_secs())
            .map_err(|_| ControlError::Invalid("duration too large".into()))?;
        self.apply(ControlOp::AdvanceClock { seconds }).map(drop)
    }
    /// See [`ControlOp::SetIdTokenFault`].
    pub fn set_id_token_fault(&self, fault: Option<IdTokenFault>) -> Result<(), ControlError> {
        self.apply(ControlOp::SetIdTokenFault { fault }).map(drop)
    }
    /// See [`ControlOp::SetFaults`].
    pub fn set_faults(&self, faults: Vec<FaultRule>) -> Result<(), ControlError> {
        self.apply(ControlOp::SetFaults { faults }).map(drop)
    }

    /// See [`ControlOp::SetThrottling`].
    pub fn set_throttling(
        &self,
        throttling: crate::throttle::ThrottleSettings,
    ) -> Result<(), ControlError> {
        self.apply(ControlOp::SetThrottling { throttling })
            .map(drop)
    }

    /// The throttling counts since the limits were last set: requests, their cost and the 429s
    /// the limits answered, per service (`token`, `graph`), client and tenant.
    pub fn throttle_counts(&self) -> Vec<crate::throttle::ThrottleCount> {
        self.ctx.lock().throttle.counts()
    }

    /// HTTP exchanges with Graph since start by one app in one tenant (its tokens' `tid` and
    /// `appid`): each direct request and each `$batch` counts once, whatever it carried. Tests use
    /// it to count a check's round trips to Graph.
    pub fn graph_exchanges(&self, tenant_id: Uuid, client_id: Uuid) -> u64 {
        self.ctx
            .lock()
            .graph_exchanges
            .get(&(tenant_id, client_id))
            .copied()
            .unwrap_or_default()
    }

    /// Token requests received since start (whatever their outcome), by tenant, client and grant
    /// type; only requests naming a known tenant (by ID or domain) and a known app are counted.
    /// Tests use it as the simulator's side of "how often was this credential used".
    pub fn token_requests(&self) -> Vec<TokenRequests> {
        let st = self.ctx.lock();
        let mut out: Vec<TokenRequests> = st
            .token_requests
            .iter()
            .map(
                |((tenant_id, client_id, grant_type), count)| TokenRequests {
                    tenant_id: *tenant_id,
                    client_id: *client_id,
                    grant_type: grant_type.clone(),
                    count: *count,
                },
            )
            .collect();
        out.sort_by(|a, b| {
            (a.tenant_id, a.client_id, &a.grant_type).cmp(&(
                b.tenant_id,
                b.client_id,
                &b.grant_type,
            ))
        });
        out
    }
}

/// How many token requests one client made in one tenant with one grant type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequests {
    /// The tenant of the token endpoint's path.
    pub tenant_id: Uuid,
    /// The client (app) ID.
    pub client_id: Uuid,
    /// `client_credentials`, `refresh_token`, `authorization_code`, or what the client sent.
    pub grant_type: String,
    /// Requests counted.
    pub count: u64,
}

fn not_found(what: &'static str, name: impl ToString) -> ControlError {
    ControlError::NotFound {
        what,
        name: name.to_string(),
    }
}

fn tenant(st: &SimState, t: &str) -> Result<usize, ControlError> {
    st.tenant_idx(t).ok_or_else(|| not_found("tenant", t))
}

fn user(st: &SimState, u: &str) -> Result<(usize, usize), ControlError> {
    st.find_user(u).ok_or_else(|| not_found("user", u))
}

fn app_idx(st: &SimState, client_id: Uuid) -> Result<usize, ControlError> {
    st.apps
        .iter()
        .position(|a| a.client_id == client_id)
        .ok_or_else(|| not_found("app", client_id))
}

fn remove_grants(
    st: &mut SimState,
    t: usize,
    client_id: Uuid,
) -> Result<Option<Uuid>, ControlError> {
    let sp = st.sp(t, client_id).map(|s| s.id);
    if let Some(sp) = sp {
        st.tenants[t]
            .oauth2_permission_grants
            .retain(|g| g.client_id != sp);
        st.tenants[t]
            .app_role_assignments
            .retain(|a| a.principal_id != sp);
    }
    Ok(sp)
}

fn apply(st: &mut SimState, op: ControlOp) -> Result<Value, ControlError> {
    let now = st.now();
    match op {
        ControlOp::ResetPassword {
            user: u,
            new_password,
        } => {
            let (t, i) = user(st, &u)?;
            let usr = &mut st.tenants[t].users[i];
            usr.password = new_password;
            usr.tokens_valid_from = Some(now);
        }
        ControlOp::RevokeSessions { user: u } => {
            let (t, i) = user(st, &u)?;
            st.tenants[t].users[i].tokens_valid_from = Some(now);
        }
        ControlOp::SetUserEnabled { user: u, enabled } => {
            let (t, i) = user(st, &u)?;
            st.tenants[t].users[i].enabled = enabled;
        }
        ControlOp::SetUserRoles { user: u, roles } => {
            let (t, i) = user(st, &u)?;
            let ids = roles
                .iter()
                .map(|r| {
                    crate::wellknown::resolve_role(r)
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            ControlError::Invalid(format!("unknown directory role {r:?}"))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            st.tenants[t].users[i].roles = ids;
        }
        ControlOp::DeleteUser { user: u } => {
            let (t, i) = user(st, &u)?;
            st.tenants[t].users[i].deleted = true;
        }
        ControlOp::SetMfaRequired { user: u, required } => {
            let (t, i) = user(st, &u)?;
            st.tenants[t].users[i].mfa_required = required;
        }
        ControlOp::SetVivaEngageVerifiedAdmin {
            user: u,
            verified_admin,
        } => {
            let (t, i) = user(st, &u)?;
            st.tenants[t].users[i].viva_engage_verified_admin = verified_admin;
        }
        ControlOp::SetCaPolicies {
            tenant: tn,
            mut policies,
        } => {
            let t = tenant(st, &tn)?;
            for p in &mut policies {
                for u in &mut p.users {
                    let id = st.tenants[t]
                        .users
                        .iter()
                        .find(|x| {
                            x.upn.eq_ignore_ascii_case(u)
                                || x.id.to_string().eq_ignore_ascii_case(u)
                        })
                        .map(|x| x.id.to_string())
                        .ok_or_else(|| not_found("user", &u))?;
                    *u = id;
                }
            }
            st.tenants[t].ca_policies = policies;
        }
        ControlOp::SetUsersCanConsent {
            tenant: tn,
            allowed,
        } => {
            let t = tenant(st, &tn)?;
            st.tenants[t].users_can_consent = allowed;
        }
        ControlOp::SetEntraIdPlan { tenant: tn, plan } => {
            let t = tenant(st, &tn)?;
            st.tenants[t].entra_id_plan = plan;
        }
        ControlOp::GrantAdminConsent {
            tenant: tn,
            client_id,
        } => {
            let t = tenant(st, &tn)?;
            app_idx(st, client_id)?;
            if !st.app_usable_in(client_id, st.tenants[t].id) {
                return Err(ControlError::Invalid(format!(
                    "app {client_id} cannot be consented to in {tn}: it is single-tenant, or registered in another cloud"
                )));
            }
            let granted = st.admin_consent(t, client_id, None);
            return Ok(json!({"granted": granted}));
        }
        ControlOp::RevokeConsent {
            tenant: tn,
            client_id,
        } => {
            let t = tenant(st, &tn)?;
            remove_grants(st, t, client_id)?
                .ok_or_else(|| not_found("service principal", client_id))?;
        }
        ControlOp::DeleteServicePrincipal {
            tenant: tn,
            client_id,
        } => {
            let t = tenant(st, &tn)?;
            let sp = remove_grants(st, t, client_id)?
                .ok_or_else(|| not_found("service principal", client_id))?;
            st.tenants[t].service_principals.retain(|s| s.id != sp);
        }
        ControlOp::AddAppCertificate {
            client_id,
            certificate,
        } => {
            let a = app_idx(st, client_id)?;
            let info = CertInfo::parse(&certificate)
                .map_err(|e| ControlError::Invalid(format!("certificate: {e}")))?;
            let key_id = Uuid::new_v4();
            st.apps[a].certificates.push(KeyCredential {
                key_id,
                display_name: Some(info.subject.clone()),
                certificate,
            });
            return Ok(json!({"key_id": key_id, "thumbprint": info.thumbprint_hex()}));
        }
        ControlOp::RemoveAppCertificate { client_id, key } => {
            let a = app_idx(st, client_id)?;
            let before = st.apps[a].certificates.len();
            st.apps[a].certificates.retain(|c| {
                let thumb = CertInfo::parse(&c.certificate)
                    .map(|i| i.thumbprint_hex())
                    .unwrap_or_default();
                !(c.key_id.to_string().eq_ignore_ascii_case(&key)
                    || thumb.eq_ignore_ascii_case(&key))
            });
            if st.apps[a].certificates.len() == before {
                return Err(not_found("certificate", key));
            }
        }
        ControlOp::AddAppPermission {
            client_id,
            kind,
            permission,
        } => {
            let a = app_idx(st, client_id)?;
            let result = crate::scenario::ensure_permission(
                &mut st.resources,
                &permission,
                kind == PermissionKind::Application,
            );
            result.map_err(|e| ControlError::Invalid(e.to_string()))?;
            let list = match kind {
                PermissionKind::Delegated => &mut st.apps[a].delegated,
                PermissionKind::Application => &mut st.apps[a].application,
            };
            if !list.contains(&permission) {
                list.push(permission);
            }
        }
        ControlOp::AddRedirectUri { client_id, uri } => {
            let a = app_idx(st, client_id)?;
            url::Url::parse(&uri)
                .map_err(|e| ControlError::Invalid(format!("redirect URI: {e}")))?;
            if !st.apps[a].redirect_uris.contains(&uri) {
                st.apps[a].redirect_uris.push(uri);
            }
        }
        ControlOp::ExpireSecret { client_id, key_id } => {
            let a = app_idx(st, client_id)?;
            let mut hit = false;
            for s in st.apps[a]
                .secrets
                .iter_mut()
                .filter(|s| key_id.is_none_or(|k| k == s.key_id))
            {
                s.end_date_time = now - Duration::seconds(1);
                hit = true;
            }
            if !hit {
                return Err(not_found(
                    "secret",
                    key_id.map(|k| k.to_string()).unwrap_or_default(),
                ));
            }
        }
        ControlOp::SetSecretEndDate {
            client_id,
            key_id,
            end_date_time,
        } => {
            let a = app_idx(st, client_id)?;
            let secret = st.apps[a]
                .secrets
                .iter_mut()
                .find(|s| s.key_id == key_id)
                .ok_or_else(|| not_found("secret", key_id))?;
            secret.end_date_time = end_date_time;
        }
        ControlOp::SetCertificateEndDate {
            client_id,
            key_id,
            end_date_time,
        } => {
            let a = app_idx(st, client_id)?;
            if !st.apps[a].certificates.iter().any(|c| c.key_id == key_id) {
                return Err(not_found("certificate", key_id));
            }
            st.certificate_end_dates.insert(key_id, end_date_time);
        }
        ControlOp::AdvanceClock { seconds } => {
            if seconds < 0 {
                return Err(ControlError::Invalid("the clock only moves forward".into()));
            }
            st.clock_offset += Duration::seconds(seconds);
            return Ok(json!({"now": rfc3339(now + Duration::seconds(seconds))}));
        }
        ControlOp::SetFaults { faults } => {
            for f in &faults {
                f.validate().map_err(ControlError::Invalid)?;
            }
            st.faults = faults;
        }
        ControlOp::SetThrottling { throttling } => {
            throttling.validate().map_err(ControlError::Invalid)?;
            st.settings.throttling = throttling;
            st.throttle.reset();
        }
        ControlOp::SetIdTokenFault { fault } => {
            st.id_token_fault = fault;
        }
    }
    Ok(json!({"ok": true}))
}

fn state_json(st: &SimState) -> Value {
    let refresh: Vec<Value> = st
        .refresh_tokens
        .iter()
        .map(|(token, g)| {
            let mut v = serde_json::to_value(g).unwrap_or_default();
            v["token_prefix"] = json!(token.chars().take(12).collect::<String>());
            v
        })
        .collect();
    json!({
        "now": rfc3339(st.now()),
        "base_url": st.base,
        "settings": st.settings,
        "tenants": st.tenants,
        "apps": st.apps,
        "app_owners": st.app_owners,
        "certificate_end_dates": st.certificate_end_dates.iter().map(|(k, t)| (k.to_string(), rfc3339(*t))).collect::<std::collections::BTreeMap<_, _>>(),
        "resources": st.resources,
        "refresh_tokens": refresh,
        "codes_outstanding": st.codes.values().filter(|c| !c.redeemed).count(),
        "flows_in_progress": st.flows.len(),
        "faults": st.faults,
        "id_token_fault": st.id_token_fault,
    })
}

/// The simulated time as RFC 3339 (`2026-01-02T03:04:05.123Z`), as the scenario files write times.
fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `GET /_sim/state`
pub(crate) async fn http_state(State(ctx): State<Ctx>) -> Response {
    axum::Json(state_json(&ctx.lock())).into_response()
}

/// `GET /_sim/counts`: the token requests and the HTTP exchanges with Graph since start, in total
/// and by (tenant, app): what a benchmark divides by its checks to give round trips per check.
pub(crate) async fn http_counts(State(ctx): State<Ctx>) -> Response {
    let st = ctx.lock();
    let mut keys: std::collections::BTreeMap<(Uuid, Uuid), (u64, u64)> = Default::default();
    for ((tenant, client, _), n) in &st.token_requests {
        keys.entry((*tenant, *client)).or_default().0 += n;
    }
    for (key, n) in &st.graph_exchanges {
        keys.entry(*key).or_default().1 += n;
    }
    let (tokens, graph) = keys.values().fold((0, 0), |(t, g), (a, b)| (t + a, g + b));
    let by_key: Vec<Value> = keys
        .iter()
        .map(|((tenant, client), (t, g))| {
            json!({"tenant_id": tenant, "client_id": client, "token_requests": t, "graph_exchanges": g})
        })
        .collect();
    axum::Json(json!({
        "token_requests": tokens,
        "graph_exchanges": graph,
        "keys": by_key,
    }))
    .into_response()
}

/// `GET /_sim/throttling`: the limits, every key's counts with the limit that applies to it (`limit`
/// units per `window_secs`), the Graph counts per app (under the per-app limit) and the totals.
pub(crate) async fn http_throttling(State(ctx): State<Ctx>) -> Response {
    let st = ctx.lock();
    let settings = st.settings.throttling;
    let counts = st.throttle.counts();
    let add = |sum: &mut crate::throttle::Counts, c: &crate::throttle::Counts| {
        sum.requests += c.requests;
        sum.units += c.units;
        sum.throttled += c.throttled;
        sum.throttled_units += c.throttled_units;
    };
    let mut totals = json!({});
    for service in ["token", "graph"] {
        let mut sum = crate::throttle::Counts::default();
        for k in counts.iter().filter(|k| k.service == service) {
            add(&mut sum, &k.counts);
        }
        totals[service] = json!(sum);
    }
    let mut per_app: std::collections::BTreeMap<Uuid, crate::throttle::Counts> =
        std::collections::BTreeMap::new();
    let mut keys = Vec::with_capacity(counts.len());
    for k in &counts {
        let (limit, window) = if k.service == "token" {
            (settings.token_requests, settings.token_window_secs)
        } else {
            add(per_app.entry(k.client_id).or_default(), &k.counts);
            let users = st
                .tenant_by_id(k.tenant_id)
                .map_or(0, |t| st.tenants[t].users.len());
            (settings.graph_units_for(users), settings.graph_window_secs)
        };
        let mut v = json!(k);
        v["limit"] = json!(limit);
        v["window_secs"] = json!(window);
        keys.push(v);
    }
    let apps: Vec<Value> = per_app
        .into_iter()
        .map(|(client_id, c)| {
            let mut v = json!(c);
            v["service"] = json!("graph");
            v["client_id"] = json!(client_id);
            v["limit"] = json!(settings.graph_app_units);
            v["window_secs"] = json!(settings.graph_app_window_secs);
            v
        })
        .collect();
    axum::Json(json!({
        "settings": settings,
        "totals": totals,
        "keys": keys,
        "apps": apps,
    }))
    .into_response()
}

/// `GET /_sim/clock`
pub(crate) async fn http_clock(State(ctx): State<Ctx>) -> Response {
    let st = ctx.lock();
    axum::Json(json!({"now": rfc3339(st.now()), "offset_seconds": st.clock_offset.whole_seconds()}))
        .into_response()
}

/// `POST /_sim/ops`
pub(crate) async fn http_op(State(ctx): State<Ctx>, body: axum::body::Bytes) -> Response {
    let op: ControlOp = match serde_json::from_slice(&body) {
        Ok(op) => op,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": format!("invalid control operation: {e}")})),
            )
                .into_response();
        }
    };
    let mut st = ctx.lock();
    match apply(&mut st, op) {
        Ok(v) => axum::Json(v).into_response(),
        Err(e @ ControlError::NotFound { .. }) => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": e.to_string()})),
        )
            .into_response(),
        Err(e @ ControlError::Invalid(_)) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}
