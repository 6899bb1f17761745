//! The console's stylesheet and script, embedded in the binary and served as files (the CSP allows no
//! inline code).

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::ConsoleError;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");
/// A 16×16 icon: browsers ask every site for `/favicon.ico`, and a 404 there is an error in their
/// console.
const ICON: &[u8] = include_bytes!("assets/favicon.ico");

/// `GET /console/static/{file}`.
pub async fn asset(Path(file): Path<String>) -> Result<Response, ConsoleError> {
    let (body, mime): (&'static [u8], &'static str) = match file.as_str() {
        "console.css" => (CSS.as_bytes(), "text/css; charset=utf-8"),
        "console.js" => (JS.as_bytes(), "text/javascript; charset=utf-8"),
        "favicon.ico" => (ICON, "image/x-icon"),
        _ => return Err(ConsoleError::PageNotFound),
    };
    Ok(file_response(body, mime))
}

/// `GET /favicon.ico`.
pub async fn favicon() -> Response {
    file_response(ICON, "image/x-icon")
}

fn file_response(body: &'static [u8], mime: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}
