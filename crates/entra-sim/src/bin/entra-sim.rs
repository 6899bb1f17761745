//! entra-sim binary.
fn main() {}
