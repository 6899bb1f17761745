//! Organizations' webhooks: registered (the signing secret is shown once), listed with their recent
//! deliveries, deleted; and what the notifier needs to deliver (an organization's webhooks, a
//! webhook's secret, the delivery log and the hold-down). Whether a URL may be called at all is the
//! notifier's network policy, checked by the caller before [`Webhooks::register`] and again at
//! delivery.

use secrecy::{SecretSlice, SecretString};
use time::OffsetDateTime;

use crate::access::{Action, Caller};
use crate::audit::AuditAction;
use crate::error::DomainError;
use crate::ids::{OrgId, ProfileId, WebhookId};
use crate::ports::{Webhook, WebhookDelivery};
use crate::service::Consentry;

/// How many deliveries [`Webhooks::list`] shows per webhook.
pub const DELIVERIES_SHOWN: u32 = 20;

/// A webhook just registered, with its signing secret (shown this once).
#[derive(Debug)]
pub struct NewWebhook {
    /// The webhook.
    pub webhook: Webhook,
    /// `whsec_` + 64 hex digits: the key of the messages' HMAC-SHA256 signature.
    pub secret: SecretString,
}

/// The webhooks service over the domain services' store, clock and audit log.
#[derive(Debug, Clone)]
pub struct Webhooks {
    core: Consentry,
}

/// The host of a URL (for the audit entry: some receivers put a secret in the path or query).
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.split_inclusive(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_string())
}

impl Webhooks {
    /// The service over `core`.
    pub fn new(core: Consentry) -> Self {
        Self { core }
    }

    /// Adds a webhook to `org` posting to `url` (already allowed by the notifier's URL rule) with a
    /// fresh signing secret, and records `webhook_created` with the URL's host only.
    pub async fn register(
        &self,
        caller: &Caller,
        org: OrgId,
        url: String,
    ) -> Result<NewWebhook, DomainError> {
        caller.may(Action::ManageSettings, Some(org))?;
        self.core.organization(org).await?;
        let bytes: [u8; 32] = rand::random();
        let secret: String = std::iter::once("whsec_".to_string())
            .chain(bytes.iter().map(|b| format!("{b:02x}")))
            .collect();
        let webhook = Webhook {
            id: WebhookId::new_random(),
            org_id: org,
            url,
            created_at: self.core.clock().now(),
        };
        self.core
            .store()
            .insert_webhook(&webhook, &SecretSlice::from(secret.as_bytes().to_vec()))
            .await?;
        self.core
            .audit()
            .record(
                &caller.actor,
                Some(org),
                AuditAction::WebhookCreated,
                format!("webhook:{}", webhook.id),
                serde_json::json!({ "host": url_host(&webhook.url) }),
            )
            .await;
        Ok(NewWebhook {
            webhook,
            secret: SecretString::from(secret),
        })
    }

    /// An organization's webhooks, oldest first, each with its newest [`DELIVERIES_SHOWN`]
    /// deliveries.
    pub async fn list(
        &self,
        caller: &Caller,
        org: OrgId,
    ) -> Result<Vec<(Webhook, Vec<WebhookDelivery>)>, DomainError> {
        caller.may(Action::Read, Some(org))?;
        self.core.organization(org).await?;
        let store = self.core.store();
        let mut out = Vec::new();
        for hook in store.list_webhooks(org).await? {
            let deliveries = store.list_deliveries(hook.id, DELIVERIES_SHOWN).await?;
            out.push((hook, deliveries));
        }
        Ok(out)
    }

    /// Deletes one of an organization's webhooks with its log, and records `webhook_deleted`.
    pub async fn delete(
        &self,
        caller: &Caller,
        org: OrgId,
        id: WebhookId,
    ) -> Result<(), DomainError> {
        caller.may(Action::ManageSettings, Some(org))?;
        if !self.core.store().delete_webhook(org, id).await? {
            return Err(DomainError::NotFound {
                what: "webhook",
                id: id.to_string(),
            });
        }
        self.core
            .audit()
            .record(
                &caller.actor,
                Some(org),
                AuditAction::WebhookDeleted,
                format!("webhook:{id}"),
                serde_json::json!({}),
            )
            .await;
        Ok(())
    }

    // ----- delivery (the notifier) -----

    /// Every webhook of an organization, to deliver a message to.
    pub async fn targets(&self, org: OrgId) -> Result<Vec<Webhook>, DomainError> {
        Ok(self.core.store().list_webhooks(org).await?)
    }

    /// A webhook's signing secret.
    pub async fn secret(&self, id: WebhookId) -> Result<Option<SecretSlice<u8>>, DomainError> {
        Ok(self.core.store().webhook_secret(id).await?)
    }

    /// Appends to the delivery log.
    pub async fn record_delivery(&self, delivery: &WebhookDelivery) -> Result<(), DomainError> {
        Ok(self.core.store().record_delivery(delivery).await?)
    }

    /// When a message with this event and reason code about the profile was last delivered
    /// successfully (the hold-down).
    pub async fn last_notified(
        &self,
        profile: ProfileId,
        event: &str,
        reason_code: Option<&str>,
    ) -> Result<Option<OffsetDateTime>, DomainError> {
        Ok(self
            .core
            .store()
            .last_notified(profile, event, reason_code)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::url_host;

    #[test]
    fn the_audit_entry_names_the_host_only() {
        for (url, host) in [
            (
                "https://hooks.example.com/p/SECRET?x=1",
                Some("hooks.example.com"),
            ),
            ("http://127.0.0.1:8080/hook", Some("127.0.0.1")),
            ("https://user:pw@example.org:443", Some("example.org")),
            ("http://[::1]:9000/x", Some("[::1]")),
            ("not a url", None),
        ] {
            assert_eq!(url_host(url).as_deref(), host, "{url}");
        }
    }
}
