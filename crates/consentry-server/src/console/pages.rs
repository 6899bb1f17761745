//! Read pages: tenants with their health, the app profiles list, a profile's detail.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use consentry_catalog::PermissionType;
use consentry_domain::{
    Action, CappedCount, HistoryEvent, PageRequest, ProfileFilter, ProfileId, ProfileStatus,
    ProfileView, TenantId,
};
use serde::Deserialize;
use time::OffsetDateTime;

use super::auth::Operator;
use super::error::{ConsoleError, html};
use crate::AppState;

/// Profiles per page of the list.
pub const PAGE_SIZE: u32 = 50;

/// What every page's frame shows.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Signed-in user name.
    pub username: String,
    /// Platform operator (sees every organization).
    pub platform: bool,
    /// The account's role in its organization (`admin` or `viewer`; empty for the platform operator).
    pub role: &'static str,
    /// The session's CSRF token, for the sign-out form.
    pub csrf: String,
    /// Invalid profiles the account can see, up to the count limit (banner when any).
    pub invalid: CappedCount,
    /// The filter `invalid` was counted with, and its counts: a page counting the same reuses them.
    counted: (ProfileFilter, BTreeMap<ProfileStatus, CappedCount>),
}

impl Layout {
    /// The profile counts of `filter` up to the count limit, reusing the frame's when it counted
    /// the same filter.
    async fn counts_of(
        &self,
        st: &AppState,
        filter: &ProfileFilter,
    ) -> Result<BTreeMap<ProfileStatus, CappedCount>, ConsoleError> {
        if *filter == self.counted.0 {
            return Ok(self.counted.1.clone());
        }
        Ok(st
            .svc
            .profile_counts_up_to(filter, st.console.count_limit)
            .await?)
    }
}

impl Layout {
    /// Builds the frame for `op`.
    pub async fn new(st: &AppState, op: &Operator) -> Result<Layout, ConsoleError> {
        // Only the invalid count is shown: counting that status alone is one index range, read up
        // to the count limit (every page shows the banner, so its cost must not grow with the
        // number of invalid profiles).
        let mut invalid = op.filter();
        invalid.statuses = vec![ProfileStatus::Invalid];
        let counts = st
            .svc
            .profile_counts_up_to(&invalid, st.console.count_limit)
            .await?;
        Ok(Layout {
            invalid: counts
                .get(&ProfileStatus::Invalid)
                .copied()
                .unwrap_or_default(),
            counted: (invalid, counts),
            username: op.session.account.username.clone(),
            platform: op.session.account.scope.org().is_none(),
            role: match op.session.account.scope {
                consentry_domain::AccountScope::Platform => "",
                consentry_domain::AccountScope::Organization(_) => op.session.account.role.as_str(),
            },
            csrf: op.session.csrf_token.clone(),
        })
    }
}

/// Formats a time for people (UTC, minutes).
pub fn when(t: &OffsetDateTime) -> String {
    consentry_certs::utc_minutes(*t)
}

/// A status count for a summary.
#[derive(Debug, Clone)]
pub struct Count {
    /// Stable name (CSS class and filter value).
    pub status: &'static str,
    /// Label.
    pub label: &'static str,
    /// How many, up to the count limit.
    pub n: CappedCount,
}

fn counts(map: &BTreeMap<ProfileStatus, CappedCount>) -> Vec<Count> {
    ProfileStatus::ALL
        .into_iter()
        .map(|s| Count {
            status: s.as_str(),
            label: s.label(),
            n: map.get(&s).copied().unwrap_or_default(),
        })
        .collect()
}

/// The sentence under counts of which one stopped at the limit (`None` when all are exact).
fn capped_note(counts: &[&CappedCount]) -> Option<String> {
    counts.iter().find(|c| c.more).map(|c| {
        format!(
            "Counts stop at {}: \u{201c}{c}\u{201d} means more than {}.",
            c.number(),
            c.number()
        )
    })
}

struct TenantRow {
    id: String,
    /// Invalid profiles, when the account may re-authorize them (the "re-authorize all" button).
    reauthorize_all: CappedCount,
    domain: String,
    name: String,
    /// The Microsoft cloud the tenant lives in, by its name (`US Government (GCC High)`).
    cloud: String,
    org: String,
    counts: Vec<Count>,
    total: CappedCount,
    /// Proved to be the organization's (connected by consent, or a consent in it completed).
    verified: bool,
}

#[derive(Template)]
#[template(path = "console/tenants.html")]
struct TenantsPage {
    layout: Layout,
    tenants: Vec<TenantRow>,
    /// "Connect a Microsoft tenant" is shown (the account may, and Consentry's app is configured).
    connect: bool,
    /// The organizations the platform operator chooses from when connecting.
    orgs: Vec<(String, String)>,
    /// Says what `10,000+` means when a count stopped at the limit.
    capped: Option<String>,
}

/// `GET /console`: the organization's tenants with a health summary each.
pub async fn tenants(State(st): State<AppState>, op: Operator) -> Result<Response, ConsoleError> {
    let layout = Layout::new(&st, &op).await?;
    let org = op.session.account.scope.org();
    let orgs: BTreeMap<String, String> = st
        .svc
        .organizations()
        .await?
        .into_iter()
        .map(|o| (o.id.to_string(), o.name))
        .collect();
    let mut rows = Vec::new();
    for t in st.svc.tenants(org).await? {
        let filter = ProfileFilter {
            org_id: org,
            tenant_id: Some(t.id),
            ..ProfileFilter::default()
        };
        let c = st
            .svc
            .profile_counts_up_to(&filter, st.console.count_limit)
            .await?;
        let may = op.caller().can(Action::Reauthorize, Some(t.org_id));
        rows.push(TenantRow {
            reauthorize_all: if may {
                c.get(&ProfileStatus::Invalid).copied().unwrap_or_default()
            } else {
                CappedCount::default()
            },
            id: t.id.to_string(),
            domain: t.primary_domain.to_string(),
            name: t.display_name.clone(),
            cloud: consentry_entra::clouds::Clouds::builtin()
                .get(t.cloud.as_str())
                .map_or_else(|| t.cloud.to_string(), |c| c.name.clone()),
            org: orgs.get(&t.org_id.to_string()).cloned().unwrap_or_default(),
            total: CappedCount::sum(c.values()),
            counts: counts(&c),
            verified: t.verified.is_some(),
        });
    }
    let connect = st.connect.available() && op.caller().can(Action::ManageProfiles, org);
    let capped = capped_note(&rows.iter().map(|r| &r.total).collect::<Vec<_>>());
    Ok(html(
        StatusCode::OK,
        &TenantsPage {
            capped,
            layout,
            tenants: rows,
            connect,
            orgs: if org.is_none() {
                orgs.into_iter().collect()
            } else {
                Vec::new()
            },
        },
    ))
}

/// Query of the profiles list.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    service: Option<String>,
    tenant: Option<String>,
    q: Option<String>,
    after: Option<String>,
}

struct Row {
    view: ProfileView,
    tenant: String,
    last_check: String,
}

struct Opt {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console/profiles.html")]
struct ProfilesPage {
    layout: Layout,
    rows: Vec<Row>,
    statuses: Vec<Opt>,
    services: Vec<Opt>,
    tenants: Vec<Opt>,
    q: String,
    next: Option<String>,
    first: Option<String>,
    summary: Vec<Count>,
    /// Says what `10,000+` means when a count of the summary stopped at the limit.
    capped: Option<String>,
    filtered: bool,
}

fn query_string(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `GET /console/profiles`: filters by status, service and tenant, search, keyset pages.
pub async fn profiles(
    State(st): State<AppState>,
    op: Operator,
    Query(q): Query<ListQuery>,
) -> Result<Response, ConsoleError> {
    let layout = Layout::new(&st, &op).await?;
    let scope_org = op.session.account.scope.org();
    let status = q.status.clone().unwrap_or_default();
    let service = q.service.clone().unwrap_or_default();
    let tenant = q.tenant.clone().unwrap_or_default();
    let search = q.q.clone().unwrap_or_default();
    let mut filter = op.filter();
    if !status.is_empty() {
        let s = ProfileStatus::parse(&status).ok_or_else(|| {
            ConsoleError::BadRequest("unknown status: choose one from the list".into())
        })?;
        filter.statuses = vec![s];
    }
    if !service.is_empty() {
        filter.service = Some(service.clone());
    }
    let tenants = st.svc.tenants(scope_org).await?;
    if !tenant.is_empty() {
        let id = TenantId::parse(&tenant)
            .map_err(|e| ConsoleError::BadRequest(format!("tenant: {e}")))?;
        filter.tenant_id = Some(id);
    }
    if !search.trim().is_empty() {
        filter.search = Some(search.trim().to_string());
    }
    let page = st
        .svc
        .profiles(
            &filter,
            &PageRequest {
                after: q.after.clone().filter(|a| !a.is_empty()),
                limit: PAGE_SIZE,
            },
        )
        .await?;
    let summary = counts(&layout.counts_of(&st, &filter).await?);
    let domains: BTreeMap<String, String> = tenants
        .iter()
        .map(|t| (t.id.to_string(), t.primary_domain.to_string()))
        .collect();
    let catalog = st.svc.catalog();
    let rows = page
        .items
        .into_iter()
        .map(|p| Row {
            tenant: domains
                .get(&p.tenant_id.to_string())
                .cloned()
                .unwrap_or_else(|| p.tenant_id.to_string()),
            last_check: p
                .last_checked_at
                .as_ref()
                .map(when)
                .unwrap_or_else(|| "never".into()),
            view: ProfileView::new(p, catalog),
        })
        .collect();
    let base = [
        ("status", status.as_str()),
        ("service", service.as_str()),
        ("tenant", tenant.as_str()),
        ("q", search.as_str()),
    ];
    let next = page.next_cursor.as_ref().map(|c| {
        let mut v = base.to_vec();
        v.push(("after", c.as_str()));
        query_string(&v)
    });
    let first = q
        .after
        .as_ref()
        .filter(|a| !a.is_empty())
        .map(|_| query_string(&base));
    Ok(html(
        StatusCode::OK,
        &ProfilesPage {
            layout,
            rows,
            statuses: ProfileStatus::ALL
                .into_iter()
                .map(|s| Opt {
                    value: s.as_str().into(),
                    label: s.label().into(),
                    selected: s.as_str() == status,
                })
                .collect(),
            services: catalog
                .services
                .iter()
                .map(|s| Opt {
                    value: s.key.clone(),
                    label: s.name.clone(),
                    selected: s.key == service,
                })
                .collect(),
            tenants: tenants
                .iter()
                .map(|t| Opt {
                    value: t.id.to_string(),
                    label: t.primary_domain.to_string(),
                    selected: t.id.to_string() == tenant,
                })
                .collect(),
            q: search,
            next,
            first,
            capped: capped_note(&summary.iter().map(|c| &c.n).collect::<Vec<_>>()),
            summary,
            filtered: !(status.is_empty() && service.is_empty() && tenant.is_empty())
                || filter.search.is_some(),
        },
    ))
}

struct PermRow {
    name: String,
    kind: &'static str,
    optional: bool,
    granted: bool,
}

struct EventRow {
    at: String,
    actor: String,
    what: &'static str,
    change: String,
    reason: String,
    detail: String,
    /// The evidence read with the event, in one sentence.
    evidence: String,
}

/// The evidence under the reason, ready to show.
struct EvidenceView {
    read_at: String,
    /// Why there is none, when the sign-in logs could not be read.
    unavailable: Option<String>,
    rows: Vec<EvidenceRow>,
}

struct EvidenceRow {
    at: String,
    ip: String,
    result: String,
    policies: String,
}

impl EvidenceView {
    fn new(e: &consentry_domain::Evidence) -> Self {
        use consentry_domain::Evidence as E;
        match e {
            E::Unavailable { read_at, why } => Self {
                read_at: when(read_at),
                unavailable: Some(why.explain()),
                rows: Vec::new(),
            },
            E::SignIns { read_at, entries } => Self {
                read_at: when(read_at),
                unavailable: None,
                rows: entries
                    .iter()
                    .map(|x| {
                        let policies: Vec<String> = x
                            .policies
                            .iter()
                            .filter(|p| p.result != "notApplied" && p.result != "notEnabled")
                            .map(|p| format!("{}: {}", p.display_name, p.result))
                            .collect();
                        EvidenceRow {
                            at: format!(
                                "{}{}",
                                when(&x.at),
                                if x.interactive { " (interactive)" } else { "" }
                            ),
                            ip: x.ip_address.clone().unwrap_or_else(|| "—".into()),
                            result: match (x.error_code, &x.failure_reason) {
                                (Some(c), Some(r)) => format!("AADSTS{c}: {r}"),
                                (Some(c), None) => format!("AADSTS{c}"),
                                (None, Some(r)) => r.clone(),
                                (None, None) => "refused".into(),
                            },
                            policies: if policies.is_empty() {
                                x.conditional_access_status
                                    .clone()
                                    .map(|s| format!("none applied ({s})"))
                                    .unwrap_or_else(|| "—".into())
                            } else {
                                policies.join("; ")
                            },
                        }
                    })
                    .collect(),
            },
        }
    }
}

#[derive(Template)]
#[template(path = "console/profile.html")]
struct ProfilePage {
    layout: Layout,
    v: ProfileView,
    tenant: String,
    perms: Vec<PermRow>,
    extra_granted: Vec<String>,
    functions: Vec<String>,
    /// Whether the app type (or the profile) has scan targets; the row is shown only then.
    has_scan_targets: bool,
    scan_targets: Vec<String>,
    history: Vec<EventRow>,
    cert: Option<(String, String, String)>,
    last_check: String,
    authorized: String,
    notice: Option<String>,
    can_check: bool,
    can_reauthorize: bool,
    evidence: Option<EvidenceView>,
}

/// Query of the detail page (a note after "Check now").
#[derive(Debug, Default, Deserialize)]
pub struct DetailQuery {
    checked: Option<String>,
    cancelled: Option<String>,
}

fn kind_name(k: PermissionType) -> &'static str {
    match k {
        PermissionType::Scope => "Delegated",
        PermissionType::Role => "Application",
    }
}

fn event_what(e: &HistoryEvent) -> &'static str {
    use consentry_domain::EventKind as K;
    match e.kind {
        K::Created => "Created",
        K::StatusChanged => "Status changed",
        K::ReauthorizationStarted => "Re-authorization started",
        K::ReauthorizationCompleted => "Re-authorized",
        K::ReauthorizationFailed => "Re-authorization did not complete",
        K::ReauthorizationExpired => "Re-authorization expired",
    }
}

/// Loads a profile if the operator may do `action` on it: a profile of another organization is "not
/// found", exactly like a missing one; a refused action is "not allowed".
pub async fn visible_profile(
    st: &AppState,
    op: &Operator,
    raw: &str,
    action: Action,
) -> Result<consentry_domain::AppProfile, ConsoleError> {
    let id = ProfileId::parse(raw).map_err(|e| ConsoleError::BadRequest(format!("id: {e}")))?;
    let p = st.svc.profile(id).await?;
    op.caller()
        .may_on(action, "app profile", &id.to_string(), p.org_id)?;
    Ok(p)
}

/// `GET /console/profiles/{id}`.
pub async fn profile(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Result<Response, ConsoleError> {
    let layout = Layout::new(&st, &op).await?;
    let p = visible_profile(&st, &op, &id, Action::Read).await?;
    let caller = op.caller();
    let can_check = caller.can(Action::Check, Some(p.org_id));
    let can_reauthorize = caller.can(Action::Reauthorize, Some(p.org_id));
    let catalog = st.svc.catalog();
    let app = catalog.app_type(&p.app_type);
    let perms: Vec<PermRow> = app
        .map(|a| {
            a.permissions
                .iter()
                .map(|r| PermRow {
                    name: r.name.clone(),
                    kind: kind_name(r.kind),
                    optional: r.optional,
                    granted: p
                        .granted_permissions
                        .iter()
                        .any(|g| g.name == r.name && g.kind == r.kind),
                })
                .collect()
        })
        .unwrap_or_default();
    let extra_granted = p
        .granted_permissions
        .iter()
        .filter(|g| !perms.iter().any(|r| r.name == g.name))
        .map(|g| format!("{} ({})", g.name, kind_name(g.kind)))
        .collect();
    let functions = p
        .functions
        .iter()
        .map(|f| {
            app.and_then(|a| a.function(f))
                .map(|x| x.name.clone())
                .unwrap_or_else(|| f.clone())
        })
        .collect();
    let has_scan_targets =
        app.is_some_and(|a| !a.scan_targets.is_empty()) || !p.scan_targets.is_empty();
    let scan_targets = p
        .scan_targets
        .iter()
        .map(|t| {
            app.and_then(|a| a.scan_target(t))
                .map(|x| x.name.clone())
                .unwrap_or_else(|| t.clone())
        })
        .collect();
    let history = st
        .svc
        .history(p.id, 50)
        .await?
        .iter()
        .map(|e| EventRow {
            at: when(&e.at),
            actor: e.actor.to_string(),
            what: event_what(e),
            change: match (e.from_status, e.to_status) {
                (Some(a), Some(b)) if a != b => format!("{} → {}", a.label(), b.label()),
                (None, Some(b)) => b.label().to_string(),
                _ => String::new(),
            },
            reason: e.reason.as_ref().map(|r| r.summary()).unwrap_or_default(),
            detail: e.detail.clone().unwrap_or_default(),
            evidence: e
                .evidence
                .as_ref()
                .map(|x| format!("Evidence: {}", x.summary()))
                .unwrap_or_default(),
        })
        .collect();
    let evidence = st
        .svc
        .reason_evidence(&p)
        .await?
        .as_ref()
        .map(EvidenceView::new);
    let tenant = st
        .svc
        .tenant(&consentry_domain::TenantRef::Id(p.tenant_id))
        .await
        .map(|t| t.primary_domain.to_string())
        .unwrap_or_else(|_| p.tenant_id.to_string());
    let notice = match (q.checked.as_deref(), q.cancelled.as_deref()) {
        (Some(c), _) => Some(format!(
            "Checked now: {}.",
            match c {
                "valid" => "the profile works",
                "attention" => "the profile works but needs attention",
                "invalid" => "the profile does not work; see the reason below",
                "skipped" => "the profile was not checked (a re-authorization is pending)",
                _ => "Microsoft did not answer in time; the status was left unchanged",
            }
        )),
        (None, Some(_)) => Some(
            "The re-authorization was cancelled; the profile is back in its previous state.".into(),
        ),
        _ => None,
    };
    Ok(html(
        StatusCode::OK,
        &ProfilePage {
            layout,
            cert: p.certificate.as_ref().map(|c| {
                (
                    c.thumbprint.to_string(),
                    c.subject.clone(),
                    when(&c.not_after),
                )
            }),
            last_check: p
                .last_checked_at
                .as_ref()
                .map(when)
                .unwrap_or_else(|| "never".into()),
            authorized: p
                .authorized_at
                .as_ref()
                .map(when)
                .unwrap_or_else(|| "never".into()),
            v: ProfileView::new(p, catalog),
            tenant,
            perms,
            extra_granted,
            functions,
            has_scan_targets,
            scan_targets,
            history,
            notice,
            can_check,
            can_reauthorize,
            evidence,
        },
    ))
}
