//! Prometheus metrics in the text exposition format: checks by outcome and reason, check latency,
//! profiles by status, identity-platform errors by AADSTS code, transient retries and failures.

use std::fmt::Write as _;
use std::sync::Mutex;

use consentry_domain::{Checker, DomainError, ProfileFilter, ProfileStatus};

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum_ms: u64,
}

/// Renders the metrics; keeps the latency histogram between scrapes.
#[derive(Debug, Default)]
pub struct Metrics {
    latency: Mutex<Histogram>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// A new renderer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The metrics of `checker` (and of the profiles in its store), as Prometheus text.
    pub async fn render(&self, checker: &Checker) -> Result<String, DomainError> {
        let stats = checker.stats();
        let snap = stats.snapshot();
        let mut out = String::new();

        out.push_str("# HELP consentry_checks_total Profile checks by outcome and reason.\n");
        out.push_str("# TYPE consentry_checks_total counter\n");
        for ((outcome, reason), n) in &snap.outcomes {
            let _ = writeln!(
                out,
                "consentry_checks_total{{outcome=\"{}\",reason=\"{}\"}} {n}",
                escape(outcome),
                escape(reason)
            );
        }

        {
            let mut h = self
                .latency
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for ms in stats.take_latencies() {
                let secs = ms as f64 / 1000.0;
                for (i, b) in BUCKETS.iter().enumerate() {
                    if secs <= *b {
                        h.counts[i] += 1;
                    }
                }
                h.count += 1;
                h.sum_ms += ms;
            }
            out.push_str(
                "# HELP consentry_check_duration_seconds How long a profile check took.\n",
            );
            out.push_str("# TYPE consentry_check_duration_seconds histogram\n");
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "consentry_check_duration_seconds_bucket{{le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "consentry_check_duration_seconds_bucket{{le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "consentry_check_duration_seconds_sum {}",
                h.sum_ms as f64 / 1000.0
            );
            let _ = writeln!(out, "consentry_check_duration_seconds_count {}", h.count);
        }

        out.push_str("# HELP consentry_profiles App profiles by status.\n");
        out.push_str("# TYPE consentry_profiles gauge\n");
        let counts = checker
            .core()
            .profile_counts(&ProfileFilter::default())
            .await?;
        for st in ProfileStatus::ALL {
            let _ = writeln!(
                out,
                "consentry_profiles{{status=\"{}\"}} {}",
                st.as_str(),
                counts.get(&st).copied().unwrap_or(0)
            );
        }

        out.push_str("# HELP consentry_identity_platform_errors_total Definitive identity-platform errors seen by checks, by AADSTS code.\n");
        out.push_str("# TYPE consentry_identity_platform_errors_total counter\n");
        for (code, n) in &snap.platform_errors {
            let _ = writeln!(
                out,
                "consentry_identity_platform_errors_total{{aadsts=\"{}\"}} {n}",
                escape(code)
            );
        }

        out.push_str(
            "# HELP consentry_check_retries_total Check-level retries after transient failures.\n",
        );
        out.push_str("# TYPE consentry_check_retries_total counter\n");
        let _ = writeln!(
            out,
            "consentry_check_retries_total {}",
            snap.transient_retries
        );
        out.push_str("# HELP consentry_checks_failed_transiently_total Checks whose transient failures persisted (status unchanged).\n");
        out.push_str("# TYPE consentry_checks_failed_transiently_total counter\n");
        let _ = writeln!(
            out,
            "consentry_checks_failed_transiently_total {}",
            snap.failed_transiently
        );
        Ok(out)
    }
}
