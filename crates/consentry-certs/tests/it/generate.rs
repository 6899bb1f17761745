//! The self-signed pair generator: generate, read back, sign, verify with the `.cer`.

use crate::common;

use common::{fixture, rsa_public_key_of_cert};
use consentry_certs::{
    AssertionAlg, AssertionClaims, ClientCertificate, GenerateError, PfxError, PublicCertificate,
    generate_self_signed,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use time::OffsetDateTime;
use time::macros::datetime;

const PASSWORD: &str = "correct horse battery staple";
const TOKEN_URL: &str =
    "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";
const CLIENT_ID: &str = "00000000-1111-2222-3333-444444444444";

#[test]
fn generated_pair_round_trips_and_signs_assertions_the_cer_verifies() {
    let now = OffsetDateTime::now_utc();
    let pair = generate_self_signed("CN=consentry-test-app", 2, PASSWORD, now).unwrap();

    let cert = ClientCertificate::from_pfx(&pair.pfx, PASSWORD, now).unwrap();
    assert_eq!(cert.certificate_der(), pair.cer_der.as_slice());
    assert_eq!(cert.subject(), "CN=consentry-test-app");
    assert_eq!(cert.sha1_thumbprint(), pair.sha1_thumbprint);
    assert_eq!(cert.sha256_thumbprint(), pair.sha256_thumbprint);
    assert!(cert.chain_der().is_empty());
    assert_eq!(cert.not_after(), pair.not_after);
    assert_eq!(pair.not_after.year(), now.year() + 2);
    // Backdated ten minutes against clock skew (X.509 times have whole seconds).
    let backdate = now - pair.not_before;
    assert!(backdate > time::Duration::seconds(599) && backdate < time::Duration::seconds(601));

    // The public certificate is RSA 2048 (256-byte modulus → RSAPublicKey DER of about 270 bytes).
    let public = rsa_public_key_of_cert(&pair.cer_der);
    assert!(
        (266..=274).contains(&public.len()),
        "{} bytes",
        public.len()
    );

    // The PEM is the same certificate.
    let from_pem = PublicCertificate::from_pem(&pair.cer_pem).unwrap();
    assert_eq!(from_pem.der(), pair.cer_der.as_slice());
    assert!(pair.cer_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));

    for (alg, jwt_alg) in [
        (AssertionAlg::Rs256X5t, Algorithm::RS256),
        (AssertionAlg::Ps256X5tS256, Algorithm::PS256),
    ] {
        let token = cert
            .client_assertion(CLIENT_ID, TOKEN_URL, alg, now)
            .unwrap();
        let key = DecodingKey::from_rsa_der(&public);
        let mut v = Validation::new(jwt_alg);
        v.set_audience(&[TOKEN_URL]);
        v.set_issuer(&[CLIENT_ID]);
        v.validate_nbf = true;
        let claims = jsonwebtoken::decode::<AssertionClaims>(&token, &key, &v)
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"))
            .claims;
        assert_eq!(claims.sub, CLIENT_ID);
    }

    assert_eq!(
        ClientCertificate::from_pfx(&pair.pfx, "wrong", now).unwrap_err(),
        PfxError::WrongPassword
    );
    // The Debug output shows no key material and no .pfx bytes.
    let debug = format!("{pair:?}");
    assert!(debug.contains("encrypted"), "{debug}");
    let pfx_start = format!("{:?}", &pair.pfx[..8]);
    assert!(!debug.contains(pfx_start.trim_matches(['[', ']'])));
}

#[test]
fn every_generated_pair_is_new() {
    let now = OffsetDateTime::now_utc();
    let a = generate_self_signed("same", 1, PASSWORD, now).unwrap();
    let b = generate_self_signed("same", 1, PASSWORD, now).unwrap();
    assert_ne!(a.sha1_thumbprint, b.sha1_thumbprint);
    assert_ne!(
        rsa_public_key_of_cert(&a.cer_der),
        rsa_public_key_of_cert(&b.cer_der)
    );
}

#[test]
fn leap_day_plus_years_lands_on_28_february() {
    let now = datetime!(2028-02-29 12:00 UTC);
    let pair = generate_self_signed("leap", 1, PASSWORD, now).unwrap();
    assert_eq!(pair.not_after, datetime!(2029-02-28 12:00 UTC));
}

#[test]
fn invalid_requests_are_refused() {
    let now = OffsetDateTime::now_utc();
    for subject in ["", "CN=", "   ", &"x".repeat(65), "bad\nname"] {
        assert!(
            matches!(
                generate_self_signed(subject, 1, PASSWORD, now),
                Err(GenerateError::InvalidSubject(_))
            ),
            "{subject:?}"
        );
    }
    assert_eq!(
        generate_self_signed("ok", 0, PASSWORD, now).unwrap_err(),
        GenerateError::InvalidYears(0)
    );
    assert_eq!(
        generate_self_signed("ok", 31, PASSWORD, now).unwrap_err(),
        GenerateError::InvalidYears(31)
    );
    assert_eq!(
        generate_self_signed("ok", 1, "", now).unwrap_err(),
        GenerateError::EmptyPassword
    );
}

#[test]
fn write_to_dir_writes_a_private_pfx_and_a_cer_and_never_overwrites() {
    let now = OffsetDateTime::now_utc();
    let pair = generate_self_signed("consentry-disk", 1, PASSWORD, now).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (pfx, cer) = pair.write_to_dir(dir.path(), "custom-app").unwrap();
    assert_eq!(pfx, dir.path().join("custom-app.pfx"));
    assert_eq!(cer, dir.path().join("custom-app.cer"));
    assert_eq!(std::fs::read(&pfx).unwrap(), pair.pfx);
    assert_eq!(std::fs::read(&cer).unwrap(), pair.cer_der);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&pfx).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    let again = pair.write_to_dir(dir.path(), "custom-app").unwrap_err();
    assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(
        std::fs::read(&pfx).unwrap(),
        pair.pfx,
        "existing file was touched"
    );

    for bad in ["", "../escape", "a/b", ".hidden"] {
        assert_eq!(
            pair.write_to_dir(dir.path(), bad).unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput,
            "{bad:?}"
        );
    }
    // The openssl fixtures stay untouched by any of this.
    assert!(!fixture("leaf.cer").is_empty());
}
