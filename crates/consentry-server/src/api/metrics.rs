//! `GET /metrics`: Prometheus metrics (counts and codes only; no identifiers, names or secrets).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// The metrics in the Prometheus text format.
pub async fn metrics(State(st): State<AppState>) -> ApiResult<impl IntoResponse> {
    let text = st
        .metrics
        .render(&st.checker)
        .await
        .map_err(|e| ApiError::Domain(e.into()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}
