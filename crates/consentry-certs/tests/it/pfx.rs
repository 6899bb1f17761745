//! Reading `.pfx` files produced by openssl in every common flavour, and each error.

use crate::common;

use common::{Expected, fixture, fixture_now};
use consentry_certs::{ClientCertificate, MAX_PFX_BYTES, PfxError, PublicCertificate};
use secrecy::ExposeSecret as _;
use time::macros::datetime;

fn load(name: &str, password: &str) -> Result<ClientCertificate, PfxError> {
    ClientCertificate::from_pfx(&fixture(name), password, fixture_now())
}

#[test]
fn reads_every_pfx_flavour_with_thumbprints_matching_openssl() {
    let exp = Expected::load();
    let leaf_der = fixture("leaf.cer");
    for (file, password) in [
        ("default.pfx", exp.password()),
        ("legacy.pfx", exp.password()),
        ("windows.pfx", exp.password()),
        ("empty-password.pfx", ""),
        ("chain.pfx", exp.password()),
    ] {
        let cert = load(file, password).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(cert.certificate_der(), leaf_der.as_slice(), "{file}");
        assert_eq!(cert.subject(), exp.get("leaf.subject"), "{file}");
        assert_eq!(
            cert.sha1_thumbprint().as_bytes(),
            exp.fingerprint("leaf.sha1").as_slice(),
            "{file}"
        );
        assert_eq!(
            cert.sha256_thumbprint().as_bytes(),
            exp.fingerprint("leaf.sha256").as_slice(),
            "{file}"
        );
        assert_eq!(
            cert.sha1_thumbprint().to_string(),
            exp.get("leaf.sha1").replace(':', ""),
            "{file}"
        );
        assert_eq!(cert.not_before(), exp.date("leaf.not_before"), "{file}");
        assert_eq!(cert.not_after(), exp.date("leaf.not_after"), "{file}");
        // The key is PKCS#8 (starts with a SEQUENCE and holds the rsaEncryption OID).
        let key = cert.private_key_pkcs8_der().expose_secret();
        assert_eq!(key[0], 0x30, "{file}");
        assert!(
            key.windows(9)
                .any(|w| w == [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]),
            "{file}: no rsaEncryption OID in the key"
        );
    }
}

#[test]
fn chain_is_ordered_from_the_issuer_upwards() {
    let exp = Expected::load();
    let cert = load("chain.pfx", exp.password()).unwrap();
    // make-fixtures.sh adds root before intermediate; the chain must be intermediate, root.
    assert_eq!(
        cert.chain_der(),
        &[fixture("intermediate.cer"), fixture("root.cer")]
    );
    assert!(
        load("default.pfx", exp.password())
            .unwrap()
            .chain_der()
            .is_empty()
    );
}

#[test]
fn wrong_password_is_reported_as_such_for_every_flavour() {
    let exp = Expected::load();
    for file in ["default.pfx", "legacy.pfx", "windows.pfx", "chain.pfx"] {
        assert_eq!(
            load(file, "not-the-password").unwrap_err(),
            PfxError::WrongPassword,
            "{file}"
        );
        assert_eq!(
            load(file, "").unwrap_err(),
            PfxError::WrongPassword,
            "{file}"
        );
    }
    assert_eq!(
        load("empty-password.pfx", exp.password()).unwrap_err(),
        PfxError::WrongPassword
    );
}

#[test]
fn missing_parts_are_named() {
    let exp = Expected::load();
    assert_eq!(
        load("no-key.pfx", exp.password()).unwrap_err(),
        PfxError::NoPrivateKey
    );
    assert_eq!(
        load("no-cert.pfx", exp.password()).unwrap_err(),
        PfxError::NoCertificate
    );
}

#[test]
fn key_of_another_certificate_is_a_mismatch() {
    let exp = Expected::load();
    assert_eq!(
        load("key-mismatch.pfx", exp.password()).unwrap_err(),
        PfxError::KeyMismatch
    );
}

#[test]
fn validity_is_checked_against_the_given_time() {
    let exp = Expected::load();
    let err = load("expired.pfx", exp.password()).unwrap_err();
    assert_eq!(
        err,
        PfxError::Expired {
            not_after: exp.date("expired.not_after")
        }
    );
    assert_eq!(
        exp.date("expired.not_after"),
        datetime!(2002-01-01 0:00 UTC)
    );
    assert!(err.to_string().contains("2002"), "{err}");

    let err = load("not-yet-valid.pfx", exp.password()).unwrap_err();
    assert_eq!(
        err,
        PfxError::NotYetValid {
            not_before: exp.date("notyet.not_before")
        }
    );

    // The same files load at a time inside their validity...
    let bytes = fixture("expired.pfx");
    let at = datetime!(2001-06-01 0:00 UTC);
    assert!(ClientCertificate::from_pfx(&bytes, exp.password(), at).is_ok());
    // ...and the bounds are inclusive.
    let nb = exp.date("leaf.not_before");
    let na = exp.date("leaf.not_after");
    let leaf = fixture("default.pfx");
    assert!(ClientCertificate::from_pfx(&leaf, exp.password(), nb).is_ok());
    assert!(ClientCertificate::from_pfx(&leaf, exp.password(), na).is_ok());
    assert!(matches!(
        ClientCertificate::from_pfx(&leaf, exp.password(), na + time::Duration::seconds(1)),
        Err(PfxError::Expired { .. })
    ));
    assert!(matches!(
        ClientCertificate::from_pfx(&leaf, exp.password(), nb - time::Duration::seconds(1)),
        Err(PfxError::NotYetValid { .. })
    ));
}

#[test]
fn corrupt_input_is_corrupt() {
    let exp = Expected::load();
    assert_eq!(
        load("truncated.pfx", exp.password()).unwrap_err(),
        PfxError::Corrupt
    );
    for bytes in [&b"hello"[..], &[0x30, 0x82, 0xff, 0xff, 0x00]] {
        assert_eq!(
            ClientCertificate::from_pfx(bytes, "", fixture_now()).unwrap_err(),
            PfxError::Corrupt
        );
    }
}

#[test]
fn files_that_are_not_a_pfx_are_named_with_what_to_do() {
    let exp = Expected::load();
    let from = |bytes: &[u8]| ClientCertificate::from_pfx(bytes, exp.password(), fixture_now());

    // An empty file.
    let err = from(b"").unwrap_err();
    assert_eq!(err, PfxError::Empty);
    assert!(
        err.to_string().contains("the file is empty (0 bytes)"),
        "{err}"
    );

    // A .cer (DER certificate) renamed .pfx: no private key.
    let err = from(&fixture("leaf.cer")).unwrap_err();
    assert_eq!(err, PfxError::CertificateOnly);
    let m = err.to_string();
    assert!(
        m.contains("certificate without its private key (.cer/.crt)")
            && m.contains("upload the .pfx that holds the private key"),
        "{m}"
    );

    // PEM files named .pfx: a certificate, a key, both, with a byte-order mark or leading blank line.
    let cert_pem =
        consentry_certs::generate_self_signed("consentry-pem-test", 1, "pw", fixture_now())
            .unwrap()
            .cer_pem;
    for pem in [
        cert_pem.clone(),
        format!("\u{feff}{cert_pem}"),
        format!("\n\n{cert_pem}"),
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n".to_string(),
        format!("Bag Attributes\n    friendlyName: app\n{cert_pem}"),
    ] {
        let err = from(pem.as_bytes()).unwrap_err();
        assert_eq!(err, PfxError::Pem, "{pem:?}");
        let m = err.to_string();
        assert!(
            m.contains("this is a PEM file")
                && m.contains("export the certificate with its private key as .pfx (PKCS#12)"),
            "{m}"
        );
    }
}

#[test]
fn a_1024_bit_key_is_named_with_its_size_and_the_minimum() {
    let exp = Expected::load();
    let err = load("rsa1024.pfx", exp.password()).unwrap_err();
    assert_eq!(err, PfxError::RsaKeyTooSmall { bits: 1024 });
    let m = err.to_string();
    assert!(m.contains("RSA key is 1024 bits"), "{m}");
    assert!(m.contains("need at least 2048 bits"), "{m}");
    assert!(!m.contains("ring") && !m.contains("TooSmall"), "{m}");
}

#[test]
fn certificate_dates_read_as_utc_minutes() {
    let exp = Expected::load();
    let err = load("expired.pfx", exp.password()).unwrap_err();
    let m = err.to_string();
    assert!(m.contains("expired on 2002-01-01 00:00 UTC:"), "{m}");
    let err = load("not-yet-valid.pfx", exp.password()).unwrap_err();
    let m = err.to_string();
    assert!(m.contains("not valid until 2090-01-01 00:00 UTC:"), "{m}");
    assert_eq!(
        consentry_certs::utc_minutes(datetime!(2021-01-01 9:05:59.5 +02:00)),
        "2021-01-01 07:05 UTC"
    );
}

#[test]
fn non_rsa_key_is_unsupported() {
    let exp = Expected::load();
    match load("ec-key.pfx", exp.password()).unwrap_err() {
        PfxError::UnsupportedKey(why) => assert!(why.contains("elliptic-curve"), "{why}"),
        other => panic!("expected UnsupportedKey, got {other:?}"),
    }
}

#[test]
fn oversize_upload_is_refused_before_parsing() {
    let exp = Expected::load();
    // A valid .pfx padded past the limit is refused for its size...
    let mut big = fixture("default.pfx");
    big.resize(MAX_PFX_BYTES + 1, 0);
    assert_eq!(
        ClientCertificate::from_pfx(&big, exp.password(), fixture_now()).unwrap_err(),
        PfxError::TooLarge {
            size: MAX_PFX_BYTES + 1,
            limit: MAX_PFX_BYTES
        }
    );
    // ...while exactly the limit is parsed (and found corrupt because of the padding).
    big.truncate(MAX_PFX_BYTES);
    assert_eq!(
        ClientCertificate::from_pfx(&big, exp.password(), fixture_now()).unwrap_err(),
        PfxError::Corrupt
    );
}

#[test]
fn debug_never_shows_the_private_key() {
    let exp = Expected::load();
    let cert = load("default.pfx", exp.password()).unwrap();
    let debug = format!("{cert:?}");
    assert!(debug.contains("REDACTED"), "{debug}");
    assert!(
        debug.contains(exp.get("leaf.sha1").replace(':', "").as_str()),
        "{debug}"
    );
    let key = cert.private_key_pkcs8_der().expose_secret();
    // Neither as a byte list nor as hex.
    let as_list = format!("{:?}", &key[..12]);
    let as_list = as_list.trim_start_matches('[').trim_end_matches(']');
    assert!(!debug.contains(as_list), "{debug}");
    assert!(!debug.to_lowercase().contains(&hex::encode(&key[20..40])));
}

#[test]
fn to_pfx_round_trips_with_a_new_password() {
    let exp = Expected::load();
    let cert = load("chain.pfx", exp.password()).unwrap();
    let sealed = cert.to_pfx("another password").unwrap();
    let back = ClientCertificate::from_pfx(&sealed, "another password", fixture_now()).unwrap();
    assert_eq!(back.certificate_der(), cert.certificate_der());
    assert_eq!(back.chain_der(), cert.chain_der());
    assert_eq!(
        back.private_key_pkcs8_der().expose_secret(),
        cert.private_key_pkcs8_der().expose_secret()
    );
    assert_eq!(back.sha256_thumbprint(), cert.sha256_thumbprint());
    assert_eq!(
        ClientCertificate::from_pfx(&sealed, exp.password(), fixture_now()).unwrap_err(),
        PfxError::WrongPassword
    );
}

#[test]
fn from_parts_checks_the_pair() {
    let exp = Expected::load();
    let cert = load("default.pfx", exp.password()).unwrap();
    let key = cert.private_key_pkcs8_der().clone();
    let ok =
        ClientCertificate::from_parts(&fixture("leaf.cer"), vec![], key.clone(), fixture_now())
            .unwrap();
    assert_eq!(ok.sha1_thumbprint(), cert.sha1_thumbprint());
    assert_eq!(
        ClientCertificate::from_parts(&fixture("root.cer"), vec![], key, fixture_now())
            .unwrap_err(),
        PfxError::KeyMismatch
    );
}

#[test]
fn public_certificate_reads_der_and_pem() {
    let exp = Expected::load();
    let der = fixture("leaf.cer");
    let cert = PublicCertificate::from_der(&der).unwrap();
    assert_eq!(
        cert.sha1_thumbprint().as_bytes(),
        exp.fingerprint("leaf.sha1").as_slice()
    );
    assert_eq!(cert.issuer(), exp.get("inter.subject"));
    assert!(cert.rsa_public_key_der().is_some());
    let from_pem = PublicCertificate::from_der_or_pem(cert.to_pem().as_bytes()).unwrap();
    assert_eq!(from_pem, cert);
    assert!(cert.is_valid_at(fixture_now()));
    assert!(!cert.is_valid_at(datetime!(2100-01-01 0:00:01 UTC)));
    assert!(PublicCertificate::from_der(b"not a certificate").is_err());
    assert!(
        PublicCertificate::from_der_or_pem(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        )
        .is_err()
    );
}
