//! `consentry profiles check`: the same checker as the monitor, from the command line.

use crate::run;
use run::{consentry, ok};

#[test]
fn check_skips_never_authorized_profiles_and_needs_a_target() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run::contoso(d);
    let mut ids = Vec::new();
    for app_type in ["insights-m365", "m365-all"] {
        let created: serde_json::Value = serde_json::from_str(&ok(
            d,
            &[
                "profiles",
                "create",
                "--tenant",
                "contoso.onmicrosoft.com",
                "--app-type",
                app_type,
                "--service",
                if app_type == "m365-all" {
                    "cloud-backup-m365"
                } else {
                    "insights"
                },
                "--json",
            ],
        ))
        .unwrap();
        ids.push(created["profile"]["id"].as_str().unwrap().to_string());
    }

    let out: serde_json::Value = serde_json::from_str(&ok(
        d,
        &[
            "profiles",
            "check",
            "--tenant",
            "contoso.onmicrosoft.com",
            "--json",
        ],
    ))
    .unwrap();
    let rows = out.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{out}");
    for r in rows {
        assert_eq!(r["outcome"], "skipped", "{r}");
        assert!(ids.contains(&r["profile_id"].as_str().unwrap().to_string()));
        assert!(
            r["message"]
                .as_str()
                .unwrap()
                .contains("never been authorized")
        );
    }

    let one = ok(d, &["profiles", "check", &ids[0]]);
    assert!(one.contains(&ids[0]) && one.contains("skipped"), "{one}");
    assert!(
        one.contains("0 checked (0 valid, 0 attention, 0 invalid), 0 transient failure(s), 1 skipped, 0 error(s)"),
        "{one}"
    );

    let out = consentry(d, &["profiles", "check"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--all"), "{err}");
}

#[test]
fn service_api_keys_are_created_listed_without_their_value_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let org: serde_json::Value =
        serde_json::from_str(&ok(d, &["orgs", "create", "--name", "Contoso", "--json"])).unwrap();
    let org_id = org[0]["id"].as_str().unwrap().to_string();
    let created = ok(d, &["keys", "create", "--org", &org_id, "--name", "backup"]);
    let key = created
        .lines()
        .find_map(|l| l.strip_prefix("key:"))
        .unwrap()
        .trim()
        .to_string();
    assert!(key.starts_with("csk_") && key.len() > 40, "{created}");
    let id = created
        .lines()
        .find_map(|l| l.strip_prefix("key id:"))
        .unwrap()
        .trim()
        .to_string();
    let list = ok(d, &["keys", "list", "--org", &org_id, "--json"]);
    assert!(list.contains(&id) && list.contains("backup"), "{list}");
    assert!(!list.contains(&key), "the key itself is never shown again");
    for f in std::fs::read_dir(d).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap_or_default();
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
            "only the hash is stored"
        );
    }
    assert!(ok(d, &["keys", "revoke", &id]).contains("revoked"));
    assert!(ok(d, &["keys", "list"]).contains("revoked"));
    assert!(!consentry(d, &["keys", "revoke", &id]).status.success());
}
