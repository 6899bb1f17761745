//! Retrying transient failures: exponential backoff with jitter, `Retry-After` honoured (capped),
//! a bounded number of attempts.

use std::future::Future;
use std::time::Duration;

use rand::Rng as _;

use crate::error::EntraError;

/// How [`with_retry`] retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the first retry; doubled each time.
    pub base_delay: Duration,
    /// Cap of the exponential backoff.
    pub max_delay: Duration,
    /// Cap of a server-sent `Retry-After` (a longer wait is cut to this).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based) after `error`, with `jitter` in `[0, 1]`:
    /// the capped `Retry-After` when Microsoft sent one, otherwise "equal jitter" backoff: half of
    /// `min(max_delay, base_delay * 2^(retry-1))`, plus up to the other half at random.
    pub fn delay(&self, retry: u32, error: &EntraError, jitter: f64) -> Duration {
        if let Some(after) = error.retry_after() {
            return after.min(self.max_retry_after);
        }
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_delay);
        let half = exp / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// Runs `call` until it succeeds, fails with an error that is not transient
/// ([`EntraError::is_transient`]), or `policy.max_attempts` are used; returns the last error.
pub async fn with_retry<T, F, Fut>(policy: &RetryPolicy, call: F) -> Result<T, EntraError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, EntraError>>,
{
    with_retry_notify(policy, |_, _, _| {}, call).await
}

/// [`with_retry`], calling `notify(error, retry_number, delay)` before each wait (to count and
/// log retries).
pub async fn with_retry_notify<T, F, Fut, N>(
    policy: &RetryPolicy,
    mut notify: N,
    mut call: F,
) -> Result<T, EntraError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, EntraError>>,
    N: FnMut(&EntraError, u32, Duration),
{
    let mut attempt = 1u32;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(error) if error.is_transient() && attempt < policy.max_attempts.max(1) => {
                let delay = policy.delay(attempt, &error, rand::rng().random::<f64>());
                notify(&error, attempt, delay);
                tracing::debug!(
                    retry = attempt,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    client_request_id = error.client_request_id().unwrap_or_default(),
                    cause = ?error.cause(),
                    "retrying a transient Entra/Graph failure"
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}
