//! Driving the console's pages in-process (the router served by `tower::ServiceExt::oneshot`, no
//! socket): requests with session cookies and url-encoded forms, and reading the answers' redirects,
//! cookies and CSRF fields.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use consentry_server::AppState;
use tower::ServiceExt as _;

/// A console answer, read whole.
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body, as text.
    pub body: String,
}

impl Answer {
    /// The `Location` header (empty when absent).
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The whole `Set-Cookie` line of the cookie `name`, with its attributes.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }

    /// The value set for the cookie `name`.
    pub fn cookie_value(&self, name: &str) -> Option<String> {
        self.cookie(name).and_then(|c| {
            c.split(';')
                .next()
                .and_then(|kv| kv.split_once('='))
                .map(|(_, v)| v.to_string())
        })
    }

    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> String {
        let i = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field");
        let rest = &self.body[i + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').expect("end")].to_string()
    }
}

/// Sends `req` to the router over `state`.
pub async fn send(state: &AppState, req: Request<Body>) -> Answer {
    let res = consentry_server::router(state.clone())
        .oneshot(req)
        .await
        .expect("router answers");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 4 << 20)
        .await
        .expect("body");
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// `GET path`, with the session cookie when given.
pub async fn get(state: &AppState, path: &str, session: Option<&str>) -> Answer {
    let mut b = Request::get(path);
    if let Some(s) = session {
        b = b.header(header::COOKIE, format!("consentry_session={s}"));
    }
    send(state, b.body(Body::empty()).expect("request")).await
}

/// `POST path` with `cookies` (a `Cookie` header value) and the url-encoded `form`.
pub async fn post(state: &AppState, path: &str, cookies: &str, form: &[(&str, &str)]) -> Answer {
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let req = Request::post(path)
        .header(header::COOKIE, cookies)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .expect("request");
    send(state, req).await
}

/// Signs `user` in through the sign-in page (its double-submit cookie and CSRF field), sending the
/// `previous` session cookie when given; the new session token.
pub async fn sign_in(
    state: &AppState,
    user: &str,
    password: &str,
    previous: Option<&str>,
) -> String {
    let page = get(state, "/console/login", None).await;
    let login_cookie = page.cookie_value("consentry_login").expect("login cookie");
    let mut cookies = format!("consentry_login={login_cookie}");
    if let Some(p) = previous {
        cookies.push_str(&format!("; consentry_session={p}"));
    }
    let a = post(
        state,
        "/console/login",
        &cookies,
        &[
            ("csrf", &page.csrf()),
            ("username", user),
            ("password", password),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    a.cookie_value("consentry_session").expect("session cookie")
}

/// Percent-encodes `s` for a form body.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
