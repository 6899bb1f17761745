//! Who may do what, through the real server on loopback: every `/api/v1` route and every console page
//! and form, called by every kind of principal, with the IDs of organization A, of organization B, a
//! mix of both (A's organization with B's entity) and guessed random IDs, each answer's status asserted
//! exactly. No account or key of one organization reads or changes another's data (it is "not found"),
//! viewers change nothing (403), service API keys work only on the token API (403 elsewhere), and no
//! answer to A's principals carries B's names.
//!
//! The tables must name every route: a route added to the router (`router.rs`, `console/mod.rs`) but
//! not to [`API_TABLE`] or [`CONSOLE_TABLE`] fails [`every_route_is_in_the_tables`].

use std::collections::BTreeSet;

use consentry_domain::account::csrf_token_for;
use consentry_domain::{
    AccountScope, Action, DomainName, NewProfile, OperatorAccount, OrgId, ProfileId, Role,
    StartRequest, TenantId, TenantRef, Webhook,
};
use consentry_testkit::TestEnv;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret as _, SecretSlice, SecretString};
use serde_json::{Value, json};

const APP_TYPE: &str = "insights-m365";
const PASSWORD: &str = "access-matrix-password";

/// One organization's fixtures.
#[derive(Debug, Clone)]
struct OrgData {
    org: String,
    name: String,
    tenant: String,
    domain: String,
    profile: String,
    webhook: String,
    webhook_url: String,
    key_name: String,
    key_id: String,
    /// A Microsoft 365 (All permissions) profile, to be a scan profile's app profile.
    m365: String,
    /// A scan profile using it.
    scan: String,
    /// A consent campaign of its invalid profiles.
    campaign: String,
}

/// Which IDs fill a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    A,
    B,
    /// A's organization with B's other IDs (copied IDs).
    Mixed,
    /// Guessed IDs that exist nowhere.
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Operator,
    AdminA,
    ViewerA,
    KeyA,
    AdminB,
    Anonymous,
    Revoked,
    /// A's admin's console session cookie, sent to the API.
    CookieA,
    /// The platform operator's console account (console only).
    PlatformUser,
}

const API_PRINCIPALS: [Who; 8] = [
    Who::Operator,
    Who::AdminA,
    Who::ViewerA,
    Who::KeyA,
    Who::AdminB,
    Who::Anonymous,
    Who::Revoked,
    Who::CookieA,
];

const CONSOLE_PRINCIPALS: [Who; 7] = [
    Who::PlatformUser,
    Who::AdminA,
    Who::ViewerA,
    Who::AdminB,
    Who::Anonymous,
    Who::Operator,
    Who::Revoked,
];

impl Who {
    /// The organization it belongs to (`None`: the platform).
    fn org(self) -> Option<Target> {
        match self {
            Who::AdminA | Who::ViewerA | Who::KeyA | Who::CookieA => Some(Target::A),
            Who::AdminB => Some(Target::B),
            _ => None,
        }
    }
    fn is_a(self) -> bool {
        self.org() == Some(Target::A)
    }
}

/// Something a route needs made before each call, because the call consumes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    No,
    /// A new profile in the target's tenant.
    Profile,
    /// A new profile with a re-authorization pending.
    PendingProfile,
    /// A new webhook of the target's organization.
    Webhook,
    /// A new service key of the target's organization.
    Key,
    /// A new scan profile in the target's tenant.
    Scan,
    /// A new consent campaign of the target's organization.
    Campaign,
}

struct ApiRoute {
    method: &'static str,
    /// Under `/api/v1`, with `{org}`, `{tenant}`, `{profile}`, `{webhook}`, `{key}`, `{scan}`,
    /// `{app_type}` (and `{m365}` in bodies: the target's app profile for scan profiles).
    path: &'static str,
    /// `None`: the route takes no organization's ID.
    action: Option<Action>,
    /// The body, with the same placeholders (and `{fresh}` for a unique value).
    body: Option<&'static str>,
    /// The answer when allowed.
    ok: StatusCode,
    fresh: Fresh,
}

const fn r(
    method: &'static str,
    path: &'static str,
    action: Option<Action>,
    body: Option<&'static str>,
    ok: StatusCode,
    fresh: Fresh,
) -> ApiRoute {
    ApiRoute {
        method,
        path,
        action,
        body,
        ok,
        fresh,
    }
}

const READ: Option<Action> = Some(Action::Read);

/// Every `/api/v1` route but the token API (tested by [`the_token_api_takes_only_service_keys`]).
/// Deleting an organization or tenant that still has tenants or profiles is refused with 409 after the
/// authorization passed; deleting empty ones is shown in [`admins_delete_their_own_empty_tenants`].
const API_TABLE: &[ApiRoute] = &[
    r("GET", "", None, None, StatusCode::OK, Fresh::No),
    r("GET", "/catalog", None, None, StatusCode::OK, Fresh::No),
    // Every caller sees the rollouts, over the profiles of the organizations it sees.
    r("GET", "/rollouts", None, None, StatusCode::OK, Fresh::No),
    r(
        "GET",
        "/rollouts/{rollout}",
        None,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "GET",
        "/rollouts/{rollout}/export",
        None,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r("GET", "/campaigns", None, None, StatusCode::OK, Fresh::No),
    r(
        "POST",
        "/campaigns",
        Some(Action::Reauthorize),
        Some(r#"{"scope": "invalid", "organization_id": "{org}", "send_invitations": false}"#),
        StatusCode::CREATED,
        Fresh::No,
    ),
    r(
        "GET",
        "/campaigns/{campaign}",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "POST",
        "/campaigns/{campaign}/cancel",
        Some(Action::Reauthorize),
        None,
        StatusCode::OK,
        Fresh::Campaign,
    ),
    r(
        "GET",
        "/campaigns/{campaign}/tenants/{tenant}/link",
        Some(Action::Reauthorize),
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    // Email is not configured in the matrix: an allowed re-send is refused for that.
    r(
        "POST",
        "/campaigns/{campaign}/tenants/{tenant}/resend",
        Some(Action::Reauthorize),
        None,
        StatusCode::CONFLICT,
        Fresh::No,
    ),
    r(
        "GET",
        "/catalog/app-types/{app_type}",
        None,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "GET",
        "/organizations",
        None,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "POST",
        "/organizations",
        Some(Action::ManagePlatform),
        Some(r#"{"name": "New org {fresh}"}"#),
        StatusCode::CREATED,
        Fresh::No,
    ),
    r(
        "GET",
        "/organizations/{org}",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "PATCH",
        "/organizations/{org}",
        Some(Action::ManageSettings),
        Some(r#"{"modules": ["teams"]}"#),
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "DELETE",
        "/organizations/{org}",
        Some(Action::ManagePlatform),
        None,
        StatusCode::CONFLICT,
        Fresh::No,
    ),
    r(
        "POST",
        "/organizations/{org}/invitations",
        Some(Action::ManagePlatform),
        Some("{}"),
        StatusCode::CREATED,
        Fresh::No,
    ),
    r("GET", "/tenants", None, None, StatusCode::OK, Fresh::No),
    r(
        "GET",
        "/tenants?org={org}",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    // Typing a tenant ID is the platform operator's: an organization's admin connects by consent.
    r(
        "POST",
        "/tenants",
        Some(Action::ConnectTypedTenant),
        Some(
            r#"{"org_id": "{org}", "tenant_id": "{fresh_guid}", "primary_domain": "t{fresh}.onmicrosoft.com", "cloud": "global"}"#,
        ),
        StatusCode::CREATED,
        Fresh::No,
    ),
    r(
        "GET",
        "/tenants/{tenant}",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "GET",
        "/tenants/{domain}",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "DELETE",
        "/tenants/{tenant}",
        Some(Action::ManageProfiles),
        None,
        StatusCode::CONFLICT,
        Fresh::No,
    ),
    r("GET", "/profiles", None, None, StatusCode::OK, Fresh::No),
    r(
        "GET",
        "/profiles?org={org}",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "GET",
        "/profiles?tenant={tenant}",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "POST",
        "/profiles",
        Some(Action::ManageProfiles),
        Some(r#"{"tenant": "{tenant}", "app_type": "{app_type}"}"#),
        StatusCode::CREATED,
        Fresh::No,
    ),
    r(
        "GET",
        "/profiles/{profile}",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "DELETE",
        "/profiles/{profile}",
        Some(Action::ManageProfiles),
        None,
        StatusCode::NO_CONTENT,
        Fresh::Profile,
    ),
    r(
        "GET",
        "/profiles/{profile}/history",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "POST",
        "/profiles/{profile}/check",
        Some(Action::Check),
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "POST",
        "/profiles/{profile}/reauthorize",
        Some(Action::Reauthorize),
        Some(r#"{"method": "admin"}"#),
        StatusCode::OK,
        Fresh::Profile,
    ),
    r(
        "POST",
        "/profiles/{profile}/reauthorize/cancel",
        Some(Action::Reauthorize),
        None,
        StatusCode::OK,
        Fresh::PendingProfile,
    ),
    r(
        "GET",
        "/organizations/{org}/webhooks",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "POST",
        "/organizations/{org}/webhooks",
        Some(Action::ManageSettings),
        Some(r#"{"url": "https://hooks.example/{fresh}"}"#),
        StatusCode::CREATED,
        Fresh::No,
    ),
    r(
        "DELETE",
        "/organizations/{org}/webhooks/{webhook}",
        Some(Action::ManageSettings),
        None,
        StatusCode::NO_CONTENT,
        Fresh::Webhook,
    ),
    r(
        "GET",
        "/organizations/{org}/keys",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "POST",
        "/organizations/{org}/keys",
        Some(Action::ManageSettings),
        Some(r#"{"name": "key {fresh}"}"#),
        StatusCode::CREATED,
        Fresh::No,
    ),
    r(
        "DELETE",
        "/organizations/{org}/keys/{key}",
        Some(Action::ManageSettings),
        None,
        StatusCode::NO_CONTENT,
        Fresh::Key,
    ),
    r(
        "GET",
        "/organizations/{org}/audit",
        Some(Action::ReadAudit),
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "GET",
        "/organizations/{org}/audit/export?format=csv",
        Some(Action::ReadAudit),
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "GET",
        "/tenants/{tenant}/scan-profiles",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "POST",
        "/tenants/{tenant}/scan-profiles",
        Some(Action::ManageProfiles),
        Some(
            r#"{"name": "Scan {fresh}", "authentication": {"method": "app_profile", "app_profile": "{m365}"}}"#,
        ),
        StatusCode::CREATED,
        Fresh::No,
    ),
    r(
        "GET",
        "/tenants/{tenant}/planner-readiness",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "GET",
        "/scan-profiles/{scan}",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "PUT",
        "/scan-profiles/{scan}",
        Some(Action::ManageProfiles),
        Some(r#"{"name": "Scan {fresh}"}"#),
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "DELETE",
        "/scan-profiles/{scan}",
        Some(Action::ManageProfiles),
        None,
        StatusCode::NO_CONTENT,
        Fresh::Scan,
    ),
    r(
        "GET",
        "/scan-profiles/{scan}/planner-readiness",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "GET",
        "/tenants/{tenant}/contacts",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "PUT",
        "/tenants/{tenant}/contacts",
        Some(Action::ManageSettings),
        Some(r#"{"contacts": ["it-admin-{fresh}@contoso.example"]}"#),
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "GET",
        "/tenants/{tenant}/emails",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "GET",
        "/organizations/{org}/digest",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "PUT",
        "/organizations/{org}/digest",
        Some(Action::ManageSettings),
        Some(r#"{"recipients": ["ops-{fresh}@vendor.example"]}"#),
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "GET",
        "/organizations/{org}/microsoft-sign-in",
        READ,
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    r(
        "PUT",
        "/organizations/{org}/microsoft-sign-in",
        Some(Action::ManageSettings),
        Some(r#"{"members_without_admin_role": "viewer"}"#),
        StatusCode::OK,
        Fresh::No,
    ),
];

/// The token API: service API keys only (listed for the route check).
const TOKEN_API: (&str, &str) = ("POST", "/tenants/{tenant}/tokens");

/// The API's description and its Swagger UI: public (they describe the API and reveal no data), so
/// every principal, anonymous or with any token, gets them ([`the_apis_description_is_public`]).
const PUBLIC_API: &[(&str, &str)] = &[
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/swagger-ui-bundle.js"),
];

struct ConsoleRoute {
    method: &'static str,
    /// Under `/console`, with `{profile}` and `{token}`.
    path: &'static str,
    /// `None`: any signed-in account (no organization's data).
    action: Option<Action>,
    /// The answer when allowed.
    ok: StatusCode,
    fresh: Fresh,
}

const fn c(
    method: &'static str,
    path: &'static str,
    action: Option<Action>,
    ok: StatusCode,
    fresh: Fresh,
) -> ConsoleRoute {
    ConsoleRoute {
        method,
        path,
        action,
        ok,
        fresh,
    }
}

/// Every console page and form but sign-in, sign-out and the static files (tested in
/// [`sign_in_sign_out_and_static_files_need_no_role`]).
const CONSOLE_TABLE: &[ConsoleRoute] = &[
    c("GET", "", None, StatusCode::OK, Fresh::No),
    c("GET", "/profiles", None, StatusCode::OK, Fresh::No),
    c(
        "GET",
        "/profiles/{profile}",
        READ,
        StatusCode::OK,
        Fresh::No,
    ),
    c(
        "POST",
        "/profiles/{profile}/check",
        Some(Action::Check),
        StatusCode::SEE_OTHER,
        Fresh::No,
    ),
    c(
        "POST",
        "/profiles/{profile}/cancel",
        Some(Action::Reauthorize),
        StatusCode::SEE_OTHER,
        Fresh::PendingProfile,
    ),
    c(
        "GET",
        "/profiles/{profile}/reauthorize",
        Some(Action::Reauthorize),
        StatusCode::OK,
        Fresh::No,
    ),
    c(
        "POST",
        "/profiles/{profile}/reauthorize",
        Some(Action::Reauthorize),
        StatusCode::SEE_OTHER,
        Fresh::Profile,
    ),
    // Every account sees the rollouts, over the profiles of the organizations it sees.
    c("GET", "/rollouts", None, StatusCode::OK, Fresh::No),
    c(
        "GET",
        "/rollouts/{rollout}",
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    c(
        "GET",
        "/rollouts/{rollout}/export",
        None,
        StatusCode::OK,
        Fresh::No,
    ),
    c("GET", "/campaigns", None, StatusCode::OK, Fresh::No),
    // The form names the target's organization (`org`).
    c(
        "POST",
        "/campaigns",
        Some(Action::Reauthorize),
        StatusCode::SEE_OTHER,
        Fresh::No,
    ),
    c(
        "GET",
        "/campaigns/{campaign}",
        READ,
        StatusCode::OK,
        Fresh::No,
    ),
    c(
        "POST",
        "/campaigns/{campaign}/cancel",
        Some(Action::Reauthorize),
        StatusCode::SEE_OTHER,
        Fresh::Campaign,
    ),
    c(
        "POST",
        "/campaigns/{campaign}/tenants/{tenant}/resend",
        Some(Action::Reauthorize),
        StatusCode::CONFLICT,
        Fresh::No,
    ),
    // The form names the target's organization (`org`); allowed, it goes to Microsoft's sign-in.
    c(
        "POST",
        "/tenants/connect",
        Some(Action::ManageProfiles),
        StatusCode::SEE_OTHER,
        Fresh::No,
    ),
    // The matrix's form chooses no app type: refused after the authorization passed.
    c(
        "POST",
        "/tenants/{tenant}/profiles",
        Some(Action::ManageProfiles),
        StatusCode::BAD_REQUEST,
        Fresh::No,
    ),
    c(
        "POST",
        "/tenants/{tenant}/reauthorize-all",
        Some(Action::Reauthorize),
        StatusCode::SEE_OTHER,
        Fresh::No,
    ),
    c("GET", "/tokens", None, StatusCode::OK, Fresh::No),
    c("POST", "/tokens", None, StatusCode::CREATED, Fresh::No),
    c(
        "POST",
        "/tokens/{token}/revoke",
        None,
        StatusCode::SEE_OTHER,
        Fresh::No,
    ),
    c(
        "GET",
        "/organizations/{org}/audit",
        Some(Action::ReadAudit),
        StatusCode::OK,
        Fresh::No,
    ),
    c(
        "GET",
        "/organizations/{org}/audit/export?format=jsonl",
        Some(Action::ReadAudit),
        StatusCode::OK,
        Fresh::No,
    ),
    c(
        "GET",
        "/tenants/{tenant}/scan-profiles",
        READ,
        StatusCode::OK,
        Fresh::No,
    ),
    c(
        "GET",
        "/scan-profiles/{scan}",
        READ,
        StatusCode::OK,
        Fresh::No,
    ),
    c(
        "GET",
        "/scan-profiles/{scan}/edit",
        Some(Action::ManageProfiles),
        StatusCode::OK,
        Fresh::No,
    ),
    c(
        "POST",
        "/scan-profiles/{scan}/edit",
        Some(Action::ManageProfiles),
        StatusCode::SEE_OTHER,
        Fresh::No,
    ),
    // The platform operator's page of the vendor's own registrations.
    c(
        "GET",
        "/vendor-apps",
        Some(Action::ReadVendorApps),
        StatusCode::OK,
        Fresh::No,
    ),
    c(
        "GET",
        "/tenants/{tenant}/email",
        READ,
        StatusCode::OK,
        Fresh::No,
    ),
    c(
        "POST",
        "/tenants/{tenant}/contacts",
        Some(Action::ManageSettings),
        StatusCode::SEE_OTHER,
        Fresh::No,
    ),
];

/// Routes outside the tables, each with the test that covers it.
const CONSOLE_ELSEWHERE: &[(&str, &str)] = &[
    // Redirects an organization's account to its log, lists organizations for the platform
    // (`audit_api.rs`).
    ("GET", "/audit"),
    // Invitation links need no account: the token is the authorization (`invitations.rs`).
    ("GET", "/invitations/{token}"),
    ("POST", "/invitations/{token}"),
    // Microsoft's answers to "Connect a Microsoft tenant" (`connect.rs`).
    ("GET", "/tenants/connect/callback"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    // "Sign in with Microsoft" (before any session; `microsoft_sign_in.rs`).
    ("GET", "/sign-in/microsoft"),
    ("GET", "/sign-in/microsoft/callback"),
    ("GET", "/static/{file}"),
];

struct World {
    env: TestEnv,
    a: OrgData,
    b: OrgData,
    operator_token: String,
    admin_a: (OperatorAccount, String, String),
    viewer_a: (OperatorAccount, String, String),
    admin_b: (OperatorAccount, String, String),
    platform_user: (OperatorAccount, String, String),
    key_a: String,
    revoked: String,
    no_redirects: reqwest::Client,
}

fn fresh() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

async fn org_data(env: &TestEnv, label: &str) -> OrgData {
    let svc = &env.state.svc;
    let name = format!("{label} Org {}", fresh());
    let org = svc
        .create_organization(&name, &["teams".to_string()])
        .await
        .expect("org");
    let domain = format!("{}-{}.onmicrosoft.com", label.to_lowercase(), fresh());
    let t = svc
        .connect_tenant(
            org.id,
            TenantId::parse(&uuid::Uuid::new_v4().to_string()).expect("guid"),
            DomainName::parse(&domain).expect("domain"),
            Some(&format!("{label} Tenant Display")),
            consentry_domain::Placement::In(&consentry_domain::CloudKey::global()),
        )
        .await
        .expect("tenant");
    let p = new_profile(env, &t.id.to_string()).await;
    let webhook_url = format!("https://{}-hooks.example/{}", label.to_lowercase(), fresh());
    let webhook = new_webhook(env, org.id, &webhook_url).await;
    let key_name = format!("{label} service key {}", fresh());
    let (key_id, _) = new_key(env, org.id, &key_name).await;
    let m365 = env
        .state
        .svc
        .create_profile(
            NewProfile {
                tenant: TenantRef::Id(t.id),
                app_type: "m365-all".into(),
                service: Some("cloud-backup-m365".into()),
            },
            &consentry_domain::Actor::Operator("test".into()),
        )
        .await
        .expect("m365 profile");
    // The scan profile's app profile must not be Invalid; its consent is not what this test is about.
    let mut valid = m365.clone();
    valid.status = consentry_domain::ProfileStatus::Valid;
    valid.reason = None;
    env.state
        .svc
        .store()
        .save_profile(&valid, None)
        .await
        .expect("mark valid");
    let m365 = m365.id.to_string();
    let scan = new_scan(env, &t.id.to_string(), &m365).await;
    let campaign = new_campaign(env, org.id).await;
    OrgData {
        campaign,
        org: org.id.to_string(),
        name,
        tenant: t.id.to_string(),
        domain,
        profile: p,
        webhook,
        webhook_url,
        key_name,
        key_id,
        m365,
        scan,
    }
}

async fn new_scan(env: &TestEnv, tenant: &str, app_profile: &str) -> String {
    consentry_domain::ScanProfiles::new(env.state.svc.clone())
        .create(consentry_domain::NewScanProfile {
            tenant: TenantRef::parse(tenant).expect("tenant"),
            name: format!("Scan {}", fresh()),
            modules: vec![],
            authentication: consentry_domain::ScanAuth::AppProfile {
                app_profile: ProfileId::parse(app_profile).expect("profile"),
            },
            planner_backup_enabled: false,
        })
        .await
        .expect("scan profile")
        .id
        .to_string()
}

async fn new_campaign(env: &TestEnv, org: OrgId) -> String {
    env.state
        .campaigns
        .start(
            &consentry_domain::Caller::platform("test"),
            consentry_domain::CampaignRequest {
                org: Some(org),
                scope: consentry_domain::CampaignScope::Invalid,
                tenant: None,
                lifetime_days: None,
                remind_every_hours: None,
                send_invitations: false,
            },
        )
        .await
        .expect("campaign")
        .campaign
        .id
        .to_string()
}

async fn new_profile(env: &TestEnv, tenant: &str) -> String {
    env.state
        .svc
        .create_profile(
            NewProfile {
                tenant: TenantRef::parse(tenant).expect("tenant"),
                app_type: APP_TYPE.into(),
                service: None,
            },
            &consentry_domain::Actor::Operator("test".into()),
        )
        .await
        .expect("profile")
        .id
        .to_string()
}

async fn new_pending_profile(env: &TestEnv, tenant: &str) -> String {
    let id = new_profile(env, tenant).await;
    env.state
        .reauth
        .start_unbound(
            ProfileId::parse(&id).expect("id"),
            StartRequest {
                method: "admin".parse().expect("method"),
                custom_app: None,
                functions: vec![],
                scan_targets: vec![],
                login_hint: None,
                handoff: false,
            },
            &consentry_domain::Actor::Operator("test".into()),
        )
        .await
        .expect("start");
    id
}

async fn new_webhook(env: &TestEnv, org: OrgId, url: &str) -> String {
    let hook = Webhook {
        id: consentry_domain::WebhookId::new_random(),
        org_id: org,
        url: url.into(),
        created_at: time::OffsetDateTime::now_utc(),
    };
    env.state
        .svc
        .store()
        .insert_webhook(&hook, &SecretSlice::from(b"whsec_test".to_vec()))
        .await
        .expect("webhook");
    hook.id.to_string()
}

async fn new_key(env: &TestEnv, org: OrgId, name: &str) -> (String, String) {
    let key = consentry_domain::keys::new_api_key();
    let record = consentry_domain::ApiKey {
        id: consentry_domain::ApiKeyId::new_random(),
        org_id: org,
        name: name.into(),
        key_hash: consentry_domain::keys::key_hash(&key),
        created_at: time::OffsetDateTime::now_utc(),
        revoked_at: None,
        last_used_at: None,
    };
    env.state
        .svc
        .store()
        .insert_api_key(&record)
        .await
        .expect("key");
    (record.id.to_string(), key)
}

/// An account with a personal access token and a console session: (account, token, session token).
async fn principal(
    env: &TestEnv,
    name: &str,
    scope: AccountScope,
    role: Role,
) -> (OperatorAccount, String, String) {
    let accounts = &env.state.console.accounts;
    let pw = SecretString::from(PASSWORD.to_string());
    let a = accounts
        .create_with_role(name, &pw, scope, role)
        .await
        .expect("account");
    let (_, token) = accounts
        .create_token(&a, "matrix", time::Duration::days(1))
        .await
        .expect("token");
    let session = accounts
        .sign_in(name, &pw, None)
        .await
        .expect("sign in")
        .expect("signed in");
    (
        a,
        token.expose_secret().to_string(),
        session.token.expose_secret().to_string(),
    )
}

async fn world() -> World {
    let env = TestEnv::start().await;
    let a = org_data(&env, "Alpha").await;
    let b = org_data(&env, "Bravo").await;
    let org_a = AccountScope::Organization(OrgId::parse(&a.org).expect("org"));
    let org_b = AccountScope::Organization(OrgId::parse(&b.org).expect("org"));
    let admin_a = principal(&env, "alpha-admin", org_a, Role::Admin).await;
    let viewer_a = principal(&env, "alpha-viewer", org_a, Role::Viewer).await;
    let admin_b = principal(&env, "bravo-admin", org_b, Role::Admin).await;
    let platform_user = principal(&env, "root", AccountScope::Platform, Role::Admin).await;
    let accounts = &env.state.console.accounts;
    let (t, revoked) = accounts
        .create_token(&admin_a.0, "revoked", time::Duration::days(1))
        .await
        .expect("token");
    accounts
        .revoke_token(admin_a.0.id, t.id)
        .await
        .expect("revoke");
    let (_, key_a) = new_key(&env, OrgId::parse(&a.org).expect("org"), "alpha key").await;
    World {
        operator_token: env.token.clone(),
        env,
        a,
        b,
        admin_a,
        viewer_a,
        admin_b,
        platform_user,
        key_a,
        revoked: revoked.expose_secret().to_string(),
        no_redirects: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
    }
}

impl World {
    fn data(&self, t: Target) -> Option<&OrgData> {
        match t {
            Target::A => Some(&self.a),
            Target::B | Target::Mixed => Some(&self.b),
            Target::Random => None,
        }
    }

    /// Fills a template: `{org}` from the target's organization (A's for `Mixed`), the rest from the
    /// target's entities (B's for `Mixed`), random for `Random`.
    fn fill(&self, template: &str, t: Target, fresh_profile: Option<&str>) -> String {
        let random = || uuid::Uuid::new_v4().to_string();
        let org = match t {
            Target::A | Target::Mixed => self.a.org.clone(),
            Target::B => self.b.org.clone(),
            Target::Random => OrgId::new_random().to_string(),
        };
        let d = self.data(t);
        let pick = |f: fn(&OrgData) -> String, r: String| d.map(f).unwrap_or(r);
        template
            .replace("{org}", &org)
            .replace("{tenant}", &pick(|d| d.tenant.clone(), random()))
            .replace(
                "{domain}",
                &pick(|d| d.domain.clone(), format!("{}.onmicrosoft.com", fresh())),
            )
            .replace(
                "{profile}",
                &fresh_profile.map(str::to_string).unwrap_or_else(|| {
                    pick(|d| d.profile.clone(), ProfileId::new_random().to_string())
                }),
            )
            .replace("{webhook}", &pick(|d| d.webhook.clone(), random()))
            .replace("{key}", &pick(|d| d.key_id.clone(), random()))
            .replace("{scan}", &pick(|d| d.scan.clone(), random()))
            // A campaign is an organization's like `{org}`: A's for `Mixed`, so that a copied
            // tenant of B is asked of A's campaign.
            .replace(
                "{campaign}",
                &match t {
                    Target::Mixed => self.a.campaign.clone(),
                    _ => pick(|d| d.campaign.clone(), random()),
                },
            )
            .replace("{m365}", &pick(|d| d.m365.clone(), random()))
            .replace("{app_type}", APP_TYPE)
            // The built-in catalog's rollout (version 2 added Planner's Tasks.ReadWrite.All).
            .replace("{rollout}", "2")
            .replace("{fresh_guid}", &random())
            .replace("{fresh}", &fresh())
    }

    fn bearer(&self, who: Who) -> Option<&str> {
        match who {
            Who::Operator => Some(&self.operator_token),
            Who::AdminA => Some(&self.admin_a.1),
            Who::ViewerA => Some(&self.viewer_a.1),
            Who::AdminB => Some(&self.admin_b.1),
            Who::PlatformUser => Some(&self.platform_user.1),
            Who::KeyA => Some(&self.key_a),
            Who::Revoked => Some(&self.revoked),
            Who::Anonymous | Who::CookieA => None,
        }
    }

    fn session(&self, who: Who) -> Option<&str> {
        match who {
            Who::AdminA | Who::CookieA => Some(&self.admin_a.2),
            Who::ViewerA => Some(&self.viewer_a.2),
            Who::AdminB => Some(&self.admin_b.2),
            Who::PlatformUser => Some(&self.platform_user.2),
            _ => None,
        }
    }

    /// B's names, which no answer to A's principals may carry.
    fn b_names(&self) -> [&str; 5] {
        [
            &self.b.name,
            &self.b.domain,
            "Bravo Tenant Display",
            &self.b.webhook_url,
            &self.b.key_name,
        ]
    }

    /// Makes what the route consumes; returns the profile ID (if one) and the ID in the template
    /// slot it replaces.
    async fn make_fresh(&self, what: Fresh, t: Target) -> Option<(String, String)> {
        let d = self.data(t)?;
        let org = OrgId::parse(&d.org).expect("org");
        match what {
            Fresh::No => None,
            Fresh::Profile => Some(("{profile}".into(), new_profile(&self.env, &d.tenant).await)),
            Fresh::PendingProfile => Some((
                "{profile}".into(),
                new_pending_profile(&self.env, &d.tenant).await,
            )),
            Fresh::Webhook => Some((
                "{webhook}".into(),
                new_webhook(
                    &self.env,
                    org,
                    &format!("https://fresh.example/{}", fresh()),
                )
                .await,
            )),
            Fresh::Key => Some(("{key}".into(), new_key(&self.env, org, "fresh").await.0)),
            Fresh::Scan => Some((
                "{scan}".into(),
                new_scan(&self.env, &d.tenant, &d.m365).await,
            )),
            Fresh::Campaign => Some(("{campaign}".into(), new_campaign(&self.env, org).await)),
        }
    }
}

fn targets_of(template: &str, body: Option<&str>) -> Vec<Target> {
    let all = format!("{template} {}", body.unwrap_or_default());
    let slots = [
        "{org}",
        "{tenant}",
        "{domain}",
        "{profile}",
        "{webhook}",
        "{key}",
        "{scan}",
        "{campaign}",
    ]
    .iter()
    .filter(|s| all.contains(**s))
    .count();
    match slots {
        0 => vec![Target::A],
        1 => vec![Target::A, Target::B, Target::Random],
        _ => vec![Target::A, Target::B, Target::Mixed, Target::Random],
    }
}

/// The one expectation for an API call, from the rules in `docs/ARCHITECTURE.md` ("Who may do what").
fn expected_api(route: &ApiRoute, t: Target, who: Who) -> StatusCode {
    match who {
        Who::Anonymous | Who::Revoked | Who::CookieA => return StatusCode::UNAUTHORIZED,
        Who::KeyA => return StatusCode::FORBIDDEN,
        _ => {}
    }
    let Some(action) = route.action else {
        return route.ok;
    };
    let names_an_id = targets_of(route.path, route.body).len() > 1;
    // The organization named (A's for Mixed) must be visible…
    let org_visible = match (who, t) {
        _ if !names_an_id => true,
        (_, Target::Random) => false,
        (Who::Operator | Who::PlatformUser, _) => true,
        (w, Target::Mixed) => w.is_a(),
        (w, t) => w.org() == Some(t),
    };
    if !org_visible {
        return StatusCode::NOT_FOUND;
    }
    // …then the role decides…
    let role_ok = match (who, action) {
        (Who::Operator | Who::PlatformUser, _) => true,
        (_, Action::Read) => true,
        (_, Action::ManagePlatform | Action::ConnectTypedTenant) => false,
        (Who::ViewerA, _) => false,
        _ => true,
    };
    if !role_ok {
        return StatusCode::FORBIDDEN;
    }
    // …then a copied ID of another organization is not found.
    if t == Target::Mixed {
        return StatusCode::NOT_FOUND;
    }
    route.ok
}

async fn body_of(resp: reqwest::Response) -> (StatusCode, String) {
    let s = resp.status();
    (s, resp.text().await.unwrap_or_default())
}

#[tokio::test]
async fn every_api_route_answers_each_principal_exactly_and_leaks_nothing_of_b_to_a() {
    let w = world().await;
    let mut failures = Vec::new();
    let mut calls = 0;
    for route in API_TABLE {
        for t in targets_of(route.path, route.body) {
            for who in API_PRINCIPALS {
                let made = w.make_fresh(route.fresh, t).await;
                let mut path = w.fill(route.path, t, None);
                if let Some((slot, id)) = &made {
                    path = route.path.replace(slot, id);
                    path = w.fill(&path, t, None);
                }
                let url = format!("{}/api/v1{path}", w.env.base);
                let mut rb = w.no_redirects.request(
                    Method::from_bytes(route.method.as_bytes()).expect("method"),
                    &url,
                );
                if let Some(b) = w.bearer(who) {
                    rb = rb.bearer_auth(b);
                }
                if let Some(s) = w.session(who) {
                    rb = rb.header("cookie", format!("consentry_session={s}"));
                }
                if let Some(b) = route.body {
                    let filled = w.fill(b, t, None);
                    let v: Value = serde_json::from_str(&filled).expect("body template is JSON");
                    rb = rb.json(&v);
                }
                let (status, body) = body_of(rb.send().await.expect("call")).await;
                calls += 1;
                let want = expected_api(route, t, who);
                if status != want {
                    failures.push(format!(
                        "{} {path} ({t:?}) as {who:?}: {status}, expected {want}: {body}",
                        route.method
                    ));
                }
                if who.is_a() {
                    // A name the caller sent itself may be echoed ("tenant … was not found").
                    for name in w.b_names().into_iter().filter(|n| !path.contains(n)) {
                        if body.contains(name) {
                            failures.push(format!(
                                "{} {path} as {who:?} shows B's {name:?}",
                                route.method
                            ));
                        }
                    }
                }
                if status == StatusCode::FORBIDDEN && who == Who::ViewerA {
                    assert!(
                        body.contains("viewer role") || body.contains("platform operator"),
                        "{body}"
                    );
                }
                if status == StatusCode::FORBIDDEN && who == Who::KeyA {
                    assert!(body.contains("only by the token API"), "{body}");
                }
            }
        }
    }
    assert!(calls > 300, "{calls} calls");
    assert!(
        failures.is_empty(),
        "{} of {calls} calls wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Lists to A's principals hold A's data and none of B's.
    for who in [Who::AdminA, Who::ViewerA] {
        for path in ["/organizations", "/tenants", "/profiles"] {
            let (s, body) = body_of(
                w.no_redirects
                    .get(format!("{}/api/v1{path}", w.env.base))
                    .bearer_auth(w.bearer(who).expect("token"))
                    .send()
                    .await
                    .expect("call"),
            )
            .await;
            assert_eq!(s, StatusCode::OK);
            assert!(
                body.contains(&w.a.org) || body.contains(&w.a.tenant),
                "{path}: {body}"
            );
            assert!(
                !body.contains(&w.b.org) && !body.contains(&w.b.tenant),
                "{path}: {body}"
            );
        }
    }
    // History names the person who acted.
    let (_, h) = body_of(
        w.no_redirects
            .post(format!(
                "{}/api/v1/profiles/{}/check",
                w.env.base, w.a.profile
            ))
            .bearer_auth(&w.admin_a.1)
            .send()
            .await
            .expect("call"),
    )
    .await;
    assert!(h.contains("skipped") || h.contains("outcome"), "{h}");
    let p = w
        .env
        .state
        .svc
        .create_profile(
            NewProfile {
                tenant: TenantRef::parse(&w.a.tenant).expect("t"),
                app_type: APP_TYPE.into(),
                service: None,
            },
            &w.admin_a.0.caller("api").actor,
        )
        .await
        .expect("profile");
    let events = w.env.state.svc.history(p.id, 5).await.expect("history");
    assert_eq!(events[0].actor.to_string(), "api:alpha-admin");
}

#[tokio::test]
async fn the_token_api_takes_only_service_keys() {
    let w = world().await;
    for t in [Target::A, Target::B, Target::Random] {
        for who in API_PRINCIPALS {
            let path = w.fill(TOKEN_API.1, t, None);
            let mut rb = w
                .no_redirects
                .post(format!("{}/api/v1{path}", w.env.base))
                .json(&json!({"app_type": APP_TYPE}));
            if let Some(b) = w.bearer(who) {
                rb = rb.bearer_auth(b);
            }
            let (status, body) = body_of(rb.send().await.expect("call")).await;
            let want = match (who, t) {
                // A's profile has never been authorized: the key passed, the profile cannot serve.
                (Who::KeyA, Target::A) => StatusCode::CONFLICT,
                (Who::KeyA, _) => StatusCode::NOT_FOUND,
                _ => StatusCode::UNAUTHORIZED,
            };
            assert_eq!(status, want, "{path} ({t:?}) as {who:?}: {body}");
            for name in w.b_names() {
                assert!(!body.contains(name), "{body}");
            }
        }
    }
    let used = w
        .env
        .state
        .svc
        .store()
        .find_api_key(&consentry_domain::keys::key_hash(&w.key_a))
        .await
        .expect("find")
        .expect("the key");
    assert!(used.last_used_at.is_some(), "the key's use is recorded");
}

#[tokio::test]
async fn the_apis_description_is_public() {
    let w = world().await;
    for (method, path) in PUBLIC_API {
        for who in API_PRINCIPALS {
            let mut rb = w.no_redirects.request(
                Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}/api/v1{path}", w.env.base),
            );
            if let Some(b) = w.bearer(who) {
                rb = rb.bearer_auth(b);
            }
            if let Some(s) = w.session(who) {
                rb = rb.header("cookie", format!("consentry_session={s}"));
            }
            let (status, body) = body_of(rb.send().await.expect("call")).await;
            assert_eq!(status, StatusCode::OK, "{method} {path} as {who:?}");
            let a_names = [w.a.name.as_str(), w.a.domain.as_str(), w.a.org.as_str()];
            for name in a_names.into_iter().chain(w.b_names()) {
                assert!(!body.contains(name), "{path} shows {name:?}");
            }
        }
    }
}

#[tokio::test]
async fn admins_delete_their_own_empty_tenants_and_only_the_platform_deletes_organizations() {
    let w = world().await;
    let svc = &w.env.state.svc;
    let call = |method: Method, path: String, token: String| {
        let rb = w
            .no_redirects
            .request(method, format!("{}/api/v1{path}", w.env.base))
            .bearer_auth(token);
        async move { rb.send().await.expect("call").status() }
    };
    let org_a = OrgId::parse(&w.a.org).expect("org");
    let empty_tenant = || async {
        svc.connect_tenant(
            org_a,
            TenantId::parse(&uuid::Uuid::new_v4().to_string()).expect("guid"),
            DomainName::parse(&format!("e{}.onmicrosoft.com", fresh())).expect("domain"),
            None,
            consentry_domain::Placement::In(&consentry_domain::CloudKey::global()),
        )
        .await
        .expect("tenant")
        .id
        .to_string()
    };
    let t = empty_tenant().await;
    assert_eq!(
        call(
            Method::DELETE,
            format!("/tenants/{t}"),
            w.viewer_a.1.clone()
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(Method::DELETE, format!("/tenants/{t}"), w.admin_b.1.clone()).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(Method::DELETE, format!("/tenants/{t}"), w.admin_a.1.clone()).await,
        StatusCode::NO_CONTENT
    );
    let empty = svc
        .create_organization(&format!("Empty {}", fresh()), &[])
        .await
        .expect("org");
    assert_eq!(
        call(
            Method::DELETE,
            format!("/organizations/{}", empty.id),
            w.admin_a.1.clone()
        )
        .await,
        StatusCode::NOT_FOUND,
        "another organization, even empty, is not found"
    );
    assert_eq!(
        call(
            Method::DELETE,
            format!("/organizations/{}", empty.id),
            w.operator_token.clone()
        )
        .await,
        StatusCode::NO_CONTENT
    );
}

fn expected_console(route: &ConsoleRoute, t: Target, who: Who) -> StatusCode {
    if !matches!(
        who,
        Who::PlatformUser | Who::AdminA | Who::ViewerA | Who::AdminB
    ) {
        // No session: to the sign-in page (bearer tokens do not sign in to the console).
        return StatusCode::SEE_OTHER;
    }
    if route.path.contains("{token}") {
        // Own token (A target) or another account's (B target, owned by B's admin).
        let own = match t {
            Target::A => true,
            Target::B => who == Who::AdminB,
            _ => false,
        };
        return if own { route.ok } else { StatusCode::NOT_FOUND };
    }
    let Some(action) = route.action else {
        return route.ok;
    };
    if action == Action::ReadVendorApps {
        // Outside any organization: the platform operator's only.
        return if who == Who::PlatformUser {
            route.ok
        } else {
            StatusCode::FORBIDDEN
        };
    }
    let visible = match (who, t) {
        (_, Target::Random) => false,
        (Who::PlatformUser, _) => true,
        (w, t) => w.org() == Some(t),
    };
    if !visible {
        return StatusCode::NOT_FOUND;
    }
    if who == Who::ViewerA && action != Action::Read {
        return StatusCode::FORBIDDEN;
    }
    route.ok
}

fn multipart(csrf: &str) -> (String, String) {
    let boundary = "accessmatrixboundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"method\"\r\n\r\nadmin\r\n--{boundary}--\r\n"
    );
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn every_console_page_and_form_answers_each_principal_exactly() {
    let w = world().await;
    let mut failures = Vec::new();
    for route in CONSOLE_TABLE {
        let targets = if route.path.contains('{') {
            vec![Target::A, Target::B, Target::Random]
        } else {
            vec![Target::A]
        };
        for t in targets {
            for who in CONSOLE_PRINCIPALS {
                let mut path = route.path.to_string();
                if route.path.contains("{token}") {
                    // A: a fresh token of the caller itself (or of A's admin when it has no account);
                    // B: B's admin's token; Random: nobody's.
                    let owner = match (t, who) {
                        (Target::A, Who::ViewerA) => Some(&w.viewer_a.0),
                        (Target::A, Who::AdminB) => Some(&w.admin_b.0),
                        (Target::A, Who::PlatformUser) => Some(&w.platform_user.0),
                        (Target::A, _) => Some(&w.admin_a.0),
                        (Target::B, _) => Some(&w.admin_b.0),
                        _ => None,
                    };
                    let id = match owner {
                        Some(o) => w
                            .env
                            .state
                            .console
                            .accounts
                            .create_token(o, "to revoke", time::Duration::days(1))
                            .await
                            .expect("token")
                            .0
                            .id
                            .to_string(),
                        None => uuid::Uuid::new_v4().to_string(),
                    };
                    path = path.replace("{token}", &id);
                }
                if let Some((slot, id)) = w.make_fresh(route.fresh, t).await {
                    path = path.replace(&slot, &id);
                }
                path = w.fill(&path, t, None);
                let url = format!("{}/console{path}", w.env.base);
                let mut rb = w.no_redirects.request(
                    Method::from_bytes(route.method.as_bytes()).expect("m"),
                    &url,
                );
                let session = w.session(who);
                if let Some(s) = session {
                    rb = rb.header("cookie", format!("consentry_session={s}"));
                }
                if let Some(b) = w.bearer(who) {
                    rb = rb.bearer_auth(b);
                }
                if route.method == "POST" {
                    let csrf = session.map(csrf_token_for).unwrap_or_default();
                    if route.path.ends_with("/reauthorize") {
                        let (ct, body) = multipart(&csrf);
                        rb = rb.header("content-type", ct).body(body);
                    } else {
                        let org = w.fill("{org}", t, None);
                        rb = rb.form(&[
                            ("csrf", csrf.as_str()),
                            ("name", "matrix"),
                            ("days", "7"),
                            ("scope", "invalid"),
                            ("org", org.as_str()),
                        ]);
                    }
                }
                let (status, body) = body_of(rb.send().await.expect("call")).await;
                let want = expected_console(route, t, who);
                if status != want {
                    failures.push(format!(
                        "{} /console{path} ({t:?}) as {who:?}: {status}, expected {want}: {}",
                        route.method,
                        body.chars().take(300).collect::<String>()
                    ));
                }
                if who.is_a() {
                    for name in w.b_names() {
                        if body.contains(name) {
                            failures.push(format!("/console{path} as {who:?} shows B's {name:?}"));
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Viewers see no change buttons; admins do.
    let page = |session: &str| {
        let rb = w
            .no_redirects
            .get(format!("{}/console/profiles/{}", w.env.base, w.a.profile))
            .header("cookie", format!("consentry_session={session}"));
        async move { rb.send().await.expect("call").text().await.expect("body") }
    };
    let viewer = page(&w.viewer_a.2).await;
    for button in [
        "id=\"check-now\"",
        "id=\"reauthorize\"",
        "/reauthorize\"",
        "/cancel\"",
    ] {
        assert!(!viewer.contains(button), "a viewer sees {button}");
    }
    assert!(viewer.contains("(viewer)"));
    let admin = page(&w.admin_a.2).await;
    assert!(admin.contains("id=\"check-now\"") && admin.contains("id=\"reauthorize\""));
}

#[tokio::test]
async fn sign_in_sign_out_and_static_files_need_no_role() {
    let w = world().await;
    let base = &w.env.base;
    let get = |path: &str, session: Option<&str>| {
        let mut rb = w.no_redirects.get(format!("{base}{path}"));
        if let Some(s) = session {
            rb = rb.header("cookie", format!("consentry_session={s}"));
        }
        async move { rb.send().await.expect("call").status() }
    };
    assert_eq!(get("/console/login", None).await, StatusCode::OK);
    assert_eq!(
        get("/console/login", Some(&w.viewer_a.2)).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        get("/console/static/console.css", None).await,
        StatusCode::OK
    );
    // A sign-in form without its CSRF cookie is refused whoever sends it.
    let s = w
        .no_redirects
        .post(format!("{base}/console/login"))
        .form(&[
            ("csrf", "x"),
            ("username", "alpha-viewer"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("call")
        .status();
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Signing out works for a viewer (its own session).
    let (_, _, session) = principal(
        &w.env,
        "leaving-viewer",
        AccountScope::Organization(OrgId::parse(&w.a.org).expect("org")),
        Role::Viewer,
    )
    .await;
    let s = w
        .no_redirects
        .post(format!("{base}/console/logout"))
        .header("cookie", format!("consentry_session={session}"))
        .form(&[("csrf", csrf_token_for(&session))])
        .send()
        .await
        .expect("call")
        .status();
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(
        get("/console/tokens", Some(&session)).await,
        StatusCode::SEE_OTHER
    );
}

/// `METHOD path` pairs of a route list such as `GET|POST /api/v1/x`.
fn expand(list: &[&str]) -> BTreeSet<(String, String)> {
    list.iter()
        .flat_map(|l| {
            let (methods, path) = l.split_once(' ').expect("METHODS path");
            methods
                .split('|')
                .map(move |m| (m.to_string(), path.to_string()))
        })
        .collect()
}

/// The routes of an axum `Router` built in `source` between `start` and `end`: each `.route("path",
/// …)` with the methods its handler chain names.
fn routes_in(source: &str, start: &str, end: &str) -> BTreeSet<(String, String)> {
    let from = source.find(start).expect("start marker");
    let to = from + source[from..].find(end).expect("end marker");
    let mut out = BTreeSet::new();
    for chunk in source[from..to].split(".route(").skip(1) {
        let path = chunk.split('"').nth(1).expect("a path literal").to_string();
        for m in ["get", "post", "patch", "put", "delete"] {
            let needle = format!("{m}(");
            let named = chunk.match_indices(&needle).any(|(i, _)| {
                i == 0
                    || !chunk.as_bytes()[i - 1].is_ascii_alphanumeric()
                        && chunk.as_bytes()[i - 1] != b'_'
            });
            if named {
                out.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

fn template_key(path: &str) -> String {
    // `{anything}` → `{}` so that the table's placeholder names need not match the router's.
    let mut out = String::new();
    let mut depth = false;
    for ch in path.split('?').next().unwrap_or_default().chars() {
        match ch {
            '{' => {
                depth = true;
                out.push_str("{}");
            }
            '}' => depth = false,
            c if !depth => out.push(c),
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn every_route_is_in_the_tables() {
    // The API: the router's source, the index it serves, and the tables agree.
    let source = include_str!("../../src/router.rs");
    let mut in_router: BTreeSet<(String, String)> =
        routes_in(source, "let api = Router::new()", "\n    Router::new()")
            .into_iter()
            .map(|(m, p)| {
                (
                    m,
                    template_key(&format!("/api/v1{}", if p == "/" { "" } else { &p })),
                )
            })
            .collect();
    // The token API is routed on a stack of its own, by its full path.
    let token_api = routes_in(source, "fn token_api(", "\n}\n");
    assert!(!token_api.is_empty(), "the token API's routes in router.rs");
    in_router.extend(token_api.into_iter().map(|(m, p)| (m, template_key(&p))));
    let index: BTreeSet<(String, String)> = expand(consentry_server::router::API_ROUTES)
        .into_iter()
        .map(|(m, p)| (m, template_key(&p)))
        .collect();
    assert_eq!(
        in_router, index,
        "router.rs and API_ROUTES (GET /api/v1) differ"
    );
    let mut tables: BTreeSet<(String, String)> = API_TABLE
        .iter()
        .map(|r| {
            (
                r.method.to_string(),
                template_key(&format!("/api/v1{}", r.path)),
            )
        })
        .collect();
    tables.insert((
        TOKEN_API.0.into(),
        template_key(&format!("/api/v1{}", TOKEN_API.1)),
    ));
    tables.extend(PUBLIC_API.iter().map(|(m, p)| {
        (
            m.to_string(),
            template_key(&format!(
                "/api/v1{}",
                p.replace("swagger-ui-bundle.js", "{file}")
            )),
        )
    }));
    assert_eq!(
        index, tables,
        "a route is missing from API_TABLE (or the table names one that does not exist)"
    );

    // The console: its router's source and the tables agree.
    let source = include_str!("../../src/console/mod.rs");
    let in_console: BTreeSet<(String, String)> = routes_in(source, "pub fn routes()", ".fallback(")
        .into_iter()
        .map(|(m, p)| (m, template_key(if p == "/" { "" } else { &p })))
        .collect();
    let mut covered: BTreeSet<(String, String)> = CONSOLE_TABLE
        .iter()
        .map(|r| (r.method.to_string(), template_key(r.path)))
        .collect();
    covered.extend(
        CONSOLE_ELSEWHERE
            .iter()
            .map(|(m, p)| (m.to_string(), template_key(p))),
    );
    assert_eq!(
        in_console, covered,
        "a console route is missing from CONSOLE_TABLE"
    );
}

#[tokio::test]
async fn a_token_made_on_the_console_page_is_shown_once_works_on_the_api_and_is_revoked_there() {
    let w = world().await;
    let base = &w.env.base;
    let session = &w.viewer_a.2;
    let cookie = format!("consentry_session={session}");
    let made = w
        .no_redirects
        .post(format!("{base}/console/tokens"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf_token_for(session).as_str()),
            ("name", "<b>report</b>"),
            ("days", "7"),
        ])
        .send()
        .await
        .expect("call");
    assert_eq!(made.status(), StatusCode::CREATED);
    let page = made.text().await.expect("body");
    assert!(
        page.contains("&#60;b&#62;report") && !page.contains("<b>report"),
        "the name is escaped: {page}"
    );
    let start = page.find("cpt_").expect("the token is shown");
    let token: String = page[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();

    let api = |path: String, method: Method| {
        let rb = w
            .no_redirects
            .request(method, format!("{base}/api/v1{path}"))
            .bearer_auth(&token);
        async move { rb.send().await.expect("call").status() }
    };
    // The viewer's token reads A, is refused changes, and does not see B.
    assert_eq!(
        api(format!("/profiles/{}", w.a.profile), Method::GET).await,
        StatusCode::OK
    );
    assert_eq!(
        api(format!("/profiles/{}/check", w.a.profile), Method::POST).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api(format!("/profiles/{}", w.b.profile), Method::GET).await,
        StatusCode::NOT_FOUND
    );

    // Shown once: the list has its name and last use, never the value.
    let list = w
        .no_redirects
        .get(format!("{base}/console/tokens"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("call")
        .text()
        .await
        .expect("body");
    assert!(!list.contains(&token));
    let tokens = w
        .env
        .state
        .console
        .accounts
        .tokens(w.viewer_a.0.id)
        .await
        .expect("tokens");
    let record = tokens
        .iter()
        .find(|t| t.name == "<b>report</b>")
        .expect("the record");
    assert!(record.last_used_at.is_some());

    let s = w
        .no_redirects
        .post(format!("{base}/console/tokens/{}/revoke", record.id))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf_token_for(session))])
        .send()
        .await
        .expect("call")
        .status();
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(
        api(format!("/profiles/{}", w.a.profile), Method::GET).await,
        StatusCode::UNAUTHORIZED
    );
}
