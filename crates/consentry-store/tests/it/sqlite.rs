//! The store on SQLite: the behaviour story, migrations (and the sealing of a plaintext nonce from
//! before migration 0010), persistence across reopening, secrets at rest (never plaintext, bound to
//! their row, refused under a wrong key), pending re-authorizations (sealed to their state hash, kept
//! when a replica cannot open them, stored only under a state hash), the master key file, concurrent
//! writers, and listing at 100,000 profiles. What holds on both dialects alike (atomicity of profile
//! writes and the append-only history, taking across replicas, upgrades of older schemas) is in
//! `both.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use consentry_domain::{
    MAX_PAGE_SIZE, PageRequest, PendingAuthorization, ProfileFilter, ProfileStatus, SecretKind,
    Store, StoreError,
};
use consentry_store::story::{
    self, created_event, full_profile, minimal_profile, new_org, new_tenant,
};
use consentry_store::{Sealer, SealerError, SqlStore};
use secrecy::{ExposeSecret as _, SecretSlice};
use sqlx::Connection as _;
use time::OffsetDateTime;

const KEY: [u8; 32] = [0x42; 32];

fn db_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("consentry.db")
}

async fn open_with(path: &Path, key: &[u8; 32]) -> SqlStore {
    SqlStore::open(&db_url(path), Sealer::from_key_bytes(key))
        .await
        .expect("open the SQLite store")
}

/// A plain SQLite connection to the same file, to look underneath the store.
async fn raw(path: &Path) -> sqlx::SqliteConnection {
    sqlx::SqliteConnection::connect(&db_url(path))
        .await
        .expect("raw connection")
}

/// Every file of the database (main file, -wal, -shm, journals) as bytes.
fn database_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("consentry.db")
        })
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn story_on_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(&db_path(&dir), &KEY).await;
    story::run(&store).await;
    store.close().await;
}

#[tokio::test]
async fn story_in_memory() {
    let store = SqlStore::open("sqlite::memory:", Sealer::from_key_bytes(&KEY))
        .await
        .unwrap();
    story::run(&store).await;
}

#[tokio::test]
async fn story_chapters_can_run_twice_on_one_database() {
    // The story never assumes an empty database: a second run over the first one's data passes.
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(&db_path(&dir), &KEY).await;
    for _ in 0..2 {
        story::organizations(&store).await;
        story::tenants(&store).await;
        story::filters_and_search(&store).await;
        story::pagination(&store, 150).await;
        story::counts(&store).await;
        story::pending(&store).await;
        story::pending_under_concurrency(&store).await;
        story::pending_deletion(&store).await;
    }
}

#[tokio::test]
async fn migrations_apply_once_and_again_as_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = open_with(&path, &KEY).await;
    store.ping().await.expect("an open store answers");
    let v = store.schema_version().await.unwrap();
    assert_eq!(v.applied, Some(v.latest), "open applies every migration");
    assert!(v.latest >= 1);

    let count = |path: PathBuf| async move {
        let mut c = raw(&path).await;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&mut c)
            .await
            .unwrap();
        n
    };
    let before = count(path.clone()).await;
    store.migrate().await.expect("migrate again");
    store.migrate().await.expect("and again");
    assert_eq!(
        count(path.clone()).await,
        before,
        "re-running migrations records nothing new"
    );
    assert_eq!(store.schema_version().await.unwrap(), v);
    store.close().await;

    assert!(
        store.ping().await.is_err(),
        "a closed store does not answer"
    );

    // Reopening migrates nothing either.
    let again = open_with(&path, &KEY).await;
    assert_eq!(again.schema_version().await.unwrap(), v);
    assert_eq!(count(path.clone()).await, before);

    // WAL mode and foreign keys are in force.
    let mut c = raw(&path).await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
}

#[tokio::test]
async fn a_database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    open_with(&path, &KEY).await.close().await;
    let mut c = raw(&path).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from the future', 1, X'00', 0)",
    )
    .execute(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    let err = SqlStore::open(&db_url(&path), Sealer::from_key_bytes(&KEY))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

#[tokio::test]
async fn unsupported_urls_are_refused_clearly() {
    let e = SqlStore::open(
        "mysql://consentry:hunter2@localhost/consentry",
        Sealer::from_key_bytes(&KEY),
    )
    .await
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("sqlite://PATH") && text.contains("postgres://"),
        "{e}"
    );
    assert!(!text.contains("hunter2"), "no password in the refusal: {e}");
    let e = SqlStore::open(
        "sqlite:///nonexistent-dir-for-consentry/x.db",
        Sealer::from_key_bytes(&KEY),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, StoreError::Backend(_)), "{e}");
}

#[tokio::test]
async fn reopening_the_file_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = open_with(&path, &KEY).await;
    let org = new_org(&store, "reopen").await;
    let tenant = new_tenant(&store, &org, "re").await;
    let p = full_profile(&tenant, OffsetDateTime::now_utc());
    store.insert_profile(&p, created_event(&p)).await.unwrap();
    store
        .put_secret(
            p.id,
            SecretKind::RefreshToken,
            &SecretSlice::from(b"RT-kept".to_vec()),
        )
        .await
        .unwrap();
    store.close().await;
    drop(store);

    let store = open_with(&path, &KEY).await;
    assert_eq!(store.get_organization(org.id).await.unwrap(), Some(org));
    assert_eq!(store.get_tenant(tenant.id).await.unwrap(), Some(tenant));
    assert_eq!(store.get_profile(p.id).await.unwrap(), Some(p.clone()));
    assert_eq!(store.list_history(p.id, 10).await.unwrap().len(), 1);
    let s = store
        .get_secret(p.id, SecretKind::RefreshToken)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.expose_secret(), b"RT-kept");
}

/// The permission bits of a file.
#[cfg(unix)]
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn database_files_are_created_readable_by_their_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = open_with(&path, &KEY).await;
    // Something written, so the WAL and its index exist.
    new_org(&store, "modes").await;
    let files = database_files(dir.path());
    let names: Vec<String> = files
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for suffix in ["", "-wal", "-shm"] {
        assert!(
            names.contains(&format!("consentry.db{suffix}")),
            "consentry.db{suffix} expected while open: {names:?}"
        );
    }
    for (file, _) in &files {
        assert_eq!(
            mode_of(file),
            0o600,
            "{file:?} must be readable and writable by its owner only"
        );
    }
    store.close().await;
    assert_eq!(mode_of(&path), 0o600, "after closing");

    // An existing database keeps the permissions its administrator gave it.
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let store = open_with(&path, &KEY).await;
    assert_eq!(mode_of(&path), 0o640);
    store.close().await;
}

#[tokio::test]
async fn no_secret_is_ever_in_the_database_files_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = open_with(&path, &KEY).await;
    let org = new_org(&store, "canary").await;
    let tenant = new_tenant(&store, &org, "ca").await;
    let p = full_profile(&tenant, OffsetDateTime::now_utc());
    store.insert_profile(&p, created_event(&p)).await.unwrap();
    let canary = format!("RT-PLAINTEXT-CANARY-{}", uuid::Uuid::new_v4().simple());
    let key_canary = format!(
        "-----BEGIN PRIVATE KEY-----KEY-PLAINTEXT-CANARY-{}",
        uuid::Uuid::new_v4().simple()
    );
    store
        .put_secret(
            p.id,
            SecretKind::RefreshToken,
            &SecretSlice::from(canary.clone().into_bytes()),
        )
        .await
        .unwrap();
    store
        .put_secret(
            p.id,
            SecretKind::ClientCertificate,
            &SecretSlice::from(key_canary.clone().into_bytes()),
        )
        .await
        .unwrap();
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

    // While open (the WAL holds the recent writes) and after closing (checkpointed into the main file).
    let open_files = database_files(dir.path());
    assert!(
        open_files
            .iter()
            .any(|(p, _)| p.to_string_lossy().ends_with("-wal")),
        "WAL file expected while open"
    );
    store.close().await;
    let closed_files = database_files(dir.path());
    for (label, files) in [("open", &open_files), ("closed", &closed_files)] {
        // Positive control: ordinary data is found by the same search, so the search does look at the data.
        assert!(
            files.iter().any(|(_, b)| contains(b, upn.as_bytes())),
            "{label}: the UPN should be visible in the files, or this test reads the wrong files"
        );
        assert!(
            files
                .iter()
                .any(|(_, b)| contains(b, pending.state_hash.as_bytes())),
            "{label}: the pending record's state hash should be visible in the files, or this test misses its table"
        );
        for (file, bytes) in files.iter() {
            assert!(
                !contains(bytes, canary.as_bytes()),
                "{label}: refresh token in plaintext in {file:?}"
            );
            assert!(
                !contains(bytes, key_canary.as_bytes()),
                "{label}: private key in plaintext in {file:?}"
            );
            assert!(
                !contains(bytes, pending_canary.as_bytes()),
                "{label}: a pending re-authorization's secret in plaintext in {file:?}"
            );
            assert!(
                !contains(bytes, nonce_canary.as_bytes()),
                "{label}: a pending re-authorization's nonce in plaintext in {file:?}"
            );
            assert!(
                !contains(bytes, b"PLAINTEXT-CANARY"),
                "{label}: part of a secret in {file:?}"
            );
        }
    }

    let store = open_with(&path, &KEY).await;
    let got = store
        .get_secret(p.id, SecretKind::RefreshToken)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.expose_secret(), canary.as_bytes());
    let got = store
        .get_secret(p.id, SecretKind::ClientCertificate)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.expose_secret(), key_canary.as_bytes());
    let got = store
        .take_pending(&pending.state_hash, consentry_store::story::hold_until())
        .await
        .unwrap()
        .expect("the pending record survives reopening");
    assert_eq!(got.secrets.expose_secret(), pending_canary.as_bytes());
    assert_eq!(got.nonce, nonce_canary);
}

#[tokio::test]
async fn a_sealed_secret_moved_to_another_row_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = open_with(&path, &KEY).await;
    let org = new_org(&store, "binding").await;
    let tenant = new_tenant(&store, &org, "bi").await;
    let a = full_profile(&tenant, OffsetDateTime::now_utc());
    let b = full_profile(&tenant, OffsetDateTime::now_utc());
    for p in [&a, &b] {
        store.insert_profile(p, created_event(p)).await.unwrap();
    }
    store
        .put_secret(
            a.id,
            SecretKind::RefreshToken,
            &SecretSlice::from(b"RT-of-a".to_vec()),
        )
        .await
        .unwrap();
    store
        .put_secret(
            b.id,
            SecretKind::RefreshToken,
            &SecretSlice::from(b"RT-of-b".to_vec()),
        )
        .await
        .unwrap();

    let mut c = raw(&path).await;
    // Copy a's sealed refresh token over b's, and into a's own certificate slot.
    sqlx::query(
        "UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE profile_id = $1 AND kind = 'refresh_token') \
         WHERE profile_id = $2 AND kind = 'refresh_token'",
    )
    .bind(a.id.to_string())
    .bind(b.id.to_string())
    .execute(&mut c)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO secrets (profile_id, kind, sealed, updated_at) \
         SELECT profile_id, 'client_certificate', sealed, updated_at FROM secrets \
         WHERE profile_id = $1 AND kind = 'refresh_token'",
    )
    .bind(a.id.to_string())
    .execute(&mut c)
    .await
    .unwrap();

    let e = store
        .get_secret(b.id, SecretKind::RefreshToken)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Sealing(_)), "{e}");
    let e = store
        .get_secret(a.id, SecretKind::ClientCertificate)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Sealing(_)), "{e}");
    // The original still opens.
    let got = store
        .get_secret(a.id, SecretKind::RefreshToken)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.expose_secret(), b"RT-of-a");
}

#[tokio::test]
async fn a_wrong_master_key_fails_with_sealing_and_leaves_other_data_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = open_with(&path, &KEY).await;
    let org = new_org(&store, "wrong-key").await;
    let tenant = new_tenant(&store, &org, "wk").await;
    let p = minimal_profile(&tenant, OffsetDateTime::now_utc());
    store.insert_profile(&p, created_event(&p)).await.unwrap();
    store
        .put_secret(
            p.id,
            SecretKind::RefreshToken,
            &SecretSlice::from(b"RT-sealed".to_vec()),
        )
        .await
        .unwrap();
    store.close().await;

    let other = open_with(&path, &[0x17; 32]).await;
    let e = other
        .get_secret(p.id, SecretKind::RefreshToken)
        .await
        .unwrap_err();
    let StoreError::Sealing(msg) = &e else {
        panic!("expected a sealing error, got {e:?}");
    };
    assert!(
        msg.contains(&hex_key_id(&KEY)),
        "the message names the missing key: {msg}"
    );
    assert_eq!(other.get_profile(p.id).await.unwrap(), Some(p.clone()));
    other.close().await;

    // With the old key configured next to a new current one, the secret opens again; new seals use the new key.
    let rotated = SqlStore::open(
        &db_url(&path),
        Sealer::from_key_bytes(&[0x17; 32]).with_old_key(&KEY),
    )
    .await
    .unwrap();
    let got = rotated
        .get_secret(p.id, SecretKind::RefreshToken)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.expose_secret(), b"RT-sealed");
}

fn hex_key_id(key: &[u8; 32]) -> String {
    Sealer::from_key_bytes(key).key_id()
}

#[cfg(unix)]
#[tokio::test]
async fn the_key_file_is_created_private_and_reused() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("master.key");
    let first = Sealer::load_or_create_key_file(&key_path).unwrap();
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "created with mode 0600");
    let text = std::fs::read_to_string(&key_path).unwrap();
    assert_eq!(text.trim().len(), 44, "32 bytes as base64");

    let second = Sealer::load_or_create_key_file(&key_path).unwrap();
    assert_eq!(first.key_id(), second.key_id(), "the same key is read back");
    assert_eq!(
        std::fs::read_to_string(&key_path).unwrap(),
        text,
        "the file is not rewritten"
    );

    // A secret sealed through a store with the first load opens through a store with the second.
    let db = db_path(&dir);
    let store = SqlStore::open(&db_url(&db), first).await.unwrap();
    let org = new_org(&store, "keyfile").await;
    let tenant = new_tenant(&store, &org, "kf").await;
    let p = minimal_profile(&tenant, OffsetDateTime::now_utc());
    store.insert_profile(&p, created_event(&p)).await.unwrap();
    store
        .put_secret(
            p.id,
            SecretKind::RefreshToken,
            &SecretSlice::from(b"RT-keyfile".to_vec()),
        )
        .await
        .unwrap();
    store.close().await;
    let store = SqlStore::open(&db_url(&db), second).await.unwrap();
    let got = store
        .get_secret(p.id, SecretKind::RefreshToken)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.expose_secret(), b"RT-keyfile");

    // Too open: refused, naming the path.
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Sealer::load_or_create_key_file(&key_path).unwrap_err();
    assert!(
        matches!(e, SealerError::KeyFilePermissions { mode: 0o644, .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains(&key_path.display().to_string()),
        "{e}"
    );
    assert!(e.to_string().contains("chmod 600"), "{e}");

    // Wrong length or not base64: refused, naming the path; the file is left alone.
    for (content, expect) in [
        ("c2hvcnQ=\n", "5 bytes instead of 32"),
        ("%%% not base64 %%%", "not base64"),
    ] {
        let bad = dir.path().join(format!("bad-{}.key", expect.len()));
        std::fs::write(&bad, content).unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = Sealer::load_or_create_key_file(&bad).unwrap_err();
        assert!(matches!(e, SealerError::KeyFileContent { .. }), "{e}");
        assert!(e.to_string().contains(&bad.display().to_string()), "{e}");
        assert!(e.to_string().contains(expect), "{e}");
        assert_eq!(std::fs::read_to_string(&bad).unwrap(), content);
    }

    // A directory that does not exist: an I/O error naming the path.
    let missing = dir.path().join("no-such-dir").join("master.key");
    let e = Sealer::load_or_create_key_file(&missing).unwrap_err();
    assert!(matches!(e, SealerError::KeyFileIo { .. }), "{e}");
    assert!(
        e.to_string().contains(&missing.display().to_string()),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_do_not_fail_on_locks() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(open_with(&db_path(&dir), &KEY).await);
    story::concurrent_writers(store).await;
}

/// Fills `profiles` with `n` rows in one statement (far faster than the API), spread over the tenants.
async fn bulk_profiles(path: &Path, n: u32) {
    let mut c = raw(path).await;
    sqlx::query(
        "CREATE TEMP TABLE tix AS SELECT (ROW_NUMBER() OVER (ORDER BY id)) - 1 AS idx, id, org_id FROM tenants",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let tenants: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tix")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let base = OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $1), \
         r(i, h) AS (SELECT i, lower(hex(randomblob(16))) FROM n) \
         INSERT INTO profiles (id, org_id, tenant_id, app_type, service, consent_object_id, consent_upn, \
             granted_permissions, functions, status, reason, reason_code, created_at, updated_at) \
         SELECT substr(h,1,8)||'-'||substr(h,9,4)||'-4'||substr(h,14,3)||'-8'||substr(h,18,3)||'-'||substr(h,21,12), \
             tix.org_id, tix.id, 'app-' || (i % 13), 'svc-' || (i % 7), \
             '00000000-0000-4000-8000-' || printf('%012d', i), 'user' || i || '@contoso.com', '[]', '[]', \
             CASE (i / $3) % 4 WHEN 0 THEN 'valid' WHEN 1 THEN 'attention' WHEN 2 THEN 'invalid' ELSE 'pending' END, \
             CASE (i / $3) % 4 WHEN 0 THEN NULL ELSE '{\"code\":\"consent_revoked\"}' END, \
             CASE (i / $3) % 4 WHEN 0 THEN NULL ELSE 'consent_revoked' END, \
             $2 + (i / 2) * 1000, $2 + (i / 2) * 1000 \
         FROM r JOIN tix ON tix.idx = r.i % $3",
    )
    .bind(i64::from(n))
    .bind(base)
    .bind(tenants)
    .execute(&mut c)
    .await
    .unwrap();
}

#[tokio::test]
async fn listing_stays_fast_at_100_000_profiles() {
    const N: u32 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = open_with(&path, &KEY).await;
    let mut orgs = Vec::new();
    let mut tenants = Vec::new();
    for i in 0..10 {
        orgs.push(new_org(&store, &format!("scale-{i}")).await);
    }
    for i in 0..50 {
        tenants.push(new_tenant(&store, &orgs[i % 10], "sc").await);
    }
    bulk_profiles(&path, N).await;

    let all = store
        .count_profiles(&ProfileFilter::default())
        .await
        .unwrap();
    assert_eq!(all.values().sum::<u64>(), u64::from(N));
    assert_eq!(all[&ProfileStatus::Invalid], u64::from(N / 4));

    let filters = [
        ProfileFilter::default(),
        ProfileFilter {
            org_id: Some(orgs[3].id),
            ..Default::default()
        },
        ProfileFilter {
            tenant_id: Some(tenants[7].id),
            ..Default::default()
        },
        ProfileFilter {
            statuses: vec![ProfileStatus::Invalid],
            ..Default::default()
        },
        ProfileFilter {
            service: Some("svc-3".into()),
            ..Default::default()
        },
        ProfileFilter {
            org_id: Some(orgs[3].id),
            statuses: vec![ProfileStatus::Attention],
            ..Default::default()
        },
    ];
    let mut slowest = StdDuration::ZERO;
    for f in &filters {
        // First page, then a page deep into the list (from the cursor of a large page).
        let started = Instant::now();
        let first = store
            .list_profiles(
                f,
                &PageRequest {
                    after: None,
                    limit: 50,
                },
            )
            .await
            .unwrap();
        slowest = slowest.max(started.elapsed());
        let deep_cursor = store
            .list_profiles(
                f,
                &PageRequest {
                    after: first.next_cursor.clone(),
                    limit: MAX_PAGE_SIZE,
                },
            )
            .await
            .unwrap()
            .next_cursor;
        let started = Instant::now();
        let deep = store
            .list_profiles(
                f,
                &PageRequest {
                    after: deep_cursor,
                    limit: 50,
                },
            )
            .await
            .unwrap();
        slowest = slowest.max(started.elapsed());
        if f.search.is_none() {
            assert_eq!(first.items.len(), 50, "{f:?}");
            assert_eq!(deep.items.len(), 50, "{f:?}");
            assert!(deep.items[0].created_at >= first.items[49].created_at);
        }
    }
    // Reported, not asserted: speed is measured by the benchmarks; the plans that make it fast are
    // checked by the unit test on EXPLAIN QUERY PLAN.
    eprintln!("slowest filtered page at {N} profiles: {slowest:?}");

    // Search is a substring match: it scans (no index serves `LIKE '%x%'`). A rare term is the worst case.
    let started = Instant::now();
    let found = store
        .list_profiles(
            &ProfileFilter {
                search: Some("USER4242@".into()),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    let search_time = started.elapsed();
    eprintln!("rare-term search over {N} profiles: {search_time:?}");
    assert_eq!(found.items.len(), 1);
    assert_eq!(
        found.items[0].consent_user.as_ref().unwrap().upn.as_str(),
        "user4242@contoso.com"
    );

    // A whole walk through one organization's 10,000 profiles: no duplicates, no gaps.
    let org_filter = ProfileFilter {
        org_id: Some(orgs[5].id),
        ..Default::default()
    };
    let started = Instant::now();
    let walked = story::collect_all(&store, &org_filter, MAX_PAGE_SIZE).await;
    eprintln!(
        "walked {} profiles in {:?}",
        walked.len(),
        started.elapsed()
    );
    assert_eq!(walked.len(), (N / 10) as usize);
    let unique: std::collections::HashSet<_> = walked.iter().map(|p| p.id).collect();
    assert_eq!(unique.len(), walked.len());
    assert!(
        walked
            .windows(2)
            .all(|w| (w[0].created_at, w[0].id) < (w[1].created_at, w[1].id))
    );
}

#[tokio::test]
async fn a_pending_record_sealed_for_another_state_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = open_with(&path, &KEY).await;
    let org = new_org(&store, "pending-binding").await;
    let tenant = new_tenant(&store, &org, "pb").await;
    let a = minimal_profile(&tenant, OffsetDateTime::now_utc());
    let b = minimal_profile(&tenant, OffsetDateTime::now_utc());
    for p in [&a, &b] {
        store.insert_profile(p, created_event(p)).await.unwrap();
    }
    let pa = PendingAuthorization {
        secrets: SecretSlice::from(b"verifier-of-a".to_vec()),
        ..story::full_pending(a.id, OffsetDateTime::now_utc())
    };
    let pb = PendingAuthorization {
        secrets: SecretSlice::from(b"verifier-of-b".to_vec()),
        ..story::full_pending(b.id, OffsetDateTime::now_utc())
    };
    for x in [&pa, &pb] {
        store.put_pending(x).await.unwrap();
    }

    // Copy a's sealed blob over b's, and into the profile secrets table as a's refresh token.
    let mut c = raw(&path).await;
    sqlx::query(
        "UPDATE pending_authorizations SET sealed_secrets = \
         (SELECT sealed_secrets FROM pending_authorizations WHERE state_hash = $1) WHERE state_hash = $2",
    )
    .bind(&pa.state_hash)
    .bind(&pb.state_hash)
    .execute(&mut c)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO secrets (profile_id, kind, sealed, updated_at) \
         SELECT profile_id, 'refresh_token', sealed_secrets, created_at FROM pending_authorizations \
         WHERE state_hash = $1",
    )
    .bind(&pa.state_hash)
    .execute(&mut c)
    .await
    .unwrap();

    let e = store
        .take_pending(&pb.state_hash, consentry_store::story::hold_until())
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Sealing(_)), "{e}");
    let e = store.pending_for_profile(b.id).await.unwrap_err();
    assert!(matches!(e, StoreError::Sealing(_)), "{e}");
    let e = store
        .get_secret(a.id, SecretKind::RefreshToken)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Sealing(_)), "{e}");
    // The original still opens.
    let got = store
        .take_pending(&pa.state_hash, consentry_store::story::hold_until())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.secrets.expose_secret(), b"verifier-of-a");
}

#[tokio::test]
async fn a_replica_without_the_key_leaves_the_pending_record_to_one_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let keyed = open_with(&path, &KEY).await;
    let misconfigured = open_with(&path, &[0x17; 32]).await;
    let org = new_org(&keyed, "pending-key").await;
    let tenant = new_tenant(&keyed, &org, "pk").await;
    let p = minimal_profile(&tenant, OffsetDateTime::now_utc());
    keyed.insert_profile(&p, created_event(&p)).await.unwrap();
    let record = story::full_pending(p.id, OffsetDateTime::now_utc());
    keyed.put_pending(&record).await.unwrap();

    let e = misconfigured
        .take_pending(&record.state_hash, consentry_store::story::hold_until())
        .await
        .unwrap_err();
    let StoreError::Sealing(msg) = &e else {
        panic!("expected a sealing error, got {e:?}");
    };
    assert!(msg.contains(&hex_key_id(&KEY)), "names the key: {msg}");
    let mut c = raw(&path).await;
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pending_authorizations WHERE state_hash = $1")
            .bind(&record.state_hash)
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(left, 1, "a take that cannot open the record leaves it");

    let got = keyed
        .take_pending(&record.state_hash, consentry_store::story::hold_until())
        .await
        .unwrap()
        .expect("a replica with the key takes it");
    story::assert_same_pending(&got, &record, "taken by the keyed replica");
    assert!(
        misconfigured
            .take_pending(&record.state_hash, consentry_store::story::hold_until())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn only_a_state_hash_is_stored_never_a_state() {
    let store = SqlStore::open("sqlite::memory:", Sealer::from_key_bytes(&KEY))
        .await
        .unwrap();
    let org = new_org(&store, "state-hash").await;
    let tenant = new_tenant(&store, &org, "sh").await;
    let p = minimal_profile(&tenant, OffsetDateTime::now_utc());
    store.insert_profile(&p, created_event(&p)).await.unwrap();
    let good = story::full_pending(p.id, OffsetDateTime::now_utc());
    for bad in [
        "kq3M_1X0qQn4y9-2dCkVhYqO6lJ2cUWdE3jV8pX4R9A".to_string(), // a raw base64url state
        good.state_hash.to_uppercase(),
        good.state_hash[..63].to_string(),
        format!("{}0", good.state_hash),
        String::new(),
    ] {
        let record = PendingAuthorization {
            state_hash: bad.clone(),
            ..good.clone()
        };
        let e = store.put_pending(&record).await.unwrap_err();
        let StoreError::Backend(msg) = &e else {
            panic!("{bad:?}: expected a refusal, got {e:?}");
        };
        assert!(msg.contains("hex SHA-256"), "{msg}");
        assert!(
            bad.is_empty() || !msg.contains(&bad),
            "the refusal must not repeat the value: {msg}"
        );
        assert!(store.pending_for_profile(p.id).await.unwrap().is_none());
    }
    store
        .put_pending(&good)
        .await
        .expect("a hex SHA-256 is stored");
}

#[tokio::test]
async fn a_plaintext_nonce_from_before_the_upgrade_is_sealed_when_the_store_opens() {
    // A database from before migration 0010 (the nonce was a plaintext column) holding a re-authorization in flight.
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = open_with(&path, &KEY).await;
    let org = new_org(&store, "legacy").await;
    let tenant = new_tenant(&store, &org, "lg").await;
    let p = minimal_profile(&tenant, OffsetDateTime::now_utc());
    store.insert_profile(&p, created_event(&p)).await.unwrap();
    store.close().await;
    // Rebuild the pending table as it was before migration 0010: drop that migration's record and
    // put the old column back (later migrations touch other tables and stay applied).
    let mut c = raw(&path).await;
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 10")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE pending_authorizations ADD COLUMN nonce TEXT NOT NULL DEFAULT ''")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE pending_authorizations DROP COLUMN legacy_nonce")
        .execute(&mut c)
        .await
        .unwrap();
    let v: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE version = 10")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(v, 0);
    let want = story::full_pending(p.id, OffsetDateTime::now_utc());
    let nonce = format!("NONCE-LEGACY-CANARY-{}", uuid::Uuid::new_v4().simple());
    // Sealed as a build before migration 0010 sealed it: the secrets blob alone, bound to the state hash.
    let sealed = Sealer::from_key_bytes(&KEY)
        .seal(
            consentry_store::sealer::Binding {
                owner: &want.state_hash,
                kind: "pending",
            },
            want.secrets.expose_secret(),
        )
        .unwrap();
    sqlx::query(
        "INSERT INTO pending_authorizations (state_hash, profile_id, started_by, method, leg, sign_in_follows, \
         custom_app_id, functions, nonce, previous_status, previous_reason, created_at, expires_at, sealed_secrets, \
         scan_targets) \
         VALUES ($1, $2, $3, 'admin', 'admin_consent', 1, $4, $5, $6, 'invalid', NULL, $7, $8, $9, $10)",
    )
    .bind(&want.state_hash)
    .bind(p.id.to_string())
    .bind(serde_json::to_string(&want.started_by).unwrap())
    .bind(want.custom_app_id.map(|a| a.to_string()))
    .bind(serde_json::to_string(&want.functions).unwrap())
    .bind(&nonce)
    .bind(want.created_at.unix_timestamp_nanos() as i64)
    .bind(want.expires_at.unix_timestamp_nanos() as i64)
    .bind(sealed)
    .bind(serde_json::to_string(&want.scan_targets).unwrap())
    .execute(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();

    // Opening applies 0010 and seals the nonce; the record reads back whole.
    let store = open_with(&path, &KEY).await;
    let mut c = raw(&path).await;
    let (legacy, held): (Option<String>, i64) = sqlx::query_as(
        "SELECT legacy_nonce, (SELECT COUNT(*) FROM pending_authorizations) FROM pending_authorizations",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!((legacy, held), (None, 1), "the plaintext nonce is cleared");
    c.close().await.unwrap();
    assert_eq!(
        store.seal_legacy_nonces().await.unwrap(),
        0,
        "a second pass finds nothing to seal"
    );
    let got = store
        .pending_for_profile(p.id)
        .await
        .unwrap()
        .expect("the re-authorization in flight survives the upgrade");
    assert_eq!(got.nonce, nonce);
    assert_eq!(got.secrets.expose_secret(), want.secrets.expose_secret());
    assert_eq!(got.functions, want.functions);
    store.close().await;
    // Not even in the pages the migration freed.
    for (file, bytes) in database_files(dir.path()) {
        assert!(
            !contains(&bytes, nonce.as_bytes()),
            "the old plaintext nonce is still in {file:?}"
        );
    }
}
