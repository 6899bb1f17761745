//! Chapter: permission rollouts' members: enrolled once in one statement (only authorized profiles
//! of the rollout's app types consented at an older version), read with their tenant, status, grants
//! and last re-authorization event, scoped to an organization, marked done and undone, and gone with
//! their profile.

use super::*;

pub async fn rollouts(store: &dyn Store) {
    let org = new_org(store, "rollout").await;
    let other_org = new_org(store, "rollout-other").await;
    let tenant = new_tenant(store, &org, "rollout").await;
    let other_tenant = new_tenant(store, &other_org, "rollout-other").await;
    // App types unique to this run: the story never assumes an empty database.
    let app_type = format!("story-rollout-{}", token());
    let other_type = format!("story-other-{}", token());
    let t0 = now();
    let authorized = |tenant: &Tenant, app: &str, version: Option<u32>| {
        let mut p = minimal_profile(tenant, t0);
        p.app_type = app.to_string();
        p.consented_catalog_version = version;
        if version.is_some() {
            p.status = ProfileStatus::Valid;
            p.reason = None;
            p.authorized_at = Some(t0);
            p.granted_permissions = vec![GrantedPermission {
                name: "User.Read.All".into(),
                kind: PermissionType::Role,
            }];
        }
        p
    };
    let old = authorized(&tenant, &app_type, Some(1));
    let current = authorized(&tenant, &app_type, Some(5));
    let never = authorized(&tenant, &app_type, None);
    let other_app = authorized(&tenant, &other_type, Some(1));
    let other_org_old = authorized(&other_tenant, &app_type, Some(2));
    for p in [&old, &current, &never, &other_app, &other_org_old] {
        store
            .insert_profile(p, created_event(p))
            .await
            .expect("insert a rollout profile");
    }

    let at = t0 + Duration::minutes(5);
    let enrolled = store
        .enroll_rollout_members(5, std::slice::from_ref(&app_type), at)
        .await
        .expect("enroll");
    assert_eq!(
        enrolled, 2,
        "only authorized profiles of the app type consented before version 5 are enrolled"
    );
    assert_eq!(
        store
            .enroll_rollout_members(5, std::slice::from_ref(&app_type), at + Duration::hours(1))
            .await
            .expect("enroll again"),
        0,
        "enrolling again adds nobody"
    );
    assert_eq!(
        store
            .enroll_rollout_members(5, &[], at)
            .await
            .expect("enroll no app type"),
        0
    );

    let members = store
        .rollout_members(5, Some(org.id))
        .await
        .expect("members of one organization");
    assert_eq!(members.len(), 1, "{members:?}");
    let m = &members[0];
    assert_eq!(m.profile_id, old.id);
    assert_eq!(m.org_id, org.id);
    assert_eq!(m.tenant_id, tenant.id);
    assert_eq!(m.tenant_name, tenant.display_name);
    assert_eq!(m.tenant_domain, tenant.primary_domain.as_str());
    assert_eq!(m.app_type, app_type);
    assert_eq!(m.added_at, at, "the enrolment time, to the nanosecond");
    assert_eq!(m.done_at, None);
    assert_eq!(m.status, ProfileStatus::Valid);
    assert_eq!(m.granted, old.granted_permissions);
    assert_eq!(m.consented_catalog_version, Some(1));
    assert_eq!(m.authorized_at, Some(t0));
    assert_eq!(m.last_reauthorization, None);
    let everyone = store.rollout_members(5, None).await.expect("all members");
    let ids: BTreeSet<ProfileId> = everyone.iter().map(|m| m.profile_id).collect();
    assert!(ids.contains(&old.id) && ids.contains(&other_org_old.id));
    assert!(!ids.contains(&current.id) && !ids.contains(&never.id) && !ids.contains(&other_app.id));
    assert!(
        store
            .rollout_members(6, Some(org.id))
            .await
            .expect("another rollout")
            .is_empty(),
        "membership is per rollout"
    );

    // The last re-authorization event, whatever came after it.
    let mut saved = old.clone();
    saved.updated_at = t0 + Duration::minutes(10);
    store
        .save_profile(
            &saved,
            Some(reauth_event(
                &old,
                EventKind::ReauthorizationStarted,
                t0 + Duration::minutes(10),
                "started",
            )),
        )
        .await
        .expect("started");
    saved.updated_at = t0 + Duration::minutes(11);
    store
        .save_profile(
            &saved,
            Some(reauth_event(
                &old,
                EventKind::ReauthorizationFailed,
                t0 + Duration::minutes(11),
                "AADSTS65004: declined",
            )),
        )
        .await
        .expect("failed");
    saved.updated_at = t0 + Duration::minutes(12);
    store
        .save_profile(
            &saved,
            Some(reauth_event(
                &old,
                EventKind::StatusChanged,
                t0 + Duration::minutes(12),
                "checked",
            )),
        )
        .await
        .expect("checked");
    let m = store
        .rollout_members(5, Some(org.id))
        .await
        .expect("members")
        .remove(0);
    assert_eq!(
        m.last_reauthorization,
        Some((
            EventKind::ReauthorizationFailed,
            t0 + Duration::minutes(11),
            Some("AADSTS65004: declined".into())
        ))
    );

    // Done (two members at once, each its own time), and undone one of them.
    let done = t0 + Duration::minutes(20);
    let other_done = t0 + Duration::minutes(21);
    store
        .set_rollout_done(
            5,
            &[(old.id, Some(done)), (other_org_old.id, Some(other_done))],
        )
        .await
        .expect("done");
    let done_at = |members: &[consentry_domain::RolloutMember], id: ProfileId| {
        members
            .iter()
            .find(|m| m.profile_id == id)
            .map(|m| m.done_at)
    };
    let all = store.rollout_members(5, None).await.expect("members");
    assert_eq!(done_at(&all, old.id), Some(Some(done)));
    assert_eq!(done_at(&all, other_org_old.id), Some(Some(other_done)));
    store
        .set_rollout_done(5, &[(old.id, None)])
        .await
        .expect("undone");
    let all = store.rollout_members(5, None).await.expect("members");
    assert_eq!(done_at(&all, old.id), Some(None));
    assert_eq!(done_at(&all, other_org_old.id), Some(Some(other_done)));
    store.set_rollout_done(5, &[]).await.expect("no change");

    // A deleted profile leaves its rollouts.
    assert!(store.delete_profile(old.id).await.expect("delete"));
    assert!(
        store
            .rollout_members(5, Some(org.id))
            .await
            .expect("members")
            .is_empty()
    );
}
