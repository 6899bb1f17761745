//! Conversions between domain values and the portable column representations (text, integers, JSON
//! text, bytes) that both SQLite and PostgreSQL accept through sqlx's `Any` driver.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consentry_domain::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use uuid::Uuid;

/// A time as Unix nanoseconds (UTC). Exact for every instant between the years 1678 and 2262.
pub(crate) fn time_to_db(t: OffsetDateTime) -> Result<i64, StoreError> {
    i64::try_from(t.unix_timestamp_nanos()).map_err(|_| {
        StoreError::Backend(format!(
            "time {t} is outside the storable range (years 1678 to 2262)"
        ))
    })
}

/// The inverse of [`time_to_db`]; the result is in UTC.
pub(crate) fn time_from_db(column: &str, n: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n))
        .map_err(|e| StoreError::Backend(format!("column {column} holds an invalid time {n}: {e}")))
}

pub(crate) fn opt_time_to_db(t: Option<OffsetDateTime>) -> Result<Option<i64>, StoreError> {
    t.map(time_to_db).transpose()
}

pub(crate) fn opt_time_from_db(
    column: &str,
    n: Option<i64>,
) -> Result<Option<OffsetDateTime>, StoreError> {
    n.map(|n| time_from_db(column, n)).transpose()
}

/// Any serializable value as JSON text.
pub(crate) fn json_to_db<T: Serialize + ?Sized>(what: &str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v)
        .map_err(|e| StoreError::Backend(format!("{what} could not be encoded as JSON: {e}")))
}

/// A stored catalog version (`consented_catalog_version`) back into one.
pub(crate) fn version_from_db(v: Option<i64>) -> Result<Option<u32>, StoreError> {
    v.map(|v| {
        u32::try_from(v).map_err(|_| {
            StoreError::Backend(format!(
                "column consented_catalog_version holds {v}, not a version"
            ))
        })
    })
    .transpose()
}

/// JSON text back into a value.
pub(crate) fn json_from_db<T: DeserializeOwned>(column: &str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| {
        StoreError::Backend(format!(
            "column {column} holds JSON that does not decode: {e}"
        ))
    })
}

/// A unit-like enum whose serde form is a plain string (e.g. `"admin"`), as that string.
pub(crate) fn enum_to_db<T: Serialize>(what: &str, v: &T) -> Result<String, StoreError> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        Ok(other) => Err(StoreError::Backend(format!(
            "{what} does not serialize as a plain string but as {other}"
        ))),
        Err(e) => Err(StoreError::Backend(format!(
            "{what} could not be encoded: {e}"
        ))),
    }
}

/// The inverse of [`enum_to_db`].
pub(crate) fn enum_from_db<T: DeserializeOwned>(column: &str, s: String) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(s))
        .map_err(|e| StoreError::Backend(format!("column {column} holds an unknown value: {e}")))
}

/// A value parsed from text with its own fallible parser.
pub(crate) fn parse_from_db<T, E: std::fmt::Display>(
    column: &str,
    s: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, StoreError> {
    parse(s)
        .map_err(|e| StoreError::Backend(format!("column {column} holds an invalid value: {e}")))
}

/// Escapes `%`, `_` and the escape character itself so that `s` matches literally inside a
/// `LIKE … ESCAPE '\'` pattern.
pub(crate) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

const CURSOR_VERSION: &str = "p1";

/// The position of a profile in the (created_at, id) order, as an opaque base64url cursor.
pub(crate) fn encode_cursor(created_at: i64, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_VERSION}:{created_at}:{}", id.hyphenated()))
}

/// The inverse of [`encode_cursor`]; any malformed input is `BadCursor`.
pub(crate) fn decode_cursor(cursor: &str) -> Result<(i64, Uuid), StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| StoreError::BadCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::BadCursor)?;
    let mut parts = text.splitn(3, ':');
    let (Some(CURSOR_VERSION), Some(at), Some(id)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(StoreError::BadCursor);
    };
    let at: i64 = at.parse().map_err(|_| StoreError::BadCursor)?;
    if id.len() != 36 {
        return Err(StoreError::BadCursor);
    }
    let id = Uuid::try_parse(id).map_err(|_| StoreError::BadCursor)?;
    Ok((at, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_escaping() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
        assert_eq!(escape_like("plain"), "plain");
    }

    #[test]
    fn cursor_round_trip_and_rejections() {
        let id = Uuid::new_v4();
        let c = encode_cursor(-42, id);
        assert!(
            c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(decode_cursor(&c).unwrap(), (-42, id));
        for bad in [
            "",
            "!!!",
            "cDE6MTIz", // "p1:123"
            &URL_SAFE_NO_PAD.encode("p2:1:00000000-0000-0000-0000-000000000000"),
            &URL_SAFE_NO_PAD.encode("p1:x:00000000-0000-0000-0000-000000000000"),
            &URL_SAFE_NO_PAD.encode("p1:1:00000000000000000000000000000000"),
            &URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
        ] {
            assert!(
                matches!(decode_cursor(bad), Err(StoreError::BadCursor)),
                "{bad}"
            );
        }
    }

    #[test]
    fn times_are_exact() {
        let t = time::macros::datetime!(2026-11-26 09:04:47.123456789 +02:00);
        let n = time_to_db(t).unwrap();
        assert_eq!(time_from_db("t", n).unwrap(), t);
        let far = time::macros::datetime!(2300-01-01 0:00 UTC);
        assert!(matches!(time_to_db(far), Err(StoreError::Backend(_))));
    }
}
