//! Checking an app profile: exercising its real credential through the identity-platform port and
//! turning the evidence into a status with a typed reason.
//!
//! One code path serves the schedule, "check now" in the API and the CLI: [`Checker::check`].
//!
//! - Application permissions: client credentials (a certificate assertion for custom apps, from the
//!   sealed [`SecretKind::ClientCertificate`]), then the grants read from Graph.
//! - Delegated and hybrid permissions: the consent user's refresh token is used (and the rotated one
//!   sealed and stored, which also keeps it alive), then the grants are read as above.
//! - The grants are compared with the catalog's permissions for the app type: a missing required
//!   permission makes the profile invalid (`PermissionsMissing`), a missing optional one draws attention.
//!
//! **Invariant:** transient failures (timeouts, connection errors, 5xx, 429) never change a status.
//! They are retried with backoff and jitter; when they persist the outcome says so, the counters in
//! [`CheckStats`] record it, and the profile keeps its status and `last_checked_at`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use consentry_catalog::{AppType, PermissionType};
use rand::Rng as _;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::error::DomainError;
use crate::evidence::{Evidence, SignInLogQuery};
use crate::ids::ProfileId;
use crate::model::{Actor, AppProfile, EventKind, GrantedPermission, NewHistoryEvent, SecretKind};
use crate::platform::{ClientRef, Grants, IdentityPlatform, PlatformError};
use crate::ports::CheckInput;
use crate::reauth::StoredCertificate;
use crate::service::Consentry;
use crate::status::{ProfileStatus, StatusReason};

/// A custom app's stored certificate as a check has it: read with the profile (the monitor's
/// [`CheckInput`]; `None` when the profile has none), or not read yet (read when needed).
enum Stored {
    Read(Option<SecretSlice<u8>>),
    NotRead,
}

/// What started a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "by", rename_all = "snake_case")]
pub enum CheckTrigger {
    /// The monitor's schedule.
    Schedule,
    /// Someone asked for it (API, CLI, console).
    Manual(String),
}

impl CheckTrigger {
    fn actor(&self) -> Actor {
        match self {
            Self::Schedule => Actor::System,
            Self::Manual(who) => Actor::Operator(who.clone()),
        }
    }
    /// Stable name, for logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Manual(_) => "manual",
        }
    }
}

/// How checks behave. Defaults follow the product documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckPolicy {
    /// Attempts of a check whose platform calls fail transiently (the adapter retries each call too),
    /// the first included.
    pub transient_attempts: u32,
    /// Backoff before the first check-level retry; doubled each time, with jitter.
    pub retry_base_delay: std::time::Duration,
    /// Cap of the check-level backoff.
    pub retry_max_delay: std::time::Duration,
    /// A custom app's certificate expiring within this draws attention.
    pub certificate_warning: Duration,
    /// Inactivity after which Microsoft expires a refresh token (90 days; entra-facts).
    pub refresh_inactivity_limit: Duration,
    /// A refresh token unredeemed for longer than this draws attention when a check cannot redeem
    /// it (transient failures), and is reported as kept alive when a check does.
    pub refresh_inactivity_warning: Duration,
    /// The service's own outbound addresses (IPs or CIDR ranges) as Microsoft sees them
    /// (`[network] outbound_addresses`), named in conditional access advice.
    pub outbound_addresses: Vec<String>,
}

impl Default for CheckPolicy {
    fn default() -> Self {
        Self {
            transient_attempts: 3,
            retry_base_delay: std::time::Duration::from_secs(2),
            retry_max_delay: std::time::Duration::from_secs(30),
            certificate_warning: Duration::days(30),
            refresh_inactivity_limit: Duration::days(90),
            refresh_inactivity_warning: Duration::days(75),
            outbound_addresses: Vec::new(),
        }
    }
}

/// How a check ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CheckOutcome {
    /// The credential was exercised and the profile's status decided.
    Checked {
        /// The profile after the check.
        profile: Box<AppProfile>,
        /// Its status before.
        previous_status: ProfileStatus,
        /// Whether the status or reason changed (a history event was written).
        changed: bool,
        /// What to do, when not valid.
        remediation: Vec<String>,
        /// The refresh token had been unused for long and was kept alive by this check.
        refresh_token_kept_alive: bool,
        /// Set when the profile is pending (a re-authorization in progress): what its current
        /// credentials, still in use until the re-authorization completes, were found to be. The
        /// profile stays pending; a re-authorization that fails, is cancelled or expires puts it
        /// back to this.
        #[serde(skip_serializing_if = "Option::is_none")]
        credentials: Option<CredentialsFinding>,
    },
    /// The profile was not checked: it is pending or was never authorized.
    Skipped {
        /// The profile.
        profile_id: ProfileId,
        /// Its (unchanged) status.
        status: ProfileStatus,
        /// Why.
        message: String,
    },
    /// Microsoft kept failing transiently; the status was left unchanged.
    TransientFailure {
        /// The profile.
        profile_id: ProfileId,
        /// Its (unchanged) status.
        status: ProfileStatus,
        /// Check attempts made.
        attempts: u32,
        /// The last error (no secrets).
        message: String,
    },
}

impl CheckOutcome {
    /// The profile checked.
    pub fn profile_id(&self) -> ProfileId {
        match self {
            Self::Checked { profile, .. } => profile.id,
            Self::Skipped { profile_id, .. } | Self::TransientFailure { profile_id, .. } => {
                *profile_id
            }
        }
    }

    /// The status after the check.
    pub fn status(&self) -> ProfileStatus {
        match self {
            Self::Checked { profile, .. } => profile.status,
            Self::Skipped { status, .. } | Self::TransientFailure { status, .. } => *status,
        }
    }

    /// Stable label for metrics: `valid`, `attention`, `invalid`, `skipped` or `transient_failure`
    /// (for a pending profile, what its current credentials gave).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Checked {
                credentials: Some(c),
                ..
            } => c.status.as_str(),
            Self::Checked { profile, .. } => profile.status.as_str(),
            Self::Skipped { .. } => "skipped",
            Self::TransientFailure { .. } => "transient_failure",
        }
    }

    /// The reason code after the check, if any.
    pub fn reason_code(&self) -> Option<&'static str> {
        match self {
            Self::Checked {
                credentials: Some(c),
                ..
            } => c.reason.as_ref().map(StatusReason::code),
            Self::Checked { profile, .. } => profile.reason.as_ref().map(StatusReason::code),
            _ => None,
        }
    }
}

/// What a check of a pending profile found its current credentials to be.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CredentialsFinding {
    /// The status the credentials give.
    pub status: ProfileStatus,
    /// Its reason (None when valid).
    pub reason: Option<StatusReason>,
}

/// Counters of the checks made by one [`Checker`] (shared by its clones), read by the metrics.
#[derive(Debug, Default)]
pub struct CheckStats {
    outcomes: Mutex<BTreeMap<(String, String), u64>>,
    platform_errors: Mutex<BTreeMap<String, u64>>,
    transient_retries: AtomicU64,
    failed_transiently: AtomicU64,
    last_transient_error: Mutex<Option<(OffsetDateTime, ProfileId, String)>>,
    latency_ms: Mutex<Vec<u64>>,
}

/// A snapshot of [`CheckStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckStatsSnapshot {
    /// Checks by (outcome label, reason code or "").
    pub outcomes: BTreeMap<(String, String), u64>,
    /// Definitive identity-platform errors by AADSTS code ("none" when absent).
    pub platform_errors: BTreeMap<String, u64>,
    /// Check-level retries after transient failures.
    pub transient_retries: u64,
    /// Checks that ended in a persisting transient failure (`check_failed_transiently`).
    pub failed_transiently: u64,
    /// The last persisting transient failure: when, which profile, what.
    pub last_transient_error: Option<String>,
}

impl CheckStats {
    /// A snapshot of the counters.
    pub fn snapshot(&self) -> CheckStatsSnapshot {
        CheckStatsSnapshot {
            outcomes: lock(&self.outcomes).clone(),
            platform_errors: lock(&self.platform_errors).clone(),
            transient_retries: self.transient_retries.load(Ordering::Relaxed),
            failed_transiently: self.failed_transiently.load(Ordering::Relaxed),
            last_transient_error: lock(&self.last_transient_error)
                .as_ref()
                .map(|(at, id, msg)| format!("{at} {id}: {msg}")),
        }
    }

    /// Check latencies observed since the last call, in milliseconds (drained).
    pub fn take_latencies(&self) -> Vec<u64> {
        std::mem::take(&mut *lock(&self.latency_ms))
    }

    fn record(&self, outcome: &CheckOutcome, elapsed: std::time::Duration) {
        let key = (
            outcome.label().to_string(),
            outcome.reason_code().unwrap_or_default().to_string(),
        );
        *lock(&self.outcomes).entry(key).or_default() += 1;
        let mut l = lock(&self.latency_ms);
        // Bounded: a reader drains it; without one, keep the most recent values only.
        if l.len() >= 10_000 {
            l.drain(..5_000);
        }
        l.push(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A status change found by a check, for notifications.
#[derive(Debug, Clone)]
pub struct StatusChange {
    /// The profile after the change.
    pub profile: AppProfile,
    /// Its status before.
    pub from: ProfileStatus,
    /// Its reason before.
    pub previous_reason: Option<StatusReason>,
}

/// Told about every status change a check makes (webhooks, email). Must not block: deliver in the
/// background.
#[async_trait::async_trait]
pub trait StatusObserver: Send + Sync + std::fmt::Debug {
    /// A check changed a profile's status or reason.
    async fn status_changed(&self, change: StatusChange);
}

/// The delegated scopes a refresh asks for: the ones the profile's consent covers, not every scope
/// of the current catalog.
///
/// A refresh may only ask for scopes equal to or a subset of the consented ones (entra-facts §2.2);
/// asking for one more fails the whole refresh with AADSTS65001, which reads as "consent revoked"
/// and stops the token API, when all that happened is that a newer catalog version added a
/// permission. So the refresh asks for the catalog's scopes as of the version the profile was
/// consented at (`consented_catalog_version`; every permission records the version that added it),
/// narrowed to the scopes the last consent or check saw granted when any are recorded (an optional
/// scope the tenant never granted is not asked for either). The diagnosis then compares what was
/// granted with the current catalog and names the new permissions (`PermissionsMissing`, or
/// attention for optional ones) while the profile keeps working with what was granted.
fn consented_scopes(profile: &AppProfile, app: &AppType) -> Vec<String> {
    let granted: Vec<&str> = profile
        .granted_permissions
        .iter()
        .filter(|g| g.kind == PermissionType::Scope)
        .map(|g| g.name.as_str())
        .collect();
    // A profile consented before versions were recorded is compared with what it was granted.
    let version = profile.consented_catalog_version.unwrap_or(u32::MAX);
    app.permissions_at(version)
        .filter(|p| p.kind == PermissionType::Scope)
        .filter(|p| granted.is_empty() || granted.contains(&p.name.as_str()))
        .map(|p| p.name.clone())
        .collect()
}

/// Checks app profiles. Cheap to clone; clones share their [`CheckStats`].
#[derive(Debug, Clone)]
pub struct Checker {
    core: Consentry,
    platform: Arc<dyn IdentityPlatform>,
    policy: CheckPolicy,
    stats: Arc<CheckStats>,
    observers: Vec<Arc<dyn StatusObserver>>,
}

/// What a profile's credentials show, before anything is saved.
enum Evaluation {
    /// The status is decided: `reason` (None = valid).
    Decided {
        reason: Option<StatusReason>,
        kept_alive: bool,
        granted: Option<Vec<GrantedPermission>>,
        /// The consent user's refresh token was redeemed (its inactivity clock starts again).
        redeemed: bool,
        /// The sign-in log evidence behind a sign-in failure (see [`crate::evidence`]).
        evidence: Option<FoundEvidence>,
    },
    /// Microsoft kept failing transiently. `near_inactivity`: the refresh token, unredeemed for
    /// long, nears Microsoft's inactivity limit (see `Checker::near_inactivity`).
    Transient {
        attempts: u32,
        message: String,
        near_inactivity: Option<StatusReason>,
    },
}

/// What one attempt to use the credentials showed.
enum Exercised {
    Works {
        grants: Grants,
        delegated: Option<Vec<String>>,
    },
    Broken(StatusReason, Option<u32>),
}

impl Checker {
    /// Builds a checker.
    pub fn new(core: Consentry, platform: Arc<dyn IdentityPlatform>, policy: CheckPolicy) -> Self {
        Self {
            core,
            platform,
            policy,
            stats: Arc::new(CheckStats::default()),
            observers: Vec::new(),
        }
    }

    /// Adds an observer of the status changes checks make.
    pub fn with_observer(mut self, observer: Arc<dyn StatusObserver>) -> Self {
        self.observers.push(observer);
        self
    }

    /// The domain services.
    pub fn core(&self) -> &Consentry {
        &self.core
    }

    /// The identity platform the checks use.
    pub fn platform(&self) -> &Arc<dyn IdentityPlatform> {
        &self.platform
    }

    /// The policy in force.
    pub fn policy(&self) -> &CheckPolicy {
        &self.policy
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<CheckStats> {
        &self.stats
    }

    /// Checks one profile now. `Err` only for problems on Consentry's side (storage, a profile whose
    /// app type left the catalog, missing stored credentials); everything Microsoft says is an outcome.
    pub async fn check(
        &self,
        profile_id: ProfileId,
        trigger: CheckTrigger,
    ) -> Result<CheckOutcome, DomainError> {
        self.check_from(profile_id, None, trigger).await
    }

    /// Checks a profile the monitor leased, from what it read for the whole lease
    /// ([`ScheduleStore::check_inputs`](crate::ports::ScheduleStore::check_inputs)) instead of
    /// reading the profile and its certificate again. What was read may be older than the check by
    /// the time the check waited for its permits: its result is saved only if the profile is still
    /// as read (the same conditional save as every check's), so a profile changed meanwhile (a
    /// re-authorization, a new certificate) keeps its new state and the check ends `Skipped`.
    pub async fn check_read(
        &self,
        input: CheckInput,
        trigger: CheckTrigger,
    ) -> Result<CheckOutcome, DomainError> {
        self.check_from(input.profile.id, Some(input), trigger)
            .await
    }

    async fn check_from(
        &self,
        profile_id: ProfileId,
        input: Option<CheckInput>,
        trigger: CheckTrigger,
    ) -> Result<CheckOutcome, DomainError> {
        let started = std::time::Instant::now();
        let outcome = self.check_inner(profile_id, input, &trigger).await;
        if let Ok(o) = &outcome {
            self.stats.record(o, started.elapsed());
            tracing::debug!(
                profile = %profile_id,
                trigger = trigger.as_str(),
                outcome = o.label(),
                reason = o.reason_code().unwrap_or_default(),
                "profile checked"
            );
            if let CheckTrigger::Manual(_) = &trigger {
                // A check by hand is audited (the monitor's scheduled ones are not: they are no one's act).
                let org = self.core.profile(profile_id).await.ok().map(|p| p.org_id);
                self.core
                    .audit()
                    .record(
                        &trigger.actor(),
                        org,
                        crate::audit::AuditAction::CheckRun,
                        format!("profile:{profile_id}"),
                        serde_json::json!({
                            "outcome": o.label(),
                            "reason": o.reason_code(),
                        }),
                    )
                    .await;
            }
        }
        outcome
    }

    async fn check_inner(
        &self,
        profile_id: ProfileId,
        input: Option<CheckInput>,
        trigger: &CheckTrigger,
    ) -> Result<CheckOutcome, DomainError> {
        let (profile, certificate) = match input {
            Some(CheckInput {
                profile,
                certificate,
            }) => (profile, Stored::Read(certificate)),
            None => (self.core.profile(profile_id).await?, Stored::NotRead),
        };
        if profile.status == ProfileStatus::Pending {
            return self.check_pending(profile, trigger).await;
        }
        if profile.authorized_at.is_none() {
            return Ok(CheckOutcome::Skipped {
                profile_id,
                status: profile.status,
                message: "the profile has never been authorized; authorize it first".into(),
            });
        }
        match self.evaluate(&profile, certificate).await? {
            Evaluation::Decided {
                reason,
                kept_alive,
                granted,
                redeemed,
                evidence,
            } => {
                let mut profile = profile;
                if redeemed {
                    profile.refresh_token_redeemed_at = Some(self.core.clock().now());
                }
                self.conclude(profile, reason, trigger, kept_alive, granted, evidence)
                    .await
            }
            Evaluation::Transient {
                attempts,
                message,
                near_inactivity: Some(reason),
            } => {
                self.conclude_near_inactivity(profile, reason, trigger, attempts, message)
                    .await
            }
            Evaluation::Transient {
                attempts,
                message,
                near_inactivity: None,
            } => Ok(CheckOutcome::TransientFailure {
                profile_id,
                status: profile.status,
                attempts,
                message,
            }),
        }
    }

    /// A pending profile: a re-authorization was started and keeps the previous credentials in use
    /// until it completes, so they are checked like any profile's.
    ///
    /// How the result and the pending marker coexist: the profile stays `Pending` (someone is
    /// re-authorizing it, and their result is what counts); what the credentials show goes into the
    /// pending record as the status to go back to (`Store::note_pending_check`), so a
    /// re-authorization that fails, is cancelled or expires restores the truth of now, not the one
    /// from before it started. A change is written to the history and told to the observers (the
    /// services using the credentials learn that they broke). Finishing the re-authorization wins
    /// over a concurrent check: the note is refused once a callback took the record, and the
    /// profile's save is conditional on the `updated_at` and status read
    /// (`Store::save_profile_if_unchanged`), which the callback's save changes; a note written
    /// just before a callback took the record only changes what a failed callback restores, which
    /// is then the newer truth.
    ///
    /// A re-authorization nobody will finish — expired untaken (10 minutes for a sign-in, 72 hours
    /// for a consent link not opened), taken by a callback that missed its deadline (process
    /// killed, request timed out), or with no record at all (left by an older build) — ends here:
    /// the profile goes back to the status its credentials have (a real check; for a profile never
    /// authorized, its state from before), with a `ReauthorizationExpired` history event.
    async fn check_pending(
        &self,
        profile: AppProfile,
        trigger: &CheckTrigger,
    ) -> Result<CheckOutcome, DomainError> {
        let now = self.core.clock().now();
        let record = self.core.store().pending_for_profile(profile.id).await?;
        match record {
            Some(p) if !p.is_dead(now) => {
                if p.taken_until.is_some() {
                    return Ok(CheckOutcome::Skipped {
                        profile_id: profile.id,
                        status: profile.status,
                        message:
                            "the administrator's answer from Microsoft is being recorded right now"
                                .into(),
                    });
                }
                if profile.authorized_at.is_none() {
                    return Ok(CheckOutcome::Skipped {
                        profile_id: profile.id,
                        status: profile.status,
                        message: "a re-authorization is in progress and the profile has no earlier credentials to check".into(),
                    });
                }
                match self.evaluate(&profile, Stored::NotRead).await? {
                    Evaluation::Decided {
                        reason,
                        granted,
                        redeemed,
                        evidence,
                        ..
                    } => {
                        let mut profile = profile;
                        if redeemed {
                            profile.refresh_token_redeemed_at = Some(now);
                        }
                        let evidence = evidence.map(|f| f.evidence);
                        self.conclude_pending(profile, &p, reason, granted, trigger, evidence)
                            .await
                    }
                    Evaluation::Transient {
                        attempts, message, ..
                    } => Ok(CheckOutcome::TransientFailure {
                        profile_id: profile.id,
                        status: profile.status,
                        attempts,
                        message,
                    }),
                }
            }
            dead => self.expire(profile, dead, trigger).await,
        }
    }

    /// Tells every observer that `profile` (as it is now) had `from` and `previous_reason` before.
    async fn notify(
        &self,
        profile: AppProfile,
        from: ProfileStatus,
        previous_reason: Option<StatusReason>,
    ) {
        let change = StatusChange {
            profile,
            from,
            previous_reason,
        };
        for o in &self.observers {
            o.status_changed(change.clone()).await;
        }
    }

    /// Saves what a check of a pending profile's current credentials found (see `check_pending`).
    async fn conclude_pending(
        &self,
        mut profile: AppProfile,
        pending: &crate::model::PendingAuthorization,
        reason: Option<StatusReason>,
        granted: Option<Vec<GrantedPermission>>,
        trigger: &CheckTrigger,
        evidence: Option<Evidence>,
    ) -> Result<CheckOutcome, DomainError> {
        let now = self.core.clock().now();
        let as_read = (profile.updated_at, profile.status);
        let status = reason
            .as_ref()
            .map(StatusReason::status)
            .unwrap_or(ProfileStatus::Valid);
        let changed = status != pending.previous_status || reason != pending.previous_reason;
        let stale = || CheckOutcome::Skipped {
            profile_id: profile.id,
            status: profile.status,
            message:
                "the re-authorization went on while the profile was checked; its result is kept"
                    .into(),
        };
        if changed
            && !self
                .core
                .store()
                .note_pending_check(&pending.state_hash, status, reason.as_ref())
                .await?
        {
            return Ok(stale());
        }
        profile.last_checked_at = Some(now);
        if let Some(g) = granted {
            profile.granted_permissions = g;
        }
        let event = changed.then(|| {
            profile.updated_at = now;
            NewHistoryEvent {
                evidence: evidence.clone(),
                profile_id: profile.id,
                at: now,
                actor: trigger.actor(),
                kind: EventKind::StatusChanged,
                // The credentials' statuses: the profile itself stays pending.
                from_status: Some(pending.previous_status),
                to_status: Some(status),
                reason: reason.clone(),
                detail: Some(format!(
                    "check ({}) during the pending re-authorization, of the credentials still in use: {}; the profile goes back to this if the re-authorization is not completed",
                    trigger.as_str(),
                    reason
                        .as_ref()
                        .map_or_else(|| "they work".to_string(), StatusReason::summary)
                )),
            }
        });
        if !self
            .core
            .store()
            .save_profile_if_unchanged(&profile, as_read, event)
            .await?
        {
            return Ok(stale());
        }
        if changed {
            // The services using the credentials learn that they broke (or work again) now, not when
            // the re-authorization ends.
            let mut seen = profile.clone();
            seen.status = status;
            seen.reason = reason.clone();
            self.notify(
                seen,
                pending.previous_status,
                pending.previous_reason.clone(),
            )
            .await;
        }
        Ok(CheckOutcome::Checked {
            remediation: reason
                .as_ref()
                .map(StatusReason::remediation)
                .unwrap_or_default(),
            profile: Box::new(profile),
            previous_status: ProfileStatus::Pending,
            changed,
            refresh_token_kept_alive: false,
            credentials: Some(CredentialsFinding { status, reason }),
        })
    }

    /// Ends a re-authorization nobody will finish (see `check_pending`).
    async fn expire(
        &self,
        mut profile: AppProfile,
        pending: Option<crate::model::PendingAuthorization>,
        trigger: &CheckTrigger,
    ) -> Result<CheckOutcome, DomainError> {
        let as_read = (profile.updated_at, profile.status);
        let (known_status, known_reason) = match &pending {
            Some(p) => (p.previous_status, p.previous_reason.clone()),
            None => crate::reauth::previous_state_from_history(&self.core, &profile).await?,
        };
        let mut kept_alive = false;
        let mut evidence = None;
        let (reason, granted, note) = if profile.authorized_at.is_some() {
            match self.evaluate(&profile, Stored::NotRead).await? {
                Evaluation::Decided {
                    reason,
                    kept_alive: k,
                    granted,
                    redeemed,
                    evidence: e,
                } => {
                    kept_alive = k;
                    evidence = e;
                    if redeemed {
                        profile.refresh_token_redeemed_at = Some(self.core.clock().now());
                    }
                    (reason, granted, None)
                }
                // Transient failures never decide a status: the last known one comes back, and
                // the next check (scheduled as after any transient failure) finds the truth.
                Evaluation::Transient { message, .. } => (
                    known_reason.clone(),
                    None,
                    Some(format!(
                        "; its credentials could not be checked now (Microsoft did not answer: {message}), so the status from before is restored"
                    )),
                ),
            }
        } else {
            (known_reason.clone(), None, None)
        };
        let now = self.core.clock().now();
        let status = reason
            .as_ref()
            .map(StatusReason::status)
            .unwrap_or(ProfileStatus::Valid);
        let why = match &pending {
            Some(p) if p.taken_until.is_some() => "Microsoft's answer reached Consentry but was not recorded (the process handling it stopped or ran out of time)".to_string(),
            Some(p) if p.leg == crate::model::AuthLeg::Handoff => format!(
                "the consent link was not used within {} hours",
                crate::reauth::HANDOFF_LIFETIME.whole_hours()
            ),
            Some(_) => format!(
                "it was not completed within {} minutes",
                crate::reauth::PENDING_LIFETIME.whole_minutes()
            ),
            None => "nothing was left to complete it (the process handling Microsoft's answer stopped)".to_string(),
        };
        let started_by = pending
            .as_ref()
            .map(|p| format!(" (started by {})", p.started_by))
            .unwrap_or_default();
        profile.status = status;
        profile.reason = reason.clone();
        profile.updated_at = now;
        if profile.authorized_at.is_some() && note.is_none() {
            profile.last_checked_at = Some(now);
        }
        if let Some(g) = granted {
            profile.granted_permissions = g;
        }
        let event = NewHistoryEvent {
            evidence: evidence.as_ref().map(|f| f.evidence.clone()),
            profile_id: profile.id,
            at: now,
            actor: trigger.actor(),
            kind: EventKind::ReauthorizationExpired,
            from_status: Some(ProfileStatus::Pending),
            to_status: Some(status),
            reason: reason.clone(),
            detail: Some(format!(
                "The re-authorization{started_by} expired: {why}. Nothing was changed; the profile has the status of its current credentials{}.",
                note.unwrap_or_default()
            )),
        };
        if !self
            .core
            .store()
            .save_profile_if_unchanged(&profile, as_read, Some(event))
            .await?
        {
            let current = self.core.profile(profile.id).await?;
            return Ok(CheckOutcome::Skipped {
                profile_id: profile.id,
                status: current.status,
                message: "the profile changed while its expired re-authorization was ended (for example a new one started); its new state is kept".into(),
            });
        }
        if let Some(p) = &pending {
            // After the save; a newer record (a new start) has another state hash and stays.
            self.core.store().delete_pending(&p.state_hash).await?;
        }
        self.keep_evidence(&profile, evidence.as_ref(), known_reason.as_ref())
            .await?;
        tracing::info!(profile = %profile.id, status = status.as_str(), "an abandoned re-authorization expired; the profile has its credentials' status again");
        if status != known_status || reason != known_reason {
            self.notify(profile.clone(), known_status, known_reason.clone())
                .await;
        }
        Ok(CheckOutcome::Checked {
            remediation: reason
                .as_ref()
                .map(StatusReason::remediation)
                .unwrap_or_default(),
            profile: Box::new(profile),
            previous_status: ProfileStatus::Pending,
            changed: true,
            refresh_token_kept_alive: kept_alive,
            credentials: None,
        })
    }

    /// Exercises the profile's credentials (with the check-level retries) and decides the status
    /// they give. Writes nothing but the rotated refresh token.
    async fn evaluate(
        &self,
        profile: &AppProfile,
        certificate: Stored,
    ) -> Result<Evaluation, DomainError> {
        let app = self
            .core
            .catalog()
            .app_type(&profile.app_type)
            .cloned()
            .ok_or_else(|| {
                DomainError::Conflict(format!(
                    "the app type {} of this profile is no longer in the catalog; nothing can be checked",
                    profile.app_type
                ))
            })?;
        let now = self.core.clock().now();

        // A certificate past its expiry cannot sign an assertion: no call is needed to know.
        if let Some(cert) = &profile.certificate
            && cert.not_after <= now
        {
            let reason = StatusReason::CertificateExpired {
                not_after: cert.not_after,
            };
            return Ok(Evaluation::Decided {
                reason: Some(reason),
                kept_alive: false,
                granted: None,
                redeemed: false,
                evidence: None,
            });
        }

        let client = self.client_for(profile, &app, certificate).await?;
        let last_use = last_redemption(profile);

        let mut attempt = 1u32;
        let exercised = loop {
            match self.exercise(profile, &app, &client).await {
                Ok(e) => break e,
                Err(e) if e.is_transient() && attempt < self.policy.transient_attempts.max(1) => {
                    self.stats.transient_retries.fetch_add(1, Ordering::Relaxed);
                    let delay = self.backoff(attempt);
                    tracing::info!(profile = %profile.id, attempt, error = %e.message, "transient failure during a check; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) if e.is_transient() => {
                    self.stats
                        .failed_transiently
                        .fetch_add(1, Ordering::Relaxed);
                    *lock(&self.stats.last_transient_error) =
                        Some((now, profile.id, e.message.clone()));
                    let near_inactivity = self.near_inactivity(profile, now);
                    if near_inactivity.is_some() {
                        tracing::warn!(profile = %profile.id, attempts = attempt, error = %e.message, "check failed transiently and the refresh token nears its inactivity limit");
                    } else {
                        tracing::warn!(profile = %profile.id, attempts = attempt, error = %e.message, "check failed transiently; status unchanged");
                    }
                    return Ok(Evaluation::Transient {
                        attempts: attempt,
                        message: e.message,
                        near_inactivity,
                    });
                }
                Err(e) => {
                    let thumb = profile
                        .certificate
                        .as_ref()
                        .map(|c| c.thumbprint.to_string());
                    let reason = e.reason(
                        profile.consent_user.as_ref().map(|u| &u.upn),
                        profile.original_sign_in_ip,
                        thumb.as_deref(),
                    );
                    // Only transient failures have no reason, and those were handled above.
                    let mut r = reason.unwrap_or_else(|| StatusReason::UnrecognizedError {
                        aadsts: e.aadsts,
                        error: e.error.clone().unwrap_or_else(|| "error".into()),
                    });
                    if let StatusReason::ConditionalAccessBlocked {
                        outbound_addresses, ..
                    } = &mut r
                    {
                        outbound_addresses.clone_from(&self.policy.outbound_addresses);
                    }
                    break Exercised::Broken(r, e.aadsts);
                }
            }
        };

        match exercised {
            Exercised::Broken(reason, aadsts) => {
                let code = aadsts.map_or_else(|| "none".to_string(), |c| c.to_string());
                *lock(&self.stats.platform_errors).entry(code).or_default() += 1;
                let evidence = self.sign_in_evidence(profile, &client, &reason).await;
                Ok(Evaluation::Decided {
                    reason: Some(reason),
                    kept_alive: false,
                    granted: None,
                    redeemed: false,
                    evidence,
                })
            }
            Exercised::Works { grants, delegated } => {
                let kept_alive = delegated.is_some()
                    && last_use.is_some_and(|t| now - t >= self.policy.refresh_inactivity_warning);
                let (reason, granted) =
                    self.diagnose(profile, &app, &grants, delegated.clone(), now);
                Ok(Evaluation::Decided {
                    reason,
                    kept_alive,
                    granted: Some(granted),
                    // The consent user's refresh token was redeemed: recorded with the result
                    // (also by `use_refresh_token`; the save keeps the later time).
                    redeemed: delegated.is_some(),
                    evidence: None,
                })
            }
        }
    }

    /// `RefreshTokenNearInactivity` when a check could not redeem the consent user's refresh
    /// token (a persisting transient failure) and the token has gone unredeemed for longer than
    /// [`CheckPolicy::refresh_inactivity_warning`].
    ///
    /// Microsoft revokes a refresh token unused for 90 days (AADSTS700082). Every check redeems it,
    /// so it only nears that limit when redemption has been failing for weeks (Microsoft
    /// unreachable from the service, the service down, or a database restored from an old
    /// backup). The transient failure itself is no evidence against the profile; the age of the
    /// token is — Consentry's own record of its last successful redemption
    /// (`refresh_token_redeemed_at`, or the authorization) — so the profile draws attention,
    /// with the days left, and never becomes invalid this way. Only valid and attention profiles
    /// are flagged: an invalid one needs re-authorizing anyway.
    fn near_inactivity(&self, profile: &AppProfile, now: OffsetDateTime) -> Option<StatusReason> {
        profile.consent_user.as_ref()?;
        if !matches!(
            profile.status,
            ProfileStatus::Valid | ProfileStatus::Attention
        ) {
            return None;
        }
        let last_used = last_redemption(profile)?;
        if now - last_used < self.policy.refresh_inactivity_warning {
            return None;
        }
        let expires_at = last_used + self.policy.refresh_inactivity_limit;
        Some(StatusReason::RefreshTokenNearInactivity {
            last_used,
            expires_at,
            // Started days count: 9 days and 23 hours left reads "10 days left".
            days_left: ((expires_at - now).whole_seconds().max(0) + 86_399) / 86_400,
        })
    }

    /// Saves a near-inactivity warning found after a persisting transient failure. The outcome
    /// stays a transient failure (the credential was not exercised, `last_checked_at` is kept)
    /// with the new status.
    async fn conclude_near_inactivity(
        &self,
        profile: AppProfile,
        reason: StatusReason,
        trigger: &CheckTrigger,
        attempts: u32,
        error: String,
    ) -> Result<CheckOutcome, DomainError> {
        let profile_id = profile.id;
        let last_checked_at = profile.last_checked_at;
        let summary = reason.summary();
        match self
            .save_status(profile, Some(reason), trigger, None, last_checked_at, None)
            .await?
        {
            Some((saved, _, _)) => Ok(CheckOutcome::TransientFailure {
                profile_id,
                status: saved.status,
                attempts,
                message: format!("{error}; {summary}"),
            }),
            None => {
                let current = self.core.profile(profile_id).await?;
                Ok(CheckOutcome::TransientFailure {
                    profile_id,
                    status: current.status,
                    attempts,
                    message: error,
                })
            }
        }
    }

    fn backoff(&self, retry: u32) -> std::time::Duration {
        let exp = self
            .policy
            .retry_base_delay
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.policy.retry_max_delay);
        let half = exp / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }

    /// The credential the profile uses.
    async fn client_for(
        &self,
        profile: &AppProfile,
        app: &AppType,
        certificate: Stored,
    ) -> Result<ClientRef, DomainError> {
        if !app.custom_app {
            return Ok(ClientRef::Vendor {
                app_type: app.key.clone(),
            });
        }
        let app_id = profile.application_id.ok_or_else(|| {
            DomainError::Conflict(
                "the custom app's application ID is not recorded; re-authorize the profile".into(),
            )
        })?;
        let blob = match certificate {
            Stored::Read(read) => read,
            Stored::NotRead => {
                self.core
                    .store()
                    .get_secret(profile.id, SecretKind::ClientCertificate)
                    .await?
            }
        };
        let blob = blob.ok_or_else(|| {
                DomainError::Conflict(
                    "the custom app's certificate is not stored; re-authorize the profile with its .pfx file".into(),
                )
            })?;
        let stored: StoredCertificate = serde_json::from_slice(blob.expose_secret())
            .map_err(|_| DomainError::Conflict("the stored certificate is damaged; re-authorize the profile with its .pfx file".into()))?;
        let pfx = STANDARD.decode(&stored.pfx_b64).map_err(|_| {
            DomainError::Conflict(
                "the stored certificate is damaged; re-authorize the profile with its .pfx file"
                    .into(),
            )
        })?;
        Ok(ClientRef::Custom {
            app_id,
            pfx: SecretSlice::from(pfx),
            password: SecretString::from(stored.password),
        })
    }

    /// Redeems the profile's stored refresh token and stores the rotated one.
    async fn use_refresh_token(
        &self,
        profile: &AppProfile,
        app: &AppType,
        client: &ClientRef,
    ) -> Result<crate::platform::Refreshed, PlatformError> {
        let token = self
            .core
            .store()
            .get_secret(profile.id, SecretKind::RefreshToken)
            .await
            .map_err(|e| PlatformError {
                // A storage failure is not evidence against the profile.
                cause: crate::platform::PlatformCause::Transient,
                aadsts: None,
                error: None,
                message: format!("the refresh token could not be read: {e}"),
            })?
            .ok_or_else(|| PlatformError {
                cause: crate::platform::PlatformCause::RefreshTokenInactive,
                aadsts: None,
                error: Some("no_refresh_token".into()),
                message: "no refresh token is stored for the consent user".into(),
            })?;
        let rt = SecretString::from(String::from_utf8_lossy(token.expose_secret()).into_owned());
        let scopes = consented_scopes(profile, app);
        let refreshed = self
            .platform
            .refresh(&profile.tenant_at(), client, &rt, &scopes)
            .await?;
        let redeemed_at = self.core.clock().now();
        if let Err(e) = self
            .core
            .store()
            .record_refresh_redemption(profile.id, redeemed_at)
            .await
        {
            // Only the inactivity warning reads it; the refresh itself worked.
            tracing::warn!(profile = %profile.id, error = %e, "the refresh token's redemption time could not be recorded");
        }
        if let Some(new) = &refreshed.refresh_token
            && let Err(e) = self
                .core
                .store()
                .put_secret(
                    profile.id,
                    SecretKind::RefreshToken,
                    &SecretSlice::from(new.expose_secret().as_bytes().to_vec()),
                )
                .await
        {
            // The previous token stays valid (rotation does not revoke it).
            tracing::warn!(profile = %profile.id, error = %e, "the rotated refresh token could not be stored");
        }
        Ok(refreshed)
    }

    /// A Graph access token for the profile, through the same credentials a check exercises: client
    /// credentials for app types with application permissions (a certificate assertion for custom
    /// apps), the consent user's refresh token otherwise. The token API serves these.
    pub async fn acquire_token(
        &self,
        profile: &AppProfile,
    ) -> Result<crate::platform::AccessToken, PlatformError> {
        let not_usable = |message: String| PlatformError {
            cause: crate::platform::PlatformCause::Other,
            aadsts: None,
            error: Some("consentry".into()),
            message,
        };
        let app = self
            .core
            .catalog()
            .app_type(&profile.app_type)
            .cloned()
            .ok_or_else(|| {
                not_usable("the profile's app type is no longer in the catalog".into())
            })?;
        let client = self
            .client_for(profile, &app, Stored::NotRead)
            .await
            .map_err(|e| not_usable(e.to_string()))?;
        if app.application_roles().next().is_some() {
            self.platform.app_token(&profile.tenant_at(), &client).await
        } else {
            let r = self.use_refresh_token(profile, &app, &client).await?;
            Ok(crate::platform::AccessToken {
                token: r.access_token,
                expires_at: r.expires_at,
            })
        }
    }

    /// One attempt: the refresh token first (delegated and hybrid profiles with a consent user), then
    /// client credentials and the grants.
    async fn exercise(
        &self,
        profile: &AppProfile,
        app: &AppType,
        client: &ClientRef,
    ) -> Result<Exercised, PlatformError> {
        let mut delegated = None;
        if profile.consent_user.is_some() {
            let refreshed = self.use_refresh_token(profile, app, client).await?;
            let mut scopes = refreshed.granted_scopes;
            // The OpenID scopes are not echoed in `scope`; a working refresh token proves
            // openid/profile/offline_access.
            scopes.extend(["openid", "profile", "offline_access"].map(String::from));
            scopes.sort();
            scopes.dedup();
            delegated = Some(scopes);
        }
        let grants = self.platform.grants(&profile.tenant_at(), client).await?;
        Ok(Exercised::Works { grants, delegated })
    }

    /// Compares the grants with the catalog. Returns the reason (None = valid) and the permissions
    /// now granted.
    fn diagnose(
        &self,
        profile: &AppProfile,
        app: &AppType,
        grants: &Grants,
        delegated: Option<Vec<String>>,
        now: OffsetDateTime,
    ) -> (Option<StatusReason>, Vec<GrantedPermission>) {
        if grants.service_principal.is_none() {
            return (Some(StatusReason::AppRemovedFromTenant), Vec::new());
        }
        let user = profile.consent_user.as_ref().map(|u| u.object_id);
        let scopes: Vec<String> = if grants.delegated_readable {
            let mut v = grants.delegated_for(user);
            if let Some(d) = &delegated {
                // Graph's grants list no OpenID scopes; the working refresh token proves them.
                v.extend(
                    d.iter()
                        .filter(|s| matches!(s.as_str(), "openid" | "profile" | "offline_access"))
                        .cloned(),
                );
                v.sort();
                v.dedup();
            }
            v
        } else {
            delegated.clone().unwrap_or_default()
        };
        // A scope of another resource than Graph (Viva Engage's) is not in Graph's grants and a
        // check cannot see it: it is not counted as missing, and what the re-authorization proved
        // (with a token for that resource) is kept as recorded.
        let other_resource: Vec<GrantedPermission> = profile
            .granted_permissions
            .iter()
            .filter(|g| g.kind == PermissionType::Scope && g.name.contains("://"))
            .cloned()
            .collect();
        let has = |p: &consentry_catalog::GraphPermission| match p.kind {
            PermissionType::Scope if !p.is_graph() => true,
            PermissionType::Scope => scopes.contains(&p.name),
            PermissionType::Role => grants.app_roles.contains(&p.name),
        };
        let required: Vec<_> = app.permissions.iter().filter(|p| !p.optional).collect();
        let missing: Vec<String> = required
            .iter()
            .filter(|p| !has(p))
            .map(|p| p.name.clone())
            .collect();
        let optional_missing: Vec<String> = app
            .permissions
            .iter()
            .filter(|p| p.optional && !has(p))
            .map(|p| p.name.clone())
            .collect();

        let mut granted: Vec<GrantedPermission> = grants
            .app_roles
            .iter()
            .map(|r| GrantedPermission {
                name: r.clone(),
                kind: PermissionType::Role,
            })
            .collect();
        granted.extend(scopes.iter().map(|s| GrantedPermission {
            name: s.clone(),
            kind: PermissionType::Scope,
        }));
        granted.extend(other_resource.iter().cloned());

        let reason = if !missing.is_empty() {
            let anything_granted = required.iter().any(|p| has(p));
            if !anything_granted && delegated.is_none() {
                // Not one required permission left: the consent itself was revoked.
                Some(StatusReason::ConsentRevoked)
            } else {
                Some(StatusReason::PermissionsMissing { missing })
            }
        } else if let Some(cert) = profile
            .certificate
            .as_ref()
            .filter(|c| c.not_after - now <= self.policy.certificate_warning)
        {
            Some(StatusReason::CertificateExpiringSoon {
                not_after: cert.not_after,
            })
        } else if !optional_missing.is_empty() {
            Some(StatusReason::OptionalPermissionsAvailable {
                permissions: optional_missing,
            })
        } else {
            None
        };
        (reason, granted)
    }

    /// Writes a check's conclusion: the status and reason (a history event and the observers
    /// when either changed), `last_checked_at` and the granted permissions read. `None` when the
    /// profile changed since it was read (a re-authorization started): nothing is written.
    async fn save_status(
        &self,
        mut profile: AppProfile,
        reason: Option<StatusReason>,
        trigger: &CheckTrigger,
        granted: Option<Vec<GrantedPermission>>,
        last_checked_at: Option<OffsetDateTime>,
        evidence: Option<FoundEvidence>,
    ) -> Result<Option<(AppProfile, ProfileStatus, bool)>, DomainError> {
        let now = self.core.clock().now();
        // A re-authorization may have started (or finished) while Microsoft was asked: its result
        // wins, this check's evidence is stale. The save below is conditional on the profile as read.
        let as_read = (profile.updated_at, profile.status);
        let previous_status = profile.status;
        let new_status = reason
            .as_ref()
            .map(StatusReason::status)
            .unwrap_or(ProfileStatus::Valid);
        let changed = new_status != profile.status || reason != profile.reason;
        let stale_reason = profile.reason.clone();
        profile.last_checked_at = last_checked_at;
        if let Some(g) = granted {
            profile.granted_permissions = g;
        }
        let event = if changed {
            profile.status = new_status;
            profile.reason = reason.clone();
            profile.updated_at = now;
            Some(NewHistoryEvent {
                evidence: evidence.as_ref().map(|f| f.evidence.clone()),
                profile_id: profile.id,
                at: now,
                actor: trigger.actor(),
                kind: EventKind::StatusChanged,
                from_status: Some(previous_status),
                to_status: Some(new_status),
                reason: reason.clone(),
                detail: Some(match &reason {
                    Some(r) => format!("check ({}): {}", trigger.as_str(), r.summary()),
                    None => format!("check ({}): the profile works again", trigger.as_str()),
                }),
            })
        } else {
            None
        };
        let previous_reason = if changed {
            // `profile.reason` was replaced above; the event kept the new one.
            Some(stale_reason)
        } else {
            None
        };
        let store = self.core.store();
        let saved = match event {
            Some(event) => {
                store
                    .save_profile_if_unchanged(&profile, as_read, Some(event))
                    .await?
            }
            // Only what a check changes (the time, the permissions read, the redemption).
            None => store.save_check(&profile, as_read).await?,
        };
        if !saved {
            return Ok(None);
        }
        self.keep_evidence(
            &profile,
            evidence.as_ref(),
            previous_reason.as_ref().and_then(Option::as_ref),
        )
        .await?;
        if let Some(previous_reason) = previous_reason {
            self.notify(profile.clone(), previous_status, previous_reason)
                .await;
        }
        Ok(Some((profile, previous_status, changed)))
    }

    /// Saves the result: a history event when the status or reason changed, otherwise only
    /// `last_checked_at` (and the granted permissions read).
    async fn conclude(
        &self,
        profile: AppProfile,
        reason: Option<StatusReason>,
        trigger: &CheckTrigger,
        kept_alive: bool,
        granted: Option<Vec<GrantedPermission>>,
        evidence: Option<FoundEvidence>,
    ) -> Result<CheckOutcome, DomainError> {
        let now = self.core.clock().now();
        let id = profile.id;
        let Some((profile, previous_status, changed)) = self
            .save_status(profile, reason, trigger, granted, Some(now), evidence)
            .await?
        else {
            let current = self.core.profile(id).await?;
            return Ok(CheckOutcome::Skipped {
                profile_id: id,
                status: current.status,
                message: "the profile changed while it was checked (for example a re-authorization started); its new state is kept".into(),
            });
        };
        let remediation = profile
            .reason
            .as_ref()
            .map(StatusReason::remediation)
            .unwrap_or_default();
        Ok(CheckOutcome::Checked {
            profile: Box::new(profile),
            previous_status,
            changed,
            remediation,
            refresh_token_kept_alive: kept_alive,
            credentials: None,
        })
    }
}

impl Checker {
    /// The sign-in log evidence of a sign-in failure (`None` for other reasons, or a profile with no
    /// consent user). Evidence already holding entries for the same reason is kept instead of asking
    /// Microsoft again; without entries (Microsoft's take minutes to appear, or reading failed) the
    /// log is read again. Reading never changes the diagnosis.
    async fn sign_in_evidence(
        &self,
        profile: &AppProfile,
        client: &ClientRef,
        reason: &StatusReason,
    ) -> Option<FoundEvidence> {
        if !reason.is_sign_in_failure() {
            return None;
        }
        let upn = profile.consent_user.as_ref()?.upn.to_string();
        if profile.reason.as_ref() == Some(reason) {
            match self.core.store().reason_evidence(profile.id).await {
                Ok(Some(kept)) if kept.is_conclusive() => {
                    return Some(FoundEvidence {
                        evidence: kept,
                        already_kept: true,
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(profile = %profile.id, error = %e, "the evidence kept with the reason could not be read; reading the sign-in logs again");
                }
            }
        }
        let now = self.core.clock().now();
        let query = SignInLogQuery {
            upn,
            since: now - EVIDENCE_WINDOW,
        };
        let evidence = match self
            .platform
            .sign_in_log(&profile.tenant_at(), client, &query)
            .await
        {
            Ok(entries) => Evidence::from_entries(now, entries),
            Err(why) => {
                tracing::debug!(profile = %profile.id, why = ?why, "no sign-in log evidence");
                Evidence::Unavailable { read_at: now, why }
            }
        };
        Some(FoundEvidence {
            evidence,
            already_kept: false,
        })
    }

    /// Keeps newly read `evidence` with the profile's current reason, or clears what a sign-in
    /// failure left when the profile's reason was one (`previous`) and no longer is. No statement
    /// when there is nothing new to keep or clear (a valid profile checked again, or an invalid
    /// one whose kept evidence was reused).
    async fn keep_evidence(
        &self,
        profile: &AppProfile,
        evidence: Option<&FoundEvidence>,
        previous: Option<&StatusReason>,
    ) -> Result<(), DomainError> {
        let store = self.core.store();
        let was_sign_in_failure = previous.is_some_and(StatusReason::is_sign_in_failure);
        let is_sign_in_failure = profile
            .reason
            .as_ref()
            .is_some_and(StatusReason::is_sign_in_failure);
        match evidence {
            Some(f) if !f.already_kept => {
                store
                    .set_reason_evidence(profile.id, Some(&f.evidence))
                    .await?;
            }
            Some(_) => {}
            None if was_sign_in_failure && !is_sign_in_failure => {
                store.set_reason_evidence(profile.id, None).await?;
            }
            None => {}
        }
        Ok(())
    }
}

/// Sign-in log evidence a check found: read now, or the evidence already kept with the same reason.
struct FoundEvidence {
    evidence: Evidence,
    /// Reused from the store: nothing to write back.
    already_kept: bool,
}

/// How far back a check looks in the tenant's sign-in logs for the consent user's failed sign-ins.
const EVIDENCE_WINDOW: time::Duration = time::Duration::hours(24);

/// The last successful redemption of the profile's refresh token that Consentry knows of: the
/// recorded one, or the authorization that issued the token, whichever is later.
fn last_redemption(profile: &AppProfile) -> Option<OffsetDateTime> {
    match (profile.refresh_token_redeemed_at, profile.authorized_at) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}
