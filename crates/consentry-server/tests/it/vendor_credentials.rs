//! The vendor's own credentials watched by the server, against entra-sim over real HTTPS: a secret
//! ending in 10 days shows in `/metrics` and on the operator's Vendor apps page (not to an
//! organization's admin), and raises one signed `vendor_credential_expiry` webhook and one email —
//! not again at the next reading, not again from a second replica, not after a restart.

use consentry_domain::{AccountScope, OrgId};
use consentry_mail::mailbox::Mailbox;
use consentry_testkit::TestEnv;
use consentry_testkit::console as kit;
use entra_sim::Scenario;
use reqwest::StatusCode;
use secrecy::SecretString;

const SECRET: &str = "operator-webhook-secret-0123456789";
const PASSWORD: &str = "vendor-apps-console-password";

async fn scrape(env: &TestEnv) -> String {
    env.http
        .get(format!("{}/metrics", env.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_ending_soon_is_in_metrics_on_the_operator_page_and_alerted_once() {
    let dir = tempfile::tempdir().unwrap();
    let mailbox = Mailbox::start(dir.path()).unwrap();
    let (hook, mut received) = super::webhooks::receiver(0).await;
    let secret_file = dir.path().join("operator-webhook.secret");
    std::fs::write(&secret_file, SECRET).unwrap();

    let mut scenario = Scenario::contoso();
    let (key, client_id, _) = scenario.vendor_apps().into_iter().next().unwrap();
    let ends = time::OffsetDateTime::now_utc() + time::Duration::days(10);
    let at = scenario
        .apps
        .iter()
        .position(|a| a.client_id == client_id)
        .unwrap();
    scenario.apps[at].secrets[0].end_date_time = ends;
    let mut settings = consentry_testkit::smtp_settings(mailbox.addr().port());
    settings.extend([
        (
            "CONSENTRY_EMAIL__OPERATOR_TO".to_string(),
            "ops@vendor.example".to_string(),
        ),
        ("CONSENTRY_WEBHOOKS__OPERATOR_URL".to_string(), hook),
        (
            "CONSENTRY_WEBHOOKS__OPERATOR_SECRET_FILE".to_string(),
            secret_file.display().to_string(),
        ),
    ]);
    let mut env = TestEnv::start_with_settings(scenario, settings).await;

    // Nothing read yet: no vendor lines, and the page says so.
    let metrics = scrape(&env).await;
    assert!(
        !metrics.contains("consentry_vendor_credential"),
        "{metrics}"
    );

    // Two replicas on one database read at the same moment: one alert, from one of them.
    let first = env.state.clone();
    env.restart_with_settings(Vec::new()).await;
    let second = env.state.clone();
    let ((_, a), (snapshot, b)) = tokio::join!(
        first.vendor_credentials.refresh(),
        second.vendor_credentials.refresh()
    );
    assert_eq!(a + b, 1, "one replica raises it");
    assert_eq!(snapshot.needing_attention(), 1);
    let message = super::webhooks::next(&mut received, SECRET).await;
    assert_eq!(message["event"], "vendor_credential_expiry");
    assert_eq!(message["stage"], "attention");
    assert_eq!(message["app"], key.as_str());
    assert_eq!(message["client_id"], client_id.to_string());
    assert_eq!(message["credential"]["kind"], "secret");
    assert_eq!(
        message["rotate_command"],
        format!("consentry apps rotate-credential {key}")
    );
    assert!(
        message["credential"]["ends_at"]
            .as_str()
            .unwrap()
            .starts_with(&ends.date().to_string())
    );
    let mails = mailbox.messages().unwrap();
    assert_eq!(mails.len(), 1, "one email");
    assert!(mails[0].contains("ops@vendor.example"));
    assert!(mails[0].contains(&format!("consentry apps rotate-credential {key}")));
    assert!(mails[0].contains(&ends.date().to_string()));

    // The next reading, on either replica, raises nothing.
    let (_, again) = second.vendor_credentials.refresh().await;
    let (_, again_first) = first.vendor_credentials.refresh().await;
    assert_eq!(again + again_first, 0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(received.try_recv().is_err(), "no second webhook");
    assert_eq!(mailbox.messages().unwrap().len(), 1, "no second email");

    // /metrics: the credential's end and the count needing attention.
    let metrics = scrape(&env).await;
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("consentry_vendor_credential_expiry_timestamp_seconds{")
                && l.contains(&format!("app_type=\"{key}\""))
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(
        line.contains("kind=\"secret\"") && line.contains("cloud=\"global\""),
        "{line}"
    );
    assert!(
        line.ends_with(&format!(" {}", ends.unix_timestamp())),
        "{line}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "consentry_vendor_credentials_needing_attention 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("consentry_vendor_credentials{state=\"attention\"} 1"),
        "{metrics}"
    );

    // The console: the platform operator sees the page and its link; an organization's admin is refused.
    let org = OrgId::parse(&env.connect_contoso(&[]).await).unwrap();
    let accounts = &env.state.console.accounts;
    let pw = SecretString::from(PASSWORD.to_string());
    accounts
        .create("root", &pw, AccountScope::Platform)
        .await
        .unwrap();
    accounts
        .create("contoso-admin", &pw, AccountScope::Organization(org))
        .await
        .unwrap();
    let root = kit::sign_in(&env.state, "root", PASSWORD, None).await;
    let page = kit::get(&env.state, "/console/vendor-apps", Some(&root)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(&key), "{}", page.body);
    assert!(page.body.contains("ends within 30 days"));
    assert!(
        page.body
            .contains(&format!("consentry apps rotate-credential {key}"))
    );
    let home = kit::get(&env.state, "/console", Some(&root)).await;
    assert!(home.body.contains("href=\"/console/vendor-apps\""));
    let admin = kit::sign_in(&env.state, "contoso-admin", PASSWORD, None).await;
    let refused = kit::get(&env.state, "/console/vendor-apps", Some(&admin)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!refused.body.contains(&key));
    let home = kit::get(&env.state, "/console", Some(&admin)).await;
    assert!(!home.body.contains("/console/vendor-apps"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registration_graph_cannot_read_is_unknown_and_raises_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, mut received) = super::webhooks::receiver(0).await;
    let secret_file = dir.path().join("operator-webhook.secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let mut scenario = Scenario::contoso();
    let (key, client_id, _) = scenario.vendor_apps().into_iter().next().unwrap();
    let at = scenario
        .apps
        .iter()
        .position(|a| a.client_id == client_id)
        .unwrap();
    scenario.apps[at].secrets[0].end_date_time =
        time::OffsetDateTime::now_utc() + time::Duration::days(10);
    let env = TestEnv::start_with_settings(
        scenario,
        vec![
            ("CONSENTRY_WEBHOOKS__OPERATOR_URL".to_string(), hook),
            (
                "CONSENTRY_WEBHOOKS__OPERATOR_SECRET_FILE".to_string(),
                secret_file.display().to_string(),
            ),
        ],
    )
    .await;
    // Graph answers every application read with 503, retries included.
    env.sim
        .control()
        .set_faults(vec![entra_sim::FaultRule {
            endpoint: "/v1.0/applications".into(),
            rate: 1.0,
            latency_ms: 0,
            status: Some(503),
            retry_after_secs: None,
            drop_connection: false,
        }])
        .unwrap();
    let (snapshot, raised) = env.state.vendor_credentials.refresh().await;
    assert_eq!(raised, 0, "a transient failure is no evidence of an expiry");
    assert_eq!(snapshot.needing_attention(), 0);
    let fact = snapshot
        .credentials()
        .find(|c| c.app.label() == key)
        .unwrap();
    assert_eq!(fact.expiry, consentry_domain::Expiry::Unknown);
    let metrics = scrape(&env).await;
    assert!(
        metrics.contains("consentry_vendor_credentials{state=\"unknown\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("consentry_vendor_credentials_needing_attention 0"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(received.try_recv().is_err(), "no webhook");

    // Once Graph answers again, the next reading raises it.
    env.sim.control().set_faults(Vec::new()).unwrap();
    let (_, raised) = env.state.vendor_credentials.refresh().await;
    assert_eq!(raised, 1);
    let message = super::webhooks::next(&mut received, SECRET).await;
    assert_eq!(message["app"], key.as_str());
}
