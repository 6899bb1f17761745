//! Chapter: tenants' contacts (replaced whole, read in order, read for many tenants at once, gone
//! with an unknown tenant refused) and the email outbox (queued in one call, listed newest first per
//! tenant and organization without content, leased to one sender at a time with the content
//! unsealed, a lease running out, sent, failed with a retry time or for good, topics for
//! hold-downs), and organizations' daily digests (recipients, replaced whole even by concurrent
//! callers; a day's digest claimed and queued once across concurrent callers).
//!
//! Leasing looks at the whole outbox, so the chapter's messages are due at a random instant in the
//! 1990s: another run's messages, queued now, are never due at it, and only the chapter's own
//! messages are looked at.

use consentry_domain::ports::{EmailKind, EmailState, NewEmail};
use consentry_domain::{EmailAddress, EmailId};
use secrecy::SecretString;

use super::*;

fn addr(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("a valid address")
}

fn email(org: &Organization, tenant: Option<&Tenant>, to: &str, at: OffsetDateTime) -> NewEmail {
    let id = EmailId::new_random();
    NewEmail {
        id,
        org_id: org.id,
        tenant_id: tenant.map(|t| t.id),
        kind: EmailKind::ProfileInvalid,
        to: addr(to),
        subject: format!("story subject {id}"),
        content: SecretString::from(format!("{{\"story\":\"{id}\"}}")),
        topic: Some(format!("story:{id}")),
        created_at: at,
    }
}

pub async fn mail(store: &dyn Store) {
    contacts(store).await;
    outbox(store).await;
    digests(store).await;
}

async fn digests(store: &dyn Store) {
    let org = new_org(store, "digest").await;
    let quiet = new_org(store, "digest-quiet").await;
    assert!(store.digest_recipients(org.id).await.unwrap().is_empty());
    let to = [addr("ops@northwind.example"), addr("cto@northwind.example")];
    store
        .set_digest_recipients(org.id, &to, now())
        .await
        .expect("set digest recipients");
    assert_eq!(
        store.digest_recipients(org.id).await.unwrap(),
        to,
        "digest recipients read back in order"
    );
    // Replaced by several callers at once (two admins saving the form, replicas): each call waits
    // for the others instead of failing, and one caller's whole list is what stays.
    let lists: Vec<Vec<EmailAddress>> = (0..6)
        .map(|i| {
            vec![
                addr(&format!("a{i}@northwind.example")),
                addr(&format!("b{i}@northwind.example")),
            ]
        })
        .collect();
    let outcomes = join_all(
        lists
            .iter()
            .map(|l| store.set_digest_recipients(quiet.id, l, now()))
            .collect(),
    )
    .await;
    for outcome in outcomes {
        outcome.expect("concurrent replacements of a recipient list all succeed");
    }
    let kept = store.digest_recipients(quiet.id).await.unwrap();
    assert!(
        lists.contains(&kept),
        "one caller's whole list stays, not a mix: {kept:?}"
    );
    store
        .set_digest_recipients(quiet.id, &[], now())
        .await
        .expect("clear the quiet organization's list");
    // Days far in the future: another run's organizations are never due on them before ours.
    let day = format!("9{:03}-01-01", rand::random::<u16>() % 1000);
    let due = |list: Vec<(OrgId, Vec<EmailAddress>)>| {
        list.into_iter()
            .filter(|(o, _)| *o == org.id || *o == quiet.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        due(store.digests_due(&day).await.expect("due")),
        vec![(org.id, to.to_vec())],
        "an organization with recipients is due; one without is not"
    );
    let message = |to: &EmailAddress| {
        let mut e = email(&org, None, to.as_str(), now());
        e.kind = EmailKind::Digest;
        e.topic = Some(format!("digest:{}:{day}", org.id));
        e
    };
    let emails: Vec<NewEmail> = to.iter().map(message).collect();
    let others: Vec<NewEmail> = to.iter().map(message).collect();
    let (first, second) = tokio::join!(
        store.enqueue_digest(org.id, &day, &emails),
        store.enqueue_digest(org.id, &day, &others)
    );
    let (first, second) = (first.expect("claim"), second.expect("claim again"));
    assert!(
        first ^ second,
        "one of two replicas queues the day's digest"
    );
    let queued = store
        .list_emails(Some(org.id), None, 100)
        .await
        .expect("list");
    assert_eq!(queued.len(), 2, "one message per recipient, queued once");
    assert!(
        queued
            .iter()
            .all(|r| r.kind == EmailKind::Digest && r.tenant_id.is_none())
    );
    assert!(
        due(store.digests_due(&day).await.unwrap()).is_empty(),
        "not due again that day"
    );
    assert!(
        !store
            .enqueue_digest(org.id, "2000-01-01", &emails)
            .await
            .expect("an earlier day"),
        "an earlier day is never claimed after a later one"
    );
    let next = format!("{}-01-02", &day[..4]);
    assert_eq!(
        due(store.digests_due(&next).await.unwrap()),
        vec![(org.id, to.to_vec())],
        "due again the next day"
    );
    store
        .set_digest_recipients(org.id, &[], now())
        .await
        .expect("opt out");
    assert!(due(store.digests_due(&next).await.unwrap()).is_empty());
    let unknown = OrgId::new_random();
    assert!(matches!(
        store.set_digest_recipients(unknown, &to, now()).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn contacts(store: &dyn Store) {
    let org = new_org(store, "contacts").await;
    let a = new_tenant(store, &org, "contacts-a").await;
    let b = new_tenant(store, &org, "contacts-b").await;
    assert!(
        store
            .tenant_contacts(a.id)
            .await
            .expect("no contacts")
            .is_empty(),
        "a new tenant has no contacts"
    );
    let first = [addr("it@contoso.example"), addr("Sec@contoso.example")];
    store
        .set_tenant_contacts(a.id, &first, now())
        .await
        .expect("set contacts");
    assert_eq!(
        store.tenant_contacts(a.id).await.expect("read contacts"),
        first,
        "contacts read back in the order given"
    );
    store
        .set_tenant_contacts(b.id, &[addr("admin@fabrikam.example")], now())
        .await
        .expect("set b's contacts");
    let replaced = [addr("new@contoso.example")];
    store
        .set_tenant_contacts(a.id, &replaced, now())
        .await
        .expect("replace contacts");
    assert_eq!(
        store.tenant_contacts(a.id).await.expect("read contacts"),
        replaced,
        "setting contacts replaces them all"
    );
    let many = store
        .contacts_of_tenants(&[a.id, b.id])
        .await
        .expect("contacts of many");
    let mut many: Vec<(TenantId, String)> = many
        .into_iter()
        .map(|(t, a)| (t, a.as_str().to_string()))
        .collect();
    many.sort();
    let mut want = vec![
        (a.id, "new@contoso.example".to_string()),
        (b.id, "admin@fabrikam.example".to_string()),
    ];
    want.sort();
    assert_eq!(many, want, "contacts of many tenants in one call");
    store
        .set_tenant_contacts(a.id, &[], now())
        .await
        .expect("clear contacts");
    assert!(store.tenant_contacts(a.id).await.unwrap().is_empty());
    let unknown = TenantId::from_uuid(Uuid::new_v4());
    assert!(
        matches!(
            store.set_tenant_contacts(unknown, &first, now()).await,
            Err(StoreError::NotFound(_))
        ),
        "contacts of an unknown tenant are refused as not found"
    );
}

async fn outbox(store: &dyn Store) {
    let org = new_org(store, "outbox").await;
    let tenant = new_tenant(store, &org, "outbox").await;
    let other = new_tenant(store, &org, "outbox-other").await;
    // A random instant in the 1990s, to the microsecond.
    let t0 = OffsetDateTime::from_unix_timestamp(631_152_000).expect("1990")
        + Duration::microseconds(i64::from(rand::random::<u32>()) * 73);
    let a = email(&org, Some(&tenant), "a@contoso.example", t0);
    let b = email(
        &org,
        Some(&tenant),
        "b@contoso.example",
        t0 + Duration::seconds(1),
    );
    let c = email(&org, None, "c@contoso.example", t0 + Duration::seconds(2));
    let d = email(
        &org,
        Some(&other),
        "d@contoso.example",
        t0 + Duration::seconds(3),
    );
    store
        .enqueue_emails(&[a.clone(), b.clone(), c.clone(), d.clone()])
        .await
        .expect("queue emails");
    let mine = |ids: &[EmailId]| {
        let set: HashSet<EmailId> = [a.id, b.id, c.id, d.id].into_iter().collect();
        let mut v: Vec<EmailId> = ids.iter().copied().filter(|i| set.contains(i)).collect();
        v.sort_by_key(|i| i.to_string());
        v
    };
    let sorted = |mut v: Vec<EmailId>| {
        v.sort_by_key(|i| i.to_string());
        v
    };

    let listed = store
        .list_emails(Some(org.id), Some(tenant.id), 100)
        .await
        .expect("list a tenant's emails");
    assert_eq!(
        listed.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![b.id, a.id],
        "a tenant's emails, newest first"
    );
    let r = &listed[1];
    assert_eq!(
        (r.org_id, r.tenant_id, r.kind, r.state, r.attempts),
        (
            org.id,
            Some(tenant.id),
            EmailKind::ProfileInvalid,
            EmailState::Queued,
            0
        )
    );
    assert_eq!(r.to, a.to);
    assert_eq!(r.subject, a.subject);
    assert_eq!(r.created_at, t0, "created_at reads back equal");
    assert_eq!((r.last_error.as_deref(), r.sent_at), (None, None));
    assert_eq!(
        store
            .list_emails(Some(org.id), None, 100)
            .await
            .expect("list an organization's emails")
            .len(),
        4,
        "an organization's emails, with and without a tenant"
    );
    assert_eq!(
        store
            .list_emails(Some(org.id), None, 2)
            .await
            .expect("list with a limit")
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        vec![d.id, c.id],
        "the limit keeps the newest"
    );

    // Nothing is due before it was queued.
    let early = store
        .lease_due_emails(t0 - Duration::seconds(1), t0 + Duration::minutes(10), 1000)
        .await
        .expect("lease early");
    assert!(mine(&early.iter().map(|l| l.id).collect::<Vec<_>>()).is_empty());

    // Two senders at once: each message goes to one of them.
    let until = t0 + Duration::minutes(10);
    let at = t0 + Duration::seconds(3);
    let (x, y) = tokio::join!(
        store.lease_due_emails(at, until, 1000),
        store.lease_due_emails(at, until, 1000)
    );
    let (x, y) = (x.expect("lease x"), y.expect("lease y"));
    let mut both: Vec<EmailId> = x.iter().chain(y.iter()).map(|l| l.id).collect();
    let all = mine(&both);
    assert_eq!(
        all,
        sorted(vec![a.id, b.id, c.id, d.id]),
        "every due message leased"
    );
    both.sort_by_key(|i| i.to_string());
    both.dedup();
    assert_eq!(mine(&both).len(), 4, "no message leased by both senders");
    let leased_a = x
        .iter()
        .chain(y.iter())
        .find(|l| l.id == a.id)
        .expect("a leased");
    assert_eq!(leased_a.to, a.to);
    assert_eq!(leased_a.subject, a.subject);
    assert_eq!(leased_a.attempts, 0);
    assert_eq!(
        leased_a.content.expose_secret(),
        format!("{{\"story\":\"{}\"}}", a.id),
        "the content is unsealed for the sender"
    );
    let again = store
        .lease_due_emails(at, until, 1000)
        .await
        .expect("lease again");
    assert!(
        mine(&again.iter().map(|l| l.id).collect::<Vec<_>>()).is_empty(),
        "a leased message is not leased again while its lease lasts"
    );

    store.email_sent(a.id, at).await.expect("sent");
    store
        .email_failed(b.id, "451 try later", Some(t0 + Duration::hours(1)))
        .await
        .expect("failed, to retry");
    store
        .email_failed(c.id, "550 no such user", None)
        .await
        .expect("failed for good");
    let records = store
        .list_emails(Some(org.id), None, 100)
        .await
        .expect("list");
    let rec = |id: EmailId| records.iter().find(|r| r.id == id).expect("listed").clone();
    let ra = rec(a.id);
    assert_eq!(
        (ra.state, ra.attempts, ra.sent_at),
        (EmailState::Sent, 1, Some(at))
    );
    let rb = rec(b.id);
    assert_eq!(
        (rb.state, rb.attempts, rb.last_error.as_deref()),
        (EmailState::Queued, 1, Some("451 try later"))
    );
    let rc = rec(c.id);
    assert_eq!(
        (rc.state, rc.attempts, rc.last_error.as_deref()),
        (EmailState::Failed, 1, Some("550 no such user"))
    );

    // The lease of d runs out (its sender died); b is due at its retry time; a and c never again.
    let later = store
        .lease_due_emails(t0 + Duration::minutes(11), t0 + Duration::minutes(21), 1000)
        .await
        .expect("lease after the lease ran out");
    assert_eq!(
        mine(&later.iter().map(|l| l.id).collect::<Vec<_>>()),
        vec![d.id],
        "a message whose lease ran out is leased again; one to retry waits for its time"
    );
    let retry = store
        .lease_due_emails(t0 + Duration::minutes(61), t0 + Duration::minutes(71), 1000)
        .await
        .expect("lease at the retry time");
    let got = retry.iter().find(|l| l.id == b.id).expect("b due again");
    assert_eq!(
        got.attempts, 1,
        "the attempts made so far go with the lease"
    );
    assert!(
        !retry.iter().any(|l| l.id == a.id || l.id == c.id),
        "sent and failed messages are never leased"
    );

    let topic = a.topic.clone().expect("a topic");
    assert_eq!(
        store.last_email_with_topic(&topic).await.expect("topic"),
        Some(t0),
        "the last message of a topic"
    );
    assert_eq!(
        store
            .last_email_with_topic(&format!("story:none-{}", token()))
            .await
            .expect("no topic"),
        None
    );

    // Queuing for an organization that does not exist writes nothing.
    let ghost = Organization {
        id: OrgId::new_random(),
        name: "ghost".into(),
        modules: BTreeSet::new(),
        services: BTreeSet::new(),
        created_at: t0,
    };
    let lost = email(&ghost, None, "x@contoso.example", t0);
    assert!(
        matches!(
            store.enqueue_emails(std::slice::from_ref(&lost)).await,
            Err(StoreError::NotFound(_))
        ),
        "an email of an unknown organization is refused"
    );
}
