//! Integration tests of the protocol parsers: the callback-query fuzz target's committed corpus as a
//! regression suite, with the parser's rules.

mod fuzz_corpus;
