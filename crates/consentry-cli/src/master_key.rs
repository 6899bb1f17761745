//! `consentry master-key …`: rotation of the master key that seals secrets at rest (not the service API
//! keys of `consentry keys`).

use std::sync::Arc;

use clap::Subcommand;
use consentry_domain::SystemClock;
use consentry_domain::audit::AuditAction;
use consentry_server::Config;
use consentry_store::SqlStore;

use crate::progress::Progress;

/// `consentry master-key`: the key that seals secrets at rest (refresh tokens, certificates, pending
/// re-authorizations, webhook secrets). Works on the key file (`master_key_file`, by default
/// `<data_dir>/master.key`).
#[derive(Debug, Subcommand)]
pub enum MasterKeyCmd {
    /// Make a new master key and re-seal every secret under it, in batches, while servers keep running.
    /// The previous key is kept as `<key file>.old` until `consentry master-key retire-old`. Run again
    /// to finish an interrupted rotation.
    Rotate {
        /// Secrets re-sealed per batch.
        #[arg(long, default_value_t = 200)]
        batch: u32,
    },
    /// Remove `<key file>.old` once no secret is sealed under it any more (refuses otherwise).
    RetireOld,
    /// Show how many secrets each master key seals.
    Status,
}

/// The store under the key file (and `<file>.old` during a rotation), opened as `serve` opens it.
async fn open_store(cfg: &Config) -> anyhow::Result<SqlStore> {
    Ok(consentry_server::startup::open_store(cfg).await?)
}

/// Runs a master key command.
pub async fn run(cmd: MasterKeyCmd, cfg: &Config) -> anyhow::Result<()> {
    if cfg.master_key.is_some() {
        anyhow::bail!(
            "the master key is configured inline (master_key / CONSENTRY_MASTER_KEY); rotation works on a key \
             file. Move the key into a file (mode 0600) named by master_key_file, restart, then rotate"
        );
    }
    let path = cfg.master_key_path();
    if !path.exists() {
        anyhow::bail!(
            "there is no master key file at {}: nothing to rotate (the server creates it at first start)",
            path.display()
        );
    }
    let audit = |store: &SqlStore| {
        consentry_domain::AuditLog::new(Arc::new(store.clone()), Arc::new(SystemClock))
    };
    match cmd {
        MasterKeyCmd::Rotate { batch } => {
            let files = consentry_store::rotate_key_files(&path)?;
            if files.resumed {
                println!(
                    "an earlier rotation is not retired yet: finishing it (current key {}, old key {})",
                    files.current_key_id, files.old_key_id
                );
            } else {
                println!(
                    "new master key {} written to {}; the previous key {} is kept in {}",
                    files.current_key_id,
                    path.display(),
                    files.old_key_id,
                    consentry_store::old_key_path(&path).display()
                );
            }
            let store = open_store(cfg).await?;
            let mut resealed = 0;
            let mut left = store.key_census().await?.not_under(&store.key_id());
            let mut progress = Progress::on_stderr();
            progress.begin("re-sealed", "secrets", left);
            // A running server that had not yet noticed the new key may seal a value under the old one
            // during the walk; a few walks catch those.
            for _ in 0..3 {
                let mut walk = store.resealer(batch);
                while walk.step().await? {
                    progress.set(resealed + walk.resealed);
                }
                resealed += walk.resealed;
                left = store.key_census().await?.not_under(&store.key_id());
                if left == 0 {
                    break;
                }
            }
            progress.finish();
            audit(&store)
                .record(
                    &crate::operator(),
                    None,
                    AuditAction::MasterKeyRotated,
                    "master_key",
                    serde_json::json!({
                        "key_id": files.current_key_id,
                        "old_key_id": files.old_key_id,
                        "resealed": resealed,
                        "resumed": files.resumed,
                    }),
                )
                .await;
            println!(
                "re-sealed {resealed} secret(s) under master key {}",
                files.current_key_id
            );
            if left > 0 {
                anyhow::bail!(
                    "{left} secret(s) are still sealed under another key (written meanwhile by a process using \
                     the old key); run `consentry master-key rotate` again"
                );
            }
            println!(
                "every secret is under the new key. Once every server runs with the new key file, remove the \
                 old one with `consentry master-key retire-old`."
            );
            Ok(())
        }
        MasterKeyCmd::RetireOld => {
            let store = open_store(cfg).await?;
            match store.retire_old_key_file(&path).await? {
                Some(old) => {
                    audit(&store)
                        .record(
                            &crate::operator(),
                            None,
                            AuditAction::MasterKeyRetired,
                            "master_key",
                            serde_json::json!({ "old_key_id": old, "key_id": store.key_id() }),
                        )
                        .await;
                    println!(
                        "old master key {old} retired: {} removed",
                        consentry_store::old_key_path(&path).display()
                    );
                }
                None => println!("there is no old master key file; nothing to retire"),
            }
            Ok(())
        }
        MasterKeyCmd::Status => {
            let store = open_store(cfg).await?;
            let current = store.key_id();
            println!("current master key: {current} ({})", path.display());
            for old in store.old_key_ids() {
                println!("old master key:     {old} (opens only)");
            }
            let census = store.key_census().await?;
            if census.by_key.is_empty() {
                println!("no sealed secrets");
            }
            for (key, tables) in &census.by_key {
                let parts: Vec<String> = tables.iter().map(|(t, n)| format!("{t}: {n}")).collect();
                let label = if *key == current { " (current)" } else { "" };
                println!("  {key}{label}: {}", parts.join(", "));
            }
            Ok(())
        }
    }
}
