//! consentry-server (work in progress).
