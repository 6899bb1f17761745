//! `GET /metrics`: Prometheus metrics (counts and codes only; no identifiers, names or secrets).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::AppState;
use crate::error::ApiResult;

/// The metrics in the Prometheus text format.
pub async fn metrics(State(st): State<AppState>) -> ApiResult<impl IntoResponse> {
    let mut text = st.metrics.render(&st.checker).await?;
    let t = st.graph_tokens.stats();
    text.push_str("# HELP consentry_token_cache_total Token API requests served from the cache (hit) or not (miss).\n");
    text.push_str("# TYPE consentry_token_cache_total counter\n");
    text.push_str(&format!(
        "consentry_token_cache_total{{result=\"hit\"}} {}\nconsentry_token_cache_total{{result=\"miss\"}} {}\n",
        t.hits, t.misses
    ));
    text.push_str("# HELP consentry_token_acquisitions_total Tokens acquired from Microsoft by the token API.\n");
    text.push_str("# TYPE consentry_token_acquisitions_total counter\n");
    text.push_str(&format!(
        "consentry_token_acquisitions_total {}\n",
        t.acquisitions
    ));
    let (delivered, failed, held_down) = st.webhook_stats.counts();
    text.push_str(
        "# HELP consentry_webhook_deliveries_total Webhook messages by result (held_down: not sent, same reason recently).\n",
    );
    text.push_str("# TYPE consentry_webhook_deliveries_total counter\n");
    for (result, n) in [
        ("delivered", delivered),
        ("failed", failed),
        ("held_down", held_down),
    ] {
        text.push_str(&format!(
            "consentry_webhook_deliveries_total{{result=\"{result}\"}} {n}\n"
        ));
    }
    text.push_str(&consentry_monitor::vendor::render_metrics(
        st.vendor_credentials.latest().as_ref(),
    ));
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}
