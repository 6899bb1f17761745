//! Error answers of the identity platform (entra-facts §1.3, §3): the flat JSON body of the token
//! endpoint and the `error_description` text used on redirects and pages.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::model::Settings;

/// An AADSTS error.
#[derive(Debug, Clone)]
pub(crate) struct AadError {
    pub code: u32,
    pub error: String,
    pub message: String,
    pub suberror: Option<&'static str>,
    pub status: StatusCode,
}

/// `YYYY-MM-DD HH:MM:SSZ`
pub(crate) fn aad_timestamp(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

/// A form-encoded request body of the identity platform's endpoints: each field's first value.
pub(crate) fn form_fields(body: &[u8]) -> std::collections::HashMap<String, String> {
    let mut form = std::collections::HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        form.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    form
}

/// The `client-request-id` a client sent, echoed as the correlation ID of an error.
pub(crate) fn client_request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The error lookup page for a code.
pub(crate) fn error_uri(base: &str, code: u32) -> String {
    format!("{base}/error?code={code}")
}

impl AadError {
    /// An error whose OAuth `error`, HTTP status and `suberror` follow entra-facts §3 for `code`.
    pub fn new(code: u32, message: impl Into<String>, settings: &Settings) -> Self {
        let unverified_client = StatusCode::from_u16(settings.invalid_client_status)
            .unwrap_or(StatusCode::UNAUTHORIZED);
        let (error, status, suberror) = match code {
            50076 | 50079 => (
                "invalid_grant",
                StatusCode::BAD_REQUEST,
                Some("basic_action"),
            ),
            65001 => (
                "invalid_grant",
                StatusCode::BAD_REQUEST,
                Some("consent_required"),
            ),
            700082 => ("invalid_grant", StatusCode::BAD_REQUEST, Some("bad_token")),
            7000215 | 7000218 => ("invalid_client", StatusCode::UNAUTHORIZED, None),
            // HTTP status UNVERIFIED (entra-facts §9): configurable, 401 by default.
            7000222 | 7000229 | 700027 | 700024 | 50048 | 50027 | 700025 => {
                ("invalid_client", unverified_client, None)
            }
            // Device code flow (Microsoft's v2-oauth2-device-code; AADSTS70016 and 70020 are
            // observed with these classes).
            70016 => ("authorization_pending", StatusCode::BAD_REQUEST, None),
            70019 | 70020 => ("expired_token", StatusCode::BAD_REQUEST, None),
            700016 => ("unauthorized_client", StatusCode::BAD_REQUEST, None),
            90002 => ("invalid_tenant", StatusCode::BAD_REQUEST, None),
            70011 | 700022 => ("invalid_scope", StatusCode::BAD_REQUEST, None),
            500011 => ("invalid_resource", StatusCode::BAD_REQUEST, None),
            70003 => ("unsupported_grant_type", StatusCode::BAD_REQUEST, None),
            900144 | 9002313 | 9001023 | 50011 => {
                ("invalid_request", StatusCode::BAD_REQUEST, None)
            }
            700054 => ("unsupported_response_type", StatusCode::BAD_REQUEST, None),
            _ => ("invalid_grant", StatusCode::BAD_REQUEST, None),
        };
        Self {
            code,
            error: error.to_owned(),
            message: message.into(),
            suberror,
            status,
        }
    }

    /// Overrides the OAuth `error` (redirect errors use other classes than the token endpoint).
    pub fn with_error(mut self, error: &str) -> Self {
        self.error = error.to_owned();
        self
    }

    /// `AADSTSnnnn: message\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: …`
    pub fn description(&self, now: OffsetDateTime, trace_id: &str, correlation_id: &str) -> String {
        format!(
            "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {}",
            self.code,
            self.message,
            aad_timestamp(now)
        )
    }

    /// The token-endpoint JSON response.
    pub fn to_response(
        &self,
        now: OffsetDateTime,
        base: &str,
        correlation_id: Option<&str>,
    ) -> Response {
        let trace_id = uuid::Uuid::new_v4().to_string();
        // Echoing client-request-id as correlation_id is UNVERIFIED (entra-facts §9).
        let correlation_id =
            correlation_id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
        let mut body = serde_json::json!({
            "error": self.error,
            "error_description": self.description(now, &trace_id, &correlation_id),
            "error_codes": [self.code],
            "timestamp": aad_timestamp(now),
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": error_uri(base, self.code),
        });
        if let Some(sub) = self.suberror {
            body["suberror"] = sub.into();
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        no_store(resp.headers_mut());
        resp
    }
}

/// Token-response cache headers (entra-facts §1.3).
pub(crate) fn no_store(headers: &mut HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
}

/// AADSTS90002 (for callers that already hold the state lock).
pub(crate) fn tenant_not_found_with(settings: &Settings, tenant: &str) -> AadError {
    AadError::new(
        90002,
        format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        ),
        settings,
    )
}
