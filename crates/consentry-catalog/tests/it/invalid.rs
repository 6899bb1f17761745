//! Malformed catalogs are rejected with the origin, line and column of the problem and a message saying what is
//! wrong. Each test breaks one thing in an otherwise valid catalog and checks the reported position against the
//! position of the broken text.

use consentry_catalog::{Catalog, CatalogError};

const VALID: &str = r#"version = 2

[[services]]
key = "alpha"
name = "Alpha"

[[services]]
key = "beta"
name = "Beta"

[[roles]]
key = "global-administrator"
name = "Global Administrator"
template_id = "62e90394-69f5-4237-9190-012177145e10"

[[roles]]
key = "teams-administrator"
name = "Teams Administrator"
template_id = "69091246-20e8-4a56-aa4d-066075b2a7a8"

[[licenses]]
key = "power-bi"
name = "Power BI"
service_plans = ["BI_AZURE_P2"]

[[modules]]
key = "planner"
name = "Planner"

[[app_types]]
key = "one"
display_name = "One"
entra_app_name = "Vendor One"
services = ["alpha"]
permission_kind = "hybrid"
consent = [
  { method = "admin", requires = { role = "global-administrator" } },
  { method = "user", services = ["alpha"], functions = ["comments"], requires = { all_of = [{ license = "power-bi" }, { role = "teams-administrator" }] } },
]
permissions = [
  { name = "User.Read", kind = "scope", id = "e1fe6dd8-ba31-4d61-89e7-88639da4683d" },
  { name = "Tasks.ReadWrite.All", kind = "role", id = "44e666d1-d276-445b-a5fc-8815eeb81d55", since = 2 },
]
functions = [
  { key = "comments", name = "Restore comments", module = "planner" },
]

[[app_types]]
key = "two"
display_name = "Two"
services = ["beta"]
permission_kind = "application"
custom_app = true
mode = "custom"
consent = [
  { method = "admin", requires = { any_of = [{ role = "global-administrator" }, { role = "teams-administrator" }] } },
]
permissions = [
  { name = "User.Read.All", kind = "role" },
]
"#;

/// Replaces the only occurrence of `old` with `new`, parses the result and returns the error together with the
/// 1-based line and column where `marker` (a part of `new`) starts in the broken text.
fn broken(old: &str, new: &str, marker: &str) -> (CatalogError, usize, usize) {
    assert_eq!(
        VALID.matches(old).count(),
        1,
        "`{old}` must occur exactly once in the valid catalog"
    );
    let src = VALID.replacen(old, new, 1);
    let at = src
        .find(marker)
        .expect("marker must be in the broken catalog");
    let line = src[..at].matches('\n').count() + 1;
    let column = at - src[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    let err = Catalog::from_toml_str(&src, "vendor.toml")
        .expect_err("the broken catalog must be rejected");
    (err, line, column)
}

fn assert_at(err: &CatalogError, line: usize, column: usize, words: &[&str]) {
    assert_eq!(err.origin, "vendor.toml");
    assert_eq!(
        (err.line, err.column),
        (Some(line), Some(column)),
        "wrong position for: {err}"
    );
    for w in words {
        assert!(
            err.message.contains(w),
            "message `{}` lacks `{w}`",
            err.message
        );
    }
    assert!(
        err.to_string()
            .starts_with(&format!("vendor.toml:{line}:{column}: ")),
        "{err}"
    );
}

#[test]
fn the_valid_catalog_loads() {
    let c = Catalog::from_toml_str(VALID, "vendor.toml").unwrap();
    assert_eq!(c.version, 2);
    assert_eq!(c.app_types.len(), 2);
    assert_eq!(c.app_type("two").unwrap().permissions[0].id, None);
}

#[test]
fn toml_syntax_error() {
    let (e, l, _) = broken("name = \"Beta\"", "name = \"Beta", "name = \"Beta");
    assert_eq!(e.line, Some(l));
    assert!(e.message.contains("TOML"), "{e}");
}

#[test]
fn duplicate_toml_key() {
    let (e, l, c) = broken(
        "name = \"Beta\"",
        "name = \"Beta\"\nname = \"Gamma\"",
        "name = \"Gamma\"",
    );
    assert_at(&e, l, c, &["duplicate key"]);
}

#[test]
fn unknown_field() {
    let (e, l, c) = broken(
        "display_name = \"Two\"",
        "display_nam = \"Two\"",
        "display_nam =",
    );
    assert_at(&e, l, c, &["unknown field `display_nam`"]);
}

#[test]
fn unknown_requirement_kind() {
    let (e, l, _) = broken(
        "{ license = \"power-bi\" }",
        "{ licence = \"power-bi\" }",
        "licence =",
    );
    assert_eq!(e.line, Some(l), "{e}");
    assert!(e.message.contains("unknown variant `licence`"), "{e}");
}

#[test]
fn bad_consent_method() {
    let (e, l, c) = broken("method = \"user\"", "method = \"usr\"", "\"usr\"");
    assert_at(&e, l, c, &["`usr`", "admin", "user"]);
}

#[test]
fn invalid_version() {
    let (e, l, c) = broken("version = 2", "version = 0", "0");
    assert_at(&e, l, c, &["version 0"]);
}

#[test]
fn invalid_key() {
    let (e, l, c) = broken(
        "key = \"beta\"",
        "key = \"Beta Service\"",
        "\"Beta Service\"",
    );
    assert_at(&e, l, c, &["`Beta Service`", "lowercase"]);
}

#[test]
fn duplicate_service_key() {
    let (e, l, c) = broken(
        "key = \"beta\"",
        "key = \"alpha\"",
        "\"alpha\"\nname = \"Beta\"",
    );
    assert_at(
        &e,
        l,
        c,
        &["duplicate service key `alpha`", "first defined on line 4"],
    );
}

#[test]
fn duplicate_app_type_key() {
    let (e, l, c) = broken(
        "key = \"two\"",
        "key = \"one\"",
        "\"one\"\ndisplay_name = \"Two\"",
    );
    assert_at(&e, l, c, &["duplicate app type key `one`"]);
}

#[test]
fn duplicate_function_key() {
    let (e, l, c) = broken(
        "{ key = \"comments\", name = \"Restore comments\", module = \"planner\" },",
        "{ key = \"comments\", name = \"Restore comments\", module = \"planner\" },\n  { key = \"comments\", name = \"Again\", module = \"planner\" },",
        "\"comments\", name = \"Again\"",
    );
    assert_at(&e, l, c, &["duplicate function key `comments`"]);
}

#[test]
fn duplicate_role_template_id() {
    let (e, l, c) = broken(
        "69091246-20e8-4a56-aa4d-066075b2a7a8",
        "62e90394-69f5-4237-9190-012177145e10",
        "\"62e90394-69f5-4237-9190-012177145e10\"\n\n[[licenses]]",
    );
    assert_at(&e, l, c, &["already used by role `global-administrator`"]);
}

#[test]
fn unknown_service_in_app_type() {
    let (e, l, c) = broken(
        "services = [\"beta\"]",
        "services = [\"gamma\"]",
        "\"gamma\"",
    );
    assert_at(&e, l, c, &["unknown service `gamma`", "alpha, beta"]);
}

#[test]
fn app_type_without_service() {
    let (e, l, c) = broken("services = [\"beta\"]", "services = []", "[]");
    assert_at(&e, l, c, &["serves no service"]);
}

#[test]
fn rule_limited_to_a_service_the_app_type_does_not_serve() {
    let (e, l, c) = broken(
        "services = [\"alpha\"], functions",
        "services = [\"beta\"], functions",
        "\"beta\"], functions",
    );
    assert_at(&e, l, c, &["service `beta`", "does not serve"]);
}

#[test]
fn unknown_role() {
    let (e, l, c) = broken(
        "{ role = \"teams-administrator\" }] } },\n]\npermissions = [\n  { name = \"User.Read\"",
        "{ role = \"teams-admin\" }] } },\n]\npermissions = [\n  { name = \"User.Read\"",
        "\"teams-admin\"",
    );
    assert_at(&e, l, c, &["unknown role `teams-admin`", "[[roles]]"]);
}

#[test]
fn unknown_license() {
    let (e, l, c) = broken(
        "{ license = \"power-bi\" }",
        "{ license = \"powerbi\" }",
        "\"powerbi\"",
    );
    assert_at(&e, l, c, &["unknown license `powerbi`", "[[licenses]]"]);
}

#[test]
fn license_nobody_can_hold() {
    let (e, l, c) = broken(
        "service_plans = [\"BI_AZURE_P2\"]",
        "service_plans = []",
        "\"power-bi\"\nname",
    );
    assert_at(&e, l, c, &["no service plan and no SKU part number"]);
}

#[test]
fn unknown_module() {
    let (e, l, c) = broken("module = \"planner\"", "module = \"tasks\"", "\"tasks\"");
    assert_at(&e, l, c, &["unknown module `tasks`", "[[modules]]"]);
}

#[test]
fn unknown_function_in_rule() {
    let (e, l, c) = broken(
        "functions = [\"comments\"]",
        "functions = [\"comment\"]",
        "\"comment\"]",
    );
    assert_at(&e, l, c, &["unknown function `comment`", "known: comments"]);
}

#[test]
fn app_type_without_admin_consent_rule() {
    let (e, l, c) = broken(
        "  { method = \"admin\", requires = { role = \"global-administrator\" } },\n",
        "",
        "\"one\"",
    );
    assert_at(
        &e,
        l,
        c,
        &["app type `one` has no administrator consent rule"],
    );
}

#[test]
fn empty_any_of() {
    let (e, l, c) = broken(
        "{ any_of = [{ role = \"global-administrator\" }, { role = \"teams-administrator\" }] }",
        "{ any_of = [] }",
        "{ any_of = [] }",
    );
    assert_at(&e, l, c, &["empty `any_of`"]);
}

#[test]
fn malformed_role_template_id() {
    let (e, l, c) = broken(
        "62e90394-69f5-4237-9190-012177145e10",
        "62e90394-69f5-4237-9190-01217714",
        "\"62e90394-69f5-4237-9190-01217714\"",
    );
    assert_at(&e, l, c, &["role template ID", "is not a GUID"]);
}

#[test]
fn malformed_permission_id() {
    let (e, l, c) = broken(
        "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
        "e1fe6dd8-ba31-4d61-89e7-88639da4683g",
        "\"e1fe6dd8",
    );
    assert_at(&e, l, c, &["permission ID", "is not a GUID"]);
}

#[test]
fn since_greater_than_catalog_version() {
    let (e, l, c) = broken("since = 2", "since = 3", "3 }");
    assert_at(&e, l, c, &["since = 3", "catalog version"]);
}

#[test]
fn since_zero() {
    let (e, l, c) = broken("since = 2", "since = 0", "0 }");
    assert_at(&e, l, c, &["since = 0"]);
}

#[test]
fn duplicate_permission() {
    let (e, l, c) = broken(
        "{ name = \"User.Read.All\", kind = \"role\" },",
        "{ name = \"User.Read.All\", kind = \"role\" },\n  { name = \"User.Read.All\", kind = \"role\", optional = true },",
        "\"User.Read.All\", kind = \"role\", optional",
    );
    assert_at(&e, l, c, &["`User.Read.All` twice"]);
}

#[test]
fn custom_app_with_entra_app_name() {
    let (e, l, c) = broken(
        "display_name = \"Two\"",
        "display_name = \"Two\"\nentra_app_name = \"Vendor Two\"",
        "\"Vendor Two\"",
    );
    assert_at(&e, l, c, &["custom app", "remove `entra_app_name`"]);
}

#[test]
fn custom_mode_without_custom_app() {
    let (e, l, c) = broken("custom_app = true\n", "", "\"custom\"");
    assert_at(&e, l, c, &["mode \"custom\" but is not a custom app"]);
}

#[test]
fn permission_kind_that_contradicts_the_permissions() {
    let (e, l, c) = broken(
        "permission_kind = \"application\"",
        "permission_kind = \"delegated\"",
        "\"delegated\"",
    );
    assert_at(
        &e,
        l,
        c,
        &["permission_kind \"delegated\"", "application roles"],
    );
}

#[test]
fn user_consent_without_delegated_scopes() {
    let (e, l, c) = broken(
        "{ role = \"teams-administrator\" }] } },\n]\npermissions = [\n  { name = \"User.Read.All\"",
        "{ role = \"teams-administrator\" }] } },\n  { method = \"user\" },\n]\npermissions = [\n  { name = \"User.Read.All\"",
        "\"user\" },\n]",
    );
    assert_at(
        &e,
        l,
        c,
        &["allows user consent but has no delegated scope"],
    );
}

#[test]
fn errors_in_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vendor-catalog.toml");
    std::fs::write(
        &path,
        VALID.replacen("module = \"planner\"", "module = \"tasks\"", 1),
    )
    .unwrap();
    let err = Catalog::load_file(&path).unwrap_err();
    assert_eq!(err.origin, path.display().to_string());
    assert!(err.line.is_some());
    assert!(
        err.to_string().starts_with(&format!("{}:", path.display())),
        "{err}"
    );

    std::fs::write(&path, VALID).unwrap();
    assert_eq!(
        Catalog::load_file(&path).unwrap(),
        Catalog::from_toml_str(VALID, "other").unwrap()
    );
}

#[test]
fn unreadable_file_has_no_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.toml");
    let err = Catalog::load_file(&path).unwrap_err();
    assert_eq!((err.line, err.column), (None, None));
    assert!(
        err.message.contains("cannot read the catalog file"),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("{}: ", path.display())),
        "{err}"
    );
}

#[test]
fn unknown_scan_target_in_rule() {
    // An app type of its own, below the others, with a rule naming a scan target it does not list.
    let src = VALID.replace(
        "[[app_types]]\nkey = \"two\"",
        "[[app_types]]\nkey = \"three\"\ndisplay_name = \"Three\"\nservices = [\"alpha\"]\npermission_kind = \"application\"\nscan_targets = [{ key = \"power-bi\", name = \"Power BI\" }]\nconsent = [{ method = \"admin\", scan_targets = [\"power-bx\"] }]\npermissions = [{ name = \"User.Read.All\", kind = \"role\" }]\n\n[[app_types]]\nkey = \"two\"",
    );
    let e = Catalog::from_toml_str(&src, "test.toml").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("unknown scan target `power-bx`") && msg.contains("known: power-bi"),
        "{msg}"
    );
    let dup = src.replace(
        "scan_targets = [{ key = \"power-bi\", name = \"Power BI\" }]",
        "scan_targets = [{ key = \"power-bi\", name = \"Power BI\" }, { key = \"power-bi\", name = \"Again\" }]",
    );
    let e = Catalog::from_toml_str(&dup, "test.toml").unwrap_err();
    assert!(
        e.to_string()
            .contains("duplicate scan target key `power-bi`"),
        "{e}"
    );
}

#[test]
fn a_scope_of_another_resource_is_written_in_full_and_is_delegated() {
    let one =
        r#"  { name = "User.Read", kind = "scope", id = "e1fe6dd8-ba31-4d61-89e7-88639da4683d" },"#;
    // Accepted: a delegated scope of another resource, in its full form.
    let ok = VALID.replacen(
        one,
        &format!(
            "{one}\n  {{ name = \"https://api.yammer.com/user_impersonation\", kind = \"scope\" }},"
        ),
        1,
    );
    let c = Catalog::from_toml_str(&ok, "vendor.toml").expect("valid");
    let app = c.app_type("one").unwrap();
    assert_eq!(
        app.delegated_scopes()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["User.Read"],
        "Graph scopes only"
    );
    assert_eq!(
        app.sign_in_scopes(),
        ["User.Read", "https://api.yammer.com/user_impersonation"]
    );
    let yammer = app.other_resource_scopes().next().unwrap();
    assert_eq!(yammer.resource(), Some("https://api.yammer.com"));
    assert!(!yammer.is_graph());

    // Refused: an application permission of another resource.
    let (e, l, c) = broken(
        one,
        &format!("{one}\n  {{ name = \"https://api.yammer.com/Admin\", kind = \"role\" }},"),
        "\"https://api.yammer.com/Admin\"",
    );
    assert_at(
        &e,
        l,
        c,
        &["https://api.yammer.com/Admin", "only delegated scopes"],
    );
    // Refused: no scope after the resource, or not https.
    for bad in [
        "https://api.yammer.com/",
        "http://api.yammer.com/x",
        "https://api.yammer.com",
    ] {
        let (e, l, c) = broken(
            one,
            &format!("{one}\n  {{ name = \"{bad}\", kind = \"scope\" }},"),
            &format!("\"{bad}\""),
        );
        assert_at(&e, l, c, &[bad, "https://<resource>/<scope>"]);
    }
}
