//! Chapter: consent campaigns: created with their links and members in one transaction (the
//! members selected by scope: the organization's invalid profiles, or a rollout's members not done;
//! a link for a missing tenant writes nothing), read back (scope, starter, links by their hash, the link's
//! token unsealed), each member with its last re-authorization event since the campaign started,
//! the first opening kept, passes and attempts recorded, invitations recorded once of two replicas,
//! reminders due by interval (not when cancelled or expired), cancelled once, and members gone with
//! their profile.

use consentry_domain::{
    Campaign, CampaignId, CampaignScope, NewCampaignTenant, reauth::state_hash,
};
use secrecy::SecretString;

use super::*;

pub async fn campaigns(store: &dyn Store) {
    let org = new_org(store, "campaign").await;
    let other_org = new_org(store, "campaign-other").await;
    let tenant = new_tenant(store, &org, "campaign").await;
    let other_tenant = new_tenant(store, &other_org, "campaign-other").await;
    let t0 = now();
    let invalid = |tenant: &Tenant| {
        let mut p = minimal_profile(tenant, t0);
        p.status = ProfileStatus::Invalid;
        p
    };
    let a = invalid(&tenant);
    let mut b = invalid(&tenant);
    b.app_type = "iaas-delegated".into();
    let other = invalid(&other_tenant);
    // Pending, not invalid: not a member.
    let pending = minimal_profile(&tenant, t0);
    for p in [&a, &b, &other, &pending] {
        store
            .insert_profile(p, created_event(p))
            .await
            .expect("insert a campaign profile");
    }
    // A re-authorization that failed before the campaign: not the campaign's.
    store
        .save_profile(
            &a,
            Some(reauth_event(
                &a,
                EventKind::ReauthorizationFailed,
                t0,
                "before",
            )),
        )
        .await
        .expect("history");

    let created = t0 + Duration::minutes(1);
    let campaign = Campaign {
        id: CampaignId::new_random(),
        org_id: org.id,
        scope: CampaignScope::Invalid,
        only_tenant: None,
        started_by: Actor::Operator("console:story".into()),
        created_at: created,
        expires_at: created + Duration::days(14),
        remind_every_hours: 1,
        cancelled_at: None,
    };
    let secret = format!("link-{}", token());
    let link = NewCampaignTenant {
        tenant_id: tenant.id,
        token_hash: state_hash(&secret),
        token: SecretString::from(secret.clone()),
        expires_at: campaign.expires_at,
    };

    // A link for a tenant that does not exist: nothing of the campaign is written.
    let broken = Campaign {
        id: CampaignId::new_random(),
        ..campaign.clone()
    };
    let no_tenant = NewCampaignTenant {
        tenant_id: TenantId::parse(&Uuid::new_v4().to_string()).expect("guid"),
        token_hash: state_hash(&format!("other-{}", token())),
        ..link.clone()
    };
    let refused = store.insert_campaign(&broken, &[no_tenant]).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "a campaign naming a missing tenant is refused: {refused:?}"
    );
    assert_eq!(store.get_campaign(broken.id).await.expect("read"), None);

    // The members are selected by the store: the organization's invalid profiles of the tenants
    // given a link (not the other organization's).
    let members = store
        .insert_campaign(&campaign, std::slice::from_ref(&link))
        .await
        .expect("insert a campaign");
    assert_eq!(members, 2, "the two invalid profiles of the organization");

    // A rollout's campaign takes its members not done.
    let rollout_type = format!("story-campaign-{}", token());
    let mut consented = minimal_profile(&tenant, t0);
    consented.app_type = rollout_type.clone();
    consented.status = ProfileStatus::Valid;
    consented.reason = None;
    consented.consented_catalog_version = Some(1);
    consented.authorized_at = Some(t0);
    store
        .insert_profile(&consented, created_event(&consented))
        .await
        .expect("insert");
    store
        .enroll_rollout_members(9, std::slice::from_ref(&rollout_type), t0)
        .await
        .expect("enroll");
    let by_rollout = |id| Campaign {
        id,
        scope: CampaignScope::Rollout { version: 9 },
        ..campaign.clone()
    };
    let rollout_link = |label: &str| NewCampaignTenant {
        token_hash: state_hash(&format!("{label}-{}", token())),
        ..link.clone()
    };
    assert_eq!(
        store
            .insert_campaign(&by_rollout(CampaignId::new_random()), &[rollout_link("r1")])
            .await
            .expect("rollout campaign"),
        1,
        "the rollout's member not done"
    );
    store
        .set_rollout_done(9, &[(consented.id, Some(t0))])
        .await
        .expect("done");
    assert_eq!(
        store
            .insert_campaign(&by_rollout(CampaignId::new_random()), &[rollout_link("r2")])
            .await
            .expect("rollout campaign"),
        0,
        "a member done is not asked again"
    );
    assert_eq!(
        store.get_campaign(campaign.id).await.expect("read"),
        Some(campaign.clone()),
        "a campaign reads back as written"
    );
    let listed = store.list_campaigns(Some(org.id)).await.expect("list");
    assert!(listed.contains(&campaign), "{listed:?}");
    assert!(
        !store
            .list_campaigns(Some(other_org.id))
            .await
            .expect("list")
            .iter()
            .any(|c| c.id == campaign.id),
        "another organization's list does not show it"
    );

    // The link: found by its hash, its token unsealed, its tenant named.
    assert_eq!(
        store
            .find_campaign_link(&state_hash(&secret))
            .await
            .expect("find"),
        Some((campaign.id, tenant.id))
    );
    assert_eq!(
        store
            .find_campaign_link(&state_hash("no such link"))
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        store
            .campaign_link_token(campaign.id, tenant.id)
            .await
            .expect("token")
            .map(|t| t.expose_secret().to_string()),
        Some(secret.clone())
    );
    let rows = store
        .campaign_tenants(campaign.id, None)
        .await
        .expect("tenants");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].tenant_name, tenant.display_name);
    assert_eq!(rows[0].tenant_domain, tenant.primary_domain.as_str());
    assert_eq!((rows[0].invitations, rows[0].opened_at), (0, None));

    // Members, with their last re-authorization event since the campaign started only.
    let members = store
        .campaign_members(campaign.id, None)
        .await
        .expect("members");
    let ids: BTreeSet<ProfileId> = members.iter().map(|m| m.profile.id).collect();
    assert_eq!(ids, BTreeSet::from([a.id, b.id]));
    assert!(
        members.iter().all(|m| m.last_reauthorization.is_none()),
        "an event from before the campaign is not the campaign's: {members:?}"
    );
    let later = created + Duration::minutes(3);
    store
        .save_profile(
            &a,
            Some(reauth_event(
                &a,
                EventKind::ReauthorizationStarted,
                later,
                "start",
            )),
        )
        .await
        .expect("history");
    store
        .save_profile(
            &a,
            Some(reauth_event(
                &a,
                EventKind::ReauthorizationFailed,
                later + Duration::seconds(1),
                "declined at Microsoft",
            )),
        )
        .await
        .expect("history");
    let members = store
        .campaign_members(campaign.id, Some(tenant.id))
        .await
        .expect("members");
    let ma = members.iter().find(|m| m.profile.id == a.id).expect("a");
    assert_eq!(
        ma.last_reauthorization
            .as_ref()
            .map(|(k, _, d)| (*k, d.clone())),
        Some((
            EventKind::ReauthorizationFailed,
            Some("declined at Microsoft".into())
        )),
        "the latest event since the campaign started"
    );

    // The first opening is kept; a pass and its attempts are recorded.
    store
        .campaign_link_opened(campaign.id, tenant.id, later)
        .await
        .expect("opened");
    store
        .campaign_link_opened(campaign.id, tenant.id, later + Duration::hours(1))
        .await
        .expect("opened again");
    store
        .start_campaign_pass(campaign.id, tenant.id, later)
        .await
        .expect("pass");
    store
        .campaign_member_attempted(campaign.id, b.id, later, Some("the app is not configured"))
        .await
        .expect("attempt");
    let row = store
        .campaign_tenants(campaign.id, Some(tenant.id))
        .await
        .expect("tenant")
        .pop()
        .expect("one");
    assert_eq!(row.opened_at, Some(later), "the first opening is kept");
    assert_eq!(row.pass_started_at, Some(later));
    let mb = store
        .campaign_members(campaign.id, None)
        .await
        .expect("members")
        .into_iter()
        .find(|m| m.profile.id == b.id)
        .expect("b");
    assert_eq!(mb.attempted_at, Some(later));
    assert_eq!(mb.last_error.as_deref(), Some("the app is not configured"));

    // Invitations: recorded by the one replica that saw the previous one.
    let first = created + Duration::minutes(2);
    assert!(
        store
            .campaign_invited(campaign.id, tenant.id, None, first, true, None)
            .await
            .expect("invited")
    );
    assert!(
        !store
            .campaign_invited(campaign.id, tenant.id, None, first, true, None)
            .await
            .expect("invited"),
        "a second replica with the same view records nothing"
    );
    // Due an hour later, not before.
    let due = |at| store.campaign_reminders_due(at, 1000);
    let ours = |v: Vec<(CampaignId, TenantId)>| v.contains(&(campaign.id, tenant.id));
    assert!(!ours(
        due(first + Duration::minutes(59)).await.expect("due")
    ));
    assert!(ours(due(first + Duration::minutes(61)).await.expect("due")));
    // Looked at without sending: no invitation counted, the interval starts again.
    let looked = first + Duration::minutes(61);
    assert!(
        store
            .campaign_invited(campaign.id, tenant.id, Some(first), looked, false, None)
            .await
            .expect("looked")
    );
    let extended = looked + Duration::days(30);
    assert!(
        store
            .campaign_invited(
                campaign.id,
                tenant.id,
                Some(looked),
                looked,
                true,
                Some(extended)
            )
            .await
            .expect("re-sent")
    );
    let row = store
        .campaign_tenants(campaign.id, Some(tenant.id))
        .await
        .expect("tenant")
        .pop()
        .expect("one");
    assert_eq!(
        row.invitations, 2,
        "the look without sending is not counted"
    );
    assert_eq!(row.expires_at, extended, "a re-sent link works longer");
    // Not due once expired, nor once cancelled.
    assert!(!ours(
        due(extended + Duration::minutes(1)).await.expect("due")
    ));
    assert!(
        store
            .cancel_campaign(campaign.id, looked)
            .await
            .expect("cancel")
    );
    assert!(
        !store
            .cancel_campaign(campaign.id, looked)
            .await
            .expect("cancel"),
        "cancelled once"
    );
    assert!(!ours(due(looked + Duration::hours(2)).await.expect("due")));
    assert_eq!(
        store
            .get_campaign(campaign.id)
            .await
            .expect("read")
            .and_then(|c| c.cancelled_at),
        Some(looked)
    );

    // A member goes with its profile.
    assert!(store.delete_profile(b.id).await.expect("delete"));
    let left: Vec<ProfileId> = store
        .campaign_members(campaign.id, None)
        .await
        .expect("members")
        .iter()
        .map(|m| m.profile.id)
        .collect();
    assert_eq!(left, vec![a.id]);
}
