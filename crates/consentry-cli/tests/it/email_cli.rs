//! `consentry tenants contacts|emails`, `consentry orgs digest|microsoft-sign-in`, and `[email]` refused by every
//! command when it is wrong.

use crate::run;
use run::{fails, ok};

const CONTOSO: &str = "contoso.onmicrosoft.com";

#[test]
fn contacts_are_shown_replaced_and_a_malformed_address_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run::contoso(d);
    let out = ok(d, &["tenants", "contacts", CONTOSO]);
    assert!(out.contains("No administrator contacts."), "{out}");

    let out = ok(
        d,
        &[
            "tenants",
            "contacts",
            CONTOSO,
            "--set",
            "it-admin@contoso.example, sec@contoso.example",
        ],
    );
    assert!(
        out.contains("  it-admin@contoso.example\n  sec@contoso.example\n"),
        "{out}"
    );
    let err = fails(
        d,
        &[
            "tenants",
            "contacts",
            CONTOSO,
            "--set",
            "ok@contoso.example,nope",
        ],
    );
    assert!(err.contains("contacts") && err.contains("nope"), "{err}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(d, &["tenants", "contacts", CONTOSO, "--json"])).unwrap();
    assert_eq!(
        json["contacts"],
        serde_json::json!(["it-admin@contoso.example", "sec@contoso.example"]),
        "a refused change changes nothing"
    );

    let out = ok(d, &["tenants", "emails", CONTOSO]);
    assert!(out.contains("No email about this tenant."), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(d, &["tenants", "emails", CONTOSO, "--json"])).unwrap();
    assert_eq!(json, serde_json::json!([]));
    let err = fails(d, &["tenants", "emails", "nowhere.example"]);
    assert!(err.contains("nowhere.example"), "{err}");
}

#[test]
fn an_organizations_digest_recipients_are_shown_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let org = run::contoso(d);
    let out = ok(d, &["orgs", "digest", &org]);
    assert!(out.contains("No daily digest"), "{out}");
    let out = ok(d, &["orgs", "digest", &org, "--set", "ops@vendor.example"]);
    assert!(out.contains("  ops@vendor.example"), "{out}");
    let err = fails(d, &["orgs", "digest", &org, "--set", "ops@"]);
    assert!(err.contains("recipients"), "{err}");
    let out = ok(d, &["orgs", "digest", &org, "--set", ""]);
    assert!(out.contains("No daily digest"), "{out}");
}

#[test]
fn a_wrong_email_setting_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = run::command(dir.path(), &["tenants", "list"])
        .env("CONSENTRY_EMAIL__SMTP_HOST", "smtp.vendor.example")
        .env("CONSENTRY_EMAIL__SECURITY", "none")
        .env("CONSENTRY_EMAIL__FROM", "consentry@vendor.example")
        .output()
        .unwrap();
    let err = run::failed(out, &["tenants", "list"]);
    assert!(err.contains("email.security"), "{err}");
}

#[test]
fn an_organizations_rule_for_microsoft_sign_in_members_is_shown_and_changed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let org = run::contoso(d);
    let out = ok(d, &["orgs", "microsoft-sign-in", &org]);
    assert!(
        out.contains("without an administrator role") && out.contains("viewers"),
        "{out}"
    );
    let out = ok(
        d,
        &[
            "orgs",
            "microsoft-sign-in",
            &org,
            "--members",
            "refused",
            "--json",
        ],
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        serde_json::json!({"members_without_admin_role": "refused"})
    );
    let err = fails(
        d,
        &["orgs", "microsoft-sign-in", &org, "--members", "admins"],
    );
    assert!(err.contains("--members") && err.contains("viewer"), "{err}");
    let out = ok(d, &["orgs", "microsoft-sign-in", &org]);
    assert!(
        out.contains("refused"),
        "a refused change changes nothing: {out}"
    );
}
