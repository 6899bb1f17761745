//! The callback's step decisions, pure: whether a step expired, whether Microsoft's "need admin
//! approval" continues with the sign-in, whether the admin-consent redirect's tenant is the
//! profile's, and whether the grants read from Graph cover what the catalog requires.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use consentry_catalog::{AppType, PermissionKind, PermissionType};
use secrecy::{SecretSlice, SecretString};
use time::OffsetDateTime;

use super::explain::{Failure, required};
use super::secrets::PendingSecrets;
use crate::error::DomainError;
use crate::ids::{AppId, TenantId};
use crate::model::{AuthLeg, ConsentUser, PendingAuthorization};
use crate::platform::{ClientRef, Grants, PlatformCause, PlatformError};

/// What the consenting account's sign-in proved.
pub(super) struct SignInResult {
    pub(super) user: ConsentUser,
    pub(super) ip: Option<std::net::IpAddr>,
    pub(super) refresh_token: Option<SecretString>,
    /// The delegated scopes the identity platform says it granted in this sign-in.
    pub(super) granted_scopes: Vec<String>,
    /// Scopes of resources other than Microsoft Graph proven by a token for them (full form).
    pub(super) resource_scopes: Vec<String>,
}

/// A Microsoft answer that passed every check, ready to be recorded.
pub(super) struct Verified {
    pub(super) client: ClientRef,
    pub(super) client_id: AppId,
    pub(super) grants: Grants,
    /// Delegated scopes effective for the consent user (or tenant-wide).
    pub(super) delegated: Vec<String>,
    pub(super) sign_in: Option<SignInResult>,
    pub(super) secrets: PendingSecrets,
}

/// The outcome of checking one step's answer.
pub(super) enum Step {
    /// Another step at Microsoft follows.
    Continue(String),
    /// Verified: record it.
    Done(Box<Verified>),
}

/// Why a step stopped.
pub(super) enum StepError {
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

impl From<Failure> for StepError {
    fn from(f: Failure) -> Self {
        Self::Failed(f)
    }
}

/// Refuses an answer that came after the pending record's deadline.
pub(super) fn check_expiry(
    now: OffsetDateTime,
    pending: &PendingAuthorization,
) -> Result<(), Failure> {
    if now > pending.expires_at {
        return Err(Failure::new(
            "This re-authorization expired (it must be completed within 10 minutes).",
            vec!["Start the re-authorization again.".into()],
        ));
    }
    Ok(())
}

/// Whether Microsoft's redirect error continues with the consenting account's own sign-in.
///
/// An account that may not grant tenant-wide consent at Microsoft (only Global, Privileged Role,
/// Cloud Application and Application Administrators may) can still be the one an
/// administrator-consent rule names, e.g. an Exchange Administrator for the Cloud Governance
/// Delegated App. A tenant administrator expects that account to be able to re-authorize when the
/// organization has already approved the app: so for an app with delegated permissions only,
/// Microsoft's "need admin approval" on the admin-consent page continues with the sign-in
/// (authorize endpoint), where the account consents to what a user may, and the catalog's role
/// check and the permission check decide. Without the organization's consent to the admin-only
/// scopes, Microsoft refuses the sign-in too and the failure says a Global Administrator must
/// grant it.
pub(super) fn falls_back_to_sign_in(
    redirect_error: &PlatformError,
    pending: &PendingAuthorization,
    app: &AppType,
) -> bool {
    redirect_error.cause == PlatformCause::NeedAdminApproval
        && pending.leg == AuthLeg::AdminConsent
        && pending.sign_in_follows
        && app.permission_kind == PermissionKind::Delegated
}

/// Whether the `tenant` an admin-consent redirect reports is the profile's. Trusted only to refuse:
/// a matching one proves nothing (Graph decides).
pub(super) fn is_profile_tenant(reported: &str, tenant: TenantId) -> bool {
    TenantId::parse(reported.trim()).is_ok_and(|t| t == tenant)
}

/// The failure of a consent given in another tenant (`theirs`, as reported, cut to 64 characters)
/// than the profile's (`ours`, in words).
pub(super) fn other_tenant(reported: &str, ours: &str) -> Failure {
    let theirs: String = reported.chars().take(64).collect();
    Failure::new(
        format!(
            "The consent was given in another Microsoft tenant ({theirs}), not in this app profile's tenant {ours}. The app profile was not changed."
        ),
        vec![
            format!(
                "Start the re-authorization again and sign in with an administrator account of {ours}, not with an account of another organization."
            ),
            "If the app was consented in the other tenant by mistake, an administrator of that tenant can remove it in the Microsoft Entra admin center (Enterprise applications > the app > Properties > Delete).".into(),
        ],
    )
}

/// The app the pending record's consent is for: the custom app sealed with it, or the vendor's.
pub(super) fn client_of(
    pending: &PendingAuthorization,
    secrets: &PendingSecrets,
    app: &AppType,
) -> ClientRef {
    match (
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
    }
}

/// What the grants read after a step allow.
#[derive(Debug, PartialEq)]
pub(super) enum Judged {
    /// The tenant-wide consent is in place; the consenting account's sign-in follows.
    SignInNext,
    /// Everything required is granted: the delegated scopes effective for the consent.
    Granted(Vec<String>),
}

/// Judges the grants Graph shows after a step against the catalog's required permissions:
/// application permissions always from Graph; delegated ones, after a sign-in, from Graph where the
/// app may read them and otherwise from what the sign-in itself says it granted, plus the scopes of
/// other resources a token for them proved.
pub(super) fn judge_grants(
    app: &AppType,
    pending: &PendingAuthorization,
    grants: &Grants,
    sign_in: Option<&SignInResult>,
) -> Result<Judged, Failure> {
    let mut missing: Vec<String> = required(app, PermissionType::Role)
        .into_iter()
        .filter(|r| !grants.app_roles.contains(r))
        .collect();
    if grants.service_principal.is_none() {
        return Err(Failure::new(
            "The app was not found in your tenant after consent.",
            vec!["Re-authorize again with a Global Administrator or Privileged Role Administrator account.".into()],
        ));
    }
    if pending.leg == AuthLeg::AdminConsent && !missing.is_empty() {
        return Err(Failure::new(
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
        ));
    }
    if pending.leg == AuthLeg::AdminConsent && pending.sign_in_follows {
        return Ok(Judged::SignInNext);
    }
    let mut delegated = match sign_in {
        Some(s) if !grants.delegated_readable => s.granted_scopes.clone(),
        Some(s) => grants.delegated_for(Some(s.user.object_id)),
        None => grants.delegated_for(None),
    };
    let Some(s) = sign_in else {
        return Ok(Judged::Granted(delegated));
    };
    delegated.extend(s.resource_scopes.iter().cloned());
    delegated.sort();
    delegated.dedup();
    missing.extend(
        required(app, PermissionType::Scope)
            .into_iter()
            .filter(|s| !delegated.contains(s)),
    );
    if !missing.is_empty() {
        return Err(Failure::new(
            format!("The consent did not grant the permissions the app needs: {}.", missing.join(", ")),
            vec!["Re-authorize again and accept every permission the app asks for; with User consent, make sure an administrator granted admin consent first.".into()],
        ));
    }
    Ok(Judged::Granted(delegated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ObjectId;
    use crate::reauth::testing::{app, grants, pending};

    fn signed_in(scopes: &[&str]) -> SignInResult {
        SignInResult {
            user: ConsentUser {
                object_id: ObjectId::parse("5f0b6c5e-0000-4000-8000-000000000001").unwrap(),
                upn: crate::ids::Upn::parse("admin@contoso.example").unwrap(),
            },
            ip: None,
            refresh_token: None,
            granted_scopes: scopes.iter().map(|s| s.to_string()).collect(),
            resource_scopes: vec![],
        }
    }

    #[test]
    fn an_answer_after_the_deadline_is_refused() {
        let p = pending(AuthLeg::SignIn, false);
        assert!(check_expiry(p.expires_at, &p).is_ok());
        let late = check_expiry(p.expires_at + time::Duration::seconds(1), &p)
            .err()
            .unwrap();
        assert!(late.message.contains("expired"));
    }

    #[test]
    fn need_admin_approval_falls_back_to_sign_in_only_for_delegated_apps_with_a_sign_in_to_follow()
    {
        let approval = PlatformError {
            cause: PlatformCause::NeedAdminApproval,
            aadsts: Some(90094),
            error: None,
            message: String::new(),
        };
        let delegated = app("cloud-governance-delegated");
        assert!(falls_back_to_sign_in(
            &approval,
            &pending(AuthLeg::AdminConsent, true),
            &delegated
        ));
        assert!(!falls_back_to_sign_in(
            &approval,
            &pending(AuthLeg::AdminConsent, false),
            &delegated
        ));
        assert!(!falls_back_to_sign_in(
            &approval,
            &pending(AuthLeg::SignIn, false),
            &delegated
        ));
        let hybrid = app("insights-m365");
        assert!(!falls_back_to_sign_in(
            &approval,
            &pending(AuthLeg::AdminConsent, true),
            &hybrid
        ));
        let declined = PlatformError {
            cause: PlatformCause::ConsentDeclined,
            ..approval
        };
        assert!(!falls_back_to_sign_in(
            &declined,
            &pending(AuthLeg::AdminConsent, true),
            &delegated
        ));
    }

    #[test]
    fn the_reported_tenant_must_be_the_profiles_and_is_quoted_cut_short_otherwise() {
        let ours = TenantId::parse("3c1e8b2f-6d10-4b1e-9a55-0b1f8b4e6b1e").unwrap();
        assert!(is_profile_tenant(
            " 3c1e8b2f-6d10-4b1e-9a55-0b1f8b4e6b1e ",
            ours
        ));
        assert!(!is_profile_tenant("organizations", ours));
        assert!(!is_profile_tenant(
            "0b1f8b4e-6b1e-4c1e-9a55-3c1e8b2f6d10",
            ours
        ));
        let f = other_tenant(&"x".repeat(100), "contoso.example");
        assert!(f.message.contains(&format!("({})", "x".repeat(64))));
        assert!(!f.message.contains(&"x".repeat(65)));
        assert!(f.remediation[0].contains("administrator account of contoso.example"));
    }

    #[test]
    fn missing_application_permissions_fail_an_admin_consent() {
        let a = app("insights-m365");
        let mut g = grants();
        g.app_roles = vec!["User.Read.All".into()];
        let f = judge_grants(&a, &pending(AuthLeg::AdminConsent, true), &g, None).unwrap_err();
        assert!(f.message.contains("Group.Read.All"), "{}", f.message);
        assert!(!f.message.contains("User.Read.All,"));
        g.app_roles = required(&a, PermissionType::Role);
        let next = judge_grants(&a, &pending(AuthLeg::AdminConsent, true), &g, None);
        assert_eq!(next.ok(), Some(Judged::SignInNext));
        let application_only = judge_grants(&a, &pending(AuthLeg::AdminConsent, false), &g, None);
        assert_eq!(application_only.ok(), Some(Judged::Granted(vec![])));
    }

    #[test]
    fn an_app_missing_from_the_tenant_fails_whatever_the_leg() {
        let mut g = grants();
        g.service_principal = None;
        let f = judge_grants(
            &app("m365-all"),
            &pending(AuthLeg::AdminConsent, false),
            &g,
            None,
        )
        .unwrap_err();
        assert!(f.message.contains("not found in your tenant"));
    }

    #[test]
    fn after_a_sign_in_the_scopes_come_from_the_sign_in_when_graph_cannot_say() {
        let a = app("cloud-backup-delegated");
        let needed = required(&a, PermissionType::Scope);
        let mut g = grants();
        g.delegated_readable = false;
        let all: Vec<&str> = needed.iter().map(String::as_str).collect();
        let ok = judge_grants(
            &a,
            &pending(AuthLeg::SignIn, false),
            &g,
            Some(&signed_in(&all)),
        );
        let mut sorted = needed.clone();
        sorted.sort();
        assert_eq!(ok.ok(), Some(Judged::Granted(sorted)));
        let f = judge_grants(
            &a,
            &pending(AuthLeg::SignIn, false),
            &g,
            Some(&signed_in(&["User.Read"])),
        )
        .unwrap_err();
        assert!(f.message.contains("Tasks.ReadWrite"), "{}", f.message);
        // Graph can say, and says nothing was granted: the sign-in's own statement does not count.
        g.delegated_readable = true;
        assert!(
            judge_grants(
                &a,
                &pending(AuthLeg::SignIn, false),
                &g,
                Some(&signed_in(&all))
            )
            .is_err()
        );
    }
}
