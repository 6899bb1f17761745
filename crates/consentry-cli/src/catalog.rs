//! `consentry catalog`: the app-type catalog — list, show, and check a catalog file.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use consentry_server::Config;
use consentry_server::startup::load_catalog;

use crate::{JsonFlag, output};

#[derive(Debug, Subcommand)]
pub enum CatalogCmd {
    /// List the app types.
    List(JsonFlag),
    /// Show one app type by key (see `catalog list`).
    Show {
        /// App type key, e.g. cloud-backup-delegated.
        key: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Check a catalog file and report the first problem with its line.
    Check {
        /// The TOML file.
        file: PathBuf,
    },
}

/// Runs a catalog command.
pub fn run(cmd: CatalogCmd, cfg: &Config) -> anyhow::Result<()> {
    let catalog = load_catalog(cfg)?;
    match cmd {
        CatalogCmd::List(o) => output::catalog_list(&catalog, o.json),
        CatalogCmd::Show { key, out } => {
            let at = catalog.app_type(&key).with_context(|| {
                format!("unknown app type {key:?}; `consentry catalog list` shows the keys")
            })?;
            output::app_type(&catalog, at, out.json)
        }
        CatalogCmd::Check { file } => {
            let c = consentry_catalog::Catalog::load_file(&file)?;
            println!(
                "{}: valid catalog version {} with {} app types",
                file.display(),
                c.version,
                c.app_types.len()
            );
            Ok(())
        }
    }
}
