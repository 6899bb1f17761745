//! The monitor: keeps app profiles healthy by checking each one on a schedule.
//!
//! Every profile has a next-check time in the store (hourly by default, every 15 minutes while invalid
//! so that a fixed conditional-access policy is noticed soon). A sweep leases the due profiles in the
//! store ([`consentry_domain::ScheduleStore::lease_due_checks`]) so that two monitor processes never
//! check the same profile at once, checks them through the same [`Checker`] as "check now" in the API
//! and the CLI, and releases each lease with the profile's next check time. Concurrency is bounded
//! globally and per tenant: a check waits for its tenant's permit before it takes a global one, so a
//! slow or throttling tenant never holds up the others; while Microsoft throttles a tenant
//! ([`consentry_domain::IdentityPlatform::throttled_for`]: a `Retry-After` the Entra adapter is
//! honouring), its checks wait before taking a global permit. Schedules and leases live in the database:
//! a restart loses nothing, and a lease left by a crashed process runs out and is taken over.
//!
//! Sweeps overlap (at most [`MAX_SWEEPS`] at once), so a sweep waiting on a slow tenant does not hold up the
//! next; a profile leased again while this monitor still has a task for it is not checked twice.
//!
//! [`Monitor::run`] is the background task of `consentry serve`; it stops gracefully: no new check
//! starts after shutdown is requested, checks in flight finish, and leases not started are released
//! at once for another monitor to take.
//!
//! [`vendor::run`] reads the vendor's own registrations (credential expiry) on its own, hours-scale
//! schedule beside it.

pub mod destination;
pub mod metrics;
pub mod vendor;
pub mod webhooks;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use consentry_domain::{
    CheckInput, CheckOutcome, CheckRelease, CheckTrigger, Checker, DomainError, LeasedCheck,
    ProfileId, ProfileStatus, ScheduleStore, StoreError, TenantId,
};
use time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// Sweeps of one monitor running at once.
pub const MAX_SWEEPS: usize = 4;

/// How the monitor schedules and runs checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorConfig {
    /// This process's name in leases (unique per process).
    pub worker_id: String,
    /// Time between checks of a valid (or attention) profile.
    pub interval: Duration,
    /// Time between checks of an invalid profile (and after a persisting transient failure).
    pub invalid_interval: Duration,
    /// How often the monitor looks for due checks when none were due.
    pub poll: StdDuration,
    /// Profiles leased per sweep.
    pub batch: u32,
    /// How long a lease protects a profile from other monitors.
    pub lease_for: Duration,
    /// Checks running at once, in all.
    pub max_concurrent: usize,
    /// Checks running at once per tenant.
    pub max_per_tenant: usize,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            worker_id: format!("monitor-{}", uuid::Uuid::new_v4()),
            interval: Duration::hours(1),
            invalid_interval: Duration::minutes(15),
            poll: StdDuration::from_secs(30),
            batch: 100,
            lease_for: Duration::minutes(10),
            max_concurrent: 16,
            max_per_tenant: 4,
        }
    }
}

/// Why a sweep failed.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The store could not lease checks.
    #[error("the monitor could not read its schedule: {0}; check the database connection")]
    Store(#[from] StoreError),
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Profiles leased.
    pub leased: usize,
    /// Checks by outcome label (`valid`, `invalid`, `skipped`, `transient_failure`, `error`, …;
    /// `lease_expired` when the lease ran out before the check could start, so none was made).
    pub outcomes: std::collections::BTreeMap<String, usize>,
    /// Leases handed back unchecked because shutdown was requested.
    pub released_unchecked: usize,
    /// Profiles leased again while an earlier task of this monitor still had them.
    pub already_in_flight: usize,
}

/// How a sweep's check task ended.
enum Finished {
    /// Checked: its lease is handed back by the sweep ([`Releases`]), and the profile stays marked
    /// in flight until then, so that another sweep of this monitor does not check it meanwhile.
    Checked {
        label: String,
        release: CheckRelease,
        inflight: InFlight,
    },
    /// Not checked, for the reason labelled; its lease already handed back.
    Ended(String),
    /// Stopped before its check; its lease already handed back.
    Unchecked,
}

/// Leases of finished checks waiting to be handed back together ([`ScheduleStore::release_checks`]),
/// with their in-flight marks.
#[derive(Default)]
struct Releases {
    leases: Vec<CheckRelease>,
    marks: Vec<InFlight>,
}

impl Releases {
    /// Hands back every lease waiting (none: no statement), then drops their in-flight marks.
    async fn hand_back(&mut self, store: &dyn ScheduleStore, worker: &str) {
        if self.leases.is_empty() {
            return;
        }
        if let Err(e) = store.release_checks(worker, &self.leases).await {
            tracing::warn!(leases = self.leases.len(), error = %e, "check leases could not be released; they run out by themselves");
        }
        self.leases.clear();
        self.marks.clear();
    }
}

/// Marks a profile as being checked by this monitor until dropped.
struct InFlight(Arc<Mutex<HashSet<ProfileId>>>, ProfileId);

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.0).remove(&self.1);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The scheduled checker. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Monitor {
    checker: Checker,
    config: Arc<MonitorConfig>,
    global: Arc<Semaphore>,
    tenants: Arc<Mutex<HashMap<TenantId, Arc<Semaphore>>>>,
    inflight: Arc<Mutex<HashSet<ProfileId>>>,
}

impl Monitor {
    /// Builds a monitor over `checker`.
    pub fn new(checker: Checker, config: MonitorConfig) -> Self {
        Self {
            global: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            checker,
            config: Arc::new(config),
            tenants: Arc::default(),
            inflight: Arc::default(),
        }
    }

    /// The checker (shared with the API).
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// The configuration.
    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    fn tenant_permits(&self, tenant: TenantId) -> Arc<Semaphore> {
        let mut map = lock(&self.tenants);
        map.entry(tenant)
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.max_per_tenant.max(1))))
            .clone()
    }

    /// The next check time after an outcome.
    fn next_after(&self, outcome: &Result<CheckOutcome, DomainError>) -> Duration {
        match outcome {
            Ok(CheckOutcome::TransientFailure { .. }) => self.config.invalid_interval,
            // Pending or never authorized: nothing to learn sooner.
            Ok(CheckOutcome::Skipped { .. }) => self.config.interval,
            Ok(o) if o.status() == ProfileStatus::Invalid => self.config.invalid_interval,
            _ => self.config.interval,
        }
    }

    /// Leases the due profiles and checks them, bounded globally and per tenant. When `stop` turns
    /// true, checks not yet started are released for another monitor.
    pub async fn sweep_once(
        &self,
        stop: &watch::Receiver<bool>,
    ) -> Result<SweepReport, MonitorError> {
        let store = self.checker.core().check_schedule();
        let now = self.checker.core().clock().now();
        // After this instant another monitor may hold the lease: a check not started by then is
        // skipped (it waited too long for permits) and left to whoever leases the profile next.
        let lease_ends = now + self.config.lease_for;
        let leased = store
            .lease_due_checks(
                &self.config.worker_id,
                now,
                self.config.batch,
                self.config.lease_for,
            )
            .await?;
        let mut report = SweepReport {
            leased: leased.len(),
            ..SweepReport::default()
        };
        // What every check reads first (the profile, a custom app's certificate), for the whole
        // lease in one read instead of two per check. Should that read fail, each check reads its
        // own as it would by hand.
        let ids: Vec<ProfileId> = leased.iter().map(|l| l.profile_id).collect();
        let read = if ids.is_empty() {
            Ok(Vec::new())
        } else {
            store.check_inputs(&ids).await
        };
        let mut inputs: HashMap<ProfileId, CheckInput> = match read {
            Ok(read) => read.into_iter().map(|i| (i.profile.id, i)).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "the leased profiles could not be read at once; each check reads its own");
                HashMap::new()
            }
        };
        let mut tasks = JoinSet::new();
        for LeasedCheck {
            profile_id,
            tenant_id,
        } in leased
        {
            let input = inputs.remove(&profile_id);
            // Leased again while an earlier sweep's task still holds it (its lease ran out while it
            // waited for its tenant): that task checks and releases it.
            if !lock(&self.inflight).insert(profile_id) {
                report.already_in_flight += 1;
                continue;
            }
            let this = self.clone();
            let store = store.clone();
            let mut stop = stop.clone();
            let tenant = self.tenant_permits(tenant_id);
            tasks.spawn(async move {
                let inflight = InFlight(this.inflight.clone(), profile_id);
                let worker = this.config.worker_id.clone();
                // The tenant's permit first: waiting for it holds no global permit. A tenant
                // Microsoft throttles (a Retry-After running) waits here too, holding only its
                // own permit, so the global ones go to other tenants.
                let permits = async {
                    let t = tenant.acquire_owned().await;
                    while let Some(pause) = this.checker.platform().throttled_for(tenant_id) {
                        tokio::time::sleep(pause).await;
                    }
                    let g = this.global.clone().acquire_owned().await;
                    (t, g)
                };
                let stopped = async {
                    while !*stop.borrow_and_update() {
                        if stop.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                };
                let permits = tokio::select! {
                    // A stop request wins over free permits: no check starts after it.
                    biased;
                    () = stopped => {
                        let now = this.checker.core().clock().now();
                        if let Err(e) = store.release_check(profile_id, &worker, now, None).await {
                            tracing::warn!(profile = %profile_id, error = %e, "a lease could not be released at shutdown; it runs out by itself");
                        }
                        return Finished::Unchecked;
                    }
                    p = permits => p,
                };
                if this.checker.core().clock().now() >= lease_ends {
                    tracing::info!(profile = %profile_id, "lease ran out before the check could start; left to the next lease");
                    // Hands it back at once if no other monitor took it meanwhile (no-op otherwise).
                    let now = this.checker.core().clock().now();
                    let _ = store.release_check(profile_id, &worker, now, None).await;
                    return Finished::Ended("lease_expired".to_string());
                }
                let outcome = match input {
                    Some(input) => this.checker.check_read(input, CheckTrigger::Schedule).await,
                    // Deleted since it was leased (the check says so), or the lease's read failed.
                    None => this.checker.check(profile_id, CheckTrigger::Schedule).await,
                };
                // The permits bound the checks talking to Microsoft at once: handing the lease
                // back does not, so the next check starts meanwhile.
                drop(permits);
                let next = this.checker.core().clock().now() + this.next_after(&outcome);
                let transient = match &outcome {
                    Ok(CheckOutcome::TransientFailure { message, .. }) => Some(message.clone()),
                    _ => None,
                };
                let label = match &outcome {
                    Ok(o) => o.label().to_string(),
                    Err(e) => {
                        tracing::warn!(profile = %profile_id, error = %e, "a scheduled check could not run");
                        "error".to_string()
                    }
                };
                Finished::Checked {
                    label,
                    release: CheckRelease {
                        profile_id,
                        next_check_at: next,
                        transient_error: transient,
                    },
                    inflight,
                }
            });
        }
        // The leases of checks that finished are handed back together: whatever finished by the
        // time no other task has (one at a time when checks end one by one).
        let mut releases = Releases::default();
        loop {
            let done = match tasks.try_join_next() {
                Some(done) => done,
                None => {
                    releases.hand_back(&*store, &self.config.worker_id).await;
                    match tasks.join_next().await {
                        Some(done) => done,
                        None => break,
                    }
                }
            };
            match done {
                Ok(Finished::Checked {
                    label,
                    release,
                    inflight,
                }) => {
                    *report.outcomes.entry(label).or_default() += 1;
                    releases.leases.push(release);
                    releases.marks.push(inflight);
                }
                Ok(Finished::Ended(label)) => *report.outcomes.entry(label).or_default() += 1,
                Ok(Finished::Unchecked) => report.released_unchecked += 1,
                Err(e) => tracing::error!(error = %e, "a check task failed"),
            }
        }
        Ok(report)
    }

    /// Sweeps until `shutdown` resolves: every [`MonitorConfig::poll`], and at once again after a
    /// full batch. Sweeps overlap (at most [`MAX_SWEEPS`]): a sweep waiting on a slow tenant does not
    /// hold up the next one. At shutdown no new check starts, checks in flight finish, and the
    /// remaining leases are handed back.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send) {
        let (tx, rx) = watch::channel(false);
        tokio::pin!(shutdown);
        tracing::info!(worker = %self.config.worker_id, "monitor started");
        let mut sweeps: JoinSet<Result<SweepReport, MonitorError>> = JoinSet::new();
        let mut next = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next && sweeps.len() < MAX_SWEEPS {
                let this = self.clone();
                let stop = rx.clone();
                sweeps.spawn(async move { this.sweep_once(&stop).await });
                next = tokio::time::Instant::now() + self.config.poll;
            }
            tokio::select! {
                Some(done) = sweeps.join_next(), if !sweeps.is_empty() => {
                    match done {
                        Ok(Ok(r)) => {
                            if r.leased > 0 {
                                tracing::info!(leased = r.leased, outcomes = ?r.outcomes, "sweep done");
                            }
                            if r.leased >= self.config.batch as usize {
                                // More may be due: sweep again at once.
                                next = tokio::time::Instant::now();
                            }
                        }
                        Ok(Err(e)) => tracing::warn!(error = %e, "sweep failed; trying again later"),
                        Err(e) => tracing::error!(error = %e, "a sweep task failed"),
                    }
                }
                // With MAX_SWEEPS running, only a finished sweep (or shutdown) can start another:
                // waking on a past `next` would spin the loop until one finishes.
                () = tokio::time::sleep_until(next), if sweeps.len() < MAX_SWEEPS => {}
                () = &mut shutdown => {
                    let _ = tx.send(true);
                    while let Some(done) = sweeps.join_next().await {
                        if let Ok(Err(e)) = done {
                            tracing::warn!(error = %e, "a sweep failed while stopping");
                        }
                    }
                    break;
                }
            }
        }
        tracing::info!(worker = %self.config.worker_id, "monitor stopped");
    }
}
