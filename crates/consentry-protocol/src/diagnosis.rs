//! What a failure at Microsoft means for an app profile: [`EntraError`]s (parsed by
//! [`crate::entra_error`]) turned into the domain's [`PlatformError`] with its [`PlatformCause`].
//! Pure functions, re-exported by `consentry-entra` (`consentry_entra::platform::platform_error`).

use consentry_domain::{PlatformCause, PlatformError};

use crate::entra_error::{Cause, EntraError, OAuthError, SubError, parse_redirect_error};

/// Maps a client error to the domain's [`PlatformError`]: the [`PlatformCause`], the AADSTS
/// code, the OAuth error class (or Graph error code) and a message without secrets.
pub fn platform_error(err: &EntraError) -> PlatformError {
    let (aadsts, error) = match err {
        EntraError::Identity(e) => (e.primary_code(), Some(e.error.as_str().to_owned())),
        EntraError::Graph(e) => (None, Some(e.code.clone())),
        _ => (None, None),
    };
    let cause = match err.identity() {
        Some(e) if e.error == OAuthError::AccessDenied && e.suberror == Some(SubError::Cancel) => {
            PlatformCause::Cancelled
        }
        _ if err.is_transient() => PlatformCause::Transient,
        _ => match (err.cause(), err.identity()) {
            (Cause::ConditionalAccess, Some(e)) => conditional_access_cause(&e.error_codes),
            (cause, _) => map_cause(cause),
        },
    };
    PlatformError {
        cause,
        aadsts,
        error,
        message: err.to_string(),
    }
}

/// Tells a conditional access block by location (53003, whose advice is about named locations)
/// from the controls a service's non-interactive sign-in can never satisfy, whatever its IP
/// (entra-facts §3.1). The OAuth `error` sent with 53000–53002, 53004, 53011, 530032, 530035,
/// 530084 and 50131 is UNVERIFIED (entra-facts §9): only the AADSTS code is used.
fn conditional_access_cause(codes: &[u32]) -> PlatformCause {
    use consentry_domain::CaRequirement as R;
    let requirement = codes.iter().find_map(|c| match c {
        53000 => Some(R::CompliantDevice),
        53001 => Some(R::DomainJoinedDevice),
        53002 => Some(R::ApprovedClientApp),
        53004 | 53011 => Some(R::Risk),
        530032 => Some(R::SecurityPolicy),
        530035 => Some(R::SecurityDefaults),
        530084 => Some(R::TokenProtection),
        50131 => Some(R::Other),
        _ => None,
    });
    match requirement {
        // 53003 (BlockedByConditionalAccess) and anything else the crate files under conditional
        // access: a block, which named locations decide in the product documentation's case.
        Some(r) if !codes.contains(&53003) => PlatformCause::ConditionalAccessRequirement(r),
        _ => PlatformCause::ConditionalAccess,
    }
}

fn map_cause(cause: Cause) -> PlatformCause {
    match cause {
        Cause::PasswordResetOrRevoked => PlatformCause::PasswordResetOrRevoked,
        Cause::UserDisabled => PlatformCause::UserDisabled,
        Cause::UserNotFound => PlatformCause::UserNotFound,
        Cause::MfaRequired => PlatformCause::MfaRequired,
        Cause::ConditionalAccess => PlatformCause::ConditionalAccess,
        Cause::ConsentMissing => PlatformCause::ConsentMissing,
        Cause::ConsentDeclined => PlatformCause::ConsentDeclined,
        Cause::AdminConsentRequired => PlatformCause::NeedAdminApproval,
        Cause::AppNotInTenant => PlatformCause::AppNotInTenant,
        Cause::CertificateNotRegistered => PlatformCause::CertificateNotRegistered,
        Cause::AssertionTimeRange => PlatformCause::AssertionTimeRange,
        Cause::VendorSecretInvalid => PlatformCause::VendorSecretInvalid,
        Cause::VendorSecretExpired => PlatformCause::VendorSecretExpired,
        Cause::RefreshTokenInactive => PlatformCause::RefreshTokenInactive,
        Cause::TenantNotFound => PlatformCause::TenantNotFound,
        Cause::CodeInvalid => PlatformCause::CodeInvalid,
        Cause::Transient => PlatformCause::Transient,
        // The port has no cause for these yet: sign-in frequency (70043, 700084), an account of
        // another directory (50020), user not assigned (50105), app disabled (70001),
        // certificate revoked or expired (7000214, …), Graph access denied. The AADSTS code and
        // the message keep the detail.
        Cause::SignInFrequency
        | Cause::WrongTenantAccount
        | Cause::UserNotAssigned
        | Cause::AppDisabled
        | Cause::CertificateRejected
        | Cause::GraphAccessDenied
        | Cause::Other => PlatformCause::Other,
    }
}

/// Interprets the error parameters of Microsoft's redirect to Consentry's callback (`error`,
/// `error_description`, `error_subcode`): `access_denied` + `cancel` → `Cancelled`, AADSTS65004 →
/// `ConsentDeclined`, 90094/90095 → `NeedAdminApproval`, `server_error` /
/// `temporarily_unavailable` → `Transient`, and the AADSTS causes otherwise.
pub fn platform_error_from_redirect(
    error: &str,
    description: Option<&str>,
    subcode: Option<&str>,
) -> PlatformError {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("error", if error.is_empty() { "error" } else { error });
    if let Some(d) = description {
        query.append_pair("error_description", d);
    }
    if let Some(s) = subcode {
        query.append_pair("error_subcode", s);
    }
    match parse_redirect_error(&query.finish()) {
        Some(e) => platform_error(&EntraError::from(e)),
        None => PlatformError {
            cause: PlatformCause::Other,
            aadsts: None,
            error: Some(error.to_owned()),
            message: "Microsoft returned an error without details: start again".into(),
        },
    }
}
