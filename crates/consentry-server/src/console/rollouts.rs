//! Permission rollouts in the console: every rollout with its completion (`/console/rollouts`), and
//! one in full (`/console/rollouts/{version}`): counts, a completion chart drawn on the server as SVG
//! (no script), the tenants still lacking each permission, every profile, and a CSV export. The data
//! is the domain's [`Rollouts`] service's, as the API's and the CLI's.

use std::fmt::Write as _;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use consentry_domain::{
    MemberState, PermissionProgress, ProgressPoint, RolloutProfile, RolloutReport, RolloutSummary,
    Rollouts,
};
use time::OffsetDateTime;

use super::auth::Operator;
use super::error::{ConsoleError, html};
use super::pages::{Layout, when};
use crate::AppState;

#[derive(Template)]
#[template(path = "console/rollouts.html")]
struct ListView {
    layout: Layout,
    rollouts: Vec<RolloutSummary>,
}

#[derive(Template)]
#[template(path = "console/rollout.html")]
struct DetailView {
    layout: Layout,
    s: RolloutSummary,
    missing: Vec<PermissionProgress>,
    members: Vec<Member>,
    chart: Chart,
    /// The account may start a consent campaign.
    can_campaign: bool,
    /// (id, name) of the organizations the platform operator may start one for.
    orgs: Vec<(String, String)>,
}

struct Member {
    p: RolloutProfile,
    done_at: String,
    /// The state badge's CSS class.
    class: &'static str,
}

/// The completion chart: an SVG path and its labels, or nothing to draw.
pub struct Chart {
    /// The line's `d`, in the 0–600 × 0–160 plot area.
    pub path: String,
    /// The first and last time shown.
    pub from: String,
    /// The last time shown.
    pub to: String,
    /// What the chart shows, for people who cannot see it.
    pub description: String,
}

/// `GET /console/rollouts`.
pub async fn list(State(st): State<AppState>, op: Operator) -> Result<Response, ConsoleError> {
    let rollouts = Rollouts::new(st.svc.clone()).list(&op.caller()).await?;
    let layout = Layout::new(&st, &op).await?;
    Ok(html(StatusCode::OK, &ListView { layout, rollouts }))
}

/// `GET /console/rollouts/{version}`.
pub async fn detail(
    State(st): State<AppState>,
    op: Operator,
    Path(raw): Path<String>,
) -> Result<Response, ConsoleError> {
    let (_, report) = report(&st, &op, &raw).await?;
    let layout = Layout::new(&st, &op).await?;
    let chart = chart(&report.history, st.svc.clock().now());
    let members = report
        .members
        .into_iter()
        .map(|p| Member {
            done_at: p.done_at.as_ref().map(when).unwrap_or_default(),
            class: state_class(p.state),
            p,
        })
        .collect();
    let caller = op.caller();
    let orgs = super::campaigns::org_choices(&st, &caller).await?;
    Ok(html(
        StatusCode::OK,
        &DetailView {
            layout,
            s: report.summary,
            missing: report.missing,
            members,
            chart,
            can_campaign: caller.can(consentry_domain::Action::Reauthorize, caller.org()),
            orgs,
        },
    ))
}

/// `GET /console/rollouts/{version}/export`: the profiles as CSV, as the API's export.
pub async fn export(
    State(st): State<AppState>,
    op: Operator,
    Path(raw): Path<String>,
) -> Result<Response, ConsoleError> {
    let (version, report) = report(&st, &op, &raw).await?;
    Ok(crate::api::rollouts::csv_response(&report, version))
}

/// The rollout the path names (`raw`: its catalog version), as the account sees it.
async fn report(
    st: &AppState,
    op: &Operator,
    raw: &str,
) -> Result<(u32, RolloutReport), ConsoleError> {
    let version: u32 = raw.parse().map_err(|_| {
        ConsoleError::Domain(consentry_domain::DomainError::NotFound {
            what: "rollout",
            id: raw.chars().take(40).collect(),
        })
    })?;
    let report = Rollouts::new(st.svc.clone())
        .show(&op.caller(), version)
        .await?;
    Ok((version, report))
}

/// The share of profiles done over time as a step line from the first point to `now`, in a 600 × 160
/// plot area (0 % at the bottom).
pub fn chart(points: &[ProgressPoint], now: OffsetDateTime) -> Chart {
    let Some(first) = points.first() else {
        return Chart {
            path: String::new(),
            from: String::new(),
            to: String::new(),
            description: "No profile is in this rollout yet.".into(),
        };
    };
    let start = first.at;
    let end = points.last().map_or(now, |p| p.at).max(now);
    let span = (end - start).as_seconds_f64().max(1.0);
    let x = |t: OffsetDateTime| (t - start).as_seconds_f64() / span * 600.0;
    let y = |p: &ProgressPoint| {
        let share = if p.total == 0 {
            0.0
        } else {
            p.done as f64 / p.total as f64
        };
        160.0 - share * 160.0
    };
    let mut path = String::new();
    let mut last_y = y(first);
    let _ = write!(path, "M0,{last_y:.1}");
    for p in &points[1..] {
        let px = x(p.at);
        let py = y(p);
        let _ = write!(path, " H{px:.1} V{py:.1}");
        last_y = py;
    }
    let _ = write!(path, " H600 V{last_y:.1}");
    let latest = points.last().unwrap_or(first);
    Chart {
        path,
        from: when(&start),
        to: when(&end),
        description: format!(
            "From {} to {}: {} of {} profiles done now.",
            when(&start),
            when(&end),
            latest.done,
            latest.total
        ),
    }
}

/// The CSS class of a state's badge.
fn state_class(s: MemberState) -> &'static str {
    match s {
        MemberState::Done => "valid",
        MemberState::InProgress => "pending",
        MemberState::Failed => "invalid",
        MemberState::NotStarted => "idle",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_steps_up_as_profiles_are_done_and_runs_to_now() {
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let points = [
            ProgressPoint {
                at: t0,
                done: 0,
                total: 2,
            },
            ProgressPoint {
                at: t0 + time::Duration::hours(1),
                done: 1,
                total: 2,
            },
        ];
        let c = chart(&points, t0 + time::Duration::hours(2));
        assert_eq!(c.path, "M0,160.0 H300.0 V80.0 H600 V80.0");
        assert!(c.description.contains("1 of 2 profiles"));
        assert!(chart(&[], t0).path.is_empty());
    }
}
