//! A profile is never stuck "pending": while a re-authorization waits, the monitor keeps checking the
//! credentials still in use; one that nobody finishes expires (10 minutes in a browser, 72 hours for
//! a consent link) and the profile goes back to the status its credentials have. Consentry and
//! entra-sim on loopback, sweeps driven directly, time moved with Consentry's clock.

use consentry_monitor::{Monitor, MonitorConfig};
use consentry_testkit::{PASSWORD, TestEnv};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;
use tokio::sync::watch;

const ADMIN: &str = "admin@contoso.onmicrosoft.com";

fn monitor(env: &TestEnv) -> Monitor {
    Monitor::new(
        env.state.checker.clone(),
        MonitorConfig {
            worker_id: "pending-test".into(),
            ..MonitorConfig::default()
        },
    )
}

async fn sweep(env: &TestEnv) -> consentry_monitor::SweepReport {
    let (_tx, stop) = watch::channel(false);
    monitor(env).sweep_once(&stop).await.expect("sweep")
}

async fn history(env: &TestEnv, id: &str) -> Vec<Value> {
    let (s, h) = env
        .api(Method::GET, &format!("/api/v1/profiles/{id}/history"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{h}");
    h["items"].as_array().unwrap().clone()
}

/// A delegated profile authorized by the admin (valid), then a browser re-authorization started
/// and never finished.
async fn authorized_then_pending(env: &TestEnv) -> String {
    let id = env.profile("insights-m365", None).await;
    env.authorize(&id, json!({"method": "admin"}), ADMIN, None)
        .await;
    assert_eq!(env.get_profile(&id).await["status"], "valid");
    let (s, started) = env.start_reauth(&id, json!({"method": "admin"})).await;
    assert_eq!(s, StatusCode::OK, "{started}");
    assert_eq!(env.get_profile(&id).await["status"], "pending");
    id
}

#[tokio::test]
async fn a_browser_reauthorization_expires_after_ten_minutes_to_its_credentials_status() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = authorized_then_pending(&env).await;
    // The first sweep checks the pending profile's credentials (they work) and schedules it an
    // hour ahead; it stays pending.
    let r = sweep(&env).await;
    assert_eq!(r.leased, 1, "{r:?}");
    assert_eq!(env.get_profile(&id).await["status"], "pending");
    assert_eq!(sweep(&env).await.leased, 0, "not due again yet");

    // The consent user's account is disabled meanwhile: the credentials no longer work.
    env.sim.control().set_user_enabled(ADMIN, false).unwrap();
    env.clock.advance(Duration::minutes(9));
    assert_eq!(
        sweep(&env).await.leased,
        0,
        "the re-authorization still runs"
    );
    env.clock.advance(Duration::minutes(2));
    // Expired: due at once, although its next check is most of an hour away.
    let r = sweep(&env).await;
    assert_eq!(r.leased, 1, "{r:?}");
    let p = env.get_profile(&id).await;
    assert_eq!(
        p["status"], "invalid",
        "back to what the credentials show (a real check), not the valid from before: {p}"
    );
    let h = history(&env, &id).await;
    let expired = &h[0];
    assert_eq!(expired["kind"], "reauthorization_expired", "{h:?}");
    assert_eq!(expired["from_status"], "pending");
    assert_eq!(expired["to_status"], "invalid");
    assert!(
        expired["detail"]
            .as_str()
            .unwrap()
            .contains("not completed within 10 minutes"),
        "{expired}"
    );
    // Nothing is left to cancel, and the next sweep does not touch it again.
    let (s, body) = env
        .api(
            Method::POST,
            &format!("/api/v1/profiles/{id}/reauthorize/cancel"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert_eq!(sweep(&env).await.leased, 0);
}

#[tokio::test]
async fn a_consent_link_expires_after_72_hours_to_the_prior_state() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    // Never authorized: nothing to check, the state from before comes back.
    let id = env.profile("cloud-backup-express", None).await;
    let (s, started) = env
        .start_reauth(&id, json!({"method": "admin", "handoff": true}))
        .await;
    assert_eq!(s, StatusCode::OK, "{started}");
    assert_eq!(started["consent_link"], true);
    let r = sweep(&env).await;
    assert_eq!(r.leased, 1);
    assert_eq!(env.get_profile(&id).await["status"], "pending");

    // Its hourly check leaves it pending: a link lasts 72 hours.
    env.clock.advance(Duration::hours(71));
    sweep(&env).await;
    assert_eq!(env.get_profile(&id).await["status"], "pending");
    env.clock.advance(Duration::minutes(50));
    assert_eq!(sweep(&env).await.leased, 0);
    env.clock.advance(Duration::minutes(11));
    assert_eq!(sweep(&env).await.leased, 1);
    let p = env.get_profile(&id).await;
    assert_eq!(p["status"], "invalid", "{p}");
    assert_eq!(p["reason_view"]["code"], "not_yet_authorized", "{p}");
    let h = history(&env, &id).await;
    assert_eq!(h[0]["kind"], "reauthorization_expired", "{h:?}");
    assert!(
        h[0]["detail"].as_str().unwrap().contains("72 hours"),
        "{}",
        h[0]
    );
    // The link no longer opens.
    let page = env
        .browser(None)
        .get(started["url"].as_str().unwrap())
        .await;
    assert!(
        page.body.contains("not valid") || page.body.contains("expired"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_pending_profile_whose_old_credentials_broke_is_found_by_the_monitor() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = authorized_then_pending(&env).await;
    env.sim.control().set_user_enabled(ADMIN, false).unwrap();

    // The monitor checks the credentials still in use: broken. The profile stays pending (someone
    // is re-authorizing it) and what a failed re-authorization restores is now the truth.
    let r = sweep(&env).await;
    assert_eq!(r.leased, 1);
    assert_eq!(r.outcomes.get("invalid"), Some(&1), "{r:?}");
    let p = env.get_profile(&id).await;
    assert_eq!(p["status"], "pending", "{p}");
    let h = history(&env, &id).await;
    assert_eq!(h[0]["kind"], "status_changed", "{h:?}");
    assert_eq!(h[0]["from_status"], "valid");
    assert_eq!(h[0]["to_status"], "invalid");
    assert!(
        h[0]["detail"]
            .as_str()
            .unwrap()
            .contains("during the pending re-authorization"),
        "{}",
        h[0]
    );

    // "Check now" takes the same path and says so.
    let (s, body) = env
        .api(Method::POST, &format!("/api/v1/profiles/{id}/check"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "invalid", "{body}");
    assert_eq!(body["status"], "pending", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("re-authorization is in progress"),
        "{body}"
    );

    // Cancelling restores what the credentials are now, not the valid from before.
    let (s, body) = env
        .api(
            Method::POST,
            &format!("/api/v1/profiles/{id}/reauthorize/cancel"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let p = env.get_profile(&id).await;
    assert_eq!(p["status"], "invalid", "{p}");

    // And a re-authorization that completes wins: the account works again.
    env.sim.control().set_user_enabled(ADMIN, true).unwrap();
    let page = env
        .reauthorize_as(
            &id,
            json!({"method": "admin"}),
            ADMIN,
            None,
            consentry_testkit::Decision::Accept { org_wide: true },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    assert_eq!(env.get_profile(&id).await["status"], "valid");
    let _ = PASSWORD;
}

#[tokio::test]
async fn a_pending_profile_without_a_record_is_put_back_and_start_cancel_restore_its_real_status() {
    use consentry_domain::ProfileId;
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let store = env.state.svc.store().clone();
    // What a build that deleted the record when a callback took it left behind when it was killed.
    let id = authorized_then_pending(&env).await;
    let pid = ProfileId::parse(&id).unwrap();
    assert!(store.delete_pending_for_profile(pid).await.unwrap());

    // A start and cancel restore what the history says it was (valid), never "pending".
    let (s, body) = env.start_reauth(&id, json!({"method": "admin"})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = env
        .api(
            Method::POST,
            &format!("/api/v1/profiles/{id}/reauthorize/cancel"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(env.get_profile(&id).await["status"], "valid");

    // Stuck again; a cancel finds no record and still restores it.
    env.start_reauth(&id, json!({"method": "admin"})).await;
    assert!(store.delete_pending_for_profile(pid).await.unwrap());
    let (s, body) = env
        .api(
            Method::POST,
            &format!("/api/v1/profiles/{id}/reauthorize/cancel"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(env.get_profile(&id).await["status"], "valid");

    // Stuck again, this time with broken credentials: the monitor finds it (due at once) and puts
    // it back to what the credentials show.
    env.start_reauth(&id, json!({"method": "admin"})).await;
    assert!(store.delete_pending_for_profile(pid).await.unwrap());
    env.sim.control().set_user_enabled(ADMIN, false).unwrap();
    sweep(&env).await;
    env.clock.advance(Duration::minutes(1));
    let r = sweep(&env).await;
    let p = env.get_profile(&id).await;
    assert_eq!(p["status"], "invalid", "{r:?} {p}");
    let h = history(&env, &id).await;
    assert_eq!(h[0]["kind"], "reauthorization_expired", "{h:?}");
}
