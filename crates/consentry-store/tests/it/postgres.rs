//! The store on PostgreSQL: the behaviour story, migrations, reopening, secrets at rest (never
//! plaintext in any column, pending re-authorizations' included), concurrent writers, byte-order
//! collation of IDs, and TLS settings taken from the URL. What holds on both dialects alike (rollback of
//! a failed history write, taking across replicas, upgrades of older schemas) is in `both.rs`.
//!
//! Needs `CONSENTRY_TEST_POSTGRES_URL`, an admin URL of a role with CREATEDB (`scripts/ensure-postgres.sh`
//! prints one; `scripts/test.sh` sets it). Each test creates a database of its own under a random name
//! and drops it afterwards, also when the test fails. Without the variable the tests are skipped with a
//! note, except in CI (`CI` set), where they fail: CI must run the PostgreSQL story.

use std::future::Future;
use std::sync::Arc;

use consentry_domain::{PendingAuthorization, SecretKind, Store, StoreError};
use consentry_store::story::with_database;
use consentry_store::story::{self, created_event, full_profile, new_org, new_tenant};
use consentry_store::{Dialect, Sealer, SqlStore};
use secrecy::{ExposeSecret as _, SecretSlice};
use sqlx::{Connection as _, PgConnection};
use time::OffsetDateTime;

const KEY: [u8; 32] = [0x42; 32];

/// Runs `test` with the URL of a fresh database, dropped afterwards (also when `test` panics). Does
/// nothing when PostgreSQL tests are skipped.
async fn on_fresh_database<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(admin) = story::postgres_admin_url("PostgreSQL story") else {
        return;
    };
    let db = story::TestDatabase::create(&admin, "consentry_test").await;
    test(db.url.clone()).await;
}

async fn open(url: &str) -> SqlStore {
    SqlStore::open(url, Sealer::from_key_bytes(&KEY))
        .await
        .expect("open the PostgreSQL store")
}

async fn raw(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("raw connection")
}

#[test]
fn the_database_is_swapped_in_the_url() {
    assert_eq!(
        with_database("postgres://u:p@127.0.0.1:5432/postgres", "t1"),
        "postgres://u:p@127.0.0.1:5432/t1"
    );
    assert_eq!(
        with_database(
            "postgresql://u@db.example/postgres?sslmode=verify-full",
            "t2"
        ),
        "postgresql://u@db.example/t2?sslmode=verify-full"
    );
    assert_eq!(
        with_database("postgres://u@localhost", "t3"),
        "postgres://u@localhost/t3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_on_postgres() {
    on_fresh_database(|url| async move {
        let store = open(&url).await;
        assert_eq!(store.dialect(), Dialect::Postgres);
        story::run(&store).await;
        // The story never assumes an empty database: chapters pass again over the first run's data.
        story::organizations(&store).await;
        story::filters_and_search(&store).await;
        story::pagination(&store, 150).await;
        story::counts(&store).await;
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn migrations_apply_once_and_again_as_a_no_op() {
    on_fresh_database(|url| async move {
        let store = open(&url).await;
        store.ping().await.expect("an open store answers");
        let v = store.schema_version().await.unwrap();
        assert_eq!(v.applied, Some(v.latest), "open applies every migration");
        assert!(v.latest >= 1);

        let count = |url: String| async move {
            let mut c = raw(&url).await;
            let n: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
            n
        };
        let before = count(url.clone()).await;
        assert!(before >= 1);
        store.migrate().await.expect("migrate again");
        store.migrate().await.expect("and again");
        assert_eq!(
            count(url.clone()).await,
            before,
            "re-running migrations records nothing new"
        );

        // Reopening migrates nothing either, and keeps the data.
        let org = new_org(&store, "reopen").await;
        store.close().await;
        let again = open(&url).await;
        assert_eq!(again.schema_version().await.unwrap(), v);
        assert_eq!(count(url.clone()).await, before);
        assert_eq!(again.get_organization(org.id).await.unwrap(), Some(org));

        // A database migrated by a newer build is refused.
        let mut c = raw(&url).await;
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99990101000000, 'from the future', TRUE, '\\x00', 0)",
        )
        .execute(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
        again.close().await;
        let err = SqlStore::open(&url, Sealer::from_key_bytes(&KEY))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn ids_sort_in_byte_order_whatever_the_server_locale() {
    on_fresh_database(|url| async move {
        let _store = open(&url).await;
        let mut c = raw(&url).await;
        // Under a linguistic collation 'a-b' sorts after 'a_c' or not depending on the locale; "C" is
        // byte order, as in SQLite.
        let collations: Vec<(String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND column_name IN ('id', 'org_id', 'tenant_id', 'profile_id', \
             'name_folded', 'primary_domain', 'state_hash') AND collation_name IS DISTINCT FROM 'C'",
        )
        .fetch_all(&mut c)
        .await
        .unwrap();
        assert!(
            collations.is_empty(),
            "columns without COLLATE \"C\": {collations:?}"
        );
        // Positive control: the same query does see the ID, folded-name, domain and state-hash columns (twelve
        // in 0001-0002, two more in 0004's operator accounts; later migrations may add more).
        let with_c: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() \
             AND column_name IN ('id', 'org_id', 'tenant_id', 'profile_id', 'name_folded', 'primary_domain', \
             'state_hash') AND collation_name = 'C' AND table_name <> '_sqlx_migrations'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert!(with_c >= 14, "only {with_c} columns with COLLATE \"C\" seen");
        let ordered: Vec<String> = sqlx::query_scalar(
            "SELECT v COLLATE \"C\" FROM (VALUES ('B'), ('a'), ('_'), ('-'), ('A')) AS t (v) ORDER BY 1",
        )
        .fetch_all(&mut c)
        .await
        .unwrap();
        assert_eq!(ordered, ["-", "A", "B", "_", "a"]);
    })
    .await;
}

#[tokio::test]
async fn no_secret_is_ever_in_the_database_in_plaintext() {
    on_fresh_database(|url| async move {
        let store = open(&url).await;
        let org = new_org(&store, "canary").await;
        let tenant = new_tenant(&store, &org, "ca").await;
        let p = full_profile(&tenant, OffsetDateTime::now_utc());
        store.insert_profile(&p, created_event(&p)).await.unwrap();
        let canary = format!("RT-PLAINTEXT-CANARY-{}", uuid::Uuid::new_v4().simple());
        let key_canary = format!(
            "-----BEGIN PRIVATE KEY-----KEY-PLAINTEXT-CANARY-{}",
            uuid::Uuid::new_v4().simple()
        );
        for (kind, secret) in [
            (SecretKind::RefreshToken, &canary),
            (SecretKind::ClientCertificate, &key_canary),
        ] {
            store
                .put_secret(p.id, kind, &SecretSlice::from(secret.clone().into_bytes()))
                .await
                .unwrap();
        }
        // A pending re-authorization's secrets (PKCE verifier, a custom app's .pfx password): sealed too.
        let pending_canary = format!("PKCE-PLAINTEXT-CANARY-{}", uuid::Uuid::new_v4().simple());
        // The OpenID Connect nonce too (docs/SECURITY.md: everything but the state hash is sealed).
        let nonce_canary = format!("NONCE-PLAINTEXT-CANARY-{}", uuid::Uuid::new_v4().simple());
        let pending = PendingAuthorization {
            secrets: SecretSlice::from(pending_canary.clone().into_bytes()),
            nonce: nonce_canary.clone(),
            ..story::full_pending(p.id, OffsetDateTime::now_utc())
        };
        store.put_pending(&pending).await.unwrap();
        let upn = p.consent_user.as_ref().unwrap().upn.to_string();
        let owner = p.id.to_string();

        let mut c = raw(&url).await;
        // Positive control: the same kind of search finds ordinary data in the profile's row.
        let profile_text: String =
            sqlx::query_scalar("SELECT t::text FROM profiles AS t WHERE t.id = $1")
                .bind(&owner)
                .fetch_one(&mut c)
                .await
                .unwrap();
        assert!(
            profile_text.contains(&upn),
            "the UPN should be in the profile row's text, or this test reads the wrong thing"
        );

        // The sealed column, as bytes.
        let sealed: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT sealed FROM secrets WHERE profile_id = $1")
                .bind(&owner)
                .fetch_all(&mut c)
                .await
                .unwrap();
        assert_eq!(sealed.len(), 2);
        // Every column of every secrets row, as text (bytea shows as hex there, so look for that too).
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT t::text FROM secrets AS t WHERE t.profile_id = $1")
                .bind(&owner)
                .fetch_all(&mut c)
                .await
                .unwrap();
        assert_eq!(rows.len(), 2);
        for needle in [canary.as_str(), key_canary.as_str(), "PLAINTEXT-CANARY"] {
            let hex_needle = hex::encode(needle);
            for bytes in &sealed {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "a secret in plaintext in the sealed column"
                );
            }
            for row in &rows {
                assert!(
                    row.contains(&owner),
                    "the row text names its profile: {row}"
                );
                assert!(!row.contains(needle), "a secret in plaintext in {row}");
                assert!(
                    !row.contains(&hex_needle),
                    "a secret merely hex-encoded in {row}"
                );
            }
        }
        // The pending record's row, as text and its sealed column as bytes; its state hash (the one value
        // kept in the clear) shows as the positive control.
        let pending_row: String = sqlx::query_scalar(
            "SELECT t::text FROM pending_authorizations AS t WHERE t.profile_id = $1",
        )
        .bind(&owner)
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert!(
            pending_row.contains(&pending.state_hash),
            "the state hash should be in the pending row's text, or this test reads the wrong thing"
        );
        let pending_sealed: Vec<u8> = sqlx::query_scalar(
            "SELECT sealed_secrets FROM pending_authorizations WHERE profile_id = $1",
        )
        .bind(&owner)
        .fetch_one(&mut c)
        .await
        .unwrap();
        for needle in [
            pending_canary.as_str(),
            nonce_canary.as_str(),
            "PLAINTEXT-CANARY",
        ] {
            assert!(
                !pending_row.contains(needle),
                "a pending secret in plaintext in {pending_row}"
            );
            assert!(
                !pending_row.contains(&hex::encode(needle)),
                "a pending secret merely hex-encoded in {pending_row}"
            );
            assert!(
                !pending_sealed
                    .windows(needle.len())
                    .any(|w| w == needle.as_bytes()),
                "a pending secret in plaintext in the sealed column"
            );
        }
        c.close().await.unwrap();

        // And the store opens them again.
        for (kind, secret) in [
            (SecretKind::RefreshToken, &canary),
            (SecretKind::ClientCertificate, &key_canary),
        ] {
            let got = store.get_secret(p.id, kind).await.unwrap().unwrap();
            assert_eq!(got.expose_secret(), secret.as_bytes());
        }
        let got = store
            .pending_for_profile(p.id)
            .await
            .unwrap()
            .expect("the pending record");
        assert_eq!(got.secrets.expose_secret(), pending_canary.as_bytes());
        assert_eq!(got.nonce, nonce_canary);
        // Under another master key they do not open (Sealing), while other data stays readable.
        store.close().await;
        let wrong = SqlStore::open(&url, Sealer::from_key_bytes(&[7; 32]))
            .await
            .unwrap();
        assert!(matches!(
            wrong.get_secret(p.id, SecretKind::RefreshToken).await,
            Err(StoreError::Sealing(_))
        ));
        assert!(matches!(
            wrong
                .take_pending(&pending.state_hash, consentry_store::story::hold_until())
                .await,
            Err(StoreError::Sealing(_))
        ));
        assert_eq!(wrong.get_profile(p.id).await.unwrap(), Some(p.clone()));
        // The failed take left the record for a replica with the key.
        wrong.close().await;
        let keyed = open(&url).await;
        let got = keyed
            .take_pending(&pending.state_hash, consentry_store::story::hold_until())
            .await
            .unwrap()
            .expect("left by the failed take");
        assert_eq!(got.secrets.expose_secret(), pending_canary.as_bytes());
        keyed.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_do_not_fail() {
    on_fresh_database(|url| async move {
        let store = Arc::new(open(&url).await);
        story::concurrent_writers(store.clone()).await;
        store.close().await;
    })
    .await;
}

/// `url` with `params` added to its query.
fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

/// How many of the server's connections to `database` use TLS, and how many do not.
async fn tls_connections(admin_url: &str, database: &str) -> (i64, i64) {
    let mut c = raw(admin_url).await;
    let row: (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE s.ssl), COUNT(*) FILTER (WHERE NOT s.ssl) \
         FROM pg_stat_ssl AS s JOIN pg_stat_activity AS a USING (pid) WHERE a.datname = $1",
    )
    .bind(database)
    .fetch_one(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    row
}

#[tokio::test]
async fn tls_settings_in_the_url_are_honoured() {
    on_fresh_database(|url| async move {
        let mut c = raw(&url).await;
        let ssl: String = sqlx::query_scalar("SHOW ssl").fetch_one(&mut c).await.unwrap();
        let cert_file: String = sqlx::query_scalar("SHOW ssl_cert_file")
            .fetch_one(&mut c)
            .await
            .unwrap();
        let database: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
        if ssl != "on" {
            eprintln!("TLS checks skipped: the PostgreSQL server has ssl = {ssl}");
            return;
        }
        let admin = with_database(&url, "postgres");

        // Encrypted when the URL asks for it, and not when it forbids it.
        let store = open(&with_params(&url, "sslmode=require")).await;
        let (tls, plain) = tls_connections(&admin, &database).await;
        assert!(tls >= 1 && plain == 0, "sslmode=require: {tls} TLS, {plain} plain connections");
        store.close().await;
        let store = open(&with_params(&url, "sslmode=disable")).await;
        let (tls, plain) = tls_connections(&admin, &database).await;
        assert!(tls == 0 && plain >= 1, "sslmode=disable: {tls} TLS, {plain} plain connections");
        store.close().await;

        // Certificate verification: a server certificate no trusted root vouches for is refused.
        let refused = SqlStore::open(
            &with_params(&url, "sslmode=verify-ca"),
            Sealer::from_key_bytes(&KEY),
        )
        .await;
        assert!(
            matches!(&refused, Err(StoreError::Backend(m)) if m.contains("certificate")),
            "an untrusted server certificate must be refused: {refused:?}"
        );
        // ... and accepted once its issuer is given as the root (the Debian cluster's self-signed one).
        if std::fs::File::open(&cert_file).is_ok() {
            let store = open(&with_params(
                &url,
                &format!("sslmode=verify-ca&sslrootcert={cert_file}"),
            ))
            .await;
            store.ping().await.unwrap();
            store.close().await;
            // verify-full also checks the name: the Debian certificate is issued to `localhost`, so the
            // same server is accepted under that name and refused under 127.0.0.1.
            if url.contains("@127.0.0.1:") {
                let full = format!("sslmode=verify-full&sslrootcert={cert_file}");
                let wrong_name =
                    SqlStore::open(&with_params(&url, &full), Sealer::from_key_bytes(&KEY)).await;
                assert!(
                    matches!(&wrong_name, Err(StoreError::Backend(_))),
                    "verify-full must refuse a certificate for another name: {wrong_name:?}"
                );
                let by_name = url.replacen("@127.0.0.1:", "@localhost:", 1);
                let store = open(&with_params(&by_name, &full)).await;
                store.ping().await.unwrap();
                store.close().await;
            }
        } else {
            eprintln!("verified-TLS check skipped: the server certificate {cert_file} is not readable here");
        }
    })
    .await;
}
