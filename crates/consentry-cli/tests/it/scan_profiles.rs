//! `consentry scan-profiles`: create (classic and app-profile methods), show, list, edit (the
//! conversion's refusal when no app profile of the tenant can protect Planner), readiness per scan
//! profile and per tenant, delete. The conversion itself, with app profiles authorized through
//! entra-sim, is covered by consentry-server's `tests/scan_profiles.rs` on the same domain service.

use std::path::Path;

use serde_json::Value;

use crate::run;
use run::{fails, ok};

fn ok_json(data_dir: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(data_dir, args)).unwrap()
}

const CONTOSO: &str = "contoso.onmicrosoft.com";

fn codes(r: &Value) -> Vec<String> {
    r["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn scan_profiles_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let org = ok_json(
        d,
        &[
            "orgs",
            "create",
            "--name",
            "Contoso",
            "--modules",
            "planner",
            "--json",
        ],
    );
    let org_id = org[0]["id"].as_str().unwrap().to_string();
    ok(
        d,
        &[
            "tenants",
            "connect",
            "--org",
            &org_id,
            "--tenant-id",
            "11111111-2222-4333-8444-555555555555",
            "--cloud",
            "global",
            "--domain",
            CONTOSO,
        ],
    );
    let mut ids = Vec::new();
    for app_type in ["cloud-backup-delegated", "cloud-backup-m365-all"] {
        let p = ok_json(
            d,
            &[
                "profiles",
                "create",
                "--tenant",
                CONTOSO,
                "--app-type",
                app_type,
                "--json",
            ],
        );
        ids.push(p["profile"]["id"].as_str().unwrap().to_string());
    }
    let (delegated, modern) = (&ids[0], &ids[1]);

    let sp = ok_json(
        d,
        &[
            "scan-profiles",
            "create",
            "--tenant",
            CONTOSO,
            "--name",
            "Contoso backup",
            "--modules",
            "planner,teams",
            "--service-account",
            "svc-backup@contoso.onmicrosoft.com",
            "--delegated-profile",
            delegated,
            "--json",
        ],
    );
    assert_eq!(sp["authentication"]["method"], "classic", "{sp}");
    assert_eq!(
        sp["authentication"]["delegated_profile"],
        delegated.as_str()
    );
    let id = sp["id"].as_str().unwrap().to_string();

    let list = ok(d, &["scan-profiles", "list", "--tenant", CONTOSO]);
    assert!(
        list.contains("Contoso backup") && list.contains("classic"),
        "{list}"
    );

    let r = ok_json(d, &["scan-profiles", "readiness", &id, "--json"]);
    assert_eq!(
        codes(&r),
        ["permission", "validity", "classic_method", "backup_setting"],
        "{r}"
    );
    assert_eq!(r["app_profile"], modern.as_str(), "{r}");
    let text = ok(d, &["scan-profiles", "readiness", &id]);
    assert!(
        text.contains("not ready for Planner")
            && text.contains("Step: Edit the scan profile and save it"),
        "{text}"
    );

    // Saving converts the classic method; with no suitable app profile it is refused and changes nothing.
    let err = fails(d, &["scan-profiles", "edit", &id]);
    assert!(
        err.contains("has no app profile that can protect Planner data")
            && err.contains("lacks Tasks.ReadWrite.All"),
        "{err}"
    );
    let err = fails(
        d,
        &["scan-profiles", "edit", &id, "--app-profile", delegated],
    );
    assert!(err.contains("cannot protect Planner data"), "{err}");
    assert_eq!(
        ok_json(d, &["scan-profiles", "show", &id, "--json"]),
        sp,
        "a refused save leaves the scan profile as it was"
    );

    let t = ok_json(
        d,
        &["scan-profiles", "readiness", "--tenant", CONTOSO, "--json"],
    );
    assert_eq!(t["ready"], false);
    assert_eq!(codes(&t), ["suitable_app_profile"], "{t}");
    assert_eq!(t["scan_profiles"][0]["scan_profile_id"], id.as_str());

    // The delegated profile the classic method names cannot be deleted while it is used.
    let err = fails(d, &["profiles", "delete", delegated]);
    assert!(err.contains("Contoso backup"), "{err}");

    // The classic method's other form: an app profile with the additional delegated app profile.
    let sp2 = ok_json(
        d,
        &[
            "scan-profiles",
            "create",
            "--tenant",
            CONTOSO,
            "--name",
            "Contoso classic app",
            "--modules",
            "planner",
            "--app-profile",
            modern,
            "--delegated-profile",
            delegated,
            "--json",
        ],
    );
    assert_eq!(
        sp2["authentication"],
        serde_json::json!({"method": "classic_app_profile", "app_profile": modern,
            "delegated_profile": delegated}),
        "{sp2}"
    );
    let id2 = sp2["id"].as_str().unwrap().to_string();
    let shown = ok(d, &["scan-profiles", "show", &id2]);
    assert!(
        shown.contains(&format!(
            "classic: app profile {modern} + delegated app profile {delegated}"
        )),
        "{shown}"
    );
    let r = ok_json(d, &["scan-profiles", "readiness", &id2, "--json"]);
    assert!(codes(&r).contains(&"classic_method".to_string()), "{r}");
    // Not authorized, so not convertible yet; refused without change.
    let err = fails(d, &["scan-profiles", "edit", &id2]);
    assert!(err.contains("lacks Tasks.ReadWrite.All"), "{err}");
    assert_eq!(ok_json(d, &["scan-profiles", "show", &id2, "--json"]), sp2);
    let err = fails(
        d,
        &[
            "scan-profiles",
            "create",
            "--tenant",
            CONTOSO,
            "--name",
            "Half",
            "--delegated-profile",
            delegated,
        ],
    );
    assert!(
        err.contains("--app-profile and --delegated-profile"),
        "{err}"
    );
    ok(d, &["scan-profiles", "delete", &id2]);

    ok(d, &["scan-profiles", "delete", &id]);
    let err = fails(d, &["scan-profiles", "show", &id]);
    assert!(err.contains("was not found"), "{err}");
    ok(d, &["profiles", "delete", delegated]);
}
