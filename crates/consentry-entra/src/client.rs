//! The HTTP client: configuration, TLS trust, request IDs and the one place where responses are
//! turned into [`EntraError`]s.

use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, HeaderMap, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode};
use url::Url;

use crate::error::{EntraError, GraphError, IdentityError, TransportKind, parse_retry_after};

/// Microsoft's public-cloud authority host.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// Microsoft Graph v1.0.
pub const DEFAULT_GRAPH: &str = "https://graph.microsoft.com/v1.0";
/// Microsoft's Viva Engage (Yammer) REST API host (entra-facts §10).
pub const DEFAULT_VIVA_ENGAGE: &str = "https://www.yammer.com";
/// Largest answer body read (a Graph page of 999 directory objects is far below this).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Where the identity platform and Graph are, and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraConfig {
    /// The authority host (no tenant), e.g. `https://login.microsoftonline.com`, or entra-sim's
    /// base URL. Instance discovery is never used: endpoints are derived from this directly.
    pub authority: String,
    /// The Graph base URL including the version, e.g. `https://graph.microsoft.com/v1.0`.
    pub graph: String,
    /// Microsoft Graph's resource identifier, with its trailing slash, that short scope names are
    /// qualified with (`https://graph.microsoft.com/`; a national cloud's is its own Graph host,
    /// `https://graph.microsoft.us/`, whatever URL `graph` points at).
    pub graph_resource: String,
    /// The Viva Engage (Yammer) REST API base, `https://www.yammer.com` (entra-facts §10), or
    /// entra-sim's `{base}/yammer`; `/api/v1/users/current.json` is appended to it.
    pub viva_engage: String,
    /// Extra trusted CA certificates (PEM, one or more), added to the system roots, e.g.
    /// entra-sim's CA.
    pub extra_ca_pem: Option<String>,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Most `@odata.nextLink` pages followed for one collection before giving up.
    pub max_pages: usize,
    /// Pace requests per tenant and app after Microsoft throttled them ([`Pacing`](crate::Pacing));
    /// `None` (the default) sends every request when asked.
    pub pacing: Option<crate::Pacing>,
}

impl Default for EntraConfig {
    fn default() -> Self {
        Self {
            authority: DEFAULT_AUTHORITY.to_owned(),
            graph: DEFAULT_GRAPH.to_owned(),
            graph_resource: crate::urls::GRAPH_RESOURCE.to_owned(),
            viva_engage: DEFAULT_VIVA_ENGAGE.to_owned(),
            extra_ca_pem: None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_pages: 100,
            pacing: None,
        }
    }
}

/// Consentry's client for the Microsoft identity platform and Microsoft Graph.
///
/// Cheap to clone (the connection pool is shared). Never sends an `Origin` header (Entra rejects
/// confidential-client credentials sent with one, entra-facts §1.3) and never follows redirects.
/// Every request carries a fresh `client-request-id`, which errors keep for support cases.
#[derive(Debug, Clone)]
pub struct EntraClient {
    pub(crate) http: reqwest::Client,
    pub(crate) authority: Url,
    pub(crate) graph: Url,
    pub(crate) viva_engage: Url,
    pub(crate) config: EntraConfig,
    /// Pauses and rates learned from 429s, shared by clones (`pacer`).
    pub(crate) pacer: Option<std::sync::Arc<crate::pacer::Pacer>>,
}

/// A successful answer, read in full.
pub(crate) struct Answer {
    pub(crate) body: Vec<u8>,
    pub(crate) client_request_id: String,
}

/// Which error body shape to expect.
#[derive(Clone, Copy)]
pub(crate) enum Service {
    Identity,
    Graph,
    VivaEngage,
}

impl EntraClient {
    /// Builds the client. Fails when a URL is not absolute http(s) (plain http only for loopback
    /// hosts), or the CA PEM holds no certificate.
    pub fn new(config: EntraConfig) -> Result<Self, EntraError> {
        let authority = base_url(&config.authority, "authority")?;
        let graph = base_url(&config.graph, "graph")?;
        let viva_engage = base_url(&config.viva_engage, "Viva Engage")?;
        if !(config.graph_resource.starts_with("https://") && config.graph_resource.ends_with('/'))
        {
            return Err(EntraError::Config(format!(
                "graph_resource `{}` is not an https URL ending in `/` such as https://graph.microsoft.com/",
                config.graph_resource
            )));
        }
        if config.max_pages == 0 {
            return Err(EntraError::Config(
                "max_pages is 0: allow at least one Graph page (default 100)".into(),
            ));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("consentry-entra/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &config.extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
                EntraError::Config(format!(
                    "extra_ca_pem could not be read ({e}): give PEM text with BEGIN CERTIFICATE blocks"
                ))
            })?;
            if certs.is_empty() {
                return Err(EntraError::Config(
                    "extra_ca_pem holds no certificate: give PEM text with BEGIN CERTIFICATE blocks"
                        .into(),
                ));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(|e| {
            EntraError::Config(format!(
                "the HTTP client could not be built ({e}): check the CA certificate"
            ))
        })?;
        Ok(Self {
            http,
            authority,
            graph,
            viva_engage,
            pacer: config
                .pacing
                .map(|p| std::sync::Arc::new(crate::pacer::Pacer::new(p))),
            config,
        })
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &EntraConfig {
        &self.config
    }

    /// Sends a request with a fresh `client-request-id`; a 2xx answer is returned, anything else
    /// becomes the matching [`EntraError`].
    pub(crate) async fn send(
        &self,
        service: Service,
        request: RequestBuilder,
    ) -> Result<Answer, EntraError> {
        // A fresh ID per request, kept in every error for support cases. Whether Entra echoes it
        // as `correlation_id` is UNVERIFIED (entra-facts §9); nothing here relies on it.
        let client_request_id = uuid::Uuid::new_v4().to_string();
        let mut request = request
            .header("client-request-id", &client_request_id)
            .header("return-client-request-id", "true")
            .header(ACCEPT, "application/json")
            .build()
            .map_err(|e| {
                EntraError::InvalidInput(format!(
                    "the request could not be built ({e}): check the tenant, IDs and URLs given"
                ))
            })?;
        request.headers_mut().remove(reqwest::header::ORIGIN);
        tracing::debug!(
            http.method = %request.method(),
            url.path = request.url().path(),
            client_request_id = %client_request_id,
            "calling the Microsoft identity platform / Graph"
        );
        // Pacing (`pacer`): the key is derived only for a 429 or while some key is throttled.
        let paced = self.pacer.as_deref().and_then(|p| {
            let side = match service {
                Service::Identity => Some(crate::pacer::Side::Identity),
                Service::Graph => Some(crate::pacer::Side::Graph),
                Service::VivaEngage => None,
            };
            crate::pacer::PaceSource::of(side, &request).map(|source| (p, source))
        });
        let mut pace_key = None;
        if let Some((pacer, source)) = &paced
            && pacer.active()
        {
            pace_key = source.key();
            if let Some(key) = &pace_key {
                pacer.wait(key).await;
            }
        }
        let sent_at = tokio::time::Instant::now();
        let mut response = self
            .http
            .execute(request)
            .await
            .map_err(|e| transport_error(&e, &client_request_id))?;
        let status = response.status();
        let headers = response.headers().clone();
        if let Some((pacer, source)) = &paced {
            if status == StatusCode::TOO_MANY_REQUESTS {
                let retry_after = headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                if let (Some(after), Some(key)) = (retry_after, pace_key.or_else(|| source.key())) {
                    pacer.throttled(key, after, sent_at);
                }
            } else if let Some(key) = &pace_key {
                pacer.answered(key);
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(&e, &client_request_id))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(EntraError::Protocol {
                    detail: format!(
                        "HTTP {status} answer larger than {MAX_BODY_BYTES} bytes; refusing to read it"
                    ),
                    client_request_id: Some(client_request_id),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok(Answer {
                body,
                client_request_id,
            });
        }
        Err(classify_failure(
            service,
            status,
            &headers,
            &body,
            client_request_id,
            SystemTime::now(),
        ))
    }

    /// A request to an absolute URL.
    pub(crate) fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http.request(method, url)
    }
}

fn base_url(value: &str, what: &str) -> Result<Url, EntraError> {
    let url = Url::parse(value.trim()).map_err(|e| {
        EntraError::Config(format!(
            "the {what} URL `{value}` is not a URL ({e}): give an absolute https URL"
        ))
    })?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(EntraError::Config(format!(
                "the {what} URL `{value}` must use https (plain http is allowed only on loopback)"
            )));
        }
    }
    if url.query().is_some() || url.fragment().is_some() || url.cannot_be_a_base() {
        return Err(EntraError::Config(format!(
            "the {what} URL `{value}` must not carry a query or fragment"
        )));
    }
    Ok(url)
}

/// Appends path segments (each percent-encoded) to a base URL, keeping its path prefix.
pub(crate) fn join_segments(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    {
        // `base_url` has rejected cannot-be-a-base URLs.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
    }
    url
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn transport_error(e: &reqwest::Error, client_request_id: &str) -> EntraError {
    let kind = if e.is_timeout() {
        TransportKind::Timeout
    } else if e.is_connect() {
        TransportKind::Connect
    } else {
        TransportKind::Interrupted
    };
    EntraError::Transport {
        kind,
        detail: error_chain(e),
        client_request_id: Some(client_request_id.to_owned()),
    }
}

/// Turns a non-2xx answer into an error: 429 → `Throttled`, 5xx → `Server`, otherwise the
/// service's error body, or `Protocol` when there is none.
pub(crate) fn classify_failure(
    service: Service,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    client_request_id: String,
    now: SystemTime,
) -> EntraError {
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now));
    let code = status.as_u16();
    if status == StatusCode::TOO_MANY_REQUESTS {
        return EntraError::Throttled {
            retry_after,
            client_request_id: Some(client_request_id),
        };
    }
    if status.is_server_error() {
        let detail = match service {
            Service::Identity => IdentityError::from_json(Some(code), body).map(|e| {
                e.primary_code()
                    .map_or_else(|| e.error.to_string(), |c| format!("AADSTS{c} {}", e.error))
            }),
            Service::Graph => GraphError::from_json(code, body).map(|e| e.code),
            Service::VivaEngage => None,
        };
        return EntraError::Server {
            status: code,
            retry_after,
            detail,
            client_request_id: Some(client_request_id),
        };
    }
    match service {
        Service::Identity => match IdentityError::from_json(Some(code), body) {
            Some(mut e) => {
                e.client_request_id = Some(client_request_id);
                e.into()
            }
            None => protocol(code, body, client_request_id),
        },
        Service::Graph => match GraphError::from_json(code, body) {
            Some(mut e) => {
                if e.request_id.is_none() {
                    e.request_id = headers
                        .get("request-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                }
                e.client_request_id = Some(client_request_id);
                e.into()
            }
            None => protocol(code, body, client_request_id),
        },
        // Viva Engage's error bodies are not documented (UNVERIFIED); the status says enough.
        Service::VivaEngage => EntraError::VivaEngage {
            status: code,
            client_request_id: Some(client_request_id),
        },
    }
}

fn protocol(status: u16, body: &[u8], client_request_id: String) -> EntraError {
    let snippet: String = String::from_utf8_lossy(body).chars().take(200).collect();
    EntraError::Protocol {
        detail: format!("HTTP {status} without a recognisable error body: {snippet:?}"),
        client_request_id: Some(client_request_id),
    }
}
