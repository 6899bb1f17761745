//! Throttling (entra-facts §6): token buckets per (app, tenant) for the token endpoint and for
//! Graph's identity-and-access resource units, per app across tenants for Graph, and per (app,
//! tenant) for Graph's identity-and-access reports (`auditLogs/…`). Off unless a scenario's
//! `[settings.throttling]` or the control API (`set_throttling`) turns it on.
//!
//! A bucket holds `limit` units and refills at `limit / window` per second, so a key may burst up to
//! its limit and then goes at the documented rate. A request that does not fit is answered 429 with a
//! truthful `Retry-After`: the whole seconds (rounded up, at least 1) until the bucket holds the
//! request's cost again. Requests made while throttled still count (entra-facts §6.2): a refused
//! request takes its cost too, down to at most one window of debt, so a client that keeps firing
//! only waits longer. The windows run on real time, not the simulated clock (which tests move by days).
//!
//! This module decides; the endpoints (`token`, `graph`) answer, with the bodies of
//! [`crate::faults::error_answer`].

use std::collections::HashMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The limits (`[settings.throttling]` of a scenario; [`ControlOp::SetThrottling`](crate::ControlOp::SetThrottling)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleSettings {
    /// Enforce the limits (default off: nothing is throttled but by fault rules).
    pub enabled: bool,
    /// Token requests per (app, tenant) in `token_window_secs`. Microsoft publishes no limit for
    /// workforce tenants (UNVERIFIED, entra-facts §6.1/§9); the default, 200 per second, is the
    /// order of magnitude Entra External ID documents per tenant.
    pub token_requests: u64,
    /// The token endpoint's window in seconds.
    pub token_window_secs: u64,
    /// Graph identity-and-access resource units per (app, tenant) in `graph_window_secs`; when
    /// absent, by the tenant's size as documented (entra-facts §6.2): 3,500 under 50 users, 5,000 up
    /// to 500, 8,000 above.
    pub graph_units: Option<u64>,
    /// The (app, tenant) window in seconds (documented: 10).
    pub graph_window_secs: u64,
    /// Graph resource units per app across all tenants in `graph_app_window_secs` (documented:
    /// 150,000 per 20 s, entra-facts §6.2).
    pub graph_app_units: u64,
    /// The per-app window in seconds.
    pub graph_app_window_secs: u64,
    /// Identity-and-access reports (`auditLogs/…`, the sign-in logs) requests per (app, tenant)
    /// in `reports_window_secs` (documented: 5 per 10 s, entra-facts §6.2).
    pub reports_requests: u64,
    /// The reports' window in seconds.
    pub reports_window_secs: u64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            token_requests: 200,
            token_window_secs: 1,
            graph_units: None,
            graph_window_secs: 10,
            graph_app_units: 150_000,
            graph_app_window_secs: 20,
            reports_requests: 5,
            reports_window_secs: 10,
        }
    }
}

impl ThrottleSettings {
    /// Checks that every limit and window is positive.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let all = [
            ("token_requests", self.token_requests),
            ("token_window_secs", self.token_window_secs),
            ("graph_units", self.graph_units.unwrap_or(1)),
            ("graph_window_secs", self.graph_window_secs),
            ("graph_app_units", self.graph_app_units),
            ("graph_app_window_secs", self.graph_app_window_secs),
            ("reports_requests", self.reports_requests),
            ("reports_window_secs", self.reports_window_secs),
        ];
        match all.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(format!("throttling: {name} must be at least 1")),
            None => Ok(()),
        }
    }

    /// The (app, tenant) resource units of a tenant with `users` users.
    pub fn graph_units_for(&self, users: usize) -> u64 {
        self.graph_units.unwrap_or(match users {
            0..50 => 3_500,
            50..=500 => 5_000,
            _ => 8_000,
        })
    }
}

/// Which limit a bucket keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Family {
    Token,
    GraphAppTenant,
    GraphApp,
    Reports,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(limit: f64, now: Instant) -> Self {
        Self {
            tokens: limit,
            at: now,
        }
    }

    fn refill(&mut self, limit: f64, window: f64, now: Instant) {
        let rate = limit / window;
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + rate * secs).min(limit);
        self.at = now;
    }

    /// Takes `cost`, also from a request that is refused (requests while throttled count), at most
    /// one window into debt.
    fn take(&mut self, limit: f64, cost: f64) {
        self.tokens = (self.tokens - cost).max(-limit);
    }

    /// Whole seconds (rounded up, at least 1) until `cost` fits again.
    fn wait(&self, limit: f64, window: f64, cost: f64) -> u64 {
        let secs = (cost - self.tokens) / (limit / window);
        secs.ceil().max(1.0) as u64
    }
}

/// How many requests of one key were answered, and how many of them 429.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Requests counted (throttled ones included).
    pub requests: u64,
    /// Their cost (resource units for Graph, requests for the token endpoint).
    pub units: u64,
    /// Requests answered 429 by the limits.
    pub throttled: u64,
    /// Their cost.
    pub throttled_units: u64,
}

/// One key's counts, as `GET /_sim/throttling` and [`SimControl::throttle_counts`](crate::SimControl::throttle_counts) show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThrottleCount {
    /// `token` or `graph`.
    pub service: &'static str,
    /// The app (client ID).
    pub client_id: Uuid,
    /// The tenant.
    pub tenant_id: Uuid,
    /// The counts.
    #[serde(flatten)]
    pub counts: Counts,
}

/// What the limits say about one Graph request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GraphDecision {
    /// Answer it; `used` is the (app, tenant) bucket's use after it (0..=1), for
    /// `x-ms-throttle-limit-percentage`.
    Allowed { units: u64, used: f64 },
    /// Answer 429.
    Throttled {
        units: u64,
        retry_after: u64,
        /// `Tenant_Application` or `Application` (`x-ms-throttle-scope`).
        scope: &'static str,
    },
}

/// One Graph request as the limits see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GraphRequest {
    /// The calling app.
    pub app: Uuid,
    /// The token's tenant.
    pub tenant: Uuid,
    /// The tenant's users (its size sets the default (app, tenant) limit).
    pub users: usize,
    /// The request's resource units.
    pub units: u64,
    /// An identity-and-access report (`auditLogs/…`), limited in requests of its own.
    pub report: bool,
}

/// One limit a Graph request is counted against.
struct Limit {
    family: Family,
    tenant: Option<Uuid>,
    limit: f64,
    window: f64,
    cost: f64,
    scope: &'static str,
}

/// The buckets and counts (part of the simulator's state; not saved).
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    buckets: HashMap<(Family, Uuid, Option<Uuid>), Bucket>,
    counts: HashMap<(&'static str, Uuid, Uuid), Counts>,
}

impl Limiter {
    /// Forgets every bucket and count (new limits start full).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    fn count(&mut self, service: &'static str, app: Uuid, tenant: Uuid, units: u64, hit: bool) {
        let c = self.counts.entry((service, app, tenant)).or_default();
        c.requests += 1;
        c.units += units;
        c.throttled += u64::from(hit);
        if hit {
            c.throttled_units += units;
        }
    }

    /// A token request of `app` in `tenant`: `Some(retry_after)` when it is throttled.
    pub fn token(
        &mut self,
        s: &ThrottleSettings,
        app: Uuid,
        tenant: Uuid,
        now: Instant,
    ) -> Option<u64> {
        let (limit, window) = (s.token_requests as f64, s.token_window_secs as f64);
        let b = self
            .buckets
            .entry((Family::Token, app, Some(tenant)))
            .or_insert_with(|| Bucket::full(limit, now));
        b.refill(limit, window, now);
        let fits = b.tokens >= 1.0;
        b.take(limit, 1.0);
        let hit = (!fits).then(|| b.wait(limit, window, 1.0));
        self.count("token", app, tenant, 1, hit.is_some());
        hit
    }

    /// A Graph request: its (app, tenant) limit (the reports' for a report) and its app's limit.
    pub fn graph(&mut self, s: &ThrottleSettings, r: &GraphRequest, now: Instant) -> GraphDecision {
        let (app, tenant, units) = (r.app, r.tenant, r.units);
        let cost = units as f64;
        let own = if r.report {
            Limit {
                family: Family::Reports,
                tenant: Some(tenant),
                limit: s.reports_requests as f64,
                window: s.reports_window_secs as f64,
                cost: 1.0,
                scope: "Tenant_Application",
            }
        } else {
            Limit {
                family: Family::GraphAppTenant,
                tenant: Some(tenant),
                limit: s.graph_units_for(r.users) as f64,
                window: s.graph_window_secs as f64,
                cost,
                scope: "Tenant_Application",
            }
        };
        let per_app = Limit {
            family: Family::GraphApp,
            tenant: None,
            limit: s.graph_app_units as f64,
            window: s.graph_app_window_secs as f64,
            cost,
            scope: "Application",
        };
        let limits = [own, per_app];
        // Both limits must allow the request; either way both count it.
        let mut own = [true; 2];
        for (i, l) in limits.iter().enumerate() {
            let b = self
                .buckets
                .entry((l.family, app, l.tenant))
                .or_insert_with(|| Bucket::full(l.limit, now));
            b.refill(l.limit, l.window, now);
            own[i] = b.tokens >= l.cost;
        }
        let fits = own.iter().all(|f| *f);
        // The answer names the limit the request did not fit (the longest wait, if both).
        let mut refused: Option<(u64, &'static str)> = None;
        let mut used = 0.0;
        for (i, l) in limits.iter().enumerate() {
            let Some(b) = self.buckets.get_mut(&(l.family, app, l.tenant)) else {
                continue;
            };
            b.take(l.limit, l.cost);
            if i == 0 {
                used = 1.0 - b.tokens / l.limit;
            }
            if !own[i] {
                let wait = b.wait(l.limit, l.window, l.cost);
                if refused.is_none_or(|(w, _)| wait > w) {
                    refused = Some((wait, l.scope));
                }
            }
        }
        self.count("graph", app, tenant, units, !fits);
        match refused {
            Some((retry_after, scope)) => GraphDecision::Throttled {
                units,
                retry_after,
                scope,
            },
            None => GraphDecision::Allowed { units, used },
        }
    }

    /// Every key's counts, by service, client and tenant.
    pub fn counts(&self) -> Vec<ThrottleCount> {
        let mut out: Vec<ThrottleCount> = self
            .counts
            .iter()
            .map(
                |(&(service, client_id, tenant_id), &counts)| ThrottleCount {
                    service,
                    client_id,
                    tenant_id,
                    counts,
                },
            )
            .collect();
        out.sort_by_key(|c| (c.service, c.client_id, c.tenant_id));
        out
    }
}

/// The resource units of a Graph request (entra-facts §6.2): the documented base costs (2 for
/// `applications`, `users`, `oauth2PermissionGrants`, `servicePrincipals/{id}/appRoleAssignments`,
/// a user's `licenseDetails`, `memberOf`, `transitiveMemberOf`; 3 for a group's `members` and
/// `subscribedSkus`; 5 for a group's `transitiveMembers`; 1 for any other GET and for every write),
/// `$select` −1, `$expand` +1, `$top` under 20 −1, at least 1. `path` is after the version, without
/// the leading `/`.
pub(crate) fn graph_units(method: &str, path: &str, query: &str) -> u64 {
    if !method.eq_ignore_ascii_case("GET") {
        return 1;
    }
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| {
            // `applications(appId='…')` is the applications resource.
            s.split('(').next().unwrap_or(s).to_ascii_lowercase()
        })
        .collect();
    let seg = |i: usize| segments.get(i).map(String::as_str).unwrap_or("");
    // `me/…` costs the same as `users/{id}/…`.
    let (user_rel, is_user) = match seg(0) {
        "me" => (seg(1), true),
        "users" if segments.len() >= 3 => (seg(2), true),
        _ => ("", false),
    };
    let base: i64 = match (seg(0), segments.len()) {
        _ if is_user
            && matches!(
                user_rel,
                "licensedetails" | "memberof" | "transitivememberof"
            ) =>
        {
            2
        }
        ("applications", _) => 2,
        ("users", 1) => 2,
        ("oauth2permissiongrants", 1 | 2) => 2,
        ("serviceprincipals", 3) if seg(2) == "approleassignments" => 2,
        ("groups", 3) if seg(2) == "members" => 3,
        ("groups", 3) if seg(2) == "transitivemembers" => 5,
        ("subscribedskus", _) => 3,
        _ => 1,
    };
    let mut cost = base;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.to_ascii_lowercase().as_str() {
            "$select" => cost -= 1,
            "$expand" => cost += 1,
            "$top" if v.parse::<u32>().is_ok_and(|n| n < 20) => cost -= 1,
            _ => {}
        }
    }
    cost.max(1) as u64
}

/// Whether a Graph path is one of the identity-and-access reports (`auditLogs/…`).
pub(crate) fn is_report(path: &str) -> bool {
    path.trim_start_matches('/')
        .get(..9)
        .is_some_and(|p| p.eq_ignore_ascii_case("auditlogs"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn resource_units_follow_the_documented_costs() {
        assert_eq!(
            graph_units("GET", "servicePrincipals", "$filter=appId eq 'x'"),
            1
        );
        assert_eq!(
            graph_units("GET", "servicePrincipals/abc/appRoleAssignments", ""),
            2
        );
        assert_eq!(
            graph_units("GET", "oauth2PermissionGrants", "$filter=clientId eq 'x'"),
            2
        );
        assert_eq!(graph_units("GET", "me/memberOf", ""), 2);
        assert_eq!(graph_units("GET", "users/u1/licenseDetails", ""), 2);
        assert_eq!(
            graph_units(
                "GET",
                "applications(appId='x')",
                "$select=id,keyCredentials"
            ),
            1
        );
        assert_eq!(
            graph_units("GET", "groups/g/transitiveMembers", "$top=5"),
            4
        );
        assert_eq!(graph_units("GET", "organization", "$select=id"), 1);
        assert_eq!(graph_units("GET", "users", "$expand=manager"), 3);
        assert_eq!(graph_units("PATCH", "applications/x", ""), 1);
        assert!(is_report("auditLogs/signIns") && !is_report("applications"));
    }

    #[test]
    fn a_bucket_bursts_to_its_limit_then_answers_a_truthful_retry_after() {
        let s = ThrottleSettings {
            enabled: true,
            token_requests: 3,
            token_window_secs: 6,
            ..ThrottleSettings::default()
        };
        let (app, tenant) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut l = Limiter::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.token(&s, app, tenant, t0), None);
        }
        // Empty: 1 unit refills in 2 s; the refused request counts too, so 2 more (4 s).
        assert_eq!(l.token(&s, app, tenant, t0), Some(4));
        assert_eq!(l.token(&s, app, tenant, t0 + Duration::from_secs(4)), None);
        // Another tenant of the same app has its own bucket.
        assert_eq!(l.token(&s, app, Uuid::from_u128(3), t0), None);
        let c = l.counts();
        assert_eq!(
            c[0].counts,
            Counts {
                requests: 5,
                units: 5,
                throttled: 1,
                throttled_units: 1,
            }
        );
    }

    #[test]
    fn graph_requests_are_limited_per_app_and_tenant_and_per_app() {
        let s = ThrottleSettings {
            enabled: true,
            graph_units: Some(10),
            graph_window_secs: 10,
            graph_app_units: 15,
            graph_app_window_secs: 15,
            ..ThrottleSettings::default()
        };
        let app = Uuid::from_u128(1);
        let (a, b) = (Uuid::from_u128(2), Uuid::from_u128(3));
        // A small tenant's request of `units` for the app.
        let request = |tenant, units| GraphRequest {
            app,
            tenant,
            users: 0,
            units,
            report: false,
        };
        let mut l = Limiter::default();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(matches!(
                l.graph(&s, &request(a, 2), t0),
                GraphDecision::Allowed { .. }
            ));
        }
        match l.graph(&s, &request(a, 2), t0) {
            GraphDecision::Throttled {
                retry_after, scope, ..
            } => {
                assert_eq!(scope, "Tenant_Application");
                // −2 after counting the refused request; 2 units fit again after 4 units: 4 s.
                assert_eq!(retry_after, 4);
            }
            other => panic!("{other:?}"),
        }
        // Tenant b has room of its own, but the app's 15 units across tenants are spent.
        match l.graph(&s, &request(b, 4), t0) {
            GraphDecision::Throttled { scope, .. } => assert_eq!(scope, "Application"),
            other => panic!("{other:?}"),
        }
    }
}
