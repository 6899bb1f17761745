//! `consentry users`: create (generated, file and stdin passwords; organization or platform scope),
//! list, delete, and the errors that say what to do.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

fn consentry(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_consentry"));
    // Only this test's settings: no CONSENTRY_* variable of the calling environment.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CONSENTRY_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .args(args)
        .env("CONSENTRY_DATA_DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("consentry runs");
    if let Some(s) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(s.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("output")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn users_are_created_listed_and_deleted() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();

    let o = consentry(d, &["users", "create", "Admin", "--platform"], None);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("created operator account admin (platform operator)"),
        "{out}"
    );
    let generated = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("a generated password is printed");
    assert!(generated.len() >= 20, "{generated}");

    let o = consentry(
        d,
        &["users", "create", "ops", "--platform", "--password-stdin"],
        Some("a-password-from-stdin\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !text(&o).contains("a-password-from-stdin"),
        "the password is not echoed"
    );

    let o = consentry(d, &["users", "create", "ops", "--platform"], None);
    assert!(!o.status.success());
    assert!(text(&o).contains("already exists"), "{}", text(&o));

    let o = consentry(d, &["users", "create", "nobody"], None);
    assert!(!o.status.success());
    assert!(text(&o).contains("--platform"), "{}", text(&o));

    let o = consentry(
        d,
        &["users", "create", "short", "--platform", "--password-stdin"],
        Some("short\n"),
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("at least 10 characters"), "{}", text(&o));

    let o = consentry(d, &["users", "list", "--json"], None);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let names: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["username"].as_str())
        .collect();
    assert_eq!(names, ["admin", "ops"]);
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("argon2"),
        "no hashes in the list"
    );

    let o = consentry(d, &["users", "delete", "ADMIN"], None);
    assert!(o.status.success(), "{}", text(&o));
    let o = consentry(d, &["users", "delete", "admin"], None);
    assert!(!o.status.success());
    assert!(text(&o).contains("was not found"));
    let o = consentry(d, &["users", "list"], None);
    assert!(text(&o).contains("ops") && !text(&o).contains("admin"));
}
