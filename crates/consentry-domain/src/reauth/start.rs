//! Starting a re-authorization: the choice validated, a pending authorization recorded (state,
//! PKCE verifier, nonce, uploaded certificate — sealed), the profile marked pending, and the
//! Microsoft URL (or a consent link) returned. The profile's credentials are not touched.

use consentry_catalog::{AppType, ConsentMethod};
use secrecy::SecretSlice;
use serde::Serialize;
use time::OffsetDateTime;

use super::choice::{self, Choice, StartRequest};
use super::finish::previous_state_from_history;
use super::secrets::{PendingSecrets, random_token, state_hash};
use super::{HANDOFF_LIFETIME, PENDING_LIFETIME, Reauthorizer};
use crate::audit::AuditAction;
use crate::error::DomainError;
use crate::ids::{AppId, ProfileId};
use crate::model::{Actor, AppProfile, AuthLeg, EventKind, NewHistoryEvent, PendingAuthorization};
use crate::platform::{ClientRef, PlatformCause, PlatformError};
use crate::status::{ProfileStatus, StatusReason};

/// A started re-authorization: where to send the administrator.
#[derive(Debug, Clone, Serialize)]
pub struct Started {
    /// The Microsoft page to open.
    pub url: String,
    /// Until when the link works.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The profile, now pending.
    pub profile: AppProfile,
    /// Whether `url` is a consent link to hand to the tenant's administrator.
    pub consent_link: bool,
}

/// The random values of a new pending authorization.
struct Secrets {
    state: String,
    verifier: String,
    nonce: String,
}

impl Reauthorizer {
    /// Starts a re-authorization whose Microsoft URL is meant for another browser (the JSON API,
    /// the CLI): the callback is accepted from any browser. Validates the choices, records a
    /// pending authorization, marks the profile pending and returns the URL to send the
    /// administrator to.
    pub async fn start_unbound(
        &self,
        profile_id: ProfileId,
        req: StartRequest,
        actor: &Actor,
    ) -> Result<Started, DomainError> {
        self.start(profile_id, req, actor, None).await
    }

    /// [`start_unbound`](Self::start_unbound) from a browser holding the random `browser_binding`
    /// in a cookie: the callback is then accepted only with that cookie (RFC 9700 §4.7). Consent
    /// links (`handoff`) are bound when they are opened
    /// ([`continue_handoff`](Self::continue_handoff)), not here.
    pub async fn start_in_browser(
        &self,
        profile_id: ProfileId,
        req: StartRequest,
        actor: &Actor,
        browser_binding: &str,
    ) -> Result<Started, DomainError> {
        self.start(profile_id, req, actor, Some(browser_binding))
            .await
    }

    async fn start(
        &self,
        profile_id: ProfileId,
        req: StartRequest,
        actor: &Actor,
        browser_binding: Option<&str>,
    ) -> Result<Started, DomainError> {
        let now = self.core.clock().now();
        let mut profile = self.core.profile(profile_id).await?;
        let app = self.app_type(&profile)?;
        let (choice, client_id) = self.check_choice(&profile, &app, &req, now).await?;
        let (first_leg, sign_in_follows) = choice::legs(&app, req.method);
        let secrets = Secrets {
            state: random_token(32),
            verifier: random_token(48),
            nonce: random_token(16),
        };
        let binding = browser_binding.filter(|_| !req.handoff);
        let legs = (first_leg, sign_in_follows);
        let pending = self
            .pending_record(&profile, &req, actor, choice, legs, &secrets, binding, now)
            .await?;
        self.core.store().put_pending(&pending).await?;
        self.mark_pending(&mut profile, &app, &req, actor, now)
            .await?;
        let (url, consent_link) = match &self.link_base {
            Some(base) if req.handoff => (
                format!("{base}/consent/{}/{}", profile.id, secrets.state),
                true,
            ),
            _ => (
                self.microsoft_url(
                    &profile,
                    &app,
                    first_leg,
                    client_id,
                    secrets.state,
                    secrets.nonce,
                    &secrets.verifier,
                    req.login_hint,
                ),
                false,
            ),
        };
        Ok(Started {
            url,
            expires_at: pending.expires_at,
            profile,
            consent_link,
        })
    }

    /// Validates the choice against the catalog and the organization's modules, and that what it
    /// needs is in place: the vendor's app configured, consent links enabled for a handoff, and for
    /// user consent the organization's admin consent. Returns it with the app's client ID.
    async fn check_choice(
        &self,
        profile: &AppProfile,
        app: &AppType,
        req: &StartRequest,
        now: OffsetDateTime,
    ) -> Result<(Choice, AppId), DomainError> {
        choice::check_method(app, req.method)?;
        let org = self.core.organization(profile.org_id).await?;
        let modules: Vec<String> = org.modules.iter().cloned().collect();
        let choice = choice::validate(app, req, &modules, now)?;
        let client_id = match &choice.client {
            ClientRef::Custom { app_id, .. } => *app_id,
            ClientRef::Vendor { .. } => self.vendor_client_id(&profile.cloud, app)?,
            // A choice is built from the catalog: an app profile never acts as Consentry's own app.
            ClientRef::Consentry => {
                return Err(DomainError::Internal(
                    "a re-authorization cannot act as Consentry's own app registration".into(),
                ));
            }
        };
        if req.handoff && self.link_base.is_none() {
            return Err(DomainError::Conflict(
                "consent links are not enabled on this server (public_url is not set)".into(),
            ));
        }
        if req.method == ConsentMethod::User {
            self.require_admin_consent(profile, app, &choice.client)
                .await?;
        }
        Ok((choice, client_id))
    }

    /// User consent needs the organization's admin consent first (the documentation's preparation
    /// step): the app's grants in the tenant are read to tell.
    async fn require_admin_consent(
        &self,
        profile: &AppProfile,
        app: &AppType,
        client: &ClientRef,
    ) -> Result<(), DomainError> {
        let grants = self
            .platform
            .grants(&profile.tenant_at(), client)
            .await
            .map_err(|e| start_error(&e, app))?;
        match choice::user_consent_refusal(app, &grants) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The pending record of a new re-authorization: its first leg at Microsoft (or the consent
    /// link) and whether a sign-in follows (`legs`). A pending re-authorization already running is replaced, keeping the status
    /// from before the first one. "Pending" itself is never what a profile goes back to: a pending
    /// profile whose record is gone (a callback killed part-way by an older build) takes its
    /// status from its history.
    #[allow(clippy::too_many_arguments)]
    async fn pending_record(
        &self,
        profile: &AppProfile,
        req: &StartRequest,
        actor: &Actor,
        choice: Choice,
        (first_leg, sign_in_follows): (AuthLeg, bool),
        secrets: &Secrets,
        browser_binding: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<PendingAuthorization, DomainError> {
        let (previous_status, previous_reason) = if profile.status == ProfileStatus::Pending {
            match self.core.store().pending_for_profile(profile.id).await? {
                Some(p) => (p.previous_status, p.previous_reason),
                None => previous_state_from_history(&self.core, profile).await?,
            }
        } else {
            (profile.status, profile.reason.clone())
        };
        let sealed = PendingSecrets {
            code_verifier: secrets.verifier.clone(),
            pfx_b64: choice.pfx.as_ref().map(|(b, _)| b.clone()),
            pfx_password: choice.pfx.map(|(_, p)| p),
            browser_binding: browser_binding.map(state_hash),
        };
        let blob = sealed.to_blob().map_err(DomainError::internal)?;
        let lifetime = if req.handoff {
            HANDOFF_LIFETIME
        } else {
            PENDING_LIFETIME
        };
        Ok(PendingAuthorization {
            state_hash: state_hash(&secrets.state),
            profile_id: profile.id,
            started_by: actor.clone(),
            method: req.method,
            leg: if req.handoff {
                AuthLeg::Handoff
            } else {
                first_leg
            },
            sign_in_follows,
            custom_app_id: choice.custom_app_id,
            functions: req.functions.clone(),
            scan_targets: choice.scan_targets,
            nonce: secrets.nonce.clone(),
            previous_status,
            previous_reason,
            created_at: now,
            expires_at: now + lifetime,
            secrets: SecretSlice::from(blob),
            taken_until: None,
        })
    }

    /// Marks the profile pending, with a history event and an audit entry.
    async fn mark_pending(
        &self,
        profile: &mut AppProfile,
        app: &AppType,
        req: &StartRequest,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<(), DomainError> {
        let from = profile.status;
        let reason = StatusReason::ReauthorizationStarted {
            by: if req.handoff {
                format!("{actor} (consent link sent to the tenant's administrator)")
            } else {
                actor.to_string()
            },
        };
        profile.status = reason.status();
        profile.reason = Some(reason.clone());
        profile.updated_at = now;
        self.core
            .store()
            .save_profile(
                profile,
                Some(NewHistoryEvent {
                    evidence: None,
                    profile_id: profile.id,
                    at: now,
                    actor: actor.clone(),
                    kind: EventKind::ReauthorizationStarted,
                    from_status: Some(from),
                    to_status: Some(profile.status),
                    reason: Some(reason),
                    detail: Some(format!("{} ({})", req.method, app.display_name)),
                }),
            )
            .await?;
        self.core
            .audit()
            .record(
                actor,
                Some(profile.org_id),
                AuditAction::ReauthorizationStarted,
                format!("profile:{}", profile.id),
                serde_json::json!({
                    "method": req.method.as_str(),
                    "app_type": profile.app_type,
                    "consent_link": req.handoff,
                }),
            )
            .await;
        Ok(())
    }
}

/// A platform failure while starting: transient ones say to try again, the others what to do.
fn start_error(e: &PlatformError, app: &AppType) -> DomainError {
    if e.cause == PlatformCause::Transient {
        return DomainError::Conflict(format!(
            "Microsoft did not answer in time ({}); nothing was changed, try again in a few minutes",
            e.message
        ));
    }
    let f = super::explain::explain_platform(e, app, app.custom_app);
    DomainError::invalid(
        "method",
        format!("{} {}", f.message, f.remediation.join(" ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reauth::testing::app;

    #[test]
    fn a_transient_failure_at_start_says_to_try_again_and_others_what_to_do() {
        let mut e = PlatformError {
            cause: PlatformCause::Transient,
            aadsts: None,
            error: None,
            message: "timed out".into(),
        };
        let a = app("insights-m365");
        let transient = start_error(&e, &a);
        assert!(matches!(&transient, DomainError::Conflict(m) if m.contains("(timed out)")));
        e.cause = PlatformCause::MfaRequired;
        let mfa = start_error(&e, &a).to_string();
        assert!(
            mfa.starts_with("method: Microsoft requires multi-factor authentication"),
            "{mfa}"
        );
    }
}
