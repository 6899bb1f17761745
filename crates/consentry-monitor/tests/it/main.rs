//! Integration tests of the monitor: Consentry and entra-sim on loopback, sweeps driven directly, time moved
//! with Consentry's clock; faults injected by the simulator.

mod faults;
mod monitor;
mod pending;
mod throttled;

use consentry_domain::AppId;
use consentry_entra::platform::{EntraPlatform, VendorApp};
use consentry_entra::{EntraClient, EntraConfig, Pacing, RetryPolicy};
use consentry_testkit::TestEnv;

/// The identity-platform adapter over the simulator with every vendor app of the scenario, retrying
/// as `retry` says, pacing itself after 429s when `pacing` is set.
pub fn entra_platform(env: &TestEnv, retry: RetryPolicy, pacing: Option<Pacing>) -> EntraPlatform {
    let client = EntraClient::new(EntraConfig {
        authority: env.sim.authority(),
        graph: env.sim.graph_base(),
        extra_ca_pem: Some(env.sim.ca_pem().to_string()),
        pacing,
        ..EntraConfig::default()
    })
    .unwrap();
    let apps = entra_sim::Scenario::contoso()
        .vendor_apps()
        .into_iter()
        .map(|(key, client_id, secret)| {
            let id = AppId::parse(&client_id.to_string()).unwrap();
            (key, VendorApp::with_secret(id, secret))
        })
        .collect();
    EntraPlatform::new(client, format!("{}/oauth/callback", env.base), apps)
        .unwrap()
        .with_retry_policy(retry)
}
