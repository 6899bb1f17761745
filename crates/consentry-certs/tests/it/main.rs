//! Integration tests of the certificate crate: `.pfx` files openssl produced, client assertions, generated
//! pairs, Graph `keyCredentials` matching, and the fuzz target's corpus as a regression suite.

mod common;

mod assertion;
mod fuzz_corpus;
mod generate;
mod keycredential;
mod pfx;
