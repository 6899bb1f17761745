//! entra-sim (work in progress).
