//! consentry-domain (work in progress).
