//! Delivery through a real SMTP server on loopback: what arrives, a refusal, a server that is down.

use consentry_domain::mail::InvalidNotice;
use consentry_domain::{EmailAddress, EmailContent, EmailState, Outgoing};

use crate::common::{Env, env};

fn notice() -> EmailContent {
    EmailContent::ProfileInvalid(InvalidNotice {
        organization: "Northwind".into(),
        tenant_domain: "contoso.example".into(),
        app_name: "Insights <M365>".into(),
        profile_id: "p-1".into(),
        reason: "The consent was revoked in Microsoft Entra ID.".into(),
        remediation: vec!["Select the app profile and click Re-authorize.".into()],
    })
}

async fn queue_to(e: &Env, to: &[&str]) -> u64 {
    e.mail
        .queue(&[Outgoing {
            org_id: e.tenant.org_id,
            tenant_id: Some(e.tenant.id),
            to: to.iter().map(|a| EmailAddress::parse(a).unwrap()).collect(),
            content: notice(),
            topic: None,
        }])
        .await
        .unwrap()
}

/// The parts of a MIME message: (content type line, decoded body).
pub fn parts(raw: &str) -> Vec<(String, String)> {
    use base64::Engine;
    let raw = raw.replace("\r\n", "\n");
    let boundary = raw
        .split("boundary=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a multipart message")
        .to_string();
    raw.split(&format!("--{boundary}"))
        .skip(1)
        .filter(|p| !p.starts_with("--"))
        .map(|p| {
            let (head, body) = p.trim_start_matches('\n').split_once("\n\n").unwrap();
            let ctype = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("content-type:"))
                .unwrap_or_default()
                .to_string();
            let enc = head.to_ascii_lowercase();
            let body = if enc.contains("content-transfer-encoding: base64") {
                let b64: String = body.split_whitespace().collect();
                String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .unwrap(),
                )
                .unwrap()
            } else if enc.contains("content-transfer-encoding: quoted-printable") {
                let joined = body.replace("=\n", "");
                let mut out = Vec::new();
                let b = joined.as_bytes();
                let mut i = 0;
                while i < b.len() {
                    if b[i] == b'=' && i + 2 < b.len() + 1 {
                        let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                        out.push(u8::from_str_radix(hex, 16).unwrap());
                        i += 3;
                    } else {
                        out.push(b[i]);
                        i += 1;
                    }
                }
                String::from_utf8(out).unwrap()
            } else {
                body.to_string()
            };
            (ctype, body)
        })
        .collect()
}

#[tokio::test]
async fn a_delivered_message_has_a_text_and_an_html_part_and_no_remote_images() {
    let e = env().await;
    let mailbox = e.mailbox();
    assert_eq!(queue_to(&e, &["it-admin@contoso.example"]).await, 1);
    let report = e.worker(mailbox.addr().port()).deliver_due().await.unwrap();
    assert_eq!((report.sent, report.retrying, report.failed), (1, 0, 0));

    let got = mailbox.messages().unwrap();
    assert_eq!(got.len(), 1);
    let raw = &got[0];
    assert!(raw.contains("To: it-admin@contoso.example"), "{raw}");
    assert!(
        raw.contains("From: Consentry <consentry@vendor.example>"),
        "{raw}"
    );
    assert!(
        raw.contains("Subject: Insights <M365> in contoso.example needs to be re-authorized"),
        "{raw}"
    );
    assert!(raw.contains("Content-Type: multipart/alternative"), "{raw}");
    let parts = parts(raw);
    assert_eq!(parts.len(), 2, "{raw}");
    assert!(parts[0].0.contains("text/plain"), "{:?}", parts[0].0);
    assert!(parts[1].0.contains("text/html"), "{:?}", parts[1].0);
    let (text, html) = (&parts[0].1, &parts[1].1);
    assert!(text.contains("The consent was revoked in Microsoft Entra ID."));
    assert!(text.contains("1. Select the app profile and click Re-authorize."));
    assert!(html.contains("Insights &#60;M365&#62;"), "{html}");
    assert!(html.contains("<li>Select the app profile and click Re-authorize.</li>"));
    let lower = html.to_ascii_lowercase();
    for banned in ["<img", "src=", "url(", "<link", "<script"] {
        assert!(!lower.contains(banned), "{banned}: {html}");
    }

    let records = e.emails().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].state, EmailState::Sent);
    assert_eq!(records[0].attempts, 1);
    assert!(records[0].sent_at.is_some() && records[0].last_error.is_none());
    // Nothing is due any more.
    let again = e.worker(mailbox.addr().port()).deliver_due().await.unwrap();
    assert_eq!(again.handled(), 0);
    assert_eq!(mailbox.messages().unwrap().len(), 1);
}

#[tokio::test]
async fn a_refused_recipient_ends_failed_with_the_servers_answer_and_the_others_arrive() {
    let e = env().await;
    let mailbox = e.mailbox();
    mailbox.refuse("gone@contoso.example");
    queue_to(&e, &["gone@contoso.example", "it-admin@contoso.example"]).await;
    let report = e.worker(mailbox.addr().port()).deliver_due().await.unwrap();
    assert_eq!((report.sent, report.retrying, report.failed), (1, 0, 1));

    let records = e.emails().await;
    let gone = records
        .iter()
        .find(|r| r.to.as_str() == "gone@contoso.example")
        .unwrap();
    assert_eq!(gone.state, EmailState::Failed);
    assert_eq!(gone.attempts, 1);
    let error = gone.last_error.as_deref().unwrap();
    assert!(error.contains("550"), "{error}");
    assert!(error.contains("Mailbox unavailable"), "{error}");
    let ok = records
        .iter()
        .find(|r| r.to.as_str() == "it-admin@contoso.example")
        .unwrap();
    assert_eq!(ok.state, EmailState::Sent);
    let got = mailbox.messages().unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].contains("To: it-admin@contoso.example"));
    // A failed message is not tried again, however late.
    e.clock.advance(time::Duration::days(2));
    assert_eq!(
        e.worker(mailbox.addr().port())
            .deliver_due()
            .await
            .unwrap()
            .handled(),
        0
    );
}

#[tokio::test]
async fn a_message_waits_while_the_server_is_down_and_is_delivered_once_it_is_up() {
    let e = env().await;
    // A free loopback port with nothing listening on it yet.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    queue_to(&e, &["it-admin@contoso.example"]).await;

    let report = e.worker(addr.port()).deliver_due().await.unwrap();
    assert_eq!((report.sent, report.retrying, report.failed), (0, 1, 0));
    let r = &e.emails().await[0];
    assert_eq!(r.state, EmailState::Queued);
    assert_eq!(r.attempts, 1);
    let error = r.last_error.as_deref().unwrap();
    assert!(
        error.contains(&format!("127.0.0.1:{}", addr.port())),
        "{error}"
    );
    // Its next attempt is later: nothing is due now.
    assert_eq!(
        e.worker(addr.port()).deliver_due().await.unwrap().handled(),
        0
    );

    // The server comes up; a minute later (the first retry), a new worker — as after a restart —
    // delivers it.
    let mailbox =
        consentry_mail::mailbox::Mailbox::start_on(&e.dir.path().join("mailbox"), addr).unwrap();
    e.clock.advance(time::Duration::seconds(61));
    let worker = crate::common::env_worker_after_restart(&e, addr.port());
    let report = worker.deliver_due().await.unwrap();
    assert_eq!((report.sent, report.retrying, report.failed), (1, 0, 0));
    let r = &e.emails().await[0];
    assert_eq!(r.state, EmailState::Sent);
    assert_eq!(r.attempts, 2);
    assert_eq!(r.last_error, None);
    assert_eq!(mailbox.messages().unwrap().len(), 1);
}

#[tokio::test]
async fn the_running_worker_delivers_what_is_queued_and_stops_on_shutdown() {
    let e = env().await;
    let mailbox = e.mailbox();
    let config = consentry_mail::WorkerConfig {
        poll: std::time::Duration::from_millis(20),
        ..Default::default()
    };
    let worker = crate::common::worker_with(&e, mailbox.addr().port(), config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));
    queue_to(&e, &["it-admin@contoso.example"]).await;
    // Waits for the worker's next poll to deliver it (bounded, not timed).
    let mut delivered = false;
    for _ in 0..1500 {
        if e.emails().await[0].state == EmailState::Sent {
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(delivered, "the worker did not deliver the queued message");
    assert_eq!(mailbox.messages().unwrap().len(), 1);
    stop.send(()).unwrap();
    task.await.unwrap();
}
