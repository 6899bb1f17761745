//! Consent campaigns on [`SqlStore`] (migration 0014): created in one transaction (the links in
//! multi-row inserts, the members in one `INSERT … SELECT`), their links sealed (bound to the token's hash), their members read with the profile and
//! its last re-authorization event since the campaign started in one query.

use async_trait::async_trait;
use consentry_domain::{
    Actor, Campaign, CampaignId, CampaignMember, CampaignScope, CampaignStore, CampaignTenantRow,
    NewCampaignTenant, OrgId, ProfileId, StoreError, TenantId,
};
use secrecy::{ExposeSecret, SecretString};
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::history::{REAUTH_KINDS, last_reauthorization};
use super::profiles::{PROFILE_COLUMNS, profile_from_row};
use super::query::{Arg, Built};
use super::{SqlStore, db_err, get, get_parsed, is_foreign_key_violation};
use crate::codec::{json_from_db, json_to_db, opt_time_from_db, time_from_db, time_to_db};
use crate::sealer::Binding;

/// The sealing kind of a campaign link's token.
const TOKEN_KIND: &str = "campaign_link";

/// Rows per multi-row INSERT.
const BATCH: usize = 400;

const CAMPAIGN_COLUMNS: &str = "id, org_id, scope, rollout_version, only_tenant, started_by, \
    created_at, expires_at, remind_every_hours, cancelled_at";

fn campaign_from_row(row: &AnyRow) -> Result<Campaign, StoreError> {
    let scope: String = get(row, "scope")?;
    let scope = match scope.as_str() {
        "invalid" => CampaignScope::Invalid,
        "rollout" => CampaignScope::Rollout {
            version: crate::codec::version_from_db(get(row, "rollout_version")?)?.ok_or_else(
                || StoreError::Backend("a rollout campaign without its version".into()),
            )?,
        },
        other => {
            return Err(StoreError::Backend(format!(
                "column scope holds an unknown campaign scope {other:?}"
            )));
        }
    };
    Ok(Campaign {
        id: get_parsed(row, "id", CampaignId::parse)?,
        org_id: get_parsed(row, "org_id", OrgId::parse)?,
        scope,
        only_tenant: match get::<Option<String>>(row, "only_tenant")? {
            Some(t) => Some(crate::codec::parse_from_db(
                "only_tenant",
                &t,
                TenantId::parse,
            )?),
            None => None,
        },
        started_by: json_from_db::<Actor>("started_by", &get::<String>(row, "started_by")?)?,
        created_at: time_from_db("created_at", get(row, "created_at")?)?,
        expires_at: time_from_db("expires_at", get(row, "expires_at")?)?,
        remind_every_hours: u32::try_from(get::<i64>(row, "remind_every_hours")?).unwrap_or(0),
        cancelled_at: opt_time_from_db("cancelled_at", get(row, "cancelled_at")?)?,
    })
}

fn tenant_from_row(row: &AnyRow) -> Result<CampaignTenantRow, StoreError> {
    Ok(CampaignTenantRow {
        campaign_id: get_parsed(row, "campaign_id", CampaignId::parse)?,
        tenant_id: get_parsed(row, "tenant_id", TenantId::parse)?,
        tenant_name: get(row, "display_name")?,
        tenant_domain: get(row, "primary_domain")?,
        expires_at: time_from_db("expires_at", get(row, "expires_at")?)?,
        opened_at: opt_time_from_db("opened_at", get(row, "opened_at")?)?,
        last_invited_at: opt_time_from_db("last_invited_at", get(row, "last_invited_at")?)?,
        invitations: u32::try_from(get::<i64>(row, "invitations")?).unwrap_or(u32::MAX),
        pass_started_at: opt_time_from_db("pass_started_at", get(row, "pass_started_at")?)?,
    })
}

fn member_from_row(row: &AnyRow) -> Result<CampaignMember, StoreError> {
    let (profile, _) = profile_from_row(row)?;
    let last_reauthorization = last_reauthorization(row)?;
    Ok(CampaignMember {
        profile,
        attempted_at: opt_time_from_db("attempted_at", get(row, "attempted_at")?)?,
        last_error: get(row, "last_error")?,
        last_reauthorization,
    })
}

impl SqlStore {
    /// Runs `sql` (`$1` a time, `$2` the campaign, `$3` the tenant) on a campaign's tenant row.
    async fn set_tenant_time(
        &self,
        sql: &'static str,
        (campaign, tenant, at): (CampaignId, TenantId, OffsetDateTime),
        what: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(sql)
            .bind(time_to_db(at)?)
            .bind(campaign.to_string())
            .bind(tenant.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| db_err(what, e))?;
        Ok(())
    }
}

#[async_trait]
impl CampaignStore for SqlStore {
    async fn insert_campaign(
        &self,
        campaign: &Campaign,
        tenants: &[NewCampaignTenant],
    ) -> Result<u64, StoreError> {
        let id = campaign.id.to_string();
        let (scope, version) = match campaign.scope {
            CampaignScope::Rollout { version } => ("rollout", Some(i64::from(version))),
            CampaignScope::Invalid => ("invalid", None),
        };
        let mut tx = self.begin_write().await?;
        let fk = |what: &'static str| {
            move |e: sqlx::Error| {
                if is_foreign_key_violation(&e) {
                    StoreError::NotFound("the campaign's organization, tenant or profile".into())
                } else {
                    db_err(what, e)
                }
            }
        };
        sqlx::query(
            "INSERT INTO campaigns (id, org_id, scope, rollout_version, only_tenant, started_by, \
             created_at, expires_at, remind_every_hours, cancelled_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)",
        )
        .bind(id.clone())
        .bind(campaign.org_id.to_string())
        .bind(scope)
        .bind(version)
        .bind(campaign.only_tenant.map(|t| t.to_string()))
        .bind(json_to_db("actor", &campaign.started_by)?)
        .bind(time_to_db(campaign.created_at)?)
        .bind(time_to_db(campaign.expires_at)?)
        .bind(i64::from(campaign.remind_every_hours))
        .execute(&mut *tx)
        .await
        .map_err(fk("inserting a campaign"))?;
        for batch in tenants.chunks(BATCH) {
            let mut b = Built::default();
            let c = b.arg(Arg::Text(id.clone()));
            let mut rows = Vec::with_capacity(batch.len());
            for t in batch {
                let sealed = self
                    .sealer
                    .seal(
                        Binding {
                            owner: &t.token_hash,
                            kind: TOKEN_KIND,
                        },
                        t.token.expose_secret().as_bytes(),
                    )
                    .map_err(|e| StoreError::Sealing(e.to_string()))?;
                rows.push(format!(
                    "({c}, {}, {}, {}, {}, 0)",
                    b.arg(Arg::Text(t.tenant_id.to_string())),
                    b.arg(Arg::Text(t.token_hash.clone())),
                    b.arg(Arg::Bytes(sealed)),
                    b.arg(Arg::Int(time_to_db(t.expires_at)?)),
                ));
            }
            b.sql = format!(
                "INSERT INTO campaign_tenants (campaign_id, tenant_id, token_hash, sealed_token, \
                 expires_at, invitations) VALUES {}",
                rows.join(", ")
            );
            b.query()
                .execute(&mut *tx)
                .await
                .map_err(fk("inserting a campaign's links"))?;
        }
        // The members, selected in the database: one statement whatever their number.
        let mut b = Built::default();
        let c = b.arg(Arg::Text(id.clone()));
        let o = b.arg(Arg::Text(campaign.org_id.to_string()));
        let only = match campaign.only_tenant {
            Some(t) => format!(" AND p.tenant_id = {}", b.arg(Arg::Text(t.to_string()))),
            None => String::new(),
        };
        let (from, scope) = match campaign.scope {
            CampaignScope::Rollout { version } => (
                "rollout_members m JOIN profiles p ON p.id = m.profile_id",
                format!(
                    "m.catalog_version = {} AND m.done_at IS NULL",
                    b.arg(Arg::Int(i64::from(version)))
                ),
            ),
            CampaignScope::Invalid => ("profiles p", "p.status = 'invalid'".to_string()),
        };
        b.sql = format!(
            "INSERT INTO campaign_members (campaign_id, profile_id, tenant_id) \
             SELECT {c}, p.id, p.tenant_id FROM {from} \
             WHERE {scope} AND p.org_id = {o}{only} \
             AND p.tenant_id IN (SELECT tenant_id FROM campaign_tenants WHERE campaign_id = {c})"
        );
        let members = b
            .query()
            .execute(&mut *tx)
            .await
            .map_err(fk("inserting a campaign's profiles"))?
            .rows_affected();
        tx.commit()
            .await
            .map_err(|e| db_err("committing a campaign", e))?;
        Ok(members)
    }

    async fn get_campaign(&self, id: CampaignId) -> Result<Option<Campaign>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_err("reading a campaign", e))?
        .as_ref()
        .map(campaign_from_row)
        .transpose()
    }

    async fn list_campaigns(&self, org: Option<OrgId>) -> Result<Vec<Campaign>, StoreError> {
        let mut b = Built::default();
        let filter = match org {
            Some(o) => format!(" WHERE org_id = {}", b.arg(Arg::Text(o.to_string()))),
            None => String::new(),
        };
        b.sql = format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns{filter} ORDER BY created_at DESC, id DESC"
        );
        b.query()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_err("listing campaigns", e))?
            .iter()
            .map(campaign_from_row)
            .collect()
    }

    async fn campaign_tenants(
        &self,
        campaign: CampaignId,
        tenant: Option<TenantId>,
    ) -> Result<Vec<CampaignTenantRow>, StoreError> {
        let mut b = Built::default();
        let c = b.arg(Arg::Text(campaign.to_string()));
        let only = match tenant {
            Some(t) => format!(" AND ct.tenant_id = {}", b.arg(Arg::Text(t.to_string()))),
            None => String::new(),
        };
        b.sql = format!(
            "SELECT ct.campaign_id, ct.tenant_id, t.display_name, t.primary_domain, ct.expires_at, \
             ct.opened_at, ct.last_invited_at, ct.invitations, ct.pass_started_at \
             FROM campaign_tenants ct JOIN tenants t ON t.id = ct.tenant_id \
             WHERE ct.campaign_id = {c}{only} ORDER BY t.display_name, t.id"
        );
        b.query()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_err("listing a campaign's tenants", e))?
            .iter()
            .map(tenant_from_row)
            .collect()
    }

    async fn campaign_link_token(
        &self,
        campaign: CampaignId,
        tenant: TenantId,
    ) -> Result<Option<SecretString>, StoreError> {
        let row = sqlx::query(
            "SELECT token_hash, sealed_token FROM campaign_tenants \
             WHERE campaign_id = $1 AND tenant_id = $2",
        )
        .bind(campaign.to_string())
        .bind(tenant.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_err("reading a campaign link", e))?;
        let Some(row) = row else { return Ok(None) };
        let hash: String = get(&row, "token_hash")?;
        let sealed: Vec<u8> = get(&row, "sealed_token")?;
        let plain = self
            .sealer
            .open(
                Binding {
                    owner: &hash,
                    kind: TOKEN_KIND,
                },
                &sealed,
            )
            .map_err(|e| StoreError::Sealing(e.to_string()))?;
        String::from_utf8(plain.to_vec())
            .map(|s| Some(SecretString::from(s)))
            .map_err(|_| StoreError::Sealing("a campaign link's token is not UTF-8".into()))
    }

    async fn find_campaign_link(
        &self,
        token_hash: &str,
    ) -> Result<Option<(CampaignId, TenantId)>, StoreError> {
        let row = sqlx::query(
            "SELECT campaign_id, tenant_id FROM campaign_tenants WHERE token_hash = $1",
        )
        .bind(token_hash.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_err("finding a campaign link", e))?;
        row.map(|r| {
            Ok((
                get_parsed(&r, "campaign_id", CampaignId::parse)?,
                get_parsed(&r, "tenant_id", TenantId::parse)?,
            ))
        })
        .transpose()
    }

    async fn campaign_members(
        &self,
        campaign: CampaignId,
        tenant: Option<TenantId>,
    ) -> Result<Vec<CampaignMember>, StoreError> {
        let mut b = Built::default();
        let c = b.arg(Arg::Text(campaign.to_string()));
        let only = match tenant {
            Some(t) => format!(" AND m.tenant_id = {}", b.arg(Arg::Text(t.to_string()))),
            None => String::new(),
        };
        let columns: Vec<String> = PROFILE_COLUMNS
            .split(',')
            .map(|col| format!("p.{}", col.trim()))
            .collect();
        // The last re-authorization event since the campaign started, in one pass over the members'
        // history (a window per profile).
        b.sql = format!(
            "SELECT {}, m.attempted_at, m.last_error, h.kind AS last_kind, h.at AS last_at, h.detail AS last_detail \
             FROM campaign_members m JOIN profiles p ON p.id = m.profile_id \
             JOIN campaigns c ON c.id = m.campaign_id \
             LEFT JOIN (SELECT hh.profile_id, hh.kind, hh.at, hh.detail, \
                        ROW_NUMBER() OVER (PARTITION BY hh.profile_id ORDER BY hh.seq DESC) AS rn \
                        FROM profile_history hh JOIN campaign_members mm \
                          ON mm.profile_id = hh.profile_id AND mm.campaign_id = {c} \
                        JOIN campaigns cc ON cc.id = mm.campaign_id \
                        WHERE hh.kind IN ({REAUTH_KINDS}) AND hh.at >= cc.created_at) h \
               ON h.profile_id = p.id AND h.rn = 1 \
             WHERE m.campaign_id = {c}{only} \
             ORDER BY m.tenant_id, p.app_type, p.id",
            columns.join(", ")
        );
        b.query()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_err("listing a campaign's profiles", e))?
            .iter()
            .map(member_from_row)
            .collect()
    }

    async fn campaign_link_opened(
        &self,
        campaign: CampaignId,
        tenant: TenantId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.set_tenant_time(
            "UPDATE campaign_tenants SET opened_at = $1 \
             WHERE campaign_id = $2 AND tenant_id = $3 AND opened_at IS NULL",
            (campaign, tenant, at),
            "recording an opened campaign link",
        )
        .await
    }

    async fn start_campaign_pass(
        &self,
        campaign: CampaignId,
        tenant: TenantId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.set_tenant_time(
            "UPDATE campaign_tenants SET pass_started_at = $1 WHERE campaign_id = $2 AND tenant_id = $3",
            (campaign, tenant, at),
            "starting a campaign pass",
        )
        .await
    }

    async fn campaign_member_attempted(
        &self,
        campaign: CampaignId,
        profile: ProfileId,
        at: OffsetDateTime,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE campaign_members SET attempted_at = $1, last_error = $2 \
             WHERE campaign_id = $3 AND profile_id = $4",
        )
        .bind(time_to_db(at)?)
        .bind(error.map(|e| e.chars().take(1000).collect::<String>()))
        .bind(campaign.to_string())
        .bind(profile.to_string())
        .execute(&self.pool)
        .await
        .map_err(|e| db_err("recording a campaign attempt", e))?;
        Ok(())
    }

    async fn campaign_invited(
        &self,
        campaign: CampaignId,
        tenant: TenantId,
        previous: Option<OffsetDateTime>,
        at: OffsetDateTime,
        sent: bool,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<bool, StoreError> {
        let mut b = Built::default();
        let at = b.arg(Arg::Int(time_to_db(at)?));
        let add = b.arg(Arg::Int(i64::from(sent)));
        let extend = match expires_at {
            Some(e) => format!(", expires_at = {}", b.arg(Arg::Int(time_to_db(e)?))),
            None => String::new(),
        };
        let c = b.arg(Arg::Text(campaign.to_string()));
        let t = b.arg(Arg::Text(tenant.to_string()));
        let prev = match previous {
            Some(p) => format!("last_invited_at = {}", b.arg(Arg::Int(time_to_db(p)?))),
            None => "last_invited_at IS NULL".into(),
        };
        b.sql = format!(
            "UPDATE campaign_tenants SET last_invited_at = {at}, invitations = invitations + {add}{extend} \
             WHERE campaign_id = {c} AND tenant_id = {t} AND {prev}"
        );
        let done = b
            .query()
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("recording a campaign invitation", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn cancel_campaign(
        &self,
        id: CampaignId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE campaigns SET cancelled_at = $1 WHERE id = $2 AND cancelled_at IS NULL",
        )
        .bind(time_to_db(at)?)
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(|e| db_err("cancelling a campaign", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn campaign_reminders_due(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<(CampaignId, TenantId)>, StoreError> {
        // Times are Unix nanoseconds: an hour is 3.6e12 of them.
        sqlx::query(
            "SELECT ct.campaign_id, ct.tenant_id FROM campaign_tenants ct \
             JOIN campaigns c ON c.id = ct.campaign_id \
             WHERE c.cancelled_at IS NULL AND c.remind_every_hours > 0 AND ct.expires_at > $1 \
             AND ct.last_invited_at IS NOT NULL \
             AND ct.last_invited_at + c.remind_every_hours * 3600000000000 <= $1 \
             ORDER BY ct.last_invited_at, ct.campaign_id, ct.tenant_id LIMIT $2",
        )
        .bind(time_to_db(now)?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_err("finding due campaign reminders", e))?
        .iter()
        .map(|r| {
            Ok((
                get_parsed(r, "campaign_id", CampaignId::parse)?,
                get_parsed(r, "tenant_id", TenantId::parse)?,
            ))
        })
        .collect()
    }
}
