//! The one place where console failures become HTML responses: the console's pages and the pages a
//! browser sees outside it (the re-authorization callback's result page, the consent link's page).
//! Internal details are logged here once and never shown.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use consentry_domain::{DomainError, StoreError};

/// Why a console request failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// A domain failure.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A form came without this session's CSRF token.
    #[error("the form expired or did not come from this console; reload the page and try again")]
    Csrf,
    /// A malformed request (bad identifier, bad form field).
    #[error("{0}")]
    BadRequest(String),
    /// A feature that is not available on this server.
    #[error("{0}")]
    Unavailable(String),
    /// No such page.
    #[error("there is no such page in the console")]
    PageNotFound,
    /// A link that cannot be used: a tampered callback address, an unknown or used state, a consent
    /// link that is not valid. The message says why.
    #[error("{0}")]
    Link(String),
}

/// What a failed request shows: its status, the page's title and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The HTTP status.
    pub status: StatusCode,
    /// The page's title.
    pub title: &'static str,
    /// The message, free of internal details.
    pub message: String,
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    title: &'static str,
    message: String,
}

/// Renders a template as an HTML response, or a plain 500 if rendering fails.
pub fn html<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error.detail = %e, "console page could not be rendered");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

impl ConsoleError {
    /// Status, title and message. Exhaustive on purpose: a new variant must decide how it is shown.
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            ConsoleError::Domain(DomainError::NotFound { what, id }) => (
                StatusCode::NOT_FOUND,
                "Not found",
                format!("{what} {id} was not found, or your account cannot see it."),
            ),
            ConsoleError::Domain(DomainError::Conflict(m)) => {
                (StatusCode::CONFLICT, "Not possible right now", m.clone())
            }
            ConsoleError::Domain(e @ DomainError::Invalid { .. }) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Check your input",
                e.to_string(),
            ),
            ConsoleError::Domain(DomainError::Forbidden(m)) => {
                (StatusCode::FORBIDDEN, "Not allowed", sentence(m))
            }
            ConsoleError::Domain(DomainError::Store(StoreError::BadCursor)) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Check your input",
                StoreError::BadCursor.to_string(),
            ),
            ConsoleError::Domain(DomainError::Store(_) | DomainError::Internal(_)) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "An internal error occurred; it has been logged. Please try again.".into(),
            ),
            ConsoleError::Domain(DomainError::Unavailable(m)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "Not available", m.clone())
            }
            ConsoleError::Csrf => (StatusCode::FORBIDDEN, "Form refused", self.to_string()),
            ConsoleError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Check your input", m.clone()),
            ConsoleError::Unavailable(m) => {
                (StatusCode::SERVICE_UNAVAILABLE, "Not available", m.clone())
            }
            ConsoleError::PageNotFound => {
                (StatusCode::NOT_FOUND, "Page not found", self.to_string())
            }
            ConsoleError::Link(m) => (
                StatusCode::BAD_REQUEST,
                "This link cannot be used",
                m.clone(),
            ),
        }
    }

    /// What the page shows; an internal failure's detail is logged here, once, and not shown.
    pub fn shown(&self) -> Shown {
        let (status, title, message) = self.parts();
        if status.is_server_error() {
            tracing::error!(error.detail = %self, "console request failed");
        }
        Shown {
            status,
            title,
            message,
        }
    }
}

/// A message as a sentence: capital first letter, final full stop.
pub fn sentence(m: &str) -> String {
    let m = m.trim();
    let mut chars = m.chars();
    let mut out: String = match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let Shown {
            status,
            title,
            message,
        } = self.shown();
        let mut res = html(status, &ErrorPage { title, message });
        // The console's layer replaces the CSP with the configured one.
        super::apply_security_headers(
            res.headers_mut(),
            axum::http::HeaderValue::from_static(crate::security::FALLBACK_PAGE_CSP),
        );
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn page(e: ConsoleError) -> (StatusCode, String) {
        crate::error::read(e.into_response()).await
    }

    #[tokio::test]
    async fn an_internal_failure_is_a_bare_500_without_its_detail() {
        for detail in ["key must be a string at line 1 column 2", "pool timed out"] {
            for e in [
                ConsoleError::from(DomainError::internal(detail)),
                ConsoleError::from(DomainError::Store(StoreError::Backend(detail.into()))),
            ] {
                let (status, body) = page(e).await;
                assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
                assert!(
                    body.contains("An internal error occurred; it has been logged."),
                    "{body}"
                );
                assert!(!body.contains(detail), "{body}");
            }
        }
    }

    #[tokio::test]
    async fn a_real_conflict_is_a_409_with_its_message() {
        let (status, body) = page(ConsoleError::from(DomainError::Conflict(
            "this app profile has no re-authorization in progress".into(),
        )))
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(body.contains("Not possible right now"), "{body}");
        assert!(
            body.contains("this app profile has no re-authorization in progress"),
            "{body}"
        );
    }
}
