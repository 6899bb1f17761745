//! The dynamically built profile queries: a [`ProfileFilter`] (and a keyset bound) as `WHERE`
//! conditions with numbered placeholders, for listing and counting profiles.

use consentry_domain::{ProfileFilter, ProfileStatus};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::profiles::PROFILE_COLUMNS;
use crate::codec::escape_like;

/// A bound value of a dynamically built query.
#[derive(Debug, Clone)]
pub(super) enum Arg {
    Text(String),
    Int(i64),
    /// A text that may be NULL.
    OptText(Option<String>),
    Bytes(Vec<u8>),
}

/// A query being built with numbered `$n` placeholders (accepted by SQLite and PostgreSQL alike).
#[derive(Debug, Default)]
pub(super) struct Built {
    pub(super) sql: String,
    pub(super) args: Vec<Arg>,
}

impl Built {
    /// Adds an argument and returns its placeholder.
    pub(super) fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    pub(super) fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
        let mut q = sqlx::query(AssertSqlSafe(self.sql.clone()));
        for a in &self.args {
            q = match a {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
                Arg::OptText(s) => q.bind(s.clone()),
                Arg::Bytes(b) => q.bind(b.clone()),
            };
        }
        q
    }
}

/// Appends the `WHERE` conditions of `filter` (and an optional keyset bound) to `b`.
fn push_filter(b: &mut Built, filter: &ProfileFilter, after: Option<(i64, Uuid)>) {
    let mut conds: Vec<String> = Vec::new();
    if let Some(org) = filter.org_id {
        let p = b.arg(Arg::Text(org.to_string()));
        conds.push(format!("org_id = {p}"));
    }
    if let Some(t) = filter.tenant_id {
        let p = b.arg(Arg::Text(t.to_string()));
        conds.push(format!("tenant_id = {p}"));
    }
    if !filter.statuses.is_empty() {
        let mut seen: Vec<ProfileStatus> = Vec::new();
        let mut ps = Vec::new();
        for s in &filter.statuses {
            if !seen.contains(s) {
                seen.push(*s);
                ps.push(b.arg(Arg::Text(s.as_str().to_string())));
            }
        }
        conds.push(format!("status IN ({})", ps.join(", ")));
    }
    if let Some(s) = &filter.service {
        let p = b.arg(Arg::Text(s.clone()));
        conds.push(format!("service = {p}"));
    }
    if let Some(a) = &filter.app_type {
        let p = b.arg(Arg::Text(a.clone()));
        conds.push(format!("app_type = {p}"));
    }
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let pattern = format!("%{}%", escape_like(&search.to_lowercase()));
        let alts: Vec<String> = ["app_type", "service", "consent_upn", "application_id"]
            .into_iter()
            .map(|col| {
                let p = b.arg(Arg::Text(pattern.clone()));
                format!("LOWER({col}) LIKE {p} ESCAPE '\\'")
            })
            .collect();
        conds.push(format!("({})", alts.join(" OR ")));
    }
    if let Some((at, id)) = after {
        let pa = b.arg(Arg::Int(at));
        let pi = b.arg(Arg::Text(id.hyphenated().to_string()));
        conds.push(format!("(created_at, id) > ({pa}, {pi})"));
    }
    if !conds.is_empty() {
        b.sql.push_str(" WHERE ");
        b.sql.push_str(&conds.join(" AND "));
    }
}

/// The `SELECT` of one page of profiles (fetching one row more than the page to learn whether another follows).
pub(super) fn list_query(filter: &ProfileFilter, after: Option<(i64, Uuid)>, limit: u32) -> Built {
    let mut b = Built {
        sql: format!("SELECT {PROFILE_COLUMNS} FROM profiles"),
        args: Vec::new(),
    };
    push_filter(&mut b, filter, after);
    let pl = b.arg(Arg::Int(i64::from(limit) + 1));
    b.sql
        .push_str(&format!(" ORDER BY created_at, id LIMIT {pl}"));
    b
}

pub(super) fn count_query(filter: &ProfileFilter) -> Built {
    let mut b = Built {
        sql: "SELECT status, COUNT(*) AS n FROM profiles".to_string(),
        args: Vec::new(),
    };
    push_filter(&mut b, filter, None);
    b.sql.push_str(" GROUP BY status");
    b
}

/// The statuses `filter` lets through, each once, in [`ProfileStatus::ALL`]'s order.
pub(super) fn counted_statuses(filter: &ProfileFilter) -> Vec<ProfileStatus> {
    ProfileStatus::ALL
        .into_iter()
        .filter(|s| filter.statuses.is_empty() || filter.statuses.contains(s))
        .collect()
}

/// One row with a column `n0`, `n1`, … per status of `statuses`: how many profiles of that status
/// match `filter`, counting at most `limit + 1` (each a `LIMIT`ed subquery over the status's index
/// range, so the cost stays bounded however many profiles match).
pub(super) fn capped_count_query(
    filter: &ProfileFilter,
    statuses: &[ProfileStatus],
    limit: u64,
) -> Built {
    let mut b = Built::default();
    let mut cols = Vec::with_capacity(statuses.len());
    for (i, s) in statuses.iter().enumerate() {
        let one = ProfileFilter {
            statuses: vec![*s],
            ..filter.clone()
        };
        let mut sub = String::from("(SELECT COUNT(*) FROM (SELECT 1 FROM profiles");
        std::mem::swap(&mut b.sql, &mut sub);
        push_filter(&mut b, &one, None);
        std::mem::swap(&mut b.sql, &mut sub);
        let pl = b.arg(Arg::Int(
            i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX),
        ));
        cols.push(format!("{sub} LIMIT {pl}) AS t{i}) AS n{i}"));
    }
    b.sql = format!("SELECT {}", cols.join(", "));
    b
}

#[cfg(test)]
mod tests {
    use consentry_domain::OrgId;

    use super::*;

    #[test]
    fn filters_build_numbered_placeholders() {
        let filter = ProfileFilter {
            org_id: Some(OrgId::new_random()),
            statuses: vec![
                ProfileStatus::Invalid,
                ProfileStatus::Attention,
                ProfileStatus::Invalid,
            ],
            search: Some(" 50%_X ".into()),
            ..ProfileFilter::default()
        };
        let b = list_query(&filter, Some((5, Uuid::nil())), 10);
        // org, 2 distinct statuses, 4 search columns, 2 keyset values, limit
        assert_eq!(b.args.len(), 10);
        assert!(b.sql.contains("status IN ($2, $3)"), "{}", b.sql);
        assert!(b.sql.contains("(created_at, id) > ($8, $9)"), "{}", b.sql);
        assert!(
            b.sql.ends_with("ORDER BY created_at, id LIMIT $10"),
            "{}",
            b.sql
        );
        assert!(matches!(&b.args[3], Arg::Text(p) if p == "%50\\%\\_x%"));
        assert!(matches!(b.args[9], Arg::Int(11)));
    }

    #[test]
    fn a_capped_count_limits_each_status() {
        let filter = ProfileFilter {
            org_id: Some(OrgId::new_random()),
            statuses: vec![ProfileStatus::Pending, ProfileStatus::Invalid],
            ..ProfileFilter::default()
        };
        let statuses = counted_statuses(&filter);
        assert_eq!(statuses, [ProfileStatus::Invalid, ProfileStatus::Pending]);
        let b = capped_count_query(&filter, &statuses, 10_000);
        assert_eq!(
            b.sql,
            "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM profiles WHERE org_id = $1 AND status IN ($2) \
             LIMIT $3) AS t0) AS n0, (SELECT COUNT(*) FROM (SELECT 1 FROM profiles WHERE org_id = $4 \
             AND status IN ($5) LIMIT $6) AS t1) AS n1"
        );
        assert!(matches!(b.args[2], Arg::Int(10_001)));
        assert!(matches!(&b.args[4], Arg::Text(s) if s == "pending"));
    }
}

#[cfg(test)]
mod plan_tests {
    use consentry_domain::{OrgId, TenantId};
    use sqlx::Row as _;

    use super::super::SqlStore;
    use super::*;
    use crate::sealer::Sealer;

    /// SQLite's plan for a built query, one line per step.
    async fn plan(store: &SqlStore, built: &Built) -> Vec<String> {
        let explain = Built {
            sql: format!("EXPLAIN QUERY PLAN {}", built.sql),
            args: built.args.clone(),
        };
        explain
            .query()
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap())
            .collect()
    }

    #[tokio::test]
    async fn every_single_filter_pages_through_an_index_without_sorting() {
        let store = SqlStore::open("sqlite::memory:", Sealer::from_key_bytes(&[9; 32]))
            .await
            .unwrap();
        let tenant = TenantId::from_uuid(Uuid::new_v4());
        let filters = [
            ProfileFilter::default(),
            ProfileFilter {
                org_id: Some(OrgId::new_random()),
                ..Default::default()
            },
            ProfileFilter {
                tenant_id: Some(tenant),
                ..Default::default()
            },
            ProfileFilter {
                statuses: vec![ProfileStatus::Invalid],
                ..Default::default()
            },
            ProfileFilter {
                service: Some("insights".into()),
                ..Default::default()
            },
            ProfileFilter {
                app_type: Some("m365-all".into()),
                ..Default::default()
            },
            ProfileFilter {
                org_id: Some(OrgId::new_random()),
                statuses: vec![ProfileStatus::Attention],
                ..Default::default()
            },
        ];
        for f in &filters {
            for after in [None, Some((1_700_000_000_000_000_000, Uuid::new_v4()))] {
                let steps = plan(&store, &list_query(f, after, 50)).await;
                let text = steps.join(" | ");
                assert!(text.contains("USING INDEX profiles_by_"), "{f:?}: {text}");
                assert!(!text.contains("TEMP B-TREE"), "{f:?} must not sort: {text}");
            }
        }
    }

    #[tokio::test]
    async fn a_capped_count_reads_a_status_index_range() {
        let store = SqlStore::open("sqlite::memory:", Sealer::from_key_bytes(&[9; 32]))
            .await
            .unwrap();
        for f in [
            ProfileFilter::default(),
            ProfileFilter {
                org_id: Some(OrgId::new_random()),
                statuses: vec![ProfileStatus::Invalid],
                ..Default::default()
            },
            ProfileFilter {
                tenant_id: Some(TenantId::from_uuid(Uuid::new_v4())),
                ..Default::default()
            },
        ] {
            let statuses = counted_statuses(&f);
            let steps = plan(&store, &capped_count_query(&f, &statuses, 100)).await;
            let text = steps.join(" | ");
            assert_eq!(
                text.matches("COVERING INDEX profiles_by_").count(),
                statuses.len(),
                "{f:?}: {text}"
            );
        }
    }
}
