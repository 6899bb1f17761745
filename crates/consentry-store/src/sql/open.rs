//! Opening a [`SqlStore`]: the store URL, the dialect's migrations and connection set-up, and the
//! store's own operations (health check, schema version, key IDs, closing).

use std::str::FromStr as _;
use std::sync::Arc;

use consentry_domain::StoreError;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migrate as _, Migrator};
use sqlx::{AnyPool, AssertSqlSafe, Executor as _};

use super::{SqlStore, db_err, migrate_err};
use crate::sealer::Sealer;

/// The SQLite schema's forward-only migrations, embedded in the binary and applied at open.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The PostgreSQL schema's forward-only migrations, embedded in the binary and applied at open.
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The table sqlx records applied migrations in.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// How long a connection waits for a lock held by another before giving up.
const BUSY_TIMEOUT_MS: u32 = 5_000;

/// Connections a pool keeps open at most on a file or server database.
const MAX_CONNECTIONS: u32 = 8;

/// A pooled connection idle at least this long is pinged before it is handed out (a server restart or
/// a firewall may have closed it meanwhile); one used more recently is handed out as it is. sqlx's
/// default pings on every acquire: a round trip to the server, or to the SQLite connection's worker
/// thread, before every statement, which doubled the thread wake-ups of a check.
const PING_AFTER_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// The SQL dialect behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (a file, or in memory for tests).
    Sqlite,
    /// PostgreSQL (a server; TLS as the URL's `sslmode` asks).
    Postgres,
}

impl Dialect {
    /// This dialect's forward-only migrations.
    pub(super) fn migrator(self) -> &'static Migrator {
        match self {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Statements run on every new connection before it is used.
    pub(super) fn connection_setup(self) -> Vec<String> {
        match self {
            Dialect::Sqlite => vec![
                "PRAGMA foreign_keys = ON".to_string(),
                format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"),
                // In WAL mode, NORMAL syncs the log at checkpoints instead of at every commit: the
                // database stays consistent after a power loss, which may undo the last commits before
                // it (SQLite's recommendation for WAL). FULL made every check's two writes wait for
                // the disk. See docs/DEPLOYMENT.md.
                "PRAGMA synchronous = NORMAL".to_string(),
            ],
            // Waits for a row lock held by another writer at most this long, like SQLite's busy timeout.
            Dialect::Postgres => vec![format!("SET lock_timeout = {BUSY_TIMEOUT_MS}")],
        }
    }
}

/// Where the schema of an open store stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersion {
    /// The newest migration applied to the database (None on an empty database).
    pub applied: Option<i64>,
    /// The newest migration this build knows.
    pub latest: i64,
}

/// A parsed store URL.
enum Target {
    /// `create`: the file to create (mode 0600) when it is missing, before SQLite opens it.
    Sqlite {
        url: String,
        in_memory: bool,
        create: Option<std::path::PathBuf>,
    },
    Postgres {
        url: String,
    },
}

fn parse_url(url: &str) -> Result<Target, StoreError> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // Passed to sqlx as is: it reads host, port, user, password, database and the TLS settings
        // (`sslmode=verify-full`, `sslrootcert=…`) from the URL.
        return Ok(Target::Postgres { url: url.into() });
    }
    if url == "sqlite::memory:" || url == "sqlite://:memory:" {
        return Ok(Target::Sqlite {
            url: "sqlite::memory:".into(),
            in_memory: true,
            create: None,
        });
    }
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(StoreError::Backend(format!(
            "the database URL scheme {:?} is not supported: use sqlite://PATH (or sqlite::memory: for a throw-away \
             database) or postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            // Only the scheme: the rest of a URL may hold a password.
            url.split(':')
                .next()
                .unwrap_or_default()
                .chars()
                .take(20)
                .collect::<String>()
        )));
    };
    if rest.is_empty() || rest.starts_with('?') {
        return Err(StoreError::Backend(
            "the sqlite:// URL names no file: use sqlite://PATH, e.g. sqlite://consentry.db or sqlite:///var/lib/consentry/consentry.db"
                .into(),
        ));
    }
    let in_memory = rest.contains("mode=memory");
    // Create the file when missing unless the URL chose a mode itself.
    let url = if rest.contains("mode=") {
        format!("sqlite://{rest}")
    } else if rest.contains('?') {
        format!("sqlite://{rest}&mode=rwc")
    } else {
        format!("sqlite://{rest}?mode=rwc")
    };
    // The file Consentry creates itself (owner-only) before SQLite would create it with its default
    // 0644 less the umask. A path with percent-escapes is left to SQLite (it decodes them).
    let path = rest.split('?').next().unwrap_or_default();
    let create = (!in_memory && url.contains("mode=rwc") && !path.contains('%'))
        .then(|| std::path::PathBuf::from(path));
    Ok(Target::Sqlite {
        url,
        in_memory,
        create,
    })
}

/// Creates an empty SQLite database file readable and writable by its owner only (0600, whatever the
/// umask), unless it exists. SQLite gives the `-wal` and `-shm` files it creates later the database
/// file's permissions, so they are owner-only too. An existing file keeps its permissions.
fn create_private_file(path: &std::path::Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(file) => {
            // The mode given to open(2) is reduced by the umask; set it exactly.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                file.set_permissions(std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| {
                        StoreError::Backend(format!(
                            "the database file {} could not be made owner-only (0600): {e}",
                            path.display()
                        ))
                    })?;
            }
            drop(file);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Backend(format!(
            "the database file {} could not be created: {e}; check that its directory exists and is writable",
            path.display()
        ))),
    }
}

impl SqlStore {
    /// Opens the database at `url` and applies pending migrations.
    ///
    /// Accepts `sqlite://PATH` (relative or, with a third slash, absolute; the file is created when
    /// missing) and `sqlite::memory:`; SQLite databases run in WAL mode with foreign keys on and a busy
    /// timeout. Also accepts `postgres://` and `postgresql://` URLs naming an existing database, with TLS
    /// as the URL's `sslmode` asks (`sslmode=verify-full&sslrootcert=/path/ca.pem` verifies the server's
    /// certificate and name); the password may be in the URL or in `PGPASSWORD`.
    pub async fn open(url: &str, sealer: Sealer) -> Result<SqlStore, StoreError> {
        let store = Self::connect(url, sealer, true).await?;
        store.migrate().await?;
        store.seal_legacy_nonces().await?;
        let version = store.schema_version().await?;
        tracing::info!(
            db.dialect = ?store.dialect,
            db.schema_version = version.applied,
            sealer.key_id = %store.sealer.key_id(),
            "store opened"
        );
        Ok(store)
    }

    /// Opens the database at `url` as it is, applying no migration and creating no SQLite file (a
    /// missing file is an error): for inspecting an installation (`consentry doctor`), which reads
    /// [`schema_version`](Self::schema_version) to tell whether it is migrated.
    pub async fn open_unmigrated(url: &str, sealer: Sealer) -> Result<SqlStore, StoreError> {
        Self::connect(url, sealer, false).await
    }

    async fn connect(url: &str, sealer: Sealer, create: bool) -> Result<SqlStore, StoreError> {
        let target = parse_url(url)?;
        sqlx::any::install_default_drivers();
        let (dialect, url, in_memory) = match target {
            Target::Sqlite {
                url,
                in_memory,
                create: create_file,
            } => {
                if let Some(path) = create_file {
                    if create {
                        create_private_file(&path)?;
                    } else if !path.exists() {
                        return Err(StoreError::Backend(format!(
                            "the database file {} does not exist",
                            path.display()
                        )));
                    }
                }
                (Dialect::Sqlite, url, in_memory)
            }
            Target::Postgres { url } => (Dialect::Postgres, url, false),
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Backend(format!("the database URL is not valid: {e}")))?;
        let mut pool_options = AnyPoolOptions::new()
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    for statement in dialect.connection_setup() {
                        conn.execute(AssertSqlSafe(statement)).await?;
                    }
                    Ok(())
                })
            })
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_AFTER_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            });
        pool_options = if in_memory {
            // An in-memory database lives as long as one connection does: keep exactly one, forever.
            pool_options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            pool_options.max_connections(MAX_CONNECTIONS)
        };
        let pool = pool_options
            .connect_with(options)
            .await
            .map_err(|e| db_err("the database could not be opened", e))?;
        if dialect == Dialect::Sqlite && !in_memory {
            // WAL is a property of the file; set it once, on the first connection, before any other is open.
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
                .fetch_one(&pool)
                .await
                .map_err(|e| db_err("the database could not be switched to WAL mode", e))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(journal_mode = %mode, "SQLite did not switch to WAL mode");
            }
        }
        Ok(SqlStore {
            pool,
            sealer: Arc::new(sealer),
            dialect,
        })
    }

    /// Checks that the database answers (for health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("the database does not answer", e))?;
        Ok(())
    }

    fn migrator(&self) -> &'static Migrator {
        self.dialect.migrator()
    }

    /// Applies pending migrations (a no-op when the schema is current). Refuses a database migrated by a
    /// newer build or one whose applied migrations differ from this build's.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.migrator().run(&self.pool).await.map_err(migrate_err)
    }

    /// The newest applied migration and the newest this build knows.
    pub async fn schema_version(&self) -> Result<SchemaVersion, StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| db_err("no database connection", e))?;
        let applied = conn
            .list_applied_migrations(MIGRATIONS_TABLE)
            .await
            .map_err(migrate_err)?;
        Ok(SchemaVersion {
            applied: applied.iter().map(|m| m.version).max(),
            latest: self.migrator().iter().map(|m| m.version).max().unwrap_or(0),
        })
    }

    /// The dialect of the database.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The ID of the master key new secrets are sealed under (safe to log).
    pub fn key_id(&self) -> String {
        self.sealer.key_id()
    }

    /// The IDs of the older master keys this store still opens values with (safe to log).
    pub fn old_key_ids(&self) -> Vec<String> {
        self.sealer.old_key_ids()
    }

    /// Closes every connection (on SQLite this checkpoints the WAL into the main file).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The connection pool (for [`crate::copy`]).
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(matches!(
            parse_url("sqlite::memory:"),
            Ok(Target::Sqlite {
                in_memory: true,
                ..
            })
        ));
        let Ok(Target::Sqlite {
            url,
            in_memory,
            create,
        }) = parse_url("sqlite:///tmp/x.db")
        else {
            panic!("sqlite:///tmp/x.db should parse");
        };
        assert_eq!(url, "sqlite:///tmp/x.db?mode=rwc");
        assert!(!in_memory);
        assert_eq!(create.as_deref(), Some(std::path::Path::new("/tmp/x.db")));
        let Ok(Target::Sqlite { url, create, .. }) = parse_url("sqlite://x.db?mode=ro") else {
            panic!("sqlite://x.db?mode=ro should parse");
        };
        assert_eq!(url, "sqlite://x.db?mode=ro");
        assert_eq!(create, None, "a read-only URL creates nothing");
        for pg in [
            "postgres://u@localhost/db",
            " postgresql://u:p@db.example:5433/consentry?sslmode=verify-full ",
        ] {
            let Ok(Target::Postgres { url }) = parse_url(pg) else {
                panic!("{pg} should parse as PostgreSQL");
            };
            assert_eq!(url, pg.trim(), "PostgreSQL URLs reach sqlx unchanged");
        }
        let Err(StoreError::Backend(msg)) = parse_url("mysql://admin:hunter2@db/x") else {
            panic!("mysql must be refused");
        };
        assert!(
            msg.contains("sqlite://PATH") && msg.contains("postgres://"),
            "{msg}"
        );
        assert!(
            !msg.contains("hunter2"),
            "the refusal must not repeat a password: {msg}"
        );
        assert!(
            matches!(parse_url("sqlite://"), Err(StoreError::Backend(m)) if m.contains("names no file"))
        );
    }
}
