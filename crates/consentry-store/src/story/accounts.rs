//! The chapter on accounts' roles and personal access tokens.

use super::*;

/// Roles of accounts and personal access tokens: the role round-trips, tokens are found by hash only,
/// revocation is per account and once, uses are recorded, and tokens go with their account and its
/// organization.
pub async fn roles_and_tokens(store: &dyn Store) {
    use consentry_domain::{AccountScope, OperatorAccount, PersonalToken, Role};
    let org = new_org(store, "roles").await;
    let account = |name: &str, scope, role| OperatorAccount {
        id: Uuid::new_v4(),
        username: format!("{name}-{}", token()),
        scope,
        role,
        password_hash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        created_at: now(),
    };
    let viewer = account("viewer", AccountScope::Organization(org.id), Role::Viewer);
    let admin = account("admin", AccountScope::Organization(org.id), Role::Admin);
    let root = account("root", AccountScope::Platform, Role::Admin);
    for a in [&viewer, &admin, &root] {
        store.insert_account(a).await.expect("insert an account");
    }
    for a in [&viewer, &admin, &root] {
        let got = store
            .get_account(a.id)
            .await
            .expect("read an account")
            .expect("the account exists");
        assert_eq!(
            (got.role, got.scope),
            (a.role, a.scope),
            "role and scope round-trip"
        );
    }

    let t0 = now();
    let new_token = |account: Uuid, name: &str| PersonalToken {
        id: Uuid::new_v4(),
        account_id: account,
        name: name.into(),
        token_hash: format!("{}{}", token(), token()),
        created_at: t0,
        expires_at: t0 + Duration::days(30),
        last_used_at: None,
        revoked_at: None,
    };
    let v1 = new_token(viewer.id, "laptop");
    let v2 = new_token(viewer.id, "ci <script>");
    let a1 = new_token(admin.id, "admin's");
    for t in [&v1, &v2, &a1] {
        store
            .insert_personal_token(t)
            .await
            .expect("insert a personal token");
    }
    let dup = PersonalToken {
        id: Uuid::new_v4(),
        ..v1.clone()
    };
    assert!(
        matches!(
            store.insert_personal_token(&dup).await,
            Err(StoreError::Conflict(_))
        ),
        "a token hash is unique"
    );
    let ghost = new_token(Uuid::new_v4(), "ghost");
    assert!(
        matches!(
            store.insert_personal_token(&ghost).await,
            Err(StoreError::NotFound(_))
        ),
        "a token needs its account"
    );

    let found = store
        .find_personal_token(&v2.token_hash)
        .await
        .expect("find")
        .expect("found by hash");
    assert_eq!(
        (found.id, found.account_id, found.name.as_str()),
        (v2.id, viewer.id, "ci <script>")
    );
    assert_eq!(to_micros(found.expires_at), to_micros(v2.expires_at));
    assert_eq!((found.last_used_at, found.revoked_at), (None, None));
    assert!(
        store
            .find_personal_token("not-a-stored-hash")
            .await
            .expect("find")
            .is_none()
    );
    let listed: Vec<Uuid> = store
        .list_personal_tokens(viewer.id)
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(
        listed.into_iter().collect::<HashSet<_>>(),
        HashSet::from([v1.id, v2.id]),
        "an account lists its own tokens only"
    );

    let used = t0 + Duration::minutes(5);
    assert!(
        store
            .touch_personal_token(v1.id, used)
            .await
            .expect("touch")
    );
    assert!(
        !store
            .touch_personal_token(Uuid::new_v4(), used)
            .await
            .expect("touch")
    );
    let got = store
        .find_personal_token(&v1.token_hash)
        .await
        .expect("find")
        .expect("found");
    assert_eq!(got.last_used_at.map(to_micros), Some(to_micros(used)));

    assert!(
        !store
            .revoke_personal_token(admin.id, v1.id, used)
            .await
            .expect("revoke"),
        "another account cannot revoke a token"
    );
    assert!(
        store
            .revoke_personal_token(viewer.id, v1.id, used)
            .await
            .expect("revoke")
    );
    assert!(
        !store
            .revoke_personal_token(viewer.id, v1.id, used)
            .await
            .expect("revoke"),
        "a token is revoked once"
    );
    let got = store
        .find_personal_token(&v1.token_hash)
        .await
        .expect("find")
        .expect("a revoked token is still found (and refused by its revocation time)");
    assert_eq!(got.revoked_at.map(to_micros), Some(to_micros(used)));

    assert!(store.delete_account(viewer.id).await.expect("delete"));
    for t in [&v1, &v2] {
        assert!(
            store
                .find_personal_token(&t.token_hash)
                .await
                .expect("find")
                .is_none(),
            "tokens go with their account"
        );
    }
    assert!(store.delete_organization(org.id).await.expect("delete org"));
    assert!(store.get_account(admin.id).await.expect("read").is_none());
    assert!(
        store
            .find_personal_token(&a1.token_hash)
            .await
            .expect("find")
            .is_none(),
        "tokens go with their account's organization"
    );
    assert!(store.delete_account(root.id).await.expect("delete"));

    // A service key's last use.
    let org = new_org(store, "keys").await;
    let key = consentry_domain::ApiKey {
        id: consentry_domain::ApiKeyId::new_random(),
        org_id: org.id,
        name: "service".into(),
        key_hash: format!("{}{}", token(), token()),
        created_at: t0,
        revoked_at: None,
        last_used_at: None,
    };
    store.insert_api_key(&key).await.expect("insert a key");
    let got = store
        .find_api_key(&key.key_hash)
        .await
        .expect("find")
        .expect("found");
    assert_eq!(got.last_used_at, None);
    assert!(store.touch_api_key(key.id, used).await.expect("touch"));
    let got = store
        .find_api_key(&key.key_hash)
        .await
        .expect("find")
        .expect("found");
    assert_eq!(got.last_used_at.map(to_micros), Some(to_micros(used)));
    assert!(
        !store
            .touch_api_key(consentry_domain::ApiKeyId::new_random(), used)
            .await
            .expect("touch")
    );
}
