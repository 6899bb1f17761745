//! Certificate client credentials (private_key_jwt): RS256 + x5t and PS256 + x5t#S256, audience,
//! time range, replay, unregistered and removed certificates; keyCredentials on Graph.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use sha1::Digest as _;

use crate::support::*;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A certificate made with rcgen, valid for one year like a typical self-signed app certificate:
/// (certificate PEM, private key PEM, DER).
fn make_cert(cn: &str) -> (String, String, Vec<u8>) {
    crate::support::make_cert(cn, 365)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

struct Assertion<'a> {
    alg: Algorithm,
    der: &'a [u8],
    key_pem: &'a str,
    aud: String,
    nbf: i64,
    exp: i64,
    padded: bool,
}

impl Assertion<'_> {
    fn sign(&self) -> String {
        let mut header = Header::new(self.alg);
        header.typ = Some("JWT".into());
        let encode = |b: &[u8]| {
            if self.padded {
                URL_SAFE.encode(b)
            } else {
                URL_SAFE_NO_PAD.encode(b)
            }
        };
        match self.alg {
            Algorithm::PS256 => header.x5t_s256 = Some(encode(&sha2::Sha256::digest(self.der))),
            _ => header.x5t = Some(encode(&sha1::Sha1::digest(self.der))),
        }
        let mut claims = json!({
            "aud": self.aud, "iss": CUSTOM_APP, "sub": CUSTOM_APP, "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": self.nbf, "iat": self.nbf, "exp": self.exp,
        });
        if self.padded {
            // MSAL Python style: padded thumbprint, fractional NumericDates (`time.time() + 600`), no nbf.
            claims["iat"] = json!(self.nbf as f64 + 0.25);
            claims["exp"] = json!(self.exp as f64 + 0.5);
            if let Some(o) = claims.as_object_mut() {
                o.remove("nbf");
            }
        }
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_rsa_pem(self.key_pem.as_bytes()).unwrap(),
        )
        .unwrap()
    }
}

async fn with_assertion(sim: &entra_sim::RunningSim, assertion: &str) -> (u16, serde_json::Value) {
    let (status, _, body) = token(
        sim,
        CONTOSO,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CUSTOM_APP),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ],
    )
    .await;
    (status, body)
}

#[tokio::test]
async fn certificate_client_credentials_end_to_end() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    // The customer's admin consents to the custom app through the pages.
    let url = format!(
        "{}/{CONTOSO}/v2.0/adminconsent?client_id={CUSTOM_APP}&redirect_uri={}&scope={}&state=s",
        sim.base_url(),
        urlencode(REDIRECT),
        urlencode("https://graph.microsoft.com/.default")
    );
    let page = browser.sign_in(&url, ADMIN, PASSWORD).await;
    let p = page
        .form()
        .submit(&browser, Some("accept"))
        .await
        .redirect_params();
    assert_eq!(p["admin_consent"], "True");

    // The certificate shipped with the scenario (RS256 + x5t, padded base64url as MSAL sends it).
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/contoso-custom-app");
    let cert_pem = std::fs::read_to_string(format!("{dir}/cert.pem")).unwrap();
    let key_pem = std::fs::read_to_string(format!("{dir}/key.pem")).unwrap();
    let der = pem_to_der(&cert_pem);
    let aud = sim.token_endpoint(CONTOSO);
    let rs = Assertion {
        alg: Algorithm::RS256,
        der: &der,
        key_pem: &key_pem,
        aud: aud.clone(),
        nbf: now(),
        exp: now() + 600,
        padded: true,
    }
    .sign();
    let (status, body) = with_assertion(&sim, &rs).await;
    assert_eq!(status, 200, "{body}");
    let at = claims(body["access_token"].as_str().unwrap());
    let roles = at["roles"].as_array().expect("roles");
    assert!(
        roles.contains(&json!("User.Read.All")) && roles.contains(&json!("Tasks.ReadWrite.All")),
        "{roles:?}"
    );
    assert_eq!(at["azpacr"], "2");
    // The same assertion is accepted twice within its lifetime.
    let (status, _) = with_assertion(&sim, &rs).await;
    assert_eq!(status, 200);

    // A second certificate made now, registered through the control API, used with PS256 + x5t#S256.
    let (pem2, key2, der2) = make_cert("consentry-test");
    let key_id = sim
        .control()
        .add_app_certificate(uuid(CUSTOM_APP), &pem2)
        .unwrap();
    let ps = Assertion {
        alg: Algorithm::PS256,
        der: &der2,
        key_pem: &key2,
        aud: aud.clone(),
        nbf: now(),
        exp: now() + 600,
        padded: false,
    }
    .sign();
    let (status, body) = with_assertion(&sim, &ps).await;
    assert_eq!(status, 200, "{body}");
    // Legacy audience form accepted.
    let legacy = Assertion {
        alg: Algorithm::RS256,
        der: &der2,
        key_pem: &key2,
        aud: format!("{}/{CONTOSO_ID}/v2.0", sim.base_url()),
        nbf: now(),
        exp: now() + 600,
        padded: false,
    }
    .sign();
    assert_eq!(with_assertion(&sim, &legacy).await.0, 200);

    // Graph: the app reads its own registration with keyCredentials (home tenant only).
    let token = body["access_token"].as_str().unwrap();
    let (status, _, app) = graph_get(
        &sim,
        &format!("/applications(appId='{CUSTOM_APP}')?$select=id,appId,keyCredentials"),
        token,
    )
    .await;
    assert_eq!(status, 200, "{app}");
    let keys = app["keyCredentials"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let thumb: String = sha1::Sha1::digest(&der2)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let entry = keys
        .iter()
        .find(|k| k["customKeyIdentifier"] == thumb)
        .expect("new certificate listed");
    assert_eq!(entry["type"], "AsymmetricX509Cert");
    assert_eq!(entry["usage"], "Verify");
    assert_eq!(entry["keyId"], key_id.to_string());
    assert!(entry["key"].is_string(), "key present with $select");

    // Removing the certificate: 700027.
    sim.control()
        .remove_app_certificate(uuid(CUSTOM_APP), &key_id.to_string())
        .unwrap();
    let (status, body) = with_assertion(&sim, &ps).await;
    assert_aad_error(status, &body, 401, "invalid_client", 700027);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("The key was not found")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_assertions_fail_with_700027_and_700024() {
    let sim = start().await;
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(CUSTOM_APP))
        .unwrap();
    let (pem, key, der) = make_cert("registered");
    sim.control()
        .add_app_certificate(uuid(CUSTOM_APP), &pem)
        .unwrap();
    let aud = sim.token_endpoint(CONTOSO);
    // Expired (beyond the clock skew).
    let expired = Assertion {
        alg: Algorithm::RS256,
        der: &der,
        key_pem: &key,
        aud: aud.clone(),
        nbf: now() - 3600,
        exp: now() - 1200,
        padded: false,
    }
    .sign();
    let (status, body) = with_assertion(&sim, &expired).await;
    assert_aad_error(status, &body, 401, "invalid_client", 700024);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("Client assertion is not within its valid time range")
    );
    // Valid now, but the simulator's clock moves past it.
    let fresh = Assertion {
        alg: Algorithm::RS256,
        der: &der,
        key_pem: &key,
        aud: aud.clone(),
        nbf: now(),
        exp: now() + 600,
        padded: false,
    }
    .sign();
    assert_eq!(with_assertion(&sim, &fresh).await.0, 200);
    // Unregistered certificate.
    let (_, other_key, other_der) = make_cert("unregistered");
    let unknown = Assertion {
        alg: Algorithm::RS256,
        der: &other_der,
        key_pem: &other_key,
        aud: aud.clone(),
        nbf: now(),
        exp: now() + 600,
        padded: false,
    }
    .sign();
    let (status, body) = with_assertion(&sim, &unknown).await;
    assert_aad_error(status, &body, 401, "invalid_client", 700027);
    // Registered thumbprint, wrong key: signature check fails.
    let forged = Assertion {
        alg: Algorithm::RS256,
        der: &der,
        key_pem: &other_key,
        aud: aud.clone(),
        nbf: now(),
        exp: now() + 600,
        padded: false,
    }
    .sign();
    let (status, body) = with_assertion(&sim, &forged).await;
    assert_aad_error(status, &body, 401, "invalid_client", 700027);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("signature validation")
    );
    // Moving the simulated clock does not expire assertions (clients sign with the real clock)...
    sim.control()
        .advance_clock(std::time::Duration::from_secs(3600))
        .unwrap();
    assert_eq!(with_assertion(&sim, &fresh).await.0, 200);
    // ...but past the certificate's end date the key credential has expired: 700027.
    sim.control()
        .advance_clock(std::time::Duration::from_secs(2 * 366 * 86400))
        .unwrap();
    let (status, body) = with_assertion(&sim, &fresh).await;
    assert_aad_error(status, &body, 401, "invalid_client", 700027);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("The key used is expired")
    );
    sim.shutdown().await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}
