//! The chapter on vendor credential alerts: each credential and stage is claimed once, whoever asks
//! and however many ask at the same time.

use super::*;
use consentry_domain::VendorCredentialAlert;

/// Eight replicas claiming the same alert at once: exactly one records it; the same credential's
/// other stage, and another credential, are claims of their own; the list shows each once with
/// what was recorded, newest first.
pub async fn vendor_alerts(store: &dyn Store) {
    let app = format!("story-app-{}", token());
    let t0 = now();
    let alert =
        |credential: &str, stage: &str, by: usize, at: OffsetDateTime| VendorCredentialAlert {
            app: app.clone(),
            cloud: "global".into(),
            credential_id: credential.into(),
            stage: stage.into(),
            ends_at: Some(t0 + Duration::days(10)),
            raised_at: at,
            raised_by: format!("replica-{by}"),
        };
    let racing: Vec<VendorCredentialAlert> =
        (0..8).map(|i| alert("key-1", "attention", i, t0)).collect();
    let claims = join_all(racing.iter().map(|a| store.claim_vendor_alert(a)).collect()).await;
    let won: Vec<bool> = claims
        .into_iter()
        .map(|c| c.expect("claim an alert"))
        .collect();
    assert_eq!(
        won.iter().filter(|w| **w).count(),
        1,
        "one of concurrent claims records the alert: {won:?}"
    );
    assert!(
        !store
            .claim_vendor_alert(&alert("key-1", "attention", 9, t0 + Duration::hours(6)))
            .await
            .expect("claim again"),
        "a later claim (a restart) records nothing"
    );
    assert!(
        store
            .claim_vendor_alert(&alert("key-1", "expired", 0, t0 + Duration::days(10)))
            .await
            .expect("claim the next stage"),
        "the next stage is an alert of its own"
    );
    assert!(
        store
            .claim_vendor_alert(&alert("key-2", "attention", 0, t0 + Duration::seconds(1)))
            .await
            .expect("claim another credential")
    );
    assert!(
        store
            .claim_vendor_alert(&alert("key-3", "soon", 0, t0))
            .await
            .is_err(),
        "an unknown stage is refused"
    );
    let mine: Vec<VendorCredentialAlert> = store
        .list_vendor_alerts()
        .await
        .expect("list alerts")
        .into_iter()
        .filter(|a| a.app == app)
        .collect();
    let seen: Vec<(&str, &str)> = mine
        .iter()
        .map(|a| (a.credential_id.as_str(), a.stage.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("key-1", "expired"),
            ("key-2", "attention"),
            ("key-1", "attention")
        ],
        "newest first, each once"
    );
    assert_eq!(mine[2].ends_at, Some(t0 + Duration::days(10)));
    assert!(mine[2].raised_by.starts_with("replica-"));
}
