//! Copying a whole installation from one database to another (`consentry db copy`): SQLite to PostgreSQL
//! when a deployment grows into several replicas, and back.
//!
//! - Every table of [`TABLES`] is copied, parents before children, in batches of multi-row `INSERT`s
//!   inside **one transaction on the target**: a failure leaves the target as empty as it was.
//! - The source is read in one snapshot (a read transaction; `REPEATABLE READ` on PostgreSQL), so a
//!   running installation can be copied, though writes made after the snapshot are not.
//! - Values are copied as they are stored. Secrets stay sealed: the ciphertext is copied byte for byte
//!   and opens on the target with the **same master key** (each sealed value is bound to its row's
//!   identity, which the copy keeps).
//! - The target must be empty (every table of [`TABLES`] without rows); there is no merging.
//! - Both databases are at this build's schema version (opening a store applies its migrations).
//! - A table the source or the target has that [`TABLES`] does not name is refused before anything is
//!   written, so a table added by a later migration but forgotten here cannot be lost silently; a unit
//!   test also compares [`TABLES`] with what the migrations create.
//! - At the end the rows of every table are counted on both sides and must match.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, AssertSqlSafe, Row as _};

use crate::sql::{Dialect, SqlStore};

/// A table [`copy`] knows: its name and the columns that order its rows (its primary key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    /// The table's name.
    pub name: &'static str,
    /// `ORDER BY` of the source read (the primary key), so batches are stable.
    pub order_by: &'static str,
    /// A column filled from a sequence on PostgreSQL (`GENERATED … AS IDENTITY` or `BIGSERIAL`): its
    /// values are copied as they are, and the sequence is moved past the largest one.
    pub sequence_column: Option<&'static str>,
    /// The migrations insert this table's rows (e.g. the audit chain's head): the target's are replaced by
    /// the source's rather than counted as data.
    pub seeded: bool,
}

const fn table(name: &'static str, order_by: &'static str) -> TableSpec {
    TableSpec {
        name,
        order_by,
        sequence_column: None,
        seeded: false,
    }
}

/// Every table of the schema, parents before children: the one list to extend when a migration adds a
/// table (the unit test `tables_match_the_migrations` fails until it is here).
pub const TABLES: &[TableSpec] = &[
    table("organizations", "id"),
    table("tenants", "id"),
    table("profiles", "id"),
    TableSpec {
        name: "profile_history",
        order_by: "seq",
        sequence_column: Some("seq"),
        seeded: false,
    },
    table("secrets", "profile_id, kind"),
    table("pending_authorizations", "state_hash"),
    table("microsoft_sign_in_attempts", "state_hash"),
    table("pending_connections", "state_hash"),
    table("invitations", "token_hash"),
    table("check_schedule", "profile_id"),
    table("webhooks", "id"),
    TableSpec {
        name: "webhook_deliveries",
        order_by: "seq",
        sequence_column: Some("seq"),
        seeded: false,
    },
    table("api_keys", "id"),
    table("operator_accounts", "id"),
    table("console_sessions", "token_hash"),
    table("personal_tokens", "id"),
    table("scan_profiles", "id"),
    table("rollout_members", "catalog_version, profile_id"),
    table("campaigns", "id"),
    table("campaign_tenants", "campaign_id, tenant_id"),
    table("campaign_members", "campaign_id, profile_id"),
    table("tenant_contacts", "tenant_id, position"),
    table("email_outbox", "id"),
    table("digest_recipients", "org_id, position"),
    table("digest_days", "org_id"),
    table("sign_in_throttle", "throttle_key"),
    table("sign_in_devices", "token_hash, username"),
    table(
        "vendor_credential_alerts",
        "app, cloud, credential_id, stage",
    ),
    table("audit_log", "seq"),
    TableSpec {
        name: "audit_head",
        order_by: "slot",
        sequence_column: None,
        seeded: true,
    },
];

/// Tables that belong to the database's machinery, not to the installation (each side has its own).
const NOT_COPIED: &[&str] = &["_sqlx_migrations"];

/// Rows per `INSERT` (well under both dialects' limits on bound parameters).
const BATCH_ROWS: usize = 200;

/// Why a copy was refused or failed. Nothing is written to the target unless the copy succeeds.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The source and the target are the same database.
    #[error("the source and the target are the same database; copy to another one")]
    SameDatabase,
    /// A database has a table this build does not know how to copy.
    #[error(
        "the {side} database has a table `{table}` that this build of Consentry does not copy; refusing, so that \
         nothing is lost silently. Use the Consentry version that created it (or add the table to \
         consentry_store::copy::TABLES)"
    )]
    UnknownTable {
        /// `source` or `target`.
        side: &'static str,
        /// The table.
        table: String,
    },
    /// A database lacks a table this build copies.
    #[error(
        "the {side} database has no table `{table}`: it is not a Consentry database at this build's schema version"
    )]
    MissingTable {
        /// `source` or `target`.
        side: &'static str,
        /// The table.
        table: &'static str,
    },
    /// The two databases are at different schema versions.
    #[error(
        "the source is at schema version {source_version:?} and the target at {target_version:?}; run `consentry \
         migrate` on both with this build first"
    )]
    SchemaMismatch {
        /// The source's newest applied migration.
        source_version: Option<i64>,
        /// The target's.
        target_version: Option<i64>,
    },
    /// The target already holds data.
    #[error(
        "the target database is not empty (table `{table}` has {rows} rows); copy only into a freshly created, \
         empty database"
    )]
    TargetNotEmpty {
        /// The first non-empty table.
        table: &'static str,
        /// Its rows.
        rows: i64,
    },
    /// Counting after the copy found a difference.
    #[error(
        "table `{table}` has {source_rows} rows in the source but {target_rows} in the target after the copy; the \
         target was left as written, check it before using it"
    )]
    CountMismatch {
        /// The table.
        table: &'static str,
        /// Rows in the source snapshot.
        source_rows: i64,
        /// Rows in the target.
        target_rows: i64,
    },
    /// A database statement failed.
    #[error("{context}: {message}")]
    Database {
        /// What was being done.
        context: String,
        /// The database's message.
        message: String,
    },
}

fn db(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> CopyError {
    let context = context.into();
    move |e| CopyError::Database {
        context,
        message: e.to_string(),
    }
}

/// Rows copied per table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    /// The table.
    pub table: &'static str,
    /// Rows in the source snapshot.
    pub source_rows: i64,
    /// Rows in the target after the copy.
    pub target_rows: i64,
}

/// What a copy did: every table of [`TABLES`] in order, with its row counts on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Per table, in copy order.
    pub tables: Vec<TableCount>,
}

/// How far a copy got, reported to [`copy`]'s observer when a table starts (`copied` 0) and after each
/// batch written to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyProgress {
    /// The table being copied.
    pub table: &'static str,
    /// Its rows written so far.
    pub copied: i64,
    /// Its rows in the source snapshot.
    pub rows: i64,
}

/// How a column's values are read and bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Real,
    Text,
    Bytes,
}

fn kind_of(declared: &str) -> Kind {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") || t.contains("SERIAL") {
        Kind::Int
    } else if t.contains("BYTEA") || t.contains("BLOB") {
        Kind::Bytes
    } else if t.contains("REAL")
        || t.contains("DOUB")
        || t.contains("FLOA")
        || t.contains("NUMERIC")
    {
        Kind::Real
    } else {
        Kind::Text
    }
}

/// The database's own list of tables (without SQLite's internal ones).
async fn table_names(pool: &AnyPool, dialect: Dialect) -> Result<Vec<String>, CopyError> {
    let sql = match dialect {
        Dialect::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        }
        Dialect::Postgres => {
            "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
        }
    };
    sqlx::query_scalar::<_, String>(sql)
        .fetch_all(pool)
        .await
        .map_err(db("listing the database's tables"))
}

/// The columns of `table` with their kinds, in the table's order.
async fn columns(
    pool: &AnyPool,
    dialect: Dialect,
    table: &str,
) -> Result<Vec<(String, Kind)>, CopyError> {
    let rows = match dialect {
        Dialect::Sqlite => {
            // `table` comes from TABLES (a constant), never from input.
            sqlx::query(AssertSqlSafe(format!(
                "SELECT name, type FROM pragma_table_info('{table}') ORDER BY cid"
            )))
            .fetch_all(pool)
            .await
        }
        Dialect::Postgres => {
            sqlx::query(
                "SELECT CAST(column_name AS TEXT) AS name, CAST(data_type AS TEXT) AS type \
                 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 \
                 ORDER BY ordinal_position",
            )
            .bind(table.to_string())
            .fetch_all(pool)
            .await
        }
    }
    .map_err(db(format!("reading the columns of {table}")))?;
    rows.iter()
        .map(|r| {
            let name: String = r.try_get("name").map_err(db("reading a column name"))?;
            let declared: String = r.try_get("type").map_err(db("reading a column type"))?;
            Ok((name, kind_of(&declared)))
        })
        .collect()
}

/// Checks one side's table list against [`TABLES`].
fn check_tables(side: &'static str, names: &[String]) -> Result<(), CopyError> {
    for name in names {
        if NOT_COPIED.contains(&name.as_str()) {
            continue;
        }
        if !TABLES.iter().any(|t| t.name == name) {
            return Err(CopyError::UnknownTable {
                side,
                table: name.clone(),
            });
        }
    }
    for t in TABLES {
        if !names.iter().any(|n| n == t.name) {
            return Err(CopyError::MissingTable {
                side,
                table: t.name,
            });
        }
    }
    Ok(())
}

/// One value read from the source, typed by the target's column.
enum Value {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

fn read_value(row: &AnyRow, i: usize, kind: Kind, table: &str) -> Result<Value, CopyError> {
    let ctx = || format!("reading column {i} of a {table} row");
    Ok(match kind {
        Kind::Int => Value::Int(row.try_get(i).map_err(db(ctx()))?),
        Kind::Real => Value::Real(row.try_get(i).map_err(db(ctx()))?),
        Kind::Text => Value::Text(row.try_get(i).map_err(db(ctx()))?),
        Kind::Bytes => Value::Bytes(row.try_get(i).map_err(db(ctx()))?),
    })
}

async fn count(conn: &mut sqlx::AnyConnection, table: &str, side: &str) -> Result<i64, CopyError> {
    sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(conn)
        .await
        .map_err(db(format!("counting the rows of {table} in the {side}")))
}

/// Copies every table from `source` into the empty `target` (see the module documentation), telling
/// `progress` how far it got.
pub async fn copy(
    source: &SqlStore,
    target: &SqlStore,
    progress: &mut (dyn FnMut(CopyProgress) + Send),
) -> Result<CopyReport, CopyError> {
    let (src, dst) = (source.pool(), target.pool());
    let (src_dialect, dst_dialect) = (source.dialect(), target.dialect());

    let versions = (
        source
            .schema_version()
            .await
            .map_err(|e| CopyError::Database {
                context: "reading the source's schema version".into(),
                message: e.to_string(),
            })?,
        target
            .schema_version()
            .await
            .map_err(|e| CopyError::Database {
                context: "reading the target's schema version".into(),
                message: e.to_string(),
            })?,
    );
    if versions.0.applied != versions.1.applied {
        return Err(CopyError::SchemaMismatch {
            source_version: versions.0.applied,
            target_version: versions.1.applied,
        });
    }
    check_tables("source", &table_names(src, src_dialect).await?)?;
    check_tables("target", &table_names(dst, dst_dialect).await?)?;

    // On SQLite the target's write lock is taken before its emptiness is read.
    let mut out = crate::sql::begin_write_on(dst, dst_dialect)
        .await
        .map_err(db("starting the target's transaction"))?;
    for t in TABLES.iter().filter(|t| !t.seeded) {
        let rows = count(&mut out, t.name, "target").await?;
        if rows > 0 {
            return Err(CopyError::TargetNotEmpty {
                table: t.name,
                rows,
            });
        }
    }
    if same_database(source, target).await? {
        return Err(CopyError::SameDatabase);
    }

    let mut input = src
        .begin()
        .await
        .map_err(db("starting the source's read transaction"))?;
    if src_dialect == Dialect::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *input)
            .await
            .map_err(db("taking a snapshot of the source"))?;
    }

    let mut report = Vec::with_capacity(TABLES.len());
    for t in TABLES {
        let cols = columns(dst, dst_dialect, t.name).await?;
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        let list = names.join(", ");
        let overriding = match (dst_dialect, t.sequence_column) {
            // An identity column GENERATED ALWAYS takes given values only when told to.
            (Dialect::Postgres, Some(_)) => " OVERRIDING SYSTEM VALUE",
            _ => "",
        };
        let source_rows = count(&mut input, t.name, "source").await?;
        progress(CopyProgress {
            table: t.name,
            copied: 0,
            rows: source_rows,
        });
        if t.seeded {
            // The target's migration-made rows give way to the source's (the target holds no data: checked
            // above).
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {}", t.name)))
                .execute(&mut *out)
                .await
                .map_err(db(format!("clearing {} in the target", t.name)))?;
        }
        let mut offset: i64 = 0;
        loop {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT {list} FROM {} ORDER BY {} LIMIT $1 OFFSET $2",
                t.name, t.order_by
            )))
            .bind(BATCH_ROWS as i64)
            .bind(offset)
            .fetch_all(&mut *input)
            .await
            .map_err(db(format!("reading {} from the source", t.name)))?;
            if rows.is_empty() {
                break;
            }
            let mut values = Vec::with_capacity(rows.len() * cols.len());
            let mut tuples = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut ph = Vec::with_capacity(cols.len());
                for (i, (_, kind)) in cols.iter().enumerate() {
                    values.push(read_value(row, i, *kind, t.name)?);
                    ph.push(format!("${}", values.len()));
                }
                tuples.push(format!("({})", ph.join(", ")));
            }
            let sql = format!(
                "INSERT INTO {} ({list}){overriding} VALUES {}",
                t.name,
                tuples.join(", ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for v in values {
                q = match v {
                    Value::Int(x) => q.bind(x),
                    Value::Real(x) => q.bind(x),
                    Value::Text(x) => q.bind(x),
                    Value::Bytes(x) => q.bind(x),
                };
            }
            q.execute(&mut *out)
                .await
                .map_err(db(format!("writing {} to the target", t.name)))?;
            offset += rows.len() as i64;
            progress(CopyProgress {
                table: t.name,
                copied: offset,
                rows: source_rows,
            });
        }
        if let (Dialect::Postgres, Some(col)) = (dst_dialect, t.sequence_column) {
            // New rows continue after the copied ones.
            sqlx::query(AssertSqlSafe(format!(
                "SELECT setval(pg_get_serial_sequence('{0}', '{col}'), COALESCE((SELECT MAX({col}) FROM {0}), 0) + 1, false)",
                t.name
            )))
            .execute(&mut *out)
            .await
            .map_err(db(format!("moving the sequence of {} past the copied rows", t.name)))?;
        }
        let target_rows = count(&mut out, t.name, "target").await?;
        if target_rows != source_rows {
            return Err(CopyError::CountMismatch {
                table: t.name,
                source_rows,
                target_rows,
            });
        }
        report.push(TableCount {
            table: t.name,
            source_rows,
            target_rows,
        });
    }
    out.commit()
        .await
        .map_err(db("committing the copy on the target"))?;
    input
        .rollback()
        .await
        .map_err(db("ending the source's read transaction"))?;
    Ok(CopyReport { tables: report })
}

/// Whether both stores are one database: the same dialect and the same identity (SQLite: the main
/// database file; PostgreSQL: database name, server address and port).
async fn same_database(source: &SqlStore, target: &SqlStore) -> Result<bool, CopyError> {
    if source.dialect() != target.dialect() {
        return Ok(false);
    }
    let identity = |store: &SqlStore| {
        let pool = store.pool().clone();
        let dialect = store.dialect();
        async move {
            let sql = match dialect {
                Dialect::Sqlite => {
                    "SELECT COALESCE((SELECT file FROM pragma_database_list WHERE name = 'main'), '')"
                }
                Dialect::Postgres => {
                    "SELECT CAST(current_database() AS TEXT) || '@' || COALESCE(CAST(inet_server_addr() AS TEXT), 'local') || ':' || CAST(COALESCE(inet_server_port(), 0) AS TEXT)"
                }
            };
            sqlx::query_scalar::<_, String>(sql)
                .fetch_one(&pool)
                .await
                .map_err(db("identifying a database"))
        }
    };
    let (a, b) = (identity(source).await?, identity(target).await?);
    // An in-memory SQLite database has no file: two of them are never the same.
    Ok(!a.is_empty() && a == b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sealer;

    /// A table added by a migration must be added to TABLES, or copies would refuse every database.
    #[tokio::test]
    async fn tables_match_the_migrations() {
        let store = SqlStore::open("sqlite::memory:", Sealer::from_key_bytes(&[1; 32]))
            .await
            .unwrap();
        let names = table_names(store.pool(), Dialect::Sqlite).await.unwrap();
        check_tables("source", &names).unwrap_or_else(|e| panic!("{e}"));
        let known: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| !NOT_COPIED.contains(n))
            .collect();
        assert_eq!(known.len(), TABLES.len(), "{known:?}");
    }

    /// The observer hears of every table in copy order, then of each batch written, up to the table's rows.
    #[tokio::test]
    async fn progress_is_reported_per_table_and_batch() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| {
            let url = format!("sqlite://{}", dir.path().join(name).display());
            async move {
                SqlStore::open(&url, Sealer::from_key_bytes(&[1; 32]))
                    .await
                    .unwrap()
            }
        };
        let (source, target) = (open("source.db").await, open("target.db").await);
        let orgs = BATCH_ROWS + 1;
        for i in 0..orgs {
            crate::story::new_org(&source, &format!("org {i}")).await;
        }
        let mut events = Vec::new();
        copy(&source, &target, &mut |p| events.push(p))
            .await
            .unwrap();
        let started: Vec<&str> = events
            .iter()
            .filter(|p| p.copied == 0)
            .map(|p| p.table)
            .collect();
        let all: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        assert_eq!(started, all);
        let rows = orgs as i64;
        let organizations: Vec<(i64, i64)> = events
            .iter()
            .filter(|p| p.table == "organizations")
            .map(|p| (p.copied, p.rows))
            .collect();
        assert_eq!(
            organizations,
            [(0, rows), (BATCH_ROWS as i64, rows), (rows, rows)]
        );
    }

    #[test]
    fn an_unknown_table_is_refused_by_name() {
        let mut names: Vec<String> = TABLES.iter().map(|t| t.name.to_string()).collect();
        names.push("imported_later".into());
        let err = check_tables("source", &names).unwrap_err();
        assert!(
            matches!(&err, CopyError::UnknownTable { side: "source", table } if table == "imported_later"),
            "{err}"
        );
        assert!(err.to_string().contains("TABLES"), "{err}");
        names.retain(|n| n != "secrets" && n != "imported_later");
        assert!(matches!(
            check_tables("target", &names),
            Err(CopyError::MissingTable {
                side: "target",
                table: "secrets"
            })
        ));
    }

    #[test]
    fn declared_types_map_to_kinds() {
        assert_eq!(kind_of("BIGINT"), Kind::Int);
        assert_eq!(kind_of("integer"), Kind::Int);
        assert_eq!(kind_of("bigserial"), Kind::Int);
        assert_eq!(kind_of("bytea"), Kind::Bytes);
        assert_eq!(kind_of("BLOB"), Kind::Bytes);
        assert_eq!(kind_of("text"), Kind::Text);
        assert_eq!(kind_of("double precision"), Kind::Real);
    }
}
