//! consentry-store (work in progress).
