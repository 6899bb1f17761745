//! Connecting tenants by consent: pending connections (sealed, taken once) and tenant verification.

use consentry_domain::{
    ConnectStep, EmailAddress, Invitation, PendingConnection, TenantVerification, VerifiedBy,
    reauth::state_hash,
};

use super::*;

fn pending_connection(org: &Organization, state: &str, secret: &[u8]) -> PendingConnection {
    PendingConnection {
        state_hash: state_hash(state),
        org_id: org.id,
        started_by: Actor::Operator("console:story".into()),
        step: ConnectStep::AdminConsent,
        tenant_id: Some(TenantId::from_uuid(Uuid::new_v4())),
        created_at: now(),
        expires_at: now() + Duration::minutes(10),
        secrets: SecretSlice::from(secret.to_vec()),
    }
}

/// A pending connection reads back as it was put, its secrets opened; it is taken once; the state
/// itself is refused as a key; an expired one is forgotten when another is put; a tenant is
/// verified once and reads back verified.
pub async fn tenant_connections(store: &dyn Store) {
    let org = new_org(store, "connections").await;
    let state = format!("state-{}", token());
    let p = pending_connection(&org, &state, b"{\"code_verifier\":\"v\"}");
    store
        .put_pending_connection(&p)
        .await
        .expect("put a pending connection");
    assert!(
        store
            .put_pending_connection(&PendingConnection {
                state_hash: state.clone(),
                ..pending_connection(&org, &state, b"x")
            })
            .await
            .is_err(),
        "an OAuth state itself is never stored"
    );
    let mut both = join_all(vec![
        store.take_pending_connection(&p.state_hash),
        store.take_pending_connection(&p.state_hash),
    ])
    .await
    .into_iter()
    .map(|r| r.expect("take"));
    let (a, b) = (both.next().flatten(), both.next().flatten());
    assert!(a.is_some() != b.is_some(), "taken exactly once");
    let got = a.or(b).expect("one taker got it");
    assert_eq!(got.org_id, org.id);
    assert_eq!(got.step, ConnectStep::AdminConsent);
    assert_eq!(got.tenant_id, p.tenant_id);
    assert_eq!(got.started_by, p.started_by);
    assert_eq!(got.expires_at, p.expires_at);
    assert_eq!(got.secrets.expose_secret(), p.secrets.expose_secret());
    assert!(
        store
            .take_pending_connection(&p.state_hash)
            .await
            .expect("take again")
            .is_none(),
        "single use"
    );

    // An expired record is forgotten when the next one is put.
    let old_state = format!("old-{}", token());
    let old = PendingConnection {
        created_at: now() - Duration::hours(1),
        expires_at: now() - Duration::minutes(50),
        step: ConnectStep::SignIn,
        tenant_id: None,
        ..pending_connection(&org, &old_state, b"old")
    };
    store.put_pending_connection(&old).await.expect("put old");
    let next = pending_connection(&org, &format!("next-{}", token()), b"next");
    store.put_pending_connection(&next).await.expect("put next");
    assert!(
        store
            .take_pending_connection(&old.state_hash)
            .await
            .expect("take old")
            .is_none(),
        "an expired connection is forgotten"
    );
    assert!(
        store
            .take_pending_connection(&next.state_hash)
            .await
            .expect("take next")
            .is_some()
    );

    // Verification.
    let tenant = new_tenant(store, &org, "conn").await;
    assert_eq!(tenant.verified, None, "a typed tenant is unverified");
    let v = TenantVerification {
        at: now(),
        by: VerifiedBy::Reauthorization,
    };
    assert!(store.verify_tenant(tenant.id, &v).await.expect("verify"));
    let later = TenantVerification {
        at: now() + Duration::minutes(1),
        by: VerifiedBy::Consent,
    };
    assert!(
        !store.verify_tenant(tenant.id, &later).await.expect("again"),
        "verified once: the first proof stays"
    );
    let read = store
        .get_tenant(tenant.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read.verified, Some(v));
    let listed = store.list_tenants(Some(org.id)).await.expect("list");
    assert_eq!(listed[0].verified, Some(v));
    let verified = Tenant {
        id: TenantId::from_uuid(Uuid::new_v4()),
        primary_domain: DomainName::parse(&format!("v{}.onmicrosoft.com", token())).unwrap(),
        verified: Some(later),
        ..tenant.clone()
    };
    store
        .insert_tenant(&verified)
        .await
        .expect("insert verified");
    assert_eq!(
        store
            .find_tenant_by_domain(&verified.primary_domain)
            .await
            .expect("find")
            .expect("exists")
            .verified,
        Some(later)
    );
    assert!(
        !store
            .verify_tenant(TenantId::from_uuid(Uuid::new_v4()), &v)
            .await
            .expect("absent tenant"),
    );
}

/// An invitation reads back as it was put; it is used once, never once expired; an unknown one
/// is absent.
pub async fn invitations(store: &dyn Store) {
    let org = new_org(store, "invitations").await;
    let inv = Invitation {
        token_hash: state_hash(&format!("token-{}", token())),
        org_id: org.id,
        email: Some(EmailAddress::parse("first.admin@example.com").unwrap()),
        created_by: Actor::Operator("cli:root".into()),
        created_at: now(),
        expires_at: now() + Duration::hours(72),
        used_at: None,
        used_by: None,
    };
    store.insert_invitation(&inv).await.expect("insert");
    assert_eq!(
        store.get_invitation(&inv.token_hash).await.expect("get"),
        Some(inv.clone())
    );
    assert!(
        store
            .insert_invitation(&Invitation {
                token_hash: "not-a-hash".into(),
                ..inv.clone()
            })
            .await
            .is_err(),
        "the token itself is never stored"
    );
    let at = now();
    assert!(
        store
            .use_invitation(&inv.token_hash, "alice", at)
            .await
            .expect("use")
    );
    assert!(
        !store
            .use_invitation(&inv.token_hash, "mallory", now())
            .await
            .expect("again"),
        "single use"
    );
    let used = store
        .get_invitation(&inv.token_hash)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (used.used_at, used.used_by.as_deref()),
        (Some(at), Some("alice"))
    );

    let expired = Invitation {
        token_hash: state_hash(&format!("expired-{}", token())),
        expires_at: now() - Duration::minutes(1),
        ..inv.clone()
    };
    store
        .insert_invitation(&expired)
        .await
        .expect("insert expired");
    assert!(
        !store
            .use_invitation(&expired.token_hash, "bob", now())
            .await
            .expect("use expired"),
        "an expired invitation is not used"
    );
    assert_eq!(
        store
            .get_invitation(&state_hash("unknown"))
            .await
            .expect("get unknown"),
        None
    );
}
