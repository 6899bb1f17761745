//! Operator accounts and console sessions on SQLite, through the domain's `Accounts` service: names are
//! unique regardless of case, only hashes are stored, sign-in rotates sessions, idle and absolute expiry
//! end them, and deleting an account or its organization ends its sessions.

use std::sync::{Arc, Mutex};

use consentry_domain::account::session_token_hash;
use consentry_domain::{
    AccountScope, AccountStore as _, Accounts, Clock, DomainError, HashCost, Role, SessionPolicy,
    Store,
};
use consentry_store::story::new_org;
use consentry_store::{Sealer, SqlStore};
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::Connection as _;
use time::{Duration, OffsetDateTime};

#[derive(Debug)]
struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    fn advance(&self, by: Duration) {
        let mut t = self.0.lock().expect("clock");
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().expect("clock")
    }
}

struct Env {
    store: Arc<SqlStore>,
    clock: Arc<ManualClock>,
    accounts: Accounts,
    path: std::path::PathBuf,
    _dir: Option<tempfile::TempDir>,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("consentry.db");
    let mut e = env_on(&format!("sqlite://{}", path.display())).await;
    e.path = path;
    e._dir = Some(dir);
    e
}

async fn env_on(url: &str) -> Env {
    let store = Arc::new(
        SqlStore::open(url, Sealer::from_key_bytes(&[7; 32]))
            .await
            .expect("open store"),
    );
    let clock = Arc::new(ManualClock(Mutex::new(OffsetDateTime::now_utc())));
    let accounts = Accounts::new(
        store.clone(),
        clock.clone(),
        SessionPolicy {
            idle: Duration::minutes(30),
            absolute: Duration::hours(8),
        },
        HashCost::TestOnly,
    );
    Env {
        store,
        clock,
        accounts,
        path: std::path::PathBuf::new(),
        _dir: None,
    }
}

fn pw(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

#[tokio::test]
async fn accounts_are_unique_case_insensitively_and_keep_only_a_hash() {
    let e = env().await;
    uniqueness(&e).await;

    // The database holds the hash, never the password.
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", e.path.display()))
        .await
        .expect("raw connection");
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM operator_accounts")
        .fetch_one(&mut conn)
        .await
        .expect("row");
    assert!(!stored.contains("a-long-password"));
}

async fn uniqueness(e: &Env) {
    let a = e
        .accounts
        .create("Alice", &pw("a-long-password"), AccountScope::Platform)
        .await
        .expect("create");
    assert_eq!(a.username, "alice");
    assert!(a.password_hash.starts_with("$argon2id$"));
    let dup = e
        .accounts
        .create("ALICE", &pw("another-password"), AccountScope::Platform)
        .await;
    assert!(matches!(dup, Err(DomainError::Conflict(_))), "{dup:?}");
    let short = e
        .accounts
        .create("bob", &pw("short"), AccountScope::Platform)
        .await;
    assert!(matches!(
        short,
        Err(DomainError::Invalid {
            field: "password",
            ..
        })
    ));
    let ghost_org = consentry_domain::OrgId::new_random();
    let orphan = e
        .accounts
        .create(
            "carol",
            &pw("a-long-password"),
            AccountScope::Organization(ghost_org),
        )
        .await;
    assert!(
        matches!(orphan, Err(DomainError::NotFound { .. })),
        "{orphan:?}"
    );
    let listed = e.accounts.list().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert!(
        !format!("{:?}", listed[0]).contains("argon2"),
        "Debug redacts the hash"
    );
}

#[tokio::test]
async fn sign_in_rotates_sessions_and_stores_only_token_hashes() {
    sign_in_rotates_sessions_and_stores_only_token_hashes_on(&env().await).await;
}

async fn sign_in_rotates_sessions_and_stores_only_token_hashes_on(e: &Env) {
    e.accounts
        .create("alice", &pw("a-long-password"), AccountScope::Platform)
        .await
        .expect("create");
    assert!(
        e.accounts
            .sign_in("alice", &pw("wrong-password"), None)
            .await
            .expect("sign in")
            .is_none()
    );
    assert!(
        e.accounts
            .sign_in("nobody", &pw("a-long-password"), None)
            .await
            .expect("sign in")
            .is_none()
    );
    let first = e
        .accounts
        .sign_in("ALICE", &pw("a-long-password"), None)
        .await
        .expect("sign in")
        .expect("signed in");
    let t1 = first.token.expose_secret().to_string();
    assert!(
        e.store.get_session(&t1).await.expect("get").is_none(),
        "the token is not a key"
    );
    assert!(
        e.store
            .get_session(&session_token_hash(&t1))
            .await
            .expect("get")
            .is_some()
    );
    let live = e
        .accounts
        .session(&t1)
        .await
        .expect("session")
        .expect("live");
    assert_eq!(live.account.username, "alice");
    assert_eq!(live.csrf_token, first.active.csrf_token);

    // Signing in again from the same browser ends the old session.
    let second = e
        .accounts
        .sign_in("alice", &pw("a-long-password"), Some(&t1))
        .await
        .expect("sign in")
        .expect("signed in");
    let t2 = second.token.expose_secret().to_string();
    assert_ne!(t1, t2);
    assert_ne!(first.active.csrf_token, second.active.csrf_token);
    assert!(e.accounts.session(&t1).await.expect("session").is_none());
    assert!(e.accounts.session(&t2).await.expect("session").is_some());

    e.accounts.sign_out(&t2).await.expect("sign out");
    assert!(e.accounts.session(&t2).await.expect("session").is_none());
}

#[tokio::test]
async fn sessions_end_when_idle_or_at_their_absolute_expiry() {
    sessions_end_when_idle_or_at_their_absolute_expiry_on(&env().await).await;
}

async fn sessions_end_when_idle_or_at_their_absolute_expiry_on(e: &Env) {
    e.accounts
        .create("alice", &pw("a-long-password"), AccountScope::Platform)
        .await
        .expect("create");
    let sign_in = || async {
        e.accounts
            .sign_in("alice", &pw("a-long-password"), None)
            .await
            .expect("sign in")
            .expect("signed in")
            .token
            .expose_secret()
            .to_string()
    };

    // Idle: used every 20 minutes it lives on; 31 minutes unused ends it.
    let t = sign_in().await;
    for _ in 0..3 {
        e.clock.advance(Duration::minutes(20));
        assert!(e.accounts.session(&t).await.expect("s").is_some());
    }
    e.clock.advance(Duration::minutes(31));
    assert!(e.accounts.session(&t).await.expect("s").is_none());
    assert!(
        e.store
            .get_session(&session_token_hash(&t))
            .await
            .expect("get")
            .is_none()
    );

    // Absolute: used every 20 minutes, it still ends 8 hours after sign-in.
    let t = sign_in().await;
    let mut alive_for = Duration::ZERO;
    while e.accounts.session(&t).await.expect("s").is_some() {
        e.clock.advance(Duration::minutes(20));
        alive_for += Duration::minutes(20);
        assert!(
            alive_for <= Duration::hours(9),
            "the session outlived its absolute expiry"
        );
    }
    assert!(alive_for >= Duration::hours(8) - Duration::minutes(20));
}

#[tokio::test]
async fn deleting_an_account_or_its_organization_ends_its_sessions() {
    deleting_an_account_or_its_organization_ends_its_sessions_on(&env().await).await;
}

async fn deleting_an_account_or_its_organization_ends_its_sessions_on(e: &Env) {
    let org = new_org(e.store.as_ref() as &dyn Store, "Fabrikam").await;
    e.accounts
        .create(
            "ops",
            &pw("a-long-password"),
            AccountScope::Organization(org.id),
        )
        .await
        .expect("create");
    e.accounts
        .create("root", &pw("a-long-password"), AccountScope::Platform)
        .await
        .expect("create");
    let s = e
        .accounts
        .sign_in("ops", &pw("a-long-password"), None)
        .await
        .expect("sign in")
        .expect("signed in");
    assert_eq!(s.active.account.scope, AccountScope::Organization(org.id));
    assert!(s.active.account.scope.sees(org.id));
    assert!(
        !s.active
            .account
            .scope
            .sees(consentry_domain::OrgId::new_random())
    );
    let token = s.token.expose_secret().to_string();

    assert!(
        e.store
            .delete_organization(org.id)
            .await
            .expect("delete org")
    );
    assert!(e.accounts.session(&token).await.expect("s").is_none());
    let names: Vec<String> = e
        .accounts
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.username)
        .collect();
    assert_eq!(names, vec!["root".to_string()]);

    let s = e
        .accounts
        .sign_in("root", &pw("a-long-password"), None)
        .await
        .expect("sign in")
        .expect("signed in");
    e.accounts.delete("ROOT").await.expect("delete");
    assert!(
        e.accounts
            .session(s.token.expose_secret())
            .await
            .expect("s")
            .is_none()
    );
    assert!(matches!(
        e.accounts.delete("root").await,
        Err(DomainError::NotFound { .. })
    ));
}

/// The same story on PostgreSQL, when `CONSENTRY_TEST_POSTGRES_URL` names a server (an admin URL of a
/// role with CREATEDB, as `scripts/ensure-postgres.sh` prints); skipped without it, except under CI.
#[tokio::test]
async fn the_account_story_on_postgres() {
    let Some(admin) = consentry_store::story::postgres_admin_url("PostgreSQL account story") else {
        return;
    };
    let db = consentry_store::story::TestDatabase::create(&admin, "consentry_test").await;
    let url = db.url.clone();
    {
        for step in 0..4 {
            let e = env_on(&url).await;
            match step {
                0 => uniqueness(&e).await,
                1 => sign_in_rotates_sessions_and_stores_only_token_hashes_on(&e).await,
                2 => sessions_end_when_idle_or_at_their_absolute_expiry_on(&e).await,
                _ => deleting_an_account_or_its_organization_ends_its_sessions_on(&e).await,
            }
            // Each step starts from empty tables.
            for t in ["console_sessions", "operator_accounts"] {
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {t}")))
                    .execute(&mut sqlx::PgConnection::connect(&url).await.expect("connect"))
                    .await
                    .expect("clean");
            }
            e.store.close().await;
        }
    }
}

#[tokio::test]
async fn accounts_written_before_roles_read_as_admins_and_viewers_keep_their_role() {
    let e = env().await;
    let org = new_org(e.store.as_ref() as &dyn Store, "Contoso").await;
    // A row as migration 0004 wrote it, without a role: migration 0006 makes it an admin.
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", e.path.display()))
        .await
        .expect("connect");
    let id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO operator_accounts (id, username, org_id, password_hash, created_at) VALUES ($1, 'old', $2, 'x', 0)",
    )
    .bind(id.hyphenated().to_string())
    .bind(org.id.to_string())
    .execute(&mut conn)
    .await
    .expect("insert an old-style row");
    let old = e.store.get_account(id).await.expect("read").expect("found");
    assert_eq!(old.role, Role::Admin);

    let v = e
        .accounts
        .create_with_role(
            "reader",
            &pw("a-long-password"),
            AccountScope::Organization(org.id),
            Role::Viewer,
        )
        .await
        .expect("create a viewer");
    assert_eq!(v.role, Role::Viewer);
    let s = e
        .accounts
        .sign_in("reader", &pw("a-long-password"), None)
        .await
        .expect("sign in")
        .expect("signed in");
    assert_eq!(s.active.account.role, Role::Viewer);
    assert!(matches!(
        e.accounts
            .create_with_role(
                "root-viewer",
                &pw("a-long-password"),
                AccountScope::Platform,
                Role::Viewer
            )
            .await,
        Err(DomainError::Invalid { field: "role", .. })
    ));
}

#[tokio::test]
async fn personal_tokens_are_shown_once_stored_hashed_expire_and_are_revocable() {
    let e = env().await;
    let org = new_org(e.store.as_ref() as &dyn Store, "Contoso").await;
    let a = e
        .accounts
        .create_with_role(
            "reader",
            &pw("a-long-password"),
            AccountScope::Organization(org.id),
            Role::Viewer,
        )
        .await
        .expect("create");
    let other = e
        .accounts
        .create("other", &pw("a-long-password"), AccountScope::Platform)
        .await
        .expect("create");
    let (t, secret) = e
        .accounts
        .create_token(&a, "laptop", Duration::days(7))
        .await
        .expect("token");
    let secret = secret.expose_secret().to_string();
    assert!(secret.starts_with("cpt_") && secret.len() > 40, "{secret}");
    assert_eq!(t.token_hash, session_token_hash(&secret));
    assert_ne!(t.token_hash, secret);

    let (who, used) = e
        .accounts
        .authenticate_token(&secret)
        .await
        .expect("auth")
        .expect("a live token authenticates");
    assert_eq!((who.id, who.role), (a.id, Role::Viewer));
    assert!(used.last_used_at.is_some());
    let caller = who.caller("api");
    assert_eq!(caller.scope, AccountScope::Organization(org.id));
    assert_eq!(caller.actor.to_string(), "api:reader");
    let listed = e.accounts.tokens(a.id).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some(), "the use was recorded");

    for wrong in ["", "cpt_", "csk_abc", &format!("{secret}x")] {
        assert!(
            e.accounts
                .authenticate_token(wrong)
                .await
                .expect("auth")
                .is_none(),
            "{wrong:?}"
        );
    }
    for bad in [
        ("", Duration::days(7)),
        ("x", Duration::hours(1)),
        ("x", Duration::days(400)),
    ] {
        assert!(matches!(
            e.accounts.create_token(&a, bad.0, bad.1).await,
            Err(DomainError::Invalid { .. })
        ));
    }

    // Only its own account revokes it.
    assert!(matches!(
        e.accounts.revoke_token(other.id, t.id).await,
        Err(DomainError::NotFound { .. })
    ));
    e.accounts.revoke_token(a.id, t.id).await.expect("revoke");
    assert!(
        e.accounts
            .authenticate_token(&secret)
            .await
            .expect("auth")
            .is_none()
    );

    // Expiry.
    let (_, s2) = e
        .accounts
        .create_token(&a, "short", Duration::days(1))
        .await
        .expect("token");
    assert!(
        e.accounts
            .authenticate_token(s2.expose_secret())
            .await
            .expect("auth")
            .is_some()
    );
    e.clock.advance(Duration::days(1));
    assert!(
        e.accounts
            .authenticate_token(s2.expose_secret())
            .await
            .expect("auth")
            .is_none(),
        "an expired token is refused"
    );
}
