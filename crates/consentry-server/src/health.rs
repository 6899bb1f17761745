//! `GET /healthz`: liveness plus a store round trip.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;

/// 200 when the store answers, 503 otherwise (the detail is logged, not returned).
pub async fn healthz(State(st): State<AppState>) -> (StatusCode, Json<Value>) {
    match st.svc.ping().await {
        Ok(_) => (
            StatusCode::OK,
            Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})),
        ),
        Err(e) => {
            tracing::error!(error.detail = %e, "health check: store unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable"})),
            )
        }
    }
}
