//! "A profile became invalid": one message to each of the tenant's contacts, held down per profile
//! and reason, delivered with the reason and its remediation.

use consentry_domain::{
    Actor, AppProfile, EmailKind, InvalidEmails, NewProfile, ProfileStatus, StatusChange,
    StatusObserver, StatusReason, TenantRef,
};

use crate::common::{Env, env};

async fn profile(e: &Env) -> AppProfile {
    let app_type = e.svc.catalog().app_types[0].key.clone();
    e.svc
        .create_profile(
            NewProfile {
                tenant: TenantRef::Id(e.tenant.id),
                app_type,
                service: None,
            },
            &Actor::Operator("test".into()),
        )
        .await
        .unwrap()
}

fn change(
    p: &AppProfile,
    from: ProfileStatus,
    previous: Option<StatusReason>,
    to: ProfileStatus,
    reason: Option<StatusReason>,
) -> StatusChange {
    let mut profile = p.clone();
    profile.status = to;
    profile.reason = reason;
    StatusChange {
        profile,
        from,
        previous_reason: previous,
    }
}

#[tokio::test]
async fn a_profile_becoming_invalid_emails_each_contact_once_per_reason_within_the_hold_down() {
    let e = env().await;
    let p = profile(&e).await;
    let observer = InvalidEmails::new(e.mail.clone(), time::Duration::hours(24));
    let invalid = |from, prev| {
        change(
            &p,
            from,
            prev,
            ProfileStatus::Invalid,
            Some(StatusReason::ConsentRevoked),
        )
    };

    // No contacts: nothing to send.
    observer
        .status_changed(invalid(ProfileStatus::Valid, None))
        .await;
    assert!(e.emails().await.is_empty());

    e.set_contacts(&["it-admin@contoso.example", "sec@contoso.example"])
        .await;
    observer
        .status_changed(invalid(ProfileStatus::Valid, None))
        .await;
    let got = e.emails().await;
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.kind == EmailKind::ProfileInvalid));
    let mut to: Vec<&str> = got.iter().map(|r| r.to.as_str()).collect();
    to.sort();
    assert_eq!(to, vec!["it-admin@contoso.example", "sec@contoso.example"]);

    // The same profile and reason again within the hold-down (it recovered and broke again): held.
    observer
        .status_changed(invalid(ProfileStatus::Attention, None))
        .await;
    assert_eq!(e.emails().await.len(), 2);
    // Still invalid for the same reason is no change worth a message; a valid profile none at all.
    observer
        .status_changed(invalid(
            ProfileStatus::Invalid,
            Some(StatusReason::ConsentRevoked),
        ))
        .await;
    observer
        .status_changed(change(
            &p,
            ProfileStatus::Invalid,
            Some(StatusReason::ConsentRevoked),
            ProfileStatus::Valid,
            None,
        ))
        .await;
    assert_eq!(e.emails().await.len(), 2);

    // Another reason is news at once.
    observer
        .status_changed(change(
            &p,
            ProfileStatus::Invalid,
            Some(StatusReason::ConsentRevoked),
            ProfileStatus::Invalid,
            Some(StatusReason::AppRemovedFromTenant),
        ))
        .await;
    assert_eq!(e.emails().await.len(), 4);

    // After the hold-down, the first reason is sent again.
    e.clock.advance(time::Duration::hours(25));
    observer
        .status_changed(invalid(ProfileStatus::Valid, None))
        .await;
    assert_eq!(e.emails().await.len(), 6);
}

#[tokio::test]
async fn the_invalid_email_says_what_is_wrong_and_what_fixes_it() {
    let e = env().await;
    let p = profile(&e).await;
    e.set_contacts(&["it-admin@contoso.example"]).await;
    let reason = StatusReason::ConsentRevoked;
    let queued = e
        .mail
        .notify_invalid(
            &change(
                &p,
                ProfileStatus::Valid,
                None,
                ProfileStatus::Invalid,
                Some(reason.clone()),
            ),
            time::Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(queued, 1);
    let mailbox = e.mailbox();
    let report = e.worker(mailbox.addr().port()).deliver_due().await.unwrap();
    assert_eq!(report.sent, 1);
    let raw = &mailbox.messages().unwrap()[0];
    let parts = crate::delivery::parts(raw);
    let text = &parts[0].1;
    let app = &e.svc.catalog().app_types[0].display_name;
    assert!(
        text.contains(&format!(
            "{app} in contoso.example needs to be re-authorized"
        )),
        "{text}"
    );
    assert!(text.contains("Northwind"), "{text}");
    assert!(text.contains(&reason.summary()), "{text}");
    for (i, step) in reason.remediation().iter().enumerate() {
        assert!(text.contains(&format!("{}. {step}", i + 1)), "{text}");
    }
    assert!(text.contains(&p.id.to_string()));
}
