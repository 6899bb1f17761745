#![no_main]
//! `.pfx` parsing: any bytes give a certificate or a `PfxError`, never a panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    consentry_certs::fuzz_pfx(data);
});
