//! The OAuth callback: Microsoft's answer to one step, taken once under its state, checked for the
//! browser that started it, verified step by step, and recorded or failed.

use consentry_catalog::AppType;
use serde::{Deserialize, Serialize};

use super::PENDING_LIFETIME;
use super::Reauthorizer;
use super::decide::{self, Judged, Step, StepError, Verified};
use super::explain::explain_platform;
use super::secrets::{PendingSecrets, random_token, state_hash};
use crate::audit::AuditAction;
use crate::error::DomainError;
use crate::ids::AppId;
use crate::model::{AppProfile, AuthLeg, PendingAuthorization};
use crate::platform::{ClientRef, PlatformCause, PlatformError};

/// The query parameters Microsoft sends back to the callback.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallbackParams {
    /// The state sent out.
    pub state: Option<String>,
    /// Authorization code (sign-in leg).
    pub code: Option<String>,
    /// OAuth error.
    pub error: Option<String>,
    /// Error text (starts with AADSTSnnnnn).
    pub error_description: Option<String>,
    /// Error sub-code (`cancel`).
    pub error_subcode: Option<String>,
    /// `True` on admin-consent redirects.
    pub admin_consent: Option<String>,
    /// Tenant reported by the admin-consent redirect (never trusted; checked through Graph).
    pub tenant: Option<String>,
}

/// How a callback ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CallbackOutcome {
    /// Another step at Microsoft follows (the sign-in after the tenant-wide consent).
    Continue {
        /// Where to go next.
        url: String,
    },
    /// The profile is re-authorized.
    Completed {
        /// The profile after the change.
        profile: AppProfile,
    },
    /// It failed; the profile is back in its previous state.
    Failed {
        /// The profile, restored.
        profile: AppProfile,
        /// What went wrong.
        message: String,
        /// What to do.
        remediation: Vec<String>,
    },
}

/// The message of a callback presented without the browser-binding cookie of the browser that
/// started the re-authorization.
pub const OTHER_BROWSER: &str = "this re-authorization was started in another browser (or its cookie expired): start again from the same browser";

impl Reauthorizer {
    /// Finishes one step of a re-authorization when Microsoft redirects back. `browser_binding`
    /// is the value of the browser's binding cookie, if it sent one: a re-authorization started in
    /// a browser ([`start_in_browser`](Self::start_in_browser),
    /// [`continue_handoff`](Self::continue_handoff)) is refused without the same value
    /// ([`OTHER_BROWSER`]); its pending record stays usable from the right browser.
    pub async fn callback(
        &self,
        params: CallbackParams,
        browser_binding: Option<&str>,
    ) -> Result<CallbackOutcome, DomainError> {
        let pending = self.take_pending(params.state.as_deref()).await?;
        let profile = self.core.profile(pending.profile_id).await?;
        let app = self.app_type(&profile)?;
        if pending.leg == AuthLeg::Handoff {
            // A consent link's token sent to the OAuth callback: not Microsoft's answer. The link
            // stays usable.
            self.core.store().put_pending(&pending).await?;
            return Ok(CallbackOutcome::Failed {
                profile,
                message: "This link is a consent link: open it in a browser to continue.".into(),
                remediation: vec!["Open the consent link you were sent.".into()],
            });
        }
        self.check_browser(&pending, browser_binding).await?;
        match self.step(&params, &profile, &app, &pending).await {
            Ok(Step::Continue(url)) => Ok(CallbackOutcome::Continue { url }),
            Ok(Step::Done(done)) => self.completed(profile, &app, &pending, *done).await,
            Err(StepError::Failed(f)) => {
                let message = f.message.clone();
                let org = Some(profile.org_id);
                let target = format!("profile:{}", profile.id);
                let outcome = self.fail(profile, &pending, f).await?;
                self.core
                    .audit()
                    .record(
                        &pending.started_by,
                        org,
                        AuditAction::ReauthorizationFailed,
                        target,
                        serde_json::json!({
                            "method": pending.method.as_str(),
                            "app_type": app.key,
                            "message": message,
                        }),
                    )
                    .await;
                Ok(outcome)
            }
            Err(StepError::Domain(e)) => Err(e),
        }
    }

    /// Takes the pending record of a callback's `state` (atomically, once).
    async fn take_pending(&self, state: Option<&str>) -> Result<PendingAuthorization, DomainError> {
        let state = state
            .filter(|s| !s.is_empty() && s.len() <= 512)
            .ok_or_else(|| {
                DomainError::invalid(
                    "state",
                    "the callback has no valid state parameter; start the re-authorization again",
                )
            })?;
        self.core
            .store()
            .take_pending(&state_hash(state), self.hold_until())
            .await?
            .ok_or_else(|| {
                DomainError::invalid(
                    "state",
                    "this link is unknown or was already used; start the re-authorization again from the app profile",
                )
            })
    }

    /// Refuses a callback from another browser than the one a bound re-authorization started in;
    /// the record goes back, so a stolen state cannot burn it.
    async fn check_browser(
        &self,
        pending: &PendingAuthorization,
        browser_binding: Option<&str>,
    ) -> Result<(), DomainError> {
        let bound = PendingSecrets::of(pending)
            .ok()
            .and_then(|s| s.browser_binding);
        let Some(expected) = bound else {
            return Ok(());
        };
        let presented = browser_binding.map(state_hash);
        if presented.is_some_and(|p| crate::account::constant_time_eq(&p, &expected)) {
            return Ok(());
        }
        self.core.store().put_pending(pending).await?;
        Err(DomainError::invalid("state", OTHER_BROWSER))
    }

    /// Records a verified answer and audits it.
    async fn completed(
        &self,
        profile: AppProfile,
        app: &AppType,
        pending: &PendingAuthorization,
        done: Verified,
    ) -> Result<CallbackOutcome, DomainError> {
        let org = Some(profile.org_id);
        let target = format!("profile:{}", profile.id);
        let outcome = self.complete(profile, app, pending, done).await?;
        if let CallbackOutcome::Completed { profile } = &outcome {
            let consent_user = profile.consent_user.as_ref().map(|u| u.upn.to_string());
            self.core
                .audit()
                .record(
                    &pending.started_by,
                    org,
                    AuditAction::ReauthorizationCompleted,
                    target,
                    serde_json::json!({
                        "method": pending.method.as_str(),
                        "app_type": profile.app_type,
                        "consent_user": consent_user,
                        "status": profile.status.as_str(),
                    }),
                )
                .await;
        }
        Ok(outcome)
    }

    /// Checks Microsoft's answer for the step `pending` waits for. A `Failed` error restores the
    /// profile; nothing is written before the whole answer is verified.
    async fn step(
        &self,
        params: &CallbackParams,
        profile: &AppProfile,
        app: &AppType,
        pending: &PendingAuthorization,
    ) -> Result<Step, StepError> {
        let explain =
            |e: PlatformError| StepError::Failed(explain_platform(&e, app, app.custom_app));
        decide::check_expiry(self.core.clock().now(), pending)?;
        let redirect_error = params.error.as_deref().map(|error| {
            self.platform.redirect_error(
                error,
                params.error_description.as_deref(),
                params.error_subcode.as_deref(),
            )
        });
        let fall_back_to_sign_in = redirect_error
            .as_ref()
            .is_some_and(|e| decide::falls_back_to_sign_in(e, pending, app));
        if let Some(e) = redirect_error
            && !fall_back_to_sign_in
        {
            return Err(explain(e));
        }
        if let Some(reported) = params.tenant.as_deref() {
            self.check_reported_tenant(reported, profile).await?;
        }
        let secrets = PendingSecrets::of(pending).map_err(|_| {
            DomainError::Conflict("the pending re-authorization is damaged; start again".into())
        })?;
        let (client, client_id) = self.client(&profile.cloud, pending, &secrets, app)?;
        if fall_back_to_sign_in {
            return self
                .continue_to_sign_in(profile, app, client_id, pending, &secrets.code_verifier)
                .await;
        }
        self.verify(
            params.code.as_deref(),
            profile,
            app,
            pending,
            (client, client_id),
            secrets,
        )
        .await
    }

    /// Verifies the answer to the step `pending` waits for: the consenting account's sign-in (on
    /// the sign-in leg), then the grants Graph shows against the catalog's permissions.
    async fn verify(
        &self,
        code: Option<&str>,
        profile: &AppProfile,
        app: &AppType,
        pending: &PendingAuthorization,
        (client, client_id): (ClientRef, AppId),
        secrets: PendingSecrets,
    ) -> Result<Step, StepError> {
        let sign_in = match pending.leg {
            AuthLeg::Handoff => unreachable!("handled by the caller"),
            AuthLeg::AdminConsent => None,
            AuthLeg::SignIn => Some(
                self.signed_in(code, profile, app, pending, &client, &secrets)
                    .await?,
            ),
        };
        let grants = self
            .platform
            .grants(&profile.tenant_at(), &client)
            .await
            .map_err(|e| StepError::Failed(explain_platform(&e, app, app.custom_app)))?;
        match decide::judge_grants(app, pending, &grants, sign_in.as_ref())? {
            Judged::SignInNext => {
                self.continue_to_sign_in(profile, app, client_id, pending, &secrets.code_verifier)
                    .await
            }
            Judged::Granted(delegated) => Ok(Step::Done(Box::new(Verified {
                client,
                client_id,
                grants,
                delegated,
                sign_in,
                secrets,
            }))),
        }
    }

    /// The app the consent is for and its client ID (the vendor's app must still be configured).
    fn client(
        &self,
        cloud: &crate::ids::CloudKey,
        pending: &PendingAuthorization,
        secrets: &PendingSecrets,
        app: &AppType,
    ) -> Result<(ClientRef, AppId), StepError> {
        let client = decide::client_of(pending, secrets, app);
        let client_id = match &client {
            ClientRef::Custom { app_id, .. } => Some(*app_id),
            ClientRef::Vendor { app_type } => self.platform.vendor_client_id(cloud, app_type),
            ClientRef::Consentry => self.platform.consentry_client_id(),
        };
        let not_configured = PlatformError {
            cause: PlatformCause::NotConfigured,
            aadsts: None,
            error: None,
            message: String::new(),
        };
        match client_id {
            Some(id) => Ok((client, id)),
            None => Err(explain_platform(&not_configured, app, app.custom_app).into()),
        }
    }

    /// Refuses an admin-consent answer whose `tenant` is not the profile's: the consent was given in
    /// another tenant (an administrator signed in with an account of another organization, or the
    /// link was changed to `organizations`), so the profile's own tenant granted nothing now. Checked
    /// before Graph, which would still show the profile tenant's earlier grants. The parameter is
    /// not trusted the other way round: a matching one proves nothing, and Graph decides.
    async fn check_reported_tenant(
        &self,
        reported: &str,
        profile: &AppProfile,
    ) -> Result<(), StepError> {
        if decide::is_profile_tenant(reported, profile.tenant_id) {
            return Ok(());
        }
        let ours = match self
            .core
            .tenant(&crate::ids::TenantRef::Id(profile.tenant_id))
            .await
        {
            Ok(t) => format!("{} ({})", t.primary_domain, t.id),
            Err(_) => profile.tenant_id.to_string(),
        };
        Err(StepError::Failed(decide::other_tenant(reported, &ours)))
    }

    /// The next leg of a re-authorization: the consenting account's own sign-in, under a fresh
    /// state (the pending record moves to it, with a new 10 minutes).
    async fn continue_to_sign_in(
        &self,
        profile: &AppProfile,
        app: &AppType,
        client_id: AppId,
        pending: &PendingAuthorization,
        code_verifier: &str,
    ) -> Result<Step, StepError> {
        let next_state = random_token(32);
        let mut next = pending.clone();
        next.state_hash = state_hash(&next_state);
        next.leg = AuthLeg::SignIn;
        next.sign_in_follows = false;
        next.expires_at = self.core.clock().now() + PENDING_LIFETIME;
        self.core.store().put_pending(&next).await?;
        Ok(Step::Continue(self.microsoft_url(
            profile,
            app,
            AuthLeg::SignIn,
            client_id,
            next_state,
            pending.nonce.clone(),
            code_verifier,
            None,
        )))
    }
}
