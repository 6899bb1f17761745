//! The vendor's own credentials, watched: [`run`] reads the registrations through the domain's
//! [`VendorCredentialWatch`] once at start and then every `[monitor] vendor_credentials_hours`;
//! [`OperatorWebhook`] posts each alert (`vendor_credential_expiry`) to `[webhooks] operator_url`,
//! signed like organizations' webhooks; [`render_metrics`] gives `/metrics` its lines.

use std::fmt::Write as _;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use consentry_domain::{
    Expiry, VendorCredentialEvent, VendorCredentialObserver, VendorCredentialWatch, VendorSnapshot,
};
use secrecy::{ExposeSecret as _, SecretString};
use time::format_description::well_known::Rfc3339;

use crate::webhooks::{post_signed, signature};

/// The event name of a vendor credential alert.
pub const EVENT: &str = "vendor_credential_expiry";

/// Reads the registrations now and then every `every`, until `shutdown` resolves.
pub async fn run(
    watch: VendorCredentialWatch,
    every: StdDuration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {
                let (snapshot, raised) = watch.refresh().await;
                tracing::info!(
                    registrations = snapshot.apps.len(),
                    needing_attention = snapshot.needing_attention(),
                    alerts_raised = raised,
                    "vendor credentials read"
                );
            }
        }
    }
}

/// The JSON body of an alert.
pub fn body(event: &VendorCredentialEvent) -> serde_json::Value {
    let c = &event.credential;
    serde_json::json!({
        "event": EVENT,
        "stage": event.stage,
        "app": c.app.label(),
        "cloud": c.cloud.as_str(),
        "client_id": event.client_id,
        "credential": {
            "kind": c.kind,
            "key_id": c.key_id,
            "ends_at": c.ends_at.and_then(|t| t.format(&Rfc3339).ok()),
            "in_use": c.in_use,
            "source": c.source,
        },
        "rotate_command": event.rotate_command,
        "at": event.raised_at.format(&Rfc3339).unwrap_or_default(),
    })
}

/// Posts alerts to the platform operator's webhook.
#[derive(Debug, Clone)]
pub struct OperatorWebhook {
    url: String,
    secret: SecretString,
    http: reqwest::Client,
    attempts: u32,
    base_delay: StdDuration,
    allow_private: bool,
}

impl OperatorWebhook {
    /// To `url`, signed with `secret`, `attempts` tries with backoff; destinations as organizations'
    /// webhooks (`allow_private` for tests and demos).
    pub fn new(url: String, secret: SecretString, attempts: u32, allow_private: bool) -> Self {
        let mut builder = reqwest::Client::builder()
            .timeout(StdDuration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none());
        if !allow_private {
            builder = builder.dns_resolver(crate::destination::PublicOnlyResolver);
        }
        Self {
            url,
            secret,
            http: builder.build().unwrap_or_default(),
            attempts: attempts.max(1),
            base_delay: StdDuration::from_secs(2),
            allow_private,
        }
    }
}

#[async_trait]
impl VendorCredentialObserver for OperatorWebhook {
    async fn vendor_credential_alert(&self, event: &VendorCredentialEvent) {
        let body = body(event).to_string().into_bytes();
        // The rule of organizations' webhooks, checked at delivery (literal addresses never reach
        // the resolver).
        if let Err(e) = crate::destination::check_webhook_url(&self.url, self.allow_private) {
            tracing::warn!(error = %e, "the operator webhook URL is not allowed; not sent");
            return;
        }
        let sig = signature(self.secret.expose_secret().as_bytes(), &body);
        let posted = post_signed(
            &self.http,
            &self.url,
            &sig,
            &body,
            self.attempts,
            self.base_delay,
        )
        .await;
        if !posted.ok {
            tracing::warn!(
                attempts = posted.attempts,
                error = posted.error.as_deref().unwrap_or_default(),
                "the operator webhook did not take a vendor credential alert"
            );
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The vendor credential lines of `/metrics`: each credential's end as a Unix timestamp, its
/// classification, and how many need attention (nothing before the first reading).
pub fn render_metrics(snapshot: Option<&VendorSnapshot>) -> String {
    let mut out = String::new();
    let Some(s) = snapshot else {
        return out;
    };
    out.push_str("# HELP consentry_vendor_credential_expiry_timestamp_seconds When each vendor app credential ends (Unix time).\n");
    out.push_str("# TYPE consentry_vendor_credential_expiry_timestamp_seconds gauge\n");
    for c in s.credentials() {
        if let Some(end) = c.ends_at {
            let _ = writeln!(
                out,
                "consentry_vendor_credential_expiry_timestamp_seconds{{app_type=\"{}\",cloud=\"{}\",kind=\"{}\",key_id=\"{}\",in_use=\"{}\"}} {}",
                escape(c.app.label()),
                escape(c.cloud.as_str()),
                c.kind.as_str(),
                escape(&c.id()),
                match c.in_use {
                    Some(true) => "true",
                    Some(false) => "false",
                    None => "unknown",
                },
                end.unix_timestamp()
            );
        }
    }
    out.push_str("# HELP consentry_vendor_credentials Vendor app credentials by expiry state (ok, attention: 30 days or less, expired, unknown: not readable).\n");
    out.push_str("# TYPE consentry_vendor_credentials gauge\n");
    for state in [
        Expiry::Ok,
        Expiry::Attention,
        Expiry::Expired,
        Expiry::Unknown,
    ] {
        let _ = writeln!(
            out,
            "consentry_vendor_credentials{{state=\"{}\"}} {}",
            state.as_str(),
            s.credentials().filter(|c| c.expiry == state).count()
        );
    }
    out.push_str("# HELP consentry_vendor_credentials_needing_attention Vendor app credentials Consentry uses that end within 30 days or ended.\n");
    out.push_str("# TYPE consentry_vendor_credentials_needing_attention gauge\n");
    let _ = writeln!(
        out,
        "consentry_vendor_credentials_needing_attention {}",
        s.needing_attention()
    );
    out.push_str("# HELP consentry_vendor_credentials_read_timestamp_seconds When the vendor registrations were last read (Unix time).\n");
    out.push_str("# TYPE consentry_vendor_credentials_read_timestamp_seconds gauge\n");
    let _ = writeln!(
        out,
        "consentry_vendor_credentials_read_timestamp_seconds {}",
        s.read_at.unix_timestamp()
    );
    out
}
