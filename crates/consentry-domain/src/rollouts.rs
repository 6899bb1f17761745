//! Permission rollouts: what each catalog version added to the app types, which app profiles of the
//! customer tenants that concerns, and how far they are.
//!
//! A rollout is a catalog version that added permissions to app types (each permission's `since`).
//! Its members are the authorized profiles of those app types consented at an older version,
//! enrolled once (a profile consented at or after the version never needed the rollout). A member is
//! **done** once its granted permissions (read from Microsoft at its last consent or check) hold every
//! permission the rollout added to its app type, whether through a re-authorization in Consentry or an
//! administrator granting it in Entra on their own (seen at the next check); **in progress** while a
//! re-authorization is pending; **failed** when its last re-authorization since it was enrolled
//! failed or expired; otherwise **not started**. When a member was first seen done is kept, which
//! draws the completion chart.

use std::collections::{BTreeMap, BTreeSet};

use consentry_catalog::{Catalog, PermissionType};
use serde::Serialize;
use time::OffsetDateTime;

use crate::access::{Action, Caller};
use crate::error::DomainError;
use crate::ids::{OrgId, ProfileId, TenantId};
use crate::model::{EventKind, consent_lacks};
use crate::ports::RolloutMember;
use crate::service::Consentry;
use crate::status::ProfileStatus;

/// A permission a catalog version added to an app type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutPermission {
    /// The app type (catalog key).
    pub app_type: String,
    /// The app type's display name.
    pub app_name: String,
    /// The permission, e.g. `Tasks.ReadWrite.All`.
    pub permission: String,
    /// Delegated scope or application role.
    pub kind: PermissionType,
    /// An optional permission: missing it draws attention, it does not invalidate a profile.
    pub optional: bool,
}

/// A catalog version that added permissions to app types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rollout {
    /// The catalog version, which is also the rollout's ID.
    pub version: u32,
    /// What it added, by app type in catalog order.
    pub permissions: Vec<RolloutPermission>,
}

impl Rollout {
    /// The app types it concerns, in catalog order.
    pub fn app_types(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.permissions
            .iter()
            .filter(|p| seen.insert(p.app_type.clone()))
            .map(|p| p.app_type.clone())
            .collect()
    }

    fn added_to<'a>(&'a self, app_type: &'a str) -> impl Iterator<Item = &'a RolloutPermission> {
        self.permissions
            .iter()
            .filter(move |p| p.app_type == app_type)
    }
}

/// The rollouts of `catalog`, newest first: every version after the first that added a permission.
pub fn rollouts_of(catalog: &Catalog) -> Vec<Rollout> {
    let mut by_version: BTreeMap<u32, Vec<RolloutPermission>> = BTreeMap::new();
    for app in &catalog.app_types {
        for p in app.permissions.iter().filter(|p| p.since > 1) {
            by_version
                .entry(p.since)
                .or_default()
                .push(RolloutPermission {
                    app_type: app.key.clone(),
                    app_name: app.display_name.clone(),
                    permission: p.name.clone(),
                    kind: p.kind,
                    optional: p.optional,
                });
        }
    }
    by_version
        .into_iter()
        .rev()
        .map(|(version, permissions)| Rollout {
            version,
            permissions,
        })
        .collect()
}

/// Where a profile is in a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// It holds every permission the rollout added to its app type.
    Done,
    /// A re-authorization is pending.
    InProgress,
    /// Its last re-authorization since it was enrolled failed or expired.
    Failed,
    /// Nothing was tried yet.
    NotStarted,
}

impl MemberState {
    /// Stable name (API, CSV).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::InProgress => "in_progress",
            Self::Failed => "failed",
            Self::NotStarted => "not_started",
        }
    }

    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Done => "Done",
            Self::InProgress => "In progress",
            Self::Failed => "Failed",
            Self::NotStarted => "Not started",
        }
    }
}

/// A profile of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutProfile {
    /// The profile.
    pub profile_id: ProfileId,
    /// Its organization.
    pub org_id: OrgId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The tenant's display name.
    pub tenant_name: String,
    /// The tenant's primary domain.
    pub tenant_domain: String,
    /// Its app type.
    pub app_type: String,
    /// Where it is.
    pub state: MemberState,
    /// The rollout's permissions it still lacks.
    pub missing: Vec<String>,
    /// Why its last re-authorization failed (when `state` is `failed`).
    pub failure: Option<String>,
    /// When it was first seen done.
    #[serde(with = "time::serde::rfc3339::option")]
    pub done_at: Option<OffsetDateTime>,
}

/// How many profiles are where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateCounts {
    /// Done.
    pub done: u64,
    /// A re-authorization is pending.
    pub in_progress: u64,
    /// The last re-authorization failed.
    pub failed: u64,
    /// Nothing tried yet.
    pub not_started: u64,
}

impl StateCounts {
    fn add(&mut self, s: MemberState) {
        match s {
            MemberState::Done => self.done += 1,
            MemberState::InProgress => self.in_progress += 1,
            MemberState::Failed => self.failed += 1,
            MemberState::NotStarted => self.not_started += 1,
        }
    }

    /// Every profile counted.
    pub fn total(&self) -> u64 {
        self.done + self.in_progress + self.failed + self.not_started
    }
}

/// A tenant, as a rollout names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutTenant {
    /// Its display name.
    pub name: String,
    /// Its primary domain.
    pub domain: String,
    /// Its ID.
    pub id: TenantId,
}

/// Who still lacks one permission of the rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PermissionProgress {
    /// The permission and its app type.
    #[serde(flatten)]
    pub permission: RolloutPermission,
    /// Profiles that lack it.
    pub profiles_missing: u64,
    /// Tenants with a profile that lacks it, by name.
    pub tenants_missing: Vec<RolloutTenant>,
}

/// A rollout with its counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutSummary {
    /// The rollout.
    #[serde(flatten)]
    pub rollout: Rollout,
    /// Tenants with a profile in the rollout.
    pub tenants: u64,
    /// Tenants whose every profile in the rollout is done.
    pub tenants_done: u64,
    /// The profiles by state.
    pub profiles: StateCounts,
    /// Whole percent of the profiles done (100 when there are none).
    pub percent_done: u8,
}

/// One point of the completion chart: at `at`, `done` of `total` profiles were done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProgressPoint {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Profiles done by then.
    pub done: u64,
    /// Profiles enrolled by then.
    pub total: u64,
}

/// A rollout in full: counts, who lacks what, every profile, and completion over time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutReport {
    /// The rollout and its counts.
    #[serde(flatten)]
    pub summary: RolloutSummary,
    /// Per permission: who still lacks it.
    pub missing: Vec<PermissionProgress>,
    /// Every profile, by tenant.
    pub members: Vec<RolloutProfile>,
    /// Completion over time (a point wherever a profile was enrolled or done), oldest first.
    pub history: Vec<ProgressPoint>,
}

impl RolloutReport {
    /// The profiles as CSV (RFC 4180, a header line): tenant, domain, tenant ID, app type, profile
    /// ID, state, missing permissions (`;`-separated), failure, done at.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "tenant,domain,tenant_id,app_type,profile_id,state,missing,failure,done_at\r\n",
        );
        for m in &self.members {
            let done_at = m
                .done_at
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
            let fields = [
                m.tenant_name.clone(),
                m.tenant_domain.clone(),
                m.tenant_id.to_string(),
                m.app_type.clone(),
                m.profile_id.to_string(),
                m.state.as_str().to_string(),
                m.missing.join(";"),
                m.failure.clone().unwrap_or_default(),
                done_at,
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
        out
    }
}

/// A CSV field, quoted when it needs to be; a leading `=`, `+`, `-` or `@` is prefixed with `'` so a
/// spreadsheet does not run it as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Where `m` is in `rollout`, and what it lacks.
fn assess(rollout: &Rollout, m: &RolloutMember) -> (MemberState, Vec<String>, Option<String>) {
    let missing: Vec<String> = rollout
        .added_to(&m.app_type)
        .filter(|p| {
            consent_lacks(
                &m.granted,
                m.consented_catalog_version,
                &p.permission,
                p.kind,
                rollout.version,
            )
        })
        .map(|p| p.permission.clone())
        .collect();
    if missing.is_empty() {
        return (MemberState::Done, missing, None);
    }
    if m.status == ProfileStatus::Pending {
        return (MemberState::InProgress, missing, None);
    }
    match &m.last_reauthorization {
        Some((
            EventKind::ReauthorizationFailed | EventKind::ReauthorizationExpired,
            at,
            detail,
        )) if *at >= m.added_at => {
            let why = detail
                .clone()
                .unwrap_or_else(|| "the re-authorization did not complete".into());
            (MemberState::Failed, missing, Some(why))
        }
        _ => (MemberState::NotStarted, missing, None),
    }
}

/// The permission rollouts service over the domain services' store, catalog and clock.
#[derive(Debug, Clone)]
pub struct Rollouts {
    core: Consentry,
}

impl Rollouts {
    /// The service over `core`.
    pub fn new(core: Consentry) -> Self {
        Self { core }
    }

    /// The catalog's rollouts, newest first, without their members.
    pub fn catalog_rollouts(&self) -> Vec<Rollout> {
        rollouts_of(self.core.catalog())
    }

    /// Every rollout with its counts, newest first, over the profiles the caller sees.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<RolloutSummary>, DomainError> {
        caller.may(Action::Read, caller.org())?;
        let mut out = Vec::new();
        for rollout in self.catalog_rollouts() {
            out.push(self.report(rollout, caller.org()).await?.summary);
        }
        Ok(out)
    }

    /// Rollout `version` in full, over the profiles the caller sees.
    pub async fn show(&self, caller: &Caller, version: u32) -> Result<RolloutReport, DomainError> {
        caller.may(Action::Read, caller.org())?;
        self.of_org(version, caller.org()).await
    }

    /// Rollout `version` in full, over one organization's profiles (or all), for the services
    /// that decided access already (a campaign).
    pub(crate) async fn of_org(
        &self,
        version: u32,
        org: Option<OrgId>,
    ) -> Result<RolloutReport, DomainError> {
        let rollout = self
            .catalog_rollouts()
            .into_iter()
            .find(|r| r.version == version)
            .ok_or_else(|| DomainError::NotFound {
                what: "rollout",
                id: version.to_string(),
            })?;
        self.report(rollout, org).await
    }

    /// Enrolls the profiles a rollout concerns, records which became (or stopped being) done, and
    /// counts.
    async fn report(
        &self,
        rollout: Rollout,
        org: Option<OrgId>,
    ) -> Result<RolloutReport, DomainError> {
        let store = self.core.store();
        let now = self.core.clock().now();
        store
            .enroll_rollout_members(rollout.version, &rollout.app_types(), now)
            .await?;
        let members = store.rollout_members(rollout.version, org).await?;
        let mut changes = Vec::new();
        let mut profiles = Vec::with_capacity(members.len());
        for m in &members {
            let (state, missing, failure) = assess(&rollout, m);
            let done_at = match (state, m.done_at) {
                (MemberState::Done, Some(t)) => Some(t),
                (MemberState::Done, None) => {
                    // The re-authorization that brought the permissions, or the check that saw them.
                    let seen = m
                        .authorized_at
                        .filter(|a| *a >= m.added_at)
                        .or(m.last_checked_at.filter(|c| *c >= m.added_at))
                        .unwrap_or(now)
                        .min(now);
                    changes.push((m.profile_id, Some(seen)));
                    Some(seen)
                }
                (_, Some(_)) => {
                    changes.push((m.profile_id, None));
                    None
                }
                (_, None) => None,
            };
            profiles.push(RolloutProfile {
                profile_id: m.profile_id,
                org_id: m.org_id,
                tenant_id: m.tenant_id,
                tenant_name: m.tenant_name.clone(),
                tenant_domain: m.tenant_domain.clone(),
                app_type: m.app_type.clone(),
                state,
                missing,
                failure,
                done_at,
            });
        }
        store.set_rollout_done(rollout.version, &changes).await?;
        Ok(build_report(rollout, &members, profiles))
    }
}

fn build_report(
    rollout: Rollout,
    members: &[RolloutMember],
    profiles: Vec<RolloutProfile>,
) -> RolloutReport {
    let mut counts = StateCounts::default();
    let mut tenants: BTreeMap<TenantId, bool> = BTreeMap::new();
    for p in &profiles {
        counts.add(p.state);
        let done = tenants.entry(p.tenant_id).or_insert(true);
        *done &= p.state == MemberState::Done;
    }
    let missing = rollout
        .permissions
        .iter()
        .map(|perm| {
            let lacking: Vec<&RolloutProfile> = profiles
                .iter()
                .filter(|p| p.app_type == perm.app_type && p.missing.contains(&perm.permission))
                .collect();
            let tenants_missing: BTreeSet<RolloutTenant> = lacking
                .iter()
                .map(|p| RolloutTenant {
                    name: p.tenant_name.clone(),
                    domain: p.tenant_domain.clone(),
                    id: p.tenant_id,
                })
                .collect();
            PermissionProgress {
                permission: perm.clone(),
                profiles_missing: lacking.len() as u64,
                tenants_missing: tenants_missing.into_iter().collect(),
            }
        })
        .collect();
    let history = history(members, &profiles);
    let total = counts.total();
    let percent_done = (counts.done * 100)
        .checked_div(total)
        .map_or(100, |p| u8::try_from(p).unwrap_or(100));
    RolloutReport {
        summary: RolloutSummary {
            rollout,
            tenants: tenants.len() as u64,
            tenants_done: tenants.values().filter(|d| **d).count() as u64,
            profiles: counts,
            percent_done,
        },
        missing,
        members: profiles,
        history,
    }
}

/// Completion over time: a point at each time a profile was enrolled or first seen done.
fn history(members: &[RolloutMember], profiles: &[RolloutProfile]) -> Vec<ProgressPoint> {
    let mut changes: BTreeMap<OffsetDateTime, (i64, i64)> = BTreeMap::new();
    for m in members {
        changes.entry(m.added_at).or_default().1 += 1;
    }
    for p in profiles {
        if let Some(t) = p.done_at {
            changes.entry(t).or_default().0 += 1;
        }
    }
    let (mut done, mut total) = (0i64, 0i64);
    changes
        .into_iter()
        .map(|(at, (d, t))| {
            done += d;
            total += t;
            ProgressPoint {
                at,
                done: u64::try_from(done).unwrap_or(0),
                total: u64::try_from(total).unwrap_or(0),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GrantedPermission;

    fn member(app_type: &str, granted: &[(&str, PermissionType)], version: u32) -> RolloutMember {
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        RolloutMember {
            profile_id: ProfileId::new_random(),
            org_id: OrgId::new_random(),
            tenant_id: TenantId::parse("84841066-274d-4ec0-a5c1-276be684bdd3").expect("id"),
            tenant_name: "Contoso".into(),
            tenant_domain: "contoso.onmicrosoft.com".into(),
            app_type: app_type.into(),
            added_at: t0,
            done_at: None,
            status: ProfileStatus::Valid,
            granted: granted
                .iter()
                .map(|(n, k)| GrantedPermission {
                    name: (*n).into(),
                    kind: *k,
                })
                .collect(),
            consented_catalog_version: Some(version),
            authorized_at: Some(t0 - time::Duration::days(30)),
            last_checked_at: None,
            last_reauthorization: None,
        }
    }

    fn rollout() -> Rollout {
        Rollout {
            version: 2,
            permissions: vec![RolloutPermission {
                app_type: "planner".into(),
                app_name: "Planner".into(),
                permission: "Tasks.ReadWrite.All".into(),
                kind: PermissionType::Role,
                optional: false,
            }],
        }
    }

    #[test]
    fn the_builtin_catalog_has_the_planner_rollout_of_version_2() {
        let rollouts = rollouts_of(&Catalog::builtin());
        let v2 = rollouts.iter().find(|r| r.version == 2).expect("version 2");
        assert!(
            v2.permissions
                .iter()
                .any(|p| p.permission == "Tasks.ReadWrite.All"),
            "{v2:?}"
        );
        assert!(rollouts.iter().all(|r| r.version > 1));
    }

    #[test]
    fn a_member_is_done_only_with_the_permission_of_the_right_kind() {
        let r = rollout();
        let lacking = member("planner", &[("Group.Read.All", PermissionType::Role)], 1);
        assert_eq!(assess(&r, &lacking).0, MemberState::NotStarted);
        assert_eq!(assess(&r, &lacking).1, vec!["Tasks.ReadWrite.All"]);
        let wrong_kind = member(
            "planner",
            &[("Tasks.ReadWrite.All", PermissionType::Scope)],
            1,
        );
        assert_eq!(assess(&r, &wrong_kind).0, MemberState::NotStarted);
        let granted = member(
            "planner",
            &[("Tasks.ReadWrite.All", PermissionType::Role)],
            1,
        );
        assert_eq!(assess(&r, &granted).0, MemberState::Done);
    }

    #[test]
    fn pending_and_failed_reauthorizations_are_told_apart_from_not_started() {
        let r = rollout();
        let mut m = member("planner", &[], 1);
        m.status = ProfileStatus::Pending;
        assert_eq!(assess(&r, &m).0, MemberState::InProgress);
        m.status = ProfileStatus::Invalid;
        m.last_reauthorization = Some((
            EventKind::ReauthorizationFailed,
            m.added_at + time::Duration::hours(1),
            Some("AADSTS65004: the administrator declined".into()),
        ));
        let (state, _, why) = assess(&r, &m);
        assert_eq!(state, MemberState::Failed);
        assert!(why.is_some_and(|w| w.contains("declined")));
        // A failure from before the rollout is not this rollout's.
        m.last_reauthorization = Some((
            EventKind::ReauthorizationFailed,
            m.added_at - time::Duration::hours(1),
            None,
        ));
        assert_eq!(assess(&r, &m).0, MemberState::NotStarted);
    }

    #[test]
    fn a_consent_without_recorded_grants_counts_by_its_version() {
        let r = rollout();
        assert_eq!(assess(&r, &member("planner", &[], 2)).0, MemberState::Done);
        assert_eq!(
            assess(&r, &member("planner", &[], 1)).0,
            MemberState::NotStarted
        );
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }

    #[test]
    fn history_counts_enrolments_and_completions_in_time_order() {
        let r = rollout();
        let a = member("planner", &[], 1);
        let mut b = member("planner", &[], 1);
        b.added_at += time::Duration::hours(2);
        let pa = RolloutProfile {
            profile_id: a.profile_id,
            org_id: a.org_id,
            tenant_id: a.tenant_id,
            tenant_name: a.tenant_name.clone(),
            tenant_domain: a.tenant_domain.clone(),
            app_type: a.app_type.clone(),
            state: MemberState::Done,
            missing: vec![],
            failure: None,
            done_at: Some(a.added_at + time::Duration::hours(1)),
        };
        let pb = RolloutProfile {
            profile_id: b.profile_id,
            state: MemberState::NotStarted,
            missing: vec!["Tasks.ReadWrite.All".into()],
            done_at: None,
            ..pa.clone()
        };
        let report = build_report(r, &[a.clone(), b.clone()], vec![pa, pb]);
        let points: Vec<(u64, u64)> = report.history.iter().map(|p| (p.done, p.total)).collect();
        assert_eq!(points, vec![(0, 1), (1, 1), (1, 2)]);
        assert_eq!(report.summary.percent_done, 50);
        assert_eq!(report.summary.tenants, 1);
        assert_eq!(
            report.summary.tenants_done, 0,
            "one tenant, one profile not done"
        );
        assert_eq!(report.summary.profiles.done, 1);
        assert_eq!(report.summary.profiles.not_started, 1);
        let lacking = &report.missing[0];
        assert_eq!(lacking.profiles_missing, 1, "only the profile not done");
        assert_eq!(
            lacking
                .tenants_missing
                .iter()
                .map(|t| t.domain.as_str())
                .collect::<Vec<_>>(),
            vec!["contoso.onmicrosoft.com"]
        );
    }
}
