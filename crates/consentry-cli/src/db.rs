//! `consentry migrate` and `consentry db`: schema migrations, and copying a whole installation between
//! SQLite and PostgreSQL.

use anyhow::Context as _;
use clap::Subcommand;
use consentry_server::Config;

use crate::progress::Progress;

#[derive(Debug, Subcommand)]
pub enum DbCmd {
    /// Copy every table from one database into another, empty one (e.g. SQLite to PostgreSQL when moving
    /// to several replicas, or back). Secrets are copied still sealed: the target needs the same master key.
    /// Both databases are migrated to this build's schema first; the copy is one transaction on the target
    /// and ends by comparing the row counts of every table.
    Copy {
        /// Source database URL (`sqlite://PATH` or `postgres://…`).
        #[arg(long)]
        from: String,
        /// Target database URL; it must exist (PostgreSQL) and hold no data.
        #[arg(long)]
        to: String,
    },
}

/// Runs a database command.
pub async fn run(cmd: DbCmd) -> anyhow::Result<()> {
    match cmd {
        DbCmd::Copy { from, to } => db_copy(&from, &to).await,
    }
}

/// `consentry migrate`: applies the database migrations (opening the store does) and exits.
pub async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    consentry_server::startup::open_store(cfg)
        .await?
        .close()
        .await;
    println!(
        "database {} is up to date",
        consentry_server::config::redact_url(&cfg.database_url())
    );
    Ok(())
}

/// `consentry db copy`. The copy moves sealed secrets as they are and never opens one, so it needs no
/// master key (the stores get a throw-away one); the copied installation needs the original key. Each table's
/// progress goes to standard error.
async fn db_copy(from: &str, to: &str) -> anyhow::Result<()> {
    use consentry_server::config::redact_url;
    let open = |url: String, what: &'static str| async move {
        let sealer = consentry_store::Sealer::from_key_bytes(&rand::random::<[u8; 32]>());
        consentry_store::SqlStore::open(&url, sealer)
            .await
            .with_context(|| format!("cannot open the {what} database {}", redact_url(&url)))
    };
    let source = open(from.to_string(), "source").await?;
    let target = open(to.to_string(), "target").await?;
    let mut progress = Progress::on_stderr();
    let report = consentry_store::copy::copy(&source, &target, &mut |p| {
        if p.copied == 0 {
            progress.begin("copied", p.table, p.rows as u64);
        } else {
            progress.set(p.copied as u64);
        }
    })
    .await;
    progress.finish();
    source.close().await;
    target.close().await;
    let report = report?;
    println!("copied {} to {}", redact_url(from), redact_url(to));
    println!("{:<24} {:>10} {:>10}", "table", "source", "target");
    for t in &report.tables {
        println!(
            "{:<24} {:>10} {:>10}",
            t.table, t.source_rows, t.target_rows
        );
    }
    println!(
        "every table has the same row count on both sides; secrets are still sealed: start Consentry on the \
         target with the same master key"
    );
    Ok(())
}
