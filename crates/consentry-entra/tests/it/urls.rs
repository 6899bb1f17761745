//! URL builders, PKCE, scopes, configuration checks, claims decoding and the retry policy.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consentry_entra::{
    AdminConsentRequest, AuthorizeRequest, EntraClient, EntraConfig, EntraError, Pkce, Prompt,
    RetryPolicy, TokenClaims, delegated_scope, pkce_challenge_s256, qualify_scopes,
    with_retry_notify,
};
use secrecy::{ExposeSecret as _, SecretString};

const TENANT: &str = "84841066-274d-4ec0-a5c1-276be684bdd3";
const APP: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";

fn client() -> EntraClient {
    EntraClient::new(EntraConfig::default()).unwrap()
}

fn query(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

#[test]
fn admin_consent_url_v2() {
    let url = client()
        .admin_consent_url(&AdminConsentRequest {
            tenant: TENANT.into(),
            client_id: APP.into(),
            redirect_uri: "https://consentry.example/oauth/callback".into(),
            state: "st&ate".into(),
            scope: None,
        })
        .unwrap();
    assert_eq!(
        format!("{}{}", url.origin().ascii_serialization(), url.path()),
        format!("https://login.microsoftonline.com/{TENANT}/v2.0/adminconsent")
    );
    let q = query(&url);
    assert_eq!(q["client_id"], APP);
    assert_eq!(
        q["redirect_uri"],
        "https://consentry.example/oauth/callback"
    );
    assert_eq!(q["state"], "st&ate");
    assert_eq!(q["scope"], "https://graph.microsoft.com/.default");
    assert_eq!(q.len(), 4);
}

#[test]
fn admin_consent_rejects_common_and_bad_ids() {
    let base = AdminConsentRequest {
        tenant: "common".into(),
        client_id: APP.into(),
        redirect_uri: "https://consentry.example/cb".into(),
        state: "s".into(),
        scope: None,
    };
    let c = client();
    assert!(matches!(
        c.admin_consent_url(&base),
        Err(EntraError::InvalidInput(_))
    ));
    let org = AdminConsentRequest {
        tenant: "organizations".into(),
        ..base.clone()
    };
    assert!(c.admin_consent_url(&org).is_ok());
    let bad_tenant = AdminConsentRequest {
        tenant: "contoso.com/../x".into(),
        ..base.clone()
    };
    assert!(c.admin_consent_url(&bad_tenant).is_err());
    let bad_app = AdminConsentRequest {
        tenant: TENANT.into(),
        client_id: "not-a-guid".into(),
        ..base.clone()
    };
    let err = c.admin_consent_url(&bad_app).unwrap_err();
    assert!(err.to_string().contains("not a GUID"), "{err}");
    let bad_redirect = AdminConsentRequest {
        tenant: TENANT.into(),
        redirect_uri: "/relative".into(),
        ..base
    };
    assert!(c.admin_consent_url(&bad_redirect).is_err());
}

#[test]
fn authorize_url_with_pkce() {
    let pkce = Pkce::generate();
    let url = client()
        .authorize_url(&AuthorizeRequest {
            tenant: "contoso.onmicrosoft.com".into(),
            client_id: APP.into(),
            redirect_uri: "https://consentry.example/cb".into(),
            scopes: vec![
                "User.Read".into(),
                "https://graph.microsoft.com/Sites.Read.All".into(),
            ],
            state: "state1".into(),
            nonce: "nonce1".into(),
            code_challenge: pkce.challenge.clone(),
            login_hint: Some("admin@contoso.onmicrosoft.com".into()),
            prompt: Some(Prompt::SelectAccount),
        })
        .unwrap();
    assert_eq!(url.path(), "/contoso.onmicrosoft.com/oauth2/v2.0/authorize");
    let q = query(&url);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["response_mode"], "query");
    assert_eq!(
        q["scope"],
        "openid offline_access profile https://graph.microsoft.com/User.Read https://graph.microsoft.com/Sites.Read.All"
    );
    assert_eq!(q["code_challenge"], pkce.challenge);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["nonce"], "nonce1");
    assert_eq!(q["state"], "state1");
    assert_eq!(q["login_hint"], "admin@contoso.onmicrosoft.com");
    assert_eq!(q["prompt"], "select_account");
    assert!(!url.as_str().contains(pkce.verifier.expose_secret()));
}

#[test]
fn authority_with_path_prefix_and_loopback_http() {
    let c = EntraClient::new(EntraConfig {
        authority: "http://127.0.0.1:8443/sim/".into(),
        graph: "http://localhost:8443/v1.0".into(),
        ..EntraConfig::default()
    })
    .unwrap();
    assert_eq!(
        c.token_endpoint(TENANT).unwrap().as_str(),
        format!("http://127.0.0.1:8443/sim/{TENANT}/oauth2/v2.0/token")
    );
    for bad in [
        "http://login.example.com",
        "ftp://127.0.0.1",
        "not a url",
        "https://x/?q=1",
    ] {
        let err = EntraClient::new(EntraConfig {
            authority: bad.into(),
            ..EntraConfig::default()
        })
        .unwrap_err();
        assert!(matches!(err, EntraError::Config(_)), "{bad}: {err}");
    }
    let err = EntraClient::new(EntraConfig {
        extra_ca_pem: Some("no certificate here".into()),
        ..EntraConfig::default()
    })
    .unwrap_err();
    assert!(matches!(err, EntraError::Config(_)), "{err}");
}

#[test]
fn pkce_rfc7636_appendix_b() {
    assert_eq!(
        pkce_challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    let p = Pkce::from_verifier(SecretString::from(
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned(),
    ))
    .unwrap();
    assert_eq!(p.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    assert!(Pkce::from_verifier(SecretString::from("short".to_owned())).is_err());
    assert!(Pkce::from_verifier(SecretString::from("a".repeat(129))).is_err());
    assert!(Pkce::from_verifier(SecretString::from(format!("{}!", "a".repeat(50)))).is_err());
}

#[test]
fn generated_pkce_is_valid_and_fresh() {
    let a = Pkce::generate();
    let b = Pkce::generate();
    let v = a.verifier.expose_secret();
    assert!((43..=128).contains(&v.len()));
    assert!(
        v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
    );
    assert_eq!(a.challenge, pkce_challenge_s256(v));
    assert_ne!(v, b.verifier.expose_secret());
    assert!(!format!("{a:?}").contains(v));
}

#[test]
fn scopes_are_qualified_once() {
    assert_eq!(
        qualify_scopes(&["User.Read", "openid", " ", "User.Read", "api://x/y"]),
        vec![
            "https://graph.microsoft.com/User.Read".to_owned(),
            "openid".to_owned(),
            "api://x/y".to_owned()
        ]
    );
    assert_eq!(
        delegated_scope::<&str>(&[]),
        "openid offline_access profile https://graph.microsoft.com/.default"
    );
    assert_eq!(
        delegated_scope(&["offline_access", "Mail.Read"]),
        "openid offline_access profile https://graph.microsoft.com/Mail.Read"
    );
}

fn jwt(claims: &str) -> String {
    format!(
        "{}.{}.sig",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

#[test]
fn claims_of_delegated_and_app_tokens() {
    let c = TokenClaims::decode_unverified(&jwt(
        r#"{"aud":"00000003-0000-0000-c000-000000000000","tid":"t1","oid":"o1","upn":"adele@contoso.com","scp":"User.Read Sites.Read.All","ipaddr":"203.0.113.7","amr":["pwd","mfa"],"wids":["62e90394-69f5-4237-9190-012177145e10"],"appid":"a1","unknown":{"x":1}}"#,
    ))
    .unwrap();
    assert_eq!(c.tid.as_deref(), Some("t1"));
    assert_eq!(c.oid.as_deref(), Some("o1"));
    assert_eq!(c.user_principal(), Some("adele@contoso.com"));
    assert_eq!(c.scp, vec!["User.Read", "Sites.Read.All"]);
    assert_eq!(c.ipaddr.as_deref(), Some("203.0.113.7"));
    assert!(c.used_mfa());
    assert_eq!(c.wids.len(), 1);
    assert_eq!(c.appid.as_deref(), Some("a1"));

    let app = TokenClaims::decode_unverified(&jwt(
        r#"{"tid":"t1","oid":"sp1","roles":["Sites.FullControl.All","User.Read.All"],"azp":"a2"}"#,
    ))
    .unwrap();
    assert!(app.scp.is_empty());
    assert_eq!(app.roles, vec!["Sites.FullControl.All", "User.Read.All"]);
    assert_eq!(app.appid.as_deref(), Some("a2"));
    assert!(!app.used_mfa());

    let v2 = TokenClaims::decode_unverified(&jwt(r#"{"preferred_username":"u@c.com"}"#)).unwrap();
    assert_eq!(v2.user_principal(), Some("u@c.com"));

    for bad in [
        "",
        "a.b",
        "a.!!!.c",
        &format!("a.{}.c", URL_SAFE_NO_PAD.encode("[1]")),
    ] {
        assert!(
            matches!(
                TokenClaims::decode_unverified(bad),
                Err(EntraError::Protocol { .. })
            ),
            "{bad}"
        );
    }
}

fn throttled(after: Option<Duration>) -> EntraError {
    EntraError::Throttled {
        retry_after: after,
        client_request_id: None,
    }
}

#[test]
fn retry_delays() {
    let p = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(1000),
        max_retry_after: Duration::from_secs(5),
    };
    let e = throttled(None);
    assert_eq!(p.delay(1, &e, 0.0), Duration::from_millis(50));
    assert_eq!(p.delay(1, &e, 1.0), Duration::from_millis(100));
    assert_eq!(p.delay(3, &e, 1.0), Duration::from_millis(400));
    assert_eq!(p.delay(10, &e, 1.0), Duration::from_millis(1000));
    assert_eq!(p.delay(10, &e, 0.0), Duration::from_millis(500));
    assert_eq!(
        p.delay(1, &throttled(Some(Duration::from_secs(2))), 0.5),
        Duration::from_secs(2)
    );
    assert_eq!(
        p.delay(1, &throttled(Some(Duration::from_secs(3600))), 0.5),
        Duration::from_secs(5)
    );
}

#[tokio::test(start_paused = true)]
async fn retry_honours_retry_after_and_stops_on_success() {
    let policy = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        max_retry_after: Duration::from_secs(30),
    };
    let start = tokio::time::Instant::now();
    let mut calls = 0;
    let mut waits = Vec::new();
    let out = with_retry_notify(
        &policy,
        |_, n, d| waits.push((n, d)),
        || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(throttled(Some(Duration::from_secs(7))))
                } else {
                    Ok(n)
                }
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(out, 3);
    assert_eq!(
        waits,
        vec![(1, Duration::from_secs(7)), (2, Duration::from_secs(7))]
    );
    assert!(start.elapsed() >= Duration::from_secs(14));
}

#[tokio::test(start_paused = true)]
async fn retry_gives_up_and_skips_definitive_errors() {
    let policy = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let mut calls = 0;
    let err = consentry_entra::with_retry(&policy, || {
        calls += 1;
        async { Err::<(), _>(throttled(None)) }
    })
    .await
    .unwrap_err();
    assert!(matches!(err, EntraError::Throttled { .. }));
    assert_eq!(calls, 3);

    let mut calls = 0;
    let err = consentry_entra::with_retry(&policy, || {
        calls += 1;
        async { Err::<(), _>(EntraError::InvalidInput("bad".into())) }
    })
    .await
    .unwrap_err();
    assert!(!err.is_transient());
    assert_eq!(calls, 1);
}
