//! PostgreSQL for the binary's tests: the admin URL (skipped outside CI when unset) and a database of a
//! test's own, dropped afterwards.

use consentry_store::story::with_database;
use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

pub const URL_VAR: &str = "CONSENTRY_TEST_POSTGRES_URL";

/// The admin URL, or None when the test is to be skipped (outside CI only; in CI it fails).
pub fn admin_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{URL_VAR} is not set, and CI is: the {test} must run in CI. scripts/test.sh provides PostgreSQL (it \
             runs scripts/ensure-postgres.sh and exports {URL_VAR}); run the tests through it."
        ),
        _ => {
            eprintln!(
                "{test} skipped: {URL_VAR} is not set. Run `eval \"$(scripts/ensure-postgres.sh)\"` first (or \
                 scripts/test.sh) to include it."
            );
            None
        }
    }
}

/// A database of the test's own; dropped (with its connections) when this goes out of scope.
pub struct TestDb {
    admin_url: String,
    name: String,
    /// Its URL.
    pub url: String,
}

impl TestDb {
    pub async fn create(admin_url: &str, prefix: &str) -> TestDb {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("connect to {URL_VAR}'s server: {e}"));
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("create database {name} (the role needs CREATEDB): {e}"));
        admin.close().await.unwrap();
        TestDb {
            admin_url: admin_url.to_string(),
            url: with_database(admin_url, &name),
            name,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        // A thread of its own: Drop may run inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = PgConnection::connect(&admin).await {
                    let _ = sqlx::query(AssertSqlSafe(format!(
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
