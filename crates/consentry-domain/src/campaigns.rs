//! Consent campaigns: one link per tenant that walks the tenant's administrator through every app
//! profile that needs their consent again, in one pass.
//!
//! A campaign is scoped to a permission rollout (its members that lack the rollout's permissions)
//! or to every invalid profile, of one organization (or one of its tenants). Starting it creates,
//! in one transaction, a link per affected tenant (a random token: only its SHA-256 is looked up,
//! the token itself is sealed so that reminders carry the same link) and a member per affected
//! profile, and queues an invitation to each tenant's contacts.
//!
//! What happened to a member is read, never written: from the profile's history since the
//! campaign started (a completed re-authorization: **consented**; a failed or expired one:
//! **failed**, with its reason), its status (pending: **in progress**) and whether it still needs
//! the consent at all (granted in Entra, or valid again: **resolved**); then from the link
//! (**opened**, **sent**, **not sent**), the campaign (**cancelled**) and the link's expiry
//! (**expired**). So it survives restarts and replicas and never disagrees with the profile.
//!
//! A pass ([`Campaigns::begin_pass`], then [`Campaigns::next_step`] after each callback) starts
//! the re-authorizations one after another, bound to the browser that holds the link, each with
//! the profile's own choices (consent method, functions, scan targets); a failure is recorded and
//! the pass goes on with the next profile. Nothing of a profile that is not consented again changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use consentry_catalog::{AppType, ConsentMethod, PermissionType};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::access::{Action, Caller};
use crate::audit::AuditAction;
use crate::error::DomainError;
use crate::ids::{CampaignId, EmailAddress, OrgId, ProfileId, TenantId, TenantRef};
use crate::mail::{EmailContent, Invitation, InvitationApp, Mail, Outgoing};
use crate::model::{
    AppProfile, EventKind, MAX_PAGE_SIZE, PageRequest, ProfileFilter, consent_lacks,
};
use crate::ports::{Campaign, CampaignMember, CampaignScope, CampaignTenantRow, NewCampaignTenant};
use crate::reauth::{Reauthorizer, StartRequest, random_token, state_hash};
use crate::rollouts::{MemberState, Rollout, Rollouts};
use crate::status::ProfileStatus;

/// How long a campaign's links work unless the starter says otherwise.
pub const DEFAULT_LIFETIME_DAYS: u32 = 14;
/// The longest a campaign's links may work.
pub const MAX_LIFETIME_DAYS: u32 = 90;
/// Hours between reminders unless the starter says otherwise.
pub const DEFAULT_REMIND_EVERY_HOURS: u32 = 72;

/// What to start.
#[derive(Debug, Clone)]
pub struct CampaignRequest {
    /// The organization (a platform caller must name it; an organization's account may only name
    /// its own, or none).
    pub org: Option<OrgId>,
    /// What to ask for.
    pub scope: CampaignScope,
    /// Only this tenant.
    pub tenant: Option<TenantRef>,
    /// Days the links work (default [`DEFAULT_LIFETIME_DAYS`]).
    pub lifetime_days: Option<u32>,
    /// Hours between reminders (0: none; default [`DEFAULT_REMIND_EVERY_HOURS`]).
    pub remind_every_hours: Option<u32>,
    /// Queue an invitation to each tenant's contacts.
    pub send_invitations: bool,
}

/// Where a profile is in a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CampaignMemberState {
    /// Re-authorized since the campaign started.
    Consented,
    /// No longer needs it (granted in Entra, valid again).
    Resolved,
    /// A re-authorization is pending.
    InProgress,
    /// Its last re-authorization since the campaign started failed, expired or could not start.
    Failed,
    /// The tenant's link was opened.
    Opened,
    /// The invitation was queued to the tenant's contacts.
    Sent,
    /// No invitation was sent (the tenant has no contacts): the link is to be handed over.
    NotSent,
    /// The link expired.
    Expired,
    /// The campaign was cancelled.
    Cancelled,
}

impl CampaignMemberState {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consented => "consented",
            Self::Resolved => "resolved",
            Self::InProgress => "in_progress",
            Self::Failed => "failed",
            Self::Opened => "opened",
            Self::Sent => "sent",
            Self::NotSent => "not_sent",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }

    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Consented => "Consented",
            Self::Resolved => "Nothing to do any more",
            Self::InProgress => "In progress",
            Self::Failed => "Failed",
            Self::Opened => "Link opened",
            Self::Sent => "Invitation sent",
            Self::NotSent => "Link not sent",
            Self::Expired => "Link expired",
            Self::Cancelled => "Cancelled",
        }
    }

    /// Nothing is left to do for it.
    pub fn finished(self) -> bool {
        matches!(self, Self::Consented | Self::Resolved)
    }
}

/// A profile of a campaign, with what it asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignItem {
    /// The profile.
    pub profile_id: ProfileId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its app type (catalog key).
    pub app_type: String,
    /// The app type's display name.
    pub app_name: String,
    /// The app's name in Microsoft Entra ID, as the consent page shows it.
    pub entra_app_name: Option<String>,
    /// The service using it.
    pub service_name: String,
    /// The consent method the pass will use.
    pub method: ConsentMethod,
    /// The permissions the consent newly asks for: (name, "delegated" | "application").
    pub permissions: Vec<(String, String)>,
    /// Why the consent is needed.
    pub why: String,
    /// What the consenting account needs, in words.
    pub required_roles: String,
    /// Where it is.
    pub state: CampaignMemberState,
    /// Why its last attempt failed (`failed`).
    pub failure: Option<String>,
    /// It cannot be done in the pass, and why (a custom app needs its certificate uploaded).
    pub manual: Option<String>,
}

/// A tenant of a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignTenant {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Its display name.
    pub tenant_name: String,
    /// Its primary domain.
    pub tenant_domain: String,
    /// Until when its link works.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When the link was first opened.
    #[serde(with = "time::serde::rfc3339::option")]
    pub opened_at: Option<OffsetDateTime>,
    /// How many invitations and reminders were queued.
    pub invitations: u32,
    /// When the last one was.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_invited_at: Option<OffsetDateTime>,
    /// Its profiles.
    pub items: Vec<CampaignItem>,
    /// Every profile is consented or resolved.
    pub done: bool,
}

/// Profiles of a campaign by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignCounts {
    /// Profiles.
    pub profiles: u64,
    /// Consented or resolved.
    pub done: u64,
    /// Per state (stable names).
    pub by_state: BTreeMap<String, u64>,
    /// Tenants.
    pub tenants: u64,
    /// Tenants whose every profile is done.
    pub tenants_done: u64,
}

/// A campaign as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignSummary {
    /// Its ID.
    pub id: CampaignId,
    /// The organization.
    pub org_id: OrgId,
    /// What it asks for.
    pub scope: CampaignScope,
    /// In words.
    pub title: String,
    /// Only this tenant.
    pub only_tenant: Option<TenantId>,
    /// Who started it, in words.
    pub started_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When its links stop working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Hours between reminders (0: none).
    pub remind_every_hours: u32,
    /// When it was cancelled.
    #[serde(with = "time::serde::rfc3339::option")]
    pub cancelled_at: Option<OffsetDateTime>,
    /// `running`, `completed`, `expired` or `cancelled`.
    pub state: String,
    /// Counts.
    pub counts: CampaignCounts,
}

/// A campaign in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignReport {
    /// The campaign and its counts.
    #[serde(flatten)]
    pub summary: CampaignSummary,
    /// Its tenants, by name.
    pub tenants: Vec<CampaignTenant>,
}

/// A tenant's link, as the person who started the campaign may hand it over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignLink {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Its primary domain.
    pub tenant_domain: String,
    /// The link.
    pub url: String,
    /// Who was invited by email (empty: nobody; hand the link over).
    pub invited: Vec<EmailAddress>,
}

/// A started campaign: what it covers and each tenant's link.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StartedCampaign {
    /// The campaign.
    pub campaign: CampaignSummary,
    /// Each tenant's link.
    pub links: Vec<CampaignLink>,
}

/// What a campaign link shows the tenant's administrator.
#[derive(Debug, Clone, Serialize)]
pub struct LinkView {
    /// The organization (the vendor's customer) that asks.
    pub organization: String,
    /// The tenant's primary domain.
    pub tenant_domain: String,
    /// Who started the campaign, in words.
    pub started_by: String,
    /// Until when the link works.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The profiles.
    pub items: Vec<CampaignItem>,
    /// Profiles the pass can still do.
    pub remaining: usize,
    /// A pass was started from this link.
    pub pass_started: bool,
}

/// The next step of a pass.
#[derive(Debug, Clone)]
pub enum PassStep {
    /// Go to Microsoft for the next profile.
    Microsoft {
        /// The URL.
        url: String,
        /// The profile.
        profile_id: ProfileId,
    },
    /// Nothing left to try in this pass: show the summary.
    Summary(LinkView),
}

/// A campaign's progress, for webhooks: one message each time a pass learns how a profile went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignProgress {
    /// The campaign.
    pub campaign_id: CampaignId,
    /// The organization.
    pub org_id: OrgId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The profile.
    pub profile_id: ProfileId,
    /// Where it is now.
    pub state: CampaignMemberState,
    /// Why it failed.
    pub failure: Option<String>,
    /// The tenant's profiles done, of how many.
    pub tenant_done: (u64, u64),
    /// The campaign's profiles done, of how many.
    pub campaign_done: (u64, u64),
}

/// Receives campaign progress (the webhook notifier).
#[async_trait]
pub trait CampaignObserver: Send + Sync + std::fmt::Debug {
    /// A pass learned how a profile went.
    async fn campaign_progress(&self, progress: CampaignProgress);
}

/// Consent campaigns over the domain services.
#[derive(Debug, Clone)]
pub struct Campaigns {
    reauth: Reauthorizer,
    mail: Mail,
    rollouts: Rollouts,
    outbound_addresses: Vec<String>,
    observers: Vec<Arc<dyn CampaignObserver>>,
    /// Email delivery is configured: invitations and reminders are queued.
    email: bool,
}

/// The link's error: what the person holding it reads.
fn link_gone() -> DomainError {
    DomainError::invalid(
        "link",
        "this campaign link is not valid: it was mistyped or its campaign was deleted; ask the sender for a new link",
    )
}

impl Campaigns {
    /// The service over the re-authorizer (and its domain services), sending email through `mail`.
    pub fn new(reauth: Reauthorizer, mail: Mail) -> Self {
        let rollouts = Rollouts::new(reauth.core().clone());
        Self {
            reauth,
            mail,
            rollouts,
            outbound_addresses: Vec::new(),
            observers: Vec::new(),
            email: true,
        }
    }

    /// Whether email delivery is configured (on by default). Off: no invitation or reminder is
    /// queued (the links are handed over), and re-sending is refused with the reason.
    pub fn with_email(mut self, on: bool) -> Self {
        self.email = on;
        self
    }

    /// Consentry's outbound addresses, shown for conditional access.
    pub fn with_outbound_addresses(mut self, addresses: Vec<String>) -> Self {
        self.outbound_addresses = addresses;
        self
    }

    /// Adds a progress observer.
    pub fn with_observer(mut self, o: Arc<dyn CampaignObserver>) -> Self {
        self.observers.push(o);
        self
    }

    fn core(&self) -> &crate::service::Consentry {
        self.reauth.core()
    }

    fn link_url(&self, token: &str) -> Result<String, DomainError> {
        match self.reauth.link_base() {
            Some(base) => Ok(format!("{base}/campaign/{token}")),
            None => Err(DomainError::Conflict(
                "campaign links are not enabled on this server (public_url is not set)".into(),
            )),
        }
    }

    // ----- starting -----

    /// Starts a campaign: a link per affected tenant, a member per affected profile, invitations
    /// queued. Refused, with the reason, when there is nothing to do.
    pub async fn start(
        &self,
        caller: &Caller,
        req: CampaignRequest,
    ) -> Result<StartedCampaign, DomainError> {
        let core = self.core();
        let (org, tenant) = match &req.tenant {
            Some(t) => {
                let t = core.tenant(t).await?;
                caller.may_on(Action::Reauthorize, "tenant", &t.id.to_string(), t.org_id)?;
                if req.org.is_some_and(|o| o != t.org_id) {
                    return Err(DomainError::invalid(
                        "tenant",
                        "the tenant is not one of the organization's",
                    ));
                }
                (t.org_id, Some(t))
            }
            None => {
                let org = req.org.or(caller.org()).ok_or_else(|| {
                    DomainError::invalid(
                        "organization",
                        "name the organization the campaign is for",
                    )
                })?;
                caller.may(Action::Reauthorize, Some(org))?;
                (org, None)
            }
        };
        let organization = core.organization(org).await?;
        let lifetime = req.lifetime_days.unwrap_or(DEFAULT_LIFETIME_DAYS);
        if lifetime == 0 || lifetime > MAX_LIFETIME_DAYS {
            return Err(DomainError::invalid(
                "lifetime_days",
                format!("must be between 1 and {MAX_LIFETIME_DAYS} days"),
            ));
        }
        let remind = req.remind_every_hours.unwrap_or(DEFAULT_REMIND_EVERY_HOURS);
        if remind > 24 * MAX_LIFETIME_DAYS {
            return Err(DomainError::invalid(
                "remind_every_hours",
                "must be at most the campaign's lifetime (0: no reminders)",
            ));
        }
        // Whether links can be made, before anything is written.
        self.link_url("check")?;
        let mut members = self
            .affected(org, tenant.as_ref().map(|t| t.id), req.scope)
            .await?;
        members.sort();
        members.dedup();
        if members.is_empty() {
            let whom = match &tenant {
                Some(t) => format!("tenant {}", t.primary_domain),
                None => organization.name.clone(),
            };
            return Err(DomainError::invalid(
                "scope",
                match req.scope {
                    CampaignScope::Invalid => {
                        format!("nothing to do: no app profile of {whom} is invalid")
                    }
                    CampaignScope::Rollout { version } => format!(
                        "nothing to do: no app profile of {whom} lacks the permissions of rollout {version}"
                    ),
                },
            ));
        }
        let now = core.clock().now();
        let expires_at = now + Duration::days(i64::from(lifetime));
        let tenants: BTreeSet<TenantId> = members.iter().map(|(_, t)| *t).collect();
        let mut links = Vec::with_capacity(tenants.len());
        let mut tokens = BTreeMap::new();
        for t in &tenants {
            let token = random_token(32);
            links.push(NewCampaignTenant {
                tenant_id: *t,
                token_hash: state_hash(&token),
                token: SecretString::from(token.clone()),
                expires_at,
            });
            tokens.insert(*t, token);
        }
        let campaign = Campaign {
            id: CampaignId::new_random(),
            org_id: org,
            scope: req.scope,
            only_tenant: tenant.as_ref().map(|t| t.id),
            started_by: caller.actor.clone(),
            created_at: now,
            expires_at,
            remind_every_hours: remind,
            cancelled_at: None,
        };
        let selected = core.store().insert_campaign(&campaign, &links).await?;
        core.audit()
            .record(
                &caller.actor,
                Some(org),
                AuditAction::CampaignStarted,
                format!("campaign:{}", campaign.id),
                serde_json::json!({
                    "scope": campaign.scope,
                    "tenants": tenants.len(),
                    "profiles": selected,
                }),
            )
            .await;
        let invited = if req.send_invitations && self.email {
            self.invite_all(&campaign, &tokens).await?
        } else {
            BTreeMap::new()
        };
        let report = self.report_of(&campaign).await?;
        let links = report
            .tenants
            .iter()
            .map(|t| {
                Ok(CampaignLink {
                    tenant_id: t.tenant_id,
                    tenant_domain: t.tenant_domain.clone(),
                    url: self.link_url(&tokens[&t.tenant_id])?,
                    invited: invited.get(&t.tenant_id).cloned().unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>, DomainError>>()?;
        Ok(StartedCampaign {
            campaign: report.summary,
            links,
        })
    }

    /// The profiles a campaign of `scope` would ask for, with their tenants.
    async fn affected(
        &self,
        org: OrgId,
        tenant: Option<TenantId>,
        scope: CampaignScope,
    ) -> Result<Vec<(ProfileId, TenantId)>, DomainError> {
        match scope {
            CampaignScope::Rollout { version } => {
                let report = self.rollouts.of_org(version, Some(org)).await?;
                Ok(report
                    .members
                    .into_iter()
                    .filter(|m| m.state != MemberState::Done)
                    .filter(|m| tenant.is_none_or(|t| t == m.tenant_id))
                    .map(|m| (m.profile_id, m.tenant_id))
                    .collect())
            }
            CampaignScope::Invalid => {
                let mut out = Vec::new();
                let mut page = PageRequest {
                    after: None,
                    limit: MAX_PAGE_SIZE,
                };
                loop {
                    let got = self
                        .core()
                        .profiles(
                            &ProfileFilter {
                                org_id: Some(org),
                                tenant_id: tenant,
                                statuses: vec![ProfileStatus::Invalid],
                                ..Default::default()
                            },
                            &page,
                        )
                        .await?;
                    out.extend(got.items.iter().map(|p| (p.id, p.tenant_id)));
                    match got.next_cursor {
                        Some(c) => page.after = Some(c),
                        None => break,
                    }
                }
                Ok(out)
            }
        }
    }

    /// Queues the invitation of every tenant that has contacts; returns who was invited.
    async fn invite_all(
        &self,
        campaign: &Campaign,
        tokens: &BTreeMap<TenantId, String>,
    ) -> Result<BTreeMap<TenantId, Vec<EmailAddress>>, DomainError> {
        let ids: Vec<TenantId> = tokens.keys().copied().collect();
        let mut contacts: BTreeMap<TenantId, Vec<EmailAddress>> = BTreeMap::new();
        for (t, a) in self.core().store().contacts_of_tenants(&ids).await? {
            contacts.entry(t).or_default().push(a);
        }
        if contacts.is_empty() {
            return Ok(contacts);
        }
        let report = self.report_of(campaign).await?;
        let organization = self.core().organization(campaign.org_id).await?.name;
        let mut outgoing = Vec::new();
        for t in &report.tenants {
            let Some(to) = contacts.get(&t.tenant_id) else {
                continue;
            };
            outgoing.push(Outgoing {
                org_id: campaign.org_id,
                tenant_id: Some(t.tenant_id),
                to: to.clone(),
                content: EmailContent::Invitation(self.invitation(
                    campaign,
                    &organization,
                    t,
                    &tokens[&t.tenant_id],
                    false,
                )?),
                topic: Some(format!("campaign:{}:{}", campaign.id, t.tenant_id)),
            });
        }
        self.mail.queue(&outgoing).await?;
        let now = self.core().clock().now();
        for t in contacts.keys() {
            self.core()
                .store()
                .campaign_invited(campaign.id, *t, None, now, true, None)
                .await?;
        }
        Ok(contacts)
    }

    fn invitation(
        &self,
        campaign: &Campaign,
        organization: &str,
        t: &CampaignTenant,
        token: &str,
        reminder: bool,
    ) -> Result<Invitation, DomainError> {
        Ok(Invitation {
            organization: organization.to_string(),
            tenant_domain: t.tenant_domain.clone(),
            link: self.link_url(token)?,
            expires_at: t.expires_at,
            reminder,
            started_by: campaign.started_by.describe(),
            apps: t
                .items
                .iter()
                .filter(|i| !i.state.finished())
                .map(|i| InvitationApp {
                    app_name: i.app_name.clone(),
                    entra_app_name: i.entra_app_name.clone(),
                    permissions: i.permissions.iter().map(|p| p.0.clone()).collect(),
                    why: i.why.clone(),
                    required_roles: i.required_roles.clone(),
                })
                .collect(),
            outbound_addresses: self.outbound_addresses.clone(),
        })
    }

    // ----- reading -----

    async fn campaign_for(
        &self,
        caller: &Caller,
        id: CampaignId,
        action: Action,
    ) -> Result<Campaign, DomainError> {
        let c =
            self.core()
                .store()
                .get_campaign(id)
                .await?
                .ok_or_else(|| DomainError::NotFound {
                    what: "campaign",
                    id: id.to_string(),
                })?;
        caller.may_on(action, "campaign", &id.to_string(), c.org_id)?;
        Ok(c)
    }

    /// The campaigns the caller sees, newest first, with their counts.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<CampaignSummary>, DomainError> {
        caller.may(Action::Read, caller.org())?;
        let mut out = Vec::new();
        for c in self.core().store().list_campaigns(caller.org()).await? {
            out.push(self.report_of(&c).await?.summary);
        }
        Ok(out)
    }

    /// One campaign in full.
    pub async fn show(
        &self,
        caller: &Caller,
        id: CampaignId,
    ) -> Result<CampaignReport, DomainError> {
        let c = self.campaign_for(caller, id, Action::Read).await?;
        self.report_of(&c).await
    }

    /// A tenant's link, for an administrator of the organization to hand over.
    pub async fn link(
        &self,
        caller: &Caller,
        id: CampaignId,
        tenant: TenantId,
    ) -> Result<String, DomainError> {
        let mut links = self.links(caller, id, &[tenant]).await?;
        links
            .pop()
            .map(|(_, url)| url)
            .ok_or_else(|| DomainError::NotFound {
                what: "campaign tenant",
                id: tenant.to_string(),
            })
    }

    /// Several tenants' links (those of the campaign), with one access check.
    pub async fn links(
        &self,
        caller: &Caller,
        id: CampaignId,
        tenants: &[TenantId],
    ) -> Result<Vec<(TenantId, String)>, DomainError> {
        let c = self.campaign_for(caller, id, Action::Reauthorize).await?;
        let mut out = Vec::with_capacity(tenants.len());
        for t in tenants {
            if let Some(token) = self.core().store().campaign_link_token(c.id, *t).await? {
                out.push((*t, self.link_url(token.expose_secret())?));
            }
        }
        Ok(out)
    }

    async fn report_of(&self, c: &Campaign) -> Result<CampaignReport, DomainError> {
        let store = self.core().store();
        let rows = store.campaign_tenants(c.id, None).await?;
        let members = store.campaign_members(c.id, None).await?;
        let now = self.core().clock().now();
        let rollout = self.rollout_of(c);
        let mut by_tenant: BTreeMap<TenantId, Vec<CampaignItem>> = BTreeMap::new();
        let row_of: BTreeMap<TenantId, &CampaignTenantRow> =
            rows.iter().map(|r| (r.tenant_id, r)).collect();
        for m in &members {
            let row = row_of.get(&m.profile.tenant_id).copied();
            by_tenant
                .entry(m.profile.tenant_id)
                .or_default()
                .push(self.item(c, rollout.as_ref(), row, m, now));
        }
        let mut counts = CampaignCounts::default();
        let tenants: Vec<CampaignTenant> = rows
            .iter()
            .map(|r| {
                let items = by_tenant.remove(&r.tenant_id).unwrap_or_default();
                let done = items.iter().all(|i| i.state.finished());
                counts.tenants += 1;
                counts.tenants_done += u64::from(done);
                for i in &items {
                    counts.profiles += 1;
                    counts.done += u64::from(i.state.finished());
                    *counts.by_state.entry(i.state.as_str().into()).or_default() += 1;
                }
                CampaignTenant {
                    tenant_id: r.tenant_id,
                    tenant_name: r.tenant_name.clone(),
                    tenant_domain: r.tenant_domain.clone(),
                    expires_at: r.expires_at,
                    opened_at: r.opened_at,
                    invitations: r.invitations,
                    last_invited_at: r.last_invited_at,
                    items,
                    done,
                }
            })
            .collect();
        let state = if c.cancelled_at.is_some() {
            "cancelled"
        } else if counts.done == counts.profiles {
            "completed"
        } else if tenants.iter().all(|t| t.done || t.expires_at <= now) {
            "expired"
        } else {
            "running"
        };
        Ok(CampaignReport {
            summary: CampaignSummary {
                id: c.id,
                org_id: c.org_id,
                scope: c.scope,
                title: match c.scope {
                    CampaignScope::Rollout { version } => {
                        format!("Permissions of catalog version {version}")
                    }
                    CampaignScope::Invalid => "Every invalid app profile".into(),
                },
                only_tenant: c.only_tenant,
                started_by: c.started_by.describe(),
                created_at: c.created_at,
                expires_at: c.expires_at,
                remind_every_hours: c.remind_every_hours,
                cancelled_at: c.cancelled_at,
                state: state.into(),
                counts,
            },
            tenants,
        })
    }

    fn rollout_of(&self, c: &Campaign) -> Option<Rollout> {
        match c.scope {
            CampaignScope::Rollout { version } => self
                .rollouts
                .catalog_rollouts()
                .into_iter()
                .find(|r| r.version == version),
            CampaignScope::Invalid => None,
        }
    }

    /// One member as shown: what its consent asks for and where it is.
    fn item(
        &self,
        c: &Campaign,
        rollout: Option<&Rollout>,
        row: Option<&CampaignTenantRow>,
        m: &CampaignMember,
        now: OffsetDateTime,
    ) -> CampaignItem {
        let p = &m.profile;
        let catalog = self.core().catalog();
        let app = catalog.app_type(&p.app_type);
        let method = app.map_or(ConsentMethod::Admin, |a| method_for(p, a));
        let kind = |k: PermissionType| match k {
            PermissionType::Scope => "delegated".to_string(),
            PermissionType::Role => "application".to_string(),
        };
        let (permissions, needed, why) = match rollout {
            Some(r) => {
                let added: Vec<_> = r
                    .permissions
                    .iter()
                    .filter(|x| x.app_type == p.app_type)
                    .collect();
                let lacking: Vec<(String, String)> = added
                    .iter()
                    .filter(|x| {
                        consent_lacks(
                            &p.granted_permissions,
                            p.consented_catalog_version,
                            &x.permission,
                            x.kind,
                            r.version,
                        )
                    })
                    .map(|x| (x.permission.clone(), kind(x.kind)))
                    .collect();
                let why = format!(
                    "The service's release (catalog version {}) needs {} that the app was not granted",
                    r.version,
                    if lacking.len() == 1 {
                        "a permission"
                    } else {
                        "permissions"
                    }
                );
                let needed = !lacking.is_empty();
                let shown = if needed {
                    lacking
                } else {
                    added
                        .iter()
                        .map(|x| (x.permission.clone(), kind(x.kind)))
                        .collect()
                };
                (shown, needed, why)
            }
            None => {
                let perms = app.map_or_else(Vec::new, |a| {
                    a.permissions
                        .iter()
                        .map(|x| (x.name.clone(), kind(x.kind)))
                        .collect()
                });
                // Once it works again its reason is gone: say what it was for.
                let why = p.reason.as_ref().map_or_else(
                    || "It was invalid when the campaign started.".into(),
                    |r| r.summary(),
                );
                let needed = matches!(p.status, ProfileStatus::Invalid | ProfileStatus::Pending);
                (perms, needed, why)
            }
        };
        let required_roles = app
            .and_then(|a| {
                a.requirement_for(method, Some(&p.service), &p.functions, &p.scan_targets)
            })
            .map(|r| catalog.describe(&r))
            .unwrap_or_else(|| "no particular role".into());
        let manual = app.filter(|a| a.custom_app).map(|_| {
            "a custom app: its owner re-authorizes it in the console with the app's certificate (.pfx)"
                .to_string()
        });
        let (state, failure) = member_state(c, row, m, needed, now);
        CampaignItem {
            profile_id: p.id,
            tenant_id: p.tenant_id,
            app_type: p.app_type.clone(),
            app_name: app.map_or_else(|| p.app_type.clone(), |a| a.display_name.clone()),
            entra_app_name: app.and_then(|a| a.entra_app_name.clone()),
            service_name: catalog
                .service(&p.service)
                .map_or_else(|| p.service.clone(), |s| s.name.clone()),
            method,
            permissions,
            why,
            required_roles,
            state,
            failure,
            manual,
        }
    }

    // ----- managing -----

    /// Cancels a campaign: its links stop working and no reminder goes out. Profiles keep what
    /// they have (a re-authorization already pending goes on).
    pub async fn cancel(
        &self,
        caller: &Caller,
        id: CampaignId,
    ) -> Result<CampaignSummary, DomainError> {
        let c = self.campaign_for(caller, id, Action::Reauthorize).await?;
        if !self
            .core()
            .store()
            .cancel_campaign(c.id, self.core().clock().now())
            .await?
        {
            return Err(DomainError::Conflict(
                "the campaign was already cancelled".into(),
            ));
        }
        self.core()
            .audit()
            .record(
                &caller.actor,
                Some(c.org_id),
                AuditAction::CampaignCancelled,
                format!("campaign:{id}"),
                serde_json::json!({}),
            )
            .await;
        self.show(caller, id).await.map(|r| r.summary)
    }

    /// Sends a tenant's invitation again, with its link working `lifetime_days` from now (the
    /// campaign's lifetime when not given). Refused for a cancelled campaign, a tenant with nothing
    /// left to do, or one without contacts.
    pub async fn resend(
        &self,
        caller: &Caller,
        id: CampaignId,
        tenant: TenantId,
        lifetime_days: Option<u32>,
    ) -> Result<CampaignTenant, DomainError> {
        let c = self.campaign_for(caller, id, Action::Reauthorize).await?;
        if c.cancelled_at.is_some() {
            return Err(DomainError::Conflict(
                "the campaign was cancelled; start a new one".into(),
            ));
        }
        let days = lifetime_days.unwrap_or_else(|| {
            u32::try_from((c.expires_at - c.created_at).whole_days())
                .unwrap_or(DEFAULT_LIFETIME_DAYS)
        });
        if days == 0 || days > MAX_LIFETIME_DAYS {
            return Err(DomainError::invalid(
                "lifetime_days",
                format!("must be between 1 and {MAX_LIFETIME_DAYS} days"),
            ));
        }
        let report = self.report_of(&c).await?;
        let t = report
            .tenants
            .iter()
            .find(|t| t.tenant_id == tenant)
            .ok_or_else(|| DomainError::NotFound {
                what: "campaign tenant",
                id: tenant.to_string(),
            })?;
        if !self.email {
            return Err(DomainError::Conflict(
                "email is not configured on this server ([email] smtp_host): hand over the tenant's link instead".into(),
            ));
        }
        if t.done {
            return Err(DomainError::invalid(
                "tenant",
                format!(
                    "nothing to do: every app profile of {} in this campaign is done",
                    t.tenant_domain
                ),
            ));
        }
        let to = self.core().store().tenant_contacts(tenant).await?;
        if to.is_empty() {
            return Err(DomainError::invalid(
                "contacts",
                format!(
                    "{} has no administrator contacts: add them on the tenant's page, or hand over the link",
                    t.tenant_domain
                ),
            ));
        }
        let now = self.core().clock().now();
        let expires = now + Duration::days(i64::from(days));
        if !self
            .core()
            .store()
            .campaign_invited(c.id, tenant, t.last_invited_at, now, true, Some(expires))
            .await?
        {
            return Err(DomainError::Conflict(
                "the invitation was just sent by someone else; reload to see it".into(),
            ));
        }
        let mut shown = t.clone();
        shown.expires_at = expires;
        self.queue_invitation(&c, &shown, to, false).await?;
        self.core()
            .audit()
            .record(
                &caller.actor,
                Some(c.org_id),
                AuditAction::CampaignResent,
                format!("campaign:{id}"),
                serde_json::json!({ "tenant": tenant }),
            )
            .await;
        let report = self.report_of(&c).await?;
        report
            .tenants
            .into_iter()
            .find(|t| t.tenant_id == tenant)
            .ok_or_else(link_gone)
    }

    /// Queues the reminders that are due (tenants of running campaigns with something left to do,
    /// whose last invitation is older than the campaign's reminder interval). Safe on any number of
    /// replicas: a reminder is recorded only by the one that saw the previous one. How many were
    /// queued.
    pub async fn send_due_reminders(&self) -> Result<u64, DomainError> {
        if !self.email {
            return Ok(0);
        }
        let store = self.core().store();
        let now = self.core().clock().now();
        let mut sent = 0;
        for (id, tenant) in store.campaign_reminders_due(now, 200).await? {
            let Some(c) = store.get_campaign(id).await? else {
                continue;
            };
            let Some(row) = store.campaign_tenants(id, Some(tenant)).await?.pop() else {
                continue;
            };
            let members = store.campaign_members(id, Some(tenant)).await?;
            let rollout = self.rollout_of(&c);
            let items: Vec<CampaignItem> = members
                .iter()
                .map(|m| self.item(&c, rollout.as_ref(), Some(&row), m, now))
                .collect();
            let left = items.iter().any(|i| !i.state.finished());
            let to = store.tenant_contacts(tenant).await?;
            let send = left && !to.is_empty();
            if !store
                .campaign_invited(id, tenant, row.last_invited_at, now, send, None)
                .await?
                || !send
            {
                continue;
            }
            let t = CampaignTenant {
                tenant_id: tenant,
                tenant_name: row.tenant_name.clone(),
                tenant_domain: row.tenant_domain.clone(),
                expires_at: row.expires_at,
                opened_at: row.opened_at,
                invitations: row.invitations,
                last_invited_at: row.last_invited_at,
                items,
                done: false,
            };
            self.queue_invitation(&c, &t, to, true).await?;
            sent += 1;
        }
        Ok(sent)
    }

    /// Queues a tenant's invitation (or reminder) to `to`, with the tenant's link.
    async fn queue_invitation(
        &self,
        c: &Campaign,
        t: &CampaignTenant,
        to: Vec<EmailAddress>,
        reminder: bool,
    ) -> Result<(), DomainError> {
        let token = self
            .core()
            .store()
            .campaign_link_token(c.id, t.tenant_id)
            .await?
            .ok_or_else(link_gone)?;
        let organization = self.core().organization(c.org_id).await?.name;
        self.mail
            .queue(&[Outgoing {
                org_id: c.org_id,
                tenant_id: Some(t.tenant_id),
                to,
                content: EmailContent::Invitation(self.invitation(
                    c,
                    &organization,
                    t,
                    token.expose_secret(),
                    reminder,
                )?),
                topic: Some(format!("campaign:{}:{}", c.id, t.tenant_id)),
            }])
            .await?;
        Ok(())
    }

    // ----- the link and the pass -----

    /// The campaign, tenant row and members behind a link's token, if it may still be used.
    async fn live(
        &self,
        token: &str,
    ) -> Result<(Campaign, CampaignTenantRow, Vec<CampaignMember>), DomainError> {
        if token.is_empty() || token.len() > 128 {
            return Err(link_gone());
        }
        let store = self.core().store();
        let (id, tenant) = store
            .find_campaign_link(&state_hash(token))
            .await?
            .ok_or_else(link_gone)?;
        let c = store.get_campaign(id).await?.ok_or_else(link_gone)?;
        let row = store
            .campaign_tenants(id, Some(tenant))
            .await?
            .pop()
            .ok_or_else(link_gone)?;
        if let Some(at) = c.cancelled_at {
            return Err(DomainError::invalid(
                "link",
                format!(
                    "this campaign was cancelled on {}; nothing more is asked of you through this link",
                    at.date()
                ),
            ));
        }
        if self.core().clock().now() >= row.expires_at {
            return Err(DomainError::invalid(
                "link",
                format!(
                    "this campaign link expired on {}; ask the sender to send it again",
                    row.expires_at.date()
                ),
            ));
        }
        let members = store.campaign_members(id, Some(tenant)).await?;
        Ok((c, row, members))
    }

    async fn view_of(
        &self,
        c: &Campaign,
        row: &CampaignTenantRow,
        members: &[CampaignMember],
    ) -> Result<LinkView, DomainError> {
        let now = self.core().clock().now();
        let rollout = self.rollout_of(c);
        let items: Vec<CampaignItem> = members
            .iter()
            .map(|m| self.item(c, rollout.as_ref(), Some(row), m, now))
            .collect();
        let remaining = items
            .iter()
            .filter(|i| !i.state.finished() && i.manual.is_none())
            .count();
        Ok(LinkView {
            organization: self.core().organization(c.org_id).await?.name,
            tenant_domain: row.tenant_domain.clone(),
            started_by: c.started_by.describe(),
            expires_at: row.expires_at,
            items,
            remaining,
            pass_started: row.pass_started_at.is_some(),
        })
    }

    /// What a link shows; the first opening is recorded.
    pub async fn open_link(&self, token: &str) -> Result<LinkView, DomainError> {
        let (c, row, members) = self.live(token).await?;
        self.core()
            .store()
            .campaign_link_opened(c.id, row.tenant_id, self.core().clock().now())
            .await?;
        self.view_of(&c, &row, &members).await
    }

    /// Starts a pass through the link's profiles from the browser holding `browser_binding`, and
    /// returns its first step. Refused, plainly, when nothing is left to do.
    pub async fn begin_pass(
        &self,
        token: &str,
        browser_binding: &str,
    ) -> Result<PassStep, DomainError> {
        let (c, row, members) = self.live(token).await?;
        let view = self.view_of(&c, &row, &members).await?;
        if view.remaining == 0 {
            return Err(DomainError::invalid(
                "link",
                "nothing left to do: every app profile of this link was re-authorized already (here or elsewhere)",
            ));
        }
        let now = self.core().clock().now();
        self.core()
            .store()
            .campaign_link_opened(c.id, row.tenant_id, now)
            .await?;
        self.core()
            .store()
            .start_campaign_pass(c.id, row.tenant_id, now)
            .await?;
        self.next_step(token, browser_binding).await
    }

    /// The pass's next step: the next profile not finished and not yet tried in this pass goes to
    /// Microsoft; when none is left, the summary. A profile whose re-authorization cannot start is
    /// recorded as failed with why, and the pass goes on.
    pub async fn next_step(
        &self,
        token: &str,
        browser_binding: &str,
    ) -> Result<PassStep, DomainError> {
        let (c, row, members) = self.live(token).await?;
        let view = self.view_of(&c, &row, &members).await?;
        let since = row.pass_started_at;
        for (m, item) in members.iter().zip(&view.items) {
            let tried = matches!((m.attempted_at, since), (Some(a), Some(s)) if a >= s);
            if item.state.finished() || item.manual.is_some() || tried {
                continue;
            }
            let now = self.core().clock().now();
            let req = StartRequest {
                method: item.method,
                custom_app: None,
                functions: m.profile.functions.clone(),
                scan_targets: m.profile.scan_targets.clone(),
                login_hint: None,
                handoff: false,
            };
            match self
                .reauth
                .start_in_browser(m.profile.id, req, &c.started_by, browser_binding)
                .await
            {
                Ok(started) => {
                    self.core()
                        .store()
                        .campaign_member_attempted(c.id, m.profile.id, now, None)
                        .await?;
                    return Ok(PassStep::Microsoft {
                        url: started.url,
                        profile_id: m.profile.id,
                    });
                }
                Err(DomainError::Internal(e)) => return Err(DomainError::Internal(e)),
                Err(e) => {
                    let why = match &e {
                        DomainError::Invalid { message, .. } | DomainError::Conflict(message) => {
                            message.clone()
                        }
                        other => other.to_string(),
                    };
                    self.core()
                        .store()
                        .campaign_member_attempted(c.id, m.profile.id, now, Some(&why))
                        .await?;
                    self.notify(&c, row.tenant_id, m.profile.id).await;
                }
            }
        }
        let (c, row, members) = self.live(token).await?;
        Ok(PassStep::Summary(self.view_of(&c, &row, &members).await?))
    }

    /// After Microsoft's answer for `profile`, in the browser of the pass through `token`: whether
    /// the profile is one of the link's (the pass then goes on), and if so the observers are told
    /// how it went.
    pub async fn step_finished(&self, token: &str, profile: ProfileId) -> bool {
        let Ok((c, row, members)) = self.live(token).await else {
            return false;
        };
        if !members.iter().any(|m| m.profile.id == profile) {
            return false;
        }
        self.notify(&c, row.tenant_id, profile).await;
        true
    }

    async fn notify(&self, c: &Campaign, tenant: TenantId, profile: ProfileId) {
        if self.observers.is_empty() {
            return;
        }
        let Ok(report) = self.report_of(c).await else {
            return;
        };
        let Some(t) = report.tenants.iter().find(|t| t.tenant_id == tenant) else {
            return;
        };
        let Some(item) = t.items.iter().find(|i| i.profile_id == profile) else {
            return;
        };
        let done = t.items.iter().filter(|i| i.state.finished()).count() as u64;
        let progress = CampaignProgress {
            campaign_id: c.id,
            org_id: c.org_id,
            tenant_id: tenant,
            profile_id: profile,
            state: item.state,
            failure: item.failure.clone(),
            tenant_done: (done, t.items.len() as u64),
            campaign_done: (report.summary.counts.done, report.summary.counts.profiles),
        };
        for o in &self.observers {
            o.campaign_progress(progress.clone()).await;
        }
    }
}

/// The consent method a pass uses for a profile: the one it was consented with, when the catalog
/// still allows it, else administrator consent, else what the catalog allows.
fn method_for(p: &AppProfile, app: &AppType) -> ConsentMethod {
    match p.consent_method {
        Some(m) if app.allows(m) => m,
        _ if app.allows(ConsentMethod::Admin) => ConsentMethod::Admin,
        _ => app
            .consent_methods()
            .first()
            .copied()
            .unwrap_or(ConsentMethod::Admin),
    }
}

/// Where a member is; `needed`: the profile still needs the consent.
fn member_state(
    c: &Campaign,
    row: Option<&CampaignTenantRow>,
    m: &CampaignMember,
    needed: bool,
    now: OffsetDateTime,
) -> (CampaignMemberState, Option<String>) {
    use CampaignMemberState as S;
    match &m.last_reauthorization {
        Some((EventKind::ReauthorizationCompleted, _, _)) if !needed => {
            return (S::Consented, None);
        }
        _ if !needed => return (S::Resolved, None),
        _ => {}
    }
    if m.profile.status == ProfileStatus::Pending
        && matches!(
            m.last_reauthorization,
            Some((EventKind::ReauthorizationStarted, _, _))
        )
    {
        return (S::InProgress, None);
    }
    let tried_in_pass = match (m.attempted_at, row.and_then(|r| r.pass_started_at)) {
        (Some(a), Some(s)) => a >= s,
        _ => false,
    };
    if let (true, Some(e)) = (tried_in_pass, &m.last_error) {
        return (S::Failed, Some(e.clone()));
    }
    match &m.last_reauthorization {
        Some((EventKind::ReauthorizationFailed | EventKind::ReauthorizationExpired, _, detail)) => {
            return (
                S::Failed,
                Some(
                    detail
                        .clone()
                        .unwrap_or_else(|| "the re-authorization did not complete".into()),
                ),
            );
        }
        Some((EventKind::ReauthorizationCompleted, _, _)) => {
            // Re-authorized, yet still lacking: the consent did not grant what was asked.
            return (
                S::Failed,
                Some("the consent was given but did not grant every permission asked for".into()),
            );
        }
        _ => {}
    }
    if c.cancelled_at.is_some() {
        return (S::Cancelled, None);
    }
    match row {
        Some(r) if now >= r.expires_at => (S::Expired, None),
        Some(r) if r.opened_at.is_some() => (S::Opened, None),
        Some(r) if r.invitations > 0 => (S::Sent, None),
        _ => (S::NotSent, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::OrgId;
    use crate::model::Actor;

    fn campaign() -> Campaign {
        let now = OffsetDateTime::now_utc();
        Campaign {
            id: CampaignId::new_random(),
            org_id: OrgId::new_random(),
            scope: CampaignScope::Invalid,
            only_tenant: None,
            started_by: Actor::System,
            created_at: now,
            expires_at: now + Duration::days(14),
            remind_every_hours: 72,
            cancelled_at: None,
        }
    }

    fn member(status: ProfileStatus, last: Option<EventKind>) -> CampaignMember {
        let mut profile = crate::reauth::testing_profile();
        profile.status = status;
        CampaignMember {
            profile,
            attempted_at: None,
            last_error: None,
            last_reauthorization: last.map(|k| (k, OffsetDateTime::now_utc(), Some("why".into()))),
        }
    }

    fn row(c: &Campaign) -> CampaignTenantRow {
        CampaignTenantRow {
            campaign_id: c.id,
            tenant_id: crate::reauth::testing_profile().tenant_id,
            tenant_name: "Contoso".into(),
            tenant_domain: "contoso.example".into(),
            expires_at: c.expires_at,
            opened_at: None,
            last_invited_at: None,
            invitations: 0,
            pass_started_at: None,
        }
    }

    #[test]
    fn a_member_is_consented_resolved_in_progress_or_failed_from_its_history() {
        let c = campaign();
        let r = row(&c);
        let now = OffsetDateTime::now_utc();
        let s = |m: &CampaignMember, needed| member_state(&c, Some(&r), m, needed, now).0;
        use CampaignMemberState as S;
        assert_eq!(
            s(
                &member(
                    ProfileStatus::Valid,
                    Some(EventKind::ReauthorizationCompleted)
                ),
                false
            ),
            S::Consented
        );
        assert_eq!(s(&member(ProfileStatus::Valid, None), false), S::Resolved);
        assert_eq!(
            s(
                &member(
                    ProfileStatus::Pending,
                    Some(EventKind::ReauthorizationStarted)
                ),
                true
            ),
            S::InProgress
        );
        let (state, why) = member_state(
            &c,
            Some(&r),
            &member(
                ProfileStatus::Invalid,
                Some(EventKind::ReauthorizationFailed),
            ),
            true,
            now,
        );
        assert_eq!((state, why.as_deref()), (S::Failed, Some("why")));
        assert_eq!(s(&member(ProfileStatus::Invalid, None), true), S::NotSent);
    }

    #[test]
    fn an_untouched_member_follows_its_link_sent_opened_expired_or_cancelled() {
        let mut c = campaign();
        let mut r = row(&c);
        let m = member(ProfileStatus::Invalid, None);
        let now = OffsetDateTime::now_utc();
        use CampaignMemberState as S;
        r.invitations = 1;
        assert_eq!(member_state(&c, Some(&r), &m, true, now).0, S::Sent);
        r.opened_at = Some(now);
        assert_eq!(member_state(&c, Some(&r), &m, true, now).0, S::Opened);
        assert_eq!(
            member_state(&c, Some(&r), &m, true, r.expires_at).0,
            S::Expired
        );
        c.cancelled_at = Some(now);
        assert_eq!(member_state(&c, Some(&r), &m, true, now).0, S::Cancelled);
        // A failure the pass recorded before Microsoft (e.g. the app is not configured) shows.
        r.pass_started_at = Some(now);
        let mut tried = m.clone();
        tried.attempted_at = Some(now);
        tried.last_error = Some("the service's app is not configured".into());
        let (state, why) = member_state(&c, Some(&r), &tried, true, now);
        assert_eq!(state, S::Failed);
        assert!(why.unwrap().contains("not configured"));
    }

    #[test]
    fn the_pass_keeps_the_profiles_consent_method_when_the_catalog_still_allows_it() {
        let catalog = consentry_catalog::Catalog::builtin_ref();
        let mut p = crate::reauth::testing_profile();
        let app = catalog.app_type("insights-m365").unwrap();
        p.consent_method = None;
        assert_eq!(method_for(&p, app), ConsentMethod::Admin);
        if app.allows(ConsentMethod::User) {
            p.consent_method = Some(ConsentMethod::User);
            assert_eq!(method_for(&p, app), ConsentMethod::User);
        }
    }
}
