#![no_main]
//! The OAuth callback's query parser.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = consentry_protocol::callback::parse_callback_query(&String::from_utf8_lossy(data));
});
