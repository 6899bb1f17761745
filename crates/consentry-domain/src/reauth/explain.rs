//! What a failed re-authorization tells the administrator, and the permissions the catalog requires.

use consentry_catalog::{AppType, PermissionType};

use crate::model::GrantedPermission;
use crate::platform::{PlatformCause, PlatformError};

/// A failure that restores the profile and is reported on the result page.
pub(super) struct Failure {
    pub(super) message: String,
    pub(super) remediation: Vec<String>,
}

impl Failure {
    pub(super) fn new(message: impl Into<String>, remediation: Vec<String>) -> Self {
        Self {
            message: message.into(),
            remediation,
        }
    }
}

/// What a platform failure during re-authorization means to the administrator.
pub(super) fn explain_platform(e: &PlatformError, app: &AppType, custom: bool) -> Failure {
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
pub(super) fn required(app: &AppType, kind: PermissionType) -> Vec<String> {
    // Graph's grants and token scopes name Graph permissions only; a scope of another resource
    // (Viva Engage's) is proven by a token for that resource (`signed_in`).
    app.permissions
        .iter()
        .filter(|p| p.kind == kind && !p.optional && p.is_graph())
        .map(|p| p.name.clone())
        .collect()
}

/// The catalog's optional permissions that `granted` lacks.
pub(super) fn optional_missing(app: &AppType, granted: &[GrantedPermission]) -> Vec<String> {
    app.permissions
        .iter()
        .filter(|p| p.optional)
        .filter(|p| !granted.iter().any(|g| g.name == p.name && g.kind == p.kind))
        .map(|p| p.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reauth::testing::app;

    fn refusal(cause: PlatformCause) -> PlatformError {
        PlatformError {
            cause,
            aadsts: Some(65001),
            error: None,
            message: "the text".into(),
        }
    }

    #[test]
    fn missing_consent_names_the_vendor_app_or_the_custom_app_registration() {
        let vendor = explain_platform(
            &refusal(PlatformCause::ConsentMissing),
            &app("insights-m365"),
            false,
        );
        assert!(
            vendor.remediation[1]
                .contains("Enterprise applications, open AvePoint Insights for Microsoft365"),
            "{:?}",
            vendor.remediation
        );
        let custom = explain_platform(
            &refusal(PlatformCause::ConsentMissing),
            &app("custom-azure-app"),
            true,
        );
        assert!(custom.remediation[1].contains("App registrations"));
    }

    #[test]
    fn need_admin_approval_adds_the_grant_steps_after_the_advice() {
        let f = explain_platform(
            &refusal(PlatformCause::NeedAdminApproval),
            &app("insights-m365"),
            false,
        );
        assert_eq!(f.remediation.len(), 4);
        assert!(f.remediation[0].starts_with("Re-authorize with a Global Administrator"));
    }

    #[test]
    fn an_unmapped_refusal_quotes_microsofts_code_and_text() {
        let f = explain_platform(&refusal(PlatformCause::Other), &app("insights-m365"), false);
        assert_eq!(
            f.message,
            "Microsoft refused the re-authorization (AADSTS65001): the text"
        );
    }

    #[test]
    fn required_lists_only_mandatory_graph_permissions_of_the_kind() {
        let a = app("cloud-backup-delegated");
        let scopes = required(&a, PermissionType::Scope);
        assert!(scopes.contains(&"Tasks.ReadWrite".to_string()));
        assert!(
            !scopes.contains(&"Tasks.ReadWrite.All".to_string()),
            "optional"
        );
        assert!(required(&a, PermissionType::Role).is_empty());
        let roles = required(&app("insights-m365"), PermissionType::Role);
        assert!(roles.contains(&"Reports.Read.All".to_string()));
        assert!(!roles.contains(&"User.Read".to_string()), "a scope");
    }

    #[test]
    fn optional_missing_names_optional_permissions_not_granted() {
        let a = app("cloud-backup-delegated");
        assert_eq!(optional_missing(&a, &[]), vec!["Tasks.ReadWrite.All"]);
        let granted = [GrantedPermission {
            name: "Tasks.ReadWrite.All".into(),
            kind: PermissionType::Scope,
        }];
        assert!(optional_missing(&a, &granted).is_empty());
        let wrong_kind = [GrantedPermission {
            name: "Tasks.ReadWrite.All".into(),
            kind: PermissionType::Role,
        }];
        assert_eq!(
            optional_missing(&a, &wrong_kind),
            vec!["Tasks.ReadWrite.All"]
        );
    }
}
