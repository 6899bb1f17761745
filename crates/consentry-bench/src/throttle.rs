//! A sweep against Microsoft's throttling limits (`bench/throttle.sh`): entra-sim enforces the
//! documented limits (`set_throttling`), the monitor checks every seeded profile, and the simulator's
//! counts (`GET /_sim/throttling`) say how many requests it answered 429. The sweep's duration is set
//! against the minimum the limits imply: for each key (app and tenant; Graph's per-app limit too), the
//! work it had answered ÷ its refill rate — less the bucket's burst, since every bucket starts full —
//! and the longest of them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use consentry_domain::OffsetClock;
use consentry_monitor::{Monitor, MonitorConfig};
use serde_json::{Value, json};

/// What to run.
#[derive(Debug, Clone)]
pub struct ThrottleSweep {
    /// Checks to wait for (every seeded profile once).
    pub checks: u64,
    /// The simulator's base URL (its control API).
    pub sim: String,
    /// Checks at once.
    pub concurrency: usize,
    /// Checks at once per tenant.
    pub per_tenant: usize,
}

/// One limit's work, as the simulator counted it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyWork {
    /// `token` or `graph` (per app and tenant), `graph app` (per app).
    pub what: String,
    /// Units answered (not throttled).
    pub answered_units: f64,
    /// The limit (units per window).
    pub limit: f64,
    /// The window in seconds.
    pub window_secs: f64,
}

impl KeyWork {
    fn rate(&self) -> f64 {
        self.limit / self.window_secs.max(f64::MIN_POSITIVE)
    }

    /// Seconds this key's answered work needs at its rate: (nominal, less the starting burst).
    pub fn minimum(&self) -> (f64, f64) {
        let rate = self.rate();
        (
            self.answered_units / rate,
            (self.answered_units - self.limit).max(0.0) / rate,
        )
    }
}

/// The limit-implied minimum duration: the longest over the keys, nominal and with the bursts, and
/// the key that sets the latter.
pub fn limit_implied_minimum(keys: &[KeyWork]) -> (f64, f64, Option<&KeyWork>) {
    let nominal = keys.iter().map(|k| k.minimum().0).fold(0.0, f64::max);
    let binding = keys.iter().max_by(|a, b| {
        let (a, b) = (a.minimum(), b.minimum());
        a.1.total_cmp(&b.1).then(a.0.total_cmp(&b.0))
    });
    (nominal, binding.map_or(0.0, |k| k.minimum().1), binding)
}

/// Every limit's work from `GET /_sim/throttling`.
pub fn key_work(throttling: &Value) -> Vec<KeyWork> {
    let num = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    let mut out = Vec::new();
    for (list, per_app) in [("keys", false), ("apps", true)] {
        for k in throttling[list].as_array().into_iter().flatten() {
            let service = k["service"].as_str().unwrap_or("?");
            out.push(KeyWork {
                what: if per_app {
                    format!("{service} app {}", k["client_id"].as_str().unwrap_or("?"))
                } else {
                    format!(
                        "{service} app {} tenant {}",
                        k["client_id"].as_str().unwrap_or("?"),
                        k["tenant_id"].as_str().unwrap_or("?")
                    )
                },
                answered_units: num(k, "units") - num(k, "throttled_units"),
                limit: num(k, "limit"),
                window_secs: num(k, "window_secs"),
            });
        }
    }
    out
}

fn sim_client() -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder();
    if let Ok(ca) = std::env::var("CONSENTRY_ENTRA__EXTRA_CA_FILE") {
        let pem = std::fs::read(&ca).with_context(|| format!("reading {ca}"))?;
        b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    Ok(b.build()?)
}

/// Runs the sweep over the configured store (CONSENTRY_* variables) and returns its figures.
pub async fn run(opts: &ThrottleSweep) -> anyhow::Result<Value> {
    let http = sim_client()?;
    // The documented limits (entra-sim's defaults), counts from zero; no fault rule.
    for op in [
        json!({"op": "set_faults", "faults": []}),
        json!({"op": "set_throttling", "throttling": {"enabled": true}}),
    ] {
        let resp = http
            .post(format!("{}/_sim/ops", opts.sim))
            .json(&op)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("the simulator refused {op}: {}", resp.text().await?);
        }
    }
    let cfg = consentry_server::Config::load(None, std::env::vars().collect::<Vec<_>>())?;
    let state =
        consentry_server::build_state_with_clock(&cfg, Arc::new(OffsetClock::default())).await?;
    let checker = state.checker.clone();
    let monitor = Monitor::new(
        checker.clone(),
        MonitorConfig {
            worker_id: format!("bench-throttle-{}", uuid::Uuid::new_v4()),
            poll: Duration::from_millis(100),
            batch: 250,
            max_concurrent: opts.concurrency,
            max_per_tenant: opts.per_tenant,
            ..MonitorConfig::default()
        },
    );
    let done = || -> u64 { checker.stats().snapshot().outcomes.values().sum() };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let handle = tokio::spawn(monitor.run(async {
        let _ = rx.await;
    }));
    let mut last_progress = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let n = done();
        if n >= opts.checks {
            break;
        }
        if last_progress.elapsed() > Duration::from_secs(10) {
            eprintln!("  … {n}/{} checks", opts.checks);
            last_progress = Instant::now();
        }
        if started.elapsed() > Duration::from_secs(3600) {
            bail!(
                "the sweep did not finish {} checks in an hour ({n} done)",
                opts.checks
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = tx.send(());
    let _ = handle.await;
    let throttling: Value = http
        .get(format!("{}/_sim/throttling", opts.sim))
        .send()
        .await?
        .json()
        .await?;
    let snapshot = checker.stats().snapshot();
    let outcomes: BTreeMap<String, u64> = snapshot
        .outcomes
        .iter()
        .map(|((label, reason), n)| {
            let k = if reason.is_empty() {
                label.clone()
            } else {
                format!("{label}:{reason}")
            };
            (k, *n)
        })
        .collect();
    let total =
        |service: &str, field: &str| throttling["totals"][service][field].as_u64().unwrap_or(0);
    let requests = total("token", "requests") + total("graph", "requests");
    let throttled = total("token", "throttled") + total("graph", "throttled");
    let work = key_work(&throttling);
    let (nominal, with_burst, binding) = limit_implied_minimum(&work);
    Ok(json!({
        "checks": done(),
        "seconds": seconds,
        "checks_per_sec": done() as f64 / seconds,
        "requests": requests,
        "throttled": throttled,
        "throttled_share": throttled as f64 / requests.max(1) as f64,
        "token": throttling["totals"]["token"],
        "graph": throttling["totals"]["graph"],
        "keys": work.len(),
        "limit_min_seconds": with_burst,
        "limit_min_seconds_nominal": nominal,
        "binding_limit": binding.map(|k| k.what.clone()),
        "ratio": seconds / with_burst.max(f64::MIN_POSITIVE),
        "ratio_nominal": seconds / nominal.max(f64::MIN_POSITIVE),
        "outcomes": outcomes,
        "platform_errors": snapshot.platform_errors,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_is_the_slowest_key_less_its_burst() {
        let keys = key_work(&json!({
            "keys": [
                {"service": "graph", "client_id": "a", "tenant_id": "t1", "units": 7000,
                 "throttled_units": 0, "limit": 3500, "window_secs": 10},
                {"service": "graph", "client_id": "a", "tenant_id": "t2", "units": 3600,
                 "throttled_units": 100, "limit": 3500, "window_secs": 10},
                {"service": "token", "client_id": "a", "tenant_id": "t1", "units": 1000,
                 "throttled_units": 0, "limit": 200, "window_secs": 1}
            ],
            "apps": [
                {"service": "graph", "client_id": "a", "units": 10600, "throttled_units": 100,
                 "limit": 150000, "window_secs": 20}
            ]
        }));
        assert_eq!(keys.len(), 4);
        let (nominal, burst, binding) = limit_implied_minimum(&keys);
        // t1's Graph: 7,000 units at 350/s = 20 s, 10 s after its 3,500-unit burst.
        assert!((nominal - 20.0).abs() < 1e-9, "{nominal}");
        assert!((burst - 10.0).abs() < 1e-9, "{burst}");
        assert_eq!(binding.unwrap().what, "graph app a tenant t1");
    }
}
