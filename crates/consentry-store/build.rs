//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!` embeds the files of
//! `migrations/` at compile time, which cargo does not track by itself (sqlx's documented build script).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
