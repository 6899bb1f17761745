//! The callback-query fuzz target's committed corpus (`fuzz/corpus/callback_query/`) as a
//! regression suite, with the parser's rules.

use consentry_protocol::callback::{CallbackQueryError, MAX_CALLBACK_QUERY, parse_callback_query};

#[test]
fn callback_corpus_parses_without_panics() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus/callback_query");
    let mut ok = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        ok += usize::from(parse_callback_query(&String::from_utf8_lossy(&bytes)).is_ok());
    }
    assert!(ok >= 4, "{ok}");
}

#[test]
fn callback_query_rules() {
    let p = parse_callback_query("code=abc&state=s1&session_state=x&unknown=1").unwrap();
    assert_eq!(p.code.as_deref(), Some("abc"));
    assert_eq!(p.state.as_deref(), Some("s1"));
    assert_eq!(
        parse_callback_query("state=a&code=1&state=b").unwrap_err(),
        CallbackQueryError::Repeated("state")
    );
    assert_eq!(
        parse_callback_query("state=a%00b").unwrap_err(),
        CallbackQueryError::ControlCharacters("state")
    );
    // Microsoft's descriptions carry CRLF-separated trace lines.
    assert!(parse_callback_query("error=x&error_description=AADSTS1%0D%0ATrace+ID%3A+1").is_ok());
    let long = format!("state={}", "a".repeat(MAX_CALLBACK_QUERY));
    assert_eq!(
        parse_callback_query(&long).unwrap_err(),
        CallbackQueryError::TooLong
    );
}
