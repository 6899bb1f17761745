//! The device code client against entra-sim over real HTTPS: Microsoft's message, polling through
//! `authorization_pending` until the user signs in on the verification page, and a declined sign-in.

use std::time::Duration;

use consentry_entra::{DeviceCodeError, EntraClient, EntraConfig};
use entra_sim::browser::{Browser, Decision};
use entra_sim::{RunningSim, Scenario, SimOptions};

const CONTOSO: &str = "contoso.onmicrosoft.com";
const ADMIN: &str = "admin@contoso.onmicrosoft.com";
const PASSWORD: &str = "Demo-Passw0rd!";
/// The contoso scenario's desktop sample app (public client flows allowed).
const DESKTOP: &str = "c0de0000-0000-4000-8000-0000000000de";

async fn start() -> (RunningSim, EntraClient) {
    let mut scenario = Scenario::contoso();
    scenario.settings.device_code.interval_secs = 1;
    let sim = RunningSim::start(scenario, SimOptions::default())
        .await
        .expect("simulator starts");
    let client = EntraClient::new(EntraConfig {
        authority: sim.authority(),
        graph: sim.graph_base(),
        extra_ca_pem: Some(sim.ca_pem().to_owned()),
        ..EntraConfig::default()
    })
    .expect("client");
    (sim, client)
}

fn scopes() -> Vec<String> {
    vec![
        "https://graph.microsoft.com/User.Read".into(),
        "offline_access".into(),
    ]
}

#[tokio::test]
async fn the_user_signs_in_on_another_device_while_the_client_polls() {
    let (sim, client) = start().await;
    let flow = client
        .start_device_code(CONTOSO, DESKTOP, &scopes())
        .await
        .expect("device code");
    assert_eq!(flow.interval, 1);
    assert_eq!(flow.expires_in, 900);
    assert!(flow.message.contains(&flow.user_code), "{}", flow.message);
    assert!(flow.message.contains(&flow.verification_uri));
    assert!(
        !format!("{flow:?}").contains("DAQAB"),
        "the device code is redacted"
    );
    // The client polls (pending at first) while the user signs in a little later.
    let poller = {
        let client = client.clone();
        let flow = flow.clone();
        tokio::spawn(async move { client.wait_for_device_code(&flow).await })
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let browser = Browser::new(sim.ca_pem(), None).unwrap();
    let page = browser
        .device_login(
            &flow.verification_uri,
            &flow.user_code,
            ADMIN,
            PASSWORD,
            Decision::Accept { org_wide: false },
        )
        .await;
    assert!(
        page.body.contains("You may now close this window"),
        "{}",
        page.body
    );
    let tokens = poller.await.unwrap().expect("tokens");
    let claims = tokens.access_token_claims().unwrap();
    assert_eq!(claims.user_principal(), Some(ADMIN));
    assert_eq!(claims.appid.as_deref(), Some(DESKTOP));
}

#[tokio::test]
async fn a_declined_sign_in_ends_the_wait() {
    let (sim, client) = start().await;
    let flow = client
        .start_device_code(CONTOSO, DESKTOP, &scopes())
        .await
        .expect("device code");
    let browser = Browser::new(sim.ca_pem(), None).unwrap();
    let page = browser
        .device_login(
            &flow.verification_uri,
            &flow.user_code,
            ADMIN,
            PASSWORD,
            Decision::Cancel,
        )
        .await;
    assert!(page.body.contains("User declined"), "{}", page.body);
    match client.wait_for_device_code(&flow).await {
        Err(DeviceCodeError::Declined) => {}
        other => panic!("declined expected: {other:?}"),
    }
    // An unknown public client is refused when the sign-in starts.
    let err = client
        .start_device_code(CONTOSO, "00000000-0000-4000-8000-0000000000ff", &scopes())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("700016"), "{err}");
}
