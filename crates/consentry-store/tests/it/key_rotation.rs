//! Master key rotation on SQLite and PostgreSQL: every sealed value (profiles' refresh tokens and
//! certificates, pending re-authorizations, webhook secrets) stays readable before, during (a reader
//! running concurrently, on a store opened before the rotation, reads everything between batches) and
//! after; the running store seals new values under the new key without a restart; retiring the old key
//! refuses while a value is still under it and, once done, a store with only the new key opens
//! everything. PostgreSQL needs `CONSENTRY_TEST_POSTGRES_URL`; without it that half is skipped.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use consentry_domain::{ProfileId, SecretKind, Store, StoreError, Webhook};
use consentry_store::story::{self, minimal_profile, new_org, new_tenant};
use consentry_store::{Sealer, SqlStore, old_key_path, rotate_key_files};
use secrecy::{ExposeSecret as _, SecretSlice};
use time::OffsetDateTime;
use tokio::sync::watch;

/// Everything sealed, with the plaintext expected back.
#[derive(Clone, Default)]
struct Expected {
    secrets: BTreeMap<(ProfileId, &'static str), Vec<u8>>,
    pending: BTreeMap<ProfileId, Vec<u8>>,
    webhooks: BTreeMap<consentry_domain::WebhookId, Vec<u8>>,
}

fn kind(k: &str) -> SecretKind {
    match k {
        "refresh_token" => SecretKind::RefreshToken,
        _ => SecretKind::ClientCertificate,
    }
}

async fn read_all(store: &dyn Store, want: &Expected) -> Result<usize, String> {
    let mut n = 0;
    for ((p, k), v) in &want.secrets {
        let got = store
            .get_secret(*p, kind(k))
            .await
            .map_err(|e| format!("secret {p}/{k}: {e}"))?
            .ok_or_else(|| format!("secret {p}/{k} is gone"))?;
        if got.expose_secret() != v.as_slice() {
            return Err(format!("secret {p}/{k} reads back different"));
        }
        n += 1;
    }
    for (p, v) in &want.pending {
        let got = store
            .pending_for_profile(*p)
            .await
            .map_err(|e| format!("pending of {p}: {e}"))?
            .ok_or_else(|| format!("pending of {p} is gone"))?;
        if got.secrets.expose_secret() != v.as_slice() {
            return Err(format!("pending of {p} reads back different"));
        }
        n += 1;
    }
    for (id, v) in &want.webhooks {
        let got = store
            .webhook_secret(*id)
            .await
            .map_err(|e| format!("webhook {id}: {e}"))?
            .ok_or_else(|| format!("webhook {id} is gone"))?;
        if got.expose_secret() != v.as_slice() {
            return Err(format!("webhook {id} reads back different"));
        }
        n += 1;
    }
    Ok(n)
}

async fn fill(store: &dyn Store) -> Expected {
    let org = new_org(store, "rotation").await;
    let tenant = new_tenant(store, &org, "rot").await;
    let mut want = Expected::default();
    for i in 0..23u32 {
        let p = minimal_profile(&tenant, OffsetDateTime::now_utc());
        store
            .insert_profile(&p, story::created_event(&p))
            .await
            .unwrap();
        let rt = format!("RT-{i}-{}", p.id).into_bytes();
        store
            .put_secret(
                p.id,
                SecretKind::RefreshToken,
                &SecretSlice::from(rt.clone()),
            )
            .await
            .unwrap();
        want.secrets.insert((p.id, "refresh_token"), rt);
        if i % 3 == 0 {
            let cert = format!("PFX-{i}").into_bytes();
            store
                .put_secret(
                    p.id,
                    SecretKind::ClientCertificate,
                    &SecretSlice::from(cert.clone()),
                )
                .await
                .unwrap();
            want.secrets.insert((p.id, "client_certificate"), cert);
        }
        if i % 4 == 0 {
            let pending = story::full_pending(p.id, OffsetDateTime::now_utc());
            want.pending
                .insert(p.id, pending.secrets.expose_secret().to_vec());
            store.put_pending(&pending).await.unwrap();
        }
    }
    for i in 0..3 {
        let hook = Webhook {
            id: consentry_domain::WebhookId::new_random(),
            org_id: org.id,
            url: format!("https://hooks.example/{i}"),
            created_at: OffsetDateTime::now_utc(),
        };
        let secret = format!("whsec-{i}").into_bytes();
        store
            .insert_webhook(&hook, &SecretSlice::from(secret.clone()))
            .await
            .unwrap();
        want.webhooks.insert(hook.id, secret);
    }
    want
}

async fn scenario(url: String, key_dir: &Path) {
    let key = key_dir.join("master.key");
    // The running server: opened before the rotation, never restarted.
    let running = Arc::new(
        SqlStore::open(&url, Sealer::from_key_files(&key).unwrap())
            .await
            .unwrap(),
    );
    let first_key = running.key_id();
    let want = fill(running.as_ref()).await;
    let total = read_all(running.as_ref(), &want).await.unwrap();
    let census = running.key_census().await.unwrap();
    assert_eq!(
        census.under(&first_key),
        total as u64,
        "all under the first key"
    );

    let files = rotate_key_files(&key).unwrap();
    assert!(!files.resumed);
    assert_eq!(files.old_key_id, first_key);
    assert_ne!(files.current_key_id, first_key);
    assert!(
        old_key_path(&key).exists(),
        "the old key is kept as master.key.old"
    );
    let rotating = SqlStore::open(&url, Sealer::from_key_files(&key).unwrap())
        .await
        .unwrap();
    assert_eq!(rotating.key_id(), files.current_key_id);

    // A reader on the running store, reading everything over and over; each finished pass is announced.
    let (pass_tx, mut pass_rx) = watch::channel(0u64);
    let (stop_tx, stop_rx) = watch::channel(false);
    let reader = {
        let running = Arc::clone(&running);
        let want = want.clone();
        tokio::spawn(async move {
            let mut passes = 0u64;
            while !*stop_rx.borrow() {
                read_all(running.as_ref(), &want).await?;
                passes += 1;
                let _ = pass_tx.send(passes);
            }
            Ok::<u64, String>(passes)
        })
    };
    let mut resealer = rotating.resealer(5);
    let mut batches = 0;
    loop {
        let more = resealer.step().await.unwrap();
        batches += 1;
        // Two more passes: at least one whole pass ran after this batch, on a half-rotated database.
        let seen = *pass_rx.borrow_and_update();
        if pass_rx.wait_for(|p| *p >= seen + 2).await.is_err() || !more {
            // The reader stopped (its error is reported below), or the walk is over.
            break;
        }
    }
    stop_tx.send(true).unwrap();
    let passes = reader
        .await
        .unwrap()
        .expect("every read during the rotation succeeds");
    assert!(
        passes >= 2 * batches,
        "{passes} passes over {batches} batches"
    );
    assert_eq!(
        resealer.resealed, total as u64,
        "every value re-sealed once"
    );
    let census = rotating.key_census().await.unwrap();
    assert_eq!(census.not_under(&files.current_key_id), 0, "{census:?}");
    assert_eq!(read_all(running.as_ref(), &want).await.unwrap(), total);

    // The running store now seals under the new key, without a restart.
    let (p, _) = want.secrets.keys().next().copied().unwrap();
    running
        .put_secret(
            p,
            SecretKind::RefreshToken,
            &SecretSlice::from(b"RT-new".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(running.key_id(), files.current_key_id);
    assert_eq!(
        rotating
            .key_census()
            .await
            .unwrap()
            .not_under(&files.current_key_id),
        0
    );
    let mut want = want;
    want.secrets
        .insert((p, "refresh_token"), b"RT-new".to_vec());

    // A process that still seals under the old key (e.g. a replica not given the new key files).
    let stale = SqlStore::open(
        &url,
        Sealer::load_or_create_key_file(old_key_path(&key)).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(stale.key_id(), first_key);
    stale
        .put_secret(
            p,
            SecretKind::RefreshToken,
            &SecretSlice::from(b"RT-stale".to_vec()),
        )
        .await
        .unwrap();
    want.secrets
        .insert((p, "refresh_token"), b"RT-stale".to_vec());
    let refused = rotating.retire_old_key_file(&key).await.unwrap_err();
    assert!(
        matches!(&refused, StoreError::Conflict(m) if m.contains("1 sealed value") && m.contains(&first_key)),
        "{refused}"
    );
    assert!(
        old_key_path(&key).exists(),
        "kept while a value is under it"
    );

    // A rotation run again resumes (no new key) and finishes; then retiring works.
    let again = rotate_key_files(&key).unwrap();
    assert!(again.resumed);
    assert_eq!(again.current_key_id, files.current_key_id);
    assert_eq!(rotating.resealer(50).run().await.unwrap(), 1);
    assert_eq!(
        rotating.retire_old_key_file(&key).await.unwrap(),
        Some(first_key.clone())
    );
    assert!(!old_key_path(&key).exists());
    assert_eq!(rotating.retire_old_key_file(&key).await.unwrap(), None);

    // Only the new key: everything opens.
    let fresh = SqlStore::open(&url, Sealer::from_key_files(&key).unwrap())
        .await
        .unwrap();
    assert!(fresh.old_key_ids().is_empty());
    assert_eq!(read_all(&fresh, &want).await.unwrap(), total);
    assert_eq!(read_all(running.as_ref(), &want).await.unwrap(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    scenario(url, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_on_postgres() {
    let Some(admin) = story::postgres_admin_url("PostgreSQL rotation test") else {
        return;
    };
    let db = story::TestDatabase::create(&admin, "consentry_test").await;
    let dir = tempfile::tempdir().unwrap();
    scenario(db.url.clone(), dir.path()).await;
}
