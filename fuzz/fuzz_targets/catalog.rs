#![no_main]
//! The catalog loader (TOML syntax and semantic checks).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = consentry_catalog::Catalog::from_toml_str(text, "fuzz");
    }
});
