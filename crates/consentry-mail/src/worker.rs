//! The outbox's delivery worker: leases due messages through the domain's [`Mail`] service, sends
//! each through the [`SmtpSender`] and records the outcome ([`Mail::delivered`],
//! [`Mail::delivery_failed`]). Everything is in the database: a message leased by a process that
//! dies is leased again when its lease runs out, and a restart loses nothing.

use std::future::Future;
use std::time::Duration as StdDuration;

use consentry_domain::{DomainError, Mail, RetryPolicy};

use crate::sender::SmtpSender;

/// How the worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerConfig {
    /// The wait between two looks at the outbox when nothing was due.
    pub poll: StdDuration,
    /// Messages leased at a time.
    pub batch: u32,
    /// How long a lease keeps a message from other senders (must outlast a batch's sending).
    pub lease_for: time::Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Queue the organizations' daily digests from this hour (UTC) on, before each pass over the
    /// outbox ([`Mail::queue_digests`]); `None`: no digests.
    pub digest_hour: Option<u8>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            poll: StdDuration::from_secs(30),
            batch: 20,
            lease_for: time::Duration::minutes(15),
            retry: RetryPolicy::default(),
            digest_hour: None,
        }
    }
}

/// What one pass over the outbox did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Accepted by the SMTP server.
    pub sent: u32,
    /// Failed transiently, queued again.
    pub retrying: u32,
    /// Failed for good.
    pub failed: u32,
}

impl DeliveryReport {
    /// Messages handled.
    pub fn handled(&self) -> u32 {
        self.sent + self.retrying + self.failed
    }
}

/// Delivers the outbox.
#[derive(Debug, Clone)]
pub struct DeliveryWorker {
    mail: Mail,
    sender: SmtpSender,
    config: WorkerConfig,
}

impl DeliveryWorker {
    /// A worker over the domain's mail service.
    pub fn new(mail: Mail, sender: SmtpSender, config: WorkerConfig) -> Self {
        Self {
            mail,
            sender,
            config,
        }
    }

    /// Leases one batch of due messages and delivers it, one message after another.
    pub async fn deliver_batch(&self) -> Result<DeliveryReport, DomainError> {
        self.deliver_batch_until(&mut || false).await
    }

    /// [`Self::deliver_batch`], stopping before the next message once `stop` says so (the
    /// messages left are handed to whoever leases them when their lease runs out).
    async fn deliver_batch_until(
        &self,
        stop: &mut (dyn FnMut() -> bool + Send),
    ) -> Result<DeliveryReport, DomainError> {
        let mut report = DeliveryReport::default();
        let due = self
            .mail
            .lease_due(self.config.batch, self.config.lease_for)
            .await?;
        for msg in &due {
            if stop() {
                break;
            }
            match self.sender.send(msg).await {
                Ok(()) => {
                    self.mail.delivered(msg.id).await?;
                    tracing::info!(email = %msg.id, kind = msg.content.kind().as_str(), "email sent");
                    report.sent += 1;
                }
                Err(failure) => {
                    let retry = self
                        .mail
                        .delivery_failed(msg, &failure, &self.config.retry)
                        .await?;
                    match retry {
                        Some(at) => {
                            tracing::warn!(email = %msg.id, attempt = msg.attempts + 1, error = failure.message(), retry_at = %at, "email not delivered; will retry");
                            report.retrying += 1;
                        }
                        None => {
                            tracing::warn!(email = %msg.id, attempt = msg.attempts + 1, error = failure.message(), "email failed for good");
                            report.failed += 1;
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    /// Queues the daily digests when they are due (see [`WorkerConfig::digest_hour`]), then
    /// delivers batches until nothing is due now.
    pub async fn deliver_due(&self) -> Result<DeliveryReport, DomainError> {
        self.deliver_due_until(&mut || false).await
    }

    async fn deliver_due_until(
        &self,
        stop: &mut (dyn FnMut() -> bool + Send),
    ) -> Result<DeliveryReport, DomainError> {
        if let Some(hour) = self.config.digest_hour {
            match self.mail.queue_digests(hour).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(messages = n, "daily digests queued"),
                Err(e) => tracing::warn!(error = %e, "the daily digests could not be queued"),
            }
        }
        let mut total = DeliveryReport::default();
        loop {
            if stop() {
                return Ok(total);
            }
            let r = self.deliver_batch_until(stop).await?;
            total.sent += r.sent;
            total.retrying += r.retrying;
            total.failed += r.failed;
            if r.handled() < self.config.batch {
                return Ok(total);
            }
        }
    }

    /// Runs until `shutdown` resolves: delivers what is due, then waits `poll`. A message being
    /// sent when `shutdown` resolves is finished and recorded; the rest of its batch is left to
    /// its lease, and the next process takes it.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let watch = async move {
            shutdown.await;
            let _ = tx.send(true);
        };
        let work = async move {
            let mut rx = rx;
            loop {
                let flag = rx.clone();
                let mut stop = move || *flag.borrow();
                if let Err(e) = self.deliver_due_until(&mut stop).await {
                    tracing::warn!(error = %e, "the email outbox could not be read; trying again");
                }
                if *rx.borrow() {
                    return;
                }
                tokio::select! {
                    _ = rx.wait_for(|s| *s) => return,
                    () = tokio::time::sleep(self.config.poll) => {}
                }
            }
        };
        // The watcher ends first (it sends the flag), the work at its next look at the flag.
        let (_, ()) = tokio::join!(watch, work);
    }
}
