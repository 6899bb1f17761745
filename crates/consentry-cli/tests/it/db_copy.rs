//! `consentry db copy`: a seeded SQLite installation (profiles with sealed secrets, history, a pending
//! re-authorization, the monitor's schedule, webhooks with their log, service API keys, console accounts and
//! sessions, a rollout's members) copied to PostgreSQL and back ends equal, row for row; its secrets stay sealed (they open with
//! the master key, not without it); a non-empty target is refused; and the copied installation serves tokens.
//!
//! Needs `CONSENTRY_TEST_POSTGRES_URL` (skipped with a note when unset, except in CI).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration as StdDuration, Instant};

use consentry_domain::MicrosoftSignInStore as _;
use consentry_domain::ThrottleStore as _;
use consentry_domain::catalog::{Catalog, ConsentMethod, PermissionType};
use consentry_domain::{
    AccountScope, AccountStore as _, ApiKey, ApiKeyStore as _, AppProfile, ConsoleSession,
    DomainName, GrantedPermission, OperatorAccount, ProfileId, ProfileStatus, ScheduleStore as _,
    SecretKind, Store, StoreError, Tenant, TenantId, Webhook, WebhookDelivery, WebhookStore as _,
};
use consentry_domain::{
    AuditStore as _, CampaignStore as _, MailStore as _, RolloutStore as _, ScanProfileStore as _,
};
use consentry_store::copy::TABLES;
use consentry_store::story;
use consentry_store::{Sealer, SqlStore};
use entra_sim::{RunningSim, Scenario, SimOptions};
use secrecy::{ExposeSecret as _, SecretSlice};
use sqlx::{AssertSqlSafe, Connection as _, Row as _, SqliteConnection};
use time::OffsetDateTime;
use uuid::Uuid;

const API_TOKEN: &str = "db-copy-operator-token-0123456789";
const CONTOSO: &str = "contoso.onmicrosoft.com";

fn consentry(args: &[&str], envs: &[(&str, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CONSENTRY_LOG", "warn")
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run consentry")
}

/// Every row of `table` in a SQLite file, each value in SQLite's own literal form, in key order.
async fn dump(file: &Path, table: &str, order_by: &str) -> Vec<String> {
    let mut c = SqliteConnection::connect(&format!("sqlite://{}?mode=ro", file.display()))
        .await
        .unwrap();
    let cols: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
    )))
    .fetch_all(&mut c)
    .await
    .unwrap();
    let expr = cols
        .iter()
        .map(|c| format!("quote({c})"))
        .collect::<Vec<_>>()
        .join(" || '|' || ");
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {expr} AS r FROM {table} ORDER BY {order_by}"
    )))
    .fetch_all(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    rows.iter().map(|r| r.get::<String, _>("r")).collect()
}

/// An authorized, valid profile of an application-permission app type (checked with client credentials).
fn working_profile(tenant: &Tenant, catalog: &Catalog) -> AppProfile {
    let now = OffsetDateTime::now_utc();
    let at = catalog.app_type("m365-all").unwrap();
    AppProfile {
        consent_method: Some(ConsentMethod::Admin),
        granted_permissions: at
            .application_roles()
            .map(|r| GrantedPermission {
                name: r.name.clone(),
                kind: PermissionType::Role,
            })
            .collect(),
        status: ProfileStatus::Valid,
        reason: None,
        consented_catalog_version: Some(catalog.version),
        refresh_token_redeemed_at: None,
        authorized_at: Some(now),
        ..story::minimal_profile(tenant, now)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_and_back_ends_equal_and_serves_tokens() {
    let Some(admin) = consentry_store::story::postgres_admin_url("db copy test") else {
        return;
    };
    let pg = consentry_store::story::TestDatabase::create(&admin, "consentry_copy").await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::builtin();

    let scenario = Scenario::contoso();
    let sim = RunningSim::start(scenario.clone(), SimOptions::default())
        .await
        .unwrap();
    let m365_app = scenario.client_id_for("m365-all").unwrap();
    sim.control()
        .grant_admin_consent(CONTOSO, m365_app)
        .unwrap();
    let contoso_id = scenario
        .tenants
        .iter()
        .find(|t| t.domains.iter().any(|d| d == CONTOSO))
        .unwrap()
        .id;

    // ---- A SQLite installation with a row in every table. ----------------------------------------
    let key_file = dir.path().join("master.key");
    let source_file = dir.path().join("source.db");
    let back_file = dir.path().join("back.db");
    let source_url = format!("sqlite://{}", source_file.display());
    let back_url = format!("sqlite://{}", back_file.display());
    let store = SqlStore::open(
        &source_url,
        Sealer::load_or_create_key_file(&key_file).unwrap(),
    )
    .await
    .unwrap();
    let now = OffsetDateTime::now_utc();
    let org = story::new_org(&store, "copy").await;
    let contoso = Tenant {
        id: TenantId::from_uuid(contoso_id),
        org_id: org.id,
        primary_domain: DomainName::parse(CONTOSO).unwrap(),
        display_name: "Contoso".into(),
        cloud: consentry_domain::CloudKey::global(),
        created_at: now,
        verified: None,
    };
    store.insert_tenant(&contoso).await.unwrap();
    let working = working_profile(&contoso, &catalog);
    store
        .insert_profile(&working, story::created_event(&working))
        .await
        .unwrap();
    let other = story::new_tenant(&store, &org, "copy").await;
    let full = story::full_profile(&other, now);
    store
        .insert_profile(&full, story::created_event(&full))
        .await
        .unwrap();
    let mut changed = full.clone();
    changed.status = ProfileStatus::Attention;
    changed.updated_at = now + time::Duration::seconds(1);
    let mut event = story::created_event(&changed);
    event.kind = consentry_domain::EventKind::StatusChanged;
    event.from_status = Some(full.status);
    store.save_profile(&changed, Some(event)).await.unwrap();
    store
        .put_secret(
            full.id,
            SecretKind::RefreshToken,
            &SecretSlice::from(b"refresh-token-plaintext".to_vec()),
        )
        .await
        .unwrap();
    store
        .put_secret(
            full.id,
            SecretKind::ClientCertificate,
            &SecretSlice::from(b"certificate-plaintext".to_vec()),
        )
        .await
        .unwrap();
    let pending = story::full_pending(full.id, now);
    store.put_pending(&pending).await.unwrap();
    // A tenant connection waiting for Microsoft's answer, and invitations (one used).
    consentry_domain::ConnectionStore::put_pending_connection(
        &store,
        &consentry_domain::PendingConnection {
            state_hash: consentry_domain::reauth::state_hash("copy connection state"),
            org_id: org.id,
            started_by: consentry_domain::Actor::Operator("console:copy".into()),
            step: consentry_domain::ConnectStep::AdminConsent,
            tenant_id: Some(other.id),
            created_at: now,
            expires_at: now + time::Duration::minutes(10),
            secrets: SecretSlice::from(b"{\"code_verifier\":\"v\"}".to_vec()),
        },
    )
    .await
    .unwrap();
    story::invitations(&store).await;
    // Vendor credential alerts, raised once each.
    story::vendor_alerts(&store).await;
    // Both profiles are due from their creation (`working` was created just after `now`).
    let leased = store
        .lease_due_checks(
            "copy-test",
            OffsetDateTime::now_utc(),
            10,
            time::Duration::minutes(10),
        )
        .await
        .unwrap();
    assert_eq!(leased.len(), 2);
    store
        .release_check(
            working.id,
            "copy-test",
            now + time::Duration::hours(1),
            Some("a transient error"),
        )
        .await
        .unwrap();
    let hook = Webhook {
        id: consentry_domain::WebhookId::new_random(),
        org_id: org.id,
        url: "https://hooks.example/consentry".into(),
        created_at: now,
    };
    store
        .insert_webhook(
            &hook,
            &SecretSlice::from(b"webhook-signing-secret".to_vec()),
        )
        .await
        .unwrap();
    store
        .record_delivery(&WebhookDelivery {
            webhook_id: hook.id,
            profile_id: full.id,
            event: "status_changed".into(),
            reason_code: Some("conditional_access_blocked".into()),
            status_code: Some(200),
            attempts: 1,
            ok: true,
            error: None,
            at: now,
        })
        .await
        .unwrap();
    // A tenant's email contact and a message in the outbox (its content sealed).
    let contact = consentry_domain::EmailAddress::parse("it-admin@contoso.example").unwrap();
    store
        .set_tenant_contacts(contoso.id, std::slice::from_ref(&contact), now)
        .await
        .unwrap();
    store
        .enqueue_emails(&[consentry_domain::NewEmail {
            id: consentry_domain::EmailId::new_random(),
            org_id: org.id,
            tenant_id: Some(contoso.id),
            kind: consentry_domain::EmailKind::ProfileInvalid,
            to: contact,
            subject: "Insights in contoso needs to be re-authorized".into(),
            content: secrecy::SecretString::from("{\"kind\":\"digest\"}".to_string()),
            topic: Some(format!("profile_invalid:{}:consent_revoked", full.id)),
            created_at: now,
        }])
        .await
        .unwrap();
    // The organization's daily digest: a recipient and a day claimed.
    let ops = consentry_domain::EmailAddress::parse("ops@vendor.example").unwrap();
    store
        .set_digest_recipients(org.id, std::slice::from_ref(&ops), now)
        .await
        .unwrap();
    assert!(
        store
            .enqueue_digest(org.id, "2026-01-01", &[])
            .await
            .unwrap()
    );
    // The sign-in throttle: a failed sign-in's count and lockout, and a known browser.
    store
        .count_throttle_failure("account:copy-ops", now, now - time::Duration::hours(1))
        .await
        .unwrap();
    store
        .lock_throttle_key("account:copy-ops", now + time::Duration::minutes(1))
        .await
        .unwrap();
    store
        .remember_sign_in_device(&"ef".repeat(32), "copy-ops", now)
        .await
        .unwrap();
    let key = consentry_domain::keys::new_api_key();
    store
        .insert_api_key(&ApiKey {
            id: consentry_domain::ApiKeyId::new_random(),
            org_id: org.id,
            name: "copy test".into(),
            key_hash: consentry_domain::keys::key_hash(&key),
            created_at: now,
            revoked_at: None,
            last_used_at: Some(now),
        })
        .await
        .unwrap();
    let account = OperatorAccount {
        id: Uuid::new_v4(),
        username: "copy-ops".into(),
        scope: AccountScope::Organization(org.id),
        role: consentry_domain::Role::Viewer,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
        created_at: now,
    };
    store.insert_account(&account).await.unwrap();
    store
        .insert_session(&ConsoleSession {
            token_hash: "ab".repeat(32),
            account_id: account.id,
            created_at: now,
            last_seen_at: now,
            expires_at: now + time::Duration::hours(12),
        })
        .await
        .unwrap();
    store
        .insert_personal_token(&consentry_domain::PersonalToken {
            id: Uuid::new_v4(),
            account_id: account.id,
            name: "copy laptop".into(),
            token_hash: "cd".repeat(32),
            created_at: now,
            expires_at: now + time::Duration::days(30),
            last_used_at: None,
            revoked_at: None,
        })
        .await
        .unwrap();
    // A "Sign in with Microsoft" in progress (sealed, bound to its state hash) and a Microsoft
    // identity's account (its tenant and object ID columns), with the organization's member rule.
    store
        .insert_sign_in_attempt(&consentry_domain::SignInAttempt {
            state_hash: "ef".repeat(32),
            secrets: secrecy::SecretSlice::from(b"{\"code_verifier\":\"v\"}".to_vec()),
            next: "/console".into(),
            created_at: now,
            expires_at: now + time::Duration::minutes(10),
        })
        .await
        .unwrap();
    store
        .save_entra_account(
            consentry_domain::EntraIdentity {
                tenant: consentry_domain::TenantId::from_uuid(Uuid::new_v4()),
                object_id: consentry_domain::ObjectId::from_uuid(Uuid::new_v4()),
            },
            &OperatorAccount {
                id: Uuid::new_v4(),
                username: "megan@contoso.example (entra copy)".into(),
                scope: AccountScope::Organization(org.id),
                role: consentry_domain::Role::Admin,
                password_hash: String::new(),
                created_at: now,
            },
        )
        .await
        .unwrap();
    store
        .set_member_rule(org.id, consentry_domain::MemberRule::Refused)
        .await
        .unwrap();
    store
        .insert_scan_profile(&story::classic_scan_profile(&other, full.id, now))
        .await
        .unwrap();
    // A permission rollout (a catalog version after the one the full profile was consented at) that the
    // profile is a member of, done.
    let enrolled = store
        .enroll_rollout_members(4, std::slice::from_ref(&full.app_type), now)
        .await
        .unwrap();
    assert!(enrolled >= 1, "the full profile is enrolled");
    // A consent campaign with the tenant's link (its token sealed) and the profile, not done
    // yet, as member.
    let link = "db-copy-campaign-link";
    let members = store
        .insert_campaign(
            &consentry_domain::Campaign {
                id: consentry_domain::CampaignId::new_random(),
                org_id: org.id,
                scope: consentry_domain::CampaignScope::Rollout { version: 4 },
                only_tenant: None,
                started_by: consentry_domain::Actor::Operator("copy-test".into()),
                created_at: now,
                expires_at: now + time::Duration::days(14),
                remind_every_hours: 72,
                cancelled_at: None,
            },
            &[consentry_domain::NewCampaignTenant {
                tenant_id: full.tenant_id,
                token_hash: consentry_domain::reauth::state_hash(link),
                token: secrecy::SecretString::from(link.to_string()),
                expires_at: now + time::Duration::days(14),
            }],
        )
        .await
        .unwrap();
    assert_eq!(members, 1, "the full profile is the campaign's member");
    store
        .set_rollout_done(4, &[(full.id, Some(now))])
        .await
        .unwrap();
    // Two audit entries: the chain (and its head) must survive the trip.
    for n in 0..2 {
        store
            .append_audit(&consentry_domain::audit::NewAuditEntry {
                at: now,
                actor: consentry_domain::Actor::Operator("copy-test".into()),
                org_id: Some(org.id),
                action: consentry_domain::AuditAction::OrganizationUpdated,
                target: format!("organization:{}", org.id),
                detail: serde_json::json!({ "n": n }),
            })
            .await
            .unwrap();
    }
    store.close().await;

    // ---- SQLite -> PostgreSQL -> SQLite through the CLI. -----------------------------------------
    let out = consentry(&["db", "copy", "--from", &source_url, "--to", &pg.url], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Standard error is not a terminal: each table's progress is a plain line with its rows.
    let progress = String::from_utf8_lossy(&out.stderr);
    for t in TABLES {
        let row = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(t.name))
            .unwrap_or_else(|| panic!("{} missing from the report:\n{text}", t.name));
        let counts: Vec<&str> = row.split_whitespace().skip(1).collect();
        assert_eq!(counts[0], counts[1], "{row}");
        let line = format!("copied {0}/{0} {1}", counts[0], t.name);
        assert!(
            progress.lines().any(|l| l == line),
            "{line} missing from the progress:\n{progress}"
        );
    }
    assert!(
        !progress.contains("copied 0/0 profiles"),
        "the seeded profiles: {progress}"
    );
    assert!(
        !text.contains(&admin),
        "the report must not repeat a password"
    );
    // Into a database that holds data: refused, nothing written.
    let again = consentry(&["db", "copy", "--from", &source_url, "--to", &pg.url], &[]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("not empty"), "{err}");
    let out = consentry(&["db", "copy", "--from", &pg.url, "--to", &back_url], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Equal, row for row and value for value, and nothing is empty (every table took part).
    for t in TABLES {
        let a = dump(&source_file, t.name, t.order_by).await;
        let b = dump(&back_file, t.name, t.order_by).await;
        assert!(!a.is_empty(), "the seed must fill {}", t.name);
        assert_eq!(
            a, b,
            "table {} after SQLite -> PostgreSQL -> SQLite",
            t.name
        );
    }

    // A table this build does not know (say, added by a newer version) is refused, not left behind.
    let mut c = SqliteConnection::connect(&format!("sqlite://{}", back_file.display()))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE imported_later (id INTEGER PRIMARY KEY, what TEXT)")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    let elsewhere = format!("sqlite://{}", dir.path().join("elsewhere.db").display());
    let refused = consentry(
        &["db", "copy", "--from", &back_url, "--to", &elsewhere],
        &[],
    );
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("`imported_later`") && err.contains("source"),
        "{err}"
    );

    // On PostgreSQL the secrets are still sealed: they open with the master key, and only with it.
    let mid = SqlStore::open(&pg.url, Sealer::load_or_create_key_file(&key_file).unwrap())
        .await
        .unwrap();
    let rt = mid
        .get_secret(full.id, SecretKind::RefreshToken)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rt.expose_secret(), b"refresh-token-plaintext");
    let hs = mid.webhook_secret(hook.id).await.unwrap().unwrap();
    assert_eq!(hs.expose_secret(), b"webhook-signing-secret");
    let got = mid.pending_for_profile(full.id).await.unwrap().unwrap();
    story::assert_same_pending(
        &got,
        &pending,
        "pending re-authorization copied to PostgreSQL",
    );
    assert_eq!(
        mid.get_profile(full.id).await.unwrap(),
        Some(changed.clone())
    );
    assert_eq!(mid.list_history(full.id, 10).await.unwrap().len(), 2);
    // New rows continue after the copied ones (the sequences moved).
    let mut later = changed.clone();
    later.status = ProfileStatus::Valid;
    later.reason = None;
    let mut ev = story::created_event(&later);
    ev.kind = consentry_domain::EventKind::StatusChanged;
    mid.save_profile(&later, Some(ev)).await.unwrap();
    assert_eq!(mid.list_history(full.id, 10).await.unwrap().len(), 3);
    mid.close().await;
    let wrong = SqlStore::open(&pg.url, Sealer::from_key_bytes(&[7; 32]))
        .await
        .unwrap();
    assert!(matches!(
        wrong.get_secret(full.id, SecretKind::RefreshToken).await,
        Err(StoreError::Sealing(_))
    ));
    wrong.close().await;

    // ---- The copied installation serves tokens. ----------------------------------------------------
    let ca_file = dir.path().join("sim-ca.pem");
    std::fs::write(&ca_file, sim.ca_pem()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut envs: Vec<(String, String)> = vec![
        ("CONSENTRY_LOG".into(), "warn".into()),
        ("CONSENTRY_DATABASE_URL".into(), back_url.clone()),
        (
            "CONSENTRY_MASTER_KEY_FILE".into(),
            key_file.display().to_string(),
        ),
        (
            "CONSENTRY_DATA_DIR".into(),
            dir.path().join("serve").display().to_string(),
        ),
        ("CONSENTRY_API_TOKEN".into(), API_TOKEN.into()),
        ("CONSENTRY_LISTEN".into(), format!("127.0.0.1:{port}")),
        ("CONSENTRY_MONITOR__ENABLED".into(), "false".into()),
        ("CONSENTRY_ENTRA__AUTHORITY".into(), sim.authority()),
        ("CONSENTRY_ENTRA__GRAPH".into(), sim.graph_base()),
        (
            "CONSENTRY_ENTRA__VIVA_ENGAGE".into(),
            sim.viva_engage_base(),
        ),
        (
            "CONSENTRY_ENTRA__EXTRA_CA_FILE".into(),
            ca_file.display().to_string(),
        ),
    ];
    for (k, id, secret) in scenario.vendor_apps() {
        let k = k.to_ascii_uppercase().replace('-', "_");
        envs.push((format!("CONSENTRY_APPS__{k}__CLIENT_ID"), id.to_string()));
        envs.push((
            format!("CONSENTRY_APPS__{k}__CLIENT_SECRET"),
            secret.expose_secret().to_string(),
        ));
    }
    let mut server = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(envs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while !http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            start.elapsed() < StdDuration::from_secs(300),
            "the server did not start"
        );
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    let resp = http
        .post(format!("{base}/api/v1/tenants/{contoso_id}/tokens"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"app_type": "m365-all"}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(status, 200, "{body}");
    assert!(
        body["access_token"].as_str().is_some_and(|t| t.len() > 20),
        "{body}"
    );
    let acquired = sim.control().token_requests().into_iter().any(|r| {
        r.tenant_id == contoso_id && r.client_id == m365_app && r.grant_type == "client_credentials"
    });
    assert!(acquired, "the token came from the simulator");
    let _: ProfileId = working.id;
    drop(pg);
}
