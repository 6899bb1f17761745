//! Tests that hold on both dialects alike, each run once on SQLite and once on PostgreSQL (as
//! `<test>::on_sqlite` and `<test>::on_postgres`): a failing history write rolling its profile write
//! back (and history rows not rewritable), bulk inserts writing what one-by-one inserts write, pending re-authorizations taken once across replicas,
//! the schema removing a pending record with its profile, and upgrades of databases as older builds left
//! them (schema 1; the Power Platform scan choices at schema 9; the schedule rows of never-leased profiles at
//! schema 22). PostgreSQL needs
//! `CONSENTRY_TEST_POSTGRES_URL`; without it that half is skipped with a note, except in CI.

use std::sync::Arc;

use consentry_domain::{
    AppProfile, ProfileId, ProfileStatus, ScheduleStore as _, Store, StoreError,
};
use consentry_store::story::{self, created_event, minimal_profile, new_org, new_tenant};
use consentry_store::{Dialect, Sealer, SqlStore};
use sqlx::{AnyConnection, Connection as _};
use time::OffsetDateTime;

const KEY: [u8; 32] = [0x42; 32];

/// Defines, for each shared test `name(url, dialect)`, a module `name` with `on_sqlite` (a fresh file
/// database) and `on_postgres` (a fresh database on the tests' server).
macro_rules! on_both_dialects {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("consentry.db").display());
                super::$name(&url, consentry_store::Dialect::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_postgres() {
                let Some(admin) = consentry_store::story::postgres_admin_url(stringify!($name)) else {
                    return;
                };
                let db = consentry_store::story::TestDatabase::create(&admin, "consentry_test").await;
                super::$name(&db.url, consentry_store::Dialect::Postgres).await;
            }
        }
    )* };
}

on_both_dialects!(
    a_failing_history_write_rolls_the_profile_write_back,
    a_pending_state_is_taken_once_across_replicas,
    the_schema_removes_a_pending_record_with_its_profile,
    a_database_at_schema_1_upgrades_and_keeps_its_data,
    power_platform_scan_functions_become_scan_targets_at_schema_9,
    unscheduled_profiles_join_the_schedule_once_at_schema_22,
    profiles_inserted_in_bulk_are_the_rows_of_one_by_one_inserts,
);

async fn open(url: &str) -> SqlStore {
    SqlStore::open(url, Sealer::from_key_bytes(&KEY))
        .await
        .expect("open the store")
}

/// A plain connection to the same database, to look underneath the store.
async fn raw(url: &str) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(url).await.expect("raw connection")
}

fn dialect_dir(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "sqlite",
        Dialect::Postgres => "postgres",
    }
}

/// The dialect's migrations numbered below `before` (e.g. `"0009"`), applied to the empty database at
/// `url` by hand, as a build of that schema applied them (the same files, so the same checksums);
/// returns the raw connection.
async fn migrated_before(url: &str, dialect: Dialect, before: &str) -> AnyConnection {
    let old = tempfile::tempdir().unwrap();
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(manifest.join("migrations").join(dialect_dir(dialect))).unwrap()
    {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.as_str() < before {
            std::fs::copy(entry.path(), old.path().join(&name)).unwrap();
        }
    }
    let mut c = raw(url).await;
    sqlx::migrate::Migrator::new(old.path())
        .await
        .unwrap()
        .run(&mut c)
        .await
        .unwrap();
    c
}

/// An organization and a tenant written as schema 1 wrote them: their IDs and the time they hold.
async fn old_org_and_tenant(c: &mut AnyConnection) -> (String, String, i64) {
    let org_id = uuid::Uuid::new_v4().to_string();
    let tenant_id = uuid::Uuid::new_v4().to_string();
    let t = OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
    sqlx::query(
        "INSERT INTO organizations (id, name, name_folded, modules, created_at) VALUES ($1, 'Old', 'old', '[]', $2)",
    )
    .bind(&org_id)
    .bind(t)
    .execute(&mut *c)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO tenants (id, org_id, primary_domain, display_name, created_at) \
         VALUES ($1, $2, 'old.onmicrosoft.com', 'Old', $3)",
    )
    .bind(&tenant_id)
    .bind(&org_id)
    .bind(t)
    .execute(&mut *c)
    .await
    .unwrap();
    (org_id, tenant_id, t)
}

/// A valid profile of `app_type` with `functions` (JSON) written as schemas 1 to 8 wrote it: its ID.
async fn old_profile(
    c: &mut AnyConnection,
    (org_id, tenant_id, t): &(String, String, i64),
    app_type: &str,
    functions: &str,
) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO profiles (id, org_id, tenant_id, app_type, service, granted_permissions, functions, status, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, 'insights', '[]', $5, 'valid', $6, $6)",
    )
    .bind(&id)
    .bind(org_id)
    .bind(tenant_id)
    .bind(app_type.to_string())
    .bind(functions.to_string())
    .bind(*t)
    .execute(&mut *c)
    .await
    .unwrap();
    id
}

/// A pending re-authorization of `profile` choosing `functions` (JSON), written before migration 0010:
/// a plaintext nonce column, the secrets blob sealed alone (opening the store seals the nonce into it,
/// so it must open).
async fn old_pending(
    c: &mut AnyConnection,
    state_hash: &str,
    profile: &str,
    functions: &str,
    t: i64,
) {
    let sealed = Sealer::from_key_bytes(&KEY)
        .seal(
            consentry_store::sealer::Binding {
                owner: state_hash,
                kind: "pending",
            },
            b"secrets",
        )
        .unwrap();
    sqlx::query(
        "INSERT INTO pending_authorizations (state_hash, profile_id, started_by, method, leg, sign_in_follows, \
         functions, nonce, previous_status, created_at, expires_at, sealed_secrets) \
         VALUES ($1, $2, '\"System\"', 'user', 'sign_in', 0, $3, 'n', 'valid', $4, $4, $5)",
    )
    .bind(state_hash.to_string())
    .bind(profile.to_string())
    .bind(functions.to_string())
    .bind(t)
    .bind(sealed)
    .execute(&mut *c)
    .await
    .unwrap();
}

async fn a_failing_history_write_rolls_the_profile_write_back(url: &str, dialect: Dialect) {
    let store = open(url).await;
    let org = new_org(&store, "rollback").await;
    let tenant = new_tenant(&store, &org, "rb").await;
    let p = minimal_profile(&tenant, OffsetDateTime::now_utc());
    store.insert_profile(&p, created_event(&p)).await.unwrap();

    // Make the history insert fail whenever the detail says so.
    let mut c = raw(url).await;
    let trigger = match dialect {
        Dialect::Sqlite => {
            "CREATE TRIGGER fail_history BEFORE INSERT ON profile_history WHEN NEW.detail = 'boom' \
             BEGIN SELECT RAISE(ABORT, 'history write failed'); END"
        }
        Dialect::Postgres => {
            "CREATE FUNCTION fail_history() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN RAISE EXCEPTION 'history write failed'; END; $$; \
             CREATE TRIGGER fail_history BEFORE INSERT ON profile_history \
             FOR EACH ROW WHEN (NEW.detail = 'boom') EXECUTE FUNCTION fail_history();"
        }
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(trigger))
        .execute(&mut c)
        .await
        .unwrap();

    let q = minimal_profile(&tenant, OffsetDateTime::now_utc());
    let mut boom = created_event(&q);
    boom.detail = Some("boom".into());
    assert!(matches!(
        store.insert_profile(&q, boom).await,
        Err(StoreError::Backend(_))
    ));
    assert_eq!(
        store.get_profile(q.id).await.unwrap(),
        None,
        "the profile insert was rolled back"
    );
    assert_eq!(
        store.check_schedule(q.id).await.unwrap(),
        None,
        "its schedule row with it"
    );

    let changed = AppProfile {
        status: ProfileStatus::Valid,
        reason: None,
        ..p.clone()
    };
    let mut boom = created_event(&changed);
    boom.detail = Some("boom".into());
    assert!(store.save_profile(&changed, Some(boom)).await.is_err());
    assert_eq!(
        store.get_profile(p.id).await.unwrap(),
        Some(p.clone()),
        "the save was rolled back"
    );
    assert_eq!(store.list_history(p.id, 10).await.unwrap().len(), 1);

    // History rows cannot be rewritten.
    let r = sqlx::query("UPDATE profile_history SET detail = 'rewritten'")
        .execute(&mut c)
        .await;
    let err = r.expect_err("profile_history is append-only");
    assert!(err.to_string().contains("append-only"), "{err}");
    c.close().await.unwrap();
    store.close().await;
}

/// Two stores on one database stand for two replicas behind a load balancer.
async fn a_pending_state_is_taken_once_across_replicas(url: &str, _: Dialect) {
    let replicas = [Arc::new(open(url).await), Arc::new(open(url).await)];
    let org = new_org(replicas[0].as_ref(), "replicas").await;
    let tenant = new_tenant(replicas[0].as_ref(), &org, "rp").await;
    let p = minimal_profile(&tenant, OffsetDateTime::now_utc());
    replicas[0]
        .insert_profile(&p, created_event(&p))
        .await
        .unwrap();
    for round in 0..10 {
        let record = story::full_pending(p.id, OffsetDateTime::now_utc());
        replicas[round % 2].put_pending(&record).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let store = Arc::clone(&replicas[i % 2]);
            let state_hash = record.state_hash.clone();
            tasks.push(tokio::spawn(async move {
                store.take_pending(&state_hash, story::hold_until()).await
            }));
        }
        let mut winners = 0;
        for t in tasks {
            let got = t.await.unwrap().expect("a concurrent take must not fail");
            if let Some(got) = got {
                story::assert_same_pending(&got, &record, "taken across replicas");
                winners += 1;
            }
        }
        assert_eq!(
            winners, 1,
            "round {round}: exactly one of 16 takes on two replicas gets the record"
        );
    }
    for r in &replicas {
        r.close().await;
    }
}

/// Independent of `delete_profile`: a profile row deleted by any means takes its pending record along.
async fn the_schema_removes_a_pending_record_with_its_profile(url: &str, dialect: Dialect) {
    let store = open(url).await;
    let org = new_org(&store, "cascade").await;
    let tenant = new_tenant(&store, &org, "cs").await;
    let gone = minimal_profile(&tenant, OffsetDateTime::now_utc());
    let kept = minimal_profile(&tenant, OffsetDateTime::now_utc());
    for p in [&gone, &kept] {
        store.insert_profile(p, created_event(p)).await.unwrap();
        store
            .put_pending(&story::full_pending(p.id, OffsetDateTime::now_utc()))
            .await
            .unwrap();
    }
    let mut c = raw(url).await;
    if dialect == Dialect::Sqlite {
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(
            fk, 1,
            "the raw connection enforces foreign keys, as the store's do"
        );
    }
    sqlx::query("DELETE FROM profiles WHERE id = $1")
        .bind(gone.id.to_string())
        .execute(&mut c)
        .await
        .unwrap();
    let left: Vec<String> = sqlx::query_scalar("SELECT profile_id FROM pending_authorizations")
        .fetch_all(&mut c)
        .await
        .unwrap();
    assert_eq!(left, vec![kept.id.to_string()]);
    c.close().await.unwrap();
    store.close().await;
}

async fn a_database_at_schema_1_upgrades_and_keeps_its_data(url: &str, dialect: Dialect) {
    // Schema 1 exactly as an older build applied it.
    let mut c = migrated_before(url, dialect, "0002").await;
    let owners = old_org_and_tenant(&mut c).await;
    let profile_id = old_profile(&mut c, &owners, "m365-all", "[]").await;
    c.close().await.unwrap();

    let store = open(url).await;
    let v = store.schema_version().await.unwrap();
    assert_eq!(v.applied, Some(v.latest));
    assert!(
        v.latest >= 2,
        "the pending-authorization migration is applied"
    );
    let id = ProfileId::parse(&profile_id).unwrap();
    let p = store
        .get_profile(id)
        .await
        .unwrap()
        .expect("the old profile");
    assert_eq!(p.status, ProfileStatus::Valid);
    let record = story::full_pending(id, OffsetDateTime::now_utc());
    store.put_pending(&record).await.unwrap();
    let got = store
        .take_pending(&record.state_hash, story::hold_until())
        .await
        .unwrap()
        .unwrap();
    story::assert_same_pending(&got, &record, "pending record on an upgraded database");
    store.close().await;
}

/// Migration 0009: the Power Platform app types' scan choices, stored as functions gated by modules up to
/// schema 8, move to `scan_targets` (as the scan targets they stood for); other functions stay.
async fn power_platform_scan_functions_become_scan_targets_at_schema_9(
    url: &str,
    dialect: Dialect,
) {
    let mut c = migrated_before(url, dialect, "0009").await;
    let owners = old_org_and_tenant(&mut c).await;
    let platform = r#"["environments","connections","power-apps","solutions","power-automate","copilot-studio"]"#;
    let all = r#"["environments","connections","power-apps","solutions","power-automate","copilot-studio","power-bi"]"#;
    // (app type, functions at schema 8, functions after, scan targets after)
    let rows = [
        (
            "insights-power-platform",
            r#"["scan-power-platform","scan-power-bi"]"#,
            "[]",
            all,
        ),
        (
            "cloud-governance-power-platform",
            r#"["scan-power-bi","scan-power-platform"]"#,
            "[]",
            all,
        ),
        (
            "fly-power-platform",
            r#"["scan-power-bi"]"#,
            "[]",
            r#"["power-bi"]"#,
        ),
        (
            "enpower-power-platform",
            r#"["scan-power-platform"]"#,
            "[]",
            platform,
        ),
        (
            "enpower-power-platform",
            r#"["scan-power-bi"]"#,
            "[]",
            r#"["power-bi"]"#,
        ),
        ("cloud-governance-power-platform", "[]", "[]", "[]"),
        (
            "cloud-backup-delegated",
            r#"["protect-power-bi"]"#,
            r#"["protect-power-bi"]"#,
            "[]",
        ),
    ];
    let mut ids = Vec::new();
    for (app_type, functions, _, _) in rows {
        ids.push(old_profile(&mut c, &owners, app_type, functions).await);
    }
    // Pending re-authorizations of a profile that chose Power BI scanning and of one that chose
    // Power Platform scanning.
    let pending = [
        (
            "a".repeat(64),
            &ids[0],
            r#"["scan-power-bi"]"#,
            r#"["power-bi"]"#,
        ),
        (
            "b".repeat(64),
            &ids[3],
            r#"["scan-power-platform"]"#,
            platform,
        ),
    ];
    for (state_hash, profile, functions, _) in &pending {
        old_pending(&mut c, state_hash, profile, functions, owners.2).await;
    }
    c.close().await.unwrap();

    let store = open(url).await;
    let v = store.schema_version().await.unwrap();
    assert_eq!(v.applied, Some(v.latest));
    for ((app_type, _, functions, targets), id) in rows.iter().zip(&ids) {
        let p = store
            .get_profile(ProfileId::parse(id).unwrap())
            .await
            .unwrap()
            .expect("the old profile");
        let want_functions: Vec<String> = serde_json::from_str(functions).unwrap();
        let want_targets: Vec<String> = serde_json::from_str(targets).unwrap();
        assert_eq!(p.functions, want_functions, "{app_type}: functions");
        assert_eq!(p.scan_targets, want_targets, "{app_type}: scan targets");
    }
    let mut c = raw(url).await;
    for (_, profile, _, want_targets) in &pending {
        let (functions, targets): (String, String) = sqlx::query_as(
            "SELECT functions, scan_targets FROM pending_authorizations WHERE profile_id = $1",
        )
        .bind(profile.to_string())
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!(functions, "[]");
        assert_eq!(&targets, want_targets);
    }
    c.close().await.unwrap();
    store.close().await;
}

/// Migration 0022: up to schema 21 the monitor's lease scheduled the profiles it had not seen yet; now the
/// row is written with the profile, so the migration schedules, once, every profile without a row (due
/// since its creation) and leaves the rows there are as they were.
async fn unscheduled_profiles_join_the_schedule_once_at_schema_22(url: &str, dialect: Dialect) {
    let mut c = migrated_before(url, dialect, "0022").await;
    let owners = old_org_and_tenant(&mut c).await;
    let never_leased = old_profile(&mut c, &owners, "m365-all", "[]").await;
    let leased = old_profile(&mut c, &owners, "m365-all", "[]").await;
    let t = owners.2;
    let until = t + 3_600_000_000_000;
    sqlx::query(
        "INSERT INTO check_schedule (profile_id, tenant_id, next_check_at, lease_owner, lease_until, \
         transient_failures, last_error) VALUES ($1, $2, $3, 'monitor-old', $4, 2, 'Microsoft answered 503')",
    )
    .bind(&leased)
    .bind(&owners.1)
    .bind(t)
    .bind(until)
    .execute(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();

    let store = open(url).await;
    let at = |ns: i64| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).unwrap();
    let never_leased = ProfileId::parse(&never_leased).unwrap();
    let leased = ProfileId::parse(&leased).unwrap();
    let s = store.check_schedule(never_leased).await.unwrap().unwrap();
    assert_eq!(s.next_check_at, at(t), "due since its creation");
    assert_eq!((s.lease_owner, s.transient_failures), (None, 0));
    let s = store.check_schedule(leased).await.unwrap().unwrap();
    assert_eq!(
        s.lease_owner.as_deref(),
        Some("monitor-old"),
        "kept as it was"
    );
    assert_eq!(s.lease_until, Some(at(until)));
    assert_eq!(s.transient_failures, 2);
    // Only the newly scheduled profile is free to lease now.
    let got = store
        .lease_due_checks("w", at(t + 1), 10, time::Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|l| l.profile_id).collect::<Vec<_>>(),
        vec![never_leased]
    );
    store.close().await;
}

/// `SqlStore::insert_profiles` (the benchmark's seed) writes what `insert_profile` and `put_secret` write:
/// the profile, its schedule row, its history event, its secrets sealed for their own row; across the
/// 500-row statements; all or nothing.
async fn profiles_inserted_in_bulk_are_the_rows_of_one_by_one_inserts(url: &str, _: Dialect) {
    use consentry_domain::SecretKind;
    use consentry_store::NewProfileRows;
    use secrecy::{ExposeSecret as _, SecretSlice};
    let store = open(url).await;
    let org = new_org(&store, "bulk").await;
    let tenant = new_tenant(&store, &org, "bulk").await;
    let t0 = OffsetDateTime::now_utc();
    let profiles: Vec<AppProfile> = (0..1203)
        .map(|i| {
            if i % 2 == 0 {
                story::full_profile(&tenant, t0 + time::Duration::nanoseconds(i))
            } else {
                minimal_profile(&tenant, t0 + time::Duration::nanoseconds(i))
            }
        })
        .collect();
    let events: Vec<_> = profiles.iter().map(created_event).collect();
    let certificate = SecretSlice::from(b"certificate blob".to_vec());
    let refresh = SecretSlice::from(b"refresh token".to_vec());
    let both = [
        (SecretKind::ClientCertificate, &certificate),
        (SecretKind::RefreshToken, &refresh),
    ];
    let rows: Vec<NewProfileRows<'_>> = profiles
        .iter()
        .zip(&events)
        .enumerate()
        .map(|(i, (profile, event))| NewProfileRows {
            profile,
            event,
            secrets: if i % 3 == 0 { &both[..1] } else { &both[..] },
        })
        .collect();
    store.insert_profiles(&rows).await.unwrap();
    for (i, p) in profiles.iter().enumerate() {
        assert_eq!(store.get_profile(p.id).await.unwrap().as_ref(), Some(p));
        let history = store.list_history(p.id, 10).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].kind, events[i].kind);
        let s = store.check_schedule(p.id).await.unwrap().unwrap();
        assert_eq!((s.next_check_at, s.lease_owner), (p.created_at, None));
        let cert = store
            .get_secret(p.id, SecretKind::ClientCertificate)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cert.expose_secret(), b"certificate blob");
        let rt = store
            .get_secret(p.id, SecretKind::RefreshToken)
            .await
            .unwrap();
        assert_eq!(rt.is_some(), i % 3 != 0);
    }
    // A batch holding one existing profile writes nothing.
    let fresh = minimal_profile(&tenant, t0);
    let fresh_event = created_event(&fresh);
    let again = [
        NewProfileRows {
            profile: &fresh,
            event: &fresh_event,
            secrets: &both[..],
        },
        rows[7],
    ];
    assert!(matches!(
        store.insert_profiles(&again).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.get_profile(fresh.id).await.unwrap(), None);
    assert_eq!(store.check_schedule(fresh.id).await.unwrap(), None);
    store.close().await;
}
