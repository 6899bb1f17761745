//! Integration tests of the catalog: the embedded default catalog against the reference document, the
//! errors of malformed catalogs, and the fuzz target's corpus as a regression suite.

mod builtin;
mod fuzz_corpus;
mod invalid;
