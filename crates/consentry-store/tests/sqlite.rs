//! The store on SQLite: the behaviour story, migrations, persistence across reopening, and secrets
//! at rest (sealed, bound to their row, refused under a wrong key).

use std::path::{Path, PathBuf};

use consentry_domain::{SecretKind, Store, StoreError};
use consentry_store::story;
use consentry_store::{Sealer, SqlStore};
use secrecy::{ExposeSecret as _, SecretSlice};

const KEY: [u8; 32] = [0x42; 32];

fn db_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

async fn open_file(dir: &tempfile::TempDir) -> (SqlStore, PathBuf) {
    let path = dir.path().join("consentry.db");
    let store = SqlStore::open(&db_url(&path), Sealer::from_key_bytes(&KEY))
        .await
        .expect("open the SQLite store");
    (store, path)
}

#[tokio::test]
async fn story_on_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open_file(&dir).await;
    story::run(&store).await;
    store.close().await;
}

#[tokio::test]
async fn story_in_memory() {
    let store = SqlStore::open("sqlite::memory:", Sealer::from_key_bytes(&KEY)).await.unwrap();
    story::run(&store).await;
}
