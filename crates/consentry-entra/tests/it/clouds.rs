//! National clouds through `EntraPlatform` against entra-sim: a tenant's cloud found from its
//! metadata at the global authority, every call for it made at its cloud's hosts with the vendor's
//! registration there, and a clear error where Consentry lacks the cloud or the registration.

use std::collections::BTreeMap;
use std::time::Duration;

use consentry_domain::{
    AppId, ClientRef, CloudKey, IdentityPlatform, PlatformCause, SignInRequest, TenantAt, TenantId,
};
use consentry_entra::clouds::Clouds;
use consentry_entra::platform::{EntraPlatform, VendorApp};
use consentry_entra::{EntraClient, EntraConfig, RetryPolicy};
use entra_sim::{RunningSim, Scenario, SimOptions};
use secrecy::SecretString;

const REDIRECT: &str = "https://localhost:8443/oauth/callback";
const CONTOSO_ID: &str = "3f2a9c4e-5b1d-4c7a-9e2f-6d8b0a1c2e3f";

/// (cloud, customer tenant, its domain, vendor app in that cloud, secret).
const NATIONAL: [(&str, &str, &str, &str, &str); 3] = [
    (
        "usgov",
        "c1000000-0000-4000-8000-000000000001",
        "contoso-gcch.onmicrosoft.us",
        "c0de0000-0000-4000-8000-00000000c101",
        "demo-secret-insights-m365-usgov",
    ),
    (
        "usgov-dod",
        "c1000000-0000-4000-8000-000000000002",
        "contoso-dod.onmicrosoft.us",
        "c0de0000-0000-4000-8000-00000000c102",
        "demo-secret-insights-m365-usgov-dod",
    ),
    (
        "china",
        "c1000000-0000-4000-8000-000000000003",
        "contoso-cn.partner.onmschina.cn",
        "c0de0000-0000-4000-8000-00000000c103",
        "demo-secret-insights-m365-china",
    ),
];

fn client(sim: &RunningSim, cloud: &str) -> EntraClient {
    let table = Clouds::builtin().get(cloud).expect("a cloud of the table");
    EntraClient::new(EntraConfig {
        authority: sim.cloud_authority(cloud),
        graph: sim.cloud_graph_base(cloud),
        graph_resource: table.graph_resource(),
        extra_ca_pem: Some(sim.ca_pem().to_owned()),
        ..EntraConfig::default()
    })
    .expect("client")
}

fn insights(id: &str, secret: &str) -> BTreeMap<String, VendorApp> {
    BTreeMap::from([(
        "insights-m365".to_owned(),
        VendorApp::with_secret(
            AppId::parse(id).unwrap(),
            SecretString::from(secret.to_owned()),
        ),
    )])
}

/// A platform for the global cloud and, unless left out, every national cloud of the scenario.
fn platform(sim: &RunningSim, leave_out: &[&str]) -> EntraPlatform {
    let mut p = EntraPlatform::new(
        client(sim, "global"),
        REDIRECT.into(),
        insights(
            "c0de0000-0000-4000-8000-000000000001",
            "demo-secret-insights-m365",
        ),
    )
    .unwrap()
    .with_retry_policy(RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_millis(20),
    });
    for (cloud, _, _, app, secret) in NATIONAL {
        if !leave_out.contains(&cloud) {
            p = p.with_cloud(
                CloudKey::parse(cloud).unwrap(),
                client(sim, cloud),
                insights(app, secret),
            );
        }
    }
    p
}

async fn start() -> RunningSim {
    RunningSim::start(Scenario::national_clouds(), SimOptions::default())
        .await
        .expect("simulator starts")
}

fn at(tid: &str, cloud: &str) -> TenantAt {
    TenantAt::new(
        TenantId::parse(tid).unwrap(),
        CloudKey::parse(cloud).unwrap(),
    )
}

#[tokio::test]
async fn a_tenants_cloud_is_found_from_its_metadata_at_the_global_authority() {
    let sim = start().await;
    let p = platform(&sim, &[]);
    let found = p.tenant_cloud(CONTOSO_ID).await.unwrap();
    assert_eq!(
        (found.id.to_string().as_str(), found.cloud.as_str()),
        (CONTOSO_ID, "global")
    );
    for (cloud, tid, domain, _, _) in NATIONAL {
        for name in [tid, domain] {
            let found = p.tenant_cloud(name).await.unwrap();
            assert_eq!(found.id.to_string(), tid, "{name}");
            assert_eq!(found.cloud.as_str(), cloud, "{name}");
        }
    }
    // Unknown to Microsoft: AADSTS90002, never a guess.
    let e = p
        .tenant_cloud("0badc0de-0000-4000-8000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(e.cause, PlatformCause::TenantNotFound, "{e:?}");
    assert_eq!(e.aadsts, Some(90002));
    // Microsoft not answering is transient.
    let down = EntraPlatform::new(
        EntraClient::new(EntraConfig {
            authority: "http://127.0.0.1:9".into(),
            graph: "http://127.0.0.1:9/v1.0".into(),
            ..EntraConfig::default()
        })
        .unwrap(),
        REDIRECT.into(),
        BTreeMap::new(),
    )
    .unwrap()
    .with_retry_policy(RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    });
    let e = down.tenant_cloud(CONTOSO_ID).await.unwrap_err();
    assert_eq!(e.cause, PlatformCause::Transient, "{e:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn every_call_for_a_national_tenant_goes_to_its_cloud_with_the_registration_there() {
    let sim = start().await;
    let p = platform(&sim, &[]);
    let vendor = ClientRef::Vendor {
        app_type: "insights-m365".into(),
    };
    for (cloud, tid, _, app, _) in NATIONAL {
        let key = CloudKey::parse(cloud).unwrap();
        assert_eq!(
            p.vendor_client_id(&key, "insights-m365")
                .map(|a| a.to_string()),
            Some(app.to_owned())
        );
        sim.control()
            .grant_admin_consent(tid, uuid::Uuid::parse_str(app).unwrap())
            .unwrap();
        let tenant = at(tid, cloud);
        // Client credentials at the cloud's authority, Graph reads at its Graph.
        let grants = p.grants(&tenant, &vendor).await.unwrap();
        assert!(grants.service_principal.is_some(), "{cloud}: {grants:?}");
        assert!(
            grants.app_roles.contains(&"User.Read.All".to_owned()),
            "{grants:?}"
        );
        let token = p.app_token(&tenant, &vendor).await.unwrap();
        assert!(token.expires_at > time::OffsetDateTime::now_utc());
        // Consent and sign-in URLs at the cloud's authority, naming its Graph.
        let consent = p.admin_consent_url(&tenant, AppId::parse(app).unwrap(), "s");
        assert!(
            consent.starts_with(&format!(
                "{}/{tid}/v2.0/adminconsent?",
                sim.cloud_authority(cloud)
            )),
            "{consent}"
        );
        let graph_host = Clouds::builtin().get(cloud).unwrap().graph_host.clone();
        assert!(consent.contains(&graph_host), "{consent}");
        let sign_in = p.sign_in_url(&SignInRequest {
            tenant: tenant.clone(),
            client_id: AppId::parse(app).unwrap(),
            state: "s".into(),
            nonce: "n".into(),
            code_challenge: "c".repeat(43),
            scopes: vec!["User.Read".into()],
            login_hint: None,
        });
        assert!(
            sign_in.starts_with(&format!(
                "{}/{tid}/oauth2/v2.0/authorize?",
                sim.cloud_authority(cloud)
            )),
            "{sign_in}"
        );
        assert!(
            sign_in.contains(&format!("https%3A%2F%2F{graph_host}%2FUser.Read")),
            "{sign_in}"
        );
        // The same tenant named in the global cloud is refused by Microsoft (AADSTS900439 or
        // 900382, UNVERIFIED): no call goes there when the cloud is known.
        let e = p.grants(&at(tid, "global"), &vendor).await.unwrap_err();
        assert!(matches!(e.aadsts, Some(900439 | 900382)), "{e:?}");
        // Viva Engage is a global service only.
        let e = p
            .viva_engage_facts(&tenant, &vendor, &SecretString::from("rt".to_owned()))
            .await
            .unwrap_err();
        assert_eq!(e.cause, PlatformCause::NotConfigured);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn a_cloud_or_registration_consentry_lacks_is_a_clear_configuration_error() {
    let sim = start().await;
    let p = platform(&sim, &["china"]);
    let (_, tid, _, _, _) = NATIONAL[2];
    let e = p
        .grants(
            &at(tid, "china"),
            &ClientRef::Vendor {
                app_type: "insights-m365".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.cause, PlatformCause::NotConfigured);
    assert!(
        e.message.contains("[clouds.china.apps.<app type>]"),
        "{}",
        e.message
    );
    assert_eq!(
        p.vendor_client_id(&CloudKey::parse("china").unwrap(), "insights-m365"),
        None
    );
    // The cloud is configured, the app type's registration there is not.
    let (_, tid, _, _, _) = NATIONAL[0];
    let e = p
        .grants(
            &at(tid, "usgov"),
            &ClientRef::Vendor {
                app_type: "fly".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.cause, PlatformCause::NotConfigured);
    assert!(
        e.message.contains("[clouds.usgov.apps.fly]"),
        "{}",
        e.message
    );
    // Discovery still names the cloud, so the tenant can be connected before the registrations.
    let found = p.tenant_cloud(NATIONAL[2].1).await.unwrap();
    assert_eq!(found.cloud.as_str(), "china");
    sim.shutdown().await;
}
