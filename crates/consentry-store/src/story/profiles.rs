//! Chapters on app profiles: round trip, filters and search, pagination, counts, history, atomicity,
//! conditional saves, the refresh-token redemption time.

use super::*;

/// Every field of a profile round-trips, set and unset, through insert and save.
pub async fn profile_round_trip(store: &dyn Store) {
    let org = new_org(store, "round-trip").await;
    let tenant = new_tenant(store, &org, "rt").await;
    let t0 = now();
    let min = minimal_profile(&tenant, t0);
    let full = full_profile(&tenant, t0 + Duration::nanoseconds(1));
    store
        .insert_profile(&min, created_event(&min))
        .await
        .expect("insert minimal profile");
    store
        .insert_profile(&full, created_event(&full))
        .await
        .expect("insert full profile");
    expect_profile(store, &min).await;
    expect_profile(store, &full).await;
    assert_eq!(
        store.get_profile(ProfileId::new_random()).await.unwrap(),
        None
    );

    // Fill the minimal one, empty the full one: both directions of every optional field.
    let filled = AppProfile {
        id: min.id,
        created_at: min.created_at,
        ..full_profile(&tenant, min.created_at)
    };
    store
        .save_profile(&filled, None)
        .await
        .expect("save filled profile");
    expect_profile(store, &filled).await;
    let emptied = AppProfile {
        id: full.id,
        status: ProfileStatus::Valid,
        reason: None,
        ..minimal_profile(&tenant, full.created_at)
    };
    store
        .save_profile(&emptied, None)
        .await
        .expect("save emptied profile");
    // All but the refresh token's redemption time, which a save only moves forward.
    expect_profile(
        store,
        &AppProfile {
            refresh_token_redeemed_at: full.refresh_token_redeemed_at,
            ..emptied.clone()
        },
    )
    .await;

    // Every reason shape survives.
    let reasons = vec![
        StatusReason::PermissionsMissing {
            missing: vec!["Tasks.ReadWrite.All".into(), "Group.Read.All".into()],
        },
        StatusReason::CertificateExpired {
            not_after: t0 - Duration::days(2),
        },
        StatusReason::UnrecognizedError {
            aadsts: Some(9_999_999),
            error: "invalid_grant".into(),
        },
        StatusReason::ReauthorizationStarted {
            by: "ops@vendor".into(),
        },
    ];
    for r in reasons {
        let p = AppProfile {
            status: r.status(),
            reason: Some(r),
            ..filled.clone()
        };
        store
            .save_profile(&p, None)
            .await
            .expect("save with reason");
        expect_profile(store, &p).await;
    }

    // A duplicate ID is a conflict; a profile for an unknown tenant, or a tenant of another organization, is refused.
    assert!(matches!(
        store.insert_profile(&min, created_event(&min)).await,
        Err(StoreError::Conflict(_))
    ));
    let other_org = new_org(store, "round-trip-other").await;
    let stray = AppProfile {
        org_id: other_org.id,
        ..minimal_profile(&tenant, t0)
    };
    assert!(
        store
            .insert_profile(&stray, created_event(&stray))
            .await
            .is_err()
    );
    assert_eq!(store.get_profile(stray.id).await.unwrap(), None);
    let ghost = minimal_profile(
        &Tenant {
            id: TenantId::from_uuid(Uuid::new_v4()),
            ..tenant.clone()
        },
        t0,
    );
    assert!(matches!(
        store.insert_profile(&ghost, created_event(&ghost)).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.get_profile(ghost.id).await.unwrap(), None);
}

/// The reference meaning of a filter, against which the store's answers are compared.
pub(super) fn filter_matches(f: &ProfileFilter, p: &AppProfile) -> bool {
    let search_ok = match f.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => true,
        Some(s) => {
            let s = s.to_lowercase();
            [
                Some(p.app_type.clone()),
                Some(p.service.clone()),
                p.consent_user.as_ref().map(|u| u.upn.to_string()),
                p.application_id.map(|a| a.to_string()),
            ]
            .into_iter()
            .flatten()
            .any(|v| v.to_lowercase().contains(&s))
        }
    };
    f.org_id.is_none_or(|o| o == p.org_id)
        && f.tenant_id.is_none_or(|t| t == p.tenant_id)
        && (f.statuses.is_empty() || f.statuses.contains(&p.status))
        && f.service.as_ref().is_none_or(|s| *s == p.service)
        && f.app_type.as_ref().is_none_or(|a| *a == p.app_type)
        && search_ok
}

pub(super) fn ids(ps: &[AppProfile]) -> Vec<ProfileId> {
    ps.iter().map(|p| p.id).collect()
}

pub(super) fn sorted_by_creation(mut ps: Vec<AppProfile>) -> Vec<AppProfile> {
    ps.sort_by_key(|p| (p.created_at, p.id.as_uuid()));
    ps
}

/// Filters by each field and in combination, and search (case-insensitive substring; `%` and `_`
/// in the input match literally).
pub async fn filters_and_search(store: &dyn Store) {
    let t = token();
    let org_a = new_org(store, "filters-a").await;
    let org_b = new_org(store, "filters-b").await;
    let ta1 = new_tenant(store, &org_a, "fa").await;
    let ta2 = new_tenant(store, &org_a, "fb").await;
    let tb = new_tenant(store, &org_b, "fc").await;
    let services = [
        format!("svc-{t}-one"),
        format!("svc-{t}%50"),
        format!("svc-{t}x50"),
    ];
    let app_types = [format!("app-{t}_z"), format!("app-{t}yz")];
    let base = now();
    let mut all = Vec::new();
    for i in 0..48usize {
        let tenant = [&ta1, &ta2, &tb][i % 3];
        let created = base + Duration::microseconds(i as i64);
        let mut p = if i % 2 == 0 {
            full_profile(tenant, created)
        } else {
            minimal_profile(tenant, created)
        };
        p.service = services[i % services.len()].clone();
        p.app_type = app_types[(i / 3) % app_types.len()].clone();
        p.status = ProfileStatus::ALL[(i / 2) % 4];
        store
            .insert_profile(&p, created_event(&p))
            .await
            .expect("insert profile");
        all.push(p);
    }
    let upn_fragment = all[0].consent_user.as_ref().unwrap().upn.as_str()[..17].to_uppercase();
    let app_id_fragment = all[2].application_id.unwrap().to_string()[9..23].to_uppercase();
    let mut filters = vec![
        ProfileFilter {
            org_id: Some(org_a.id),
            ..Default::default()
        },
        ProfileFilter {
            org_id: Some(org_b.id),
            ..Default::default()
        },
        ProfileFilter {
            tenant_id: Some(ta2.id),
            ..Default::default()
        },
        ProfileFilter {
            org_id: Some(org_a.id),
            tenant_id: Some(tb.id),
            ..Default::default()
        },
        ProfileFilter {
            service: Some(services[0].clone()),
            ..Default::default()
        },
        ProfileFilter {
            app_type: Some(app_types[1].clone()),
            ..Default::default()
        },
        ProfileFilter {
            org_id: Some(org_a.id),
            service: Some(services[1].clone()),
            app_type: Some(app_types[0].clone()),
            ..Default::default()
        },
        ProfileFilter {
            org_id: Some(OrgId::new_random()),
            ..Default::default()
        },
    ];
    for s in [
        t.to_uppercase(),
        format!("{t}%5"),
        format!("{t}_z"),
        format!("APP-{t}Y"),
        format!("  svc-{t}X  "),
        upn_fragment,
        app_id_fragment,
        format!("{t}\\"),
        format!("{t}%"),
        "no-such-thing-%-at-all".into(),
    ] {
        filters.push(ProfileFilter {
            search: Some(s),
            ..Default::default()
        });
    }
    for statuses in [
        vec![ProfileStatus::Invalid],
        vec![ProfileStatus::Valid, ProfileStatus::Pending],
        ProfileStatus::ALL.to_vec(),
    ] {
        filters.push(ProfileFilter {
            org_id: Some(org_a.id),
            statuses: statuses.clone(),
            ..Default::default()
        });
        filters.push(ProfileFilter {
            tenant_id: Some(tb.id),
            statuses: statuses.clone(),
            search: Some(format!("{t}X5")),
            ..Default::default()
        });
        filters.push(ProfileFilter {
            statuses,
            app_type: Some(app_types[0].clone()),
            ..Default::default()
        });
    }
    let our_ids: HashSet<ProfileId> = all.iter().map(|p| p.id).collect();
    for f in &filters {
        let expected = sorted_by_creation(
            all.iter()
                .filter(|p| filter_matches(f, p))
                .cloned()
                .collect(),
        );
        let got: Vec<AppProfile> = collect_all(store, f, 7)
            .await
            .into_iter()
            .filter(|p| our_ids.contains(&p.id))
            .collect();
        assert_eq!(ids(&got), ids(&expected), "filter {f:?}");
        assert_eq!(got, expected, "filter {f:?} returns whole profiles");
    }
    // Sanity of the reference itself: the wildcard searches must single out the literal values.
    let literal_percent = ProfileFilter {
        search: Some(format!("{t}%5")),
        ..Default::default()
    };
    assert!(
        all.iter()
            .filter(|p| filter_matches(&literal_percent, p))
            .all(|p| p.service == services[1])
    );
    assert_eq!(
        all.iter()
            .filter(|p| filter_matches(&literal_percent, p))
            .count(),
        16
    );
    let literal_underscore = ProfileFilter {
        search: Some(format!("{t}_z")),
        ..Default::default()
    };
    assert_eq!(
        all.iter()
            .filter(|p| filter_matches(&literal_underscore, p))
            .count(),
        24
    );
}

/// Keyset pagination over `n` profiles: no duplicates, no gaps, creation order (ties broken by ID),
/// the last page has no cursor, and bad cursors are refused.
pub async fn pagination(store: &dyn Store, n: usize) {
    let org = new_org(store, "pagination").await;
    let tenant = new_tenant(store, &org, "pg").await;
    let base = now();
    let mut all = Vec::with_capacity(n);
    for i in 0..n {
        // Groups of three share a creation time, so the ID must break ties.
        let mut p = minimal_profile(&tenant, base + Duration::microseconds((i / 3) as i64));
        p.status = ProfileStatus::ALL[i % 4];
        store
            .insert_profile(&p, created_event(&p))
            .await
            .expect("insert profile");
        all.push(p);
    }
    let expected = sorted_by_creation(all.clone());
    let filter = ProfileFilter {
        org_id: Some(org.id),
        ..Default::default()
    };
    for limit in [1u32, 100, 500] {
        if limit == 1 && n > 200 {
            continue;
        }
        let got = collect_all(store, &filter, limit).await;
        assert_eq!(
            got.len(),
            n,
            "page size {limit}: every profile exactly once"
        );
        let unique: HashSet<ProfileId> = got.iter().map(|p| p.id).collect();
        assert_eq!(unique.len(), n, "page size {limit}: no duplicates");
        assert_eq!(
            ids(&got),
            ids(&expected),
            "page size {limit}: creation order"
        );
    }
    // Asking for exactly what remains: the page that ends the list carries no cursor (no empty page follows).
    let mut after = None;
    let mut remaining = n;
    let mut seen = Vec::with_capacity(n);
    while remaining > 0 {
        let limit = remaining.min(500);
        let page = store
            .list_profiles(
                &filter,
                &PageRequest {
                    after: after.take(),
                    limit: u32::try_from(limit).unwrap(),
                },
            )
            .await
            .unwrap();
        assert_eq!(page.items.len(), limit);
        remaining -= limit;
        assert_eq!(
            page.next_cursor.is_some(),
            remaining > 0,
            "a cursor exactly when more follow"
        );
        seen.extend(page.items);
        after = page.next_cursor;
    }
    assert_eq!(ids(&seen), ids(&expected));
    // Filtered pagination.
    let invalid = ProfileFilter {
        org_id: Some(org.id),
        statuses: vec![ProfileStatus::Invalid, ProfileStatus::Pending],
        ..Default::default()
    };
    let got = collect_all(store, &invalid, 37).await;
    let want: Vec<ProfileId> = expected
        .iter()
        .filter(|p| matches!(p.status, ProfileStatus::Invalid | ProfileStatus::Pending))
        .map(|p| p.id)
        .collect();
    assert_eq!(ids(&got), want);
    // Bad cursors.
    for bad in ["garbage!", "", "cDE6eDp5", "AAAA"] {
        let r = store
            .list_profiles(
                &filter,
                &PageRequest {
                    after: Some(bad.into()),
                    limit: 10,
                },
            )
            .await;
        assert!(
            matches!(r, Err(StoreError::BadCursor)),
            "cursor {bad:?} must be refused"
        );
    }
    // An empty result has no cursor.
    let none = store
        .list_profiles(
            &ProfileFilter {
                org_id: Some(OrgId::new_random()),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.next_cursor.is_none());
}

/// Counts by status, for a filter; every status is present (zero when none match).
pub async fn counts(store: &dyn Store) {
    let org = new_org(store, "counts").await;
    let t1 = new_tenant(store, &org, "ca").await;
    let t2 = new_tenant(store, &org, "cb").await;
    let base = now();
    let mut all = Vec::new();
    for i in 0..23usize {
        let mut p = minimal_profile(
            if i % 3 == 0 { &t1 } else { &t2 },
            base + Duration::microseconds(i as i64),
        );
        p.status = ProfileStatus::ALL[(i * i + 1) % 4];
        p.service = if i % 2 == 0 {
            "insights".into()
        } else {
            "fly".into()
        };
        store.insert_profile(&p, created_event(&p)).await.unwrap();
        all.push(p);
    }
    let filters = [
        ProfileFilter {
            org_id: Some(org.id),
            ..Default::default()
        },
        ProfileFilter {
            tenant_id: Some(t1.id),
            ..Default::default()
        },
        ProfileFilter {
            org_id: Some(org.id),
            service: Some("fly".into()),
            statuses: vec![ProfileStatus::Valid, ProfileStatus::Invalid],
            ..Default::default()
        },
        ProfileFilter {
            org_id: Some(OrgId::new_random()),
            ..Default::default()
        },
    ];
    for f in &filters {
        let mut want: BTreeMap<ProfileStatus, u64> =
            ProfileStatus::ALL.into_iter().map(|s| (s, 0)).collect();
        for p in all.iter().filter(|p| filter_matches(f, p)) {
            *want.entry(p.status).or_default() += 1;
        }
        assert_eq!(
            store.count_profiles(f).await.unwrap(),
            want,
            "counts for {f:?}"
        );
        // Counted up to a limit: exact up to it, "more than the limit" past it; a status the
        // filter excludes counts zero.
        for limit in [0u64, 1, 2, 3, 100] {
            let capped: BTreeMap<ProfileStatus, CappedCount> = want
                .iter()
                .map(|(s, n)| (*s, CappedCount::of(*n, limit)))
                .collect();
            assert_eq!(
                store.count_profiles_up_to(f, limit).await.unwrap(),
                capped,
                "counts up to {limit} for {f:?}"
            );
        }
    }
    // The story's 23 profiles hold more than 2 of some status in the organization: that count says
    // "more than 2", and the total of the counts too.
    let org_wide = store
        .count_profiles_up_to(
            &ProfileFilter {
                org_id: Some(org.id),
                ..Default::default()
            },
            2,
        )
        .await
        .unwrap();
    let total = CappedCount::sum(org_wide.values());
    assert!(total.more, "{org_wide:?}");
    assert_eq!(total.to_string(), format!("{}+", total.n));
}

/// History: insert and save append events atomically, newest first, with increasing sequence numbers.
pub async fn history(store: &dyn Store) {
    let org = new_org(store, "history").await;
    let tenant = new_tenant(store, &org, "hi").await;
    let mut p = full_profile(&tenant, now());
    let mut sent = vec![created_event(&p)];
    store.insert_profile(&p, sent[0].clone()).await.unwrap();
    let other = minimal_profile(&tenant, now());
    store
        .insert_profile(&other, created_event(&other))
        .await
        .unwrap();

    let steps: Vec<(EventKind, ProfileStatus, Option<StatusReason>, Actor)> = vec![
        (
            EventKind::ReauthorizationStarted,
            ProfileStatus::Pending,
            Some(StatusReason::ReauthorizationStarted { by: "ops".into() }),
            Actor::Operator("ops".into()),
        ),
        (
            EventKind::ReauthorizationCompleted,
            ProfileStatus::Valid,
            None,
            Actor::System,
        ),
        (
            EventKind::StatusChanged,
            ProfileStatus::Invalid,
            Some(StatusReason::ConsentRevoked),
            Actor::System,
        ),
    ];
    for (i, (kind, status, reason, actor)) in steps.into_iter().enumerate() {
        let event = NewHistoryEvent {
            evidence: None,
            profile_id: p.id,
            at: p.created_at + Duration::minutes(i as i64 + 1),
            actor,
            kind,
            from_status: Some(p.status),
            to_status: Some(status),
            reason: reason.clone(),
            detail: if i == 1 {
                None
            } else {
                Some(format!("step {i}"))
            },
        };
        p.status = status;
        p.reason = reason;
        p.updated_at = event.at;
        store.save_profile(&p, Some(event.clone())).await.unwrap();
        sent.push(event);
    }
    // A save without an event appends nothing.
    p.last_checked_at = Some(p.updated_at + Duration::seconds(30));
    store.save_profile(&p, None).await.unwrap();
    expect_profile(store, &p).await;

    let got = store.list_history(p.id, 100).await.unwrap();
    assert_eq!(
        got.len(),
        sent.len(),
        "one event per insert/save with an event"
    );
    for w in got.windows(2) {
        assert!(w[0].seq > w[1].seq, "newest first, increasing seq");
    }
    for (got, sent) in got.iter().rev().zip(&sent) {
        assert_eq!(got.profile_id, sent.profile_id);
        assert_eq!(got.at, sent.at);
        assert_eq!(got.actor, sent.actor);
        assert_eq!(got.kind, sent.kind);
        assert_eq!(got.from_status, sent.from_status);
        assert_eq!(got.to_status, sent.to_status);
        assert_eq!(got.reason, sent.reason);
        assert_eq!(got.detail, sent.detail);
    }
    let newest_two = store.list_history(p.id, 2).await.unwrap();
    assert_eq!(newest_two, got[..2].to_vec(), "limit keeps the newest");
    let other_history = store.list_history(other.id, 100).await.unwrap();
    assert_eq!(other_history.len(), 1);
    assert_eq!(other_history[0].kind, EventKind::Created);
    assert!(
        store
            .list_history(ProfileId::new_random(), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A failed insert or save leaves neither a profile change nor a history event behind.
pub async fn atomicity(store: &dyn Store) {
    let org = new_org(store, "atomicity").await;
    let tenant = new_tenant(store, &org, "at").await;
    let p = minimal_profile(&tenant, now());
    store.insert_profile(&p, created_event(&p)).await.unwrap();

    // Inserting again (same ID, different content): conflict, the first version stays, no second event.
    let changed = AppProfile {
        service: "fly".into(),
        ..p.clone()
    };
    assert!(matches!(
        store
            .insert_profile(&changed, created_event(&changed))
            .await,
        Err(StoreError::Conflict(_))
    ));
    expect_profile(store, &p).await;
    assert_eq!(store.list_history(p.id, 10).await.unwrap().len(), 1);

    // An event that belongs to another profile is refused, and nothing is stored.
    let q = minimal_profile(&tenant, now());
    let wrong = created_event(&p);
    assert!(store.insert_profile(&q, wrong.clone()).await.is_err());
    assert_eq!(store.get_profile(q.id).await.unwrap(), None);
    assert_eq!(store.list_history(p.id, 10).await.unwrap().len(), 1);
    let p2 = AppProfile {
        status: ProfileStatus::Valid,
        reason: None,
        ..p.clone()
    };
    let foreign_event = created_event(&q);
    assert!(store.save_profile(&p2, Some(foreign_event)).await.is_err());
    expect_profile(store, &p).await;
    assert!(store.list_history(q.id, 10).await.unwrap().is_empty());

    // Saving an absent profile: NotFound, and no event recorded for it.
    assert!(matches!(
        store.save_profile(&q, Some(created_event(&q))).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.save_profile(&q, None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.list_history(q.id, 10).await.unwrap().is_empty());
    assert_eq!(store.get_profile(q.id).await.unwrap(), None);
}

/// Saves conditional on the profile as read (a check's result): written only while the stored
/// profile keeps the `updated_at` and status it was read with; otherwise nothing, event included.
pub async fn conditional_save(store: &dyn Store) {
    let org = new_org(store, "conditional").await;
    let tenant = new_tenant(store, &org, "cs").await;
    let p = minimal_profile(&tenant, now());
    store.insert_profile(&p, created_event(&p)).await.unwrap();
    let as_read = (p.updated_at, p.status);

    // Unchanged: saved, without an event in one statement, with one atomically.
    let checked = AppProfile {
        last_checked_at: Some(p.updated_at + Duration::seconds(5)),
        ..p.clone()
    };
    assert!(
        store
            .save_profile_if_unchanged(&checked, as_read, None)
            .await
            .unwrap()
    );
    expect_profile(store, &checked).await;
    let later = p.updated_at + Duration::seconds(10);
    let invalid = AppProfile {
        status: ProfileStatus::Invalid,
        reason: Some(StatusReason::AppRemovedFromTenant),
        updated_at: later,
        last_checked_at: Some(later),
        ..p.clone()
    };
    let event = NewHistoryEvent {
        evidence: None,
        profile_id: p.id,
        at: later,
        actor: Actor::System,
        kind: EventKind::StatusChanged,
        from_status: Some(p.status),
        to_status: Some(ProfileStatus::Invalid),
        reason: invalid.reason.clone(),
        detail: Some("check (scheduled)".into()),
    };
    assert!(
        store
            .save_profile_if_unchanged(&invalid, as_read, Some(event.clone()))
            .await
            .unwrap()
    );
    expect_profile(store, &invalid).await;
    assert_eq!(store.list_history(p.id, 10).await.unwrap().len(), 2);

    // Changed since it was read (its updated_at, or only its status): nothing written, no event.
    let stale = AppProfile {
        last_checked_at: Some(later + Duration::seconds(1)),
        ..checked.clone()
    };
    for expected in [
        as_read,
        (invalid.updated_at, ProfileStatus::Valid),
        (p.updated_at, ProfileStatus::Invalid),
    ] {
        assert!(
            !store
                .save_profile_if_unchanged(&stale, expected, None)
                .await
                .unwrap(),
            "{expected:?}"
        );
        assert!(
            !store
                .save_profile_if_unchanged(&stale, expected, Some(event.clone()))
                .await
                .unwrap()
        );
    }
    expect_profile(store, &invalid).await;
    assert_eq!(store.list_history(p.id, 10).await.unwrap().len(), 2);
    // As read now: saved.
    assert!(
        store
            .save_profile_if_unchanged(&stale, (invalid.updated_at, invalid.status), None)
            .await
            .unwrap()
    );
    expect_profile(store, &stale).await;

    // Absent: NotFound, with or without an event.
    let q = minimal_profile(&tenant, now());
    assert!(matches!(
        store
            .save_profile_if_unchanged(&q, (q.updated_at, q.status), None)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .save_profile_if_unchanged(&q, (q.updated_at, q.status), Some(created_event(&q)))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.list_history(q.id, 10).await.unwrap().is_empty());
}

/// A check that changed neither status nor reason saves only what it learned (`save_check`): the
/// check time, the permissions read and the redemption time (forward only), conditional on the profile
/// as read; whatever else the profile it passes holds is not written.
pub async fn check_save(store: &dyn Store) {
    let org = new_org(store, "check-save").await;
    let tenant = new_tenant(store, &org, "check-save").await;
    let p = full_profile(&tenant, now());
    store.insert_profile(&p, created_event(&p)).await.unwrap();
    let as_read = (p.updated_at, p.status);
    let redeemed = p.refresh_token_redeemed_at.expect("set");
    let checked_at = p.updated_at + Duration::seconds(30);
    let granted = vec![GrantedPermission {
        name: "Sites.Read.All".into(),
        kind: PermissionType::Role,
    }];
    let sent = AppProfile {
        last_checked_at: Some(checked_at),
        granted_permissions: granted.clone(),
        refresh_token_redeemed_at: Some(redeemed + Duration::minutes(5)),
        // Not a check's to change: left as stored.
        service: "another-service".into(),
        reason: Some(StatusReason::AppRemovedFromTenant),
        ..p.clone()
    };
    assert!(store.save_check(&sent, as_read).await.unwrap());
    let expected = AppProfile {
        last_checked_at: Some(checked_at),
        granted_permissions: granted.clone(),
        refresh_token_redeemed_at: Some(redeemed + Duration::minutes(5)),
        ..p.clone()
    };
    expect_profile(store, &expected).await;
    assert_eq!(
        store.list_history(p.id, 10).await.unwrap().len(),
        1,
        "no event"
    );

    // An earlier redemption time does not move it back.
    let earlier = AppProfile {
        refresh_token_redeemed_at: Some(redeemed),
        ..expected.clone()
    };
    assert!(store.save_check(&earlier, as_read).await.unwrap());
    expect_profile(store, &expected).await;

    // Changed since it was read (its updated_at or its status): nothing written.
    let stale = AppProfile {
        last_checked_at: Some(checked_at + Duration::seconds(1)),
        ..expected.clone()
    };
    for changed in [
        (p.updated_at + Duration::seconds(1), p.status),
        (p.updated_at, ProfileStatus::Valid),
    ] {
        assert_ne!(changed, as_read);
        assert!(
            !store.save_check(&stale, changed).await.unwrap(),
            "{changed:?}"
        );
    }
    expect_profile(store, &expected).await;

    // Absent: NotFound.
    let q = minimal_profile(&tenant, now());
    assert!(matches!(
        store.save_check(&q, (q.updated_at, q.status)).await,
        Err(StoreError::NotFound(_))
    ));
}

/// The refresh token's redemption time: recorded without touching `updated_at`, and only ever moved
/// forward, by the recording call and by saves of a profile read before it.
pub async fn refresh_redemption(store: &dyn Store) {
    let org = new_org(store, "redemption").await;
    let tenant = new_tenant(store, &org, "redemption").await;
    let p = full_profile(&tenant, now());
    store.insert_profile(&p, created_event(&p)).await.unwrap();
    let first = p.refresh_token_redeemed_at.expect("set");

    let later = first + Duration::hours(1);
    store.record_refresh_redemption(p.id, later).await.unwrap();
    let got = store.get_profile(p.id).await.unwrap().unwrap();
    assert_eq!(got.refresh_token_redeemed_at, Some(later));
    assert_eq!(
        got.updated_at, p.updated_at,
        "recording does not change updated_at"
    );
    // An earlier time changes nothing.
    store
        .record_refresh_redemption(p.id, first - Duration::days(1))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_profile(p.id)
            .await
            .unwrap()
            .unwrap()
            .refresh_token_redeemed_at,
        Some(later)
    );
    // A save of the profile as read before the redemption keeps the later time, with or
    // without a condition; a save carrying a newer time moves it.
    store.save_profile(&p, None).await.unwrap();
    assert_eq!(
        store
            .get_profile(p.id)
            .await
            .unwrap()
            .unwrap()
            .refresh_token_redeemed_at,
        Some(later)
    );
    let cleared = AppProfile {
        refresh_token_redeemed_at: None,
        ..p.clone()
    };
    assert!(
        store
            .save_profile_if_unchanged(&cleared, (p.updated_at, p.status), None)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_profile(p.id)
            .await
            .unwrap()
            .unwrap()
            .refresh_token_redeemed_at,
        Some(later)
    );
    let newest = later + Duration::minutes(5);
    let renewed = AppProfile {
        refresh_token_redeemed_at: Some(newest),
        ..p.clone()
    };
    store.save_profile(&renewed, None).await.unwrap();
    expect_profile(store, &renewed).await;
    // An absent profile: nothing to record, no error.
    store
        .record_refresh_redemption(minimal_profile(&tenant, now()).id, newest)
        .await
        .unwrap();
}
