//! National clouds: a tenant's metadata at the global authority says where it lives, the global
//! authority refuses its sign-ins and tokens, each cloud's authority issues its own tokens, and each
//! cloud's Graph accepts only those.

use entra_sim::{RunningSim, Scenario, SimOptions};
use serde_json::Value;

use crate::support::*;

/// A customer tenant of the national-clouds scenario and what its cloud answers.
struct National {
    cloud: &'static str,
    tid: &'static str,
    domain: &'static str,
    /// The vendor's registration in that cloud, and its secret.
    app: &'static str,
    secret: &'static str,
    graph: &'static str,
    instance: &'static str,
    sub: Option<&'static str>,
    /// The global authority's refusal (UNVERIFIED).
    refusal: u64,
}

const NATIONAL: [National; 3] = [
    National {
        cloud: "usgov",
        tid: "c1000000-0000-4000-8000-000000000001",
        domain: "contoso-gcch.onmicrosoft.us",
        app: "c0de0000-0000-4000-8000-00000000c101",
        secret: "demo-secret-insights-m365-usgov",
        graph: "graph.microsoft.us",
        instance: "microsoftonline.us",
        sub: Some("DODCON"),
        refusal: 900439,
    },
    National {
        cloud: "usgov-dod",
        tid: "c1000000-0000-4000-8000-000000000002",
        domain: "contoso-dod.onmicrosoft.us",
        app: "c0de0000-0000-4000-8000-00000000c102",
        secret: "demo-secret-insights-m365-usgov-dod",
        graph: "dod-graph.microsoft.us",
        instance: "microsoftonline.us",
        sub: Some("DOD"),
        refusal: 900439,
    },
    National {
        cloud: "china",
        tid: "c1000000-0000-4000-8000-000000000003",
        domain: "contoso-cn.partner.onmschina.cn",
        app: "c0de0000-0000-4000-8000-00000000c103",
        secret: "demo-secret-insights-m365-china",
        graph: "microsoftgraph.chinacloudapi.cn",
        instance: "partner.microsoftonline.cn",
        sub: None,
        refusal: 900382,
    },
];

async fn start_national() -> RunningSim {
    RunningSim::start(Scenario::national_clouds(), SimOptions::default())
        .await
        .expect("simulator starts")
}

async fn get_json(sim: &RunningSim, url: &str) -> (u16, Value) {
    let resp = client(sim).get(url).send().await.expect("GET");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("JSON"))
}

async fn token_at(
    sim: &RunningSim,
    authority: &str,
    tenant: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let resp = client(sim)
        .post(format!("{authority}/{tenant}/oauth2/v2.0/token"))
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("JSON"))
}

#[tokio::test]
async fn a_tenants_metadata_says_which_cloud_it_lives_in_at_the_global_authority() {
    let sim = start_national().await;
    let global = sim.authority();
    // A global tenant: the global cloud's values, and no sub-scope.
    let (s, doc) = get_json(
        &sim,
        &format!("{global}/{CONTOSO_ID}/v2.0/.well-known/openid-configuration"),
    )
    .await;
    assert_eq!(s, 200, "{doc}");
    assert_eq!(doc["cloud_instance_name"], "microsoftonline.com");
    assert_eq!(doc["msgraph_host"], "graph.microsoft.com");
    assert_eq!(doc["tenant_region_scope"], "NA");
    assert!(doc.get("tenant_region_sub_scope").is_none(), "{doc}");
    assert_eq!(doc["issuer"], format!("{global}/{CONTOSO_ID}/v2.0"));
    for National {
        cloud,
        tid,
        domain,
        graph,
        instance,
        sub,
        ..
    } in NATIONAL
    {
        let authority = sim.cloud_authority(cloud);
        assert_eq!(authority, format!("{global}/clouds/{cloud}"));
        for asked_at in [&global, &authority] {
            for name in [tid, domain] {
                let (s, doc) = get_json(
                    &sim,
                    &format!("{asked_at}/{name}/v2.0/.well-known/openid-configuration"),
                )
                .await;
                assert_eq!(s, 200, "{cloud} at {asked_at}: {doc}");
                assert_eq!(doc["cloud_instance_name"], instance, "{cloud}");
                assert_eq!(doc["msgraph_host"], graph, "{cloud}");
                assert_eq!(doc["tenant_region_sub_scope"].as_str(), sub, "{cloud}");
                // Its endpoints and issuer are its own cloud's, wherever it was asked.
                assert_eq!(doc["issuer"], format!("{authority}/{tid}/v2.0"), "{cloud}");
                assert_eq!(
                    doc["token_endpoint"],
                    format!("{authority}/{tid}/oauth2/v2.0/token"),
                    "{cloud}"
                );
            }
        }
        // A national authority does not know the global cloud's tenants (UNVERIFIED).
        let (s, body) = get_json(
            &sim,
            &format!("{authority}/{CONTOSO_ID}/v2.0/.well-known/openid-configuration"),
        )
        .await;
        assert_aad_error(s, &body, 400, "invalid_tenant", 90002);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn each_cloud_issues_its_own_tokens_and_its_graph_accepts_only_those() {
    let sim = start_national().await;
    let global = sim.authority();
    for National {
        cloud,
        tid,
        app,
        secret,
        graph,
        refusal,
        ..
    } in NATIONAL
    {
        sim.control()
            .grant_admin_consent(tid, uuid(app))
            .expect("consent in the national tenant");
        let authority = sim.cloud_authority(cloud);
        let own_scope = format!("https://{graph}/.default");
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", app),
            ("client_secret", secret),
            ("scope", own_scope.as_str()),
        ];
        // The global authority refuses the national tenant (the code is UNVERIFIED).
        let (s, body) = token_at(&sim, &global, tid, &form).await;
        assert_aad_error(s, &body, 400, "invalid_request", refusal);
        // Its own cloud issues the token, naming that cloud's issuer.
        let (s, body) = token_at(&sim, &authority, tid, &form).await;
        assert_eq!(s, 200, "{cloud}: {body}");
        let token = body["access_token"].as_str().expect("token").to_owned();
        assert_eq!(claims(&token)["iss"], format!("{authority}/{tid}/v2.0"));
        // The cloud's Graph accepts it; the global Graph and another cloud's Graph do not.
        let path = format!("/servicePrincipals?$filter=appId eq '{app}'");
        let (s, _, body) = graph_get(
            &sim,
            &format!("{}{path}", sim.cloud_graph_base(cloud)),
            &token,
        )
        .await;
        assert_eq!(s, 200, "{cloud}: {body}");
        assert_eq!(body["value"][0]["appId"], app, "{body}");
        let (s, _, _) = graph_get(&sim, &path, &token).await;
        assert_eq!(s, 401, "{cloud}'s token at the global Graph");
        let other = if cloud == "china" { "usgov" } else { "china" };
        let (s, _, _) = graph_get(
            &sim,
            &format!("{}{path}", sim.cloud_graph_base(other)),
            &token,
        )
        .await;
        assert_eq!(s, 401, "{cloud}'s token at {other}'s Graph");
        // The global cloud's Graph scope is not this cloud's resource.
        let (s, body) = token_at(
            &sim,
            &authority,
            tid,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", app),
                ("client_secret", secret),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
        assert_eq!(s, 400, "{cloud}: {body}");
        // The global vendor registration is not in this cloud's directory.
        let (s, body) = token_at(
            &sim,
            &authority,
            tid,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", INSIGHTS),
                ("client_secret", INSIGHTS_SECRET),
                ("scope", own_scope.as_str()),
            ],
        )
        .await;
        assert_aad_error(s, &body, 400, "unauthorized_client", 700016);
    }
    // A global tenant at a national authority is unknown there.
    let (s, body) = token_at(
        &sim,
        &sim.cloud_authority("usgov"),
        CONTOSO_ID,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", INSIGHTS),
            ("client_secret", INSIGHTS_SECRET),
            ("scope", "https://graph.microsoft.us/.default"),
        ],
    )
    .await;
    assert_aad_error(s, &body, 400, "invalid_tenant", 90002);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_global_sign_in_page_refuses_a_national_tenant_and_its_own_cloud_signs_it_in() {
    let sim = start_national().await;
    let National {
        cloud,
        tid,
        domain,
        app,
        secret,
        graph,
        refusal,
        ..
    } = NATIONAL[0];
    sim.control()
        .add_redirect_uri(uuid(app), REDIRECT)
        .expect("redirect URI");
    let (verifier, challenge) = pkce();
    let scope = format!("openid offline_access https://{graph}/User.Read");
    let url_at = |authority: &str| {
        let mut url = url::Url::parse(&format!("{authority}/{tid}/oauth2/v2.0/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", app)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", &scope)
            .append_pair("state", "s1")
            .append_pair("nonce", "n1")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        url.to_string()
    };
    let browser = Browser::new(&sim);
    let page = browser.get(&url_at(&sim.authority())).await;
    assert!(
        page.body.contains(&format!("AADSTS{refusal}")),
        "the global authority's page: {}",
        page.body
    );
    let back = browser
        .sign_in(
            &url_at(&sim.cloud_authority(cloud)),
            &format!("admin@{domain}"),
            PASSWORD,
        )
        .await;
    // The consent page (the admin consents for the organization) or straight back.
    let back = if back.location.is_none() {
        back.form().submit(&browser, Some("accept")).await
    } else {
        back
    };
    let code = back.redirect_params()["code"].clone();
    let (s, body) = token_at(
        &sim,
        &sim.cloud_authority(cloud),
        tid,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", app),
            ("client_secret", secret),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
            ("scope", scope.as_str()),
        ],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let id = claims(body["id_token"].as_str().expect("id token"));
    assert_eq!(
        id["iss"],
        format!("{}/{tid}/v2.0", sim.cloud_authority(cloud))
    );
    assert_eq!(id["tid"], tid);
    let (s, _, me) = graph_get(
        &sim,
        &format!("{}/me", sim.cloud_graph_base(cloud)),
        body["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["userPrincipalName"], format!("admin@{domain}"));
    sim.shutdown().await;
}
