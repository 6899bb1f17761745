//! Re-authorizing an app profile: every path the product documentation describes — administrator consent,
//! user consent, custom Azure apps with a certificate, the Cloud Backup delegated app's functions, what a
//! Power Platform profile scans — as one small state machine over the identity-platform port.
//!
//! The profile keeps its previous credentials and status until a re-authorization completes; a failure,
//! cancellation or expiry restores the previous status, so nothing is lost.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use consentry_catalog::{AppType, ConsentMethod, PermissionKind, PermissionType, UserFacts};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::audit::AuditAction;
use crate::error::DomainError;
use crate::ids::{AppId, ProfileId, Thumbprint};
use crate::model::{
    Actor, AppProfile, AuthLeg, CertificateInfo, ConsentUser, EventKind, GrantedPermission,
    NewHistoryEvent, PendingAuthorization, SecretKind,
};
use crate::platform::{
    ClientRef, Grants, IdentityPlatform, PlatformCause, PlatformError, SignInRequest,
};
use crate::service::Consentry;
use crate::status::{ProfileStatus, StatusReason};

/// How long a started re-authorization waits for the administrator.
pub const PENDING_LIFETIME: Duration = Duration::minutes(10);
/// How long a consent link handed to a tenant administrator stays usable.
pub const HANDOFF_LIFETIME: Duration = Duration::hours(72);
/// How long a callback (or a cancel) may hold a taken pending record before it is taken to have
/// died: the server sets it from its request time limit (a callback's request is dropped after it),
/// plus a margin. Past it the monitor puts the profile back.
pub const CALLBACK_HOLD: Duration = Duration::minutes(2);

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

/// A custom Azure app's identity as uploaded by the administrator.
pub struct CustomAppInput {
    /// The application (client) ID, as typed.
    pub application_id: String,
    /// The .pfx file's bytes.
    pub pfx: Vec<u8>,
    /// The .pfx password.
    pub password: SecretString,
}

impl std::fmt::Debug for CustomAppInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomAppInput")
            .field("application_id", &self.application_id)
            .field("pfx_len", &self.pfx.len())
            .finish_non_exhaustive()
    }
}

/// What the person starting a re-authorization chose.
#[derive(Debug)]
pub struct StartRequest {
    /// Administrator or user consent.
    pub method: ConsentMethod,
    /// For custom app types: the app ID and certificate.
    pub custom_app: Option<CustomAppInput>,
    /// For app types with functions: the chosen function keys.
    pub functions: Vec<String>,
    /// For app types with scan targets: what the profile will scan (at least one).
    pub scan_targets: Vec<String>,
    /// Pre-fills the sign-in page.
    pub login_hint: Option<String>,
    /// Return a consent link for the tenant's administrator (who needs no Consentry account)
    /// instead of the Microsoft URL.
    pub handoff: bool,
}

/// What a consent link shows before it continues to Microsoft.
#[derive(Debug, Clone, Serialize)]
pub struct HandoffView {
    /// App type display name.
    pub app_type_name: String,
    /// The app's name in Microsoft Entra ID (None for custom apps).
    pub entra_app_name: Option<String>,
    /// The app type is a custom app (the customer's own app registration), not one of the vendor's.
    pub custom_app: bool,
    /// The service using it.
    pub service_name: String,
    /// The tenant's primary domain.
    pub tenant_domain: String,
    /// The consent method.
    pub method: ConsentMethod,
    /// The permissions the app asks for: (name, "delegated" | "application").
    pub permissions: Vec<(String, &'static str)>,
    /// What the consenting account needs, in words.
    pub required_roles: String,
    /// Why it is needed: the profile's reason before the re-authorization.
    pub why: Option<String>,
    /// The functions chosen.
    pub functions: Vec<String>,
    /// What the profile will scan (names).
    pub scan_targets: Vec<String>,
    /// The catalog's notes on the app type (guidance for the consenting account).
    pub notes: Option<String>,
    /// Who created the link, in words ([`crate::Actor::describe`]: the console account, the API
    /// caller, the service or the operator).
    pub created_by: String,
    /// The name of the organization (the vendor's customer) the link was created for.
    pub organization: String,
    /// Until when it works.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

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

#[derive(Serialize, Deserialize)]
struct PendingSecrets {
    code_verifier: String,
    pfx_b64: Option<String>,
    pfx_password: Option<String>,
    /// Hex SHA-256 of the browser-binding cookie of the browser the sign-in was started in; the
    /// callback is refused without the matching cookie. `None`: started through the API for
    /// another browser (not bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    browser_binding: Option<String>,
}

/// The message of a callback presented without the browser-binding cookie of the browser that
/// started the re-authorization.
pub const OTHER_BROWSER: &str = "this re-authorization was started in another browser (or its cookie expired): start again from the same browser";

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Hex SHA-256 of an OAuth state value, the key under which its pending record is stored.
pub fn state_hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// PKCE S256 challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A failure that restores the profile and is reported on the result page.
struct Failure {
    message: String,
    remediation: Vec<String>,
}

impl Failure {
    fn new(message: impl Into<String>, remediation: Vec<String>) -> Self {
        Self {
            message: message.into(),
            remediation,
        }
    }
}

/// What a platform failure during re-authorization means to the administrator.
fn explain_platform(e: &PlatformError, app: &AppType, custom: bool) -> Failure {
    let grant_steps = || {
        if custom {
            vec![
                "Sign in to the Microsoft Entra admin center.".to_string(),
                "Go to Microsoft Entra ID > App registrations, open the custom app, select API permissions and click Grant admin consent for your tenant.".to_string(),
                "Then re-authorize the app profile again.".to_string(),
            ]
        } else {
            vec![
                "Sign in to the Microsoft Entra admin center.".to_string(),
                format!(
                    "Go to Microsoft Entra ID > Enterprise applications, open {}, select Permissions (under Security) and click Grant admin consent for your tenant.",
                    app.entra_app_name.as_deref().unwrap_or(&app.display_name)
                ),
                "Then re-authorize the app profile again.".to_string(),
            ]
        }
    };
    match e.cause {
        PlatformCause::Cancelled => Failure::new(
            "The sign-in or consent was cancelled at Microsoft. Nothing was changed.",
            vec!["Start the re-authorization again when you are ready.".into()],
        ),
        PlatformCause::ConsentDeclined => Failure::new(
            "Consent was declined at Microsoft (AADSTS65004). Nothing was changed.",
            vec!["Start the re-authorization again and accept the permissions the app asks for.".into()],
        ),
        PlatformCause::NeedAdminApproval => {
            let mut steps = vec![
                "Re-authorize with a Global Administrator or Privileged Role Administrator account using Administrator consent, or have an administrator grant admin consent to the app first:".to_string(),
            ];
            steps.extend(grant_steps());
            Failure::new(
                "The account used may not grant this consent: Microsoft asks for an administrator's approval (admin consent has not been granted to the app in your tenant).",
                steps,
            )
        }
        PlatformCause::ConsentMissing | PlatformCause::AppNotInTenant => Failure::new(
            "Admin consent has not been granted to this app in your tenant.",
            grant_steps(),
        ),
        PlatformCause::CertificateNotRegistered => Failure::new(
            "The certificate in the .pfx file is not registered on the custom app in Microsoft Entra ID (AADSTS700027).",
            vec![
                "Upload the matching .cer/.crt file to the custom app (App registrations > the app > Certificates & secrets), or".into(),
                "re-authorize with the .pfx file that pairs with the certificate already uploaded.".into(),
            ],
        ),
        PlatformCause::MfaRequired => Failure::new(
            "Microsoft requires multi-factor authentication for this account.",
            vec!["Start again and complete the multi-factor authentication step at Microsoft.".into()],
        ),
        PlatformCause::ConditionalAccess => Failure::new(
            "A conditional access policy in your tenant blocked the sign-in.",
            vec![
                "Sign in from a location your conditional access policies allow, or add it to their trusted locations.".into(),
            ],
        ),
        PlatformCause::ConditionalAccessRequirement(r) => Failure::new(
            format!(
                "A conditional access policy in your tenant {}: the service redeems the sign-in from its servers, which present no device or client app the policy accepts.",
                r.describe()
            ),
            vec![
                "Exclude this app (its enterprise application) from that policy, then start the re-authorization again.".into(),
            ],
        ),
        PlatformCause::IdTokenRejected => Failure::new(
            format!(
                "The sign-in answer could not be verified as Microsoft's ({}). Nothing was changed.",
                e.message
            ),
            vec!["Start the re-authorization again; if it fails the same way, contact the service operator.".into()],
        ),
        PlatformCause::Transient => Failure::new(
            "Microsoft did not answer in time. Nothing was changed.",
            vec!["Try the re-authorization again in a few minutes.".into()],
        ),
        PlatformCause::NotConfigured
        | PlatformCause::VendorSecretInvalid
        | PlatformCause::VendorSecretExpired => Failure::new(
            "The service's own app credential was rejected or is not configured. The operator must fix it; nothing is needed in your tenant.",
            vec!["Contact the service operator.".into()],
        ),
        _ => Failure::new(
            match e.aadsts {
                Some(c) => format!("Microsoft refused the re-authorization (AADSTS{c}): {}", e.message),
                None => format!("Microsoft refused the re-authorization: {}", e.message),
            },
            vec!["Start the re-authorization again; if it fails the same way, contact the service operator.".into()],
        ),
    }
}

/// The Graph permissions an app type requires at the catalog's version.
fn required(app: &AppType, kind: PermissionType) -> Vec<String> {
    // Graph's grants and token scopes name Graph permissions only; a scope of another resource
    // (Viva Engage's) is proven by a token for that resource (`signed_in`).
    app.permissions
        .iter()
        .filter(|p| p.kind == kind && !p.optional && p.is_graph())
        .map(|p| p.name.clone())
        .collect()
}

fn optional_missing(app: &AppType, granted: &[GrantedPermission]) -> Vec<String> {
    app.permissions
        .iter()
        .filter(|p| p.optional)
        .filter(|p| !granted.iter().any(|g| g.name == p.name && g.kind == p.kind))
        .map(|p| p.name.clone())
        .collect()
}

/// Re-authorization over the domain services and the identity platform.
#[derive(Debug, Clone)]
pub struct Reauthorizer {
    core: Consentry,
    platform: Arc<dyn IdentityPlatform>,
    link_base: Option<String>,
    callback_hold: Duration,
}

impl Reauthorizer {
    /// Builds it.
    pub fn new(core: Consentry, platform: Arc<dyn IdentityPlatform>) -> Self {
        Self {
            core,
            platform,
            link_base: None,
            callback_hold: CALLBACK_HOLD,
        }
    }

    /// How long a callback holds a taken pending record ([`CALLBACK_HOLD`] by default): longer than
    /// any callback can run (the server's request time limit), or a slow callback's profile would
    /// be put back while it still works; its result then still wins, only later.
    pub fn with_callback_hold(mut self, hold: Duration) -> Self {
        self.callback_hold = hold;
        self
    }

    /// The deadline of a record taken now.
    fn hold_until(&self) -> OffsetDateTime {
        self.core.clock().now() + self.callback_hold
    }

    /// Enables consent links, served under `{base}/consent/{profile}/{token}`.
    pub fn with_consent_links(mut self, base: impl Into<String>) -> Self {
        self.link_base = Some(base.into().trim_end_matches('/').to_string());
        self
    }

    /// The Microsoft URL of a step.
    #[allow(clippy::too_many_arguments)]
    fn microsoft_url(
        &self,
        profile: &AppProfile,
        app: &AppType,
        leg: AuthLeg,
        client_id: AppId,
        state: String,
        nonce: String,
        verifier: &str,
        login_hint: Option<String>,
    ) -> String {
        match leg {
            AuthLeg::AdminConsent | AuthLeg::Handoff => {
                self.platform
                    .admin_consent_url(profile.tenant_id, client_id, &state)
            }
            AuthLeg::SignIn => self.platform.sign_in_url(&SignInRequest {
                tenant: profile.tenant_id,
                client_id,
                state,
                nonce,
                code_challenge: pkce_challenge(verifier),
                // Every delegated scope, other resources' too, so that the consent covers them.
                scopes: app.sign_in_scopes(),
                login_hint,
            }),
        }
    }

    /// The first step at Microsoft for an app type and method, and whether a sign-in follows it.
    fn legs(app: &AppType, method: ConsentMethod) -> (AuthLeg, bool) {
        match (app.permission_kind, method) {
            (PermissionKind::Application, _) => (AuthLeg::AdminConsent, false),
            (_, ConsentMethod::Admin) => (AuthLeg::AdminConsent, true),
            (_, ConsentMethod::User) => (AuthLeg::SignIn, false),
        }
    }

    /// The domain services.
    pub fn core(&self) -> &Consentry {
        &self.core
    }

    /// The identity platform.
    pub fn platform(&self) -> &Arc<dyn IdentityPlatform> {
        &self.platform
    }

    fn app_type(&self, profile: &AppProfile) -> Result<AppType, DomainError> {
        self.core
            .catalog()
            .app_type(&profile.app_type)
            .cloned()
            .ok_or_else(|| {
                DomainError::Conflict(format!(
                    "the app type {} of this profile is no longer in the catalog",
                    profile.app_type
                ))
            })
    }

    /// Starts a re-authorization: validates the choices, records a pending authorization (state,
    /// PKCE verifier, uploaded certificate — sealed), marks the profile pending and returns the
    /// Microsoft URL to send the administrator to. The profile's credentials are not touched.
    pub async fn start(
        &self,
        profile_id: ProfileId,
        req: StartRequest,
        actor: &Actor,
    ) -> Result<Started, DomainError> {
        self.start_bound(profile_id, req, actor, None).await
    }

    /// [`start`](Self::start) from a browser holding the random `browser_binding` in a cookie:
    /// the callback is then accepted only with that cookie (RFC 9700 §4.7). Consent links
    /// (`handoff`) are bound when they are opened ([`continue_handoff`](Self::continue_handoff)),
    /// not here.
    pub async fn start_bound(
        &self,
        profile_id: ProfileId,
        req: StartRequest,
        actor: &Actor,
        browser_binding: Option<&str>,
    ) -> Result<Started, DomainError> {
        let now = self.core.clock().now();
        let mut profile = self.core.profile(profile_id).await?;
        let app = self.app_type(&profile)?;
        if !app.allows(req.method) {
            return Err(DomainError::invalid(
                "method",
                format!(
                    "{} supports administrator consent only; user consent is available only for the app types the documentation lists",
                    app.display_name
                ),
            ));
        }

        // Functions (Cloud Backup delegated app and the like).
        let org = self.core.organization(profile.org_id).await?;
        if app.functions.is_empty() {
            if !req.functions.is_empty() {
                return Err(DomainError::invalid(
                    "functions",
                    format!("{} has no selectable functions", app.display_name),
                ));
            }
        } else {
            let modules: Vec<String> = org.modules.iter().cloned().collect();
            app.check_functions(&req.functions, &modules)
                .map_err(|e| DomainError::invalid("functions", e.to_string()))?;
        }
        // What the profile will scan (Power Platform app types): the consent's own choice, not gated by
        // modules; the consenting user's requirements follow from it.
        let scan_targets = app
            .check_scan_targets(&req.scan_targets)
            .map_err(|e| DomainError::invalid("scan_targets", e.to_string()))?;

        // Custom app: application ID and certificate.
        let (client, custom_app_id, pfx_secret) = if app.custom_app {
            let input = req.custom_app.as_ref().ok_or_else(|| {
                DomainError::invalid(
                    "application_id",
                    format!(
                        "{} needs the application ID of your custom app, its certificate file (.pfx) and the certificate password",
                        app.display_name
                    ),
                )
            })?;
            let app_id = AppId::parse(&input.application_id)
                .map_err(|e| DomainError::bad_id("application_id", e))?;
            consentry_certs::ClientCertificate::from_pfx(
                &input.pfx,
                input.password.expose_secret(),
                now,
            )
            .map_err(|e| DomainError::invalid("certificate", e.to_string()))?;
            (
                ClientRef::Custom {
                    app_id,
                    pfx: SecretSlice::from(input.pfx.clone()),
                    password: input.password.clone(),
                },
                Some(app_id),
                Some((
                    STANDARD.encode(&input.pfx),
                    input.password.expose_secret().to_string(),
                )),
            )
        } else {
            if req.custom_app.is_some() {
                return Err(DomainError::invalid(
                    "application_id",
                    format!(
                        "{} uses the service's own app: no application ID or certificate is needed",
                        app.display_name
                    ),
                ));
            }
            (
                ClientRef::Vendor {
                    app_type: app.key.clone(),
                },
                None,
                None,
            )
        };
        let client_id = match &client {
            ClientRef::Custom { app_id, .. } => *app_id,
            ClientRef::Vendor { app_type } => self.platform.vendor_client_id(app_type).ok_or_else(|| {
                DomainError::Conflict(format!(
                    "the service's app for {} is not configured; the operator must add it to Consentry's configuration",
                    app.display_name
                ))
            })?,
        };

        // The legs at Microsoft.
        let (first_leg, sign_in_follows) = Self::legs(&app, req.method);
        if req.handoff && self.link_base.is_none() {
            return Err(DomainError::Conflict(
                "consent links are not enabled on this server (public_url is not set)".into(),
            ));
        }
        if req.method == ConsentMethod::User {
            // User consent needs the organization's admin consent first (the documentation's preparation step).
            let grants = self
                .platform
                .grants(profile.tenant_id, &client)
                .await
                .map_err(|e| self.start_error(&e, &app))?;
            // Graph lists delegated grants only to apps allowed to read them; when it does not,
            // Microsoft itself refuses the user's consent ("need admin approval") and the callback
            // explains how to grant admin consent.
            let needed = required(&app, PermissionType::Scope);
            let missing: Vec<&String> = needed
                .iter()
                .filter(|s| {
                    grants.delegated_readable && !grants.delegated_all_principals.contains(s)
                })
                .collect();
            if grants.service_principal.is_none() || !missing.is_empty() {
                let f = explain_platform(
                    &PlatformError {
                        cause: PlatformCause::ConsentMissing,
                        aadsts: None,
                        error: None,
                        message: String::new(),
                    },
                    &app,
                    app.custom_app,
                );
                return Err(DomainError::invalid(
                    "method",
                    format!(
                        "User consent needs admin consent to be granted to the app first. {}",
                        f.remediation.join(" ")
                    ),
                ));
            }
        }

        // The pending record. A pending re-authorization already running is replaced, keeping the
        // status from before the first one.
        // "Pending" itself is never what a profile goes back to: a pending profile whose record is
        // gone (a callback killed part-way by an older build) takes its status from its history.
        let (previous_status, previous_reason) = if profile.status == ProfileStatus::Pending {
            match self.core.store().pending_for_profile(profile.id).await? {
                Some(p) => (p.previous_status, p.previous_reason),
                None => previous_state_from_history(&self.core, &profile).await?,
            }
        } else {
            (profile.status, profile.reason.clone())
        };
        let state = random_token(32);
        let verifier = random_token(48);
        let nonce = random_token(16);
        let secrets = PendingSecrets {
            code_verifier: verifier.clone(),
            pfx_b64: pfx_secret.as_ref().map(|(b, _)| b.clone()),
            pfx_password: pfx_secret.map(|(_, p)| p),
            browser_binding: browser_binding.filter(|_| !req.handoff).map(state_hash),
        };
        let blob = serde_json::to_vec(&secrets).map_err(DomainError::internal)?;
        let expires_at = now
            + if req.handoff {
                HANDOFF_LIFETIME
            } else {
                PENDING_LIFETIME
            };
        let pending = PendingAuthorization {
            state_hash: state_hash(&state),
            profile_id: profile.id,
            started_by: actor.clone(),
            method: req.method,
            leg: if req.handoff {
                AuthLeg::Handoff
            } else {
                first_leg
            },
            sign_in_follows,
            custom_app_id,
            functions: req.functions.clone(),
            scan_targets,
            nonce: nonce.clone(),
            previous_status,
            previous_reason,
            created_at: now,
            expires_at,
            secrets: SecretSlice::from(blob),
            taken_until: None,
        };
        self.core.store().put_pending(&pending).await?;

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
                &profile,
                Some(NewHistoryEvent {
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
        let (url, consent_link) = match &self.link_base {
            Some(base) if req.handoff => (format!("{base}/consent/{}/{state}", profile.id), true),
            _ => (
                self.microsoft_url(
                    &profile,
                    &app,
                    first_leg,
                    client_id,
                    state,
                    nonce,
                    &verifier,
                    req.login_hint,
                ),
                false,
            ),
        };
        Ok(Started {
            url,
            expires_at,
            profile,
            consent_link,
        })
    }

    /// The pending consent link of a profile, if `token` is its secret and it is still valid.
    async fn live_link(
        &self,
        profile_id: ProfileId,
        token: &str,
    ) -> Result<(AppProfile, AppType, PendingAuthorization), DomainError> {
        let gone = || {
            DomainError::invalid(
                "link",
                "this consent link is not valid: it was already used, replaced by a newer one, cancelled or mistyped; ask for a new link",
            )
        };
        if token.is_empty() || token.len() > 128 {
            return Err(gone());
        }
        let profile = self.core.profile(profile_id).await.map_err(|_| gone())?;
        let pending = self
            .core
            .store()
            .pending_for_profile(profile_id)
            .await?
            .filter(|p| p.leg == AuthLeg::Handoff && p.state_hash == state_hash(token))
            .ok_or_else(gone)?;
        if self.core.clock().now() > pending.expires_at {
            return Err(DomainError::invalid(
                "link",
                "this consent link has expired; ask for a new link",
            ));
        }
        let app = self.app_type(&profile)?;
        Ok((profile, app, pending))
    }

    /// What a consent link shows: the app, its permissions, why, and what the consenting account needs.
    pub async fn handoff_view(
        &self,
        profile_id: ProfileId,
        token: &str,
    ) -> Result<HandoffView, DomainError> {
        let (profile, app, pending) = self.live_link(profile_id, token).await?;
        let tenant = self
            .core
            .tenant(&crate::ids::TenantRef::Id(profile.tenant_id))
            .await?;
        let organization = self.core.organization(tenant.org_id).await?.name;
        let catalog = self.core.catalog();
        let required_roles = app
            .requirement_for(
                pending.method,
                Some(&profile.service),
                &pending.functions,
                &pending.scan_targets,
            )
            .map(|r| catalog.describe(&r))
            .unwrap_or_else(|| "no particular role".into());
        Ok(HandoffView {
            app_type_name: app.display_name.clone(),
            entra_app_name: app.entra_app_name.clone(),
            custom_app: app.custom_app,
            service_name: catalog
                .service(&profile.service)
                .map(|s| s.name.clone())
                .unwrap_or_else(|| profile.service.clone()),
            tenant_domain: tenant.primary_domain.to_string(),
            method: pending.method,
            permissions: app
                .permissions
                .iter()
                .map(|p| {
                    (
                        p.name.clone(),
                        match p.kind {
                            PermissionType::Scope => "delegated",
                            PermissionType::Role => "application",
                        },
                    )
                })
                .collect(),
            required_roles,
            why: pending.previous_reason.as_ref().map(StatusReason::summary),
            functions: pending
                .functions
                .iter()
                .map(|f| {
                    app.function(f)
                        .map(|x| x.name.clone())
                        .unwrap_or_else(|| f.clone())
                })
                .collect(),
            scan_targets: pending
                .scan_targets
                .iter()
                .map(|t| {
                    app.scan_target(t)
                        .map(|x| x.name.clone())
                        .unwrap_or_else(|| t.clone())
                })
                .collect(),
            notes: app.notes.clone(),
            created_by: pending.started_by.describe(),
            organization,
            expires_at: pending.expires_at,
        })
    }

    /// Opens a consent link (once): starts its first step at Microsoft and returns the URL to go to.
    /// `browser_binding`: the random value of the opening browser's binding cookie (the callback
    /// is then accepted only from that browser).
    pub async fn continue_handoff(
        &self,
        profile_id: ProfileId,
        token: &str,
        browser_binding: Option<&str>,
    ) -> Result<String, DomainError> {
        let (profile, app, _) = self.live_link(profile_id, token).await?;
        // Atomic single use: of two concurrent openings only one takes the record.
        let Some(mut pending) = self
            .core
            .store()
            .take_pending(&state_hash(token), self.hold_until())
            .await?
        else {
            return Err(DomainError::invalid(
                "link",
                "this consent link was already used; ask for a new link",
            ));
        };
        let mut secrets: PendingSecrets = serde_json::from_slice(pending.secrets.expose_secret())
            .map_err(|_| {
            DomainError::Conflict("the consent link is damaged; ask for a new link".into())
        })?;
        secrets.browser_binding = browser_binding.map(state_hash);
        pending.secrets = serde_json::to_vec(&secrets)
            .map_err(DomainError::internal)?
            .into();
        let (first_leg, sign_in_follows) = Self::legs(&app, pending.method);
        let client_id = match pending.custom_app_id {
            Some(id) => id,
            None => self.platform.vendor_client_id(&app.key).ok_or_else(|| {
                DomainError::Conflict(format!(
                    "the service's app for {} is not configured; the operator must add it to Consentry's configuration",
                    app.display_name
                ))
            })?,
        };
        let state = random_token(32);
        pending.state_hash = state_hash(&state);
        pending.leg = first_leg;
        pending.sign_in_follows = sign_in_follows;
        pending.expires_at = self.core.clock().now() + PENDING_LIFETIME;
        self.core.store().put_pending(&pending).await?;
        Ok(self.microsoft_url(
            &profile,
            &app,
            first_leg,
            client_id,
            state,
            pending.nonce.clone(),
            &secrets.code_verifier,
            None,
        ))
    }

    fn start_error(&self, e: &PlatformError, app: &AppType) -> DomainError {
        if e.cause == PlatformCause::Transient {
            return DomainError::Conflict(format!(
                "Microsoft did not answer in time ({}); nothing was changed, try again in a few minutes",
                e.message
            ));
        }
        let f = explain_platform(e, app, app.custom_app);
        DomainError::invalid(
            "method",
            format!("{} {}", f.message, f.remediation.join(" ")),
        )
    }

    /// Finishes one step of a re-authorization when Microsoft redirects back.
    pub async fn callback(&self, params: CallbackParams) -> Result<CallbackOutcome, DomainError> {
        self.callback_bound(params, None).await
    }

    /// [`callback`](Self::callback) with the value of the browser's binding cookie, if any. A
    /// re-authorization started in a browser ([`start_bound`](Self::start_bound),
    /// [`continue_handoff`](Self::continue_handoff)) is refused without the same value
    /// ([`OTHER_BROWSER`]); its pending record stays usable from the right browser.
    pub async fn callback_bound(
        &self,
        params: CallbackParams,
        browser_binding: Option<&str>,
    ) -> Result<CallbackOutcome, DomainError> {
        let state = params
            .state
            .as_deref()
            .filter(|s| !s.is_empty() && s.len() <= 512)
            .ok_or_else(|| {
                DomainError::invalid(
                    "state",
                    "the callback has no valid state parameter; start the re-authorization again",
                )
            })?;
        let pending = self
            .core
            .store()
            .take_pending(&state_hash(state), self.hold_until())
            .await?
            .ok_or_else(|| {
                DomainError::invalid(
                    "state",
                    "this link is unknown or was already used; start the re-authorization again from the app profile",
                )
            })?;
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
        let bound = serde_json::from_slice::<PendingSecrets>(pending.secrets.expose_secret())
            .ok()
            .and_then(|s| s.browser_binding);
        if let Some(expected) = bound {
            let presented = browser_binding.map(state_hash);
            let matches =
                presented.is_some_and(|p| crate::account::constant_time_eq(&p, &expected));
            if !matches {
                // Not this browser's: the record goes back, so a stolen state cannot burn it.
                self.core.store().put_pending(&pending).await?;
                return Err(DomainError::invalid("state", OTHER_BROWSER));
            }
        }
        let target = format!("profile:{}", profile.id);
        let org = Some(profile.org_id);
        match self.step(&params, &profile, &app, &pending).await {
            Ok(Step::Continue(url)) => Ok(CallbackOutcome::Continue { url }),
            Ok(Step::Done(done)) => {
                let outcome = self.complete(profile, &app, &pending, *done).await?;
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
            Err(StepError::Failed(f)) => {
                let message = f.message.clone();
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

    /// Checks Microsoft's answer for the step `pending` waits for. A `Failed` error restores the
    /// profile; nothing is written before the whole answer is verified.
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
        if crate::ids::TenantId::parse(reported.trim()).is_ok_and(|t| t == profile.tenant_id) {
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
        let theirs: String = reported.chars().take(64).collect();
        Err(StepError::Failed(Failure::new(
            format!(
                "The consent was given in another Microsoft tenant ({theirs}), not in this app profile's tenant {ours}. The app profile was not changed."
            ),
            vec![
                format!(
                    "Start the re-authorization again and sign in with an administrator account of {ours}, not with an account of another organization."
                ),
                "If the app was consented in the other tenant by mistake, an administrator of that tenant can remove it in the Microsoft Entra admin center (Enterprise applications > the app > Properties > Delete).".into(),
            ],
        )))
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

    async fn step(
        &self,
        params: &CallbackParams,
        profile: &AppProfile,
        app: &AppType,
        pending: &PendingAuthorization,
    ) -> Result<Step, StepError> {
        let explain =
            |e: PlatformError| StepError::Failed(explain_platform(&e, app, app.custom_app));
        if self.core.clock().now() > pending.expires_at {
            return Err(StepError::Failed(Failure::new(
                "This re-authorization expired (it must be completed within 10 minutes).",
                vec!["Start the re-authorization again.".into()],
            )));
        }
        let redirect_error = params.error.as_deref().map(|error| {
            self.platform.redirect_error(
                error,
                params.error_description.as_deref(),
                params.error_subcode.as_deref(),
            )
        });
        // An account that may not grant tenant-wide consent at Microsoft (only Global, Privileged
        // Role, Cloud Application and Application Administrators may) can still be the one an
        // administrator-consent rule names, e.g. an Exchange Administrator for the Cloud Governance
        // Delegated App. A tenant administrator expects that account to be able to re-authorize
        // when the organization has already approved the app: so for an app with delegated
        // permissions only, Microsoft's "need admin approval" on the admin-consent page continues
        // with the sign-in (authorize endpoint), where the account consents to what a user may,
        // and the catalog's role check and the permission check decide. Without the
        // organization's consent to the admin-only scopes, Microsoft refuses the sign-in too and
        // the failure says a Global Administrator must grant it.
        let fall_back_to_sign_in = redirect_error.as_ref().is_some_and(|e| {
            e.cause == PlatformCause::NeedAdminApproval
                && pending.leg == AuthLeg::AdminConsent
                && pending.sign_in_follows
                && app.permission_kind == PermissionKind::Delegated
        });
        if let Some(e) = redirect_error.clone()
            && !fall_back_to_sign_in
        {
            return Err(explain(e));
        }
        if let Some(reported) = params.tenant.as_deref() {
            self.check_reported_tenant(reported, profile).await?;
        }
        let secrets: PendingSecrets = serde_json::from_slice(pending.secrets.expose_secret())
            .map_err(|_| {
                DomainError::Conflict("the pending re-authorization is damaged; start again".into())
            })?;
        let client = match (
            &pending.custom_app_id,
            &secrets.pfx_b64,
            &secrets.pfx_password,
        ) {
            (Some(app_id), Some(pfx), Some(pw)) => ClientRef::Custom {
                app_id: *app_id,
                pfx: SecretSlice::from(STANDARD.decode(pfx).unwrap_or_default()),
                password: SecretString::from(pw.clone()),
            },
            _ => ClientRef::Vendor {
                app_type: app.key.clone(),
            },
        };
        let client_id = match &client {
            ClientRef::Custom { app_id, .. } => Some(*app_id),
            ClientRef::Vendor { app_type } => self.platform.vendor_client_id(app_type),
        }
        .ok_or_else(|| {
            explain(PlatformError {
                cause: PlatformCause::NotConfigured,
                aadsts: None,
                error: None,
                message: String::new(),
            })
        })?;

        if fall_back_to_sign_in {
            return self
                .continue_to_sign_in(profile, app, client_id, pending, &secrets.code_verifier)
                .await;
        }
        let sign_in = match pending.leg {
            AuthLeg::Handoff => unreachable!("handled by the caller"),
            AuthLeg::AdminConsent => None,
            AuthLeg::SignIn => Some(
                self.signed_in(params, profile, app, pending, &client, &secrets)
                    .await?,
            ),
        };
        let grants = self
            .platform
            .grants(profile.tenant_id, &client)
            .await
            .map_err(explain)?;
        // Application permissions are always read from Graph.
        let mut missing: Vec<String> = required(app, PermissionType::Role)
            .into_iter()
            .filter(|r| !grants.app_roles.contains(r))
            .collect();
        if grants.service_principal.is_none() {
            return Err(StepError::Failed(Failure::new(
                "The app was not found in your tenant after consent.",
                vec!["Re-authorize again with a Global Administrator or Privileged Role Administrator account.".into()],
            )));
        }
        if pending.leg == AuthLeg::AdminConsent && !missing.is_empty() {
            return Err(StepError::Failed(Failure::new(
                format!(
                    "The consent did not grant the permissions the app needs: {}.",
                    missing.join(", ")
                ),
                if app.custom_app {
                    vec![
                        "Add the missing Microsoft Graph application permissions to the custom app (App registrations > the app > API permissions) and grant admin consent.".into(),
                        "Then re-authorize the app profile again.".into(),
                    ]
                } else {
                    vec!["Re-authorize again with a Global Administrator or Privileged Role Administrator account and accept every permission.".into()]
                },
            )));
        }
        if pending.leg == AuthLeg::AdminConsent && pending.sign_in_follows {
            return self
                .continue_to_sign_in(profile, app, client_id, pending, &secrets.code_verifier)
                .await;
        }
        let mut delegated = match &sign_in {
            // Delegated grants from Graph where the app may read them; otherwise the identity
            // platform's own statement of the scopes it granted in this sign-in.
            Some(s) if !grants.delegated_readable => s.granted_scopes.clone(),
            Some(s) => grants.delegated_for(Some(s.user.object_id)),
            None => grants.delegated_for(None),
        };
        // Scopes of other resources proven by a token for them (Viva Engage's).
        if let Some(s) = &sign_in {
            delegated.extend(s.resource_scopes.iter().cloned());
            delegated.sort();
            delegated.dedup();
        }
        if sign_in.is_some() {
            missing.extend(
                required(app, PermissionType::Scope)
                    .into_iter()
                    .filter(|s| !delegated.contains(s)),
            );
            if !missing.is_empty() {
                return Err(StepError::Failed(Failure::new(
                    format!("The consent did not grant the permissions the app needs: {}.", missing.join(", ")),
                    vec!["Re-authorize again and accept every permission the app asks for; with User consent, make sure an administrator granted admin consent first.".into()],
                )));
            }
        }
        Ok(Step::Done(Box::new(Verified {
            client,
            client_id,
            grants,
            delegated,
            sign_in,
            secrets,
        })))
    }

    /// Redeems the sign-in and checks who signed in against the catalog's rules.
    async fn signed_in(
        &self,
        params: &CallbackParams,
        profile: &AppProfile,
        app: &AppType,
        pending: &PendingAuthorization,
        client: &ClientRef,
        secrets: &PendingSecrets,
    ) -> Result<SignInResult, StepError> {
        let explain =
            |e: PlatformError| StepError::Failed(explain_platform(&e, app, app.custom_app));
        let code = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= 4096)
            .ok_or_else(|| {
                StepError::Failed(Failure::new(
                    "Microsoft's answer had no authorization code.",
                    vec!["Start the re-authorization again.".into()],
                ))
            })?;
        let scopes: Vec<String> = app.delegated_scopes().map(|p| p.name.clone()).collect();
        let signed = self
            .platform
            .redeem(
                profile.tenant_id,
                client,
                code,
                &SecretString::from(secrets.code_verifier.clone()),
                &scopes,
            )
            .await
            .map_err(explain)?;
        if signed.tenant != profile.tenant_id {
            return Err(StepError::Failed(Failure::new(
                format!(
                    "The account {} belongs to another tenant than this app profile's.",
                    signed.upn
                ),
                vec!["Re-authorize with an account of the profile's tenant.".into()],
            )));
        }
        // The nonce is mandatory: an ID token without it (or with another) was not issued for
        // this re-authorization (a replayed or injected code).
        if signed.nonce.as_deref() != Some(pending.nonce.as_str()) {
            return Err(StepError::Failed(Failure::new(
                "Microsoft's answer did not match this re-authorization (nonce mismatch).",
                vec!["Start the re-authorization again.".into()],
            )));
        }
        // The consenting user's roles, licenses and group ownership against the catalog.
        let mut facts: UserFacts = self
            .platform
            .user_facts(profile.tenant_id, &signed.access_token)
            .await
            .map_err(explain)?;
        let requirement = app.requirement_for(
            pending.method,
            Some(&profile.service),
            &pending.functions,
            &pending.scan_targets,
        );
        let mut resource_scopes = Vec::new();
        if let Some(req) = requirement.as_ref().filter(|r| r.mentions_verified_admin()) {
            let viva = self
                .viva_engage(profile, app, client, &signed, req, &mut facts)
                .await?;
            resource_scopes = viva.granted_scopes;
        }
        if let Some(req) = requirement
            && let Err(unmet) = self.core.catalog().evaluate(&req, &facts)
        {
            let mut steps = vec![format!(
                "Re-authorize with an account that has what is needed ({}), or assign it to {} in Microsoft Entra ID first.",
                self.core.catalog().describe(&req),
                signed.upn
            )];
            if req.mentions_verified_admin() && !facts.verified_admin {
                steps.push(format!(
                    "Verified Admin is a Viva Engage role, not a Microsoft Entra ID role: a Viva Engage verified admin assigns it to {} in the Viva Engage admin center (Admin roles), then re-authorize.",
                    signed.upn
                ));
            }
            return Err(StepError::Failed(Failure::new(
                format!(
                    "The account {} cannot give {} for {}: it {}.",
                    signed.upn,
                    pending.method.to_string().to_lowercase(),
                    app.display_name,
                    unmet
                ),
                steps,
            )));
        }
        let mut granted_scopes = signed.granted_scopes.clone();
        // The OpenID scopes are not echoed in `scope`: the sign-in itself proves openid/profile,
        // and a refresh token proves offline_access.
        granted_scopes.extend(["openid".to_string(), "profile".to_string()]);
        if signed.refresh_token.is_some() {
            granted_scopes.push("offline_access".into());
        }
        granted_scopes.sort();
        granted_scopes.dedup();
        Ok(SignInResult {
            user: ConsentUser {
                object_id: signed.object_id,
                upn: signed.upn,
            },
            ip: signed.ip,
            refresh_token: signed.refresh_token,
            granted_scopes,
            resource_scopes,
        })
    }

    /// Asks Viva Engage whether the signed-in user is a Verified Admin (Microsoft Graph does not
    /// say) and records it in `facts`. Viva Engage's transient failure is never taken as "not
    /// verified": when the user lacks something else the rule needs, that refusal stands (it is
    /// definitive whatever Viva Engage says); otherwise the re-authorization fails as transient
    /// and the profile keeps its status.
    async fn viva_engage(
        &self,
        profile: &AppProfile,
        app: &AppType,
        client: &ClientRef,
        signed: &crate::platform::SignedIn,
        req: &consentry_catalog::Requirement,
        facts: &mut UserFacts,
    ) -> Result<crate::platform::VivaEngageFacts, StepError> {
        let Some(refresh_token) = signed.refresh_token.as_ref() else {
            return Err(StepError::Failed(Failure::new(
                "Microsoft returned no refresh token for this sign-in, so Consentry could not ask Viva Engage whether the account is a Verified Admin.",
                vec!["Re-authorize again and accept every permission the app asks for (including offline access).".into()],
            )));
        };
        match self
            .platform
            .viva_engage_facts(profile.tenant_id, client, refresh_token)
            .await
        {
            Ok(v) => {
                facts.verified_admin = v.verified_admin;
                Ok(v)
            }
            Err(e) if e.is_transient() => {
                facts.verified_admin = true;
                if self.core.catalog().evaluate(req, facts).is_err() {
                    // Refused on the other conditions; Verified Admin is not named as missing.
                    return Ok(crate::platform::VivaEngageFacts::default());
                }
                Err(StepError::Failed(Failure::new(
                    format!(
                        "Viva Engage did not answer in time, so Consentry could not confirm that {} is a Viva Engage Verified Admin. Nothing was changed.",
                        signed.upn
                    ),
                    vec!["Try the re-authorization again in a few minutes.".into()],
                )))
            }
            Err(e) => {
                let entra_app = app.entra_app_name.as_deref().unwrap_or(&app.display_name);
                Err(StepError::Failed(Failure::new(
                    format!(
                        "Viva Engage refused to say whether {} is a Verified Admin: {}",
                        signed.upn, e.message
                    ),
                    vec![
                        format!(
                            "Make sure the consent to {entra_app} includes the Viva Engage (Yammer) permission user_impersonation: in the Microsoft Entra admin center, open Enterprise applications > {entra_app} > Permissions and grant admin consent."
                        ),
                        format!(
                            "Make sure {} is an active Viva Engage user, then re-authorize again.",
                            signed.upn
                        ),
                    ],
                )))
            }
        }
    }

    async fn complete(
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
        let mut granted: Vec<GrantedPermission> = grants
            .app_roles
            .iter()
            .map(|r| GrantedPermission {
                name: r.clone(),
                kind: PermissionType::Role,
            })
            .collect();
        granted.extend(delegated.into_iter().map(|s| GrantedPermission {
            name: s,
            kind: PermissionType::Scope,
        }));

        // Secrets first: if storing them fails, the profile record still describes the old credentials.
        if let Some(refresh) = sign_in.as_ref().and_then(|s| s.refresh_token.as_ref()) {
            self.core
                .store()
                .put_secret(
                    profile.id,
                    SecretKind::RefreshToken,
                    &SecretSlice::from(refresh.expose_secret().as_bytes().to_vec()),
                )
                .await?;
        } else if sign_in.is_none() {
            // Application-only consent: no user and no refresh token any more.
            self.core
                .store()
                .delete_secret(profile.id, SecretKind::RefreshToken)
                .await?;
        }
        let mut certificate = None;
        if let (ClientRef::Custom { .. }, Some(pfx_b64), Some(pw)) =
            (&client, &secrets.pfx_b64, &secrets.pfx_password)
        {
            let pfx = STANDARD.decode(pfx_b64).unwrap_or_default();
            if let Ok(cert) = consentry_certs::ClientCertificate::from_pfx(&pfx, pw, now) {
                certificate = Thumbprint::parse(&cert.sha1_thumbprint().hex_upper())
                    .ok()
                    .map(|thumbprint| CertificateInfo {
                        thumbprint,
                        subject: cert.subject().to_string(),
                        not_after: cert.not_after(),
                    });
            }
            let blob = serde_json::to_vec(&StoredCertificate {
                pfx_b64: pfx_b64.clone(),
                password: pw.clone(),
            })
            .map_err(DomainError::internal)?;
            self.core
                .store()
                .put_secret(
                    profile.id,
                    SecretKind::ClientCertificate,
                    &SecretSlice::from(blob),
                )
                .await?;
        }

        let from = profile.status;
        let optional = optional_missing(app, &granted);
        let reason = if optional.is_empty() {
            None
        } else {
            Some(StatusReason::OptionalPermissionsAvailable {
                permissions: optional,
            })
        };
        profile.application_id = Some(client_id);
        profile.consent_method = Some(pending.method);
        profile.granted_permissions = granted;
        profile.functions = pending.functions.clone();
        profile.scan_targets = pending.scan_targets.clone();
        if let Some(c) = certificate {
            profile.certificate = Some(c);
        }
        match sign_in {
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
        profile.consented_catalog_version = Some(self.core.catalog().version);
        profile.authorized_at = Some(now);
        profile.last_checked_at = Some(now);
        profile.updated_at = now;
        let detail = match &profile.consent_user {
            Some(u) => format!(
                "{} by {} (started by {})",
                pending.method, u.upn, pending.started_by
            ),
            None => format!("{} (started by {})", pending.method, pending.started_by),
        };
        self.core
            .store()
            .save_profile(
                &profile,
                Some(NewHistoryEvent {
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
        Ok(CallbackOutcome::Completed { profile })
    }

    async fn fail(
        &self,
        mut profile: AppProfile,
        pending: &PendingAuthorization,
        f: Failure,
    ) -> Result<CallbackOutcome, DomainError> {
        let now = self.core.clock().now();
        let from = profile.status;
        profile.status = pending.previous_status;
        profile.reason = pending.previous_reason.clone();
        profile.updated_at = now;
        self.core
            .store()
            .save_profile(
                &profile,
                Some(NewHistoryEvent {
                    profile_id: profile.id,
                    at: now,
                    actor: pending.started_by.clone(),
                    kind: EventKind::ReauthorizationFailed,
                    from_status: Some(from),
                    to_status: Some(profile.status),
                    reason: profile.reason.clone(),
                    detail: Some(f.message.clone()),
                }),
            )
            .await?;
        // After the save, as in `complete`.
        self.core
            .store()
            .delete_pending(&pending.state_hash)
            .await?;
        Ok(CallbackOutcome::Failed {
            profile,
            message: f.message,
            remediation: f.remediation,
        })
    }

    /// Restores a pending profile that has no pending record.
    async fn restore_orphan(
        &self,
        mut profile: AppProfile,
        previous_status: ProfileStatus,
        previous_reason: Option<StatusReason>,
        actor: &Actor,
    ) -> Result<AppProfile, DomainError> {
        let now = self.core.clock().now();
        let from = profile.status;
        profile.status = previous_status;
        profile.reason = previous_reason;
        profile.updated_at = now;
        self.core
            .store()
            .save_profile(
                &profile,
                Some(NewHistoryEvent {
                    profile_id: profile.id,
                    at: now,
                    actor: actor.clone(),
                    kind: EventKind::ReauthorizationFailed,
                    from_status: Some(from),
                    to_status: Some(profile.status),
                    reason: profile.reason.clone(),
                    detail: Some("The re-authorization was cancelled.".into()),
                }),
            )
            .await?;
        self.core
            .audit()
            .record(
                actor,
                Some(profile.org_id),
                AuditAction::ReauthorizationCancelled,
                format!("profile:{}", profile.id),
                serde_json::json!({ "app_type": profile.app_type }),
            )
            .await;
        Ok(profile)
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
        let mut pending = match self.core.store().pending_for_profile(profile_id).await? {
            // Pending without a record (a callback killed part-way by an older build): restore what
            // the history says it was, under a fresh record so the restore below is the usual one.
            None => {
                let (previous_status, previous_reason) =
                    previous_state_from_history(&self.core, &profile).await?;
                return self
                    .restore_orphan(profile, previous_status, previous_reason, actor)
                    .await;
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
        pending.started_by = actor.clone();
        match self
            .fail(
                profile,
                &pending,
                Failure::new("The re-authorization was cancelled.", vec![]),
            )
            .await?
        {
            CallbackOutcome::Failed { profile, .. } => {
                self.core
                    .audit()
                    .record(
                        actor,
                        Some(profile.org_id),
                        AuditAction::ReauthorizationCancelled,
                        format!("profile:{}", profile.id),
                        serde_json::json!({
                            "method": pending.method.as_str(),
                            "app_type": profile.app_type,
                        }),
                    )
                    .await;
                Ok(profile)
            }
            _ => unreachable!("fail always returns Failed"),
        }
    }
}

struct SignInResult {
    user: ConsentUser,
    ip: Option<std::net::IpAddr>,
    refresh_token: Option<SecretString>,
    /// The delegated scopes the identity platform says it granted in this sign-in.
    granted_scopes: Vec<String>,
    /// Scopes of resources other than Microsoft Graph proven by a token for them (full form).
    resource_scopes: Vec<String>,
}

/// A Microsoft answer that passed every check, ready to be recorded.
struct Verified {
    client: ClientRef,
    client_id: AppId,
    grants: Grants,
    /// Delegated scopes effective for the consent user (or tenant-wide).
    delegated: Vec<String>,
    sign_in: Option<SignInResult>,
    secrets: PendingSecrets,
}

/// The outcome of checking one step's answer.
enum Step {
    /// Another step at Microsoft follows.
    Continue(String),
    /// Verified: record it.
    Done(Box<Verified>),
}

/// Why a step stopped.
enum StepError {
    /// The administrator's side: restore the profile and explain.
    Failed(Failure),
    /// Consentry's side (storage).
    Domain(DomainError),
}

impl From<DomainError> for StepError {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

impl From<crate::ports::StoreError> for StepError {
    fn from(e: crate::ports::StoreError) -> Self {
        Self::Domain(e.into())
    }
}

/// How a custom app's certificate is kept (sealed) for later checks and token requests.
#[derive(Serialize, Deserialize)]
pub struct StoredCertificate {
    /// The .pfx, base64.
    pub pfx_b64: String,
    /// Its password.
    pub password: String,
}

impl std::fmt::Debug for StoredCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredCertificate([redacted])")
    }
}
