//! Configuration from the environment: the project's own `CONSENTRY_*` variables that are not
//! configuration keys (`CONSENTRY_TEST_POSTGRES_URL`, which scripts/test.sh exports, among them) do
//! not stop `consentry demo` or any command, while a misspelt key is still an error naming it.

use crate::run;
use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use run::command;

#[test]
fn the_demo_starts_with_the_test_suites_variables_in_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(
        dir.path(),
        &[
            "demo",
            "--fresh",
            "--data-dir",
            &dir.path().join("demo").display().to_string(),
            "--listen",
            "127.0.0.1:0",
            "--sim-listen",
            "127.0.0.1:0",
        ],
    )
    .env(
        "CONSENTRY_TEST_POSTGRES_URL",
        "postgres://u:p@127.0.0.1:1/none",
    )
    .env("CONSENTRY_LOG", "warn")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start the demo");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .take(200)
        .map_while(Result::ok)
        .any(|l| l.contains("Consentry demo is ready"));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        ready,
        "the demo did not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_misspelt_key_in_the_environment_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path(), &["orgs", "list"])
        .env(
            "CONSENTRY_TEST_POSTGRES_URL",
            "postgres://u:p@127.0.0.1:1/none",
        )
        .env("CONSENTRY_MONITOR__MAX_CONCURENT", "3")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_concurent"), "{err}");
    // The correct spelling works, beside the test suite's variable.
    let out = command(dir.path(), &["orgs", "list"])
        .env(
            "CONSENTRY_TEST_POSTGRES_URL",
            "postgres://u:p@127.0.0.1:1/none",
        )
        .env("CONSENTRY_MONITOR__MAX_CONCURRENT", "3")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
