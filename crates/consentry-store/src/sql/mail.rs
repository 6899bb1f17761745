//! Tenants' contacts and the email outbox on [`SqlStore`] (migration 0014), and organizations'
//! digest recipients with the last day a digest was queued (migration 0015). A message's content is
//! sealed, bound to its ID; messages are queued in multi-row inserts and leased to one sender at a
//! time like checks (`FOR UPDATE SKIP LOCKED` on PostgreSQL); a day's digest is claimed with an
//! upsert that only moves the day forward, in the transaction that queues it.

use async_trait::async_trait;
use consentry_domain::{
    EmailAddress, EmailId, EmailKind, EmailRecord, EmailState, LeasedEmail, MailStore, NewEmail,
    OrgId, StoreError, TenantId,
};
use secrecy::{ExposeSecret, SecretString};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::query::{Arg, Built};
use super::{Dialect, SqlStore, db_err, get, get_parsed, is_foreign_key_violation};
use crate::codec::{opt_time_from_db, time_from_db, time_to_db};
use crate::sealer::Binding;

/// The sealing kind of a message's content.
pub(crate) const CONTENT_KIND: &str = "email_content";

/// Rows per multi-row INSERT (nine bound values each, under both dialects' limits).
const BATCH: usize = 400;

fn address(row: &AnyRow, column: &str) -> Result<EmailAddress, StoreError> {
    get_parsed(row, column, EmailAddress::parse)
}

fn record_from_row(row: &AnyRow) -> Result<EmailRecord, StoreError> {
    let kind: String = get(row, "kind")?;
    let state: String = get(row, "state")?;
    Ok(EmailRecord {
        id: get_parsed(row, "id", EmailId::parse)?,
        org_id: get_parsed(row, "org_id", OrgId::parse)?,
        tenant_id: match get::<Option<String>>(row, "tenant_id")? {
            Some(t) => Some(crate::codec::parse_from_db(
                "tenant_id",
                &t,
                TenantId::parse,
            )?),
            None => None,
        },
        kind: EmailKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend(format!("unknown email kind {kind:?}")))?,
        to: address(row, "recipient")?,
        subject: get(row, "subject")?,
        state: EmailState::parse(&state)
            .ok_or_else(|| StoreError::Backend(format!("unknown email state {state:?}")))?,
        attempts: u32::try_from(get::<i64>(row, "attempts")?).unwrap_or(u32::MAX),
        last_error: get(row, "last_error")?,
        created_at: time_from_db("created_at", get(row, "created_at")?)?,
        sent_at: opt_time_from_db("sent_at", get(row, "sent_at")?)?,
    })
}

fn lease_sql(dialect: Dialect) -> String {
    let lock = match dialect {
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        Dialect::Sqlite => "",
    };
    format!(
        "UPDATE email_outbox SET leased_until = $1 \
         WHERE id IN (SELECT id FROM email_outbox WHERE state = 'queued' AND next_attempt_at <= $2 \
             AND (leased_until IS NULL OR leased_until <= $2) \
             ORDER BY next_attempt_at, id LIMIT $3{lock}) \
         RETURNING id, recipient, subject, sealed_content, attempts"
    )
}

impl SqlStore {
    /// Inserts queued messages, in batches of multi-row inserts, inside `tx`.
    async fn insert_emails(
        &self,
        tx: &mut sqlx::AnyConnection,
        emails: &[NewEmail],
    ) -> Result<(), StoreError> {
        for batch in emails.chunks(BATCH) {
            let mut b = Built::default();
            let mut rows = Vec::with_capacity(batch.len());
            for e in batch {
                let id = e.id.to_string();
                let sealed = self.seal_content(&id, &e.content)?;
                let at = time_to_db(e.created_at)?;
                let cols = [
                    b.arg(Arg::Text(id)),
                    b.arg(Arg::Text(e.org_id.to_string())),
                    b.arg(Arg::OptText(e.tenant_id.map(|t| t.to_string()))),
                    b.arg(Arg::Text(e.kind.as_str().into())),
                    b.arg(Arg::Text(e.to.as_str().into())),
                    b.arg(Arg::Text(e.subject.clone())),
                    b.arg(Arg::Bytes(sealed)),
                    b.arg(Arg::OptText(e.topic.clone())),
                    b.arg(Arg::Int(at)),
                ];
                let at = &cols[8];
                rows.push(format!(
                    "({}, {}, {}, {}, {}, {}, {}, {}, 'queued', 0, {at}, {at})",
                    cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7]
                ));
            }
            b.sql = format!(
                "INSERT INTO email_outbox (id, org_id, tenant_id, kind, recipient, subject, \
                 sealed_content, topic, state, attempts, next_attempt_at, created_at) VALUES {}",
                rows.join(", ")
            );
            b.query().execute(&mut *tx).await.map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::NotFound("the email's organization or tenant".into())
                } else {
                    db_err("queuing emails", e)
                }
            })?;
        }
        Ok(())
    }

    fn seal_content(&self, id: &str, content: &SecretString) -> Result<Vec<u8>, StoreError> {
        self.sealer
            .seal(
                Binding {
                    owner: id,
                    kind: CONTENT_KIND,
                },
                content.expose_secret().as_bytes(),
            )
            .map_err(|e| StoreError::Sealing(e.to_string()))
    }

    fn open_content(&self, id: &str, sealed: &[u8]) -> Result<SecretString, StoreError> {
        let plain = self
            .sealer
            .open(
                Binding {
                    owner: id,
                    kind: CONTENT_KIND,
                },
                sealed,
            )
            .map_err(|e| StoreError::Sealing(e.to_string()))?;
        String::from_utf8(plain.to_vec())
            .map(SecretString::from)
            .map_err(|_| StoreError::Sealing("an email's content is not UTF-8".into()))
    }
}

/// A list of addresses kept in order for an owner: a tenant's contacts, an organization's digest
/// recipients.
struct AddressList {
    /// Its table (`owner`, `position`, `address`, `created_at` columns).
    table: &'static str,
    /// The owner's column in it.
    owner: &'static str,
    /// The owners' table (its `id`).
    owners: &'static str,
    /// The owner, in words (`NotFound` names it).
    what: &'static str,
    /// The list, in words (for errors).
    words: &'static str,
}

const CONTACTS: AddressList = AddressList {
    table: "tenant_contacts",
    owner: "tenant_id",
    owners: "tenants",
    what: "tenant",
    words: "a tenant's contacts",
};

const DIGEST: AddressList = AddressList {
    table: "digest_recipients",
    owner: "org_id",
    owners: "organizations",
    what: "organization",
    words: "digest recipients",
};

impl SqlStore {
    /// Replaces an owner's list in one transaction. `NotFound` if the owner does not exist.
    async fn replace_addresses(
        &self,
        list: &AddressList,
        owner: &str,
        addresses: &[EmailAddress],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let words = list.words;
        let mut tx = self.begin_write().await?;
        // The owner's row is locked for the transaction (SQLite's IMMEDIATE transaction already
        // holds the database's write lock): concurrent replacements run one after the other, so one
        // never inserts into a list another is inserting into.
        let lock = match self.dialect {
            Dialect::Postgres => " FOR UPDATE",
            Dialect::Sqlite => "",
        };
        let exists = sqlx::query(AssertSqlSafe(format!(
            "SELECT 1 AS one FROM {} WHERE id = $1{lock}",
            list.owners
        )))
        .bind(owner.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| db_err(&format!("reading the owner of {words}"), e))?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("{} {owner}", list.what)));
        }
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} WHERE {} = $1",
            list.table, list.owner
        )))
        .bind(owner.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| db_err(&format!("replacing {words}"), e))?;
        if !addresses.is_empty() {
            let mut b = Built::default();
            let o = b.arg(Arg::Text(owner.to_string()));
            let at = b.arg(Arg::Int(time_to_db(at)?));
            let rows: Vec<String> = addresses
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let pos = b.arg(Arg::Int(i as i64));
                    let addr = b.arg(Arg::Text(a.as_str().to_string()));
                    format!("({o}, {pos}, {addr}, {at})")
                })
                .collect();
            b.sql = format!(
                "INSERT INTO {} ({}, position, address, created_at) VALUES {}",
                list.table,
                list.owner,
                rows.join(", ")
            );
            b.query()
                .execute(&mut *tx)
                .await
                .map_err(|e| db_err(&format!("writing {words}"), e))?;
        }
        tx.commit()
            .await
            .map_err(|e| db_err(&format!("committing {words}"), e))
    }

    /// An owner's list, in order.
    async fn addresses(
        &self,
        list: &AddressList,
        owner: &str,
    ) -> Result<Vec<EmailAddress>, StoreError> {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT address FROM {} WHERE {} = $1 ORDER BY position",
            list.table, list.owner
        )))
        .bind(owner.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_err(&format!("reading {}", list.words), e))?
        .iter()
        .map(|r| address(r, "address"))
        .collect()
    }
}

#[async_trait]
impl MailStore for SqlStore {
    async fn set_tenant_contacts(
        &self,
        tenant: TenantId,
        addresses: &[EmailAddress],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.replace_addresses(&CONTACTS, &tenant.to_string(), addresses, at)
            .await
    }

    async fn tenant_contacts(&self, tenant: TenantId) -> Result<Vec<EmailAddress>, StoreError> {
        self.addresses(&CONTACTS, &tenant.to_string()).await
    }

    async fn contacts_of_tenants(
        &self,
        tenants: &[TenantId],
    ) -> Result<Vec<(TenantId, EmailAddress)>, StoreError> {
        let mut out = Vec::new();
        for chunk in tenants.chunks(BATCH) {
            let mut b = Built::default();
            let ids: Vec<String> = chunk
                .iter()
                .map(|t| b.arg(Arg::Text(t.to_string())))
                .collect();
            b.sql = format!(
                "SELECT tenant_id, address FROM tenant_contacts WHERE tenant_id IN ({}) \
                 ORDER BY tenant_id, position",
                ids.join(", ")
            );
            for row in b
                .query()
                .fetch_all(&self.pool)
                .await
                .map_err(|e| db_err("reading tenants' contacts", e))?
            {
                out.push((
                    get_parsed(&row, "tenant_id", TenantId::parse)?,
                    address(&row, "address")?,
                ));
            }
        }
        Ok(out)
    }

    async fn enqueue_emails(&self, emails: &[NewEmail]) -> Result<(), StoreError> {
        if emails.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        self.insert_emails(&mut tx, emails).await?;
        tx.commit()
            .await
            .map_err(|e| db_err("committing queued emails", e))
    }

    async fn lease_due_emails(
        &self,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<LeasedEmail>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(lease_sql(self.dialect)))
            .bind(time_to_db(until)?)
            .bind(time_to_db(now)?)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_err("leasing due emails", e))?;
        rows.iter()
            .map(|row| {
                let id: String = get(row, "id")?;
                let sealed: Vec<u8> = get(row, "sealed_content")?;
                Ok(LeasedEmail {
                    id: crate::codec::parse_from_db("id", &id, EmailId::parse)?,
                    to: address(row, "recipient")?,
                    subject: get(row, "subject")?,
                    content: self.open_content(&id, &sealed)?,
                    attempts: u32::try_from(get::<i64>(row, "attempts")?).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    async fn email_sent(&self, id: EmailId, at: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE email_outbox SET state = 'sent', sent_at = $1, attempts = attempts + 1, \
             leased_until = NULL, last_error = NULL WHERE id = $2",
        )
        .bind(time_to_db(at)?)
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(|e| db_err("recording a sent email", e))?;
        Ok(())
    }

    async fn email_failed(
        &self,
        id: EmailId,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let error: String = error.chars().take(1000).collect();
        let (state, next) = match retry_at {
            Some(t) => ("queued", Some(time_to_db(t)?)),
            None => ("failed", None),
        };
        sqlx::query(
            "UPDATE email_outbox SET state = $1, attempts = attempts + 1, leased_until = NULL, \
             last_error = $2, next_attempt_at = COALESCE($3, next_attempt_at) WHERE id = $4",
        )
        .bind(state)
        .bind(error)
        .bind(next)
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(|e| db_err("recording a failed email", e))?;
        Ok(())
    }

    async fn list_emails(
        &self,
        org: Option<OrgId>,
        tenant: Option<TenantId>,
        limit: u32,
    ) -> Result<Vec<EmailRecord>, StoreError> {
        let mut b = Built::default();
        let mut conds = Vec::new();
        if let Some(o) = org {
            conds.push(format!("org_id = {}", b.arg(Arg::Text(o.to_string()))));
        }
        if let Some(t) = tenant {
            conds.push(format!("tenant_id = {}", b.arg(Arg::Text(t.to_string()))));
        }
        let limit = b.arg(Arg::Int(i64::from(limit)));
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        b.sql = format!(
            "SELECT id, org_id, tenant_id, kind, recipient, subject, state, attempts, last_error, \
             created_at, sent_at FROM email_outbox{filter} ORDER BY created_at DESC, id DESC LIMIT {limit}"
        );
        b.query()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_err("listing emails", e))?
            .iter()
            .map(record_from_row)
            .collect()
    }

    async fn last_email_with_topic(
        &self,
        topic: &str,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        let row = sqlx::query("SELECT MAX(created_at) AS at FROM email_outbox WHERE topic = $1")
            .bind(topic.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| db_err("reading the last email of a topic", e))?;
        opt_time_from_db("at", get::<Option<i64>>(&row, "at")?)
    }

    async fn set_digest_recipients(
        &self,
        org: OrgId,
        addresses: &[EmailAddress],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.replace_addresses(&DIGEST, &org.to_string(), addresses, at)
            .await
    }

    async fn digest_recipients(&self, org: OrgId) -> Result<Vec<EmailAddress>, StoreError> {
        self.addresses(&DIGEST, &org.to_string()).await
    }

    async fn digests_due(&self, day: &str) -> Result<Vec<(OrgId, Vec<EmailAddress>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.org_id AS org_id, r.address AS address FROM digest_recipients r \
             LEFT JOIN digest_days d ON d.org_id = r.org_id \
             WHERE d.last_day IS NULL OR d.last_day < $1 \
             ORDER BY r.org_id, r.position",
        )
        .bind(day.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_err("reading due digests", e))?;
        let mut out: Vec<(OrgId, Vec<EmailAddress>)> = Vec::new();
        for row in &rows {
            let org = get_parsed(row, "org_id", OrgId::parse)?;
            let a = address(row, "address")?;
            match out.last_mut() {
                Some((o, list)) if *o == org => list.push(a),
                _ => out.push((org, vec![a])),
            }
        }
        Ok(out)
    }

    async fn enqueue_digest(
        &self,
        org: OrgId,
        day: &str,
        emails: &[NewEmail],
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        // Claimed by whoever moves the day forward first; the others change no row.
        let claimed = sqlx::query(
            "INSERT INTO digest_days (org_id, last_day) VALUES ($1, $2) \
             ON CONFLICT (org_id) DO UPDATE SET last_day = excluded.last_day \
             WHERE digest_days.last_day < excluded.last_day",
        )
        .bind(org.to_string())
        .bind(day.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                StoreError::NotFound(format!("organization {org}"))
            } else {
                db_err("claiming a digest", e)
            }
        })?
        .rows_affected()
            > 0;
        if !claimed {
            return Ok(false);
        }
        self.insert_emails(&mut tx, emails).await?;
        tx.commit()
            .await
            .map_err(|e| db_err("committing a digest", e))?;
        Ok(true)
    }
}
