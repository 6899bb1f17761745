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

#[test]
fn roles_are_chosen_listed_and_personal_tokens_are_created_listed_and_revoked() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let o = consentry(d, &["orgs", "create", "--name", "Contoso", "--json"], None);
    assert!(o.status.success(), "{}", text(&o));
    let org: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let org = org
        .get(0)
        .unwrap_or(&org)
        .get("id")
        .and_then(|v| v.as_str())
        .expect("org id")
        .to_string();

    let o = consentry(
        d,
        &[
            "users", "create", "reader", "--org", &org, "--role", "viewer",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("viewer of organization {org}")),
        "{}",
        text(&o)
    );
    let o = consentry(d, &["users", "create", "boss", "--org", &org], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("admin of organization"), "{}", text(&o));
    let o = consentry(
        d,
        &["users", "create", "x", "--org", &org, "--role", "owner"],
        None,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("admin") && text(&o).contains("viewer"));
    let o = consentry(
        d,
        &["users", "create", "y", "--platform", "--role", "viewer"],
        None,
    );
    assert!(!o.status.success(), "a platform account has no role");

    let o = consentry(d, &["users", "list", "--json"], None);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let roles: Vec<(&str, &str)> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|a| {
            (
                a["username"].as_str().unwrap_or_default(),
                a["role"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(roles, [("boss", "admin"), ("reader", "viewer")]);
    let o = consentry(d, &["users", "list"], None);
    assert!(text(&o).contains("Role") && text(&o).contains("viewer"));

    let o = consentry(
        d,
        &[
            "users",
            "token",
            "create",
            "READER",
            "--name",
            "nightly report",
            "--expires-in-days",
            "30",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("token:    "))
        .expect("the token is printed");
    assert!(token.starts_with("cpt_"), "{token}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("token id: "))
        .expect("the ID is printed")
        .to_string();

    let o = consentry(d, &["users", "token", "list", "reader", "--json"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !text(&o).contains(token),
        "the token is never listed, only its record"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v[0]["name"], "nightly report");
    assert_eq!(v[0]["id"], id.as_str());
    assert!(v[0]["revoked_at"].is_null());

    let o = consentry(d, &["users", "token", "revoke", "boss", &id], None);
    assert!(!o.status.success(), "another account cannot revoke it");
    let o = consentry(d, &["users", "token", "revoke", "reader", &id], None);
    assert!(o.status.success(), "{}", text(&o));
    let o = consentry(d, &["users", "token", "list", "reader"], None);
    assert!(text(&o).contains("revoked"), "{}", text(&o));
    let o = consentry(
        d,
        &["users", "token", "create", "ghost", "--name", "x"],
        None,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("users list"), "{}", text(&o));
}
