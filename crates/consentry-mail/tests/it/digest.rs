//! An organization's daily digest: opted-in recipients, queued once a day from the configured hour,
//! delivered with the counts and the profiles that are not valid.

use consentry_domain::{
    Actor, Caller, Clock as _, DomainError, EmailKind, NewProfile, OrgId, ProfileStatus,
    StatusReason, TenantRef,
};
use consentry_mail::WorkerConfig;

use crate::common::{env, worker_with};

#[tokio::test]
async fn an_organizations_digest_goes_to_its_recipients_once_a_day() {
    let e = env().await;
    let org = e.tenant.org_id;
    let caller = Caller::platform("test");

    // Recipients are opted in per organization; a malformed one is refused naming the field.
    let refused = e
        .mail
        .set_digest_recipients(&caller, org, &["ops@northwind.example, oops".into()])
        .await
        .unwrap_err();
    assert!(
        matches!(
            &refused,
            DomainError::Invalid {
                field: "recipients",
                ..
            }
        ),
        "{refused:?}"
    );
    let unknown = e
        .mail
        .digest_recipients(&caller, OrgId::new_random())
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, DomainError::NotFound { .. }),
        "{unknown:?}"
    );

    // A profile that is not valid, to be listed.
    let app = e.svc.catalog().app_types[0].clone();
    let mut p = e
        .svc
        .create_profile(
            NewProfile {
                tenant: TenantRef::Id(e.tenant.id),
                app_type: app.key.clone(),
                service: None,
            },
            &Actor::Operator("test".into()),
        )
        .await
        .unwrap();
    p.status = ProfileStatus::Invalid;
    p.reason = Some(StatusReason::ConsentRevoked);
    e.svc.store().save_profile(&p, None).await.unwrap();

    // No recipients: no digest.
    assert_eq!(e.mail.queue_digests(0).await.unwrap(), 0);
    let set = e
        .mail
        .set_digest_recipients(
            &caller,
            org,
            &[
                "ops@northwind.example".into(),
                "cto@northwind.example".into(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(set.recipients.len(), 2);

    // Before the hour: nothing (when there is an hour later today to ask for).
    let hour = e.clock.now().to_offset(time::UtcOffset::UTC).hour();
    if hour < 23 {
        assert_eq!(e.mail.queue_digests(hour + 1).await.unwrap(), 0);
    }

    // The worker queues it (one per recipient) and delivers it; a second pass the same day does not.
    let mailbox = e.mailbox();
    let worker = worker_with(
        &e,
        mailbox.addr().port(),
        WorkerConfig {
            digest_hour: Some(0),
            ..WorkerConfig::default()
        },
    );
    let report = worker.deliver_due().await.unwrap();
    assert_eq!(report.sent, 2);
    assert_eq!(worker.deliver_due().await.unwrap().handled(), 0);
    let got = mailbox.messages().unwrap();
    assert_eq!(got.len(), 2);
    let day = consentry_domain::mail::digest_day(e.clock.now());
    assert!(
        got[0].contains(&format!("Subject: Northwind: app profiles on {day}")),
        "{}",
        got[0]
    );
    let text = &crate::delivery::parts(&got[0])[0].1;
    assert!(text.contains("invalid: 1"), "{text}");
    assert!(
        text.contains(&format!(
            "contoso.example, {}: Invalid. {}",
            app.display_name,
            StatusReason::ConsentRevoked.summary()
        )),
        "{text}"
    );
    let listed = e
        .svc
        .store()
        .list_emails(Some(org), None, 10)
        .await
        .unwrap();
    assert!(listed.iter().all(|r| r.kind == EmailKind::Digest));

    // The next day, again.
    e.clock.advance(time::Duration::days(1));
    assert_eq!(e.mail.queue_digests(0).await.unwrap(), 2);
    // Opted out: no more.
    e.mail
        .set_digest_recipients(&caller, org, &[])
        .await
        .unwrap();
    e.clock.advance(time::Duration::days(1));
    assert_eq!(e.mail.queue_digests(0).await.unwrap(), 0);
}
