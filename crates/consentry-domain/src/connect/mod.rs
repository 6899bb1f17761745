//! Connecting a tenant by consenting ("Connect a Microsoft tenant"): an administrator of the tenant
//! signs in with Consentry's own app (OpenID Connect at the `organizations` authority, PKCE and a
//! nonce), must hold a role that may grant tenant-wide consent, gives Consentry's app administrator
//! consent in that same tenant, and Consentry reads the tenant's ID, name and verified domains from
//! Graph with its app. No tenant ID is typed, and the tenant is connected **verified**: the sign-in
//! proves a person of the tenant acted, the consent proves they may act for it.
//!
//! A forged admin-consent redirect (`?tenant=<victim>&admin_consent=True&state=…`) proves nothing:
//! the pending record waits for the sign-in first, and the consent's `tenant` must be the one the
//! verified ID token named. Each step's state is single-use, bound to the browser that started it
//! and expires after [`PENDING_LIFETIME`](crate::reauth::PENDING_LIFETIME).
//!
//! [`claim`] decides what a verified claim does to another organization's claim of the same tenant.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::{Deserialize, Serialize};
use uuid::{Uuid, uuid};

use crate::error::DomainError;
use crate::ids::{OrgId, TenantId};
use crate::model::{Actor, Tenant};
use crate::platform::{ConsentrySignIn, IdentityPlatform, PlatformCause, PlatformError};
use crate::ports::{ConnectStep, PendingConnection};
use crate::reauth::{CallbackParams, PENDING_LIFETIME, pkce_challenge, random_token, state_hash};
use crate::service::Consentry;

mod claim;
mod explain;

pub use claim::OfferedAppType;

/// The console path Microsoft sends the administrator back to (under `public_url`); registered
/// on Consentry's own app.
pub const CONNECT_CALLBACK_PATH: &str = "/console/tenants/connect/callback";

/// The directory roles that may grant tenant-wide consent (entra-facts §5): Global Administrator,
/// Privileged Role Administrator, Cloud Application Administrator, Application Administrator.
pub const CONSENTING_ROLES: [(Uuid, &str); 4] = [
    (
        uuid!("62e90394-69f5-4237-9190-012177145e10"),
        "Global Administrator",
    ),
    (
        uuid!("e8611ab8-c189-46e8-94e1-60213ab1f814"),
        "Privileged Role Administrator",
    ),
    (
        uuid!("158c047a-c907-4556-b7ef-446551a6b5f7"),
        "Cloud Application Administrator",
    ),
    (
        uuid!("9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"),
        "Application Administrator",
    ),
];

/// What a pending connection keeps sealed.
#[derive(Serialize, Deserialize)]
struct ConnectSecrets {
    code_verifier: String,
    nonce: String,
    /// Hex SHA-256 of the browser-binding cookie; the callback is refused without it.
    browser_binding: String,
    /// The administrator who signed in (from the admin-consent step on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upn: Option<String>,
}

/// A started connection: where to send the browser.
#[derive(Debug, Clone)]
pub struct ConnectStarted {
    /// Microsoft's sign-in page.
    pub url: String,
}

/// How a connection callback ended.
#[derive(Debug, Clone)]
pub enum ConnectOutcome {
    /// The next step at Microsoft (the administrator consent).
    Continue {
        /// Where to go next.
        url: String,
    },
    /// The tenant is connected to the organization, verified.
    Connected {
        /// The tenant.
        tenant: Tenant,
        /// It was connected to the organization already (now verified, if it was not).
        already: bool,
        /// Who consented.
        upn: String,
    },
    /// Microsoft's answer did not prove the tenant; nothing was connected.
    Failed {
        /// The organization the attempt was for.
        org_id: OrgId,
        /// What happened.
        message: String,
        /// What to do.
        remediation: Vec<String>,
    },
}

/// Connects tenants by consent, over the domain services and the identity platform.
#[derive(Debug, Clone)]
pub struct TenantConnector {
    core: Consentry,
    platform: Arc<dyn IdentityPlatform>,
    redirect_uri: String,
}

impl TenantConnector {
    /// Builds it; Microsoft sends the browser back to `{public_url}`[`CONNECT_CALLBACK_PATH`].
    pub fn new(core: Consentry, platform: Arc<dyn IdentityPlatform>, public_url: &str) -> Self {
        Self {
            core,
            platform,
            redirect_uri: format!(
                "{}{CONNECT_CALLBACK_PATH}",
                public_url.trim_end_matches('/')
            ),
        }
    }

    /// Where Microsoft sends the browser back.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Whether connecting by consent is available (Consentry's own app is configured).
    pub fn available(&self) -> bool {
        self.platform.consentry_client_id().is_some()
    }

    /// Starts connecting a tenant to `org` in the browser holding the `binding` cookie: returns
    /// Microsoft's sign-in URL.
    pub async fn start(
        &self,
        org: OrgId,
        actor: &Actor,
        binding: &str,
    ) -> Result<ConnectStarted, DomainError> {
        self.core.organization(org).await?;
        if !self.available() {
            return Err(DomainError::Conflict(
                "connecting a tenant by consent needs Consentry's own app registration, which is not configured: the operator sets [consentry_app] (see docs/DEPLOYMENT.md)".into(),
            ));
        }
        let state = random_token(32);
        let secrets = ConnectSecrets {
            code_verifier: random_token(32),
            nonce: random_token(16),
            browser_binding: state_hash(binding),
            upn: None,
        };
        let url = self.platform.consentry_sign_in_url(&ConsentrySignIn {
            state: state.clone(),
            nonce: secrets.nonce.clone(),
            code_challenge: pkce_challenge(&secrets.code_verifier),
            redirect_uri: self.redirect_uri.clone(),
        });
        self.put(org, actor, ConnectStep::SignIn, None, &state, &secrets)
            .await?;
        Ok(ConnectStarted { url })
    }

    async fn put(
        &self,
        org: OrgId,
        actor: &Actor,
        step: ConnectStep,
        tenant_id: Option<TenantId>,
        state: &str,
        secrets: &ConnectSecrets,
    ) -> Result<(), DomainError> {
        let now = self.core.clock().now();
        let blob = serde_json::to_vec(secrets)
            .map_err(|e| DomainError::Internal(format!("sealing a pending connection: {e}")))?;
        self.core
            .store()
            .put_pending_connection(&PendingConnection {
                state_hash: state_hash(state),
                org_id: org,
                started_by: actor.clone(),
                step,
                tenant_id,
                created_at: now,
                expires_at: now + PENDING_LIFETIME,
                secrets: SecretSlice::from(blob),
            })
            .await?;
        Ok(())
    }

    /// Handles Microsoft's redirect to [`CONNECT_CALLBACK_PATH`], in the browser holding the
    /// `binding` cookie (if any). A state that is unknown, used, expired or started in another
    /// browser is `Invalid`; Microsoft's refusals are [`ConnectOutcome::Failed`].
    pub async fn callback(
        &self,
        params: CallbackParams,
        binding: Option<&str>,
    ) -> Result<ConnectOutcome, DomainError> {
        let unusable = || {
            DomainError::invalid(
                "state",
                "this answer from Microsoft cannot be used: it was used already, it expired, or the connection was not started in this browser",
            )
        };
        let state = params.state.as_deref().ok_or_else(unusable)?;
        let pending = self
            .core
            .store()
            .take_pending_connection(&state_hash(state))
            .await?
            .ok_or_else(unusable)?;
        let secrets: ConnectSecrets = serde_json::from_slice(pending.secrets.expose_secret())
            .map_err(|e| {
                DomainError::Internal(format!("a pending connection is unreadable: {e}"))
            })?;
        let bound = binding.is_some_and(|b| {
            crate::account::constant_time_eq(&state_hash(b), &secrets.browser_binding)
        });
        if !bound || pending.expires_at <= self.core.clock().now() {
            return Err(unusable());
        }
        let failed = |f: explain::Failure| ConnectOutcome::Failed {
            org_id: pending.org_id,
            message: f.message,
            remediation: f.remediation,
        };
        if let Some(error) = params.error.as_deref() {
            let e = self.platform.redirect_error(
                error,
                params.error_description.as_deref(),
                params.error_subcode.as_deref(),
            );
            return Ok(failed(explain::platform(&e)));
        }
        match (pending.step, pending.tenant_id) {
            (ConnectStep::SignIn, _) => self.signed_in(&pending, secrets, params).await,
            (ConnectStep::AdminConsent, Some(tenant)) => {
                if params.admin_consent.as_deref() != Some("True")
                    || params
                        .tenant
                        .as_deref()
                        .and_then(|t| TenantId::parse(t).ok())
                        != Some(tenant)
                {
                    return Ok(failed(explain::other_tenant()));
                }
                let upn = secrets.upn.unwrap_or_default();
                match self.platform.organization(tenant).await {
                    Ok(facts) if facts.id == tenant => {
                        claim::claim_verified(&self.core, &pending, facts, &upn).await
                    }
                    Ok(_) => Ok(failed(explain::other_tenant())),
                    Err(e) => Ok(failed(explain::platform(&e))),
                }
            }
            (ConnectStep::AdminConsent, None) => Err(DomainError::Internal(
                "a pending connection waits for a consent without a tenant".into(),
            )),
        }
    }

    /// The sign-in step: redeem, check the nonce and the account's roles, then ask for the consent.
    async fn signed_in(
        &self,
        pending: &PendingConnection,
        mut secrets: ConnectSecrets,
        params: CallbackParams,
    ) -> Result<ConnectOutcome, DomainError> {
        let failed = |f: explain::Failure| ConnectOutcome::Failed {
            org_id: pending.org_id,
            message: f.message,
            remediation: f.remediation,
        };
        let Some(code) = params.code.as_deref() else {
            return Ok(failed(explain::no_code()));
        };
        let verifier = SecretString::from(secrets.code_verifier.clone());
        let signed = match self
            .platform
            .redeem_consentry_sign_in(code, &verifier, &self.redirect_uri)
            .await
        {
            Ok(s) => s,
            Err(e) => return Ok(failed(explain::platform(&e))),
        };
        if signed.nonce.as_deref() != Some(secrets.nonce.as_str()) {
            return Ok(failed(explain::platform(&PlatformError {
                cause: PlatformCause::IdTokenRejected,
                aadsts: None,
                error: None,
                message: "the ID token's nonce is not the one sent".into(),
            })));
        }
        let facts = match self
            .platform
            .user_facts(
                &crate::platform::TenantAt::new(signed.tenant, crate::ids::CloudKey::global()),
                &signed.access_token,
            )
            .await
        {
            Ok(f) => f,
            Err(e) => return Ok(failed(explain::platform(&e))),
        };
        if !CONSENTING_ROLES
            .iter()
            .any(|(id, _)| facts.role_template_ids.contains(id))
        {
            return Ok(failed(explain::not_an_admin(signed.upn.as_str())));
        }
        let state = random_token(32);
        secrets.upn = Some(signed.upn.to_string());
        let url =
            self.platform
                .consentry_admin_consent_url(signed.tenant, &state, &self.redirect_uri);
        self.put(
            pending.org_id,
            &pending.started_by,
            ConnectStep::AdminConsent,
            Some(signed.tenant),
            &state,
            &secrets,
        )
        .await?;
        Ok(ConnectOutcome::Continue { url })
    }

    /// The app types offered for a newly connected tenant of `org` (see [`OfferedAppType`]).
    pub async fn offer(&self, org: OrgId) -> Result<Vec<OfferedAppType>, DomainError> {
        let org = self.core.organization(org).await?;
        Ok(claim::offer(self.core.catalog(), &org))
    }
}
