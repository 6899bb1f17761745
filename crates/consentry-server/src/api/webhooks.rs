//! Organizations' webhooks: `GET|POST /api/v1/organizations/{id}/webhooks`,
//! `DELETE /api/v1/organizations/{id}/webhooks/{webhook_id}`. The signing secret is shown once, at
//! creation; messages carry `X-Consentry-Signature: sha256=<hex HMAC-SHA256 of the body>`. The URL rule
//! (the notifier's network policy) is checked here; the rest is the domain's [`Webhooks`] service.

use axum::extract::State;
use axum::http::StatusCode;
use consentry_domain::{Action, NewWebhook, OrgId, Webhook, WebhookDelivery, WebhookId, Webhooks};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiPath, parse_id};
use crate::AppState;
use crate::auth::ApiCaller;
use crate::error::{ApiError, ApiResult};

/// Body of the create call.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where to POST (https to a public address; http and private addresses only with
    /// `webhooks.allow_private`).
    url: String,
}

/// A created webhook with its secret (shown this once).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CreatedWebhook)]
pub struct Created {
    /// The webhook.
    webhook: Webhook,
    /// The signing secret: keep it to verify `X-Consentry-Signature`.
    secret: String,
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created")
            .field("webhook", &self.webhook)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// A webhook with its latest deliveries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = WebhookWithLog)]
pub struct WithLog {
    /// The webhook.
    #[serde(flatten)]
    webhook: Webhook,
    /// Its newest deliveries first.
    deliveries: Vec<WebhookDelivery>,
}

/// The list answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = WebhookList)]
pub struct List {
    /// The webhooks.
    items: Vec<WithLog>,
}

fn check_url(raw: &str, allow_private: bool) -> Result<String, ApiError> {
    if raw.len() > crate::security::MAX_URL_CHARS {
        return Err(ApiError::BadRequest {
            field: Some("url".into()),
            message: format!(
                "url is longer than {} characters: shorten it",
                crate::security::MAX_URL_CHARS
            ),
        });
    }
    consentry_monitor::destination::check_webhook_url(raw, allow_private)
        .map(String::from)
        .map_err(|e| ApiError::BadRequest {
            field: Some("url".into()),
            message: e.to_string(),
        })
}

/// Adds a webhook to an organization.
#[utoipa::path(
    post,
    operation_id = "createWebhook",
    path = "/api/v1/organizations/{id}/webhooks",
    tag = "webhooks",
    params(("id" = consentry_domain::OrgId, Path, description = "The organization's ID")),
    request_body = CreateWebhook,
    responses(
        (status = CREATED, description = "The webhook and its signing secret, shown this once (`Cache-Control: no-store`)", body = Created),
    )
)]
pub async fn create(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<CreateWebhook>,
) -> ApiResult<crate::security::NoStore<(StatusCode, ApiJson<Created>)>> {
    let org = parse_id("id", &id, OrgId::parse)?;
    c.may(Action::ManageSettings, Some(org))?;
    st.svc.organization(org).await?;
    let url = check_url(&b.url, st.webhooks_allow_private)?;
    let NewWebhook { webhook, secret } =
        Webhooks::new(st.svc.clone()).register(&c, org, url).await?;
    // The secret is shown once: no browser or proxy keeps the answer.
    Ok(crate::security::NoStore((
        StatusCode::CREATED,
        ApiJson(Created {
            webhook,
            secret: secret.expose_secret().to_string(),
        }),
    )))
}

/// Lists an organization's webhooks with their recent deliveries.
#[utoipa::path(
    get,
    operation_id = "listWebhooks",
    path = "/api/v1/organizations/{id}/webhooks",
    tag = "webhooks",
    params(("id" = consentry_domain::OrgId, Path, description = "The organization's ID")),
    responses(
        (status = OK, description = "The organization's webhooks with their latest deliveries", body = List),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<List>> {
    let org = parse_id("id", &id, OrgId::parse)?;
    let items = Webhooks::new(st.svc.clone())
        .list(&c, org)
        .await?
        .into_iter()
        .map(|(webhook, deliveries)| WithLog {
            webhook,
            deliveries,
        })
        .collect();
    Ok(ApiJson(List { items }))
}

/// Deletes one of an organization's webhooks.
#[utoipa::path(
    delete,
    operation_id = "deleteWebhook",
    path = "/api/v1/organizations/{id}/webhooks/{webhook_id}",
    tag = "webhooks",
    params(("id" = consentry_domain::OrgId, Path, description = "The organization's ID"), ("webhook_id" = uuid::Uuid, Path, description = "The webhook's ID")),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
    )
)]
pub async fn delete(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath((id, hook)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let org = parse_id("id", &id, OrgId::parse)?;
    c.may(Action::ManageSettings, Some(org))?;
    let hook_id = parse_id("webhook_id", &hook, WebhookId::parse)?;
    Webhooks::new(st.svc.clone())
        .delete(&c, org, hook_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
