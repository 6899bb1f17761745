//! consentry-mail's integration tests: delivery to a real SMTP server on loopback (the `mailbox`
//! feature's mailin-embedded server), over a real store.

mod common;
mod delivery;
mod digest;
mod invalid;
