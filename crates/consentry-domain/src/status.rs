//! Profile status and the typed reasons behind every non-valid status, each with the remediation an
//! administrator can act on, worded in the terms of the product documentation.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The health of an app profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileStatus {
    /// Works and has everything the catalog requires.
    Valid,
    /// Works, but will break soon or lacks optional permissions of a newer catalog version.
    Attention,
    /// Does not work: must be re-authorized (or the cause fixed in the tenant).
    Invalid,
    /// A re-authorization was started and has not finished; the previous credentials are still used.
    Pending,
}

impl ProfileStatus {
    /// Every status, in display order.
    pub const ALL: [ProfileStatus; 4] =
        [Self::Valid, Self::Attention, Self::Invalid, Self::Pending];

    /// The stable lower-case name used in the API, the database and filters.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Attention => "attention",
            Self::Invalid => "invalid",
            Self::Pending => "pending",
        }
    }

    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The label shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Valid => "Valid",
            Self::Attention => "Needs attention",
            Self::Invalid => "Invalid",
            Self::Pending => "Re-authorization pending",
        }
    }
}

impl fmt::Display for ProfileStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who has to act to clear a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionOwner {
    /// The customer's tenant administrator (re-authorize, or change something in the tenant).
    TenantAdmin,
    /// The operator of Consentry (the vendor): nothing the customer can do fixes it.
    Operator,
    /// Nobody yet: wait for a running step to finish.
    Nobody,
}

/// Why a profile is not valid. Each variant is definitive evidence from Microsoft or from the catalog;
/// transient failures never become a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum StatusReason {
    /// The profile was created but nobody has authorized it yet.
    NotYetAuthorized,
    /// The consent user's password was reset by an administrator, or their sessions were revoked (AADSTS50173).
    PasswordResetOrSessionsRevoked {
        /// The consent user's UPN, when known.
        upn: Option<String>,
    },
    /// The consent user's account is disabled (AADSTS50057).
    ConsentUserDisabled {
        /// The consent user's UPN, when known.
        upn: Option<String>,
    },
    /// The consent user no longer exists in the tenant (left the company).
    ConsentUserDeleted {
        /// The consent user's UPN, when known.
        upn: Option<String>,
    },
    /// Multi-factor authentication was enabled on the consent user after consent (AADSTS50076/50079).
    MfaEnabledAfterConsent {
        /// The consent user's UPN, when known.
        upn: Option<String>,
    },
    /// A conditional access policy blocks the token refresh (AADSTS53003).
    ConditionalAccessBlocked {
        /// The IP address from which the consent user originally signed in and consented.
        original_ip: Option<IpAddr>,
    },
    /// The consent (or the permission grant) was revoked in the tenant (AADSTS65001).
    ConsentRevoked,
    /// The app's enterprise application (service principal) was removed from the tenant (AADSTS700016/7000229).
    AppRemovedFromTenant,
    /// The custom app's certificate is no longer registered on the app in Entra ID (AADSTS700027).
    CertificateNotRegistered {
        /// SHA-1 thumbprint of the certificate Consentry holds.
        thumbprint: Option<String>,
    },
    /// The custom app's certificate has expired.
    CertificateExpired {
        /// When it expired.
        #[serde(with = "time::serde::rfc3339")]
        not_after: OffsetDateTime,
    },
    /// Permissions required by the catalog (for example added for new features) are not granted.
    PermissionsMissing {
        /// The missing permission names.
        missing: Vec<String>,
    },
    /// The refresh token was unused for too long and expired (AADSTS700082).
    RefreshTokenInactive,
    /// The tenant no longer exists or cannot be found (AADSTS90002).
    TenantNotFound,
    /// The vendor's own app credential (client secret or certificate) is wrong or expired
    /// (AADSTS7000215/7000222): an operator problem, not the customer's.
    VendorCredentialProblem {
        /// The AADSTS code observed.
        aadsts: Option<u32>,
    },
    /// Microsoft refused with an error Consentry has no specific advice for.
    UnrecognizedError {
        /// The AADSTS code, when present.
        aadsts: Option<u32>,
        /// The OAuth error class (`invalid_grant`, …).
        error: String,
    },
    /// Attention: the custom app's certificate expires soon.
    CertificateExpiringSoon {
        /// When it expires.
        #[serde(with = "time::serde::rfc3339")]
        not_after: OffsetDateTime,
    },
    /// Attention: the refresh token is close to its inactivity limit.
    RefreshTokenNearInactivity {
        /// When it was last used.
        #[serde(with = "time::serde::rfc3339")]
        last_used: OffsetDateTime,
    },
    /// Attention: a newer catalog version offers optional permissions not yet granted.
    OptionalPermissionsAvailable {
        /// The optional permission names.
        permissions: Vec<String>,
    },
    /// Pending: a re-authorization was started and waits for the administrator at Microsoft.
    ReauthorizationStarted {
        /// Who started it.
        by: String,
    },
}

impl StatusReason {
    /// The status this reason implies.
    pub fn status(&self) -> ProfileStatus {
        match self {
            Self::CertificateExpiringSoon { .. }
            | Self::RefreshTokenNearInactivity { .. }
            | Self::OptionalPermissionsAvailable { .. } => ProfileStatus::Attention,
            Self::ReauthorizationStarted { .. } => ProfileStatus::Pending,
            _ => ProfileStatus::Invalid,
        }
    }

    /// Whether the profile's credential still works under this reason, so services may keep using
    /// it (the token API): attention reasons, and required permissions a newer catalog version added
    /// (the consent still grants what it granted; only the new features lack their permissions).
    pub fn credential_works(&self) -> bool {
        matches!(self, Self::PermissionsMissing { .. }) || self.status() == ProfileStatus::Attention
    }

    /// The stable machine code (the serde tag), for filters, metrics and webhooks.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotYetAuthorized => "not_yet_authorized",
            Self::PasswordResetOrSessionsRevoked { .. } => "password_reset_or_sessions_revoked",
            Self::ConsentUserDisabled { .. } => "consent_user_disabled",
            Self::ConsentUserDeleted { .. } => "consent_user_deleted",
            Self::MfaEnabledAfterConsent { .. } => "mfa_enabled_after_consent",
            Self::ConditionalAccessBlocked { .. } => "conditional_access_blocked",
            Self::ConsentRevoked => "consent_revoked",
            Self::AppRemovedFromTenant => "app_removed_from_tenant",
            Self::CertificateNotRegistered { .. } => "certificate_not_registered",
            Self::CertificateExpired { .. } => "certificate_expired",
            Self::PermissionsMissing { .. } => "permissions_missing",
            Self::RefreshTokenInactive => "refresh_token_inactive",
            Self::TenantNotFound => "tenant_not_found",
            Self::VendorCredentialProblem { .. } => "vendor_credential_problem",
            Self::UnrecognizedError { .. } => "unrecognized_error",
            Self::CertificateExpiringSoon { .. } => "certificate_expiring_soon",
            Self::RefreshTokenNearInactivity { .. } => "refresh_token_near_inactivity",
            Self::OptionalPermissionsAvailable { .. } => "optional_permissions_available",
            Self::ReauthorizationStarted { .. } => "reauthorization_started",
        }
    }

    /// Who has to act.
    pub fn owner(&self) -> ActionOwner {
        match self {
            Self::VendorCredentialProblem { .. } => ActionOwner::Operator,
            Self::ReauthorizationStarted { .. } => ActionOwner::Nobody,
            _ => ActionOwner::TenantAdmin,
        }
    }

    /// One sentence saying what is wrong, for lists and badges.
    pub fn summary(&self) -> String {
        let who = |upn: &Option<String>| {
            upn.as_deref()
                .map(|u| format!("the consent user {u}"))
                .unwrap_or_else(|| "the consent user".to_string())
        };
        match self {
            Self::NotYetAuthorized => "This app profile has not been authorized yet.".into(),
            Self::PasswordResetOrSessionsRevoked { upn } => format!(
                "The password of {} was changed or reset, or their sign-in sessions were revoked.",
                who(upn)
            ),
            Self::ConsentUserDisabled { upn } => {
                format!("The Microsoft 365 account of {} is disabled.", who(upn))
            }
            Self::ConsentUserDeleted { upn } => format!(
                "The Microsoft 365 account of {} no longer exists (for example, the user left the company).",
                who(upn)
            ),
            Self::MfaEnabledAfterConsent { upn } => format!(
                "Multi-factor authentication (MFA) was enabled on the account of {} after they gave consent.",
                who(upn)
            ),
            Self::ConditionalAccessBlocked { original_ip } => match original_ip {
                Some(ip) => format!(
                    "A conditional access policy in your tenant blocks this app. The original IP address of the consent sign-in is {ip}."
                ),
                None => "A conditional access policy in your tenant blocks this app.".into(),
            },
            Self::ConsentRevoked => "The consent to this app was revoked in your tenant.".into(),
            Self::AppRemovedFromTenant => {
                "The app (its enterprise application) was removed from your tenant.".into()
            }
            Self::CertificateNotRegistered { .. } => {
                "The certificate of the custom Azure app is no longer registered on the app in Microsoft Entra ID.".into()
            }
            Self::CertificateExpired { not_after } => format!(
                "The certificate of the custom Azure app expired on {}.",
                date(*not_after)
            ),
            Self::PermissionsMissing { missing } => format!(
                "The app needs permissions that are not granted yet: {}.",
                missing.join(", ")
            ),
            Self::RefreshTokenInactive => {
                "The consent user's sign-in expired because it was not used for 90 days.".into()
            }
            Self::TenantNotFound => "Microsoft could not find this tenant.".into(),
            Self::VendorCredentialProblem { .. } => {
                "The service's own app credential was rejected by Microsoft. The operator has been told; nothing is needed in your tenant.".into()
            }
            Self::UnrecognizedError { aadsts, error } => match aadsts {
                Some(code) => format!("Microsoft refused access ({error}, AADSTS{code})."),
                None => format!("Microsoft refused access ({error})."),
            },
            Self::CertificateExpiringSoon { not_after } => format!(
                "The certificate of the custom Azure app expires on {}.",
                date(*not_after)
            ),
            Self::RefreshTokenNearInactivity { last_used } => format!(
                "The consent user's sign-in was last used on {} and will expire after 90 days without use.",
                date(*last_used)
            ),
            Self::OptionalPermissionsAvailable { permissions } => format!(
                "New optional permissions are available: {}.",
                permissions.join(", ")
            ),
            Self::ReauthorizationStarted { by } => format!(
                "Re-authorization started by {by} and waiting for consent at Microsoft. The previous authorization stays in use until it completes."
            ),
        }
    }

    /// The steps that clear the reason, in order.
    pub fn remediation(&self) -> Vec<String> {
        let reauth = "Select the app profile and click Re-authorize.".to_string();
        match self {
            Self::NotYetAuthorized => vec![
                reauth.replace("Re-authorize", "Re-authorize (or Authorize)"),
            ],
            Self::PasswordResetOrSessionsRevoked { .. } => vec![
                "Re-authorize the app profile: sign in with the consent user's new password, or with another account that has the required roles.".into(),
            ],
            Self::ConsentUserDisabled { .. } | Self::ConsentUserDeleted { .. } => vec![
                "Re-authorize the app profile with another account that has the required roles (the consent user's account is unavailable).".into(),
            ],
            Self::MfaEnabledAfterConsent { .. } => vec![
                "Re-authorize the app profile: the consent user signs in again and completes multi-factor authentication.".into(),
            ],
            Self::ConditionalAccessBlocked { original_ip } => {
                let ip = original_ip
                    .map(|ip| format!("the original IP address {ip}"))
                    .unwrap_or_else(|| "the original IP address of the consent sign-in".into());
                vec![
                    format!("In the Microsoft Entra admin center, add {ip} to the trusted locations (named locations) of your conditional access policies."),
                    "Then re-authorize the app profile to update its status at once, or wait for the next automatic check.".into(),
                ]
            }
            Self::ConsentRevoked | Self::AppRemovedFromTenant => vec![
                "Re-authorize the app profile with a Global Administrator or Privileged Role Administrator account to grant consent again.".into(),
            ],
            Self::CertificateNotRegistered { thumbprint } => vec![
                match thumbprint {
                    Some(t) => format!("Upload the certificate (.cer) with thumbprint {t} to the custom app in Microsoft Entra ID (App registrations > the app > Certificates & secrets),"),
                    None => "Upload the certificate (.cer) to the custom app in Microsoft Entra ID (App registrations > the app > Certificates & secrets),".into(),
                },
                "or re-authorize the app profile with the .pfx file that matches the certificate now registered on the app.".into(),
            ],
            Self::CertificateExpired { .. } | Self::CertificateExpiringSoon { .. } => vec![
                "Create a new certificate (for example: consentry cert new --subject <app> --years 2 --out <folder>).".into(),
                "Upload its .cer file to the custom app in Microsoft Entra ID (App registrations > the app > Certificates & secrets).".into(),
                "Re-authorize the app profile with the new .pfx file and its password.".into(),
            ],
            Self::PermissionsMissing { .. } => vec![
                "Re-authorize the app profile so that the new permissions are granted (the app was updated to add API permissions required by new features).".into(),
            ],
            Self::RefreshTokenInactive => vec![
                "Re-authorize the app profile: the consent user signs in again.".into(),
            ],
            Self::TenantNotFound => vec![
                "Check that the tenant still exists and that its tenant ID is correct; then re-authorize the app profile.".into(),
            ],
            Self::VendorCredentialProblem { .. } => vec![
                "Operator: renew the client secret or certificate of the vendor app registration and update Consentry's configuration.".into(),
            ],
            Self::UnrecognizedError { aadsts, .. } => {
                let mut steps = vec![reauth];
                if let Some(code) = aadsts {
                    steps.push(format!(
                        "If it fails again, look up the error at https://login.microsoftonline.com/error?code={code}."
                    ));
                }
                steps
            }
            Self::RefreshTokenNearInactivity { .. } => vec![
                "No action is needed while the service keeps using the app; a check now keeps the sign-in alive.".into(),
            ],
            Self::OptionalPermissionsAvailable { .. } => vec![
                "Re-authorize the app profile when convenient to grant the new optional permissions.".into(),
            ],
            Self::ReauthorizationStarted { .. } => vec![
                "Complete the sign-in and consent at Microsoft, or start the re-authorization again.".into(),
            ],
        }
    }
}

fn date(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    t.format(&fmt).unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip() {
        for s in ProfileStatus::ALL {
            assert_eq!(ProfileStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ProfileStatus::parse("broken"), None);
    }

    #[test]
    fn reasons_imply_statuses_and_owners() {
        let ca = StatusReason::ConditionalAccessBlocked {
            original_ip: Some("203.0.113.7".parse().unwrap()),
        };
        assert_eq!(ca.status(), ProfileStatus::Invalid);
        assert!(ca.summary().contains("203.0.113.7"));
        assert!(ca.remediation()[0].contains("203.0.113.7"));
        assert!(ca.remediation()[0].contains("trusted locations"));
        let soon = StatusReason::CertificateExpiringSoon {
            not_after: time::macros::datetime!(2027-01-05 0:00 UTC),
        };
        assert_eq!(soon.status(), ProfileStatus::Attention);
        assert!(soon.summary().contains("2027-01-05"));
        let vendor = StatusReason::VendorCredentialProblem {
            aadsts: Some(7000222),
        };
        assert_eq!(vendor.owner(), ActionOwner::Operator);
        assert_eq!(
            StatusReason::ReauthorizationStarted { by: "ops".into() }.status(),
            ProfileStatus::Pending
        );
    }

    #[test]
    fn serde_tag_matches_code() {
        let reasons = [
            StatusReason::NotYetAuthorized,
            StatusReason::PermissionsMissing {
                missing: vec!["Tasks.ReadWrite.All".into()],
            },
            StatusReason::MfaEnabledAfterConsent {
                upn: Some("a@contoso.com".into()),
            },
            StatusReason::UnrecognizedError {
                aadsts: Some(1),
                error: "invalid_grant".into(),
            },
        ];
        for r in reasons {
            let v = serde_json::to_value(&r).unwrap();
            assert_eq!(v["code"], r.code());
            let back: StatusReason = serde_json::from_value(v).unwrap();
            assert_eq!(back, r);
            assert!(!r.remediation().is_empty());
        }
    }
}
