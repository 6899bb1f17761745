//! Matching Graph `keyCredentials` entries (entra-facts §4.9) against a loaded certificate.

use crate::common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Expected, fixture, fixture_now};
use consentry_certs::{ClientCertificate, keycredential_matches};

fn leaf() -> ClientCertificate {
    let exp = Expected::load();
    ClientCertificate::from_pfx(&fixture("default.pfx"), exp.password(), fixture_now()).unwrap()
}

#[test]
fn custom_key_identifier_matches_in_every_form_seen() {
    let exp = Expected::load();
    let cert = leaf();
    let sha1 = exp.fingerprint("leaf.sha1");
    let hex_upper = hex::encode_upper(&sha1);
    for id in [
        hex_upper.clone(),
        hex_upper.to_lowercase(),
        exp.get("leaf.sha1").to_owned(),
        STANDARD.encode(&sha1),
        STANDARD.encode(hex_upper.as_bytes()),
        STANDARD.encode(exp.fingerprint("leaf.sha256")),
    ] {
        assert!(keycredential_matches(&cert, Some(&id), None), "{id}");
    }
}

#[test]
fn other_identifiers_do_not_match() {
    let exp = Expected::load();
    let cert = leaf();
    for id in [
        hex::encode_upper(exp.fingerprint("root.sha1")),
        STANDARD.encode(exp.fingerprint("inter.sha1")),
        STANDARD.encode("CN=consentry-fixture-app"),
        "".to_owned(),
        "garbage".to_owned(),
    ] {
        assert!(!keycredential_matches(&cert, Some(&id), None), "{id}");
    }
    assert!(!keycredential_matches(&cert, None, None));
}

#[test]
fn key_decides_when_present() {
    let exp = Expected::load();
    let cert = leaf();
    let own = STANDARD.encode(fixture("leaf.cer"));
    let other = STANDARD.encode(fixture("root.cer"));
    assert!(keycredential_matches(&cert, None, Some(&own)));
    assert!(keycredential_matches(
        &cert,
        Some("arbitrary label"),
        Some(&own)
    ));
    // A different certificate in `key` wins over a matching identifier.
    let sha1_hex = hex::encode_upper(exp.fingerprint("leaf.sha1"));
    assert!(!keycredential_matches(&cert, Some(&sha1_hex), Some(&other)));
    // An undecodable `key` falls back to the identifier.
    assert!(keycredential_matches(&cert, Some(&sha1_hex), Some("%%%")));
}
