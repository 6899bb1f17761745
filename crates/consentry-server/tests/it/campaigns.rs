//! Consent campaigns over the JSON API and the campaign link pages, with entra-sim: one link per
//! tenant walks its administrator through every profile in one pass (a failure on one does not stop
//! the others), each profile's state follows its history, and the link says plainly when it expired,
//! was cancelled or has nothing left to do.

use consentry_testkit::{Browser, Decision, PASSWORD, Page, TestEnv};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::check::authorize;

const ADMIN: &str = "admin@contoso.onmicrosoft.com";

/// Starts a campaign; returns its answer.
async fn start(env: &TestEnv, body: Value) -> (StatusCode, Value) {
    env.api(Method::POST, "/api/v1/campaigns", Some(body)).await
}

async fn show(env: &TestEnv, id: &str) -> Value {
    let (s, c) = env
        .api(Method::GET, &format!("/api/v1/campaigns/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    c
}

fn item<'a>(c: &'a Value, profile: &str) -> &'a Value {
    c["tenants"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["items"].as_array().into_iter().flatten())
        .find(|i| i["profile_id"] == profile)
        .unwrap_or_else(|| panic!("{profile} is not in the campaign: {c}"))
}

/// Walks one app's consent at Microsoft (`decision` on its consent page; a sign-in that follows it
/// accepted) and follows Consentry's redirects, up to the next app's consent page at Microsoft (the
/// answer is then that redirect) or the pass's summary.
async fn consent(env: &TestEnv, browser: &Browser, at: &str, decision: Decision) -> Page {
    let mut page = browser.at_microsoft(at, ADMIN, PASSWORD, decision).await;
    for _ in 0..10 {
        let Some(loc) = page
            .location
            .clone()
            .filter(|_| (300..400).contains(&page.status))
        else {
            return page;
        };
        page = if loc.contains("adminconsent") {
            return page;
        } else if loc.contains("/oauth2/") {
            // The sign-in that follows this app's consent.
            browser
                .at_microsoft(&loc, ADMIN, PASSWORD, Decision::Accept { org_wide: true })
                .await
        } else if loc.starts_with('/') {
            // Consentry's own redirects are relative, as a browser resolves them.
            browser.get(&format!("{}{loc}", env.base)).await
        } else {
            browser.get(&loc).await
        };
    }
    page
}

/// Opens `link` in a new browser, starts the pass and accepts every consent; the summary must say
/// everything is done.
async fn pass_to_the_end(env: &TestEnv, link: &str) {
    let browser = env.browser(None);
    let go = browser.post(link, &[]).await;
    assert_eq!(go.status, 303, "{}", go.body);
    let summary = consent(
        env,
        &browser,
        &go.location.clone().unwrap(),
        Decision::Accept { org_wide: true },
    )
    .await;
    assert!(summary.body.contains("All done"), "{}", summary.body);
}

#[tokio::test]
async fn one_link_walks_the_tenants_administrator_through_every_invalid_profile() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&[]).await;
    // Two profiles never authorized: invalid ("not yet authorized").
    let insights = env.profile("insights-m365", None).await;
    let iaas = env.profile("iaas-delegated", None).await;

    let (hook_url, mut hook_rx) = super::webhooks::receiver(0).await;
    let (s, hook) = env
        .api(
            Method::POST,
            &format!("/api/v1/organizations/{org}/webhooks"),
            Some(json!({"url": hook_url})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    let hook_secret = hook["secret"].as_str().unwrap().to_string();

    let (s, started) = start(
        &env,
        json!({"scope": "invalid", "organization_id": org, "send_invitations": false}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{started}");
    let id = started["campaign"]["id"].as_str().unwrap().to_string();
    assert_eq!(started["campaign"]["counts"]["profiles"], 2, "{started}");
    assert_eq!(started["campaign"]["counts"]["tenants"], 1);
    let link = started["links"][0]["url"].as_str().unwrap().to_string();
    assert!(
        link.starts_with(&format!("{}/campaign/", env.base)),
        "{link}"
    );
    assert_eq!(started["links"][0]["invited"], json!([]));
    let c = show(&env, &id).await;
    assert_eq!(item(&c, &insights)["state"], "not_sent", "{c}");

    // The page lists each app, what it asks for, why, and who may consent.
    let browser = env.browser(None);
    let page = browser.get(&link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for want in [
        "Consent requested for 2 apps in contoso.onmicrosoft.com",
        "not been authorized",
        "Global Administrator",
        "Consent to 2 apps at Microsoft",
    ] {
        assert!(page.body.contains(want), "{want} in {}", page.body);
    }
    let c = show(&env, &id).await;
    assert_eq!(item(&c, &insights)["state"], "opened", "{c}");
    assert!(c["tenants"][0]["opened_at"].is_string(), "{c}");

    // The pass: the first consent is declined at Microsoft, the second accepted; the pass goes on
    // after the failure and ends on the summary.
    let go = browser.post(&link, &[]).await;
    assert_eq!(go.status, 303, "{}", go.body);
    let first = go.location.clone().unwrap();
    assert!(first.contains("adminconsent"), "{first}");
    let next = consent(&env, &browser, &first, Decision::Cancel).await;
    let second = next
        .location
        .clone()
        .unwrap_or_else(|| panic!("on to the second app: {} {}", next.status, next.body));
    assert!(second.contains("adminconsent"), "{second}");
    let summary = consent(&env, &browser, &second, Decision::Accept { org_wide: true }).await;
    assert_eq!(summary.status, 200, "{}", summary.body);
    assert!(
        summary.body.contains("1 still to do") && summary.body.contains("Consented"),
        "{}",
        summary.body
    );

    // A webhook of the organization hears how each profile of the pass went.
    let progress: Vec<Value> = {
        let mut got = Vec::new();
        while got.len() < 2 {
            got.push(super::webhooks::next(&mut hook_rx, &hook_secret).await);
        }
        got
    };
    for p in &progress {
        assert_eq!(p["event"], "campaign_progress", "{p}");
        assert_eq!(p["campaign_id"], id.as_str(), "{p}");
        assert!(
            !p.to_string().contains("/campaign/"),
            "no link in a webhook: {p}"
        );
    }
    let mut states: Vec<&str> = progress
        .iter()
        .filter_map(|p| p["state"].as_str())
        .collect();
    states.sort_unstable();
    assert_eq!(states, ["consented", "failed"], "{progress:?}");
    assert_eq!(progress[1]["campaign"]["profiles"], 2);

    let c = show(&env, &id).await;
    let states: Vec<&str> = [&insights, &iaas]
        .iter()
        .map(|p| item(&c, p)["state"].as_str().unwrap())
        .collect();
    let mut sorted = states.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["consented", "failed"], "{c}");
    let failed = if states[0] == "failed" {
        &insights
    } else {
        &iaas
    };
    assert!(
        item(&c, failed)["failure"]
            .as_str()
            .is_some_and(|f| !f.is_empty()),
        "a failure says why: {c}"
    );
    // The declined profile kept its previous state: still invalid, nothing of it changed.
    assert_eq!(env.get_profile(failed).await["status"], "invalid");
    assert_eq!(c["counts"]["done"], 1, "{c}");
    assert_eq!(c["state"], "running");

    // Starting again (here from another browser) goes through the one left only; then everything
    // is done.
    pass_to_the_end(&env, &link).await;
    let c = show(&env, &id).await;
    assert_eq!(c["counts"]["done"], 2, "{c}");
    assert_eq!(c["state"], "completed", "{c}");
    assert_eq!(c["tenants"][0]["done"], true);

    // Opened again: nothing left to do, said plainly; starting is refused with the reason.
    let page = browser.get(&link).await;
    assert!(page.body.contains("Nothing left to do"), "{}", page.body);
    let again = browser.post(&link, &[]).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(
        again.body.contains("re-authorized already"),
        "{}",
        again.body
    );

    // A campaign with nothing to do is refused with the reason.
    let (s, e) = start(&env, json!({"scope": "invalid", "organization_id": org})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["error"]["field"], "scope", "{e}");
    assert!(e.to_string().contains("nothing to do"), "{e}");
}

#[tokio::test]
async fn a_rollout_campaign_brings_the_rollout_to_completion() {
    let mut env = TestEnv::start().await;
    let org = env.connect_contoso(&[]).await;
    let hybrid = env.profile("insights-m365", None).await;
    authorize(&env, &hybrid, ADMIN, json!({})).await;
    let version = env
        .release_permission(
            "insights-m365",
            "Files.Read.All",
            consentry_catalog::PermissionType::Scope,
            false,
        )
        .await;

    let (s, started) = start(
        &env,
        json!({"scope": "rollout", "rollout": version, "organization_id": org}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{started}");
    let id = started["campaign"]["id"].as_str().unwrap().to_string();
    let c = show(&env, &id).await;
    let i = item(&c, &hybrid);
    assert_eq!(i["permissions"][0][0], "Files.Read.All", "{c}");
    assert!(
        i["why"].as_str().unwrap().contains("catalog version"),
        "{c}"
    );

    // The link is also given to an administrator of the organization, to hand over.
    let tenant = env.contoso_id.clone();
    let (s, l) = env
        .api(
            Method::GET,
            &format!("/api/v1/campaigns/{id}/tenants/{tenant}/link"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{l}");
    let link = l["url"].as_str().unwrap().to_string();
    assert_eq!(link, started["links"][0]["url"]);

    pass_to_the_end(&env, &link).await;
    let (s, r) = env
        .api(Method::GET, &format!("/api/v1/rollouts/{version}"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["percent_done"], 100, "{r}");
    assert_eq!(item(&show(&env, &id).await, &hybrid)["state"], "consented");
}

#[tokio::test]
async fn a_link_says_plainly_when_it_was_cancelled_expired_or_done_elsewhere() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&[]).await;
    let p = env.profile("insights-m365", None).await;
    let body = json!({"scope": "invalid", "organization_id": org, "lifetime_days": 1, "send_invitations": false});
    let (s, first) = start(&env, body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let (s, second) = start(&env, body).await;
    assert_eq!(s, StatusCode::CREATED, "{second}");
    let browser = env.browser(None);

    // Cancelled: the link says so, and a second cancel is a conflict.
    let id = first["campaign"]["id"].as_str().unwrap();
    let (s, c) = env
        .api(
            Method::POST,
            &format!("/api/v1/campaigns/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["state"], "cancelled");
    let (s, _) = env
        .api(
            Method::POST,
            &format!("/api/v1/campaigns/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let page = browser
        .get(first["links"][0]["url"].as_str().unwrap())
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("was cancelled on"), "{}", page.body);

    // Expired: a day and a minute later.
    env.clock
        .advance(time::Duration::days(1) + time::Duration::minutes(1));
    let page = browser
        .get(second["links"][0]["url"].as_str().unwrap())
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("expired on"), "{}", page.body);
    let c = show(&env, second["campaign"]["id"].as_str().unwrap()).await;
    assert_eq!(c["tenants"][0]["items"][0]["state"], "expired", "{c}");

    // A mistyped or hostile link names nothing and breaks nothing.
    let long = "x".repeat(5000);
    for token in [
        "not-a-real-token",
        "%00",
        "..%2F..%2Fetc",
        "%E2%80%AE",
        long.as_str(),
    ] {
        let page = browser.get(&format!("{}/campaign/{token}", env.base)).await;
        assert_eq!(page.status, 400, "{token}: {}", page.body);
        assert!(page.body.contains("not valid"), "{}", page.body);
        let post = browser
            .post(&format!("{}/campaign/{token}", env.base), &[])
            .await;
        assert_eq!(post.status, 400, "{token}: {}", post.body);
    }
    // The pass's next step without the pass's cookie.
    let page = env
        .browser(None)
        .get(&format!("{}/campaign/pass/next", env.base))
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.body
            .contains("open the link from the invitation again"),
        "{}",
        page.body
    );

    // Re-authorized elsewhere (here: through the API, not the link): the link says there is nothing
    // left to do, and the profile counts as consented.
    let (s, third) = start(
        &env,
        json!({"scope": "invalid", "organization_id": org, "tenant": "contoso.onmicrosoft.com", "send_invitations": false}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{third}");
    env.sim
        .control()
        .advance_clock(std::time::Duration::from_secs(86_460))
        .unwrap();
    authorize(&env, &p, ADMIN, json!({})).await;
    let page = browser
        .get(third["links"][0]["url"].as_str().unwrap())
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Nothing left to do"), "{}", page.body);
    let c = show(&env, third["campaign"]["id"].as_str().unwrap()).await;
    assert_eq!(item(&c, &p)["state"], "consented", "{c}");
    // A tenant with nothing to do: refused with the reason, naming the tenant.
    let (s, e) = start(
        &env,
        json!({"scope": "invalid", "organization_id": org, "tenant": "contoso.onmicrosoft.com"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(
        e.to_string()
            .contains("nothing to do: no app profile of tenant contoso.onmicrosoft.com is invalid"),
        "{e}"
    );

    // Bad input to the API names the field: malformed (400) or not acceptable (422).
    let (bad, unacceptable) = (StatusCode::BAD_REQUEST, StatusCode::UNPROCESSABLE_ENTITY);
    for (body, status, field) in [
        (
            json!({"scope": "everything", "organization_id": org}),
            bad,
            "scope",
        ),
        (
            json!({"scope": "rollout", "organization_id": org}),
            bad,
            "rollout",
        ),
        (
            json!({"scope": "invalid", "organization_id": "nope"}),
            bad,
            "organization_id",
        ),
        (
            json!({"scope": "invalid", "organization_id": org, "lifetime_days": 0}),
            unacceptable,
            "lifetime_days",
        ),
        (json!({"scope": "invalid"}), unacceptable, "organization"),
    ] {
        let (s, e) = start(&env, body.clone()).await;
        assert_eq!(s, status, "{body}: {e}");
        assert_eq!(e["error"]["field"], field, "{body}: {e}");
    }
}

/// The link in a received message (quoted-printable soft line breaks undone).
fn link_in(message: &str, base: &str) -> String {
    let text = message.replace("=\r\n", "").replace("=\n", "");
    let at = text
        .find(&format!("{base}/campaign/"))
        .unwrap_or_else(|| panic!("a campaign link in {message}"));
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || ":/._-".contains(*c))
        .collect()
}

#[tokio::test]
async fn invitations_reminders_and_resends_reach_the_tenants_contacts_over_smtp() {
    let dir = tempfile::tempdir().unwrap();
    let mailbox = consentry_mail::mailbox::Mailbox::start(dir.path()).unwrap();
    let env = TestEnv::start_with_settings(
        entra_sim::Scenario::contoso(),
        consentry_testkit::smtp_settings(mailbox.addr().port())
            .into_iter()
            .chain(vec![(
                "CONSENTRY_NETWORK__OUTBOUND_ADDRESSES".into(),
                "198.51.100.10".into(),
            )])
            .collect(),
    )
    .await;
    let org = env.connect_contoso(&[]).await;
    let profile = env.profile("insights-m365", None).await;
    let (s, v) = env
        .api(
            Method::PUT,
            "/api/v1/tenants/contoso.onmicrosoft.com/contacts",
            Some(json!({"contacts": ["it-admin@contoso.onmicrosoft.com"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let (s, started) = start(
        &env,
        json!({"scope": "invalid", "organization_id": org, "remind_every_hours": 24}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{started}");
    let id = started["campaign"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        started["links"][0]["invited"],
        json!(["it-admin@contoso.onmicrosoft.com"])
    );
    assert_eq!(item(&show(&env, &id).await, &profile)["state"], "sent");

    // The server's delivery worker sends it through the real SMTP server on loopback.
    let worker = env.state.email.clone().expect("email is configured");
    let report = worker.deliver_due().await.unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    let got = mailbox.messages().unwrap();
    assert_eq!(got.len(), 1);
    let invitation = &got[0];
    for want in [
        "To: it-admin@contoso.onmicrosoft.com",
        "asks you to consent again",
        "multipart/alternative",
        "198.51.100.10",
    ] {
        assert!(invitation.contains(want), "{want} in {invitation}");
    }
    assert!(!invitation.contains("<img"), "no images: {invitation}");
    let link = link_in(invitation, &env.base);
    assert_eq!(
        link, started["links"][0]["url"],
        "the email carries the link"
    );

    // No reminder before the interval; one after it, carrying the same link.
    let campaigns = env.state.campaigns.clone();
    assert_eq!(campaigns.send_due_reminders().await.unwrap(), 0);
    // Consentry's clock and the simulator's move together (tokens carry the simulator's time).
    let later = |hours: u64| {
        env.clock.advance(time::Duration::hours(hours as i64));
        env.sim
            .control()
            .advance_clock(std::time::Duration::from_secs(hours * 3600))
            .unwrap();
    };
    later(25);
    assert_eq!(campaigns.send_due_reminders().await.unwrap(), 1);
    assert_eq!(
        campaigns.send_due_reminders().await.unwrap(),
        0,
        "one reminder per interval"
    );
    worker.deliver_due().await.unwrap();
    let got = mailbox.messages().unwrap();
    assert_eq!(got.len(), 2);
    assert!(got[1].contains("Subject: Reminder: "), "{}", got[1]);
    assert_eq!(link_in(&got[1], &env.base), link);

    // Re-sent by hand: the link works 3 more days from now.
    let tenant = env.contoso_id.clone();
    let (s, t) = env
        .api(
            Method::POST,
            &format!("/api/v1/campaigns/{id}/tenants/{tenant}/resend?lifetime_days=3"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["invitations"], 3, "{t}");
    worker.deliver_due().await.unwrap();
    assert_eq!(mailbox.messages().unwrap().len(), 3);

    // The administrator follows the link from the email; once done, no reminder goes out.
    pass_to_the_end(&env, &link).await;
    later(25);
    assert_eq!(campaigns.send_due_reminders().await.unwrap(), 0);
    let (s, e) = env
        .api(
            Method::POST,
            &format!("/api/v1/campaigns/{id}/tenants/{tenant}/resend"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e.to_string().contains("nothing to do"), "{e}");
}
