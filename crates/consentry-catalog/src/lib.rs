//! consentry-catalog (work in progress).
