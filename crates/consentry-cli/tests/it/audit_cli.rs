//! `consentry audit` and `consentry master-key` as an operator uses them, on a fresh data folder: the
//! operator's actions land in the audit log, the chain verifies, a tampered row makes `audit verify`
//! fail naming it, exports come out as CSV and JSON lines; the master key rotates, the old key file
//! is kept until retired, and retiring refuses while a secret is still sealed under it.

use std::path::Path;
use std::process::Output;

use consentry_domain::{ProfileId, SecretKind, Store as _};
use consentry_store::{Sealer, SqlStore};
use secrecy::{ExposeSecret as _, SecretSlice};
use sqlx::{AssertSqlSafe, Connection as _};

use crate::run;

/// `consentry ARGS` run by the operator `auditor` (the CLI's actor is the OS user).
fn consentry(data_dir: &Path, args: &[&str]) -> Output {
    run::command(data_dir, args)
        .env("USER", "auditor")
        .output()
        .expect("run consentry")
}

fn ok(data_dir: &Path, args: &[&str]) -> String {
    run::succeeded(consentry(data_dir, args), args)
}

fn fails(data_dir: &Path, args: &[&str]) -> String {
    run::failed(consentry(data_dir, args), args)
}

/// An organization with a tenant and a profile; returns (org ID, profile ID).
fn seed(d: &Path) -> (String, String) {
    let org_id = run::contoso_by(|args| ok(d, args));
    let created: serde_json::Value = serde_json::from_str(&ok(
        d,
        &[
            "profiles",
            "create",
            "--tenant",
            "contoso.onmicrosoft.com",
            "--app-type",
            "cloud-backup-express",
            "--json",
        ],
    ))
    .unwrap();
    (
        org_id,
        created["profile"]["id"].as_str().unwrap().to_string(),
    )
}

#[test]
fn actions_are_audited_verified_and_exported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (org_id, profile_id) = seed(d);
    let key = ok(d, &["keys", "create", "--org", &org_id, "--name", "backup"]);
    let key_id = key
        .lines()
        .find_map(|l| l.strip_prefix("key id: "))
        .unwrap()
        .trim()
        .to_string();
    let secret = key
        .lines()
        .find_map(|l| l.strip_prefix("key:    "))
        .unwrap()
        .trim()
        .to_string();
    ok(d, &["keys", "revoke", &key_id]);
    ok(d, &["profiles", "delete", &profile_id]);

    let listed: serde_json::Value =
        serde_json::from_str(&ok(d, &["audit", "list", "--org", &org_id, "--json"])).unwrap();
    let actions: Vec<&str> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "profile_deleted",
            "api_key_revoked",
            "api_key_created",
            "profile_created",
            "tenant_created",
            "organization_created"
        ],
        "newest first"
    );
    // The key's entries are the `ApiKeys` service's, as through the API (`audit_flows.rs`): the
    // target names the key, the creation its name, never the key.
    let (revoked, created) = (&listed["entries"][1], &listed["entries"][2]);
    for e in [revoked, created] {
        assert_eq!(e["target"], format!("api_key:{key_id}"), "{e}");
        assert_eq!(e["org_id"], org_id.as_str(), "{e}");
        assert_eq!(e["actor"]["name"], "cli:auditor", "{e}");
    }
    assert_eq!(created["detail"], serde_json::json!({"name": "backup"}));
    assert_eq!(revoked["detail"], serde_json::json!({}));
    let first = &listed["entries"][5];
    assert_eq!(first["actor"]["name"], "cli:auditor");
    assert_eq!(first["org_id"], org_id.as_str());
    let all = ok(d, &["audit", "list"]);
    assert!(!all.contains(&secret), "no key in the log");

    assert_eq!(
        ok(d, &["audit", "verify"]).trim(),
        "6 entries, chain intact"
    );

    let csv = ok(d, &["audit", "export", "--org", &org_id, "--format", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 7, "{csv}");
    assert!(lines[0].starts_with("seq,at,actor,org_id,action"));
    assert!(lines[1].starts_with("1,") && lines[1].contains("organization_created"));
    let jsonl = ok(
        d,
        &["audit", "export", "--org", &org_id, "--format", "jsonl"],
    );
    let seqs: Vec<u64> = jsonl
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    let err = fails(d, &["audit", "export", "--org", &org_id, "--format", "xml"]);
    assert!(err.contains("jsonl or csv"), "{err}");

    // Someone with database access edits entry 4 (after removing the append-only triggers).
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", d.join("consentry.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        for sql in [
            "DROP TRIGGER audit_log_no_update",
            "UPDATE audit_log SET target = 'api_key:someone-else' WHERE seq = 4",
        ] {
            sqlx::query(AssertSqlSafe(sql))
                .execute(&mut c)
                .await
                .unwrap();
        }
        c.close().await.unwrap();
    });
    let err = fails(d, &["audit", "verify"]);
    assert!(
        err.contains("audit entry 4 breaks the chain") && err.contains("edited"),
        "{err}"
    );
}

#[test]
fn the_master_key_rotates_and_the_old_one_is_retired() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, profile_id) = seed(d);
    let pid = ProfileId::parse(&profile_id).unwrap();
    let url = format!("sqlite://{}", d.join("consentry.db").display());
    let key_file = d.join("master.key");
    let old_file = d.join("master.key.old");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let put = |sealer: Sealer, value: &'static [u8]| {
        rt.block_on(async {
            let store = SqlStore::open(&url, sealer).await.unwrap();
            store
                .put_secret(
                    pid,
                    SecretKind::RefreshToken,
                    &SecretSlice::from(value.to_vec()),
                )
                .await
                .unwrap();
            store.close().await;
        });
    };
    let get = |sealer: Sealer| {
        rt.block_on(async {
            let store = SqlStore::open(&url, sealer).await.unwrap();
            let v = store
                .get_secret(pid, SecretKind::RefreshToken)
                .await
                .map(|s| s.map(|s| s.expose_secret().to_vec()));
            store.close().await;
            v
        })
    };
    put(Sealer::from_key_files(&key_file).unwrap(), b"RT-1");
    let status = ok(d, &["master-key", "status"]);
    assert!(status.contains("secrets: 1"), "{status}");
    let first_key = consentry_store::key_file_id(&key_file).unwrap();

    let rotated = consentry(d, &["master-key", "rotate"]);
    let progress = String::from_utf8_lossy(&rotated.stderr).into_owned();
    let out = run::succeeded(rotated, &["master-key", "rotate"]);
    assert!(out.contains("re-sealed 1 secret(s)"), "{out}");
    // Standard error is not a terminal: the progress is a plain line.
    assert!(
        progress.lines().any(|l| l == "re-sealed 1/1 secrets"),
        "{progress}"
    );
    assert!(old_file.exists(), "the old key is kept");
    let new_key = consentry_store::key_file_id(&key_file).unwrap();
    assert_ne!(first_key, new_key);
    assert_eq!(consentry_store::key_file_id(&old_file).unwrap(), first_key);

    // A process still on the old key writes a secret: retiring refuses and keeps the file.
    put(Sealer::load_or_create_key_file(&old_file).unwrap(), b"RT-2");
    let err = fails(d, &["master-key", "retire-old"]);
    assert!(err.contains(&first_key) && err.contains("rotate"), "{err}");
    assert!(old_file.exists());

    let out = ok(d, &["master-key", "rotate"]);
    assert!(
        out.contains("finishing it") && out.contains("re-sealed 1"),
        "{out}"
    );
    let saved_old = d.join("saved-old.key");
    std::fs::copy(&old_file, &saved_old).unwrap();
    let out = ok(d, &["master-key", "retire-old"]);
    assert!(
        out.contains(&format!("old master key {first_key} retired")),
        "{out}"
    );
    assert!(!old_file.exists());
    assert_eq!(
        get(Sealer::from_key_files(&key_file).unwrap()).unwrap(),
        Some(b"RT-2".to_vec()),
        "opens with the new key alone"
    );
    assert!(
        get(Sealer::load_or_create_key_file(&saved_old).unwrap()).is_err(),
        "the old key opens nothing any more"
    );
    let log = ok(d, &["audit", "list"]);
    assert!(
        log.contains("master_key_rotated") && log.contains("master_key_retired"),
        "{log}"
    );
    assert_eq!(
        ok(d, &["audit", "verify"]).trim(),
        "6 entries, chain intact"
    );
}
