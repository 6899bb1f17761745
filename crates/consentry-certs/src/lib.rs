//! consentry-certs (work in progress).
