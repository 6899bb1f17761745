//! Webhook notifications of status changes: one JSON message per change (and one recovery message when
//! a profile becomes valid again) to each of the organization's webhooks, signed with the webhook's
//! secret (`X-Consentry-Signature: sha256=<hex HMAC-SHA256 of the body>`), retried with backoff and
//! jitter, every delivery recorded in the store's log. A message for the same profile and reason is
//! not sent again within the hold-down. Consent campaigns' progress goes the same way
//! (`campaign_progress`, one message per profile a pass learned about).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use consentry_domain::{
    CampaignObserver, CampaignProgress, ProfileStatus, StatusChange, StatusObserver,
    WebhookDelivery, Webhooks,
};
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng as _;
use secrecy::ExposeSecret;
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Consentry-Signature";

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` is the signature of `body` under `secret` (constant-time comparison).
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// How posting one signed message went ([`post_signed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Posted {
    /// The receiver answered 2xx.
    pub ok: bool,
    /// The last answer's status, if there was one.
    pub status_code: Option<u16>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Attempts made.
    pub attempts: u32,
}

/// POSTs `body` (JSON, signed `sig`) to `url`, at most `attempts` times, waiting `base_delay` doubled
/// after each failure, with jitter (half the delay plus up to as much again).
pub(crate) async fn post_signed(
    http: &reqwest::Client,
    url: &str,
    sig: &str,
    body: &[u8],
    attempts: u32,
    base_delay: StdDuration,
) -> Posted {
    let mut posted = Posted {
        ok: false,
        status_code: None,
        error: None,
        attempts: 0,
    };
    while posted.attempts < attempts.max(1) {
        posted.attempts += 1;
        let res = http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, sig)
            .body(body.to_vec())
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => {
                posted.status_code = Some(r.status().as_u16());
                posted.error = None;
                posted.ok = true;
                break;
            }
            Ok(r) => {
                posted.status_code = Some(r.status().as_u16());
                posted.error = Some(format!("the receiver answered {}", r.status()));
            }
            Err(e) => {
                posted.status_code = None;
                posted.error = Some(format!(
                    "the receiver could not be reached: {}",
                    e.without_url()
                ));
            }
        }
        if posted.attempts < attempts {
            let exp = base_delay.saturating_mul(2u32.saturating_pow(posted.attempts - 1));
            let half = exp / 2;
            let jitter: f64 = rand::rng().random();
            tokio::time::sleep(half + half.mul_f64(jitter)).await;
        }
    }
    posted
}

/// How notifications are delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifierConfig {
    /// No second message for the same profile and reason within this.
    pub hold_down: Duration,
    /// Attempts per message, the first included.
    pub attempts: u32,
    /// Backoff before the first retry; doubled each time, with jitter.
    pub base_delay: StdDuration,
    /// Time limit of one attempt.
    pub timeout: StdDuration,
    /// Deliver to private, loopback and link-local addresses and over plain http (tests and
    /// demos only). Off: names resolve through
    /// [`PublicOnlyResolver`](crate::destination::PublicOnlyResolver) at every delivery and
    /// URLs must be https to a public address.
    pub allow_private: bool,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        Self {
            hold_down: Duration::hours(24),
            attempts: 5,
            base_delay: StdDuration::from_secs(2),
            timeout: StdDuration::from_secs(10),
            allow_private: false,
        }
    }
}

/// Counts of webhook messages, for the metrics.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    delivered: AtomicU64,
    failed: AtomicU64,
    held_down: AtomicU64,
}

impl DeliveryStats {
    /// (delivered, failed after every attempt, held down) so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.delivered.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.held_down.load(Ordering::Relaxed),
        )
    }
}

/// Sends status changes to the organizations' webhooks. Register it on the checker
/// ([`consentry_domain::Checker::with_observer`]).
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    webhooks: Webhooks,
    http: reqwest::Client,
    config: NotifierConfig,
    stats: Arc<DeliveryStats>,
    /// Deliveries running in the background, and a wake-up when one ends (for [`Self::flush`]).
    in_flight: Arc<(std::sync::atomic::AtomicUsize, tokio::sync::Notify)>,
}

impl WebhookNotifier {
    /// Builds a notifier over the domain's webhooks service.
    pub fn new(webhooks: Webhooks, config: NotifierConfig) -> Self {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none());
        if !config.allow_private {
            builder = builder.dns_resolver(crate::destination::PublicOnlyResolver);
        }
        let http = builder.build().unwrap_or_default();
        Self {
            webhooks,
            http,
            config,
            stats: Arc::default(),
            in_flight: Arc::default(),
        }
    }

    /// Waits until the deliveries running in the background have ended, at most `within`; returns
    /// whether they all did. A short-lived process (the CLI's `profiles check`) calls it before it
    /// exits, so that its messages are sent like the server's.
    pub async fn flush(&self, within: StdDuration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (count, woken) = &*self.in_flight;
            let notified = woken.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if count.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return count.load(Ordering::SeqCst) == 0;
            }
        }
    }

    /// The delivery counters.
    pub fn stats(&self) -> &Arc<DeliveryStats> {
        &self.stats
    }

    /// Delivers one change to every webhook of the profile's organization, now (the observer calls
    /// this in the background).
    pub async fn deliver(&self, change: &StatusChange) {
        let p = &change.profile;
        let recovered = p.status == ProfileStatus::Valid;
        let event = if recovered {
            "recovered"
        } else {
            "status_changed"
        };
        let code = p.reason.as_ref().map(|r| r.code().to_string());
        let now = OffsetDateTime::now_utc();
        match self
            .webhooks
            .last_notified(p.id, event, code.as_deref())
            .await
        {
            Ok(Some(at)) if !recovered && now - at < self.config.hold_down => {
                tracing::info!(profile = %p.id, reason = code.as_deref().unwrap_or_default(), "same reason notified recently; held down");
                self.stats.held_down.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the delivery log could not be read; notifying anyway")
            }
        }
        let body = serde_json::json!({
            "event": event,
            "profile_id": p.id,
            "organization_id": p.org_id,
            "tenant_id": p.tenant_id,
            "app_type": p.app_type,
            "service": p.service,
            "from_status": change.from,
            "to_status": p.status,
            "reason": p.reason.as_ref().map(|r| serde_json::json!({
                "code": r.code(),
                "summary": r.summary(),
                "remediation": r.remediation(),
                "owner": r.owner(),
                "detail": r,
            })),
            "previous_reason": change.previous_reason.as_ref().map(|r| r.code()),
            "at": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        });
        self.post(p.org_id, p.id, event, code, body).await;
    }

    /// Sends one message to every webhook of `org`, retrying each with backoff, and logs each
    /// delivery (about `profile`, with `event` and `code`).
    async fn post(
        &self,
        org: consentry_domain::OrgId,
        profile: consentry_domain::ProfileId,
        event: &str,
        code: Option<String>,
        body: serde_json::Value,
    ) {
        let hooks = match self.webhooks.targets(org).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "webhooks could not be listed; nothing sent");
                return;
            }
        };
        let body = body.to_string().into_bytes();
        for hook in hooks {
            let secret = match self.webhooks.secret(hook.id).await {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(webhook = %hook.id, error = %e, "a webhook secret could not be opened; not sent");
                    continue;
                }
            };
            // Checked again at delivery: the rule may have tightened since the webhook was made
            // (literal addresses never reach the resolver).
            if let Err(e) =
                crate::destination::check_webhook_url(&hook.url, self.config.allow_private)
            {
                tracing::warn!(webhook = %hook.id, error = %e, "a webhook URL is not allowed; not sent");
                continue;
            }
            let sig = signature(secret.expose_secret(), &body);
            let Posted {
                ok,
                status_code,
                error,
                attempts,
            } = post_signed(
                &self.http,
                &hook.url,
                &sig,
                &body,
                self.config.attempts,
                self.config.base_delay,
            )
            .await;
            if ok {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
            } else {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
            }
            let delivery = WebhookDelivery {
                webhook_id: hook.id,
                profile_id: profile,
                event: event.to_string(),
                reason_code: code.clone(),
                status_code,
                attempts,
                ok,
                error,
                at: OffsetDateTime::now_utc(),
            };
            if let Err(e) = self.webhooks.record_delivery(&delivery).await {
                tracing::warn!(webhook = %hook.id, error = %e, "a webhook delivery could not be logged");
            }
        }
    }
}

#[async_trait]
impl CampaignObserver for WebhookNotifier {
    /// One `campaign_progress` message per profile a consent campaign's pass learned about,
    /// with the tenant's and the campaign's counts (never the link). Not held down.
    async fn campaign_progress(&self, progress: CampaignProgress) {
        let body = serde_json::json!({
            "event": "campaign_progress",
            "campaign_id": progress.campaign_id,
            "organization_id": progress.org_id,
            "tenant_id": progress.tenant_id,
            "profile_id": progress.profile_id,
            "state": progress.state,
            "failure": progress.failure,
            "tenant": { "done": progress.tenant_done.0, "profiles": progress.tenant_done.1 },
            "campaign": { "done": progress.campaign_done.0, "profiles": progress.campaign_done.1 },
            "at": OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        });
        let this = self.clone();
        self.in_flight.0.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let code = Some(progress.state.as_str().to_string());
            this.post(
                progress.org_id,
                progress.profile_id,
                "campaign_progress",
                code,
                body,
            )
            .await;
            let (count, woken) = &*this.in_flight;
            count.fetch_sub(1, Ordering::SeqCst);
            woken.notify_waiters();
        });
    }
}

#[async_trait]
impl StatusObserver for WebhookNotifier {
    async fn status_changed(&self, change: StatusChange) {
        let this = self.clone();
        self.in_flight.0.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            this.deliver(&change).await;
            let (count, woken) = &*this.in_flight;
            count.fetch_sub(1, Ordering::SeqCst);
            woken.notify_waiters();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_tampering_is_detected() {
        let sig = signature(b"secret", b"{\"a\":1}");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert!(verify(b"secret", b"{\"a\":1}", &sig));
        assert!(!verify(b"secret", b"{\"a\":2}", &sig));
        assert!(!verify(b"other", b"{\"a\":1}", &sig));
        assert!(!verify(b"secret", b"{\"a\":1}", "sha1=00"));
    }

    #[test]
    fn signature_matches_the_rfc_4231_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
