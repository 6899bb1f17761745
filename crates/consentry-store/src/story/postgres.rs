//! PostgreSQL databases of the tests' own: the server's admin URL, a fresh database per test, dropped
//! afterwards.

use super::*;

/// `url` (a PostgreSQL URL) with its database replaced by `database`, keeping user, host and the query
/// (TLS settings): how the PostgreSQL tests reach a database of their own on the configured server.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The variable naming the PostgreSQL server the tests use: an admin URL of a role with CREATEDB
/// (`scripts/ensure-postgres.sh` prints one; `scripts/test.sh` sets it).
pub const POSTGRES_URL_VAR: &str = "CONSENTRY_TEST_POSTGRES_URL";

/// The admin URL of the tests' PostgreSQL server, or `None` (with a printed note) when `what` is to be
/// skipped because the variable is unset. In CI (`CI` set) an unset variable fails the test instead:
/// CI must run every PostgreSQL test.
pub fn postgres_admin_url(what: &str) -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{POSTGRES_URL_VAR} is not set, and CI is: the {what} must run in CI. scripts/test.sh provides \
             PostgreSQL (it runs scripts/ensure-postgres.sh and exports {POSTGRES_URL_VAR}); run the tests through it."
        ),
        _ => {
            eprintln!(
                "{what} skipped: {POSTGRES_URL_VAR} is not set. Run `eval \"$(scripts/ensure-postgres.sh)\"` \
                 first (or scripts/test.sh) to include it."
            );
            None
        }
    }
}

/// A PostgreSQL database of a test's own under a random name, dropped (with its connections) when this
/// goes out of scope — also when the test panics.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// Its URL (the admin URL with the database swapped, TLS settings kept).
    pub url: String,
}

impl TestDatabase {
    /// Creates `{prefix}_{random}` on the server behind `admin_url`.
    pub async fn create(admin_url: &str, prefix: &str) -> TestDatabase {
        use sqlx::Connection as _;
        let name = format!("{prefix}_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("connect to {POSTGRES_URL_VAR}'s server: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("create database {name} (the role needs CREATEDB): {e}"));
        let _ = admin.close().await;
        TestDatabase {
            admin_url: admin_url.to_string(),
            url: with_database(admin_url, &name),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        use sqlx::Connection as _;
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        // A thread and runtime of its own: Drop may run inside the test's runtime, or while it unwinds.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                    let _ = c.close().await;
                }
            });
        })
        .join();
    }
}
