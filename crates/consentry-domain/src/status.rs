//! Profile status and the typed reasons behind every non-valid status, each with the remediation an
//! administrator can act on, worded in the terms of the product documentation.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The health of an app profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActionOwner {
    /// The customer's tenant administrator (re-authorize, or change something in the tenant).
    TenantAdmin,
    /// The operator of Consentry (the vendor): nothing the customer can do fixes it.
    Operator,
    /// Nobody yet: wait for a running step to finish.
    Nobody,
}

/// A conditional access control, other than the network location, that Microsoft reported as not
/// satisfied (entra-facts §3.1). The codes' names are documented; the OAuth `error` Microsoft sends
/// with them at the token endpoint is UNVERIFIED (entra-facts §9), so they are told apart by code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CaRequirement {
    /// A compliant device is required (AADSTS53000 DeviceNotCompliant).
    CompliantDevice,
    /// A Microsoft Entra (hybrid) joined device is required (AADSTS53001 DeviceNotDomainJoined).
    DomainJoinedDevice,
    /// An approved client app / app protection policy is required (AADSTS53002).
    ApprovedClientApp,
    /// Blocked by a conditional access security policy (AADSTS530032).
    SecurityPolicy,
    /// Blocked by the tenant's security defaults (AADSTS530035).
    SecurityDefaults,
    /// Blocked because of the user's sign-in or user risk (AADSTS53004, 53011).
    Risk,
    /// Token protection (bound session tokens) is required (AADSTS530084).
    TokenProtection,
    /// Conditional access failed without a more specific cause (AADSTS50131), for example an
    /// unaccepted terms of use (entra-facts names no code of its own for terms of use).
    Other,
}

impl CaRequirement {
    /// What the policy asks for, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Self::CompliantDevice => "requires a compliant device (AADSTS53000)",
            Self::DomainJoinedDevice => {
                "requires a Microsoft Entra joined or hybrid joined device (AADSTS53001)"
            }
            Self::ApprovedClientApp => {
                "requires an approved client app or an app protection policy (AADSTS53002)"
            }
            Self::SecurityPolicy => "blocks the sign-in as a security policy (AADSTS530032)",
            Self::SecurityDefaults => {
                "is security defaults, which block this sign-in (AADSTS530035)"
            }
            Self::Risk => {
                "blocks the sign-in because of the consent user's risk level (AADSTS53004/53011)"
            }
            Self::TokenProtection => "requires token protection (AADSTS530084)",
            Self::Other => {
                "was not satisfied, for example terms of use that were not accepted (AADSTS50131)"
            }
        }
    }
}

/// Why a profile is not valid. Each variant is definitive evidence from Microsoft or from the catalog;
/// transient failures never become a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// A conditional access policy blocks the token refresh (AADSTS53003), typically one limited to
    /// trusted network locations.
    ConditionalAccessBlocked {
        /// The IP address from which the consent user originally signed in and consented.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        original_ip: Option<IpAddr>,
        /// The service's own outbound addresses (`[network] outbound_addresses`), from which its
        /// non-interactive sign-ins reach Microsoft; empty when the operator has not listed them.
        #[serde(default)]
        outbound_addresses: Vec<String>,
    },
    /// A conditional access policy requires something a service's non-interactive sign-in cannot
    /// present (a compliant or joined device, an approved client app, …): adding IP addresses to
    /// named locations does not help.
    ConditionalAccessRequirement {
        /// What the policy requires.
        requirement: CaRequirement,
        /// The AADSTS code observed.
        aadsts: Option<u32>,
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
    /// Attention: the consent user's refresh token has not been redeemed for long (the service could
    /// not reach Microsoft) and nears the 90-day inactivity limit after which Microsoft revokes it
    /// (AADSTS700082).
    RefreshTokenNearInactivity {
        /// When it was last redeemed successfully.
        #[serde(with = "time::serde::rfc3339")]
        last_used: OffsetDateTime,
        /// When Microsoft revokes it unless it is redeemed before.
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
        /// Whole days left, as of the check that found it.
        days_left: i64,
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
    /// Whether the reason is a refusal of the consent user's sign-in (a delegated or conditional
    /// access failure), which the tenant's sign-in logs can show the evidence of.
    pub fn is_sign_in_failure(&self) -> bool {
        matches!(
            self,
            Self::PasswordResetOrSessionsRevoked { .. }
                | Self::ConsentUserDisabled { .. }
                | Self::ConsentUserDeleted { .. }
                | Self::MfaEnabledAfterConsent { .. }
                | Self::ConditionalAccessBlocked { .. }
                | Self::ConditionalAccessRequirement { .. }
        )
    }

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
            Self::ConditionalAccessRequirement { .. } => "conditional_access_requirement",
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
            Self::VendorCredentialProblem { .. } | Self::RefreshTokenNearInactivity { .. } => {
                ActionOwner::Operator
            }
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
            Self::ConditionalAccessBlocked { original_ip, .. } => match original_ip {
                Some(ip) => format!(
                    "A conditional access policy in your tenant blocks this app. The original IP address of the consent sign-in is {ip}."
                ),
                None => "A conditional access policy in your tenant blocks this app.".into(),
            },
            Self::ConditionalAccessRequirement { requirement, .. } => format!(
                "A conditional access policy in your tenant {}, which the service's sign-ins on the consent user's behalf cannot satisfy.",
                requirement.describe()
            ),
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
            Self::RefreshTokenNearInactivity {
                last_used,
                expires_at,
                days_left,
            } => format!(
                "The consent user's sign-in has not been renewed since {}: the service could not reach Microsoft. Microsoft revokes it on {} unless it is renewed before ({days_left} days left).",
                date(*last_used),
                date(*expires_at)
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
            Self::ConditionalAccessBlocked {
                original_ip,
                outbound_addresses,
            } => {
                // Microsoft evaluates conditional access again each time the service redeems the
                // consent user's refresh token — a non-interactive sign-in by a confidential
                // client — against the address that reaches Microsoft (the service's own), while
                // the sign-in log shows the original consent IP (entra-facts §7, facts 2-4). Which
                // of the two a tenant's policy ends up matching is not something the tenant admin
                // can see, so both are named.
                let ip = original_ip
                    .map(|ip| format!("the original IP address of the consent sign-in ({ip})"))
                    .unwrap_or_else(|| "the original IP address of the consent sign-in".into());
                let service = if outbound_addresses.is_empty() {
                    "the service's own outbound IP addresses (ask the service operator for them)"
                        .to_string()
                } else {
                    format!(
                        "the service's own outbound IP addresses ({})",
                        outbound_addresses.join(", ")
                    )
                };
                vec![
                    format!("In the Microsoft Entra admin center, add {ip} and {service} to the trusted locations (named locations) of your conditional access policies: the service's sign-ins on the consent user's behalf are evaluated again at every token refresh."),
                    "Then re-authorize the app profile to update its status at once, or wait for the next automatic check.".into(),
                ]
            }
            Self::ConditionalAccessRequirement { requirement, .. } => {
                let first = match requirement {
                    CaRequirement::SecurityDefaults => "In the Microsoft Entra admin center, replace security defaults with conditional access policies that exclude this app, or have the consent user meet what security defaults ask (for example, register for multi-factor authentication).".to_string(),
                    CaRequirement::Risk => "In the Microsoft Entra admin center (Identity Protection), investigate and remediate the consent user's risk, or re-authorize with another account.".to_string(),
                    _ => format!(
                        "In the Microsoft Entra admin center, exclude this app (its enterprise application) from the conditional access policy that {}: the service signs in from its servers, with no device or client app a policy can check. Adding IP addresses to named locations does not help here.",
                        requirement.describe()
                    ),
                };
                vec![
                    first,
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
            Self::RefreshTokenNearInactivity { expires_at, .. } => vec![
                "Operator: restore the service's access to Microsoft (login.microsoftonline.com); the next check that gets through renews the sign-in and clears this.".into(),
                format!("If it is not renewed by {}, the app profile becomes Invalid and must be re-authorized.", date(*expires_at)),
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

/// What an administrator should prepare before consenting to an app with delegated permissions,
/// shown where consent starts (the re-authorization page, consent links): the addresses to add to
/// the named locations of location-based conditional access policies. Microsoft evaluates those
/// policies at the consent sign-in and again at every refresh-token redemption by the service,
/// a non-interactive sign-in whose log shows the original consent IP (entra-facts §7), so both
/// the address the admin consents from and the service's own outbound addresses must be trusted.
pub fn conditional_access_preparation(outbound_addresses: &[String]) -> String {
    let service = if outbound_addresses.is_empty() {
        "the service's outbound IP addresses (ask the service operator for them)".to_string()
    } else {
        format!(
            "the service's outbound IP addresses {}",
            outbound_addresses.join(", ")
        )
    };
    format!(
        "This app uses delegated permissions. If your tenant has conditional access policies limited to trusted locations, add the IP address you consent from and {service} to their named locations before consenting: Microsoft checks the policies again each time the service refreshes the consent, and the app profile becomes Invalid if they block it."
    )
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
            outbound_addresses: vec!["198.51.100.10".into(), "198.51.100.64/29".into()],
        };
        assert_eq!(ca.status(), ProfileStatus::Invalid);
        assert!(ca.summary().contains("203.0.113.7"));
        assert!(ca.remediation()[0].contains("203.0.113.7"));
        assert!(ca.remediation()[0].contains("198.51.100.10, 198.51.100.64/29"));
        assert!(ca.remediation()[0].contains("trusted locations"));
        let unknown = StatusReason::ConditionalAccessBlocked {
            original_ip: None,
            outbound_addresses: vec![],
        };
        assert!(unknown.remediation()[0].contains("ask the service operator"));
        // A reason stored before the outbound addresses existed still reads.
        let old: StatusReason = serde_json::from_value(
            serde_json::json!({"code": "conditional_access_blocked", "original_ip": null}),
        )
        .unwrap();
        assert_eq!(old, unknown);
        let device = StatusReason::ConditionalAccessRequirement {
            requirement: CaRequirement::CompliantDevice,
            aadsts: Some(53000),
        };
        assert_eq!(device.status(), ProfileStatus::Invalid);
        assert!(device.summary().contains("compliant device"));
        assert!(device.remediation()[0].contains("exclude this app"));
        assert!(
            !device.remediation()[0].contains("add "),
            "no IP advice: {:?}",
            device.remediation()
        );
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
