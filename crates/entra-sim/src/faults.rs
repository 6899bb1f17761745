//! Fault injection: added latency, error statuses (429 with `Retry-After`, 5xx) and dropped
//! connections, per endpoint, at a chosen rate.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

fn one() -> f64 {
    1.0
}

/// A fault rule. When a request matches `endpoint`, the rule fires with probability `rate`: it waits
/// `latency_ms`, then drops the connection, answers `status`, or (with neither) lets the request
/// through late.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// `token`, `authorize` (with the sign-in pages), `adminconsent`, `discovery`, `jwks`, `graph`,
    /// `yammer` (the Viva Engage REST API), or a path prefix starting with `/` (e.g. `/v1.0/servicePrincipals`).
    pub endpoint: String,
    /// Probability in 0..=1 that the rule fires for a matching request.
    #[serde(default = "one")]
    pub rate: f64,
    /// Added latency in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// HTTP status to answer (429, 500, 503, …; on Graph a 400 answers `BadRequest`).
    #[serde(default)]
    pub status: Option<u16>,
    /// `Retry-After` seconds on the answer (for 429 / 503). Graph may omit it; so may a rule.
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
    /// Close the connection without answering.
    #[serde(default)]
    pub drop_connection: bool,
}

/// Waits a fault rule's added latency, precisely: tokio's timer rounds a sleep up to its next
/// millisecond tick and its driver wakes up to another millisecond late, about 2 ms on each 20 ms
/// round trip (a tenth; `consentry-bench sim-capacity --concurrency 1 --latency-ms 20`). The last
/// few milliseconds are slept on a blocking thread with the OS timer, so no blocking thread is held
/// for a long latency.
pub(crate) async fn added_latency(latency_ms: u64) {
    const PRECISE: std::time::Duration = std::time::Duration::from_millis(3);
    let wait = std::time::Duration::from_millis(latency_ms);
    let deadline = std::time::Instant::now() + wait;
    if wait > PRECISE {
        tokio::time::sleep(wait - PRECISE).await;
    }
    let rest = deadline.saturating_duration_since(std::time::Instant::now());
    if !rest.is_zero()
        && tokio::task::spawn_blocking(move || std::thread::sleep(rest))
            .await
            .is_err()
    {
        tokio::time::sleep(rest).await;
    }
}

/// The endpoint class of a request path (`None` for the control API, which never fails).
pub(crate) fn classify(path: &str) -> Option<&'static str> {
    // A national cloud's endpoints are the same under its prefix (`/clouds/<key>/v1.0/…`).
    let path = path
        .strip_prefix("/clouds/")
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(path);
    if path.starts_with("/_sim") {
        None
    } else if path.starts_with("/v1.0") || path.starts_with("/beta") {
        Some("graph")
    } else if path.starts_with(crate::wellknown::YAMMER_PATH_PREFIX) {
        Some("yammer")
    } else if path.ends_with("/oauth2/v2.0/token") {
        Some("token")
    } else if path.ends_with("/adminconsent") {
        Some("adminconsent")
    } else if path.ends_with("/.well-known/openid-configuration") {
        Some("discovery")
    } else if path.ends_with("/discovery/v2.0/keys") {
        Some("jwks")
    } else {
        Some("authorize")
    }
}

/// The rule that fires for a request to `path`, if any: the first rule covering the path, drawn
/// at its rate (a rule that does not fire lets the request through; later rules are not tried).
pub(crate) fn pick(rules: &[FaultRule], path: &str) -> Option<FaultRule> {
    rules
        .iter()
        .find(|f| f.matches(path))
        .filter(|f| f.rate >= 1.0 || rand::random::<f64>() < f.rate)
        .cloned()
}

impl FaultRule {
    /// Whether the rule covers the path.
    pub(crate) fn matches(&self, path: &str) -> bool {
        match classify(path) {
            None => false,
            Some(class) => {
                self.endpoint == class
                    || (self.endpoint.starts_with('/') && path.starts_with(&self.endpoint))
            }
        }
    }

    /// Validates the rule.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.rate) {
            return Err(format!("rate {} is outside 0..=1", self.rate));
        }
        if let Some(s) = self.status
            && (StatusCode::from_u16(s).is_err() || s < 400)
        {
            return Err(format!("status {s} is not an HTTP error status"));
        }
        Ok(())
    }

    /// The error answer of a rule with `status`.
    pub(crate) fn response(&self, path: &str, status: u16, default_retry_after: u64) -> Response {
        let (status, headers, body) = self.answer(path, status, default_retry_after);
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut().extend(headers);
        resp
    }

    /// The error answer of a rule with `status` as status, headers (`Content-Type`, `Retry-After`,
    /// throttling headers) and JSON body: sent as is to a direct request, carried in a `$batch`
    /// response for an inner one.
    pub(crate) fn answer(
        &self,
        path: &str,
        status: u16,
        default_retry_after: u64,
    ) -> (StatusCode, HeaderMap, serde_json::Value) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let retry_after = match (self.retry_after_secs, classify(path)) {
            (Some(s), _) => Some(s),
            // Entra answers client-credentials throttling with Retry-After: 60 (entra-facts §6.1).
            (None, Some("token")) if status == StatusCode::TOO_MANY_REQUESTS => {
                Some(default_retry_after)
            }
            _ => None,
        };
        let scope = "Tenant_Application/ReadWrite/entra-sim/entra-sim";
        error_answer(classify(path), status, retry_after, scope, 1)
    }
}

/// A throttling or outage answer of an endpoint class (`graph`, `token`, …; see [`classify`]):
/// status, headers and body. A Graph 429 carries the identity-and-access throttling headers
/// (entra-facts §6.2) with `throttle_scope` (`<Scope>/<Limit>/<ApplicationId>/<TenantId>`) and the
/// request's resource units.
pub(crate) fn error_answer(
    class: Option<&str>,
    status: StatusCode,
    retry_after: Option<u64>,
    throttle_scope: &str,
    units: u64,
) -> (StatusCode, HeaderMap, serde_json::Value) {
    let now = time::OffsetDateTime::now_utc();
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = if class == Some("graph") {
        // Graph's error codes (Graph docs, resources/errors): a rule answering 400 stands for a
        // request Graph does not take (`BadRequest`), e.g. an addressing form it does not support.
        let (code, message) = match status {
            StatusCode::TOO_MANY_REQUESTS => ("TooManyRequests", "Please retry again later."),
            StatusCode::BAD_REQUEST => ("BadRequest", "Bad request."),
            _ => (
                "serviceNotAvailable",
                "The service is temporarily unavailable.",
            ),
        };
        serde_json::json!({"error": {
            "code": code,
            "message": message,
            "innerError": {
                "code": status.as_u16().to_string(),
                "status": status.as_u16().to_string(),
                "message": "Please retry after",
                "date": crate::wellknown::graph_date(now),
                "request-id": request_id,
                "client-request-id": request_id,
            }
        }})
    } else {
        // The identity platform's body for throttling / outages is UNVERIFIED; this follows the
        // flat error shape with AADSTS90055 (TenantThrottlingError) / AADSTS90033 (transient).
        let (error, code, text) = if status == StatusCode::TOO_MANY_REQUESTS {
            (
                "temporarily_unavailable",
                90055,
                "TenantThrottlingError: There are too many incoming requests.",
            )
        } else {
            (
                "temporarily_unavailable",
                90033,
                "A transient error has occurred. Please try again.",
            )
        };
        serde_json::json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: {request_id}\r\nCorrelation ID: {request_id}\r\nTimestamp: {}", crate::aad::aad_timestamp(now)),
            "error_codes": [code],
            "timestamp": crate::aad::aad_timestamp(now),
            "trace_id": request_id,
            "correlation_id": request_id,
        })
    };
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    if class == Some("graph") && status == StatusCode::TOO_MANY_REQUESTS {
        // Identity-and-access throttling headers (entra-facts §6.2).
        if let Ok(v) = HeaderValue::from_str(throttle_scope) {
            h.insert("x-ms-throttle-scope", v);
        }
        h.insert(
            "x-ms-throttle-information",
            HeaderValue::from_static("ResourceUnitLimitExceeded"),
        );
        h.insert("x-ms-resource-unit", HeaderValue::from(units));
    }
    if let Some(s) = retry_after {
        h.insert("retry-after", HeaderValue::from(s));
    }
    (status, h, body)
}

/// A defect the simulator puts into the next ID tokens it issues, so that clients can prove they
/// refuse them (set with [`ControlOp::SetIdTokenFault`](crate::ControlOp::SetIdTokenFault)).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IdTokenFault {
    /// Signed with a key that is not in the JWKS (a forgery), under the published `kid`.
    ForeignKey,
    /// Signed with a key under a `kid` the JWKS does not list.
    UnknownKid,
    /// `aud` names another application.
    WrongAudience,
    /// `iss` is not the tenant's v2 issuer (the v1 `sts.windows.net` form).
    WrongIssuer,
    /// `exp` (and `iat`, `nbf`) one hour in the past.
    Expired,
    /// `nbf` one hour in the future.
    NotYetValid,
    /// `nonce` differs from the one sent to `/authorize`.
    WrongNonce,
    /// No `nonce` claim.
    NoNonce,
}

#[cfg(test)]
mod latency_tests {
    /// The added latency is waited in full, however it is split between tokio's timer and the
    /// blocking thread (a lower bound only: how precise it is, is measured by the bench).
    #[tokio::test]
    async fn added_latency_waits_at_least_the_latency() {
        for ms in [0, 2, 25] {
            let started = std::time::Instant::now();
            super::added_latency(ms).await;
            assert!(
                started.elapsed() >= std::time::Duration::from_millis(ms),
                "{ms} ms"
            );
        }
    }
}
