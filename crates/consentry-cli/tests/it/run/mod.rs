//! Running the `consentry` binary as an operator would, on a data folder of the test's own: a clean
//! environment (only `PATH` and `CONSENTRY_DATA_DIR`), and the answers checked for success or failure.

// Each test file uses the part it needs.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// The command, ready to run: `consentry ARGS` with a clean environment on `data_dir`.
pub fn command(data_dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_consentry"));
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CONSENTRY_DATA_DIR", data_dir);
    c
}

/// Runs `consentry ARGS` on `data_dir`.
pub fn consentry(data_dir: &Path, args: &[&str]) -> Output {
    command(data_dir, args).output().expect("run consentry")
}

/// The standard output of a run that must succeed (its standard error in the failure message).
pub fn succeeded(out: Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "consentry {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The standard error of a run that must fail.
pub fn failed(out: Output, args: &[&str]) -> String {
    assert!(!out.status.success(), "consentry {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

/// Runs `consentry ARGS`, which must succeed; its standard output.
pub fn ok(data_dir: &Path, args: &[&str]) -> String {
    succeeded(consentry(data_dir, args), args)
}

/// Runs `consentry ARGS`, which must fail; its standard error.
pub fn fails(data_dir: &Path, args: &[&str]) -> String {
    failed(consentry(data_dir, args), args)
}

/// Creates the organization "Contoso" and connects its tenant contoso.onmicrosoft.com
/// (11111111-2222-4333-8444-555555555555); returns the organization's ID.
pub fn contoso(data_dir: &Path) -> String {
    contoso_by(|args| ok(data_dir, args))
}

/// [`contoso`] through `ok`, a runner of the test's own (its environment) that must succeed.
pub fn contoso_by(ok: impl Fn(&[&str]) -> String) -> String {
    let org: serde_json::Value =
        serde_json::from_str(&ok(&["orgs", "create", "--name", "Contoso", "--json"]))
            .expect("orgs create --json");
    let org_id = org[0]["id"].as_str().expect("organization ID").to_string();
    ok(&[
        "tenants",
        "connect",
        "--org",
        &org_id,
        "--tenant-id",
        "11111111-2222-4333-8444-555555555555",
        "--cloud",
        "global",
        "--domain",
        "contoso.onmicrosoft.com",
    ]);
    org_id
}
