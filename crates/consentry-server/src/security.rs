//! Hardening applied to every response and request: security headers (one layer for the console,
//! the OAuth callback, consent links and the API), the request time-out, and the input limits the
//! handlers share.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// Longest accepted URL (webhooks). Names, searches and page sizes are limited by the domain
/// (`MAX_NAME_LEN` for names and search strings, `MAX_PAGE_SIZE`).
pub const MAX_URL_CHARS: usize = 2048;

/// What the security layer needs to know about how Consentry is served.
#[derive(Debug, Clone)]
pub struct SecurityConfig {
    /// Served over TLS (the public URL is https): `Strict-Transport-Security` is sent.
    pub tls: bool,
    /// Longest time a request may take (answered 408 after it).
    pub request_timeout: Duration,
    /// The CSP of Consentry's HTML pages (the console, the consent link page, the callback's result
    /// pages): see [`page_csp`].
    pub page_csp: HeaderValue,
    /// The proxies whose forwarding headers are believed (`[network] trusted_proxies`): see
    /// [`SecurityConfig::client_address`].
    pub trusted_proxies: std::sync::Arc<[ipnet::IpNet]>,
}

impl SecurityConfig {
    /// The configuration for a server whose identity platform is at `authority` (`[entra]
    /// authority`, e.g. `https://login.microsoftonline.com`).
    pub fn new(tls: bool, request_timeout: Duration, authority: &str) -> Self {
        Self {
            tls,
            request_timeout,
            page_csp: page_csp(authority),
            trusted_proxies: std::sync::Arc::from([]),
        }
    }

    /// Believes the forwarding headers of these proxies.
    pub fn with_trusted_proxies(mut self, proxies: Vec<ipnet::IpNet>) -> Self {
        self.trusted_proxies = proxies.into();
        self
    }

    /// The address a request came from: its connection's peer, or, when the peer is a trusted proxy,
    /// the client it forwarded for (`Forwarded`, else `X-Forwarded-For`; see
    /// [`consentry_protocol::forwarded`]).
    pub fn client_address(
        &self,
        peer: std::net::IpAddr,
        headers: &axum::http::HeaderMap,
    ) -> std::net::IpAddr {
        if self.trusted_proxies.is_empty() {
            return peer;
        }
        let values = |name: &str| -> Vec<&str> {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect()
        };
        let trusted = |ip: std::net::IpAddr| {
            let ip = ip.to_canonical();
            self.trusted_proxies.iter().any(|n| n.contains(&ip))
        };
        consentry_protocol::forwarded::client_address(
            peer.to_canonical(),
            &values("forwarded"),
            &values("x-forwarded-for"),
            trusted,
        )
    }

    /// The same, allowing forms to lead to every authority in `authorities` (the global one and each
    /// configured national cloud's: a re-authorization of a national tenant redirects to its cloud's).
    pub fn with_authorities<'a>(mut self, authorities: impl IntoIterator<Item = &'a str>) -> Self {
        self.page_csp = page_csp_for(authorities);
        self
    }
}

/// The `Content-Security-Policy` of every HTML page Consentry serves: styles and scripts only from
/// Consentry's own files (no inline code), and forms only to Consentry itself and to the identity
/// platform's origin. The latter is needed because Chromium applies `form-action` to the redirects
/// that follow a form POST: "Continue to Microsoft" on a consent link and the wizard's Continue are
/// POSTs answered with a redirect to `{authority}/…/authorize` (or `/adminconsent`). An authority that
/// is not a URL with an origin (refused by the configuration's validation anyway) allows `'self'` only.
pub fn page_csp(authority: &str) -> HeaderValue {
    page_csp_for([authority])
}

/// [`page_csp`] for several identity-platform authorities (one per configured cloud): each distinct
/// origin is allowed once.
pub fn page_csp_for<'a>(authorities: impl IntoIterator<Item = &'a str>) -> HeaderValue {
    let mut form_action = "'self'".to_string();
    let mut seen = Vec::new();
    for origin in authorities.into_iter().filter_map(|a| {
        url::Url::parse(a)
            .ok()
            .map(|u| u.origin())
            .filter(url::Origin::is_tuple)
            .map(|o| o.ascii_serialization())
    }) {
        if !seen.contains(&origin) {
            form_action.push(' ');
            form_action.push_str(&origin);
            seen.push(origin);
        }
    }
    let csp = format!(
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    // An origin's ASCII serialization holds only header-safe characters.
    HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static(FALLBACK_PAGE_CSP))
}

/// The page CSP without the identity platform's origin (forms post to Consentry only): for the
/// few pages answered where the configured one is not at hand (console errors built outside a
/// request's state). The layer replaces it with [`page_csp`] on every page it serves.
pub const FALLBACK_PAGE_CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `Cache-Control: no-store` and `Pragma: no-cache` on an answer that must not be kept by a browser
/// or a proxy: tokens (RFC 6749 §5.1), secrets shown once, consent pages.
pub fn no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The headers every answer carries, whatever its content security policy: no MIME sniffing, no
/// referrer (no page of Consentry hands its URL, which may hold a consent-link token, to anyone), no
/// framing.
pub fn apply_common(h: &mut HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// The headers every response carries. A response that set its own `Content-Security-Policy`
/// (the console's pages allow their own style sheet and script) keeps it; every other response
/// gets `default-src 'none'`.
pub fn apply(h: &mut HeaderMap, tls: bool) {
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ));
    apply_common(h);
    if tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
}

/// Middleware: [`apply`] on every response.
pub async fn headers(State(cfg): State<SecurityConfig>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    apply(res.headers_mut(), cfg.tls);
    res
}

/// An answer sent with [`no_store`]: one that shows a secret once (a new service API key, a
/// webhook's secret) or a token.
#[derive(Debug)]
pub struct NoStore<T>(pub T);

impl<T: axum::response::IntoResponse> axum::response::IntoResponse for NoStore<T> {
    fn into_response(self) -> Response {
        let mut res = self.0.into_response();
        no_store(res.headers_mut());
        res
    }
}

/// A request's path as the request log shows it: a consent or campaign link's token (the authorization of
/// whoever holds the link) is replaced by `[redacted]`; other paths are unchanged.
pub fn logged_path(path: &str) -> std::borrow::Cow<'_, str> {
    if let Some(rest) = path.strip_prefix("/consent/") {
        let profile = rest.split('/').next().unwrap_or_default();
        return std::borrow::Cow::Owned(format!("/consent/{profile}/[redacted]"));
    }
    match path.strip_prefix("/campaign/") {
        Some(rest) if rest != "pass/next" => std::borrow::Cow::Borrowed("/campaign/[redacted]"),
        _ => std::borrow::Cow::Borrowed(path),
    }
}

/// The cookie binding a re-authorization's OAuth state to the browser that started it (RFC 9700
/// §4.7): a random value whose SHA-256 is stored with the pending authorization.
pub const BINDING_COOKIE: &str = "consentry_oauth";
/// How long the binding cookie lives (a re-authorization must finish within 10 minutes of each
/// step).
pub const BINDING_MAX_AGE_SECS: i64 = 1200;

/// A fresh random binding value and the `Set-Cookie` header that gives it to the browser
/// (HttpOnly, SameSite=Lax so that Microsoft's top-level redirect carries it, Secure over TLS,
/// only sent to the callback).
///
/// `via_link`: the re-authorization was started by opening a consent link (someone without a
/// Consentry account) rather than in the console. The value then starts with [`LINK_BINDING_PREFIX`],
/// so the callback's result page can tell them they are done instead of linking to the console. The
/// prefix is part of the value whose hash is sealed, so it cannot be changed without failing the
/// binding check.
pub fn new_binding(tls: bool, via_link: bool) -> (String, HeaderValue) {
    use base64::Engine as _;
    let raw: [u8; 32] = rand::random();
    let random = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let value = if via_link {
        format!("{LINK_BINDING_PREFIX}{random}")
    } else {
        random
    };
    let header = binding_cookie(BINDING_COOKIE, &value, "/oauth/callback", tls);
    (value, header)
}

/// The cookie binding a tenant connection's OAuth state to the browser that started it, sent only
/// to the connection's callback (its own name: a re-authorization in flight keeps its binding).
pub const CONNECT_BINDING_COOKIE: &str = "consentry_connect";

/// [`new_binding`] for connecting a tenant by consent ([`CONNECT_BINDING_COOKIE`]).
pub fn new_connect_binding(tls: bool) -> (String, HeaderValue) {
    use base64::Engine as _;
    let raw: [u8; 32] = rand::random();
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let header = binding_cookie(
        CONNECT_BINDING_COOKIE,
        &value,
        consentry_domain::connect::CONNECT_CALLBACK_PATH,
        tls,
    );
    (value, header)
}

fn binding_cookie(name: &str, value: &str, path: &str, tls: bool) -> HeaderValue {
    let mut c = format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={BINDING_MAX_AGE_SECS}"
    );
    if tls {
        c.push_str("; Secure");
    }
    // base64url only: always a valid header value.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The start of a binding value given by a consent link (see [`new_binding`]); base64url has no `.`.
pub const LINK_BINDING_PREFIX: &str = "link.";

/// Whether the request's binding cookie was given by a consent link (see [`new_binding`]).
pub fn bound_via_link(headers: &HeaderMap) -> bool {
    binding_of(headers).is_some_and(|v| v.starts_with(LINK_BINDING_PREFIX))
}

/// The binding cookie's value in a request, if any.
pub fn binding_of(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, BINDING_COOKIE).filter(|v| v.len() <= 128)
}

/// A cookie's value in a request's headers (`None` when absent or empty).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_log_shows_no_link_token() {
        let profile = "0b7f0a1e-0000-4000-8000-000000000001";
        assert_eq!(
            logged_path(&format!("/consent/{profile}/s3cret-token")),
            format!("/consent/{profile}/[redacted]")
        );
        assert_eq!(
            logged_path("/campaign/s3cret-token"),
            "/campaign/[redacted]"
        );
        assert_eq!(logged_path("/campaign/pass/next"), "/campaign/pass/next");
        assert_eq!(logged_path("/console/campaigns"), "/console/campaigns");
    }

    #[test]
    fn page_csp_allows_forms_to_self_and_the_authority_origin_only() {
        let csp = page_csp("https://login.microsoftonline.com");
        let csp = csp.to_str().unwrap();
        assert!(
            csp.contains("form-action 'self' https://login.microsoftonline.com;"),
            "{csp}"
        );
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains(" https:;"),
            "{csp}"
        );
        let csp = page_csp("https://127.0.0.1:8443/some/path");
        assert!(
            csp.to_str()
                .unwrap()
                .contains("form-action 'self' https://127.0.0.1:8443;"),
            "{csp:?}"
        );
        let csp = page_csp("not a url");
        assert!(csp.to_str().unwrap().contains("form-action 'self';"));
        // One origin per configured cloud, each once.
        let csp = page_csp_for([
            "https://login.microsoftonline.com",
            "https://login.microsoftonline.us",
            "https://login.microsoftonline.us/",
            "https://login.chinacloudapi.cn",
        ]);
        assert!(
            csp.to_str().unwrap().contains(
                "form-action 'self' https://login.microsoftonline.com https://login.microsoftonline.us https://login.chinacloudapi.cn;"
            ),
            "{csp:?}"
        );
    }

    #[test]
    fn hsts_only_over_tls_and_own_csp_is_kept() {
        let mut h = HeaderMap::new();
        apply(&mut h, false);
        assert!(h.get(header::STRICT_TRANSPORT_SECURITY).is_none());
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'"),
        );
        apply(&mut h, true);
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], "default-src 'self'");
        assert!(h.get(header::STRICT_TRANSPORT_SECURITY).is_some());
    }
}
