//! Microsoft's own MSAL for Python against the simulator (`tests/msal/check_msal.py`): client
//! credentials with a secret and with a certificate, authorization code + PKCE and device code for
//! the public desktop sample app, and refresh — proof that the simulator speaks the protocol, not
//! one client's dialect of it.
//!
//! The script runs with the virtualenv `scripts/test.sh` creates, `target/msal-venv` (or the
//! Python named by `ENTRA_SIM_MSAL_PYTHON`). Without it the test is skipped with the reason, and
//! fails when `CI` is set.

use std::path::{Path, PathBuf};
use std::process::Command;

use entra_sim::{RunningSim, Scenario, SimOptions};

/// The virtualenv's Python, or `None` (skipped, or failed under CI) when it is missing.
fn msal_python() -> Option<PathBuf> {
    let python = std::env::var_os("ENTRA_SIM_MSAL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/msal-venv/bin/python")
        });
    if python.exists() {
        return Some(python);
    }
    let msg = format!(
        "the MSAL test needs {} (a virtualenv with the msal package: python3 -m venv target/msal-venv && target/msal-venv/bin/pip install 'msal>=1.24,<2'; scripts/test.sh creates it)",
        python.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{msg}");
    println!("skipped: {msg}");
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn msal_for_python_signs_in_with_every_flow() {
    let Some(python) = msal_python() else {
        return;
    };
    let dir = tempfile::tempdir().expect("state directory");
    let mut scenario = Scenario::contoso();
    // MSAL waits `interval` seconds between polls: one second keeps the test short.
    scenario.settings.device_code.interval_secs = 1;
    let sim = RunningSim::start(
        scenario,
        SimOptions {
            state_dir: Some(dir.path().to_owned()),
            ..SimOptions::default()
        },
    )
    .await
    .expect("simulator starts");
    let ca = sim.ca_pem_path().expect("ca.pem written").to_owned();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/msal/check_msal.py");
    let base = sim.base_url().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(&script)
            .arg("--base")
            .arg(&base)
            .arg("--ca")
            .arg(&ca)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", python.display()))
    })
    .await
    .expect("the script ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "check_msal.py failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("all MSAL checks passed"), "{stdout}");
    for n in 1..=5 {
        assert!(stdout.contains(&format!("ok {n} - ")), "step {n}: {stdout}");
    }
    sim.shutdown().await;
}
