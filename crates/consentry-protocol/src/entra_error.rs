//! Errors of the identity platform and Graph, parsed once into typed values.
//!
//! Everything a caller decides on is an enum: the OAuth class ([`OAuthError`]), the
//! `suberror` ([`SubError`]), the Graph error code ([`GraphErrorKind`]) and, above all, what the
//! failure means for an app profile ([`Cause`]). The AADSTS numbers are kept for diagnostics and
//! metrics; `error_description` is kept for people, never branched on (entra-facts §1.3, §3.5).

use std::fmt;
use std::time::{Duration, SystemTime};

use consentry_certs::AssertionError;
use serde_json::Value;

/// The OAuth 2.0 `error` class of an identity-platform error (entra-facts §1.2, §1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OAuthError {
    /// `invalid_request`: a parameter is missing or malformed.
    InvalidRequest,
    /// `invalid_grant`: code, refresh token or assertion rejected (also MFA / CA / consent).
    InvalidGrant,
    /// `invalid_client`: client authentication failed (secret, certificate, assertion).
    InvalidClient,
    /// `unauthorized_client`: the client may not use this grant, or is not in the tenant.
    UnauthorizedClient,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `unsupported_response_type`.
    UnsupportedResponseType,
    /// `invalid_resource`: the target resource is not configured in the tenant.
    InvalidResource,
    /// `invalid_scope`.
    InvalidScope,
    /// `invalid_tenant`: the tenant does not exist (AADSTS90002).
    InvalidTenant,
    /// `interaction_required`.
    InteractionRequired,
    /// `login_required`.
    LoginRequired,
    /// `consent_required`.
    ConsentRequired,
    /// `access_denied`: the user declined or cancelled.
    AccessDenied,
    /// `permission_denied`: the legacy `/adminconsent` endpoint's documented cancel answer.
    PermissionDenied,
    /// `server_error`: transient failure at Microsoft.
    ServerError,
    /// `temporarily_unavailable`: Microsoft is busy.
    TemporarilyUnavailable,
    /// Any other value, kept verbatim.
    Other(String),
}

impl OAuthError {
    /// Parses the wire value; unknown values become [`OAuthError::Other`].
    pub fn parse(value: &str) -> Self {
        match value {
            "invalid_request" => Self::InvalidRequest,
            "invalid_grant" => Self::InvalidGrant,
            "invalid_client" => Self::InvalidClient,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "unsupported_response_type" => Self::UnsupportedResponseType,
            "invalid_resource" => Self::InvalidResource,
            "invalid_scope" => Self::InvalidScope,
            "invalid_tenant" => Self::InvalidTenant,
            "interaction_required" => Self::InteractionRequired,
            "login_required" => Self::LoginRequired,
            "consent_required" => Self::ConsentRequired,
            "access_denied" => Self::AccessDenied,
            "permission_denied" => Self::PermissionDenied,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidGrant => "invalid_grant",
            Self::InvalidClient => "invalid_client",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidResource => "invalid_resource",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTenant => "invalid_tenant",
            Self::InteractionRequired => "interaction_required",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::AccessDenied => "access_denied",
            Self::PermissionDenied => "permission_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `suberror` of a token-endpoint error (entra-facts §1.3), or the `error_subcode` of a
/// redirect error (`cancel`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubError {
    /// `basic_action`: the user must act (MFA, CA).
    BasicAction,
    /// `additional_action`.
    AdditionalAction,
    /// `message_only`.
    MessageOnly,
    /// `consent_required`: consent is missing or was removed.
    ConsentRequired,
    /// `user_password_expired`.
    UserPasswordExpired,
    /// `bad_token`: the refresh token is unusable (e.g. inactive 90 days).
    BadToken,
    /// `token_expired`.
    TokenExpired,
    /// `protection_policy_required`.
    ProtectionPolicyRequired,
    /// `client_mismatch`.
    ClientMismatch,
    /// `device_authentication_failed`.
    DeviceAuthenticationFailed,
    /// `cancel`: the user pressed Cancel (redirect `error_subcode`).
    Cancel,
    /// Any other value, kept verbatim.
    Other(String),
}

impl SubError {
    /// Parses the wire value; unknown values become [`SubError::Other`].
    pub fn parse(value: &str) -> Self {
        match value {
            "basic_action" => Self::BasicAction,
            "additional_action" => Self::AdditionalAction,
            "message_only" => Self::MessageOnly,
            "consent_required" => Self::ConsentRequired,
            "user_password_expired" => Self::UserPasswordExpired,
            "bad_token" => Self::BadToken,
            "token_expired" => Self::TokenExpired,
            "protection_policy_required" => Self::ProtectionPolicyRequired,
            "client_mismatch" => Self::ClientMismatch,
            "device_authentication_failed" => Self::DeviceAuthenticationFailed,
            "cancel" => Self::Cancel,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::BasicAction => "basic_action",
            Self::AdditionalAction => "additional_action",
            Self::MessageOnly => "message_only",
            Self::ConsentRequired => "consent_required",
            Self::UserPasswordExpired => "user_password_expired",
            Self::BadToken => "bad_token",
            Self::TokenExpired => "token_expired",
            Self::ProtectionPolicyRequired => "protection_policy_required",
            Self::ClientMismatch => "client_mismatch",
            Self::DeviceAuthenticationFailed => "device_authentication_failed",
            Self::Cancel => "cancel",
            Self::Other(s) => s,
        }
    }
}

/// What a failure means for an app profile (entra-facts §3.5). Closed: callers match on this,
/// never on text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The consent user's grant was revoked: password reset by an admin, sessions revoked,
    /// password expired (50173, 50133, 50132, 70008, 50089, 50055, 50144).
    PasswordResetOrRevoked,
    /// A sign-in-frequency / session policy expired the refresh token (70043, 700084).
    SignInFrequency,
    /// The consent user's account is disabled (50057).
    UserDisabled,
    /// The consent user no longer exists in the tenant (50034, 51004).
    UserNotFound,
    /// The signed-in account belongs to another directory (50020).
    WrongTenantAccount,
    /// The user is not assigned to the enterprise app, which requires assignment (50105).
    UserNotAssigned,
    /// MFA is now required for the consent user (50076, 50079, 50074, 50078).
    MfaRequired,
    /// A conditional-access policy blocks the request (53003, 53000–53004, 53011, 530032,
    /// 530035, 530084, 50131).
    ConditionalAccess,
    /// Consent is missing or was removed (65001, 65005, 650056, 650057; `consent_required`).
    ConsentMissing,
    /// The admin or user declined or cancelled the consent (65004, `access_denied`).
    ConsentDeclined,
    /// The account that tried to consent is not allowed to; an administrator must (90094, 90095).
    AdminConsentRequired,
    /// The app has no service principal in the tenant: never consented or deleted (700016,
    /// 7000229, 700011).
    AppNotInTenant,
    /// The app is disabled in the tenant (70001, 7000112).
    AppDisabled,
    /// The certificate used to sign the assertion is not registered on the app (700027).
    CertificateNotRegistered,
    /// The certificate was rejected: revoked or outside its validity (7000214, 7000277,
    /// 7000274, 1000502).
    CertificateRejected,
    /// The client assertion is outside its valid time range: check the clock (700024).
    AssertionTimeRange,
    /// The vendor app's client secret is wrong (7000215).
    VendorSecretInvalid,
    /// The vendor app's client secret has expired (7000222).
    VendorSecretExpired,
    /// The refresh token expired after 90 days without use (700082).
    RefreshTokenInactive,
    /// The tenant does not exist (90002, 900023; `invalid_tenant`).
    TenantNotFound,
    /// The authorization code (or refresh token) is invalid, expired, already redeemed, or the
    /// PKCE verifier does not match (70000, 54005, 501481, 700005).
    CodeInvalid,
    /// Graph refused the read: the token lacks the permission or the role (HTTP 403).
    GraphAccessDenied,
    /// A temporary failure: retry (timeouts, connection errors, 5xx, 429, 50033, 90006, 90024,
    /// 90033, `temporarily_unavailable`, `server_error`).
    Transient,
    /// Anything else.
    Other,
}

impl Cause {
    /// A short sentence saying what to do about it.
    pub fn advice(self) -> &'static str {
        match self {
            Self::PasswordResetOrRevoked => {
                "the consent user's sessions were revoked or the password was reset: re-authorize the profile"
            }
            Self::SignInFrequency => {
                "a sign-in frequency policy ended the session: re-authorize the profile, or exclude the app from the policy"
            }
            Self::UserDisabled => {
                "the consent user is disabled: re-authorize the profile with another account"
            }
            Self::UserNotFound => {
                "the consent user no longer exists in the tenant: re-authorize the profile with another account"
            }
            Self::WrongTenantAccount => {
                "the account used belongs to another directory: sign in with an account of the customer's tenant"
            }
            Self::UserNotAssigned => {
                "the user is not assigned to the enterprise application: assign the user, or turn off 'Assignment required'"
            }
            Self::MfaRequired => {
                "multi-factor authentication is now required for the consent user: re-authorize the profile"
            }
            Self::ConditionalAccess => {
                "a conditional-access policy blocks the request: add the service's IP addresses to the policy's trusted locations or exclude the app, then re-authorize"
            }
            Self::ConsentMissing => {
                "consent for the app is missing or was removed: grant admin consent again (re-authorize the profile)"
            }
            Self::ConsentDeclined => {
                "the consent was cancelled or declined at Microsoft: start the re-authorization again and accept"
            }
            Self::AdminConsentRequired => {
                "this account may not consent to the app: ask a Global Administrator or Privileged Role Administrator to consent"
            }
            Self::AppNotInTenant => {
                "the app is not in the tenant (never consented, or the enterprise application was deleted): grant admin consent again"
            }
            Self::AppDisabled => {
                "the enterprise application is disabled in the tenant: enable it (Enterprise applications, Properties, 'Enabled for users to sign in')"
            }
            Self::CertificateNotRegistered => {
                "the certificate is not registered on the app: upload the .cer for this .pfx to the app registration, or re-authorize with the right .pfx"
            }
            Self::CertificateRejected => {
                "the certificate was rejected (revoked or outside its validity): upload a new certificate and re-authorize with its .pfx"
            }
            Self::AssertionTimeRange => {
                "the client assertion's time range was rejected: check this server's clock (NTP)"
            }
            Self::VendorSecretInvalid => {
                "the vendor app's client secret is wrong: operators must fix the configured secret (the value, not the secret ID)"
            }
            Self::VendorSecretExpired => {
                "the vendor app's client secret has expired: operators must create a new secret and configure it"
            }
            Self::RefreshTokenInactive => {
                "the refresh token expired after 90 days without use: re-authorize the profile"
            }
            Self::TenantNotFound => "the tenant does not exist: check the tenant ID or domain",
            Self::CodeInvalid => {
                "the authorization code or refresh token was rejected (expired, used twice, or PKCE mismatch): start the sign-in again"
            }
            Self::GraphAccessDenied => {
                "Microsoft Graph refused the read: grant the missing permission or role, then re-authorize"
            }
            Self::Transient => "a temporary failure at Microsoft or on the network: retry later",
            Self::Other => "see the error details and Microsoft's error lookup page for this code",
        }
    }

    fn for_code(code: u32) -> Option<Self> {
        Some(match code {
            50173 | 50133 | 50132 | 70008 | 50089 | 50055 | 50144 => Self::PasswordResetOrRevoked,
            70043 | 700084 => Self::SignInFrequency,
            50057 => Self::UserDisabled,
            50034 | 51004 => Self::UserNotFound,
            50020 => Self::WrongTenantAccount,
            50105 => Self::UserNotAssigned,
            50076 | 50079 | 50074 | 50078 => Self::MfaRequired,
            53000..=53004 | 53011 | 530032 | 530035 | 530084 | 50131 => Self::ConditionalAccess,
            65001 | 65005 | 650056 | 650057 => Self::ConsentMissing,
            65004 => Self::ConsentDeclined,
            90094 | 90095 => Self::AdminConsentRequired,
            700016 | 7000229 | 700011 => Self::AppNotInTenant,
            70001 | 7000112 => Self::AppDisabled,
            700027 => Self::CertificateNotRegistered,
            // 7000274's meaning is ambiguous in Microsoft.Identity.Web (UNVERIFIED, entra-facts §9);
            // all four are certificate rejections there.
            7000214 | 7000277 | 7000274 | 1000502 => Self::CertificateRejected,
            700024 => Self::AssertionTimeRange,
            7000215 => Self::VendorSecretInvalid,
            7000222 => Self::VendorSecretExpired,
            700082 => Self::RefreshTokenInactive,
            90002 | 900023 => Self::TenantNotFound,
            70000 | 54005 | 501481 | 700005 => Self::CodeInvalid,
            code if TRANSIENT_CODES.contains(&code) => Self::Transient,
            _ => return None,
        })
    }
}

/// AADSTS codes documented as transient ("retry"), entra-facts §3.4.
pub const TRANSIENT_CODES: [u32; 4] = [50033, 90006, 90024, 90033];

/// An error answered by the Microsoft identity platform: a token-endpoint JSON body, or an
/// error redirect from `/authorize` or `/adminconsent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityError {
    /// HTTP status of the token response; `None` for a redirect.
    pub status: Option<u16>,
    /// The OAuth `error` class.
    pub error: OAuthError,
    /// `error_description`, for people (starts with `AADSTSnnnnn:`).
    pub description: String,
    /// AADSTS numbers from `error_codes`, or found in the description when that is absent.
    pub error_codes: Vec<u32>,
    /// `suberror` (token endpoint) or `error_subcode` (redirect).
    pub suberror: Option<SubError>,
    /// `trace_id` (or `Trace ID:` in the description).
    pub trace_id: Option<String>,
    /// `correlation_id` (or `Correlation ID:` in the description).
    pub correlation_id: Option<String>,
    /// `timestamp` (`YYYY-MM-DD HH:MM:SSZ`), as sent.
    pub timestamp: Option<String>,
    /// `error_uri`.
    pub error_uri: Option<String>,
    /// A claims challenge (JSON text) returned with MFA / CA errors.
    pub claims: Option<String>,
    /// The `client-request-id` Consentry sent with the failed request.
    pub client_request_id: Option<String>,
}

impl IdentityError {
    /// Parses a token-endpoint error body. `None` when the body is not JSON with a string
    /// `error` member.
    pub fn from_json(status: Option<u16>, body: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let obj = value.as_object()?;
        let error = obj.get("error")?.as_str()?;
        let text = |key: &str| {
            obj.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let description = text("error_description").unwrap_or_default();
        let codes: Vec<u32> = obj
            .get("error_codes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| {
                        v.as_u64()
                            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                            .and_then(|n| u32::try_from(n).ok())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let suberror = ["suberror", "subError", "sub_error"]
            .iter()
            .find_map(|k| text(k))
            .map(|s| SubError::parse(&s));
        Some(Self::assemble(
            status,
            error,
            description,
            codes,
            suberror,
            text("trace_id"),
            text("correlation_id"),
            text("timestamp"),
            text("error_uri"),
            text("claims"),
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        status: Option<u16>,
        error: &str,
        description: String,
        codes: Vec<u32>,
        suberror: Option<SubError>,
        trace_id: Option<String>,
        correlation_id: Option<String>,
        timestamp: Option<String>,
        error_uri: Option<String>,
        claims: Option<String>,
    ) -> Self {
        let error_codes = if codes.is_empty() {
            aadsts_codes(&description)
        } else {
            codes
        };
        Self {
            status,
            error: OAuthError::parse(error),
            trace_id: trace_id.or_else(|| labelled_token(&description, "Trace ID:")),
            correlation_id: correlation_id
                .or_else(|| labelled_token(&description, "Correlation ID:")),
            timestamp: timestamp.or_else(|| labelled_timestamp(&description)),
            description,
            error_codes,
            suberror,
            error_uri,
            claims,
            client_request_id: None,
        }
    }

    /// The first AADSTS number, the one decisions are keyed on.
    pub fn primary_code(&self) -> Option<u32> {
        self.error_codes.first().copied()
    }

    /// Whether `code` is among the AADSTS numbers.
    pub fn has_code(&self, code: u32) -> bool {
        self.error_codes.contains(&code)
    }

    /// What this means for a profile: the first AADSTS number with a known meaning, otherwise
    /// the OAuth class / suberror.
    pub fn cause(&self) -> Cause {
        if let Some(cause) = self.error_codes.iter().find_map(|&c| Cause::for_code(c)) {
            return cause;
        }
        if self.suberror == Some(SubError::ConsentRequired) {
            return Cause::ConsentMissing;
        }
        match self.error {
            OAuthError::InvalidTenant => Cause::TenantNotFound,
            OAuthError::ConsentRequired => Cause::ConsentMissing,
            OAuthError::AccessDenied | OAuthError::PermissionDenied => Cause::ConsentDeclined,
            OAuthError::ServerError | OAuthError::TemporarilyUnavailable => Cause::Transient,
            _ => Cause::Other,
        }
    }

    /// Whether retrying may succeed: `temporarily_unavailable`, `server_error`, or one of
    /// [`TRANSIENT_CODES`]. Nothing else (in particular not AADSTS50196, a loop detection that
    /// retrying makes worse).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.error,
            OAuthError::ServerError | OAuthError::TemporarilyUnavailable
        ) || self.error_codes.iter().any(|c| TRANSIENT_CODES.contains(c))
    }

    /// Whether the admin or user cancelled / declined at Microsoft: `access_denied` with
    /// `error_subcode=cancel`, or AADSTS65004.
    pub fn is_cancel(&self) -> bool {
        (self.error == OAuthError::AccessDenied && self.suberror == Some(SubError::Cancel))
            || self.has_code(65004)
    }

    /// The first line of the description, without the trace / correlation / timestamp tail.
    pub fn summary(&self) -> &str {
        let first = self.description.lines().next().unwrap_or_default();
        first
            .find(" Trace ID:")
            .map_or(first, |i| &first[..i])
            .trim()
    }
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.primary_code() {
            Some(code) => write!(f, "AADSTS{code} ({})", self.error)?,
            None => write!(f, "{}", self.error)?,
        }
        let mut summary = self.summary();
        if let Some(code) = self.primary_code() {
            let prefix = format!("AADSTS{code}:");
            if let Some(rest) = summary.strip_prefix(prefix.as_str()) {
                summary = rest.trim_start();
            }
        }
        if !summary.is_empty() {
            write!(f, ": {summary}")?;
        }
        if let Some(id) = &self.correlation_id {
            write!(f, " [correlation ID {id}]")?;
        }
        if let Some(id) = &self.client_request_id {
            write!(f, " [client-request-id {id}]")?;
        }
        Ok(())
    }
}

/// Parses the query (or fragment / form body) of a redirect back from `/authorize` or
/// `/adminconsent` into an [`IdentityError`]; `None` when it carries no `error`.
///
/// Accepts a leading `?` or `#`. Reads `error`, `error_description`, `error_uri`,
/// `error_subcode` (as [`IdentityError::suberror`]); AADSTS numbers and trace / correlation IDs
/// come from the description.
pub fn parse_redirect_error(query: &str) -> Option<IdentityError> {
    let query = query.trim_start_matches(['?', '#']);
    let mut error = None;
    let mut description = String::new();
    let mut error_uri = None;
    let mut subcode = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "error" => error = Some(v.into_owned()),
            "error_description" => description = v.into_owned(),
            "error_uri" => error_uri = Some(v.into_owned()),
            "error_subcode" => subcode = Some(SubError::parse(&v)),
            _ => {}
        }
    }
    let error = error.filter(|e| !e.is_empty())?;
    Some(IdentityError::assemble(
        None,
        &error,
        description,
        Vec::new(),
        subcode,
        None,
        None,
        None,
        error_uri,
        None,
    ))
}

/// All distinct `AADSTS<digits>` numbers in `text`, in order of appearance.
fn aadsts_codes(text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("AADSTS") {
        rest = &rest[i + "AADSTS".len()..];
        let digits: &str = &rest[..rest.bytes().take_while(u8::is_ascii_digit).count()];
        if let Ok(code) = digits.parse::<u32>()
            && !out.contains(&code)
        {
            out.push(code);
        }
    }
    out
}

/// The whitespace-delimited token after `label` (e.g. `Trace ID:`), if any.
fn labelled_token(text: &str, label: &str) -> Option<String> {
    let i = text.find(label)?;
    let token: String = text[i + label.len()..]
        .trim_start()
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    (!token.is_empty()).then_some(token)
}

/// The `Timestamp: YYYY-MM-DD HH:MM:SS[.f]Z` value in a description.
fn labelled_timestamp(text: &str) -> Option<String> {
    let i = text.find("Timestamp:")?;
    let rest = text[i + "Timestamp:".len()..].trim_start();
    let end = rest.find('Z')?;
    (end <= 40).then(|| rest[..=end].to_owned())
}

/// What Graph's error `code` says, for decisions (entra-facts §4.11).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GraphErrorKind {
    /// `InvalidAuthenticationToken`: the token expired or is not valid for Graph.
    InvalidAuthenticationToken,
    /// `Authorization_RequestDenied`, `accessDenied`, `Forbidden`: insufficient privileges.
    AccessDenied,
    /// `Request_ResourceNotFound`, `ResourceNotFound`, `itemNotFound`.
    NotFound,
    /// `Request_BadRequest`, `BadRequest`, `invalidRequest`.
    BadRequest,
    /// `TooManyRequests`.
    TooManyRequests,
    /// `serviceNotAvailable`.
    ServiceNotAvailable,
    /// Any other code, kept verbatim.
    Other(String),
}

impl GraphErrorKind {
    /// Classifies a Graph error `code`.
    pub fn parse(code: &str) -> Self {
        match code {
            "InvalidAuthenticationToken" => Self::InvalidAuthenticationToken,
            "Authorization_RequestDenied" | "accessDenied" | "Forbidden" => Self::AccessDenied,
            "Request_ResourceNotFound" | "ResourceNotFound" | "itemNotFound" => Self::NotFound,
            "Request_BadRequest" | "BadRequest" | "invalidRequest" => Self::BadRequest,
            "TooManyRequests" => Self::TooManyRequests,
            "serviceNotAvailable" => Self::ServiceNotAvailable,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// An error answered by Microsoft Graph: `{"error":{"code","message","innerError":{…}}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    /// HTTP status.
    pub status: u16,
    /// `error.code`, verbatim.
    pub code: String,
    /// `error.code`, classified.
    pub kind: GraphErrorKind,
    /// `error.message`.
    pub message: String,
    /// `innerError.request-id` (or the `request-id` response header).
    pub request_id: Option<String>,
    /// `innerError.date`.
    pub date: Option<String>,
    /// The `client-request-id` Consentry sent.
    pub client_request_id: Option<String>,
}

impl GraphError {
    /// Parses a Graph error body; `None` when it is not one. `innerError` is also accepted as
    /// `innererror` (the documented schema's casing).
    pub fn from_json(status: u16, body: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let err = value.get("error")?.as_object()?;
        let code = err.get("code")?.as_str()?.to_owned();
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let inner = err
            .get("innerError")
            .or_else(|| err.get("innererror"))
            .and_then(Value::as_object);
        let inner_text = |k: &str| {
            inner
                .and_then(|i| i.get(k))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Some(Self {
            status,
            kind: GraphErrorKind::parse(&code),
            code,
            message,
            request_id: inner_text("request-id"),
            date: inner_text("date"),
            client_request_id: inner_text("client-request-id"),
        })
    }

    /// What this means for a profile.
    pub fn cause(&self) -> Cause {
        match (&self.kind, self.status) {
            (GraphErrorKind::AccessDenied, _) | (_, 403) => Cause::GraphAccessDenied,
            (GraphErrorKind::TooManyRequests | GraphErrorKind::ServiceNotAvailable, _) => {
                Cause::Transient
            }
            (_, s) if s >= 500 || s == 429 => Cause::Transient,
            _ => Cause::Other,
        }
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} {}: {}", self.status, self.code, self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " [request-id {id}]")?;
        }
        if let Some(id) = &self.client_request_id {
            write!(f, " [client-request-id {id}]")?;
        }
        Ok(())
    }
}

/// How a request failed to complete at the transport level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// The configured timeout elapsed.
    Timeout,
    /// The connection could not be opened (DNS, refused, TLS handshake).
    Connect,
    /// The connection broke while sending or receiving (reset, closed early).
    Interrupted,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "timed out",
            Self::Connect => "connection failed",
            Self::Interrupted => "connection interrupted",
        })
    }
}

fn opt_id(id: &Option<String>) -> String {
    id.as_deref()
        .map(|id| format!(" [client-request-id {id}]"))
        .unwrap_or_default()
}

fn opt_secs(d: &Option<Duration>) -> String {
    d.map(|d| format!("; Microsoft asks to retry after {:.1} s", d.as_secs_f64()))
        .unwrap_or_default()
}

/// Everything that can go wrong talking to the identity platform or Graph.
#[derive(Debug, thiserror::Error)]
pub enum EntraError {
    /// The identity platform answered an OAuth error (token endpoint, or a parsed redirect).
    #[error("Microsoft Entra ID refused the request: {0}; {advice}", advice = .0.cause().advice())]
    Identity(Box<IdentityError>),
    /// Graph answered an error.
    #[error("Microsoft Graph refused the request: {0}; {advice}", advice = .0.cause().advice())]
    Graph(Box<GraphError>),
    /// HTTP 429.
    #[error(
        "Microsoft throttled the request (HTTP 429){}: wait and retry, and lower the request rate if it persists{}",
        opt_secs(.retry_after), opt_id(.client_request_id)
    )]
    Throttled {
        /// The `Retry-After` delay, when sent and parseable.
        retry_after: Option<Duration>,
        /// The `client-request-id` sent.
        client_request_id: Option<String>,
    },
    /// HTTP 5xx.
    #[error(
        "the Microsoft service answered HTTP {status}{}{}: a temporary fault on its side, retry later{}",
        .detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default(),
        opt_secs(.retry_after), opt_id(.client_request_id)
    )]
    Server {
        /// The HTTP status.
        status: u16,
        /// The `Retry-After` delay, when sent (503 may carry one).
        retry_after: Option<Duration>,
        /// The error code found in the body, if any.
        detail: Option<String>,
        /// The `client-request-id` sent.
        client_request_id: Option<String>,
    },
    /// Timeout, connection failure or reset.
    #[error(
        "could not reach the Microsoft service ({kind}: {detail}): check network, proxy, DNS and TLS trust, then retry{}",
        opt_id(.client_request_id)
    )]
    Transport {
        /// What failed.
        kind: TransportKind,
        /// The underlying error text.
        detail: String,
        /// The `client-request-id` sent.
        client_request_id: Option<String>,
    },
    /// The answer could not be understood (unparseable body, unexpected shape or status).
    #[error(
        "the Microsoft service's answer could not be understood ({detail}): check that the authority and Graph URLs point at Microsoft (or entra-sim) and report it with the request ID{}",
        opt_id(.client_request_id)
    )]
    Protocol {
        /// What was wrong with the answer.
        detail: String,
        /// The `client-request-id` sent.
        client_request_id: Option<String>,
    },
    /// The Viva Engage (Yammer) REST API refused the request (a 4xx other than 429): the token
    /// was not accepted (401: not issued for `https://api.yammer.com` or without
    /// `user_impersonation`) or the user may not read it.
    #[error(
        "the Viva Engage API refused the request (HTTP {status}): the consent must cover the Viva Engage (Yammer) permission user_impersonation and the user must be active in Viva Engage{}",
        opt_id(.client_request_id)
    )]
    VivaEngage {
        /// The HTTP status.
        status: u16,
        /// The `client-request-id` sent.
        client_request_id: Option<String>,
    },
    /// A caller-supplied value is unusable (tenant, GUID, redirect URI, …); nothing was sent.
    #[error("{0}")]
    InvalidInput(String),
    /// The client configuration is unusable.
    #[error("the Entra client configuration is invalid: {0}")]
    Config(String),
    /// The client assertion could not be signed with the certificate.
    #[error("could not build the client assertion: {0}")]
    Assertion(#[from] AssertionError),
}

impl EntraError {
    /// Whether retrying may succeed: timeouts, connection errors, 5xx, 429, and identity errors
    /// that [`IdentityError::is_transient`] says so.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Identity(e) => e.is_transient(),
            Self::Graph(e) => e.cause() == Cause::Transient,
            Self::Throttled { .. } | Self::Server { .. } | Self::Transport { .. } => true,
            Self::Protocol { .. }
            | Self::VivaEngage { .. }
            | Self::InvalidInput(_)
            | Self::Config(_)
            | Self::Assertion(_) => false,
        }
    }

    /// What this means for a profile.
    pub fn cause(&self) -> Cause {
        match self {
            Self::Identity(e) => e.cause(),
            Self::Graph(e) => e.cause(),
            Self::Throttled { .. } | Self::Server { .. } | Self::Transport { .. } => {
                Cause::Transient
            }
            Self::Assertion(AssertionError::CertificateExpired { .. }) => {
                Cause::CertificateRejected
            }
            Self::Protocol { .. }
            | Self::VivaEngage { .. }
            | Self::InvalidInput(_)
            | Self::Config(_)
            | Self::Assertion(_) => Cause::Other,
        }
    }

    /// The delay Microsoft asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after, .. } | Self::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The `client-request-id` sent with the failed request, for support cases.
    pub fn client_request_id(&self) -> Option<&str> {
        match self {
            Self::Identity(e) => e.client_request_id.as_deref(),
            Self::Graph(e) => e.client_request_id.as_deref(),
            Self::Throttled {
                client_request_id, ..
            }
            | Self::Server {
                client_request_id, ..
            }
            | Self::Transport {
                client_request_id, ..
            }
            | Self::Protocol {
                client_request_id, ..
            }
            | Self::VivaEngage {
                client_request_id, ..
            } => client_request_id.as_deref(),
            Self::InvalidInput(_) | Self::Config(_) | Self::Assertion(_) => None,
        }
    }

    /// The identity-platform error, if this is one.
    pub fn identity(&self) -> Option<&IdentityError> {
        match self {
            Self::Identity(e) => Some(e),
            _ => None,
        }
    }

    /// The Graph error, if this is one.
    pub fn graph(&self) -> Option<&GraphError> {
        match self {
            Self::Graph(e) => Some(e),
            _ => None,
        }
    }
}

impl From<IdentityError> for EntraError {
    fn from(e: IdentityError) -> Self {
        Self::Identity(Box::new(e))
    }
}

impl From<GraphError> for EntraError {
    fn from(e: GraphError) -> Self {
        Self::Graph(Box::new(e))
    }
}

/// Parses a `Retry-After` value: integer or decimal seconds (Graph has sent `2.128`), or an
/// HTTP date (taken relative to `now`; a date in the past gives zero). `None` when unparseable.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::try_from_secs_f64(secs).ok())
            .flatten();
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}
