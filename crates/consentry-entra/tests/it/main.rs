//! Integration tests of the Entra client: URL builders and error parsing, the wire format against a scripted
//! server, the client and `EntraPlatform` against entra-sim over real HTTPS on loopback, and the AADSTS fuzz
//! target's corpus as a regression suite.

mod pages;

mod clouds;
mod device_code;
mod errors;
mod fuzz_corpus;
mod pacing;
mod platform;
mod sim;
mod urls;
mod wire;
