//! Shared helpers for the integration tests: fixture files and the values openssl recorded for
//! them in `fixtures/expected.txt` (written by `fixtures/make-fixtures.sh`).

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use der::Decode as _;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub struct Expected(HashMap<String, String>);

impl Expected {
    pub fn load() -> Self {
        let text = String::from_utf8(fixture("expected.txt")).expect("utf-8");
        let map = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self(map)
    }

    pub fn get(&self, key: &str) -> &str {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("expected.txt has no {key}"))
    }

    pub fn password(&self) -> &str {
        self.get("password")
    }

    /// An openssl `-fingerprint` value (`AB:CD:…`) as raw bytes.
    pub fn fingerprint(&self, key: &str) -> Vec<u8> {
        hex::decode(self.get(key).replace(':', "")).expect("hex fingerprint")
    }

    /// An openssl `-startdate`/`-enddate` value (`Jan  1 00:00:00 2020 GMT`).
    pub fn date(&self, key: &str) -> OffsetDateTime {
        const FORMAT: &[BorrowedFormatItem<'_>] = format_description!(
            "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT"
        );
        time::PrimitiveDateTime::parse(self.get(key), FORMAT)
            .unwrap_or_else(|e| panic!("date {key}: {e}"))
            .assume_utc()
    }
}

/// The PKCS#1 RSA public key of a DER certificate, read with x509-cert directly (not through the
/// crate under test), for `jsonwebtoken::DecodingKey::from_rsa_der`.
pub fn rsa_public_key_of_cert(der: &[u8]) -> Vec<u8> {
    let cert = x509_cert::Certificate::from_der(der).expect("certificate DER");
    cert.tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
        .to_vec()
}

/// A time inside every valid fixture's validity (2020–2100).
pub fn fixture_now() -> OffsetDateTime {
    time::macros::datetime!(2030-06-15 12:00 UTC)
}
