//! Re-authorizing an app profile: every path the product documentation describes — administrator consent,
//! user consent, custom Azure apps with a certificate, the Cloud Backup delegated app's functions, what a
//! Power Platform profile scans — as one small state machine over the identity-platform port.
//!
//! The profile keeps its previous credentials and status until a re-authorization completes; a failure,
//! cancellation or expiry restores the previous status, so nothing is lost.
//!
//! By phase: [`choice`] (what was chosen, validated against the catalog), [`start`] (the pending
//! record and the Microsoft URL), [`link`] (consent links), [`callback`] (Microsoft's answer, step by
//! step, with the pure decisions in [`decide`] and the consenting account's checks in [`sign_in`]),
//! [`finish`] (recorded, failed or cancelled); [`explain`] says what a failure means to the
//! administrator, [`secrets`] what a pending record keeps sealed.

use std::sync::Arc;

use consentry_catalog::AppType;
use time::{Duration, OffsetDateTime};

use crate::error::DomainError;
use crate::ids::{AppId, CloudKey};
use crate::model::{AppProfile, AuthLeg};
use crate::platform::{IdentityPlatform, SignInRequest};
use crate::service::Consentry;

mod callback;
mod choice;
mod decide;
mod explain;
mod finish;
mod link;
mod secrets;
mod sign_in;
mod start;

pub use callback::{CallbackOutcome, CallbackParams, OTHER_BROWSER};
pub use choice::{CustomAppInput, StartRequest};
pub(crate) use finish::previous_state_from_history;
pub use link::HandoffView;
pub(crate) use secrets::random_token;
pub use secrets::{StoredCertificate, pkce_challenge, state_hash};
pub use start::Started;
#[cfg(test)]
pub(crate) use testing::profile as testing_profile;

/// How long a started re-authorization waits for the administrator.
pub const PENDING_LIFETIME: Duration = Duration::minutes(10);
/// How long a consent link handed to a tenant administrator stays usable.
pub const HANDOFF_LIFETIME: Duration = Duration::hours(72);
/// How long a callback (or a cancel) may hold a taken pending record before it is taken to have
/// died: the server sets it from its request time limit (a callback's request is dropped after it),
/// plus a margin. Past it the monitor puts the profile back.
pub const CALLBACK_HOLD: Duration = Duration::minutes(2);

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

    /// Where consent links are served (`public_url`), when they are enabled.
    pub fn link_base(&self) -> Option<&str> {
        self.link_base.as_deref()
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
                    .admin_consent_url(&profile.tenant_at(), client_id, &state)
            }
            AuthLeg::SignIn => self.platform.sign_in_url(&SignInRequest {
                tenant: profile.tenant_at(),
                client_id,
                state,
                nonce,
                code_challenge: secrets::pkce_challenge(verifier),
                // Every delegated scope, other resources' too, so that the consent covers them.
                scopes: app.sign_in_scopes(),
                login_hint,
            }),
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

    /// The vendor's own app registration for an app type in a cloud, as configured.
    fn vendor_client_id(&self, cloud: &CloudKey, app: &AppType) -> Result<AppId, DomainError> {
        self.platform.vendor_client_id(cloud, &app.key).ok_or_else(|| {
            let key = if cloud.is_global() {
                format!("[apps.{}]", app.key)
            } else {
                format!("[clouds.{cloud}.apps.{}]", app.key)
            };
            DomainError::Conflict(format!(
                "the service's app for {} is not configured for the {cloud} cloud; the operator must add its registration in that cloud to Consentry's configuration ({key})",
                app.display_name
            ))
        })
    }
}

/// Catalog entries, grants, records and sign-ins for the unit tests of the phases.
#[cfg(test)]
mod testing {
    use consentry_catalog::{AppType, Catalog, ConsentMethod};
    use secrecy::{SecretSlice, SecretString};
    use time::OffsetDateTime;

    use super::decide::SignInResult;
    use crate::ids::{ObjectId, OrgId, ProfileId, TenantId, Upn};
    use crate::model::{Actor, AppProfile, AuthLeg, ConsentUser, PendingAuthorization};
    use crate::platform::{Grants, SignedIn};
    use crate::status::{ProfileStatus, StatusReason};

    /// The built-in catalog's app type `key`.
    pub(crate) fn app(key: &str) -> AppType {
        Catalog::builtin_ref()
            .app_type(key)
            .cloned()
            .unwrap_or_else(|| panic!("{key} is in the built-in catalog"))
    }

    /// An app in the tenant with nothing granted and delegated grants readable.
    pub(crate) fn grants() -> Grants {
        Grants {
            service_principal: Some(
                ObjectId::parse("5f0b6c5e-0000-4000-8000-0000000000aa").unwrap(),
            ),
            app_roles: vec![],
            delegated_all_principals: vec![],
            delegated_by_user: vec![],
            delegated_readable: true,
        }
    }

    pub(crate) fn tenant() -> TenantId {
        TenantId::parse("3c1e8b2f-6d10-4b1e-9a55-0b1f8b4e6b1e").unwrap()
    }

    /// A valid profile in [`tenant`].
    pub(crate) fn profile() -> AppProfile {
        let now = OffsetDateTime::now_utc();
        AppProfile {
            id: ProfileId::new_random(),
            org_id: OrgId::new_random(),
            tenant_id: tenant(),
            cloud: crate::ids::CloudKey::global(),
            app_type: "insights-m365".into(),
            service: "insights".into(),
            application_id: None,
            consent_method: None,
            consent_user: None,
            granted_permissions: vec![],
            certificate: None,
            functions: vec![],
            scan_targets: vec![],
            original_sign_in_ip: None,
            status: ProfileStatus::Valid,
            reason: None,
            last_checked_at: None,
            consented_catalog_version: None,
            refresh_token_redeemed_at: None,
            authorized_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// A pending administrator consent waiting for `leg`, expiring in 10 minutes.
    pub(crate) fn pending(leg: AuthLeg, sign_in_follows: bool) -> PendingAuthorization {
        let now = OffsetDateTime::now_utc();
        PendingAuthorization {
            state_hash: super::state_hash("state"),
            profile_id: ProfileId::new_random(),
            started_by: Actor::Operator("console:admin".into()),
            method: ConsentMethod::Admin,
            leg,
            sign_in_follows,
            custom_app_id: None,
            functions: vec![],
            scan_targets: vec![],
            nonce: "the-nonce".into(),
            previous_status: ProfileStatus::Invalid,
            previous_reason: Some(StatusReason::NotYetAuthorized),
            created_at: now,
            expires_at: now + super::PENDING_LIFETIME,
            secrets: SecretSlice::from(Vec::new()),
            taken_until: None,
        }
    }

    /// admin@contoso.example signed in to `profile`'s tenant with `nonce`.
    pub(crate) fn signed_in(profile: &AppProfile, nonce: Option<&str>) -> SignedIn {
        SignedIn {
            object_id: ObjectId::parse("5f0b6c5e-0000-4000-8000-000000000001").unwrap(),
            upn: Upn::parse("admin@contoso.example").unwrap(),
            ip: None,
            tenant: profile.tenant_id,
            nonce: nonce.map(str::to_string),
            access_token: SecretString::from("access".to_string()),
            refresh_token: None,
            granted_scopes: vec![],
        }
    }

    /// What admin@contoso.example's sign-in proved.
    pub(crate) fn signed_in_result() -> SignInResult {
        SignInResult {
            user: ConsentUser {
                object_id: ObjectId::parse("5f0b6c5e-0000-4000-8000-000000000001").unwrap(),
                upn: Upn::parse("admin@contoso.example").unwrap(),
            },
            ip: Some("203.0.113.7".parse().unwrap()),
            refresh_token: None,
            granted_scopes: vec![],
            resource_scopes: vec![],
        }
    }
}
