//! The chapter on "Sign in with Microsoft": attempts, the accounts of Microsoft identities and
//! organizations' rule for members without an admin role.

use super::*;

/// Attempts are sealed, found by state hash only and taken once (also under concurrency); expired
/// ones are swept; a Microsoft identity has one account, updated in place (same ID) and found by
/// tenant and object ID; the member rule defaults to viewer and round-trips.
pub async fn microsoft_sign_in(store: &dyn Store) {
    use consentry_domain::{
        AccountScope, EntraIdentity, MemberRule, OperatorAccount, Role, SignInAttempt,
    };
    let t0 = now();
    let hash = |s: &str| {
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            format!("{s}{}", token()).as_bytes(),
        ))
    };
    let attempt = |state_hash: String, expires_at: OffsetDateTime| SignInAttempt {
        state_hash,
        secrets: SecretSlice::from(b"{\"verifier\":\"v\"}".to_vec()),
        next: "/console/profiles".into(),
        created_at: t0,
        expires_at,
    };
    let live = attempt(hash("live"), t0 + Duration::minutes(10));
    store
        .insert_sign_in_attempt(&live)
        .await
        .expect("insert an attempt");
    assert!(
        matches!(
            store.insert_sign_in_attempt(&live).await,
            Err(StoreError::Conflict(_))
        ),
        "a state hash is used once"
    );
    assert!(
        store
            .insert_sign_in_attempt(&attempt("state".into(), t0))
            .await
            .is_err(),
        "anything but a hash is refused as a key"
    );
    // Two takers at once: exactly one gets it.
    let (a, b) = tokio::join!(
        store.take_sign_in_attempt(&live.state_hash),
        store.take_sign_in_attempt(&live.state_hash)
    );
    let got: Vec<SignInAttempt> = [a, b]
        .into_iter()
        .filter_map(|r| r.expect("take an attempt"))
        .collect();
    assert_eq!(got.len(), 1, "an attempt is taken once");
    assert_eq!(got[0].secrets.expose_secret(), live.secrets.expose_secret());
    assert_eq!(got[0].next, live.next);
    assert_eq!(
        got[0].expires_at.unix_timestamp(),
        live.expires_at.unix_timestamp()
    );
    assert!(
        store
            .take_sign_in_attempt(&live.state_hash)
            .await
            .expect("take again")
            .is_none(),
        "a taken attempt is gone"
    );
    let old = attempt(hash("old"), t0 - Duration::minutes(1));
    store.insert_sign_in_attempt(&old).await.expect("insert");
    assert!(
        store
            .delete_expired_sign_in_attempts(t0)
            .await
            .expect("sweep")
            >= 1
    );
    assert!(
        store
            .take_sign_in_attempt(&old.state_hash)
            .await
            .expect("take")
            .is_none(),
        "expired attempts are swept"
    );

    let org = new_org(store, "microsoft").await;
    let identity = EntraIdentity {
        tenant: TenantId::from_uuid(Uuid::new_v4()),
        object_id: ObjectId::from_uuid(Uuid::new_v4()),
    };
    assert!(
        store
            .find_entra_account(identity)
            .await
            .expect("find")
            .is_none()
    );
    let first = OperatorAccount {
        id: Uuid::new_v4(),
        username: format!("Megan-{} (entra {})", token(), identity.object_id),
        scope: AccountScope::Organization(org.id),
        role: Role::Admin,
        password_hash: String::new(),
        created_at: t0,
    };
    let saved = store
        .save_entra_account(identity, &first)
        .await
        .expect("create the identity's account");
    assert_eq!(saved.id, first.id);
    assert_eq!(saved.username, first.username.to_lowercase(), "lower case");
    assert_eq!((saved.scope, saved.role), (first.scope, Role::Admin));
    let demoted = OperatorAccount {
        id: Uuid::new_v4(),
        username: format!("renamed-{} (entra {})", token(), identity.object_id),
        role: Role::Viewer,
        ..first.clone()
    };
    let again = store
        .save_entra_account(identity, &demoted)
        .await
        .expect("update the identity's account");
    assert_eq!(again.id, first.id, "one account per identity, same ID");
    assert_eq!(again.role, Role::Viewer, "the role is replaced");
    assert_eq!(
        again.username,
        demoted.username.to_lowercase(),
        "the name follows the UPN"
    );
    assert_eq!(
        store.find_entra_account(identity).await.expect("find"),
        Some(again.clone())
    );
    assert_eq!(
        store
            .find_account(&again.username)
            .await
            .expect("find by name")
            .map(|a| a.id),
        Some(first.id)
    );
    let other = EntraIdentity {
        tenant: identity.tenant,
        object_id: ObjectId::from_uuid(Uuid::new_v4()),
    };
    assert!(
        matches!(
            store
                .save_entra_account(
                    other,
                    &OperatorAccount {
                        id: Uuid::new_v4(),
                        ..demoted.clone()
                    }
                )
                .await,
            Err(StoreError::Conflict(_))
        ),
        "another identity cannot take the name"
    );
    assert!(store.delete_account(first.id).await.expect("delete"));
    assert!(
        store
            .find_entra_account(identity)
            .await
            .expect("find")
            .is_none()
    );

    assert_eq!(
        store.member_rule(org.id).await.expect("rule"),
        MemberRule::Viewer,
        "members are viewers unless the organization says otherwise"
    );
    store
        .set_member_rule(org.id, MemberRule::Refused)
        .await
        .expect("set the rule");
    assert_eq!(
        store.member_rule(org.id).await.expect("rule"),
        MemberRule::Refused
    );
    let ghost = OrgId::new_random();
    assert!(matches!(
        store.member_rule(ghost).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.set_member_rule(ghost, MemberRule::Viewer).await,
        Err(StoreError::NotFound(_))
    ));
}
