//! What a failed connection tells the administrator. Never names another organization.

use crate::platform::{PlatformCause, PlatformError};

/// A failure shown on the result page; nothing was connected.
pub(super) struct Failure {
    pub(super) message: String,
    pub(super) remediation: Vec<String>,
}

fn failure(message: impl Into<String>, steps: &[&str]) -> Failure {
    Failure {
        message: message.into(),
        remediation: steps.iter().map(|s| (*s).to_string()).collect(),
    }
}

const AGAIN: &str = "Click \"Connect a Microsoft tenant\" on the Tenants page to start again.";

/// What a refusal or failure of Microsoft's means here.
pub(super) fn platform(e: &PlatformError) -> Failure {
    match e.cause {
        PlatformCause::Cancelled => failure(
            "The sign-in or consent was cancelled at Microsoft. No tenant was connected.",
            &[AGAIN],
        ),
        PlatformCause::ConsentDeclined => failure(
            "Consent was declined at Microsoft. No tenant was connected.",
            &[
                "Start again and accept the permissions Consentry asks for (reading your organization's name and domains).",
            ],
        ),
        PlatformCause::NeedAdminApproval => failure(
            "The account used may not grant consent for the tenant: Microsoft asks for an administrator's approval. No tenant was connected.",
            &[
                "Start again and sign in as a Global Administrator or Privileged Role Administrator of the tenant.",
            ],
        ),
        PlatformCause::ConsentMissing | PlatformCause::AppNotInTenant => failure(
            "Consentry's app has no administrator consent in the tenant, so its name and domains could not be read. No tenant was connected.",
            &[AGAIN],
        ),
        PlatformCause::MfaRequired | PlatformCause::ConditionalAccess => failure(
            "Microsoft required more for this sign-in (multi-factor authentication or a conditional access policy). No tenant was connected.",
            &[
                "Start again and complete what Microsoft asks for, or sign in from a place your policies allow.",
            ],
        ),
        PlatformCause::IdTokenRejected => failure(
            format!(
                "The sign-in answer could not be verified as Microsoft's ({}). No tenant was connected.",
                e.message
            ),
            &[AGAIN],
        ),
        PlatformCause::Transient => failure(
            "Microsoft did not answer in time. No tenant was connected.",
            &["Try again in a few minutes."],
        ),
        PlatformCause::NotConfigured
        | PlatformCause::VendorSecretInvalid
        | PlatformCause::VendorSecretExpired => failure(
            "Consentry's own app credential was rejected or is not configured. No tenant was connected.",
            &["Contact the service operator: nothing is needed in your tenant."],
        ),
        _ => failure(
            match e.aadsts {
                Some(c) => format!(
                    "Microsoft refused (AADSTS{c}): {} No tenant was connected.",
                    e.message
                ),
                None => format!("Microsoft refused: {} No tenant was connected.", e.message),
            },
            &[AGAIN],
        ),
    }
}

/// The signed-in account holds no role that may grant tenant-wide consent.
pub(super) fn not_an_admin(upn: &str) -> Failure {
    failure(
        format!(
            "{upn} holds none of the roles that may connect the tenant (Global Administrator, Privileged Role Administrator, Cloud Application Administrator or Application Administrator). No tenant was connected."
        ),
        &[
            "Start again and pick an administrator account of the tenant, or ask one of its administrators to connect it.",
        ],
    )
}

/// The consent's redirect named another tenant than the one signed in to, or none.
pub(super) fn other_tenant() -> Failure {
    failure(
        "The consent was not given in the tenant you signed in to. No tenant was connected.",
        &[AGAIN],
    )
}

/// The sign-in answer had neither a code nor an error.
pub(super) fn no_code() -> Failure {
    failure(
        "Microsoft's answer carried no sign-in code. No tenant was connected.",
        &[AGAIN],
    )
}

/// Graph named no verified domain.
pub(super) fn no_domain() -> Failure {
    failure(
        "Microsoft Graph lists no verified domain for the tenant. No tenant was connected.",
        &["Check the tenant's domains in the Microsoft Entra admin center, then start again."],
    )
}

/// The tenant is another organization's, verified (or holds its authorized profiles). The message
/// names no organization.
pub(super) fn claimed_elsewhere() -> Failure {
    failure(
        "This tenant is already connected to Consentry through another customer account, so it cannot be connected here. No tenant was connected.",
        &[
            "If your organization should manage this tenant, contact the service operator; they can tell you more.",
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transient_failure_says_try_again_and_a_refusal_names_no_organization() {
        let e = PlatformError {
            cause: PlatformCause::Transient,
            aadsts: None,
            error: None,
            message: "timeout".into(),
        };
        let f = platform(&e);
        assert!(f.message.contains("did not answer"), "{}", f.message);
        assert_eq!(
            f.remediation,
            vec!["Try again in a few minutes.".to_string()]
        );
        let c = claimed_elsewhere();
        assert!(
            !c.message.to_lowercase().contains("organization"),
            "{}",
            c.message
        );
        assert!(
            not_an_admin("bob@x.test")
                .message
                .starts_with("bob@x.test holds none")
        );
    }
}
