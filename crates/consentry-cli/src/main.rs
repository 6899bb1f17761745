//! consentry CLI.
fn main() {}
