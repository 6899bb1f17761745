//! "Sign in with Microsoft" for the console: the rules of who may sign in and as what.
//!
//! A sign-in is OpenID Connect's authorization code flow with PKCE S256 and a nonce, with
//! Consentry's own app registration at the `organizations` authority. [`MicrosoftSignIn::start`]
//! keeps the attempt in the store (under the SHA-256 of its state, its verifier, nonce and browser
//! binding sealed, single use, [`ATTEMPT_LIFETIME`]); [`MicrosoftSignIn::finish`] takes it once,
//! checks the browser, redeems the code (the adapter verifies the ID token: signature, the issuer of
//! the token's own tenant, audience Consentry's client ID, validity), compares the nonce, reads the
//! user's directory roles and groups, and decides:
//!
//! - a member of the configured operator tenant who is in the operator group or holds the operator
//!   app role is a platform operator; any other member of that tenant is refused;
//! - a member of a tenant connected to an organization is that organization's admin when they hold
//!   one of the admin roles ([`SignInRules::admin_roles`]), otherwise a viewer — or refused when the
//!   organization's [`MemberRule`] says so;
//! - a member of a tenant connected to no organization is refused ("not connected").
//!
//! The identity's account (keyed by tenant and object ID; its user name, which no local name can
//! be, carries the UPN and object ID) is created or updated with the role decided now, so a demoted
//! administrator is a viewer from their next sign-in; a refused identity's account is deleted, which
//! ends its sessions. No Microsoft token is kept.

use std::collections::BTreeSet;
use std::sync::Arc;

use secrecy::{ExposeSecret as _, SecretSlice, SecretString};
use serde::{Deserialize, Serialize};
use time::Duration;
use uuid::Uuid;

use crate::access::{AccountScope, Role};
use crate::account::{Accounts, NewSession};
use crate::error::DomainError;
use crate::ids::{ObjectId, OrgId, TenantId, Upn};
use crate::platform::{ConsoleSignInRequest, IdentityPlatform, PlatformCause, PlatformError};
use crate::ports::{Clock, EntraIdentity, MemberRule, OperatorAccount, SignInAttempt, Store};
use crate::reauth::{CallbackParams, pkce_challenge, state_hash};

/// How long a started sign-in can be finished.
pub const ATTEMPT_LIFETIME: Duration = Duration::minutes(10);
/// Global Administrator's role template ID (entra-facts §5.1).
pub const GLOBAL_ADMINISTRATOR: Uuid = Uuid::from_u128(0x62e90394_69f5_4237_9190_012177145e10);
/// Privileged Role Administrator's role template ID (entra-facts §5.1).
pub const PRIVILEGED_ROLE_ADMINISTRATOR: Uuid =
    Uuid::from_u128(0xe8611ab8_c189_46e8_94e1_60213ab1f814);

/// Who is what (the `[microsoft_sign_in]` configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInRules {
    /// Directory roles (template IDs) that make a member an organization admin.
    pub admin_roles: BTreeSet<Uuid>,
    /// The tenant whose members may be platform operators.
    pub operator_tenant: Option<TenantId>,
    /// The group (object ID, in the operator tenant) whose direct members are platform operators.
    pub operator_group: Option<Uuid>,
    /// The app role value of Consentry's app whose holders (the ID token's `roles`) in the operator
    /// tenant are platform operators.
    pub operator_app_role: Option<String>,
}

impl Default for SignInRules {
    fn default() -> Self {
        Self {
            admin_roles: [GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR].into(),
            operator_tenant: None,
            operator_group: None,
            operator_app_role: None,
        }
    }
}

/// A started sign-in: where to send the browser, and the value of its binding cookie.
pub struct StartedSignIn {
    /// Microsoft's sign-in page.
    pub url: String,
    /// The random value the browser must present at the callback (its cookie).
    pub browser_binding: SecretString,
}

impl std::fmt::Debug for StartedSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartedSignIn").finish_non_exhaustive()
    }
}

/// Who tried to sign in, as far as it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInWho {
    /// Their tenant.
    pub tenant: TenantId,
    /// Their object ID.
    pub object_id: ObjectId,
    /// Their sign-in name.
    pub upn: Upn,
}

/// A finished sign-in.
#[derive(Debug)]
pub struct MicrosoftSession {
    /// The new console session.
    pub session: NewSession,
    /// Who signed in.
    pub who: SignInWho,
    /// The console path to go to.
    pub next: String,
}

/// Why a sign-in was refused.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// Consentry's own app is not configured.
    NotConfigured,
    /// No attempt has this state: expired, already used, or never started here.
    UnknownAttempt,
    /// The attempt expired.
    Expired,
    /// The callback came to another browser than the one that started the sign-in.
    OtherBrowser,
    /// Microsoft's answer was an error (cancelled, declined, an AADSTS code).
    Microsoft(PlatformError),
    /// The ID token's nonce is not the attempt's.
    NonceMismatch,
    /// The person's tenant is connected to no organization.
    TenantNotConnected,
    /// The person has no admin role and their organization refuses other members.
    NoAdminRole {
        /// The organization's name.
        organization: String,
    },
    /// A member of the operator tenant neither in the operator group nor holding the app role.
    NotOperator,
}

impl Refusal {
    /// Whether the refusal counts as a failed sign-in of the client (throttled). A transient
    /// failure at Microsoft and a cancel do not.
    pub fn counts_as_failure(&self) -> bool {
        match self {
            Self::NotConfigured => false,
            Self::Microsoft(e) => {
                !matches!(e.cause, PlatformCause::Transient | PlatformCause::Cancelled)
            }
            _ => true,
        }
    }
}

/// A refused sign-in: why, and who it was when Microsoft said so.
#[derive(Debug, Clone)]
pub struct SignInRefused {
    /// Why.
    pub refusal: Refusal,
    /// Who, when the ID token was verified.
    pub who: Option<SignInWho>,
    /// The organization of their tenant, if connected.
    pub org: Option<OrgId>,
}

impl From<Refusal> for SignInRefused {
    fn from(refusal: Refusal) -> Self {
        Self {
            refusal,
            who: None,
            org: None,
        }
    }
}

/// What an attempt keeps sealed.
#[derive(Serialize, Deserialize)]
struct AttemptSecrets {
    code_verifier: String,
    nonce: String,
    /// Hex SHA-256 of the browser's binding cookie.
    browser_binding: String,
}

/// "Sign in with Microsoft" over the store, the identity platform and the accounts.
#[derive(Debug, Clone)]
pub struct MicrosoftSignIn {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    platform: Arc<dyn IdentityPlatform>,
    accounts: Accounts,
    rules: SignInRules,
}

/// The user name of a Microsoft identity's account: it holds a space and parentheses, which no
/// local user name may, so the two never collide.
pub fn entra_username(upn: &Upn, object_id: ObjectId) -> String {
    format!("{upn} (entra {object_id})").to_lowercase()
}

impl MicrosoftSignIn {
    /// Builds the service.
    pub fn new(
        svc: &crate::Consentry,
        platform: Arc<dyn IdentityPlatform>,
        accounts: Accounts,
        rules: SignInRules,
    ) -> Self {
        Self {
            store: svc.store().clone(),
            clock: svc.clock().clone(),
            platform,
            accounts,
            rules,
        }
    }

    /// Whether "Sign in with Microsoft" is offered (Consentry's own app is configured).
    pub fn enabled(&self) -> bool {
        self.platform.consentry_client_id().is_some()
    }

    /// Starts a sign-in that returns to `next` (a console path the caller made safe).
    pub async fn start(&self, next: &str) -> Result<Result<StartedSignIn, Refusal>, DomainError> {
        if !self.enabled() {
            return Ok(Err(Refusal::NotConfigured));
        }
        let state = random(32);
        let binding = random(32);
        let secrets = AttemptSecrets {
            code_verifier: random(48),
            nonce: random(16),
            browser_binding: state_hash(&binding),
        };
        let url = match self.platform.console_sign_in_url(&ConsoleSignInRequest {
            state: state.clone(),
            nonce: secrets.nonce.clone(),
            code_challenge: pkce_challenge(&secrets.code_verifier),
        }) {
            Ok(url) => url,
            Err(e) => return Ok(Err(Refusal::Microsoft(e))),
        };
        let now = self.clock.now();
        let blob = serde_json::to_vec(&secrets).map_err(DomainError::internal)?;
        self.store
            .insert_sign_in_attempt(&SignInAttempt {
                state_hash: state_hash(&state),
                secrets: SecretSlice::from(blob),
                next: next.to_string(),
                created_at: now,
                expires_at: now + ATTEMPT_LIFETIME,
            })
            .await?;
        let _ = self.store.delete_expired_sign_in_attempts(now).await;
        Ok(Ok(StartedSignIn {
            url,
            browser_binding: SecretString::from(binding),
        }))
    }

    /// Finishes a sign-in from Microsoft's redirect, in the browser presenting `browser_binding`;
    /// on success ends `previous_session` (if any) and starts a session.
    pub async fn finish(
        &self,
        params: &CallbackParams,
        browser_binding: Option<&str>,
        previous_session: Option<&str>,
    ) -> Result<Result<MicrosoftSession, SignInRefused>, DomainError> {
        if !self.enabled() {
            return Ok(Err(Refusal::NotConfigured.into()));
        }
        let Some(state) = params.state.as_deref().filter(|s| !s.is_empty()) else {
            return Ok(Err(Refusal::UnknownAttempt.into()));
        };
        let Some(attempt) = self.store.take_sign_in_attempt(&state_hash(state)).await? else {
            return Ok(Err(Refusal::UnknownAttempt.into()));
        };
        let secrets: AttemptSecrets = serde_json::from_slice(attempt.secrets.expose_secret())
            .map_err(DomainError::internal)?;
        let bound = browser_binding.is_some_and(|b| {
            crate::account::constant_time_eq(&state_hash(b), &secrets.browser_binding)
        });
        if !bound {
            // Put back, so that a state seen elsewhere cannot burn the person's sign-in.
            self.store.insert_sign_in_attempt(&attempt).await?;
            return Ok(Err(Refusal::OtherBrowser.into()));
        }
        if self.clock.now() >= attempt.expires_at {
            return Ok(Err(Refusal::Expired.into()));
        }
        if let Some(error) = params.error.as_deref() {
            let e = self.platform.redirect_error(
                error,
                params.error_description.as_deref(),
                params.error_subcode.as_deref(),
            );
            return Ok(Err(Refusal::Microsoft(e).into()));
        }
        let Some(code) = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= 4096)
        else {
            return Ok(Err(Refusal::UnknownAttempt.into()));
        };
        let signed = match self
            .platform
            .redeem_console_sign_in(code, &SecretString::from(secrets.code_verifier))
            .await
        {
            Ok(s) => s,
            Err(e) => return Ok(Err(Refusal::Microsoft(e).into())),
        };
        let who = SignInWho {
            tenant: signed.tenant,
            object_id: signed.object_id,
            upn: signed.upn.clone(),
        };
        let refused = |refusal, org| {
            Ok(Err(SignInRefused {
                refusal,
                who: Some(who.clone()),
                org,
            }))
        };
        // Mandatory: an ID token without this attempt's nonce was not issued for it.
        if signed.nonce.as_deref() != Some(secrets.nonce.as_str()) {
            return refused(Refusal::NonceMismatch, None);
        }
        let memberships = match self.platform.memberships(&signed.access_token).await {
            Ok(m) => m,
            Err(e) => return refused(Refusal::Microsoft(e), None),
        };
        let identity = EntraIdentity {
            tenant: signed.tenant,
            object_id: signed.object_id,
        };
        let decided: Result<(AccountScope, Role), (Refusal, Option<OrgId>)> =
            if self.rules.operator_tenant == Some(signed.tenant) {
                let in_group = self
                    .rules
                    .operator_group
                    .is_some_and(|g| memberships.group_ids.contains(&g));
                let has_role = self
                    .rules
                    .operator_app_role
                    .as_ref()
                    .is_some_and(|r| signed.app_roles.iter().any(|a| a == r));
                if in_group || has_role {
                    Ok((AccountScope::Platform, Role::Admin))
                } else {
                    Err((Refusal::NotOperator, None))
                }
            } else {
                match self.store.get_tenant(signed.tenant).await? {
                    None => Err((Refusal::TenantNotConnected, None)),
                    Some(t) => {
                        let admin = memberships
                            .role_template_ids
                            .iter()
                            .any(|r| self.rules.admin_roles.contains(r));
                        if admin {
                            Ok((AccountScope::Organization(t.org_id), Role::Admin))
                        } else {
                            match self.store.member_rule(t.org_id).await? {
                                MemberRule::Viewer => {
                                    Ok((AccountScope::Organization(t.org_id), Role::Viewer))
                                }
                                MemberRule::Refused => {
                                    let organization = self
                                        .store
                                        .get_organization(t.org_id)
                                        .await?
                                        .map(|o| o.name)
                                        .unwrap_or_default();
                                    Err((Refusal::NoAdminRole { organization }, Some(t.org_id)))
                                }
                            }
                        }
                    }
                }
            };
        let existing = self.store.find_entra_account(identity).await?;
        let (scope, role) = match decided {
            Ok(d) => d,
            Err((refusal, org)) => {
                // Whatever they could do before, they may not now: their sessions end.
                if let Some(a) = existing {
                    self.store.delete_account(a.id).await?;
                }
                return refused(refusal, org);
            }
        };
        let account = OperatorAccount {
            id: existing.as_ref().map_or_else(Uuid::new_v4, |a| a.id),
            username: entra_username(&signed.upn, signed.object_id),
            scope,
            role,
            // No password: a Microsoft identity signs in only through Microsoft.
            password_hash: String::new(),
            created_at: existing
                .as_ref()
                .map_or_else(|| self.clock.now(), |a| a.created_at),
        };
        let account = self.store.save_entra_account(identity, &account).await?;
        let session = self
            .accounts
            .open_session(account, previous_session)
            .await?;
        Ok(Ok(MicrosoftSession {
            session,
            who,
            next: attempt.next,
        }))
    }
}

impl crate::Consentry {
    /// What an organization does with members of its tenants who sign in with Microsoft without an
    /// admin role.
    pub async fn member_rule(&self, org: OrgId) -> Result<MemberRule, DomainError> {
        self.store().member_rule(org).await.map_err(|e| match e {
            crate::ports::StoreError::NotFound(_) => DomainError::NotFound {
                what: "organization",
                id: org.to_string(),
            },
            e => e.into(),
        })
    }

    /// Replaces it. Members already signed in keep their role until their next sign-in.
    pub async fn set_member_rule(&self, org: OrgId, rule: MemberRule) -> Result<(), DomainError> {
        self.store()
            .set_member_rule(org, rule)
            .await
            .map_err(|e| match e {
                crate::ports::StoreError::NotFound(_) => DomainError::NotFound {
                    what: "organization",
                    id: org.to_string(),
                },
                e => e.into(),
            })
    }
}

fn random(bytes: usize) -> String {
    crate::reauth::random_token(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_of_microsoft_identities_are_never_local_names() {
        let upn = Upn::parse("Admin@Contoso.onmicrosoft.com").expect("upn");
        let oid = ObjectId::parse("c0a70000-0000-4000-8000-000000000001").expect("oid");
        let name = entra_username(&upn, oid);
        assert_eq!(
            name,
            "admin@contoso.onmicrosoft.com (entra c0a70000-0000-4000-8000-000000000001)"
        );
        assert!(crate::account::check_username(&name).is_err());
    }

    #[test]
    fn cancels_and_transient_failures_are_not_counted() {
        let e = |cause| PlatformError {
            cause,
            aadsts: None,
            error: None,
            message: String::new(),
        };
        assert!(!Refusal::Microsoft(e(PlatformCause::Cancelled)).counts_as_failure());
        assert!(!Refusal::Microsoft(e(PlatformCause::Transient)).counts_as_failure());
        assert!(Refusal::Microsoft(e(PlatformCause::IdTokenRejected)).counts_as_failure());
        assert!(Refusal::TenantNotConnected.counts_as_failure());
        assert!(Refusal::OtherBrowser.counts_as_failure());
    }
}
