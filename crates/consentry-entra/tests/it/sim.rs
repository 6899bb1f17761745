//! The client against entra-sim over real HTTPS on 127.0.0.1: token grants with secrets and
//! certificate assertions, the typed causes of real failures, Graph reads after consent,
//! delegated sign-in with PKCE, refresh rotation, and retries of injected faults.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use consentry_certs::{AssertionAlg, ClientCertificate, generate_self_signed};
use consentry_entra::{
    AdminConsentRequest, AuthorizeRequest, Cause, ClientCredential, EntraClient, EntraConfig,
    EntraError, GRAPH_DEFAULT_SCOPE, Pkce, RedirectResponse, RetryPolicy, TokenResponse,
    directory_role_template_ids, random_url_safe, with_retry_notify,
};
use entra_sim::{FaultRule, RunningSim, Scenario, SimOptions};
use secrecy::ExposeSecret as _;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::pages::Browser;

const CONTOSO: &str = "contoso.onmicrosoft.com";
const CONTOSO_ID: &str = "3f2a9c4e-5b1d-4c7a-9e2f-6d8b0a1c2e3f";
const ADMIN: &str = "admin@contoso.onmicrosoft.com";
const ADMIN_ID: &str = "c0a70000-0000-4000-8000-000000000001";
const GLOBAL_ADMIN_TEMPLATE: &str = "62e90394-69f5-4237-9190-012177145e10";
const REDIRECT: &str = "https://localhost:8443/oauth/callback";
/// Vendor app "insights-m365": delegated User.Read offline_access; application User.Read.All,
/// Group.Read.All, Sites.Read.All, Directory.Read.All, Reports.Read.All.
const INSIGHTS: &str = "c0de0000-0000-4000-8000-000000000001";
const INSIGHTS_SECRET: &str = "demo-secret-insights-m365";
/// Contoso's own custom app, with a registered certificate.
const CUSTOM_APP: &str = "c0a70000-0000-4000-8000-0000000c0570";
const CUSTOM_PFX: &[u8] =
    include_bytes!("../../../entra-sim/scenarios/contoso-custom-app/cert.pfx");
const CUSTOM_PFX_PASSWORD: &str = "demo-pfx-password";

async fn start() -> (RunningSim, EntraClient) {
    let sim = RunningSim::start(Scenario::contoso(), SimOptions::default())
        .await
        .expect("simulator starts");
    let client = EntraClient::new(EntraConfig {
        authority: sim.authority(),
        graph: sim.graph_base(),
        extra_ca_pem: Some(sim.ca_pem().to_owned()),
        timeout: Duration::from_secs(20),
        ..EntraConfig::default()
    })
    .expect("client");
    (sim, client)
}

fn id(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

fn insights_secret() -> ClientCredential {
    ClientCredential::secret(INSIGHTS_SECRET)
}

async fn app_token(client: &EntraClient, tenant: &str) -> Result<TokenResponse, EntraError> {
    client
        .client_credentials(tenant, INSIGHTS, &insights_secret(), GRAPH_DEFAULT_SCOPE)
        .await
}

#[tokio::test]
async fn client_credentials_with_a_secret_and_its_failures() {
    let (sim, client) = start().await;

    // Not consented yet: no service principal in the tenant.
    let err = app_token(&client, CONTOSO).await.unwrap_err();
    assert_eq!(err.cause(), Cause::AppNotInTenant, "{err}");
    assert_eq!(err.identity().unwrap().primary_code(), Some(7000229));
    assert!(!err.is_transient());

    sim.control()
        .grant_admin_consent(CONTOSO, id(INSIGHTS))
        .unwrap();
    let token = app_token(&client, CONTOSO).await.unwrap();
    assert!(token.expires_in > 0);
    assert!(token.refresh_token.is_none());
    let claims = token.access_token_claims().unwrap();
    assert_eq!(claims.tid.as_deref(), Some(CONTOSO_ID));
    assert!(claims.scp.is_empty());
    for role in ["User.Read.All", "Sites.Read.All", "Directory.Read.All"] {
        assert!(
            claims.roles.iter().any(|r| r == role),
            "{role} in {:?}",
            claims.roles
        );
    }
    // The tenant GUID works as well as the domain.
    app_token(&client, CONTOSO_ID).await.unwrap();

    let err = client
        .client_credentials(
            CONTOSO,
            INSIGHTS,
            &ClientCredential::secret("not-the-secret"),
            GRAPH_DEFAULT_SCOPE,
        )
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::VendorSecretInvalid, "{err}");
    let identity = err.identity().unwrap();
    assert_eq!(identity.status, Some(401));
    assert!(identity.trace_id.is_some() && identity.correlation_id.is_some());
    assert!(err.client_request_id().is_some());

    let err = app_token(&client, "nowhere.onmicrosoft.com")
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::TenantNotFound, "{err}");

    sim.control().expire_secret(id(INSIGHTS), None).unwrap();
    let err = app_token(&client, CONTOSO).await.unwrap_err();
    assert_eq!(err.cause(), Cause::VendorSecretExpired, "{err}");
}

/// Insights admin-consented in Contoso: an app-only Graph token there and its service principal.
async fn consented_insights(
    sim: &RunningSim,
    client: &EntraClient,
) -> (secrecy::SecretString, consentry_entra::ServicePrincipal) {
    sim.control()
        .grant_admin_consent(CONTOSO, id(INSIGHTS))
        .unwrap();
    let token = app_token(client, CONTOSO).await.unwrap().access_token;
    let sp = client
        .service_principal_by_app_id(&token, INSIGHTS)
        .await
        .unwrap()
        .expect("the consent created a service principal");
    (token, sp)
}

#[tokio::test]
async fn graph_reads_after_admin_consent() {
    let (sim, client) = start().await;
    let (token, sp) = consented_insights(&sim, &client).await;
    assert_eq!(sp.app_id, INSIGHTS);

    let graph = client
        .graph_service_principal(&token)
        .await
        .unwrap()
        .expect("Microsoft Graph has a service principal");
    let assignments = client.app_role_assignments(&token, &sp.id).await.unwrap();
    let mut granted: Vec<&str> = assignments
        .iter()
        .filter(|a| a.resource_id == graph.id)
        .filter_map(|a| graph.app_role_value(&a.app_role_id))
        .collect();
    granted.sort_unstable();
    assert_eq!(
        granted,
        vec![
            "Directory.Read.All",
            "Group.Read.All",
            "Reports.Read.All",
            "Sites.Read.All",
            "User.Read.All"
        ]
    );
    assert!(assignments.iter().all(|a| a.principal_id == sp.id));

    let grants = client
        .oauth2_permission_grants(&token, &sp.id)
        .await
        .unwrap();
    let admin_grant = grants
        .iter()
        .find(|g| g.is_admin_consent() && g.resource_id == graph.id)
        .expect("an AllPrincipals grant for Graph");
    assert!(
        admin_grant.scopes().contains(&"User.Read"),
        "{admin_grant:?}"
    );

    // Another app is not in the tenant.
    let missing = client
        .service_principal_by_app_id(&token, "c0de0000-0000-4000-8000-0000000000ff")
        .await
        .unwrap();
    assert!(missing.is_none());

    // Revoking the consent is seen on the next token request.
    sim.control()
        .delete_service_principal(CONTOSO, id(INSIGHTS))
        .unwrap();
    let err = app_token(&client, CONTOSO).await.unwrap_err();
    assert_eq!(err.cause(), Cause::AppNotInTenant, "{err}");
}

fn custom_certificate() -> ClientCertificate {
    ClientCertificate::from_pfx(CUSTOM_PFX, CUSTOM_PFX_PASSWORD, OffsetDateTime::now_utc())
        .expect("the demo .pfx loads")
}

#[tokio::test]
async fn certificate_assertions_for_a_custom_app() {
    let (sim, client) = start().await;
    sim.control()
        .grant_admin_consent(CONTOSO, id(CUSTOM_APP))
        .unwrap();
    let cert = custom_certificate();
    for alg in [AssertionAlg::Ps256X5tS256, AssertionAlg::Rs256X5t] {
        let cred = ClientCredential::Certificate {
            certificate: Box::new(cert.clone()),
            alg,
        };
        let token = client
            .client_credentials(CONTOSO, CUSTOM_APP, &cred, GRAPH_DEFAULT_SCOPE)
            .await
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert!(
            token
                .access_token_claims()
                .unwrap()
                .roles
                .iter()
                .any(|r| r == "Sites.FullControl.All")
        );
    }

    // The app reads its own registration: the uploaded certificate is the .pfx's.
    let token = client
        .client_credentials(
            CONTOSO,
            CUSTOM_APP,
            &ClientCredential::certificate(cert.clone()),
            GRAPH_DEFAULT_SCOPE,
        )
        .await
        .unwrap();
    let keys = client
        .application_key_credentials(&token.access_token, CUSTOM_APP)
        .await
        .unwrap()
        .expect("the app registration is in contoso");
    assert!(keys.iter().any(|k| k.matches(&cert)), "{keys:?}");

    // A certificate that was never uploaded to the app.
    let now = OffsetDateTime::now_utc();
    let other = generate_self_signed("CN=not registered", 1, "pw", now).unwrap();
    let other = ClientCertificate::from_pfx(&other.pfx, "pw", now).unwrap();
    assert!(!keys.iter().any(|k| k.matches(&other)));
    let err = client
        .client_credentials(
            CONTOSO,
            CUSTOM_APP,
            &ClientCredential::certificate(other),
            GRAPH_DEFAULT_SCOPE,
        )
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::CertificateNotRegistered, "{err}");
}

fn rule(endpoint: &str, status: u16, retry_after_secs: Option<u64>) -> FaultRule {
    FaultRule {
        endpoint: endpoint.into(),
        rate: 1.0,
        latency_ms: 0,
        status: Some(status),
        retry_after_secs,
        drop_connection: false,
    }
}

#[tokio::test]
async fn injected_faults_are_transient_and_retried() {
    let (sim, client) = start().await;
    let control = sim.control();
    control.grant_admin_consent(CONTOSO, id(INSIGHTS)).unwrap();
    let policy = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        max_retry_after: Duration::from_secs(2),
    };

    // 429 with Retry-After on the token endpoint.
    control
        .set_faults(vec![rule("token", 429, Some(1))])
        .unwrap();
    let err = app_token(&client, CONTOSO).await.unwrap_err();
    assert!(err.is_transient());
    assert_eq!(err.cause(), Cause::Transient);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    // The fault clears while the helper waits: the retry succeeds.
    let retries = AtomicU32::new(0);
    let token = with_retry_notify(
        &policy,
        |e, _, delay| {
            assert!(matches!(e, EntraError::Throttled { .. }));
            assert_eq!(delay, Duration::from_secs(1));
            retries.fetch_add(1, Ordering::SeqCst);
            control.set_faults(Vec::new()).unwrap();
        },
        || app_token(&client, CONTOSO),
    )
    .await
    .unwrap();
    assert_eq!(retries.load(Ordering::SeqCst), 1);

    // 503 on Graph.
    control.set_faults(vec![rule("graph", 503, None)]).unwrap();
    let err = client
        .service_principal_by_app_id(&token.access_token, INSIGHTS)
        .await
        .unwrap_err();
    assert!(
        matches!(err, EntraError::Server { status: 503, .. }),
        "{err:?}"
    );
    let sp = with_retry_notify(
        &policy,
        |_, _, _| control.set_faults(Vec::new()).unwrap(),
        || client.service_principal_by_app_id(&token.access_token, INSIGHTS),
    )
    .await
    .unwrap();
    assert!(sp.is_some());

    // A dropped connection is a transport failure; it persists, so retries give up.
    let mut drop = rule("token", 500, None);
    drop.status = None;
    drop.drop_connection = true;
    control.set_faults(vec![drop]).unwrap();
    let attempts = AtomicU32::new(0);
    let err = with_retry_notify(
        &policy,
        |_, _, _| {},
        || {
            attempts.fetch_add(1, Ordering::SeqCst);
            app_token(&client, CONTOSO)
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, EntraError::Transport { .. }), "{err:?}");
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn admin_consent_url_and_redirects() {
    let (sim, client) = start().await;
    let browser = Browser::new(&sim);
    let state = random_url_safe(24);
    let url = client
        .admin_consent_url(&AdminConsentRequest {
            tenant: CONTOSO.into(),
            client_id: INSIGHTS.into(),
            redirect_uri: REDIRECT.into(),
            state: state.clone(),
            scope: None,
        })
        .unwrap();

    // Cancel: access_denied + AADSTS65004, no tenant.
    let query = browser.sign_in(url.as_str(), ADMIN, "cancel").await;
    match RedirectResponse::parse(&query).unwrap() {
        RedirectResponse::Error { error, state: s } => {
            assert!(error.is_cancel(), "{error:?}");
            assert_eq!(error.cause(), Cause::ConsentDeclined);
            assert_eq!(s.as_deref(), Some(state.as_str()));
        }
        other => panic!("expected a cancel, got {other:?}"),
    }
    assert!(app_token(&client, CONTOSO).await.is_err());

    // Accept: admin_consent=True with the tenant GUID, then confirmed by a token request.
    let query = browser.sign_in(url.as_str(), ADMIN, "accept").await;
    match RedirectResponse::parse(&query).unwrap() {
        RedirectResponse::AdminConsent {
            tenant, state: s, ..
        } => {
            assert_eq!(tenant.as_deref(), Some(CONTOSO_ID));
            assert_eq!(s.as_deref(), Some(state.as_str()));
        }
        other => panic!("expected admin consent, got {other:?}"),
    }
    app_token(&client, CONTOSO).await.unwrap();
}

/// Signs `user` in to the insights app through /authorize and redeems the code.
async fn delegated_sign_in(
    sim: &RunningSim,
    client: &EntraClient,
    user: &str,
) -> Result<TokenResponse, EntraError> {
    let pkce = Pkce::generate();
    let state = random_url_safe(24);
    let nonce = random_url_safe(24);
    let url = client
        .authorize_url(&AuthorizeRequest {
            tenant: CONTOSO.into(),
            client_id: INSIGHTS.into(),
            redirect_uri: REDIRECT.into(),
            scopes: vec!["User.Read".into()],
            state: state.clone(),
            nonce: nonce.clone(),
            code_challenge: pkce.challenge.clone(),
            login_hint: Some(user.into()),
            prompt: None,
        })
        .unwrap();
    let query = Browser::new(sim)
        .sign_in(url.as_str(), user, "accept")
        .await;
    let RedirectResponse::Code { code, state: s } = RedirectResponse::parse(&query)? else {
        panic!("expected a code: {query}");
    };
    assert_eq!(s.as_deref(), Some(state.as_str()));
    let token = client
        .redeem_code(
            CONTOSO,
            INSIGHTS,
            &insights_secret(),
            &code,
            REDIRECT,
            &pkce.verifier,
            &["User.Read"],
        )
        .await?;
    let id = token.id_token_claims().expect("an ID token").unwrap();
    assert_eq!(id.nonce.as_deref(), Some(nonce.as_str()));
    // The code is single-use.
    let again = client
        .redeem_code(
            CONTOSO,
            INSIGHTS,
            &insights_secret(),
            &code,
            REDIRECT,
            &pkce.verifier,
            &["User.Read"],
        )
        .await
        .unwrap_err();
    assert_eq!(again.cause(), Cause::CodeInvalid, "{again}");
    Ok(token)
}

#[tokio::test]
async fn delegated_sign_in_refresh_and_what_breaks_it() {
    let (sim, client) = start().await;
    sim.control()
        .grant_admin_consent(CONTOSO, id(INSIGHTS))
        .unwrap();
    let token = delegated_sign_in(&sim, &client, ADMIN).await.unwrap();
    let claims = token.access_token_claims().unwrap();
    assert_eq!(claims.oid.as_deref(), Some(ADMIN_ID));
    assert_eq!(claims.tid.as_deref(), Some(CONTOSO_ID));
    assert!(claims.scp.iter().any(|s| s == "User.Read"), "{claims:?}");
    let rt1 = token
        .refresh_token
        .clone()
        .expect("offline_access gives a refresh token");

    // Graph reads about the consent user.
    let me = client.me(&token.access_token).await.unwrap();
    assert_eq!(me.id, ADMIN_ID);
    assert_eq!(me.user_principal_name.as_deref(), Some(ADMIN));
    let member_of = client.me_member_of(&token.access_token).await.unwrap();
    assert!(
        directory_role_template_ids(&member_of).contains(&GLOBAL_ADMIN_TEMPLATE),
        "{member_of:?}"
    );
    let licenses = client
        .me_license_details(&token.access_token)
        .await
        .unwrap();
    assert!(
        licenses
            .iter()
            .any(|l| l.sku_part_number == "ENTERPRISEPREMIUM")
    );
    client.me_owned_groups(&token.access_token).await.unwrap();

    // Refresh rotates the refresh token.
    let refreshed = client
        .refresh(CONTOSO, INSIGHTS, &insights_secret(), &rt1, &["User.Read"])
        .await
        .unwrap();
    let rt2 = refreshed.refresh_token.clone().unwrap();
    assert_ne!(rt1.expose_secret(), rt2.expose_secret());

    // Sessions revoked (e.g. password reset by an admin): the grant is gone.
    sim.control().revoke_sessions(ADMIN).unwrap();
    let err = client
        .refresh(CONTOSO, INSIGHTS, &insights_secret(), &rt2, &["User.Read"])
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::PasswordResetOrRevoked, "{err}");
    assert!(!err.is_transient());

    // A fresh sign-in, then the user is disabled.
    let token = delegated_sign_in(&sim, &client, ADMIN).await.unwrap();
    let rt = token.refresh_token.unwrap();
    sim.control().set_user_enabled(ADMIN, false).unwrap();
    let err = client
        .refresh(CONTOSO, INSIGHTS, &insights_secret(), &rt, &["User.Read"])
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::UserDisabled, "{err}");
    sim.control().set_user_enabled(ADMIN, true).unwrap();

    // 90 days without use.
    sim.control()
        .advance_clock(Duration::from_secs(91 * 24 * 3600))
        .unwrap();
    let err = client
        .refresh(CONTOSO, INSIGHTS, &insights_secret(), &rt, &["User.Read"])
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::RefreshTokenInactive, "{err}");
}

#[tokio::test]
async fn mfa_and_consent_removal_on_refresh() {
    let (sim, client) = start().await;
    sim.control()
        .grant_admin_consent(CONTOSO, id(INSIGHTS))
        .unwrap();
    let rt = delegated_sign_in(&sim, &client, ADMIN)
        .await
        .unwrap()
        .refresh_token
        .unwrap();

    sim.control().set_mfa_required(ADMIN, true).unwrap();
    let err = client
        .refresh(CONTOSO, INSIGHTS, &insights_secret(), &rt, &["User.Read"])
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::MfaRequired, "{err}");
    sim.control().set_mfa_required(ADMIN, false).unwrap();
    client
        .refresh(CONTOSO, INSIGHTS, &insights_secret(), &rt, &["User.Read"])
        .await
        .expect("works again once MFA is no longer required");

    sim.control().revoke_consent(CONTOSO, id(INSIGHTS)).unwrap();
    let err = client
        .refresh(CONTOSO, INSIGHTS, &insights_secret(), &rt, &["User.Read"])
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::ConsentMissing, "{err}");
}

#[tokio::test]
async fn a_graph_batch_answers_each_read_as_a_direct_request_would() {
    let (sim, client) = start().await;
    let (token, sp) = consented_insights(&sim, &client).await;
    let direct = client.app_role_assignments(&token, &sp.id).await.unwrap();
    let graph = client.config().graph.trim_end_matches('/').to_owned();
    let at = |path: &str| url::Url::parse(&format!("{graph}{path}")).unwrap();
    let missing = "c0de0000-0000-4000-8000-0000000000ff";
    let answers = client
        .graph_batch_get(
            &token,
            &[
                ("sp", at(&format!("/servicePrincipals(appId='{INSIGHTS}')"))),
                (
                    "roles",
                    at(&format!(
                        "/servicePrincipals(appId='{INSIGHTS}')/appRoleAssignments"
                    )),
                ),
                (
                    "missing",
                    at(&format!("/servicePrincipals(appId='{missing}')")),
                ),
            ],
        )
        .await
        .unwrap();
    assert_eq!(answers["sp"].as_ref().unwrap()["id"], sp.id.as_str());
    let batched = answers["roles"].as_ref().unwrap()["value"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(batched, direct.len());
    assert!(batched > 0);
    let err = answers["missing"].as_ref().unwrap_err();
    assert_eq!(err.graph().map(|g| g.status), Some(404), "{err}");

    // An inner request's 429 is that request's `Throttled`, with its own Retry-After; the others
    // are answered.
    let mut throttled = rule(
        &format!("/v1.0/servicePrincipals(appId='{missing}')"),
        429,
        Some(7),
    );
    throttled.rate = 1.0;
    sim.control().set_faults(vec![throttled]).unwrap();
    let answers = client
        .graph_batch_get(
            &token,
            &[
                ("sp", at(&format!("/servicePrincipals(appId='{INSIGHTS}')"))),
                (
                    "missing",
                    at(&format!("/servicePrincipals(appId='{missing}')")),
                ),
            ],
        )
        .await
        .unwrap();
    assert!(answers["sp"].is_ok());
    match answers["missing"].as_ref().unwrap_err() {
        EntraError::Throttled { retry_after, .. } => {
            assert_eq!(*retry_after, Some(Duration::from_secs(7)));
        }
        other => panic!("expected Throttled, got {other}"),
    }
    assert!(
        client
            .graph_batch_get(&token, &[])
            .await
            .is_err_and(|e| e.to_string().contains("1 to 20")),
        "an empty batch is refused before anything is sent"
    );
}
