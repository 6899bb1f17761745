#![no_main]
//! Microsoft's error bodies and redirect errors (AADSTS codes, suberrors, trace IDs).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    consentry_protocol::fuzz_errors(data);
});
