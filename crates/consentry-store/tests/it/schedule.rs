//! The monitor's schedule on SQLite: new profiles join it due at once, two stores on one database (two
//! monitor processes) never lease the same profile, leases survive reopening (a restart) and run out,
//! releases reschedule and count persisting transient failures.

use std::collections::BTreeSet;
use std::sync::Arc;

use consentry_catalog::Catalog;
use consentry_domain::{
    Actor, CheckRelease, Consentry, DomainName, NewProfile, ProfileId, ScheduleStore, SystemClock,
    TenantId, TenantRef,
};
use consentry_store::{Sealer, SqlStore};
use time::{Duration, OffsetDateTime};

const KEY: [u8; 32] = [7; 32];

async fn open(path: &std::path::Path) -> SqlStore {
    open_url(&format!("sqlite://{}", path.display())).await
}

async fn open_url(url: &str) -> SqlStore {
    SqlStore::open(url, Sealer::from_key_bytes(&KEY))
        .await
        .expect("open")
}

/// Creates `n` profiles in one tenant; returns their IDs.
async fn profiles(store: &SqlStore, n: usize) -> BTreeSet<ProfileId> {
    let svc = Consentry::new(
        Arc::new(store.clone()),
        Arc::new(Catalog::builtin()),
        Arc::new(SystemClock),
    );
    let org = svc.create_organization("Contoso", &[]).await.unwrap();
    let tenant = TenantId::parse("11111111-2222-4333-8444-555555555555").unwrap();
    svc.connect_tenant(
        org.id,
        tenant,
        DomainName::parse("contoso.onmicrosoft.com").unwrap(),
        None,
        consentry_domain::Placement::In(&consentry_domain::CloudKey::global()),
    )
    .await
    .unwrap();
    let mut ids = BTreeSet::new();
    for _ in 0..n {
        let p = svc
            .create_profile(
                NewProfile {
                    tenant: TenantRef::Id(tenant),
                    app_type: "m365-all".into(),
                    service: Some("cloud-backup-m365".into()),
                },
                &Actor::System,
            )
            .await
            .unwrap();
        ids.insert(p.id);
    }
    ids
}

#[tokio::test]
async fn two_monitors_never_lease_the_same_profile_and_leases_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consentry.db");
    let a = open(&path).await;
    let b = open(&path).await;
    let all = profiles(&a, 40).await;
    let now = OffsetDateTime::now_utc();
    let lease = Duration::minutes(5);

    // Both lease concurrently, in small batches, until nothing is due.
    let run = |store: SqlStore, worker: &'static str| async move {
        let mut mine = Vec::new();
        loop {
            let got = store.lease_due_checks(worker, now, 3, lease).await.unwrap();
            if got.is_empty() {
                break;
            }
            mine.extend(got.into_iter().map(|l| l.profile_id));
        }
        mine
    };
    let (ma, mb) = tokio::join!(
        tokio::spawn(run(a.clone(), "monitor-a")),
        tokio::spawn(run(b.clone(), "monitor-b"))
    );
    let (ma, mb) = (ma.unwrap(), mb.unwrap());
    let sa: BTreeSet<_> = ma.iter().copied().collect();
    let sb: BTreeSet<_> = mb.iter().copied().collect();
    assert_eq!(sa.len(), ma.len(), "no profile leased twice by one worker");
    assert!(sa.is_disjoint(&sb), "no profile leased by both workers");
    assert_eq!(&sa | &sb, all, "every due profile leased");

    // "Restart": a new store on the same file sees the leases and the schedule.
    drop(a);
    let a = open(&path).await;
    assert!(
        a.lease_due_checks("monitor-c", now, 100, lease)
            .await
            .unwrap()
            .is_empty(),
        "leased profiles are not handed out again while their lease runs"
    );
    let one = *sa.iter().next().unwrap();
    let s = a.check_schedule(one).await.unwrap().unwrap();
    assert_eq!(s.lease_owner.as_deref(), Some("monitor-a"));

    // Releasing reschedules; only the holder may release.
    let next = now + Duration::hours(1);
    assert!(!a.release_check(one, "monitor-b", next, None).await.unwrap());
    assert!(a.release_check(one, "monitor-a", next, None).await.unwrap());
    let s = a.check_schedule(one).await.unwrap().unwrap();
    assert_eq!(s.lease_owner, None);
    assert_eq!(s.next_check_at.unix_timestamp(), next.unix_timestamp());
    assert!(
        a.lease_due_checks("monitor-c", now + Duration::minutes(1), 100, lease)
            .await
            .unwrap()
            .iter()
            .all(|l| l.profile_id != one),
        "not due before its next check"
    );

    // A lease that runs out (its monitor died mid-sweep) is taken over: nothing is lost.
    let later = now + Duration::minutes(6);
    let taken: BTreeSet<_> = a
        .lease_due_checks("monitor-c", later, 100, lease)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.profile_id)
        .collect();
    let mut expected = all.clone();
    expected.remove(&one);
    assert_eq!(taken, expected);
}

#[tokio::test]
async fn transient_failures_are_counted_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("consentry.db")).await;
    let ids = profiles(&store, 1).await;
    let id = *ids.iter().next().unwrap();
    let now = OffsetDateTime::now_utc();
    let lease = Duration::minutes(5);
    let created = consentry_domain::Store::get_profile(&store, id)
        .await
        .unwrap()
        .unwrap()
        .created_at;
    let s = store.check_schedule(id).await.unwrap().unwrap();
    assert_eq!(
        (s.next_check_at, s.transient_failures),
        (created, 0),
        "scheduled with its creation, due at once"
    );
    for n in 1..=2u32 {
        let t = now + Duration::hours(i64::from(n));
        let got = store.lease_due_checks("m", t, 10, lease).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].tenant_id.to_string(),
            "11111111-2222-4333-8444-555555555555"
        );
        store
            .release_check(id, "m", t, Some("Microsoft answered 503"))
            .await
            .unwrap();
        let s = store.check_schedule(id).await.unwrap().unwrap();
        assert_eq!(s.transient_failures, n);
        assert_eq!(s.last_error.as_deref(), Some("Microsoft answered 503"));
    }
    let t = now + Duration::hours(3);
    store.lease_due_checks("m", t, 10, lease).await.unwrap();
    store.release_check(id, "m", t, None).await.unwrap();
    assert_eq!(
        store
            .check_schedule(id)
            .await
            .unwrap()
            .unwrap()
            .transient_failures,
        0
    );
}

#[tokio::test]
async fn webhook_secrets_are_sealed_and_deliveries_logged() {
    use consentry_domain::{Webhook, WebhookDelivery, WebhookStore};
    use secrecy::{ExposeSecret, SecretSlice};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consentry.db");
    let store = open(&path).await;
    let profile = *profiles(&store, 1).await.iter().next().unwrap();
    let org = store.list_organizations().await.unwrap()[0].id;
    use consentry_domain::Store as _;
    let hook = Webhook {
        id: consentry_domain::WebhookId::new_random(),
        org_id: org,
        url: "https://alerts.example.com/hook".into(),
        created_at: OffsetDateTime::now_utc(),
    };
    let marker = "whsec_plaintext_marker_0123456789";
    store
        .insert_webhook(&hook, &SecretSlice::from(marker.as_bytes().to_vec()))
        .await
        .unwrap();
    assert_eq!(store.list_webhooks(org).await.unwrap(), vec![hook.clone()]);
    let back = store.webhook_secret(hook.id).await.unwrap().unwrap();
    assert_eq!(back.expose_secret(), marker.as_bytes());
    drop(store);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "the webhook secret is never plaintext in the database files"
        );
    }
    let store = open(&path).await;
    let at = OffsetDateTime::now_utc();
    for (event, ok) in [("status_changed", false), ("status_changed", true)] {
        store
            .record_delivery(&WebhookDelivery {
                webhook_id: hook.id,
                profile_id: profile,
                event: event.into(),
                reason_code: Some("consent_revoked".into()),
                status_code: Some(if ok { 200 } else { 500 }),
                attempts: 1,
                ok,
                error: None,
                at,
            })
            .await
            .unwrap();
    }
    let log = store.list_deliveries(hook.id, 10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert!(log[0].ok && !log[1].ok, "newest first");
    let last = store
        .last_notified(profile, "status_changed", Some("consent_revoked"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.unix_timestamp(), at.unix_timestamp());
    assert!(
        store
            .last_notified(profile, "status_changed", Some("other"))
            .await
            .unwrap()
            .is_none()
    );
    let other_org = consentry_domain::OrgId::new_random();
    assert!(!store.delete_webhook(other_org, hook.id).await.unwrap());
    assert!(store.delete_webhook(org, hook.id).await.unwrap());
    assert!(store.webhook_secret(hook.id).await.unwrap().is_none());
    assert!(store.list_deliveries(hook.id, 10).await.unwrap().is_empty());
}

/// The same leasing on PostgreSQL (`FOR UPDATE SKIP LOCKED`), when CONSENTRY_TEST_POSTGRES_URL is set
/// (scripts/ensure-postgres.sh provides it): four stores (monitors) lease concurrently.
#[tokio::test]
async fn leases_on_postgres_are_exclusive() {
    let Some(db) = FreshPostgres::create().await else {
        return;
    };
    let url = db.url.clone();
    let first = &db.store;
    let all = profiles(first, 60).await;
    let now = OffsetDateTime::now_utc();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = open_url(&url).await;
        tasks.push(tokio::spawn(async move {
            let worker = format!("monitor-{w}");
            let mut mine = Vec::new();
            loop {
                let got = store
                    .lease_due_checks(&worker, now, 4, Duration::minutes(5))
                    .await
                    .unwrap();
                if got.is_empty() {
                    break;
                }
                mine.extend(got.into_iter().map(|l| l.profile_id));
            }
            mine
        }));
    }
    let mut seen = BTreeSet::new();
    let mut count = 0;
    for t in tasks {
        let mine = t.await.unwrap();
        count += mine.len();
        seen.extend(mine);
    }
    assert_eq!(count, all.len(), "no profile leased twice");
    assert_eq!(seen, all);
    let one = *all.iter().next().unwrap();
    let holder = first
        .check_schedule(one)
        .await
        .unwrap()
        .unwrap()
        .lease_owner
        .unwrap();
    assert!(
        first
            .release_check(one, &holder, now, Some("Microsoft answered 503"))
            .await
            .unwrap()
    );
    assert_eq!(
        first
            .check_schedule(one)
            .await
            .unwrap()
            .unwrap()
            .transient_failures,
        1
    );

    // Webhooks, their log and API keys on PostgreSQL too.
    use consentry_domain::{
        ApiKey, ApiKeyStore, Store as _, Webhook, WebhookDelivery, WebhookStore,
    };
    use secrecy::{ExposeSecret, SecretSlice};
    let org = first.list_organizations().await.unwrap()[0].id;
    let hook = Webhook {
        id: consentry_domain::WebhookId::new_random(),
        org_id: org,
        url: "https://alerts.example.com/hook".into(),
        created_at: now,
    };
    first
        .insert_webhook(&hook, &SecretSlice::from(b"whsec_pg".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        first
            .webhook_secret(hook.id)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        b"whsec_pg"
    );
    first
        .record_delivery(&WebhookDelivery {
            webhook_id: hook.id,
            profile_id: one,
            event: "recovered".into(),
            reason_code: None,
            status_code: Some(204),
            attempts: 2,
            ok: true,
            error: None,
            at: now,
        })
        .await
        .unwrap();
    assert_eq!(
        first.list_deliveries(hook.id, 5).await.unwrap()[0].attempts,
        2
    );
    assert!(
        first
            .last_notified(one, "recovered", None)
            .await
            .unwrap()
            .is_some()
    );
    let key = ApiKey {
        id: consentry_domain::ApiKeyId::new_random(),
        org_id: org,
        name: "svc".into(),
        key_hash: "ab".repeat(32),
        created_at: now,
        revoked_at: None,
        last_used_at: None,
    };
    first.insert_api_key(&key).await.unwrap();
    assert_eq!(
        first.find_api_key(&key.key_hash).await.unwrap(),
        Some(key.clone())
    );
    assert!(first.revoke_api_key(key.id, now).await.unwrap());
    assert!(!first.revoke_api_key(key.id, now).await.unwrap());
    assert!(first.delete_webhook(org, hook.id).await.unwrap());
    db.drop().await;
}

/// The pending profiles whose re-authorization nobody will finish become due at once (their check
/// ends it): a record that expired untaken, one whose taker missed its deadline, and a pending
/// profile with no record. A live record, a taken one within its deadline, and a profile that is
/// not pending keep their schedule.
async fn abandoned_reauthorizations_become_due(store: &SqlStore) {
    use consentry_domain::{PendingAuthorization, ProfileStatus, StatusReason, Store as _};
    let ids: Vec<ProfileId> = profiles(store, 6).await.into_iter().collect();
    let now = OffsetDateTime::now_utc();
    // Everyone scheduled an hour ahead.
    let leased = store
        .lease_due_checks("w", now, 100, Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(leased.len(), 6);
    for id in &ids {
        assert!(
            store
                .release_check(*id, "w", now + Duration::hours(1), None)
                .await
                .unwrap()
        );
    }
    let mark_pending = |id: ProfileId| async move {
        let mut p = store.get_profile(id).await.unwrap().unwrap();
        p.status = ProfileStatus::Pending;
        p.reason = Some(StatusReason::ReauthorizationStarted { by: "t".into() });
        store.save_profile(&p, None).await.unwrap();
    };
    let record = |id: ProfileId, expires_at: OffsetDateTime| PendingAuthorization {
        expires_at,
        ..consentry_store::story::minimal_pending(id, now - Duration::minutes(20))
    };
    // 0: expired untaken. 1: live. 2: taken, deadline passed. 3: taken, within its deadline.
    // 4: pending without a record. 5: not pending, with an expired record.
    for (i, id) in ids.iter().enumerate() {
        if i != 5 {
            mark_pending(*id).await;
        }
        let expires = if matches!(i, 0 | 5) {
            now - Duration::minutes(1)
        } else {
            now + Duration::minutes(10)
        };
        if i != 4 {
            store.put_pending(&record(*id, expires)).await.unwrap();
        }
    }
    let p2 = store.pending_for_profile(ids[2]).await.unwrap().unwrap();
    store
        .take_pending(&p2.state_hash, now - Duration::seconds(1))
        .await
        .unwrap()
        .unwrap();
    let p3 = store.pending_for_profile(ids[3]).await.unwrap().unwrap();
    store
        .take_pending(&p3.state_hash, now + Duration::minutes(2))
        .await
        .unwrap()
        .unwrap();
    let due: BTreeSet<ProfileId> = store
        .lease_due_checks("w", now, 100, Duration::minutes(5))
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.profile_id)
        .collect();
    let want: BTreeSet<ProfileId> = [ids[0], ids[2], ids[4]].into_iter().collect();
    assert_eq!(due, want);
}

/// Runs a story on a new SQLite file (test `$sqlite`) and on a new database of the test PostgreSQL
/// server (test `$postgres`, skipped when none is set).
macro_rules! on_both_dialects {
    ($story:ident, $sqlite:ident, $postgres:ident) => {
        #[tokio::test]
        async fn $sqlite() {
            let dir = tempfile::tempdir().unwrap();
            let store = open(&dir.path().join("c.db")).await;
            $story(&store).await;
        }

        #[tokio::test]
        async fn $postgres() {
            if let Some(db) = FreshPostgres::create().await {
                $story(&db.store).await;
                db.drop().await;
            }
        }
    };
}

on_both_dialects!(
    abandoned_reauthorizations_become_due,
    abandoned_reauthorizations_become_due_on_sqlite,
    abandoned_reauthorizations_become_due_on_postgres
);

/// A store on a database of its own on the test PostgreSQL server (`None`, with a note, when
/// `CONSENTRY_TEST_POSTGRES_URL` is not set).
struct FreshPostgres {
    store: SqlStore,
    /// The database's URL (for more stores or connections on it).
    url: String,
    admin: sqlx::PgConnection,
    name: String,
}

impl FreshPostgres {
    async fn create() -> Option<FreshPostgres> {
        use sqlx::Connection as _;
        let Some(admin) = std::env::var("CONSENTRY_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
        else {
            eprintln!("PostgreSQL test skipped: CONSENTRY_TEST_POSTGRES_URL is not set");
            return None;
        };
        let name = format!("consentry_sched_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap();
        let url = consentry_store::story::with_database(&admin, &name);
        Some(FreshPostgres {
            store: open_url(&url).await,
            url,
            admin: conn,
            name,
        })
    }

    async fn drop(mut self) {
        self.store.close().await;
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        )))
        .execute(&mut self.admin)
        .await;
    }
}

/// Many leases handed back in one call: each profile gets its own next check time; a transient
/// failure is counted with its message, a success clears the count and keeps the last message; a
/// lease that is not the caller's is left alone; more releases than one statement takes.
async fn leases_are_released_together(store: &SqlStore) {
    let ids: Vec<ProfileId> = profiles(store, 205).await.into_iter().collect();
    let t1 = OffsetDateTime::now_utc() + Duration::hours(1);
    let lease = Duration::minutes(5);
    assert_eq!(
        store
            .lease_due_checks("m", t1, 1000, lease)
            .await
            .unwrap()
            .len(),
        205
    );
    let release = |i: usize, hours: i64, error: Option<&str>| CheckRelease {
        profile_id: ids[i],
        next_check_at: t1 + Duration::hours(hours),
        transient_error: error.map(str::to_string),
    };
    assert_eq!(
        store
            .release_checks("other", &[release(0, 1, None)])
            .await
            .unwrap(),
        0,
        "another worker's release changes nothing"
    );
    let mut batch: Vec<CheckRelease> = (0..204)
        .map(|i| {
            release(
                i,
                1 + (i % 3) as i64,
                (i % 2 == 1).then_some("Microsoft answered 503"),
            )
        })
        .collect();
    assert_eq!(store.release_checks("m", &batch).await.unwrap(), 204);
    for i in [0, 1, 2, 203] {
        let s = store.check_schedule(ids[i]).await.unwrap().unwrap();
        assert_eq!(s.lease_owner, None, "profile {i} released");
        assert_eq!(
            s.next_check_at,
            t1 + Duration::hours(1 + (i % 3) as i64),
            "profile {i}"
        );
        assert_eq!(s.transient_failures, (i % 2) as u32, "profile {i}");
        let want = (i % 2 == 1).then_some("Microsoft answered 503");
        assert_eq!(s.last_error.as_deref(), want, "profile {i}");
    }
    let s = store.check_schedule(ids[204]).await.unwrap().unwrap();
    assert_eq!(
        s.lease_owner.as_deref(),
        Some("m"),
        "not in the batch: still leased"
    );

    // Leased again: profile 1 succeeds (count cleared, message kept), profile 3 fails again.
    let t2 = t1 + Duration::hours(4);
    store.lease_due_checks("m", t2, 1000, lease).await.unwrap();
    batch = vec![
        CheckRelease {
            profile_id: ids[1],
            next_check_at: t2 + Duration::hours(1),
            transient_error: None,
        },
        CheckRelease {
            profile_id: ids[3],
            next_check_at: t2 + Duration::minutes(5),
            transient_error: Some("timed out".into()),
        },
    ];
    assert_eq!(store.release_checks("m", &batch).await.unwrap(), 2);
    let s = store.check_schedule(ids[1]).await.unwrap().unwrap();
    assert_eq!(
        (s.transient_failures, s.last_error.as_deref()),
        (0, Some("Microsoft answered 503"))
    );
    let s = store.check_schedule(ids[3]).await.unwrap().unwrap();
    assert_eq!(
        (s.transient_failures, s.last_error.as_deref()),
        (2, Some("timed out"))
    );
    assert_eq!(s.next_check_at, t2 + Duration::minutes(5));
}

on_both_dialects!(
    leases_are_released_together,
    leases_are_released_together_on_sqlite,
    leases_are_released_together_on_postgres
);

/// On PostgreSQL, releasing many leases never deadlocks with another transaction writing the same
/// rows: one holds one lease's row, then writes the other's, once for each of the two rows. A single
/// statement over both rows locks them in some order; in one of the two rounds it waits for the held
/// row while holding the other, and PostgreSQL rolls one of the two transactions back.
#[tokio::test]
async fn releasing_leases_together_does_not_deadlock_on_postgres() {
    use sqlx::Connection as _;
    let Some(db) = FreshPostgres::create().await else {
        return;
    };
    let ids: Vec<ProfileId> = profiles(&db.store, 2).await.into_iter().collect();
    let mut other = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let touch = |id: ProfileId| {
        sqlx::query("UPDATE check_schedule SET last_error = 'held' WHERE profile_id = $1")
            .bind(id.to_string())
    };
    for (round, held) in [1usize, 0].into_iter().enumerate() {
        let t = OffsetDateTime::now_utc() + Duration::hours(2 * (round as i64 + 1));
        let leased = db
            .store
            .lease_due_checks("m", t, 10, Duration::minutes(5))
            .await
            .unwrap();
        assert_eq!(leased.len(), 2, "round {round}");
        let mut tx = other.begin().await.unwrap();
        touch(ids[held]).execute(&mut *tx).await.unwrap();
        let releases: Vec<CheckRelease> = ids
            .iter()
            .map(|id| CheckRelease {
                profile_id: *id,
                next_check_at: t + Duration::hours(1),
                transient_error: None,
            })
            .collect();
        let store = db.store.clone();
        let releasing = tokio::spawn(async move { store.release_checks("m", &releases).await });
        // The release waits for the held row; meanwhile the other transaction writes the other row.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        touch(ids[1 - held])
            .execute(&mut *tx)
            .await
            .expect("the other transaction is not rolled back");
        tx.commit().await.unwrap();
        assert_eq!(
            releasing.await.unwrap().expect("released"),
            2,
            "round {round}"
        );
        for id in &ids {
            let s = db.store.check_schedule(*id).await.unwrap().unwrap();
            assert_eq!(s.lease_owner, None, "round {round}");
            assert_eq!(s.next_check_at, t + Duration::hours(1), "round {round}");
        }
    }
    drop(other);
    db.drop().await;
}
