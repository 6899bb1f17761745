//! Client assertions, verified with jsonwebtoken and the public key of the certificate's `.cer`.

use crate::common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Expected, fixture, fixture_now, rsa_public_key_of_cert};
use consentry_certs::{
    ASSERTION_LIFETIME_SECS, AssertionAlg, AssertionClaims, AssertionError, ClientCertificate,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use time::OffsetDateTime;

const CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const TOKEN_URL: &str =
    "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token";

fn leaf() -> ClientCertificate {
    let exp = Expected::load();
    ClientCertificate::from_pfx(&fixture("chain.pfx"), exp.password(), fixture_now()).unwrap()
}

fn verify(token: &str, alg: Algorithm, cer: &[u8], now: OffsetDateTime) -> AssertionClaims {
    let key = DecodingKey::from_rsa_der(&rsa_public_key_of_cert(cer));
    let mut v = Validation::new(alg);
    v.set_audience(&[TOKEN_URL]);
    v.set_issuer(&[CLIENT_ID]);
    v.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
    v.validate_nbf = true;
    // The fixtures sign at a fixed time; jsonwebtoken checks exp/nbf against the system clock.
    let fixed_time = (OffsetDateTime::now_utc() - now).whole_minutes().abs() > 1;
    if fixed_time {
        v.validate_exp = false;
        v.validate_nbf = false;
    }
    jsonwebtoken::decode::<AssertionClaims>(token, &key, &v)
        .unwrap_or_else(|e| panic!("assertion does not verify: {e}"))
        .claims
}

#[test]
fn rs256_assertion_carries_x5t_and_verifies_with_the_cer() {
    let exp = Expected::load();
    let cert = leaf();
    let now = fixture_now();
    let token = cert
        .client_assertion(CLIENT_ID, TOKEN_URL, AssertionAlg::Rs256X5t, now)
        .unwrap();

    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(
        header.x5t.as_deref(),
        Some(
            URL_SAFE_NO_PAD
                .encode(exp.fingerprint("leaf.sha1"))
                .as_str()
        )
    );
    assert_eq!(header.x5t_s256, None);
    assert_eq!(header.kid, None);

    let claims = verify(&token, Algorithm::RS256, &fixture("leaf.cer"), now);
    assert_eq!(claims.aud, TOKEN_URL);
    assert_eq!(claims.iss, CLIENT_ID);
    assert_eq!(claims.sub, CLIENT_ID);
    assert_eq!(claims.iat, now.unix_timestamp());
    assert_eq!(claims.nbf, claims.iat);
    assert_eq!(claims.exp, claims.iat + ASSERTION_LIFETIME_SECS);
    assert_eq!(ASSERTION_LIFETIME_SECS, 600);
    let jti = uuid::Uuid::parse_str(&claims.jti).expect("jti is a UUID");
    assert_eq!(jti.get_version_num(), 4);
}

#[test]
fn ps256_assertion_carries_x5t_s256_and_verifies_with_the_cer() {
    let exp = Expected::load();
    let cert = leaf();
    let now = OffsetDateTime::now_utc();
    let token = cert
        .client_assertion(CLIENT_ID, TOKEN_URL, AssertionAlg::Ps256X5tS256, now)
        .unwrap();

    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::PS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(
        header.x5t_s256.as_deref(),
        Some(
            URL_SAFE_NO_PAD
                .encode(exp.fingerprint("leaf.sha256"))
                .as_str()
        )
    );
    assert_eq!(header.x5t, None);
    assert_eq!(header.kid, None);
    // The raw header JSON names the member exactly `x5t#S256`.
    let raw_header = token.split('.').next().unwrap();
    let raw_header = String::from_utf8(URL_SAFE_NO_PAD.decode(raw_header).unwrap()).unwrap();
    assert!(raw_header.contains("\"x5t#S256\""), "{raw_header}");

    // Verified with exp and nbf checked against the real clock.
    let claims = verify(&token, Algorithm::PS256, &fixture("leaf.cer"), now);
    assert_eq!(claims.iss, CLIENT_ID);
    assert_eq!(claims.exp - claims.nbf, 600);
}

#[test]
fn assertion_does_not_verify_with_another_certificate() {
    let token = leaf()
        .client_assertion(
            CLIENT_ID,
            TOKEN_URL,
            AssertionAlg::Ps256X5tS256,
            fixture_now(),
        )
        .unwrap();
    let key = DecodingKey::from_rsa_der(&rsa_public_key_of_cert(&fixture("root.cer")));
    let mut v = Validation::new(Algorithm::PS256);
    v.validate_exp = false;
    v.set_audience(&[TOKEN_URL]);
    assert!(jsonwebtoken::decode::<AssertionClaims>(&token, &key, &v).is_err());
}

#[test]
fn every_assertion_has_a_fresh_jti() {
    let cert = leaf();
    let a = cert
        .client_assertion(CLIENT_ID, TOKEN_URL, AssertionAlg::Rs256X5t, fixture_now())
        .unwrap();
    let b = cert
        .client_assertion(CLIENT_ID, TOKEN_URL, AssertionAlg::Rs256X5t, fixture_now())
        .unwrap();
    let jti = |t: &str| verify(t, Algorithm::RS256, &fixture("leaf.cer"), fixture_now()).jti;
    assert_ne!(jti(&a), jti(&b));
}

#[test]
fn bad_inputs_and_an_invalid_certificate_are_refused() {
    let cert = leaf();
    let alg = AssertionAlg::Ps256X5tS256;
    assert!(matches!(
        cert.client_assertion("", TOKEN_URL, alg, fixture_now()),
        Err(AssertionError::InvalidClientId(_))
    ));
    assert!(matches!(
        cert.client_assertion("a b", TOKEN_URL, alg, fixture_now()),
        Err(AssertionError::InvalidClientId(_))
    ));
    assert!(matches!(
        cert.client_assertion(CLIENT_ID, "login.microsoftonline.com/x", alg, fixture_now()),
        Err(AssertionError::InvalidAudience(_))
    ));
    let after = cert.not_after() + time::Duration::seconds(1);
    assert_eq!(
        cert.client_assertion(CLIENT_ID, TOKEN_URL, alg, after),
        Err(AssertionError::CertificateExpired {
            not_after: cert.not_after()
        })
    );
    let before = cert.not_before() - time::Duration::seconds(1);
    assert_eq!(
        cert.client_assertion(CLIENT_ID, TOKEN_URL, alg, before),
        Err(AssertionError::CertificateNotYetValid {
            not_before: cert.not_before()
        })
    );
}
