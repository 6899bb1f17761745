//! "Sign in with Microsoft" end to end against entra-sim over HTTP: administrators of a connected
//! tenant become its organization's admins, other members viewers (or are refused when the
//! organization says so), an unconnected tenant gets its page, operators come from the operator
//! tenant's group or app role, a wrong nonce, a replayed state and a missing browser cookie are refused, a
//! demoted administrator is a viewer at the next sign-in, the audit names the object ID and UPN, and
//! sign-out ends the session.

use consentry_domain::microsoft_sign_in::entra_username;
use consentry_domain::{AccountScope, ObjectId, OperatorAccount, Role, Upn};
use consentry_testkit::{Browser, Decision, PASSWORD, Page, TestEnv};
use entra_sim::IdTokenFault;
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN: &str = "admin@contoso.onmicrosoft.com";
const ADMIN_OID: &str = "c0a70000-0000-4000-8000-000000000001";
const PRA: &str = "pra@contoso.onmicrosoft.com";
const MEMBER: &str = "user@contoso.onmicrosoft.com";
const FABRIKAM_ADMIN: &str = "admin@fabrikam.onmicrosoft.com";
const FABRIKAM_PASSWORD: &str = "Demo-Fabrikam-Passw0rd!";
const OWNER: &str = "owner@consentry-vendor.onmicrosoft.com";
const OWNER_PASSWORD: &str = "Demo-Vendor-Passw0rd!";
const VENDOR_TENANT: &str = "0e9d1a7c-0000-4000-8000-000000000001";
const OPERATORS_GROUP: &str = "0e9d1a7c-0000-4000-8000-0000000000f1";

/// Starts a sign-in in `b` and goes through Microsoft's pages as `user`; the callback address
/// Microsoft redirects to.
async fn to_callback(env: &TestEnv, b: &Browser, user: &str, password: &str) -> String {
    let started = b
        .get(&format!(
            "{}/console/sign-in/microsoft?next=/console/profiles",
            env.base
        ))
        .await;
    assert_eq!(started.status, 303, "{started:?}");
    let url = started.location.clone().expect("to Microsoft");
    assert!(
        url.starts_with(&format!(
            "{}/organizations/oauth2/v2.0/authorize?",
            env.sim.authority()
        )),
        "the organizations authority: {url}"
    );
    for part in [
        "response_type=code",
        "response_mode=query",
        "prompt=select_account",
        "code_challenge_method=S256",
        "scope=openid+profile+https%3A%2F%2Fgraph.microsoft.com%2FUser.Read&",
        "client_id=c0de0000-0000-4000-8000-0000000000c0",
    ] {
        assert!(url.contains(part), "{part} in {url}");
    }
    let back = b
        .at_microsoft(&url, user, password, Decision::Accept { org_wide: false })
        .await;
    let loc = back.location.clone().unwrap_or_else(|| panic!("{back:?}"));
    assert!(
        loc.starts_with(&format!("{}/console/sign-in/microsoft/callback?", env.base)),
        "{loc}"
    );
    loc
}

/// Signs `user` in with Microsoft in `b`; the callback's answer.
async fn sign_in(env: &TestEnv, b: &Browser, user: &str, password: &str) -> Page {
    let callback = to_callback(env, b, user, password).await;
    b.get(&callback).await
}

async fn account(env: &TestEnv, upn: &str, oid: &str) -> Option<OperatorAccount> {
    let name = entra_username(
        &Upn::parse(upn).expect("upn"),
        ObjectId::parse(oid).expect("oid"),
    );
    env.state.console.accounts.find(&name).await.expect("find")
}

async fn oid_of(env: &TestEnv, upn: &str) -> String {
    let scenario = entra_sim::Scenario::contoso();
    let _ = env;
    scenario
        .tenants
        .iter()
        .flat_map(|t| &t.users)
        .find(|u| u.upn.eq_ignore_ascii_case(upn))
        .map(|u| u.id.to_string())
        .expect("scenario user")
}

async fn audit(env: &TestEnv, org: &str) -> Vec<Value> {
    let (s, page) = env
        .api(
            reqwest::Method::GET,
            &format!("/api/v1/organizations/{org}/audit?limit=100"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    page["entries"].as_array().expect("entries").clone()
}

fn signed_in(page: &Page) {
    assert_eq!(page.status, 303, "{page:?}");
    assert_eq!(
        page.location.as_deref(),
        Some("/console/profiles"),
        "next is kept"
    );
}

#[tokio::test]
async fn an_administrator_signs_in_as_the_organizations_admin_and_a_member_as_a_viewer() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&[]).await;
    let login = Browser::new(env.sim.ca_pem(), None).expect("browser");
    let page = login.get(&format!("{}/console/login", env.base)).await;
    assert!(
        page.body
            .contains("href=\"/console/sign-in/microsoft?next=/console\""),
        "the sign-in page offers it: {}",
        page.body
    );

    let b = env.browser(None);
    signed_in(&sign_in(&env, &b, ADMIN, PASSWORD).await);
    let console = b.get(&format!("{}/console", env.base)).await;
    assert_eq!(console.status, 200, "{console:?}");
    assert!(
        console.body.contains("<h1>Tenants</h1>"),
        "{}",
        console.body
    );
    let admin = account(&env, ADMIN, ADMIN_OID).await.expect("an account");
    assert_eq!(admin.role, Role::Admin);
    assert_eq!(
        admin.scope,
        AccountScope::Organization(consentry_domain::OrgId::parse(&org).expect("org"))
    );
    assert!(admin.password_hash.is_empty(), "no password");
    // It cannot be signed into with a password (its name is no local name either).
    assert!(
        env.state
            .console
            .accounts
            .sign_in(&admin.username, &secrecy::SecretString::from(""), None)
            .await
            .expect("sign-in")
            .is_none()
    );

    // Privileged Role Administrator: admin too.
    let pra = env.browser(None);
    signed_in(&sign_in(&env, &pra, PRA, PASSWORD).await);
    let pra_oid = oid_of(&env, PRA).await;
    assert_eq!(
        account(&env, PRA, &pra_oid).await.expect("account").role,
        Role::Admin
    );

    // A member without an admin role: viewer.
    let m = env.browser(None);
    signed_in(&sign_in(&env, &m, MEMBER, PASSWORD).await);
    let member_oid = oid_of(&env, MEMBER).await;
    let member = account(&env, MEMBER, &member_oid).await.expect("account");
    assert_eq!(member.role, Role::Viewer);

    // The organization refuses members without an admin role: the member is refused, and their
    // account (with its sessions) goes.
    let (s, v) = env
        .api(
            reqwest::Method::PUT,
            &format!("/api/v1/organizations/{org}/microsoft-sign-in"),
            Some(json!({"members_without_admin_role": "refused"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = env
        .api(
            reqwest::Method::GET,
            &format!("/api/v1/organizations/{org}/microsoft-sign-in"),
            None,
        )
        .await;
    assert_eq!(
        (s, v),
        (
            StatusCode::OK,
            json!({"members_without_admin_role": "refused"})
        )
    );
    let refused = sign_in(&env, &m, MEMBER, PASSWORD).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(
        refused.body.contains("Only administrators may sign in") && refused.body.contains(MEMBER),
        "{}",
        refused.body
    );
    assert!(account(&env, MEMBER, &member_oid).await.is_none());
    let after = m.get(&format!("{}/console", env.base)).await;
    assert_eq!(
        after.status, 303,
        "the member's earlier session ended: {after:?}"
    );
    // Administrators are not concerned.
    signed_in(&sign_in(&env, &env.browser(None), ADMIN, PASSWORD).await);

    // The audit names the object ID and the UPN.
    let entries = audit(&env, &org).await;
    let ok = entries
        .iter()
        .find(|e| e["action"] == "sign_in" && e["detail"]["upn"] == ADMIN)
        .expect("the admin's sign-in is audited");
    assert_eq!(ok["detail"]["entra_object_id"], ADMIN_OID);
    assert_eq!(ok["detail"]["method"], "microsoft");
    assert!(
        ok["actor"]["name"]
            .as_str()
            .is_some_and(|n| n.contains(ADMIN) && n.contains(ADMIN_OID)),
        "{ok}"
    );
    let no = entries
        .iter()
        .find(|e| e["action"] == "sign_in_failed" && e["detail"]["upn"] == MEMBER)
        .expect("the refusal is audited");
    assert_eq!(no["detail"]["entra_object_id"], member_oid.as_str());
    assert_eq!(no["detail"]["reason"], "no_admin_role");

    // Sign-out ends the session and is audited under the same name.
    let console = b.get(&format!("{}/console", env.base)).await;
    let csrf = field(&console.body, "csrf");
    let out = b
        .post(
            &format!("{}/console/logout", env.base),
            &[("csrf".to_string(), csrf)],
        )
        .await;
    assert_eq!(out.status, 303, "{out:?}");
    let gone = b.get(&format!("{}/console", env.base)).await;
    assert_eq!(gone.status, 303, "signed out: {gone:?}");
    let entries = audit(&env, &org).await;
    assert!(
        entries.iter().any(|e| e["action"] == "sign_out"
            && e["actor"]["name"]
                .as_str()
                .is_some_and(|n| n.contains(ADMIN_OID))),
        "{entries:?}"
    );
}

fn field(body: &str, name: &str) -> String {
    let pat = format!("name=\"{name}\" value=\"");
    let i = body.find(&pat).expect("field") + pat.len();
    body[i..i + body[i..].find('"').expect("end")].to_string()
}

#[tokio::test]
async fn an_unconnected_tenant_gets_its_page_and_no_session() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let b = env.browser(None);
    let page = sign_in(&env, &b, FABRIKAM_ADMIN, FABRIKAM_PASSWORD).await;
    assert_eq!(page.status, 403, "{page:?}");
    assert!(
        page.body
            .contains("Your organization is not connected to Consentry")
            && page
                .body
                .contains("Ask your administrator or your vendor to connect your tenant"),
        "{}",
        page.body
    );
    let console = b.get(&format!("{}/console", env.base)).await;
    assert_eq!(console.status, 303, "no session: {console:?}");
}

#[tokio::test]
async fn a_demoted_administrator_is_a_viewer_at_the_next_sign_in() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let b = env.browser(None);
    signed_in(&sign_in(&env, &b, ADMIN, PASSWORD).await);
    let first = account(&env, ADMIN, ADMIN_OID).await.expect("account");
    assert_eq!(first.role, Role::Admin);
    env.sim
        .control()
        .set_user_roles(ADMIN, &[])
        .expect("demote");
    signed_in(&sign_in(&env, &b, ADMIN, PASSWORD).await);
    let again = account(&env, ADMIN, ADMIN_OID).await.expect("account");
    assert_eq!(again.id, first.id, "the same account");
    assert_eq!(again.role, Role::Viewer, "demoted");
}

#[tokio::test]
async fn a_wrong_nonce_a_replayed_state_and_another_browser_are_refused() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;

    // Another browser (no binding cookie) cannot use the callback, and does not burn it.
    let b = env.browser(None);
    let callback = to_callback(&env, &b, ADMIN, PASSWORD).await;
    let thief = env.browser(None);
    let stolen = thief.get(&callback).await;
    assert_eq!(stolen.status, 400, "{stolen:?}");
    assert!(
        stolen.body.contains("started in another browser"),
        "{}",
        stolen.body
    );
    assert_eq!(
        thief.get(&format!("{}/console", env.base)).await.status,
        303
    );
    signed_in(&b.get(&callback).await);

    // The same answer again: the attempt was used.
    let replay = b.get(&callback).await;
    assert_eq!(replay.status, 400, "{replay:?}");
    assert!(
        replay.body.contains("This sign-in cannot be finished"),
        "{}",
        replay.body
    );

    // An ID token with another nonce.
    let c = env.browser(None);
    env.sim
        .control()
        .set_id_token_fault(Some(IdTokenFault::WrongNonce))
        .expect("fault");
    let page = sign_in(&env, &c, ADMIN, PASSWORD).await;
    assert_eq!(page.status, 400, "{page:?}");
    assert!(page.body.contains("nonce mismatch"), "{}", page.body);
    // A token signed by someone else.
    env.sim
        .control()
        .set_id_token_fault(Some(IdTokenFault::ForeignKey))
        .expect("fault");
    let page = sign_in(&env, &c, ADMIN, PASSWORD).await;
    assert_eq!(page.status, 400, "{page:?}");
    assert!(page.body.contains("Microsoft"), "{}", page.body);
    env.sim.control().set_id_token_fault(None).expect("fault");
    assert_eq!(c.get(&format!("{}/console", env.base)).await.status, 303);

    // A tampered address (a parameter twice) is refused before anything is looked up.
    let tampered = c
        .get(&format!(
            "{}/console/sign-in/microsoft/callback?code=x&state=a&state=b",
            env.base
        ))
        .await;
    assert_eq!(tampered.status, 400, "{tampered:?}");
    assert!(
        tampered.body.contains("more than once"),
        "{}",
        tampered.body
    );

    // Cancelled at Microsoft: a clear page.
    let d = env.browser(None);
    let started = d
        .get(&format!("{}/console/sign-in/microsoft", env.base))
        .await;
    let url = started.location.expect("to Microsoft");
    let back = d
        .at_microsoft(&url, MEMBER, PASSWORD, Decision::Cancel)
        .await;
    let page = d.get(back.location.as_deref().expect("back")).await;
    assert_eq!(page.status, 400, "{page:?}");
    assert!(page.body.contains("Sign-in cancelled"), "{}", page.body);
}

#[tokio::test]
async fn operators_are_the_operator_tenants_group_or_app_role_and_other_members_of_it_are_refused()
{
    let env = TestEnv::start_with_settings(
        entra_sim::Scenario::contoso(),
        vec![
            (
                "CONSENTRY_MICROSOFT_SIGN_IN__OPERATOR_TENANT".into(),
                VENDOR_TENANT.into(),
            ),
            (
                "CONSENTRY_MICROSOFT_SIGN_IN__OPERATOR_GROUP".into(),
                OPERATORS_GROUP.into(),
            ),
        ],
    )
    .await;
    let b = env.browser(None);
    signed_in(&sign_in(&env, &b, OWNER, OWNER_PASSWORD).await);
    let owner_oid = oid_of(&env, OWNER).await;
    let op = account(&env, OWNER, &owner_oid).await.expect("account");
    assert_eq!(op.scope, AccountScope::Platform, "a platform operator");

    // With another group configured, the owner is no operator: refused, account gone.
    let mut env = env;
    env.restart_with_settings(vec![(
        "CONSENTRY_MICROSOFT_SIGN_IN__OPERATOR_GROUP".into(),
        "0e9d1a7c-0000-4000-8000-0000000000ff".into(),
    )])
    .await;
    let page = sign_in(&env, &env.browser(None), OWNER, OWNER_PASSWORD).await;
    assert_eq!(page.status, 403, "{page:?}");
    assert!(
        page.body.contains("You are not a platform operator"),
        "{}",
        page.body
    );
    assert!(account(&env, OWNER, &owner_oid).await.is_none());

    // The operator app role (the ID token's `roles`) is enough on its own; another role value is not.
    env.restart_with_settings(vec![(
        "CONSENTRY_MICROSOFT_SIGN_IN__OPERATOR_APP_ROLE".into(),
        "Consentry.Operator".into(),
    )])
    .await;
    signed_in(&sign_in(&env, &env.browser(None), OWNER, OWNER_PASSWORD).await);
    let op = account(&env, OWNER, &owner_oid).await.expect("account");
    assert_eq!(op.scope, AccountScope::Platform, "an operator by app role");
    env.restart_with_settings(vec![(
        "CONSENTRY_MICROSOFT_SIGN_IN__OPERATOR_APP_ROLE".into(),
        "Consentry.Auditor".into(),
    )])
    .await;
    let page = sign_in(&env, &env.browser(None), OWNER, OWNER_PASSWORD).await;
    assert_eq!(page.status, 403, "{page:?}");
    assert!(account(&env, OWNER, &owner_oid).await.is_none());
}

#[tokio::test]
async fn refused_sign_ins_lock_the_client_out_with_the_same_429_page() {
    let env = TestEnv::start().await;
    let b = env.browser(None);
    // Callbacks with states never issued, from one client.
    let mut last = None;
    for _ in 0..7 {
        let p = b
            .get(&format!(
                "{}/console/sign-in/microsoft/callback?code=x&state=never-issued",
                env.base
            ))
            .await;
        last = Some(p.status);
    }
    assert_eq!(last, Some(429), "locked out");
    let start = b
        .get(&format!("{}/console/sign-in/microsoft", env.base))
        .await;
    assert_eq!(start.status, 429, "{start:?}");
    assert!(
        start
            .body
            .contains("The user name or password is not correct.")
    );
}
