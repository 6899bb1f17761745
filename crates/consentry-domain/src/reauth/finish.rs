//! How a re-authorization ends: recorded when the whole answer is verified (`complete`), or the
//! profile's previous status restored (`fail`, `cancel`), and where that previous status comes from.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use consentry_catalog::{AppType, PermissionType};
use secrecy::{ExposeSecret, SecretSlice};
use time::OffsetDateTime;

use super::Reauthorizer;
use super::callback::CallbackOutcome;
use super::decide::{SignInResult, Verified};
use super::explain::{Failure, optional_missing};
use super::secrets::{PendingSecrets, StoredCertificate};
use crate::audit::AuditAction;
use crate::error::DomainError;
use crate::ids::{AppId, ProfileId, Thumbprint};
use crate::model::{
    Actor, AppProfile, CertificateInfo, ConsentUser, EventKind, GrantedPermission, NewHistoryEvent,
    PendingAuthorization, SecretKind,
};
use crate::platform::{ClientRef, Grants};
use crate::service::Consentry;
use crate::status::{ProfileStatus, StatusReason};

/// The status and reason a pending profile had before its re-authorization started, read from its
/// history: for a pending profile whose pending record is gone (a build that deleted the record when
/// a callback took it, killed before the result was saved). The newest `ReauthorizationStarted`
/// event that left a non-pending status names the status; the event before it, the reason. A
/// profile with no such history was never authorized: `NotYetAuthorized`.
pub(crate) async fn previous_state_from_history(
    core: &Consentry,
    profile: &AppProfile,
) -> Result<(ProfileStatus, Option<StatusReason>), DomainError> {
    let events = core.store().list_history(profile.id, 200).await?;
    for (i, e) in events.iter().enumerate() {
        if e.kind == EventKind::ReauthorizationStarted
            && let Some(from) = e.from_status.filter(|s| *s != ProfileStatus::Pending)
        {
            let reason = events.get(i + 1).and_then(|before| before.reason.clone());
            // A non-valid status always carries a reason; a valid one never does.
            let reason = match (from, reason) {
                (ProfileStatus::Valid, _) => None,
                (_, Some(r)) if r.status() == from => Some(r),
                _ => break,
            };
            return Ok((from, reason));
        }
    }
    if profile.authorized_at.is_none() {
        let r = StatusReason::NotYetAuthorized;
        return Ok((r.status(), Some(r)));
    }
    // Authorized, but the history does not say what it was: the status it had when last known to
    // work. The monitor's check replaces it with what the credentials show.
    Ok((ProfileStatus::Valid, None))
}

/// The history's word for a cancelled re-authorization.
const CANCELLED: &str = "The re-authorization was cancelled.";

/// A verified consent, as it is recorded on the profile.
struct Consent {
    client_id: AppId,
    granted: Vec<GrantedPermission>,
    certificate: Option<CertificateInfo>,
    sign_in: Option<SignInResult>,
}

impl Reauthorizer {
    /// Records a verified answer: the secrets first (if storing them fails, the profile record still
    /// describes the old credentials), then the profile with a history event, then the pending
    /// record goes.
    pub(super) async fn complete(
        &self,
        mut profile: AppProfile,
        app: &AppType,
        pending: &PendingAuthorization,
        done: Verified,
    ) -> Result<CallbackOutcome, DomainError> {
        let Verified {
            client,
            client_id,
            grants,
            delegated,
            sign_in,
            secrets,
        } = done;
        let now = self.core.clock().now();
        self.store_refresh_token(profile.id, sign_in.as_ref())
            .await?;
        let certificate = self
            .store_certificate(profile.id, &client, &secrets, now)
            .await?;
        let from = profile.status;
        let consent = Consent {
            client_id,
            granted: granted_permissions(&grants, delegated),
            certificate,
            sign_in,
        };
        let reason = record_consent(
            &mut profile,
            app,
            pending,
            consent,
            self.core.catalog().version,
            now,
        );
        let detail = completion_detail(profile.consent_user.as_ref(), pending);
        self.core
            .store()
            .save_profile(
                &profile,
                Some(NewHistoryEvent {
                    evidence: None,
                    profile_id: profile.id,
                    at: now,
                    actor: pending.started_by.clone(),
                    kind: EventKind::ReauthorizationCompleted,
                    from_status: Some(from),
                    to_status: Some(profile.status),
                    reason,
                    detail: Some(detail),
                }),
            )
            .await?;
        // Only now, with the result saved, the taken record goes: a process killed before this line
        // leaves a record whose deadline runs out, and the monitor then finds a non-pending profile
        // (nothing to restore) or puts a pending one back.
        self.core
            .store()
            .delete_pending(&pending.state_hash)
            .await?;
        // A consent in the tenant proves it is the organization's: a tenant connected by typing
        // its ID is verified by its first completed re-authorization.
        verify_tenant(&self.core, &profile, &pending.started_by).await?;
        Ok(CallbackOutcome::Completed { profile })
    }

    /// Stores the sign-in's refresh token; an application-only consent has no user and no refresh
    /// token any more.
    async fn store_refresh_token(
        &self,
        profile: ProfileId,
        sign_in: Option<&SignInResult>,
    ) -> Result<(), DomainError> {
        if let Some(refresh) = sign_in.and_then(|s| s.refresh_token.as_ref()) {
            self.core
                .store()
                .put_secret(
                    profile,
                    SecretKind::RefreshToken,
                    &SecretSlice::from(refresh.expose_secret().as_bytes().to_vec()),
                )
                .await?;
        } else if sign_in.is_none() {
            self.core
                .store()
                .delete_secret(profile, SecretKind::RefreshToken)
                .await?;
        }
        Ok(())
    }

    /// Stores a custom app's certificate (sealed) and returns what the profile shows of it.
    async fn store_certificate(
        &self,
        profile: ProfileId,
        client: &ClientRef,
        secrets: &PendingSecrets,
        now: OffsetDateTime,
    ) -> Result<Option<CertificateInfo>, DomainError> {
        let (ClientRef::Custom { .. }, Some(pfx_b64), Some(pw)) =
            (client, &secrets.pfx_b64, &secrets.pfx_password)
        else {
            return Ok(None);
        };
        let certificate = certificate_info(pfx_b64, pw, now);
        let blob = serde_json::to_vec(&StoredCertificate {
            pfx_b64: pfx_b64.clone(),
            password: pw.clone(),
        })
        .map_err(DomainError::internal)?;
        self.core
            .store()
            .put_secret(
                profile,
                SecretKind::ClientCertificate,
                &SecretSlice::from(blob),
            )
            .await?;
        Ok(certificate)
    }

    /// Restores the profile's previous status after a failed step and deletes the pending record.
    pub(super) async fn fail(
        &self,
        profile: AppProfile,
        pending: &PendingAuthorization,
        f: Failure,
    ) -> Result<CallbackOutcome, DomainError> {
        let profile = self
            .end_pending(profile, pending, &pending.started_by, &f.message)
            .await?;
        Ok(CallbackOutcome::Failed {
            profile,
            message: f.message,
            remediation: f.remediation,
        })
    }

    /// Restores the status recorded with `pending` (a history event by `actor` saying `detail`),
    /// then deletes the record: after the save, as in `complete`.
    async fn end_pending(
        &self,
        profile: AppProfile,
        pending: &PendingAuthorization,
        actor: &Actor,
        detail: &str,
    ) -> Result<AppProfile, DomainError> {
        let previous = (pending.previous_status, pending.previous_reason.clone());
        let profile = self.restore(profile, previous, actor, detail).await?;
        self.core
            .store()
            .delete_pending(&pending.state_hash)
            .await?;
        Ok(profile)
    }

    /// Puts the profile back to a previous status and reason, with a `ReauthorizationFailed`
    /// history event by `actor` saying `detail`.
    async fn restore(
        &self,
        mut profile: AppProfile,
        (status, reason): (ProfileStatus, Option<StatusReason>),
        actor: &Actor,
        detail: &str,
    ) -> Result<AppProfile, DomainError> {
        let now = self.core.clock().now();
        let from = profile.status;
        profile.status = status;
        profile.reason = reason;
        profile.updated_at = now;
        self.core
            .store()
            .save_profile(
                &profile,
                Some(NewHistoryEvent {
                    evidence: None,
                    profile_id: profile.id,
                    at: now,
                    actor: actor.clone(),
                    kind: EventKind::ReauthorizationFailed,
                    from_status: Some(from),
                    to_status: Some(profile.status),
                    reason: profile.reason.clone(),
                    detail: Some(detail.to_string()),
                }),
            )
            .await?;
        Ok(profile)
    }

    /// Audits a cancel of `profile`'s re-authorization (`method`: the pending record's, when there
    /// was one).
    async fn audit_cancelled(
        &self,
        actor: &Actor,
        profile: &AppProfile,
        method: Option<consentry_catalog::ConsentMethod>,
    ) {
        let details = match method {
            Some(m) => serde_json::json!({ "method": m.as_str(), "app_type": profile.app_type }),
            None => serde_json::json!({ "app_type": profile.app_type }),
        };
        self.core
            .audit()
            .record(
                actor,
                Some(profile.org_id),
                AuditAction::ReauthorizationCancelled,
                format!("profile:{}", profile.id),
                details,
            )
            .await;
    }

    /// Cancels a pending re-authorization and restores the profile's previous status.
    pub async fn cancel(
        &self,
        profile_id: ProfileId,
        actor: &Actor,
    ) -> Result<AppProfile, DomainError> {
        let profile = self.core.profile(profile_id).await?;
        let none =
            || DomainError::Conflict("this app profile has no re-authorization in progress".into());
        if profile.status != ProfileStatus::Pending {
            // A record left behind by a callback that saved its result and died before deleting it
            // is no re-authorization in progress.
            return Err(none());
        }
        let now = self.core.clock().now();
        let pending = match self.core.store().pending_for_profile(profile_id).await? {
            // Pending without a record (a callback killed part-way by an older build): restore what
            // the history says it was.
            None => {
                let previous = previous_state_from_history(&self.core, &profile).await?;
                let profile = self.restore(profile, previous, actor, CANCELLED).await?;
                self.audit_cancelled(actor, &profile, None).await;
                return Ok(profile);
            }
            // Taken by a callback that is still within its deadline: Microsoft's answer is being
            // recorded right now, and it wins.
            Some(p) if p.taken_until.is_some() && !p.is_dead(now) => {
                return Err(DomainError::Conflict(
                    "the administrator's answer from Microsoft is being recorded right now; look at the profile again in a minute".into(),
                ));
            }
            // Taken by a callback that died: nobody else will finish it.
            Some(p) if p.taken_until.is_some() => p,
            // Take it first, so a callback arriving at the same moment cannot also use it.
            Some(p) => self
                .core
                .store()
                .take_pending(&p.state_hash, self.hold_until())
                .await?
                .ok_or_else(|| {
                    DomainError::Conflict(
                        "the administrator's answer from Microsoft arrived meanwhile and is being recorded; look at the profile again in a minute".into(),
                    )
                })?,
        };
        let profile = self
            .end_pending(profile, &pending, actor, CANCELLED)
            .await?;
        self.audit_cancelled(actor, &profile, Some(pending.method))
            .await;
        Ok(profile)
    }
}

/// The permissions granted: the application permissions Graph shows and the delegated scopes
/// effective for the consent.
fn granted_permissions(grants: &Grants, delegated: Vec<String>) -> Vec<GrantedPermission> {
    let roles = grants.app_roles.iter().map(|r| GrantedPermission {
        name: r.clone(),
        kind: PermissionType::Role,
    });
    let scopes = delegated.into_iter().map(|s| GrantedPermission {
        name: s,
        kind: PermissionType::Scope,
    });
    roles.chain(scopes).collect()
}

/// The history's detail of a completed re-authorization: the method, who consented, who started it.
fn completion_detail(consent_user: Option<&ConsentUser>, pending: &PendingAuthorization) -> String {
    match consent_user {
        Some(u) => format!(
            "{} by {} (started by {})",
            pending.method, u.upn, pending.started_by
        ),
        None => format!("{} (started by {})", pending.method, pending.started_by),
    }
}

/// What the profile shows of a custom app's certificate (`None` when it no longer opens).
fn certificate_info(pfx_b64: &str, password: &str, now: OffsetDateTime) -> Option<CertificateInfo> {
    let pfx = STANDARD.decode(pfx_b64).unwrap_or_default();
    let cert = consentry_certs::ClientCertificate::from_pfx(&pfx, password, now).ok()?;
    let thumbprint = Thumbprint::parse(&cert.sha1_thumbprint().hex_upper()).ok()?;
    Some(CertificateInfo {
        thumbprint,
        subject: cert.subject().to_string(),
        not_after: cert.not_after(),
    })
}

/// Writes a verified consent onto the profile: the app, method, permissions, functions, scan
/// targets, certificate and consent user, and the status (valid, or attention when optional
/// permissions are missing). Returns the status reason.
fn record_consent(
    profile: &mut AppProfile,
    app: &AppType,
    pending: &PendingAuthorization,
    consent: Consent,
    catalog_version: u32,
    now: OffsetDateTime,
) -> Option<StatusReason> {
    let optional = optional_missing(app, &consent.granted);
    let reason = (!optional.is_empty()).then_some(StatusReason::OptionalPermissionsAvailable {
        permissions: optional,
    });
    profile.application_id = Some(consent.client_id);
    profile.consent_method = Some(pending.method);
    profile.granted_permissions = consent.granted;
    profile.functions = pending.functions.clone();
    profile.scan_targets = pending.scan_targets.clone();
    if let Some(c) = consent.certificate {
        profile.certificate = Some(c);
    }
    match consent.sign_in {
        Some(s) => {
            profile.consent_user = Some(s.user);
            profile.original_sign_in_ip = s.ip;
        }
        None => {
            profile.consent_user = None;
            profile.original_sign_in_ip = None;
        }
    }
    profile.status = reason
        .as_ref()
        .map(StatusReason::status)
        .unwrap_or(ProfileStatus::Valid);
    profile.reason = reason.clone();
    profile.consented_catalog_version = Some(catalog_version);
    profile.authorized_at = Some(now);
    profile.last_checked_at = Some(now);
    profile.updated_at = now;
    reason
}

/// Marks the profile's tenant verified after a completed re-authorization (a consent in the
/// tenant proves it), with an audit entry when it changed.
async fn verify_tenant(
    core: &crate::service::Consentry,
    profile: &crate::model::AppProfile,
    actor: &crate::model::Actor,
) -> Result<(), DomainError> {
    let verification = crate::model::TenantVerification {
        at: core.clock().now(),
        by: crate::model::VerifiedBy::Reauthorization,
    };
    if core
        .store()
        .verify_tenant(profile.tenant_id, &verification)
        .await?
    {
        core.audit()
            .record(
                actor,
                Some(profile.org_id),
                crate::audit::AuditAction::TenantVerified,
                format!("tenant:{}", profile.tenant_id),
                serde_json::json!({ "by": "reauthorization", "profile": profile.id.to_string() }),
            )
            .await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AuthLeg;
    use crate::reauth::testing::{app, grants, pending, profile, signed_in_result};

    #[test]
    fn granted_permissions_are_the_application_roles_then_the_delegated_scopes() {
        let mut g = grants();
        g.app_roles = vec!["Sites.Read.All".into()];
        let granted = granted_permissions(&g, vec!["User.Read".into()]);
        assert_eq!(granted.len(), 2);
        assert_eq!(
            (granted[0].name.as_str(), granted[0].kind),
            ("Sites.Read.All", PermissionType::Role)
        );
        assert_eq!(
            (granted[1].name.as_str(), granted[1].kind),
            ("User.Read", PermissionType::Scope)
        );
    }

    #[test]
    fn the_history_says_who_consented_and_who_started_it() {
        let p = pending(AuthLeg::SignIn, false);
        let user = signed_in_result().user;
        let by = completion_detail(Some(&user), &p);
        assert!(
            by.contains(" by admin@contoso.example (started by "),
            "{by}"
        );
        let app_only = completion_detail(None, &p);
        assert!(!app_only.contains(" by admin@"), "{app_only}");
        assert!(app_only.contains("(started by "), "{app_only}");
    }

    #[test]
    fn a_certificate_that_no_longer_opens_shows_nothing() {
        assert!(certificate_info("not base64!", "pw", OffsetDateTime::now_utc()).is_none());
    }

    #[test]
    fn a_recorded_consent_is_attention_when_optional_permissions_are_missing() {
        let a = app("cloud-backup-delegated");
        let mut p = profile();
        let mut pend = pending(AuthLeg::SignIn, false);
        pend.functions = vec!["protect-power-bi".into()];
        let now = OffsetDateTime::now_utc();
        let client_id = AppId::parse("0b1f8b4e-6b1e-4c1e-9a55-3c1e8b2f6d10").unwrap();
        let consent = Consent {
            client_id,
            granted: vec![],
            certificate: None,
            sign_in: Some(signed_in_result()),
        };
        let reason = record_consent(&mut p, &a, &pend, consent, 7, now);
        assert_eq!(
            reason,
            Some(StatusReason::OptionalPermissionsAvailable {
                permissions: vec!["Tasks.ReadWrite.All".into()]
            })
        );
        assert_eq!(p.status, reason.unwrap().status());
        assert_eq!(p.functions, vec!["protect-power-bi"]);
        assert_eq!(p.application_id, Some(client_id));
        assert_eq!(p.consented_catalog_version, Some(7));
        assert_eq!(p.authorized_at, Some(now));
        assert!(p.consent_user.is_some());
    }

    #[test]
    fn an_application_only_consent_is_valid_and_forgets_the_consent_user() {
        let a = app("m365-all");
        let mut p = profile();
        p.consent_user = Some(signed_in_result().user);
        let consent = Consent {
            client_id: AppId::parse("0b1f8b4e-6b1e-4c1e-9a55-3c1e8b2f6d10").unwrap(),
            granted: vec![],
            certificate: None,
            sign_in: None,
        };
        let reason = record_consent(
            &mut p,
            &a,
            &pending(AuthLeg::AdminConsent, false),
            consent,
            1,
            OffsetDateTime::now_utc(),
        );
        assert_eq!(reason, None);
        assert_eq!(p.status, ProfileStatus::Valid);
        assert!(p.consent_user.is_none());
        assert!(p.original_sign_in_ip.is_none());
    }
}
