//! The audit log on both dialects: the story's audit chapters (append, list per organization with
//! paging, concurrent appends on one chain, tampering detected) and the append-only triggers.
//! PostgreSQL needs `CONSENTRY_TEST_POSTGRES_URL` (`eval "$(scripts/ensure-postgres.sh)"`); without it
//! the PostgreSQL half is skipped with a note, except in CI.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use consentry_domain::Store;
use consentry_domain::audit::{AuditAction, NewAuditEntry};
use consentry_store::{Sealer, SqlStore, story};
use sqlx::AssertSqlSafe;

const KEY: [u8; 32] = [0x42; 32];

type Exec = Box<dyn Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

fn sqlite_exec(pool: sqlx::SqlitePool) -> Exec {
    Box::new(move |sql: String| {
        let pool = pool.clone();
        Box::pin(async move {
            sqlx::query(AssertSqlSafe(sql.clone()))
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        })
    })
}

fn pg_exec(pool: sqlx::PgPool) -> Exec {
    Box::new(move |sql: String| {
        let pool = pool.clone();
        Box::pin(async move {
            sqlx::query(AssertSqlSafe(sql.clone()))
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        })
    })
}

fn one_entry() -> NewAuditEntry {
    NewAuditEntry {
        at: time::OffsetDateTime::now_utc(),
        actor: consentry_domain::Actor::System,
        org_id: None,
        action: AuditAction::MasterKeyRotated,
        target: "master_key".into(),
        detail: serde_json::json!({}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_story_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::open(&url, Sealer::from_key_bytes(&KEY))
            .await
            .unwrap(),
    );
    story::audit_log(store.clone()).await;

    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let e = store.append_audit(&one_entry()).await.unwrap();
    for sql in [
        format!("UPDATE audit_log SET target = 'x' WHERE seq = {}", e.seq),
        format!("DELETE FROM audit_log WHERE seq = {}", e.seq),
    ] {
        let err = sqlx::query(AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .expect_err("the audit log is append-only");
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    for t in ["audit_log_no_update", "audit_log_no_delete"] {
        sqlx::query(AssertSqlSafe(format!("DROP TRIGGER {t}")))
            .execute(&pool)
            .await
            .unwrap();
    }
    story::audit_tampering(store.as_ref(), sqlite_exec(pool)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_story_on_postgres() {
    let Some(admin) = story::postgres_admin_url("PostgreSQL audit story") else {
        return;
    };
    let db = story::TestDatabase::create(&admin, "consentry_test").await;
    let url = db.url.clone();
    {
        let store: Arc<dyn Store> = Arc::new(
            SqlStore::open(&url, Sealer::from_key_bytes(&KEY))
                .await
                .unwrap(),
        );
        story::audit_log(store.clone()).await;
        // A second replica (its own pool) appending at the same time as the first: one chain.
        let replica: Arc<dyn Store> = Arc::new(
            SqlStore::open(&url, Sealer::from_key_bytes(&KEY))
                .await
                .unwrap(),
        );
        let (a, b) = tokio::join!(
            async {
                for _ in 0..20 {
                    store.append_audit(&one_entry()).await.unwrap();
                }
            },
            async {
                for _ in 0..20 {
                    replica.append_audit(&one_entry()).await.unwrap();
                }
            }
        );
        let ((), ()) = (a, b);
        let log = consentry_domain::AuditLog::new(
            replica.clone(),
            Arc::new(consentry_domain::SystemClock),
        );
        assert!(
            log.verify().await.unwrap().is_ok(),
            "two replicas, one chain"
        );

        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let e = store.append_audit(&one_entry()).await.unwrap();
        for sql in [
            format!("UPDATE audit_log SET target = 'x' WHERE seq = {}", e.seq),
            format!("DELETE FROM audit_log WHERE seq = {}", e.seq),
        ] {
            let err = sqlx::query(AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .expect_err("the audit log is append-only");
            assert!(err.to_string().contains("append-only"), "{err}");
        }
        sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
            .execute(&pool)
            .await
            .unwrap();
        story::audit_tampering(store.as_ref(), pg_exec(pool.clone())).await;
        pool.close().await;
    }
}
