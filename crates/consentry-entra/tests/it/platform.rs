//! `EntraPlatform` (the domain's identity-platform port) against entra-sim's contoso scenario
//! over real HTTPS on 127.0.0.1: admin consent and the grants read back from Graph, a PKCE
//! sign-in redeemed into the consent user's identity and facts, refresh rotation, and the
//! domain causes of real failures (credentials, deleted app, user state, cancel, faults).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use consentry_domain::{
    AppId, CaRequirement, ClientRef, CloudKey, IdentityPlatform, ObjectId, PlatformCause,
    SignInRequest, TenantAt, TenantId,
};
use consentry_entra::platform::{EntraPlatform, VendorApp, platform_error_from_redirect};
use consentry_entra::{
    EntraClient, EntraConfig, Pkce, Prompt, RetryPolicy, pkce_challenge_s256, random_url_safe,
};
use entra_sim::{FaultRule, PermissionKind, RunningSim, Scenario, SimOptions};
use secrecy::{ExposeSecret as _, SecretSlice, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::pages::Browser;

const CONTOSO: &str = "contoso.onmicrosoft.com";
const CONTOSO_ID: &str = "3f2a9c4e-5b1d-4c7a-9e2f-6d8b0a1c2e3f";
const ADMIN: &str = "admin@contoso.onmicrosoft.com";
const ADMIN_ID: &str = "c0a70000-0000-4000-8000-000000000001";
const USER: &str = "user@contoso.onmicrosoft.com";
const ENGAGE_ADMIN: &str = "engage.admin@contoso.onmicrosoft.com";
const GLOBAL_ADMIN_TEMPLATE: &str = "62e90394-69f5-4237-9190-012177145e10";
const YAMMER_ADMIN_TEMPLATE: &str = "810a2642-a034-447f-a5e8-41beaa378541";
/// Registered on every vendor app of the scenario.
const REDIRECT: &str = "https://localhost:8443/oauth/callback";
/// insights-m365: delegated User.Read offline_access; application User.Read.All, Group.Read.All,
/// Sites.Read.All, Directory.Read.All, Reports.Read.All.
const INSIGHTS: &str = "c0de0000-0000-4000-8000-000000000001";
/// fly: application-only, without Directory.Read.All or Application.Read.All.
const FLY: &str = "c0de0000-0000-4000-8000-000000000008";
/// fly-delegated: delegated-only.
const FLY_DELEGATED: &str = "c0de0000-0000-4000-8000-000000000007";
const CUSTOM_APP: &str = "c0a70000-0000-4000-8000-0000000c0570";
const CUSTOM_PFX: &[u8] =
    include_bytes!("../../../entra-sim/scenarios/contoso-custom-app/cert.pfx");
const CUSTOM_PFX_PASSWORD: &str = "demo-pfx-password";

fn tenant() -> TenantAt {
    TenantAt::new(TenantId::parse(CONTOSO_ID).unwrap(), CloudKey::global())
}

fn app(s: &str) -> AppId {
    AppId::parse(s).unwrap()
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

fn vendor(app_type: &str) -> ClientRef {
    ClientRef::Vendor {
        app_type: app_type.into(),
    }
}

/// Short waits so that fault tests do not sleep through a 60 s `Retry-After`.
fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_millis(20),
    }
}

fn platform_with(sim: &RunningSim, apps: &[(&str, &str, &str)]) -> EntraPlatform {
    let client = EntraClient::new(EntraConfig {
        authority: sim.authority(),
        graph: sim.graph_base(),
        viva_engage: sim.viva_engage_base(),
        extra_ca_pem: Some(sim.ca_pem().to_owned()),
        ..EntraConfig::default()
    })
    .unwrap();
    let vendor_apps: BTreeMap<String, VendorApp> = apps
        .iter()
        .map(|(key, id, secret)| {
            (
                (*key).to_owned(),
                VendorApp::with_secret(app(id), SecretString::from((*secret).to_owned())),
            )
        })
        .collect();
    EntraPlatform::new(client, REDIRECT.into(), vendor_apps)
        .unwrap()
        .with_retry_policy(quick_retries())
        .with_clock(std::sync::Arc::new(SimClock(sim.control())))
}

/// The simulator's clock: ID tokens' `exp` and `nbf` are checked against the time the simulated
/// Microsoft lives in (tests move it forward by days).
#[derive(Debug)]
struct SimClock(entra_sim::SimControl);

impl consentry_domain::Clock for SimClock {
    fn now(&self) -> OffsetDateTime {
        self.0.now()
    }
}

async fn start() -> (RunningSim, EntraPlatform) {
    let sim = RunningSim::start(Scenario::contoso(), SimOptions::default())
        .await
        .expect("simulator starts");
    let platform = platform_with(
        &sim,
        &[
            ("insights-m365", INSIGHTS, "demo-secret-insights-m365"),
            ("fly", FLY, "demo-secret-fly"),
            ("fly-delegated", FLY_DELEGATED, "demo-secret-fly-delegated"),
        ],
    );
    (sim, platform)
}

fn query_of(url: &str) -> BTreeMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn redirect_error(
    platform: &EntraPlatform,
    q: &BTreeMap<String, String>,
) -> consentry_domain::PlatformError {
    platform.redirect_error(
        q.get("error").expect("an error redirect"),
        q.get("error_description").map(String::as_str),
        q.get("error_subcode").map(String::as_str),
    )
}

#[tokio::test]
async fn admin_consent_through_the_pages_then_grants_lists_the_app_roles() {
    let (sim, platform) = start().await;
    let client = vendor("insights-m365");
    assert_eq!(
        platform.vendor_client_id(&CloudKey::global(), "insights-m365"),
        Some(app(INSIGHTS))
    );

    // Before consent the app is not in the tenant.
    let err = platform.grants(&tenant(), &client).await.unwrap_err();
    assert_eq!(err.cause, PlatformCause::AppNotInTenant, "{err}");
    assert_eq!(err.aadsts, Some(7000229));

    let state = random_url_safe(24);
    let url = platform.admin_consent_url(&tenant(), app(INSIGHTS), &state);
    assert!(
        url.starts_with(&format!(
            "{}/{CONTOSO_ID}/v2.0/adminconsent?",
            sim.authority()
        )),
        "{url}"
    );
    let q = query_of(&url);
    assert_eq!(q["client_id"], INSIGHTS);
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["state"], state);
    assert_eq!(q["scope"], "https://graph.microsoft.com/.default");

    let back = Browser::new(&sim)
        .sign_in_pairs(&url, ADMIN, "accept")
        .await;
    assert_eq!(back.get("admin_consent").map(String::as_str), Some("True"));
    assert_eq!(back.get("state"), Some(&state));

    let grants = platform.grants(&tenant(), &client).await.unwrap();
    assert!(grants.service_principal.is_some());
    assert_eq!(
        grants.app_roles,
        vec![
            "Directory.Read.All",
            "Group.Read.All",
            "Reports.Read.All",
            "Sites.Read.All",
            "User.Read.All"
        ]
    );
    assert!(
        grants
            .delegated_all_principals
            .iter()
            .any(|s| s == "User.Read"),
        "{grants:?}"
    );
    assert!(grants.delegated_by_user.is_empty(), "{grants:?}");
    assert!(grants.delegated_readable);
}

#[tokio::test]
async fn grants_without_directory_read_permissions() {
    let (sim, platform) = start().await;
    let control = sim.control();

    // `fly` may not read Microsoft Graph's service principal: its role IDs are named from the
    // catalog's well-known IDs; it has no delegated permissions to list.
    control.grant_admin_consent(CONTOSO, uuid(FLY)).unwrap();
    let grants = platform.grants(&tenant(), &vendor("fly")).await.unwrap();
    assert_eq!(
        grants.app_roles,
        vec![
            "Files.ReadWrite.All",
            "Group.ReadWrite.All",
            "Mail.ReadWrite",
            "Sites.FullControl.All",
            "User.Read.All"
        ]
    );
    assert!(grants.delegated_all_principals.is_empty());
    assert!(!grants.delegated_readable);

    // A delegated-only app may not list its delegated grants: reported as none...
    control
        .grant_admin_consent(CONTOSO, uuid(FLY_DELEGATED))
        .unwrap();
    let grants = platform
        .grants(&tenant(), &vendor("fly-delegated"))
        .await
        .unwrap();
    assert!(grants.service_principal.is_some());
    assert!(grants.app_roles.is_empty());
    assert!(grants.delegated_all_principals.is_empty(), "{grants:?}");
    assert!(!grants.delegated_readable);

    // ...until it has an application permission that allows it.
    control
        .add_app_permission(
            uuid(FLY_DELEGATED),
            PermissionKind::Application,
            "Directory.Read.All",
        )
        .unwrap();
    control
        .grant_admin_consent(CONTOSO, uuid(FLY_DELEGATED))
        .unwrap();
    let grants = platform
        .grants(&tenant(), &vendor("fly-delegated"))
        .await
        .unwrap();
    assert_eq!(grants.app_roles, vec!["Directory.Read.All"]);
    assert!(grants.delegated_readable);
    for scope in ["Files.ReadWrite.All", "Sites.FullControl.All", "User.Read"] {
        assert!(
            grants.delegated_all_principals.iter().any(|s| s == scope),
            "{scope} in {grants:?}"
        );
    }
}

/// Round trips of insights in contoso while `read` runs: (token requests, Graph exchanges).
async fn round_trips<F: std::future::Future>(sim: &RunningSim, read: F) -> ((u64, u64), F::Output) {
    let control = sim.control();
    let counts = || {
        let tokens = control
            .token_requests()
            .iter()
            .filter(|t| t.tenant_id == uuid(CONTOSO_ID) && t.client_id == uuid(INSIGHTS))
            .map(|t| t.count)
            .sum::<u64>();
        (
            tokens,
            control.graph_exchanges(uuid(CONTOSO_ID), uuid(INSIGHTS)),
        )
    };
    let before = counts();
    let out = read.await;
    let after = counts();
    ((after.0 - before.0, after.1 - before.1), out)
}

#[tokio::test]
async fn grants_are_read_in_one_graph_batch_after_the_token() {
    let (sim, platform) = start().await;
    let control = sim.control();
    control
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    let client = vendor("insights-m365");

    // The first checks of the process also read Graph's app roles, to name the roles by: once
    // for all the checks that start together.
    let at = tenant();
    let (trips, first) = round_trips(&sim, async {
        tokio::join!(
            platform.grants(&at, &client),
            platform.grants(&at, &client),
            platform.grants(&at, &client),
        )
    })
    .await;
    assert_eq!(trips, (3, 4));
    let first = first.0;
    // Every later one makes two sequential round trips: the token, then one `$batch` with every
    // read.
    let (trips, batched) = round_trips(&sim, platform.grants(&tenant(), &client)).await;
    let batched = batched.unwrap();
    assert_eq!(first.unwrap(), batched);
    assert_eq!(
        trips,
        (1, 1),
        "token requests and Graph exchanges of one check"
    );
    assert!(batched.service_principal.is_some());
    assert!(
        batched.app_roles.iter().any(|r| r == "Sites.Read.All"),
        "{batched:?}"
    );
    assert!(batched.delegated_readable);

    // Where Graph refuses the reads by appId (that form is UNVERIFIED for appRoleAssignments), the
    // same grants are read by object ID: the batch, then the service principal, then three reads.
    control
        .set_faults(vec![rule("/v1.0/servicePrincipals(appId=", 400)])
        .unwrap();
    let (trips, one_by_one) = round_trips(&sim, platform.grants(&tenant(), &client)).await;
    assert_eq!(one_by_one.unwrap(), batched);
    assert_eq!(trips, (1, 5));

    // A transient failure inside the batch is read again on its own, never a failed check.
    control
        .set_faults(vec![rule("/v1.0/servicePrincipals(appId=", 503)])
        .unwrap();
    assert_eq!(platform.grants(&tenant(), &client).await.unwrap(), batched);

    // After the consent is revoked the one batch shows it: nothing is granted.
    control.set_faults(Vec::new()).unwrap();
    control.revoke_consent(CONTOSO, uuid(INSIGHTS)).unwrap();
    let (trips, none) = round_trips(&sim, platform.grants(&tenant(), &client)).await;
    let none = none.unwrap();
    assert_eq!(trips, (1, 1));
    assert!(none.app_roles.is_empty(), "{none:?}");
    assert!(none.delegated_all_principals.is_empty(), "{none:?}");
}

#[tokio::test]
async fn grants_for_a_custom_app_with_its_pfx() {
    let (sim, platform) = start().await;
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(CUSTOM_APP))
        .unwrap();
    let custom = |password: &str| ClientRef::Custom {
        app_id: app(CUSTOM_APP),
        pfx: SecretSlice::from(CUSTOM_PFX.to_vec()),
        password: SecretString::from(password.to_owned()),
    };
    let grants = platform
        .grants(&tenant(), &custom(CUSTOM_PFX_PASSWORD))
        .await
        .unwrap();
    assert!(
        grants
            .app_roles
            .iter()
            .any(|r| r == "Sites.FullControl.All"),
        "{grants:?}"
    );

    let err = platform
        .grants(&tenant(), &custom("wrong password"))
        .await
        .unwrap_err();
    assert_eq!(err.cause, PlatformCause::Other, "{err}");
    assert!(err.message.contains(".pfx"), "{err}");
    assert!(!err.message.contains("wrong password"), "{err}");
}

/// A sign-in through the pages with PKCE; returns the callback query and the request used.
async fn sign_in(
    sim: &RunningSim,
    platform: &EntraPlatform,
    user: &str,
    decision: &str,
) -> (BTreeMap<String, String>, SignInRequest, Pkce) {
    let pkce = Pkce::generate();
    let req = SignInRequest {
        tenant: tenant(),
        client_id: app(INSIGHTS),
        state: random_url_safe(24),
        nonce: random_url_safe(24),
        code_challenge: pkce.challenge.clone(),
        scopes: vec!["User.Read".into()],
        login_hint: Some(user.into()),
    };
    let url = platform.sign_in_url(&req);
    let back = Browser::new(sim).sign_in_pairs(&url, user, decision).await;
    (back, req, pkce)
}

#[tokio::test]
async fn sign_in_redeem_user_facts_and_refresh() {
    let (sim, platform) = start().await;
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    let client = vendor("insights-m365");

    // The sign-in URL.
    let (_, req, pkce) = sign_in(&sim, &platform, ADMIN, "accept").await;
    let url = platform.sign_in_url(&req);
    assert!(
        url.starts_with(&format!(
            "{}/{CONTOSO_ID}/oauth2/v2.0/authorize?",
            sim.authority()
        )),
        "{url}"
    );
    let q = query_of(&url);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["response_mode"], "query");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(
        q["code_challenge"],
        pkce_challenge_s256(pkce.verifier.expose_secret())
    );
    assert_eq!(q["nonce"], req.nonce);
    assert_eq!(q["state"], req.state);
    assert_eq!(q["login_hint"], ADMIN);
    assert_eq!(q["prompt"], "select_account");
    assert_eq!(q["redirect_uri"], REDIRECT);
    let scopes: Vec<&str> = q["scope"].split(' ').collect();
    assert_eq!(
        scopes,
        vec![
            "openid",
            "offline_access",
            "profile",
            "https://graph.microsoft.com/User.Read"
        ]
    );
    let no_prompt = platform_with(&sim, &[]).with_sign_in_prompt(None);
    assert!(!query_of(&no_prompt.sign_in_url(&req)).contains_key("prompt"));

    // Through the pages, then redeemed.
    let (back, req, pkce) = sign_in(&sim, &platform, ADMIN, "accept").await;
    assert_eq!(back.get("state"), Some(&req.state));
    let code = back.get("code").expect("a code");
    let scopes = vec!["User.Read".to_owned()];
    let signed = platform
        .redeem(&tenant(), &client, code, &pkce.verifier, &scopes)
        .await
        .unwrap();
    assert_eq!(signed.object_id, ObjectId::parse(ADMIN_ID).unwrap());
    assert_eq!(signed.upn.to_string(), ADMIN);
    assert_eq!(signed.tenant, tenant().id);
    assert_eq!(signed.ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert_eq!(signed.nonce.as_deref(), Some(req.nonce.as_str()));
    assert!(
        signed.granted_scopes.iter().any(|s| s == "User.Read"),
        "{:?}",
        signed.granted_scopes
    );
    let rt1 = signed.refresh_token.clone().expect("a refresh token");
    // Debug shows no token.
    let shown = format!("{signed:?}");
    assert!(
        !shown.contains(rt1.expose_secret())
            && !shown.contains(signed.access_token.expose_secret())
    );

    // The code is single-use; a wrong verifier is refused too.
    let err = platform
        .redeem(&tenant(), &client, code, &pkce.verifier, &scopes)
        .await
        .unwrap_err();
    assert_eq!(err.cause, PlatformCause::CodeInvalid, "{err}");

    // Facts about the consent user, read with the delegated token.
    let facts = platform
        .user_facts(&tenant(), &signed.access_token)
        .await
        .unwrap();
    assert!(
        facts
            .role_template_ids
            .contains(&uuid(GLOBAL_ADMIN_TEMPLATE)),
        "{facts:?}"
    );
    assert!(
        facts.sku_part_numbers.contains("ENTERPRISEPREMIUM"),
        "{facts:?}"
    );
    assert!(
        facts.service_plans.contains("SHAREPOINTENTERPRISE"),
        "{facts:?}"
    );
    assert!(facts.group_owner, "admin owns the All Company group");
    assert!(!facts.verified_admin);

    // Refresh rotates the refresh token.
    let before = OffsetDateTime::now_utc();
    let refreshed = platform
        .refresh(&tenant(), &client, &rt1, &scopes)
        .await
        .unwrap();
    let rt2 = refreshed
        .refresh_token
        .clone()
        .expect("a rotated refresh token");
    assert_ne!(rt1.expose_secret(), rt2.expose_secret());
    assert!(
        refreshed.granted_scopes.iter().any(|s| s == "User.Read"),
        "{:?}",
        refreshed.granted_scopes
    );
    assert!(refreshed.expires_at > before + time::Duration::minutes(5));
    platform
        .refresh(&tenant(), &client, &rt2, &scopes)
        .await
        .expect("the rotated token works");
}

#[tokio::test]
async fn user_facts_of_other_users() {
    let (sim, platform) = start().await;
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    let client = vendor("insights-m365");
    let scopes = vec!["User.Read".to_owned()];
    let mut facts = BTreeMap::new();
    for user in [ENGAGE_ADMIN, USER] {
        let (back, _, pkce) = sign_in(&sim, &platform, user, "accept").await;
        let signed = platform
            .redeem(&tenant(), &client, &back["code"], &pkce.verifier, &scopes)
            .await
            .unwrap();
        assert_eq!(signed.upn.to_string(), user);
        facts.insert(
            user,
            platform
                .user_facts(&tenant(), &signed.access_token)
                .await
                .unwrap(),
        );
    }
    let engage = &facts[ENGAGE_ADMIN];
    assert!(
        engage
            .role_template_ids
            .contains(&uuid(YAMMER_ADMIN_TEMPLATE)),
        "{engage:?}"
    );
    assert!(
        engage.service_plans.contains("YAMMER_ENTERPRISE"),
        "{engage:?}"
    );
    assert!(
        engage
            .sku_part_numbers
            .contains("YAMMER_ENTERPRISE_STANDALONE")
    );
    assert!(!engage.group_owner);
    let user = &facts[USER];
    assert!(user.role_template_ids.is_empty(), "{user:?}");
    assert!(!user.group_owner);
}

#[tokio::test]
async fn refresh_failures_map_to_user_causes() {
    let (sim, platform) = start().await;
    let control = sim.control();
    control
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    let client = vendor("insights-m365");
    let scopes = vec!["User.Read".to_owned()];
    let fresh_token = || async {
        let (back, _, pkce) = sign_in(&sim, &platform, ADMIN, "accept").await;
        platform
            .redeem(&tenant(), &client, &back["code"], &pkce.verifier, &scopes)
            .await
            .unwrap()
            .refresh_token
            .unwrap()
    };

    let rt = fresh_token().await;
    control.set_user_enabled(ADMIN, false).unwrap();
    let err = platform
        .refresh(&tenant(), &client, &rt, &scopes)
        .await
        .unwrap_err();
    assert_eq!(err.cause, PlatformCause::UserDisabled, "{err}");
    assert_eq!(err.aadsts, Some(50057));
    assert_eq!(err.error.as_deref(), Some("invalid_grant"));
    assert!(!err.is_transient());
    assert!(!err.message.contains(rt.expose_secret()));
    control.set_user_enabled(ADMIN, true).unwrap();

    let rt = fresh_token().await;
    control.reset_password(ADMIN, "New-Demo-Passw0rd!").unwrap();
    let err = platform
        .refresh(&tenant(), &client, &rt, &scopes)
        .await
        .unwrap_err();
    assert_eq!(err.cause, PlatformCause::PasswordResetOrRevoked, "{err}");
    assert_eq!(err.aadsts, Some(50173));
}

#[tokio::test]
async fn credential_and_tenant_failures() {
    let (sim, platform) = start().await;
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();

    // A wrong vendor secret.
    let wrong = platform_with(&sim, &[("insights-m365", INSIGHTS, "not-the-secret")]);
    let err = wrong
        .grants(&tenant(), &vendor("insights-m365"))
        .await
        .unwrap_err();
    assert_eq!(err.cause, PlatformCause::VendorSecretInvalid, "{err}");
    assert_eq!(err.aadsts, Some(7000215));
    assert_eq!(err.error.as_deref(), Some("invalid_client"));
    assert!(!err.message.contains("not-the-secret"), "{err}");
    assert!(!format!("{wrong:?}").contains("not-the-secret"));

    // No vendor app configured for the app type.
    assert_eq!(
        platform.vendor_client_id(&CloudKey::global(), "viva-engage"),
        None
    );
    let err = platform
        .grants(&tenant(), &vendor("viva-engage"))
        .await
        .unwrap_err();
    assert_eq!(err.cause, PlatformCause::NotConfigured, "{err}");

    // The enterprise application deleted in the tenant.
    sim.control()
        .delete_service_principal(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    let err = platform
        .grants(&tenant(), &vendor("insights-m365"))
        .await
        .unwrap_err();
    assert_eq!(err.cause, PlatformCause::AppNotInTenant, "{err}");
    assert_eq!(err.aadsts, Some(7000229));
}

#[tokio::test]
async fn cancel_decline_and_admin_approval_at_microsoft() {
    let (sim, platform) = start().await;

    // Cancel on the sign-in's consent page (the app is not consented yet).
    let (back, req, _) = sign_in(&sim, &platform, ADMIN, "cancel").await;
    assert_eq!(back.get("state"), Some(&req.state));
    let err = redirect_error(&platform, &back);
    assert_eq!(err.cause, PlatformCause::Cancelled, "{err}");
    assert_eq!(err.error.as_deref(), Some("access_denied"));

    // Cancel on the admin consent page: AADSTS65004, declined.
    let url = platform.admin_consent_url(&tenant(), app(INSIGHTS), "s1");
    let back = Browser::new(&sim)
        .sign_in_pairs(&url, ADMIN, "cancel")
        .await;
    let err = redirect_error(&platform, &back);
    assert_eq!(err.cause, PlatformCause::ConsentDeclined, "{err}");
    assert_eq!(err.aadsts, Some(65004));

    // A user who is not an administrator leaves "Need admin approval".
    let back = Browser::new(&sim).sign_in_pairs(&url, USER, "back").await;
    let err = redirect_error(&platform, &back);
    assert_eq!(err.cause, PlatformCause::NeedAdminApproval, "{err}");
    assert_eq!(err.aadsts, Some(90094));

    // The free function reads the same parameters.
    let err = platform_error_from_redirect("temporarily_unavailable", None, None);
    assert_eq!(err.cause, PlatformCause::Transient);
    let err = platform_error_from_redirect(
        "access_denied",
        Some("AADSTS90095: Admin consent is required."),
        None,
    );
    assert_eq!(err.cause, PlatformCause::NeedAdminApproval);
    assert_eq!(err.aadsts, Some(90095));
}

fn rule(endpoint: &str, status: u16) -> FaultRule {
    FaultRule {
        endpoint: endpoint.into(),
        rate: 1.0,
        latency_ms: 0,
        status: Some(status),
        retry_after_secs: Some(1),
        drop_connection: false,
    }
}

#[tokio::test]
async fn throttling_and_outages_are_transient() {
    let (sim, platform) = start().await;
    let control = sim.control();
    control
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    let client = vendor("insights-m365");
    let scopes = vec!["User.Read".to_owned()];
    let (back, _, pkce) = sign_in(&sim, &platform, ADMIN, "accept").await;
    let signed = platform
        .redeem(&tenant(), &client, &back["code"], &pkce.verifier, &scopes)
        .await
        .unwrap();
    let rt = signed.refresh_token.unwrap();

    control.set_faults(vec![rule("token", 429)]).unwrap();
    let err = platform.grants(&tenant(), &client).await.unwrap_err();
    assert_eq!(err.cause, PlatformCause::Transient, "{err}");
    assert!(err.is_transient() && err.reason(None, None, None).is_none());
    let err = platform
        .refresh(&tenant(), &client, &rt, &scopes)
        .await
        .unwrap_err();
    assert_eq!(err.cause, PlatformCause::Transient, "{err}");

    control.set_faults(vec![rule("graph", 503)]).unwrap();
    let err = platform.grants(&tenant(), &client).await.unwrap_err();
    assert_eq!(err.cause, PlatformCause::Transient, "{err}");
    let err = platform
        .user_facts(&tenant(), &signed.access_token)
        .await
        .unwrap_err();
    assert_eq!(err.cause, PlatformCause::Transient, "{err}");

    // Once the fault clears, the same calls succeed.
    control.set_faults(Vec::new()).unwrap();
    platform.grants(&tenant(), &client).await.unwrap();
    platform
        .refresh(&tenant(), &client, &rt, &scopes)
        .await
        .unwrap();
}

#[test]
fn configuration_is_checked_and_secrets_stay_out_of_debug() {
    let client = EntraClient::new(EntraConfig::default()).unwrap();
    let err = EntraPlatform::new(client.clone(), "not a url".into(), BTreeMap::new()).unwrap_err();
    assert!(err.to_string().contains("redirect URI"), "{err}");

    let mut apps = BTreeMap::new();
    apps.insert(
        "insights-m365".to_owned(),
        VendorApp::with_secret(app(INSIGHTS), SecretString::from("s3cr3t-value".to_owned())),
    );
    let platform = EntraPlatform::new(client, REDIRECT.into(), apps)
        .unwrap()
        .with_sign_in_prompt(Some(Prompt::Login));
    let shown = format!("{platform:?}");
    assert!(
        shown.contains(INSIGHTS) || shown.contains("insights-m365"),
        "{shown}"
    );
    assert!(!shown.contains("s3cr3t-value"), "{shown}");

    // A PKCE challenge too short to be S256 sends the browser back to the callback with an error.
    let url = platform.sign_in_url(&SignInRequest {
        tenant: tenant(),
        client_id: app(INSIGHTS),
        state: "st".into(),
        nonce: "n".into(),
        code_challenge: "short".into(),
        scopes: vec![],
        login_hint: None,
    });
    assert!(url.starts_with(REDIRECT), "{url}");
    let q = query_of(&url);
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "st");
}

#[tokio::test]
async fn the_adapter_retries_a_short_fault_by_itself() {
    let (sim, platform) = start().await;
    let control = sim.control();
    control
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    let platform = platform.with_retry_policy(RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(100),
        max_retry_after: Duration::from_millis(600),
    });
    // Every token request is throttled until the fault clears, well before the capped
    // Retry-After (600 ms) has passed.
    control.set_faults(vec![rule("token", 429)]).unwrap();
    let clear = tokio::spawn({
        let control = sim.control();
        async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            control.set_faults(Vec::new()).unwrap();
        }
    });
    let grants = platform
        .grants(&tenant(), &vendor("insights-m365"))
        .await
        .expect("the retry after the fault cleared succeeds");
    assert!(grants.service_principal.is_some());
    clear.await.unwrap();
}

/// Signs the admin in to insights and returns the refresh token.
async fn admin_refresh_token(sim: &RunningSim, platform: &EntraPlatform) -> SecretString {
    let (back, _, pkce) = sign_in(sim, platform, ADMIN, "accept").await;
    platform
        .redeem(
            &tenant(),
            &vendor("insights-m365"),
            &back["code"],
            &pkce.verifier,
            &["User.Read".to_owned()],
        )
        .await
        .unwrap()
        .refresh_token
        .unwrap()
}

fn apply(sim: &RunningSim, op: serde_json::Value) {
    let op: entra_sim::ControlOp = serde_json::from_value(op).unwrap();
    sim.control().apply(op).unwrap();
}

#[tokio::test]
async fn mfa_conditional_access_consent_removal_and_inactivity_on_refresh() {
    let (sim, platform) = start().await;
    let control = sim.control();
    control
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    let client = vendor("insights-m365");
    let scopes = vec!["User.Read".to_owned()];
    let rt = admin_refresh_token(&sim, &platform).await;

    control.set_mfa_required(ADMIN, true).unwrap();
    let err = platform
        .refresh(&tenant(), &client, &rt, &scopes)
        .await
        .unwrap_err();
    assert_eq!(err.cause, PlatformCause::MfaRequired, "{err}");
    assert_eq!(err.aadsts, Some(50076));
    control.set_mfa_required(ADMIN, false).unwrap();

    // A policy trusting only an office range blocks the refresh from the consent's sign-in IP.
    apply(
        &sim,
        serde_json::json!({"op": "set_ca_policies", "tenant": CONTOSO,
            "policies": [{"name": "Office only", "allowed_ranges": ["203.0.113.0/24"], "action": "block"}]}),
    );
    let err = platform
        .refresh(&tenant(), &client, &rt, &scopes)
        .await
        .unwrap_err();
    assert_eq!(err.cause, PlatformCause::ConditionalAccess, "{err}");
    assert_eq!(err.aadsts, Some(53003));
    apply(
        &sim,
        serde_json::json!({"op": "set_ca_policies", "tenant": CONTOSO, "policies": []}),
    );
    platform
        .refresh(&tenant(), &client, &rt, &scopes)
        .await
        .expect("works again without the policy");

    // 90 days without use.
    control
        .advance_clock(Duration::from_secs(91 * 24 * 3600))
        .unwrap();
    let err = platform
        .refresh(&tenant(), &client, &rt, &scopes)
        .await
        .unwrap_err();
    assert_eq!(err.cause, PlatformCause::RefreshTokenInactive, "{err}");

    // Consent revoked.
    let rt = admin_refresh_token(&sim, &platform).await;
    control.revoke_consent(CONTOSO, uuid(INSIGHTS)).unwrap();
    let err = platform
        .refresh(&tenant(), &client, &rt, &scopes)
        .await
        .unwrap_err();
    assert_eq!(err.cause, PlatformCause::ConsentMissing, "{err}");
    assert_eq!(err.aadsts, Some(65001));
}

#[tokio::test]
async fn custom_app_sign_in_and_an_unregistered_certificate() {
    let (sim, platform) = start().await;
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(CUSTOM_APP))
        .unwrap();
    let custom = ClientRef::Custom {
        app_id: app(CUSTOM_APP),
        pfx: SecretSlice::from(CUSTOM_PFX.to_vec()),
        password: SecretString::from(CUSTOM_PFX_PASSWORD.to_owned()),
    };

    // A delegated sign-in to the custom app, redeemed with a certificate assertion.
    let pkce = Pkce::generate();
    let req = SignInRequest {
        tenant: tenant(),
        client_id: app(CUSTOM_APP),
        state: random_url_safe(24),
        nonce: random_url_safe(24),
        code_challenge: pkce.challenge.clone(),
        scopes: vec!["User.Read".into()],
        login_hint: None,
    };
    let back = Browser::new(&sim)
        .sign_in_pairs(&platform.sign_in_url(&req), ADMIN, "accept")
        .await;
    let signed = platform
        .redeem(
            &tenant(),
            &custom,
            &back["code"],
            &pkce.verifier,
            &["User.Read".to_owned()],
        )
        .await
        .unwrap();
    assert_eq!(signed.object_id, ObjectId::parse(ADMIN_ID).unwrap());
    let rt = signed.refresh_token.unwrap();
    platform
        .refresh(&tenant(), &custom, &rt, &["User.Read".to_owned()])
        .await
        .expect("refresh with the certificate");

    // A certificate that was never uploaded to the app.
    let now = OffsetDateTime::now_utc();
    let other = consentry_certs::generate_self_signed("CN=not registered", 1, "pw", now).unwrap();
    let err = platform
        .grants(
            &tenant(),
            &ClientRef::Custom {
                app_id: app(CUSTOM_APP),
                pfx: SecretSlice::from(other.pfx.clone()),
                password: SecretString::from("pw".to_owned()),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.cause, PlatformCause::CertificateNotRegistered, "{err}");
    assert_eq!(err.aadsts, Some(700027));
}

#[tokio::test]
async fn expired_secret_and_unknown_tenant() {
    let (sim, platform) = start().await;
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    let unknown = TenantId::parse("0badc0de-0000-4000-8000-000000000000").unwrap();
    let err = platform
        .grants(
            &TenantAt::new(unknown, CloudKey::global()),
            &vendor("insights-m365"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.cause, PlatformCause::TenantNotFound, "{err}");
    assert_eq!(err.aadsts, Some(90002));

    sim.control().expire_secret(uuid(INSIGHTS), None).unwrap();
    let err = platform
        .grants(&tenant(), &vendor("insights-m365"))
        .await
        .unwrap_err();
    assert_eq!(err.cause, PlatformCause::VendorSecretExpired, "{err}");
    assert_eq!(err.aadsts, Some(7000222));
}

#[test]
fn identity_errors_map_to_platform_causes() {
    use consentry_entra::platform::platform_error;
    use consentry_entra::{EntraError, IdentityError, TransportKind};

    let cases: &[(&str, u32, &str, PlatformCause)] = &[
        (
            "invalid_grant",
            50173,
            "",
            PlatformCause::PasswordResetOrRevoked,
        ),
        ("invalid_grant", 50057, "", PlatformCause::UserDisabled),
        ("invalid_grant", 50034, "", PlatformCause::UserNotFound),
        (
            "invalid_grant",
            50079,
            "basic_action",
            PlatformCause::MfaRequired,
        ),
        ("invalid_grant", 53003, "", PlatformCause::ConditionalAccess),
        // Controls other than the location have their own cause (and advice).
        (
            "invalid_grant",
            530032,
            "",
            PlatformCause::ConditionalAccessRequirement(CaRequirement::SecurityPolicy),
        ),
        (
            "invalid_grant",
            53000,
            "",
            PlatformCause::ConditionalAccessRequirement(CaRequirement::CompliantDevice),
        ),
        (
            "invalid_grant",
            53001,
            "",
            PlatformCause::ConditionalAccessRequirement(CaRequirement::DomainJoinedDevice),
        ),
        (
            "invalid_grant",
            53002,
            "",
            PlatformCause::ConditionalAccessRequirement(CaRequirement::ApprovedClientApp),
        ),
        (
            "invalid_grant",
            530035,
            "",
            PlatformCause::ConditionalAccessRequirement(CaRequirement::SecurityDefaults),
        ),
        (
            "invalid_grant",
            50131,
            "",
            PlatformCause::ConditionalAccessRequirement(CaRequirement::Other),
        ),
        (
            "invalid_grant",
            65001,
            "consent_required",
            PlatformCause::ConsentMissing,
        ),
        (
            "unauthorized_client",
            700016,
            "",
            PlatformCause::AppNotInTenant,
        ),
        (
            "invalid_client",
            700024,
            "",
            PlatformCause::AssertionTimeRange,
        ),
        ("invalid_grant", 54005, "", PlatformCause::CodeInvalid),
        (
            "invalid_grant",
            700082,
            "bad_token",
            PlatformCause::RefreshTokenInactive,
        ),
        ("access_denied", 90095, "", PlatformCause::NeedAdminApproval),
        ("invalid_request", 90033, "", PlatformCause::Transient),
        ("temporarily_unavailable", 0, "", PlatformCause::Transient),
        // No cause in the port for sign-in frequency or unassigned users: Other, code kept.
        ("invalid_grant", 70043, "", PlatformCause::Other),
        ("invalid_grant", 50105, "", PlatformCause::Other),
    ];
    for (error, code, suberror, cause) in cases {
        let body = serde_json::json!({
            "error": error,
            "error_description": if *code == 0 {
                "Busy. Trace ID: t Correlation ID: c".to_owned()
            } else {
                format!("AADSTS{code}: something. Trace ID: t Correlation ID: c")
            },
            "error_codes": if *code == 0 { vec![] } else { vec![*code] },
            "suberror": suberror,
        });
        let identity = IdentityError::from_json(Some(400), body.to_string().as_bytes()).unwrap();
        let mapped = platform_error(&EntraError::from(identity));
        assert_eq!(mapped.cause, *cause, "{error} {code}: {mapped:?}");
        assert_eq!(
            mapped.aadsts,
            (*code != 0).then_some(*code),
            "{error} {code}"
        );
        assert_eq!(mapped.error.as_deref(), Some(*error));
        assert!(!mapped.message.is_empty());
    }

    let transport = EntraError::Transport {
        kind: TransportKind::Timeout,
        detail: "timed out".into(),
        client_request_id: None,
    };
    assert_eq!(platform_error(&transport).cause, PlatformCause::Transient);
    let protocol = EntraError::Protocol {
        detail: "garbage".into(),
        client_request_id: None,
    };
    assert_eq!(platform_error(&protocol).cause, PlatformCause::Other);
}

#[tokio::test]
async fn a_user_s_own_consent_is_listed_per_user() {
    let (sim, platform) = start().await;
    let control = sim.control();
    // fly-delegated may read its grants once it has Directory.Read.All; the admin consents to
    // what it asks for, then it asks for one more scope that each user consents to.
    control
        .add_app_permission(
            uuid(FLY_DELEGATED),
            PermissionKind::Application,
            "Directory.Read.All",
        )
        .unwrap();
    control
        .grant_admin_consent(CONTOSO, uuid(FLY_DELEGATED))
        .unwrap();
    control
        .add_app_permission(uuid(FLY_DELEGATED), PermissionKind::Delegated, "Mail.Read")
        .unwrap();

    let pkce = Pkce::generate();
    let req = SignInRequest {
        tenant: tenant(),
        client_id: app(FLY_DELEGATED),
        state: random_url_safe(24),
        nonce: random_url_safe(24),
        code_challenge: pkce.challenge.clone(),
        scopes: vec!["User.Read".into(), "Mail.Read".into()],
        login_hint: Some(USER.into()),
    };
    let back = Browser::new(&sim)
        .sign_in_pairs(&platform.sign_in_url(&req), USER, "accept")
        .await;
    let signed = platform
        .redeem(
            &tenant(),
            &vendor("fly-delegated"),
            back.get("code").expect("a code"),
            &pkce.verifier,
            &req.scopes,
        )
        .await
        .unwrap();
    assert!(
        signed.granted_scopes.iter().any(|s| s == "Mail.Read"),
        "{:?}",
        signed.granted_scopes
    );

    let grants = platform
        .grants(&tenant(), &vendor("fly-delegated"))
        .await
        .unwrap();
    assert!(grants.delegated_readable);
    assert!(
        !grants
            .delegated_all_principals
            .iter()
            .any(|s| s == "Mail.Read"),
        "{grants:?}"
    );
    assert_eq!(grants.delegated_by_user.len(), 1, "{grants:?}");
    let (who, scopes) = &grants.delegated_by_user[0];
    assert_eq!(*who, signed.object_id);
    assert_eq!(scopes, &vec!["Mail.Read".to_owned()]);
    let effective = grants.delegated_for(Some(signed.object_id));
    assert!(
        effective.iter().any(|s| s == "Mail.Read") && effective.iter().any(|s| s == "User.Read")
    );
    assert!(!grants.delegated_for(None).iter().any(|s| s == "Mail.Read"));
}

/// Every ID-token defect entra-sim can inject is refused with its own reason, before any claim is
/// used; a clean token passes and carries the nonce sent to `/authorize`.
#[tokio::test]
async fn id_tokens_are_verified_signature_issuer_audience_validity() {
    use entra_sim::IdTokenFault as F;
    let (sim, platform) = start().await;
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    let client = vendor("insights-m365");
    let scopes = vec!["User.Read".to_owned()];

    let (back, req, pkce) = sign_in(&sim, &platform, ADMIN, "accept").await;
    let signed = platform
        .redeem(&tenant(), &client, &back["code"], &pkce.verifier, &scopes)
        .await
        .expect("a genuine ID token passes");
    assert_eq!(signed.nonce.as_deref(), Some(req.nonce.as_str()));

    let cases: &[(F, &str)] = &[
        (F::ForeignKey, "signature does not verify"),
        (F::UnknownKid, "does not publish"),
        (F::WrongAudience, "not for this app"),
        (F::WrongIssuer, "https://sts.windows.net/"),
        (F::Expired, "expired at"),
        (F::NotYetValid, "not valid before"),
    ];
    for (fault, reason) in cases {
        sim.control().set_id_token_fault(Some(*fault)).unwrap();
        let (back, _, pkce) = sign_in(&sim, &platform, ADMIN, "accept").await;
        let err = platform
            .redeem(&tenant(), &client, &back["code"], &pkce.verifier, &scopes)
            .await
            .expect_err("a defective ID token is refused");
        assert_eq!(
            err.cause,
            PlatformCause::IdTokenRejected,
            "{fault:?}: {err}"
        );
        assert_eq!(err.error.as_deref(), Some("invalid_id_token"));
        assert!(err.message.contains(reason), "{fault:?}: {}", err.message);
    }

    // The nonce is returned as found; the domain compares it (a wrong or missing one is refused
    // there, see the server's re-authorization tests).
    sim.control()
        .set_id_token_fault(Some(F::WrongNonce))
        .unwrap();
    let (back, req, pkce) = sign_in(&sim, &platform, ADMIN, "accept").await;
    let signed = platform
        .redeem(&tenant(), &client, &back["code"], &pkce.verifier, &scopes)
        .await
        .unwrap();
    assert_ne!(signed.nonce.as_deref(), Some(req.nonce.as_str()));
    sim.control().set_id_token_fault(None).unwrap();
}

#[test]
fn jwks_documents_are_read_defensively() {
    assert!(consentry_entra::parse_jwks(b"not json").is_err());
    assert!(consentry_entra::parse_jwks(br#"{"nokeys": []}"#).is_err());
    // Keys of other types, other uses or with unreadable components are skipped.
    let keys = consentry_entra::parse_jwks(
        br#"{"keys": [
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "use": "enc", "kid": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "nokey"}
        ]}"#,
    )
    .unwrap();
    assert!(keys.is_empty());
}

/// Viva Engage app (its registration asks for the Yammer scope `user_impersonation`).
const VIVA: &str = "c0de0000-0000-4000-8000-000000000014";
const YAMMER_SCOPE: &str = "https://api.yammer.com/user_impersonation";

/// Signs `user` in to the Viva Engage app with Graph and Yammer scopes and returns the refresh token.
async fn viva_refresh_token(
    sim: &RunningSim,
    platform: &EntraPlatform,
    user: &str,
) -> SecretString {
    let pkce = Pkce::generate();
    let req = SignInRequest {
        tenant: tenant(),
        client_id: app(VIVA),
        state: random_url_safe(24),
        nonce: random_url_safe(24),
        code_challenge: pkce.challenge.clone(),
        scopes: vec!["User.Read".into(), YAMMER_SCOPE.into()],
        login_hint: Some(user.into()),
    };
    let url = platform.sign_in_url(&req);
    assert!(url.contains("api.yammer.com%2Fuser_impersonation"), "{url}");
    let back = Browser::new(sim).sign_in_pairs(&url, user, "accept").await;
    let signed = platform
        .redeem(
            &tenant(),
            &vendor("viva-engage"),
            &back["code"],
            &pkce.verifier,
            &["User.Read".to_owned()],
        )
        .await
        .unwrap();
    signed.refresh_token.expect("a refresh token")
}

#[tokio::test]
async fn viva_engage_verified_admin_is_read_from_the_viva_engage_api() {
    let sim = RunningSim::start(Scenario::contoso(), SimOptions::default())
        .await
        .unwrap();
    let platform = platform_with(
        &sim,
        &[
            ("viva-engage", VIVA, "demo-secret-viva-engage"),
            ("insights-m365", INSIGHTS, "demo-secret-insights-m365"),
        ],
    );
    let client = vendor("viva-engage");
    let rt = viva_refresh_token(&sim, &platform, ENGAGE_ADMIN).await;
    let facts = platform
        .viva_engage_facts(&tenant(), &client, &rt)
        .await
        .unwrap();
    assert!(
        facts.verified_admin,
        "the scenario makes Lidia a verified admin"
    );
    assert_eq!(facts.granted_scopes, [YAMMER_SCOPE]);

    // Taken away in Viva Engage: read as such.
    sim.control()
        .set_viva_engage_verified_admin(ENGAGE_ADMIN, false)
        .unwrap();
    let facts = platform
        .viva_engage_facts(&tenant(), &client, &rt)
        .await
        .unwrap();
    assert!(!facts.verified_admin);

    // Viva Engage down: transient, never "not verified".
    sim.control()
        .set_faults(vec![FaultRule {
            endpoint: "yammer".into(),
            rate: 1.0,
            latency_ms: 0,
            status: Some(503),
            retry_after_secs: None,
            drop_connection: false,
        }])
        .unwrap();
    let e = platform
        .viva_engage_facts(&tenant(), &client, &rt)
        .await
        .unwrap_err();
    assert_eq!(e.cause, PlatformCause::Transient, "{e:?}");
    assert!(e.is_transient());
    sim.control().set_faults(vec![]).unwrap();

    // An app whose consent does not cover Viva Engage gets no token for it: definitive.
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    let (back, _, pkce) = sign_in(&sim, &platform, ENGAGE_ADMIN, "accept").await;
    let signed = platform
        .redeem(
            &tenant(),
            &vendor("insights-m365"),
            &back["code"],
            &pkce.verifier,
            &["User.Read".to_owned()],
        )
        .await
        .unwrap();
    let e = platform
        .viva_engage_facts(
            &tenant(),
            &vendor("insights-m365"),
            signed.refresh_token.as_ref().unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.cause, PlatformCause::ConsentMissing, "{e:?}");
    assert_eq!(e.aadsts, Some(65001));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_graph_token_is_refused_by_the_viva_engage_api() {
    let sim = RunningSim::start(Scenario::contoso(), SimOptions::default())
        .await
        .unwrap();
    let platform = platform_with(&sim, &[("viva-engage", VIVA, "demo-secret-viva-engage")]);
    let rt = viva_refresh_token(&sim, &platform, ENGAGE_ADMIN).await;
    // A Graph access token from the same refresh token.
    let graph = platform
        .refresh(
            &tenant(),
            &vendor("viva-engage"),
            &rt,
            &["User.Read".to_owned()],
        )
        .await
        .unwrap();
    let e = platform
        .client()
        .viva_engage_current_user(&graph.access_token)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            consentry_entra::EntraError::VivaEngage { status: 401, .. }
        ),
        "{e:?}"
    );
    assert!(!e.is_transient());
    sim.shutdown().await;
}
