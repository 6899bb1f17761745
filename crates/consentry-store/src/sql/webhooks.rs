//! Organizations' webhooks and their delivery log on [`SqlStore`] (migration 0003). Webhook signing
//! secrets are sealed, bound to the webhook's ID.

use async_trait::async_trait;
use consentry_domain::{
    OrgId, ProfileId, StoreError, Webhook, WebhookDelivery, WebhookId, WebhookStore,
};
use secrecy::{ExposeSecret, SecretSlice};
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{SqlStore, db_err, get, is_foreign_key_violation};
use crate::codec::{parse_from_db, time_from_db, time_to_db};
use crate::sealer::Binding;

const SECRET_KIND: &str = "webhook_secret";

fn hook_from_row(row: &AnyRow) -> Result<Webhook, StoreError> {
    Ok(Webhook {
        id: parse_from_db("id", &get::<String>(row, "id")?, WebhookId::parse)?,
        org_id: parse_from_db("org_id", &get::<String>(row, "org_id")?, OrgId::parse)?,
        url: get(row, "url")?,
        created_at: time_from_db("created_at", get(row, "created_at")?)?,
    })
}

fn delivery_from_row(row: &AnyRow) -> Result<WebhookDelivery, StoreError> {
    Ok(WebhookDelivery {
        webhook_id: parse_from_db(
            "webhook_id",
            &get::<String>(row, "webhook_id")?,
            WebhookId::parse,
        )?,
        profile_id: parse_from_db(
            "profile_id",
            &get::<String>(row, "profile_id")?,
            ProfileId::parse,
        )?,
        event: get(row, "event")?,
        reason_code: get(row, "reason_code")?,
        status_code: get::<Option<i64>>(row, "status_code")?.and_then(|c| u16::try_from(c).ok()),
        attempts: u32::try_from(get::<i64>(row, "attempts")?).unwrap_or(u32::MAX),
        ok: get::<i64>(row, "ok")? == 1,
        error: get(row, "error")?,
        at: time_from_db("at", get(row, "at")?)?,
    })
}

#[async_trait]
impl WebhookStore for SqlStore {
    async fn insert_webhook(
        &self,
        hook: &Webhook,
        secret: &SecretSlice<u8>,
    ) -> Result<(), StoreError> {
        let id = hook.id.to_string();
        let sealed = self
            .sealer
            .seal(
                Binding {
                    owner: &id,
                    kind: SECRET_KIND,
                },
                secret.expose_secret(),
            )
            .map_err(|e| StoreError::Sealing(e.to_string()))?;
        sqlx::query(
            "INSERT INTO webhooks (id, org_id, url, sealed_secret, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(hook.org_id.to_string())
        .bind(hook.url.clone())
        .bind(sealed)
        .bind(time_to_db(hook.created_at)?)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                StoreError::NotFound(format!("organization {}", hook.org_id))
            } else {
                db_err("inserting a webhook", e)
            }
        })?;
        Ok(())
    }

    async fn list_webhooks(&self, org: OrgId) -> Result<Vec<Webhook>, StoreError> {
        sqlx::query(
            "SELECT id, org_id, url, created_at FROM webhooks WHERE org_id = $1 ORDER BY created_at, id",
        )
        .bind(org.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_err("listing webhooks", e))?
        .iter()
        .map(hook_from_row)
        .collect()
    }

    async fn webhook_secret(&self, id: WebhookId) -> Result<Option<SecretSlice<u8>>, StoreError> {
        let owner = id.to_string();
        let row = sqlx::query("SELECT sealed_secret FROM webhooks WHERE id = $1")
            .bind(owner.clone())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("reading a webhook secret", e))?;
        let Some(row) = row else { return Ok(None) };
        let sealed: Vec<u8> = get(&row, "sealed_secret")?;
        let open = self
            .sealer
            .open(
                Binding {
                    owner: &owner,
                    kind: SECRET_KIND,
                },
                &sealed,
            )
            .map_err(|e| StoreError::Sealing(e.to_string()))?;
        Ok(Some(SecretSlice::from(open.to_vec())))
    }

    async fn delete_webhook(&self, org: OrgId, id: WebhookId) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM webhook_deliveries WHERE webhook_id IN (SELECT id FROM webhooks WHERE id = $1 AND org_id = $2)",
        )
        .bind(id.to_string())
        .bind(org.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| db_err("deleting a webhook's log", e))?;
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND org_id = $2")
            .bind(id.to_string())
            .bind(org.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| db_err("deleting a webhook", e))?;
        tx.commit()
            .await
            .map_err(|e| db_err("committing a webhook deletion", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_delivery(&self, d: &WebhookDelivery) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webhook_deliveries (webhook_id, profile_id, event, reason_code, status_code, attempts, ok, error, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(d.webhook_id.to_string())
        .bind(d.profile_id.to_string())
        .bind(d.event.clone())
        .bind(d.reason_code.clone())
        .bind(d.status_code.map(i64::from))
        .bind(i64::from(d.attempts))
        .bind(i64::from(d.ok))
        .bind(d.error.clone())
        .bind(time_to_db(d.at)?)
        .execute(&self.pool)
        .await
        .map_err(|e| db_err("recording a webhook delivery", e))?;
        Ok(())
    }

    async fn list_deliveries(
        &self,
        webhook: WebhookId,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        sqlx::query(
            "SELECT webhook_id, profile_id, event, reason_code, status_code, attempts, ok, error, at \
             FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(webhook.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_err("listing webhook deliveries", e))?
        .iter()
        .map(delivery_from_row)
        .collect()
    }

    async fn last_notified(
        &self,
        profile: ProfileId,
        event: &str,
        reason_code: Option<&str>,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        let row = sqlx::query(
            "SELECT MAX(at) AS last FROM webhook_deliveries \
             WHERE profile_id = $1 AND event = $2 AND COALESCE(reason_code, '') = $3 AND ok = 1",
        )
        .bind(profile.to_string())
        .bind(event.to_string())
        .bind(reason_code.unwrap_or_default().to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| db_err("reading the last notification", e))?;
        get::<Option<i64>>(&row, "last")?
            .map(|n| time_from_db("at", n))
            .transpose()
    }
}
