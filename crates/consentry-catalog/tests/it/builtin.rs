//! The embedded default catalog reproduces the reference document ("Re-authorize App Profiles for Microsoft
//! Tenants") and its requirements evaluate as the document states.

use std::collections::BTreeSet;

use consentry_catalog::{
    AppMode, Catalog, ConsentMethod, Marker, PermissionKind, PermissionType, Requirement,
    ScanTargetChoiceError, UserFacts,
};
use uuid::Uuid;

/// The reference document's second table: (services, app type in the console, app name in Microsoft Entra ID).
/// Its first table has the same rows without the last column. `None` marks the custom app ("[custom app name]").
const SEED_ROWS: &[(&[&str], &str, Option<&str>)] = &[
    (
        &["Insights"],
        "Insights for Microsoft 365",
        Some("AvePoint Insights for Microsoft365"),
    ),
    (
        &["Insights"],
        "Insights for Power Platform",
        Some("AvePoint Insights for Power Platform"),
    ),
    (
        &["EnPower"],
        "EnPower for Microsoft 365",
        Some("AvePoint EnPower for Microsoft365"),
    ),
    (
        &["EnPower"],
        "EnPower for Power Platform",
        Some("AvePoint EnPower PowerPlatform Management"),
    ),
    (
        &["EnPower"],
        "EnPower for Teams Calling",
        Some("AvePoint EnPower Teams Calling"),
    ),
    (
        &["Fly"],
        "Fly for Power Platform",
        Some("AvePoint Fly for Power Platform"),
    ),
    (
        &["Fly"],
        "Fly Delegated App",
        Some("AvePoint Fly Delegated App"),
    ),
    (
        &["Cloud Backup for IaaS + PaaS"],
        "Cloud Backup for Azure",
        Some("AvePoint Cloud Backup for Azure"),
    ),
    (
        &["Cloud Backup for IaaS + PaaS"],
        "Delegated App",
        Some("AvePoint Online Services – Delegated App"),
    ),
    (
        &["Cloud Backup for IaaS + PaaS"],
        "Cloud Backup for Azure DevOps",
        Some("AvePoint Cloud Backup for Azure DevOps"),
    ),
    (
        &["Cloud Governance"],
        "Cloud Governance for Power Platform",
        Some("AvePoint Cloud Governance for Power Platform"),
    ),
    (
        &["Cloud Governance"],
        "Cloud Governance Delegated App",
        Some("AvePoint Cloud Governance Delegated App"),
    ),
    (&["MyHub"], "MyHub", Some("AvePoint MyHub")),
    (
        &["Policies for Microsoft 365"],
        "Policies for Microsoft 365",
        Some("AvePoint Policies for Microsoft365"),
    ),
    (&["tyGraph"], "tyGraph Suite", Some("AvePoint tyGraph")),
    (
        &["tyGraph"],
        "tyGraph for Viva Engage",
        Some("AvePoint tyGraph for Viva Engage"),
    ),
    (
        &["Cloud Backup for Microsoft 365"],
        "Delegated App",
        Some("AvePoint Online Services – Delegated App"),
    ),
    (
        &["Cloud Backup for Microsoft 365"],
        "Cloud Backup Express",
        Some("AvePoint Cloud Backup Express"),
    ),
    (
        &["Cloud Governance", "Cloud Backup for Microsoft 365"],
        "Viva Engage",
        Some("AvePoint Online Services Administration for Viva Engage"),
    ),
    (
        &["Document Management System Online"],
        "Document Management System Online (DMS Online)",
        Some("AvePoint Document Management System Online"),
    ),
    (
        &["AvePoint Portal Manager"],
        "AvePoint Portal Manager",
        Some("AvePoint Portal Manager"),
    ),
    (
        &["AvePoint Portal Manager"],
        "AvePoint Portal Manager for Room - Terminal Interface View",
        Some("AvePoint Portal Manager for Room - Terminal Interface View"),
    ),
    (
        &[
            "EnPower",
            "Cloud Governance",
            "Cloud Backup for Microsoft 365",
            "Cloud Backup for IaaS + PaaS",
            "Insights",
            "Fly",
            "MyHub",
            "tyGraph",
            "AvePoint Portal Manager",
        ],
        "Custom app with delegated permissions",
        None,
    ),
];

/// Role template IDs from the Entra permissions reference ("All roles" table).
const ROLE_IDS: &[(&str, &str)] = &[
    (
        "global-administrator",
        "62e90394-69f5-4237-9190-012177145e10",
    ),
    (
        "privileged-role-administrator",
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
    ),
    (
        "exchange-administrator",
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
    ),
    (
        "teams-administrator",
        "69091246-20e8-4a56-aa4d-066075b2a7a8",
    ),
    (
        "power-platform-administrator",
        "11648597-926c-4cf3-9c36-bcebb0ba8dcc",
    ),
    (
        "fabric-administrator",
        "a9ea8996-122f-4c74-9520-8edcd192826c",
    ),
    (
        "yammer-administrator",
        "810a2642-a034-447f-a5e8-41beaa378541",
    ),
    (
        "microsoft-365-backup-administrator",
        "1707125e-0aa2-4d4d-8655-a7c786c76a25",
    ),
];

/// Microsoft Graph permission IDs from Graph's published "All permissions and IDs" table:
/// (name, application role ID, delegated scope ID).
const GRAPH_IDS: &[(&str, Option<&str>, Option<&str>)] = &[
    (
        "User.Read",
        None,
        Some("e1fe6dd8-ba31-4d61-89e7-88639da4683d"),
    ),
    (
        "User.Read.All",
        Some("df021288-bdef-4463-88db-98f22de89214"),
        Some("a154be20-db9c-4678-8ab7-66f6cc099a59"),
    ),
    (
        "Sites.FullControl.All",
        Some("a82116e5-55eb-4c41-a434-62fe8a61c773"),
        Some("5a54b8b3-347c-476d-8f8e-42d5c7424d29"),
    ),
    (
        "Sites.ReadWrite.All",
        Some("9492366f-7969-46a4-8d15-ed1a20078fff"),
        Some("89fe6a52-be36-487e-b7d8-d061c450a026"),
    ),
    (
        "Sites.Read.All",
        Some("332a536c-c7ef-4017-ab91-336970924f0d"),
        Some("205e70e5-aba6-4c52-a976-6d2d46c48043"),
    ),
    (
        "Tasks.ReadWrite.All",
        Some("44e666d1-d276-445b-a5fc-8815eeb81d55"),
        None,
    ),
    (
        "Tasks.ReadWrite",
        None,
        Some("2219042f-cab5-40cc-b0d2-16b1540b4c5f"),
    ),
    (
        "Group.Read.All",
        Some("5b567255-7703-4780-807c-7be8301ae99b"),
        Some("5f8c59db-677d-491f-a6b8-5f174b11ec1d"),
    ),
    (
        "Group.ReadWrite.All",
        Some("62a82d76-70ea-41e2-9197-370581804d09"),
        Some("4e46008b-f24c-477d-8fff-7bb4ec7aafe0"),
    ),
    (
        "Directory.Read.All",
        Some("7ab1d382-f21e-4acd-a863-ba3e13f7da61"),
        Some("06da0dbc-49e2-44d2-8312-53f166ab848a"),
    ),
    (
        "Directory.AccessAsUser.All",
        None,
        Some("0e263e50-5827-48a4-b97c-d940288653c7"),
    ),
    (
        "Files.ReadWrite.All",
        Some("75359482-378d-4052-8f01-80520e7db3cd"),
        Some("863451e7-0667-486c-a5d6-d135439485f0"),
    ),
    (
        "Files.Read.All",
        Some("01d4889c-1287-42c6-ac1f-5d1e02578ef6"),
        Some("df85f4d6-205c-4ac5-a5ea-6bf408dba283"),
    ),
    (
        "Mail.ReadWrite",
        Some("e2a3a72e-5f79-4c64-b1b1-878b674786c9"),
        Some("024d486e-b451-40bb-833d-3e66d98c5c73"),
    ),
    (
        "Organization.Read.All",
        Some("498476ce-e0fe-48b0-b801-37ba7e2685c6"),
        Some("4908d5b9-3fb2-4b1e-9336-1888b7937185"),
    ),
    (
        "Reports.Read.All",
        Some("230c1aed-a721-4c5d-9cb4-a90514e508ef"),
        Some("02e97553-ed7b-43d0-ab3c-f8bace0d040c"),
    ),
    (
        "Policy.Read.All",
        Some("246dd0d5-5bd0-4def-940b-0421030a5b68"),
        Some("572fea84-0151-49b2-9301-11cb16974376"),
    ),
    ("openid", None, Some("37f7f235-527c-4136-accd-4a02d197296e")),
    (
        "profile",
        None,
        Some("14dad69e-099b-42c9-810b-d002981feec1"),
    ),
    (
        "offline_access",
        None,
        Some("7427e0e9-2fba-42fe-b0c0-848c9e6a8182"),
    ),
];

fn cat() -> Catalog {
    Catalog::builtin()
}

fn role(c: &Catalog, key: &str) -> Uuid {
    c.role(key)
        .unwrap_or_else(|| panic!("role {key}"))
        .template_id
}

fn facts(c: &Catalog, roles: &[&str]) -> UserFacts {
    roles
        .iter()
        .fold(UserFacts::default(), |f, r| f.with_role(role(c, r)))
}

fn req(
    c: &Catalog,
    app: &str,
    m: ConsentMethod,
    service: Option<&str>,
    functions: &[&str],
) -> Requirement {
    let functions: Vec<String> = functions.iter().map(|s| s.to_string()).collect();
    c.app_type(app)
        .unwrap_or_else(|| panic!("app type {app}"))
        .requirement_for(m, service, &functions, &[])
        .unwrap()
}

/// The requirement when the profile is to scan `targets`.
fn req_scanning(
    c: &Catalog,
    app: &str,
    m: ConsentMethod,
    service: Option<&str>,
    targets: &[&str],
) -> Requirement {
    let targets: Vec<String> = targets.iter().map(|s| s.to_string()).collect();
    c.app_type(app)
        .unwrap_or_else(|| panic!("app type {app}"))
        .requirement_for(m, service, &[], &targets)
        .unwrap()
}

const POWER_PLATFORM_APP_TYPES: [(&str, &str); 4] = [
    ("insights-power-platform", "insights"),
    ("enpower-power-platform", "enpower"),
    ("fly-power-platform", "fly"),
    ("cloud-governance-power-platform", "cloud-governance"),
];

/// The objects the reference document names for Power Platform Administrator.
const POWER_PLATFORM_OBJECTS: [&str; 6] = [
    "environments",
    "connections",
    "power-apps",
    "solutions",
    "power-automate",
    "copilot-studio",
];

#[test]
fn builtin_loads_and_matches_its_source() {
    let c = cat();
    assert_eq!(c.version, 2);
    assert_eq!(
        c,
        Catalog::from_toml_str(consentry_catalog::BUILTIN_TOML, "again").unwrap()
    );
    let services: Vec<&str> = c.services.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(
        services,
        [
            "insights",
            "enpower",
            "fly",
            "cloud-backup-iaas-paas",
            "cloud-governance",
            "myhub",
            "policies-m365",
            "tygraph",
            "cloud-backup-m365",
            "dms-online",
            "portal-manager"
        ]
    );
    let keys: BTreeSet<&str> = c.app_types.iter().map(|a| a.key.as_str()).collect();
    let expected: BTreeSet<&str> = [
        "insights-m365",
        "insights-power-platform",
        "enpower-m365",
        "enpower-power-platform",
        "enpower-teams-calling",
        "fly-power-platform",
        "fly-delegated",
        "fly",
        "cloud-backup-azure",
        "iaas-delegated",
        "cloud-backup-azure-devops",
        "cloud-governance-power-platform",
        "cloud-governance-delegated",
        "myhub",
        "policies-m365",
        "tygraph-suite",
        "tygraph-viva-engage",
        "cloud-backup-delegated",
        "cloud-backup-express",
        "viva-engage",
        "dms-online",
        "portal-manager",
        "portal-manager-room",
        "custom-delegated",
        "m365-all",
        "cloud-backup-m365-all",
        "custom-azure-app",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, expected);
}

#[test]
fn every_seed_row_is_an_app_type_with_its_entra_name_and_services() {
    let c = cat();
    for (services, display, entra) in SEED_ROWS {
        let matches: Vec<_> = c
            .app_types
            .iter()
            .filter(|a| {
                let names: Vec<&str> = a
                    .services
                    .iter()
                    .map(|s| c.service(s).unwrap().name.as_str())
                    .collect();
                a.display_name == *display && names == *services
            })
            .collect();
        assert_eq!(matches.len(), 1, "seed row {services:?} / {display}");
        assert_eq!(
            matches[0].entra_app_name.as_deref(),
            *entra,
            "Entra app name of {display}"
        );
    }
}

#[test]
fn user_consent_is_allowed_exactly_for_the_seed_rows() {
    let c = cat();
    let allowed: BTreeSet<(&str, Vec<&str>)> = c
        .app_types
        .iter()
        .filter(|a| a.allows(ConsentMethod::User))
        .map(|a| {
            (
                a.display_name.as_str(),
                a.services
                    .iter()
                    .map(|s| c.service(s).unwrap().name.as_str())
                    .collect(),
            )
        })
        .collect();
    let seed: BTreeSet<(&str, Vec<&str>)> =
        SEED_ROWS.iter().map(|(s, d, _)| (*d, s.to_vec())).collect();
    assert_eq!(allowed, seed);
    for a in &c.app_types {
        assert!(
            a.allows(ConsentMethod::Admin),
            "{} must allow administrator consent",
            a.key
        );
        assert_eq!(a.consent_methods()[0], ConsentMethod::Admin);
    }
    assert_eq!(
        c.app_type("myhub").unwrap().consent_methods(),
        [ConsentMethod::Admin, ConsentMethod::User]
    );
    assert_eq!(
        c.app_type("fly").unwrap().consent_methods(),
        [ConsentMethod::Admin]
    );
    assert_eq!(
        c.app_type("fly")
            .unwrap()
            .requirement_for(ConsentMethod::User, None, &[], &[]),
        None
    );
}

#[test]
fn app_types_named_outside_the_tables() {
    let c = cat();
    let all = c.app_type("m365-all").unwrap();
    assert_eq!(all.display_name, "Microsoft 365 (All permissions)");
    assert_eq!(
        (all.mode, all.custom_app, all.permission_kind),
        (Some(AppMode::Classic), false, PermissionKind::Application)
    );
    let tasks = all
        .application_roles()
        .find(|p| p.name == "Tasks.ReadWrite.All")
        .expect("m365-all needs Tasks.ReadWrite.All");
    assert_eq!(
        tasks.id,
        Some("44e666d1-d276-445b-a5fc-8815eeb81d55".parse().unwrap())
    );

    let modern = c.app_type("cloud-backup-m365-all").unwrap();
    assert_eq!(
        modern.display_name,
        "Cloud Backup for Microsoft 365 (All permissions)"
    );
    assert_eq!(modern.mode, Some(AppMode::Modern));

    let custom = c.app_type("custom-azure-app").unwrap();
    assert_eq!(custom.display_name, "Custom Azure app");
    assert_eq!(
        (
            custom.mode,
            custom.custom_app,
            custom.entra_app_name.as_deref()
        ),
        (Some(AppMode::Custom), true, None)
    );
    assert!(
        custom
            .application_roles()
            .any(|p| p.name == "Tasks.ReadWrite.All")
    );

    let delegated = c.app_type("custom-delegated").unwrap();
    assert_eq!(
        (delegated.mode, delegated.custom_app),
        (Some(AppMode::Custom), true)
    );
    assert_eq!(delegated.services.len(), 9);

    for key in [
        "m365-all",
        "cloud-backup-m365-all",
        "custom-azure-app",
        "fly",
    ] {
        assert_eq!(
            c.app_type(key).unwrap().consent_methods(),
            [ConsentMethod::Admin],
            "{key} is admin-only"
        );
    }
    assert_eq!(
        c.app_types_for_service("cloud-governance")
            .filter(|a| a.key == "viva-engage")
            .count(),
        1
    );
    assert_eq!(
        c.app_types_for_service("cloud-backup-m365")
            .filter(|a| a.key == "viva-engage")
            .count(),
        1
    );
}

#[test]
fn markers_follow_the_permission_kind() {
    let c = cat();
    for a in &c.app_types {
        let scopes = a.delegated_scopes().count();
        let roles = a.application_roles().count();
        let expected = match (scopes > 0, roles > 0) {
            (true, true) => Some(Marker::Hybrid),
            (true, false) => Some(Marker::Purebred),
            _ => None,
        };
        assert_eq!(a.marker(), expected, "{}", a.key);
    }
    assert_eq!(
        c.app_type("cloud-backup-delegated").unwrap().marker(),
        Some(Marker::Purebred)
    );
    assert_eq!(
        c.app_type("insights-m365").unwrap().marker(),
        Some(Marker::Hybrid)
    );
    assert_eq!(c.app_type("m365-all").unwrap().marker(), None);
}

#[test]
fn role_keys_resolve_to_entra_template_ids() {
    let c = cat();
    assert_eq!(c.roles.len(), ROLE_IDS.len());
    for (key, id) in ROLE_IDS {
        let id: Uuid = id.parse().unwrap();
        assert_eq!(role(&c, key), id, "{key}");
        assert_eq!(c.role_by_template_id(id).unwrap().key, *key);
    }
    assert_eq!(
        c.role_by_name("Engage Administrator").unwrap().key,
        "yammer-administrator"
    );
    assert_eq!(
        c.role_by_name("teams service administrator").unwrap().key,
        "teams-administrator"
    );
    assert_eq!(
        c.role_by_name("Company Administrator").unwrap().key,
        "global-administrator"
    );
    assert!(c.role_by_name("Helpdesk Administrator").is_none());
}

#[test]
fn every_requirement_names_known_roles_and_licenses() {
    let c = cat();
    for a in &c.app_types {
        for rule in &a.consent {
            for r in rule.requires.role_keys() {
                assert!(c.role(r).is_some(), "{}: {r}", a.key);
            }
            for l in rule.requires.license_keys() {
                assert!(c.license(l).is_some(), "{}: {l}", a.key);
            }
        }
    }
}

#[test]
fn permission_ids_are_graphs_and_never_guessed() {
    let c = cat();
    let mut without_id = Vec::new();
    for a in &c.app_types {
        // Scopes of other resources (Viva Engage's) have no Graph ID; their IDs are not known.
        for p in a.permissions.iter().filter(|p| p.is_graph()) {
            let row = GRAPH_IDS.iter().find(|(n, _, _)| *n == p.name);
            let known = row.and_then(|(_, app, del)| match p.kind {
                PermissionType::Role => *app,
                PermissionType::Scope => *del,
            });
            match (p.id, known) {
                (Some(id), Some(k)) => {
                    assert_eq!(id, k.parse::<Uuid>().unwrap(), "{} {}", a.key, p.name)
                }
                (Some(id), None) => panic!(
                    "{}: {} {} has an ID {id} that is not Graph's",
                    a.key, p.kind, p.name
                ),
                (None, _) => without_id.push((a.key.clone(), p.name.clone(), p.kind)),
            }
        }
    }
    assert_eq!(
        without_id,
        [(
            "cloud-backup-delegated".to_owned(),
            "Tasks.ReadWrite.All".to_owned(),
            PermissionType::Scope
        )],
        "only the delegated Tasks.ReadWrite.All scope lacks a known ID"
    );
}

#[test]
fn later_permissions_are_versioned() {
    let c = cat();
    let all = c.app_type("m365-all").unwrap();
    let added: Vec<_> = all.permissions_added_after(1).collect();
    assert_eq!(added.len(), 1);
    assert_eq!(
        (added[0].name.as_str(), added[0].since, added[0].optional),
        ("Tasks.ReadWrite.All", 2, false)
    );
    assert_eq!(all.permissions_at(1).count(), all.permissions.len() - 1);
    assert_eq!(all.permissions_added_after(2).count(), 0);

    let delegated = c.app_type("cloud-backup-delegated").unwrap();
    let added: Vec<_> = delegated.permissions_added_after(1).collect();
    assert_eq!(added.len(), 1);
    assert!(added[0].optional);
    for a in &c.app_types {
        assert!(
            a.permissions
                .iter()
                .all(|p| p.since >= 1 && p.since <= c.version),
            "{}",
            a.key
        );
    }
}

#[test]
fn cloud_backup_delegated_app_has_the_four_functions() {
    let c = cat();
    let app = c.app_type("cloud-backup-delegated").unwrap();
    let functions: Vec<(&str, &str)> = app
        .functions
        .iter()
        .map(|f| (f.name.as_str(), f.module.as_str()))
        .collect();
    assert_eq!(
        functions,
        [
            ("Restore Teams channel conversations as posts", "teams"),
            ("Protect Power BI", "power-bi"),
            ("Protect Power Automate / Power Apps", "power-platform"),
            ("Restore Planner task comments", "planner"),
        ]
    );
    for f in &app.functions {
        assert!(c.module(&f.module).is_some());
        assert_eq!(app.function(&f.key), Some(f));
    }
}

// ---- requirements from the reference document, each evaluated both ways ----

#[test]
fn any_admin_consent_needs_global_or_privileged_role_administrator() {
    let c = cat();
    let r = req(&c, "myhub", ConsentMethod::Admin, Some("myhub"), &[]);
    assert_eq!(
        c.describe(&r),
        "Global Administrator or Privileged Role Administrator"
    );
    assert!(
        c.evaluate(&r, &facts(&c, &["global-administrator"]))
            .is_ok()
    );
    assert!(
        c.evaluate(&r, &facts(&c, &["privileged-role-administrator"]))
            .is_ok()
    );
    let unmet = c
        .evaluate(&r, &facts(&c, &["exchange-administrator"]))
        .unwrap_err();
    assert_eq!(
        unmet.to_string(),
        "needs Global Administrator or Privileged Role Administrator"
    );
    assert!(c.evaluate(&r, &UserFacts::default()).is_err());
}

#[test]
fn viva_engage_apps_also_accept_yammer_administrator() {
    let c = cat();
    for app in ["viva-engage", "tygraph-viva-engage"] {
        let r = req(&c, app, ConsentMethod::Admin, Some("cloud-governance"), &[]);
        assert!(
            c.evaluate(&r, &facts(&c, &["yammer-administrator"]))
                .is_ok(),
            "{app}"
        );
        assert!(
            c.evaluate(&r, &facts(&c, &["global-administrator"]))
                .is_ok(),
            "{app}"
        );
        assert!(
            c.evaluate(&r, &facts(&c, &["teams-administrator"]))
                .is_err(),
            "{app}"
        );
        let user = req(&c, app, ConsentMethod::User, Some("cloud-governance"), &[]);
        assert!(
            c.evaluate(&user, &facts(&c, &["yammer-administrator"]))
                .is_ok(),
            "{app}"
        );
        assert!(c.evaluate(&user, &UserFacts::default()).is_err(), "{app}");
    }
    // The same app type for another service does not accept Yammer Administrator alone for non-Viva apps.
    let r = req(
        &c,
        "tygraph-suite",
        ConsentMethod::Admin,
        Some("tygraph"),
        &[],
    );
    assert!(
        c.evaluate(&r, &facts(&c, &["yammer-administrator"]))
            .is_err()
    );
}

#[test]
fn the_viva_engage_app_asks_for_the_yammer_scope_beside_graph() {
    let c = cat();
    let app = c.app_type("viva-engage").unwrap();
    assert!(
        app.sign_in_scopes()
            .contains(&"https://api.yammer.com/user_impersonation".to_string()),
        "the consent must cover the Viva Engage API, where Verified Admin is read"
    );
    assert!(
        app.delegated_scopes().all(|p| p.is_graph()),
        "a Graph token is asked for Graph scopes only"
    );
    for method in [ConsentMethod::Admin, ConsentMethod::User] {
        let backup = req(&c, "viva-engage", method, Some("cloud-backup-m365"), &[]);
        assert!(backup.mentions_verified_admin());
        let governance = req(&c, "viva-engage", method, Some("cloud-governance"), &[]);
        assert!(!governance.mentions_verified_admin());
    }
}

#[test]
fn cloud_backup_viva_engage_needs_yammer_verified_admin_and_license() {
    let c = cat();
    for method in [ConsentMethod::Admin, ConsentMethod::User] {
        let r = req(&c, "viva-engage", method, Some("cloud-backup-m365"), &[]);
        assert_eq!(
            c.describe(&r),
            "Yammer Administrator and Verified Admin and a Viva Engage license"
        );
        let full = facts(&c, &["yammer-administrator"])
            .verified_admin(true)
            .with_service_plan("YAMMER_ENTERPRISE");
        assert!(c.evaluate(&r, &full).is_ok());
        let by_sku = facts(&c, &["yammer-administrator"])
            .verified_admin(true)
            .with_sku("yammer_enterprise_standalone");
        assert!(
            c.evaluate(&r, &by_sku).is_ok(),
            "SKU part numbers match case-insensitively"
        );

        let no_license = facts(&c, &["yammer-administrator"]).verified_admin(true);
        let unmet = c.evaluate(&r, &no_license).unwrap_err();
        assert_eq!(unmet.missing, ["a Viva Engage license"]);
        assert_eq!(
            unmet.to_string(),
            "needs Yammer Administrator and Verified Admin and a Viva Engage license (missing: a Viva Engage license)"
        );
        let global = facts(&c, &["global-administrator"]).with_service_plan("YAMMER_ENTERPRISE");
        let unmet = c.evaluate(&r, &global).unwrap_err();
        assert_eq!(unmet.missing, ["Yammer Administrator", "Verified Admin"]);
    }
    // For Cloud Governance the extra condition does not apply.
    let r = req(
        &c,
        "viva-engage",
        ConsentMethod::Admin,
        Some("cloud-governance"),
        &[],
    );
    assert!(
        c.evaluate(&r, &facts(&c, &["global-administrator"]))
            .is_ok()
    );
}

#[test]
fn cloud_backup_express_needs_microsoft_365_backup_administrator() {
    let c = cat();
    let admin = req(
        &c,
        "cloud-backup-express",
        ConsentMethod::Admin,
        Some("cloud-backup-m365"),
        &[],
    );
    assert_eq!(
        c.describe(&admin),
        "(Global Administrator or Privileged Role Administrator) and Microsoft 365 Backup Administrator"
    );
    assert!(
        c.evaluate(
            &admin,
            &facts(
                &c,
                &["global-administrator", "microsoft-365-backup-administrator"]
            )
        )
        .is_ok()
    );
    let unmet = c
        .evaluate(&admin, &facts(&c, &["global-administrator"]))
        .unwrap_err();
    assert_eq!(unmet.missing, ["Microsoft 365 Backup Administrator"]);
    let user = req(&c, "cloud-backup-express", ConsentMethod::User, None, &[]);
    assert!(
        c.evaluate(&user, &facts(&c, &["microsoft-365-backup-administrator"]))
            .is_ok()
    );
    assert!(
        c.evaluate(&user, &facts(&c, &["global-administrator"]))
            .is_err()
    );
}

#[test]
fn portal_manager_default_apps_need_no_role_for_user_consent() {
    // The seed's Portal Manager rule is for administrator consent; its user-consent Teams rule is for the
    // custom app. The default apps' user consent needs nothing beyond the method (admin consent first).
    let c = cat();
    for app in ["portal-manager", "portal-manager-room"] {
        let r = req(&c, app, ConsentMethod::User, Some("portal-manager"), &[]);
        assert!(r.is_trivial(), "{app}: {}", c.describe(&r));
        assert!(c.evaluate(&r, &UserFacts::default()).is_ok(), "{app}");
    }
}

#[test]
fn portal_manager_needs_global_or_privileged_role_plus_teams_administrator() {
    let c = cat();
    for app in ["portal-manager", "portal-manager-room"] {
        let r = req(&c, app, ConsentMethod::Admin, Some("portal-manager"), &[]);
        assert_eq!(
            c.describe(&r),
            "Global Administrator or (Privileged Role Administrator and Teams Administrator)"
        );
        assert!(
            c.evaluate(&r, &facts(&c, &["global-administrator"]))
                .is_ok()
        );
        assert!(
            c.evaluate(
                &r,
                &facts(
                    &c,
                    &["privileged-role-administrator", "teams-administrator"]
                )
            )
            .is_ok()
        );
        assert!(
            c.evaluate(&r, &facts(&c, &["privileged-role-administrator"]))
                .is_err()
        );
        assert!(
            c.evaluate(&r, &facts(&c, &["teams-administrator"]))
                .is_err()
        );
    }
    // The custom delegated app used by Portal Manager: Teams administrator or higher for user consent.
    let r = req(
        &c,
        "custom-delegated",
        ConsentMethod::User,
        Some("portal-manager"),
        &[],
    );
    assert!(c.evaluate(&r, &facts(&c, &["teams-administrator"])).is_ok());
    assert!(c.evaluate(&r, &UserFacts::default()).is_err());
    let other = req(
        &c,
        "custom-delegated",
        ConsentMethod::User,
        Some("myhub"),
        &[],
    );
    assert!(other.is_trivial());
    assert!(c.evaluate(&other, &UserFacts::default()).is_ok());
    assert_eq!(c.describe(&other), "no particular role or license");
}

#[test]
fn cloud_governance_delegated_app_needs_global_or_exchange_admin_or_group_ownership() {
    let c = cat();
    let admin = req(
        &c,
        "cloud-governance-delegated",
        ConsentMethod::Admin,
        None,
        &[],
    );
    assert_eq!(
        c.describe(&admin),
        "Global Administrator or Exchange Administrator"
    );
    assert!(
        c.evaluate(&admin, &facts(&c, &["exchange-administrator"]))
            .is_ok()
    );
    assert!(
        c.evaluate(&admin, &facts(&c, &["global-administrator"]))
            .is_ok()
    );
    assert!(
        c.evaluate(&admin, &facts(&c, &["privileged-role-administrator"]))
            .is_err()
    );
    let user = req(
        &c,
        "cloud-governance-delegated",
        ConsentMethod::User,
        None,
        &[],
    );
    assert_eq!(user, Requirement::GroupOwner);
    assert!(
        c.evaluate(&user, &UserFacts::default().group_owner(true))
            .is_ok()
    );
    assert_eq!(
        c.evaluate(&user, &UserFacts::default())
            .unwrap_err()
            .to_string(),
        "needs ownership of the managed groups"
    );
}

#[test]
fn cloud_backup_delegated_app_needs_global_administrator_for_admin_consent_only() {
    let c = cat();
    let admin = req(
        &c,
        "cloud-backup-delegated",
        ConsentMethod::Admin,
        Some("cloud-backup-m365"),
        &["restore-planner-comments"],
    );
    assert!(
        c.evaluate(&admin, &facts(&c, &["global-administrator"]))
            .is_ok()
    );
    assert!(
        c.evaluate(&admin, &facts(&c, &["privileged-role-administrator"]))
            .is_err()
    );
    // The seed lists the app among those re-authorized "with a non-Administrator account".
    for functions in [
        &["restore-planner-comments"][..],
        &[
            "restore-teams-conversations",
            "protect-power-bi",
            "protect-power-platform",
        ],
    ] {
        let user = req(
            &c,
            "cloud-backup-delegated",
            ConsentMethod::User,
            Some("cloud-backup-m365"),
            functions,
        );
        assert!(user.is_trivial(), "{functions:?}: {}", c.describe(&user));
        assert!(c.evaluate(&user, &UserFacts::default()).is_ok());
    }
}

#[test]
fn fly_for_power_platform_admin_consent_by_privileged_role_administrator_needs_power_platform_administrator()
 {
    // The seed's Fly note: a Privileged Role Administrator account needs Power Platform Administrator,
    // whatever the profile scans.
    let c = cat();
    let admin = req_scanning(
        &c,
        "fly-power-platform",
        ConsentMethod::Admin,
        Some("fly"),
        &["environments"],
    );
    assert!(
        c.evaluate(&admin, &facts(&c, &["global-administrator"]))
            .is_ok()
    );
    assert!(
        c.evaluate(
            &admin,
            &facts(
                &c,
                &[
                    "privileged-role-administrator",
                    "power-platform-administrator"
                ]
            )
        )
        .is_ok()
    );
    assert!(
        c.evaluate(&admin, &facts(&c, &["privileged-role-administrator"]))
            .is_err()
    );
    let bi_only = req_scanning(
        &c,
        "fly-power-platform",
        ConsentMethod::Admin,
        Some("fly"),
        &["power-bi"],
    );
    let unmet = c
        .evaluate(
            &bi_only,
            &facts(
                &c,
                &["privileged-role-administrator", "fabric-administrator"],
            )
            .with_sku("POWER_BI_PRO"),
        )
        .unwrap_err();
    assert_eq!(
        unmet.missing,
        [
            "Global Administrator or (Privileged Role Administrator and Power Platform Administrator)"
        ]
    );
}

#[test]
fn power_platform_app_types_choose_scan_targets_not_module_gated_functions() {
    let c = cat();
    for (app, service) in POWER_PLATFORM_APP_TYPES {
        let a = c.app_type(app).unwrap();
        assert!(
            a.functions.is_empty(),
            "{app}: no subscription-gated functions"
        );
        let keys: Vec<&str> = a.scan_targets.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "environments",
                "connections",
                "power-apps",
                "solutions",
                "power-automate",
                "copilot-studio",
                "power-bi"
            ],
            "{app}"
        );
        assert!(a.serves(service));
        // At least one is chosen; unknown keys are refused; the choice comes back in catalog order.
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(matches!(
            a.check_scan_targets(&[]),
            Err(ScanTargetChoiceError::NoneChosen { .. })
        ));
        let unknown = a
            .check_scan_targets(&s(&["power-bi", "dataverse"]))
            .unwrap_err();
        assert!(
            matches!(unknown, ScanTargetChoiceError::Unknown { ref target, .. } if target == "dataverse")
        );
        assert!(unknown.to_string().contains("copilot-studio"), "{unknown}");
        assert_eq!(
            a.check_scan_targets(&s(&["power-bi", "solutions", "power-bi"]))
                .unwrap(),
            s(&["solutions", "power-bi"])
        );
    }
    // App types without scan targets accept none and refuse any.
    let myhub = c.app_type("myhub").unwrap();
    assert_eq!(myhub.check_scan_targets(&[]).unwrap(), Vec::<String>::new());
    assert!(matches!(
        myhub.check_scan_targets(&["power-bi".to_string()]),
        Err(ScanTargetChoiceError::NoneAvailable { .. })
    ));
    // The Cloud Backup delegated app keeps its module-gated functions and has no scan targets.
    assert!(
        c.app_type("cloud-backup-delegated")
            .unwrap()
            .scan_targets
            .is_empty()
    );
}

#[test]
fn scanning_power_platform_objects_needs_power_platform_administrator_for_user_consent() {
    let c = cat();
    for (app, service) in POWER_PLATFORM_APP_TYPES {
        for target in POWER_PLATFORM_OBJECTS {
            let r = req_scanning(&c, app, ConsentMethod::User, Some(service), &[target]);
            assert_eq!(
                c.describe(&r),
                "Power Platform Administrator",
                "{app} {target}"
            );
            assert!(
                c.evaluate(&r, &facts(&c, &["power-platform-administrator"]))
                    .is_ok()
            );
            assert!(
                c.evaluate(
                    &r,
                    &facts(&c, &["fabric-administrator"]).with_sku("POWER_BI_PRO")
                )
                .is_err(),
                "{app} {target}"
            );
        }
    }
}

#[test]
fn power_bi_scanning_needs_power_bi_license_and_fabric_administrator() {
    let c = cat();
    for (app, service) in POWER_PLATFORM_APP_TYPES {
        let r = req_scanning(&c, app, ConsentMethod::User, Some(service), &["power-bi"]);
        assert_eq!(
            c.describe(&r),
            "a Power BI license and Fabric Administrator"
        );
        assert!(
            c.evaluate(
                &r,
                &facts(&c, &["fabric-administrator"]).with_sku("POWER_BI_PRO")
            )
            .is_ok(),
            "{app}"
        );
        assert!(
            c.evaluate(&r, &facts(&c, &["fabric-administrator"]))
                .is_err(),
            "{app}"
        );
        assert!(
            c.evaluate(&r, &UserFacts::default().with_service_plan("BI_AZURE_P2"))
                .is_err(),
            "{app}"
        );
        // Power BI scanning needs no Power Platform Administrator.
        assert!(
            c.evaluate(&r, &facts(&c, &["power-platform-administrator"]))
                .is_err()
        );

        let both = req_scanning(
            &c,
            app,
            ConsentMethod::User,
            Some(service),
            &["power-bi", "solutions"],
        );
        let unmet = c
            .evaluate(
                &both,
                &facts(&c, &["fabric-administrator"]).with_sku("POWER_BI_PRO"),
            )
            .unwrap_err();
        assert_eq!(unmet.missing, ["Power Platform Administrator"]);
        assert!(
            c.evaluate(
                &both,
                &facts(
                    &c,
                    &["fabric-administrator", "power-platform-administrator"]
                )
                .with_sku("POWER_BI_PRO")
            )
            .is_ok()
        );
    }
}

#[test]
fn power_platform_admin_consent_follows_the_scan_targets_with_global_administrator_accepted() {
    let c = cat();
    for (app, service) in POWER_PLATFORM_APP_TYPES {
        let pp = req_scanning(
            &c,
            app,
            ConsentMethod::Admin,
            Some(service),
            &["power-automate"],
        );
        assert!(
            c.evaluate(&pp, &facts(&c, &["global-administrator"]))
                .is_ok(),
            "{app}"
        );
        assert!(
            c.evaluate(
                &pp,
                &facts(
                    &c,
                    &[
                        "privileged-role-administrator",
                        "power-platform-administrator"
                    ]
                )
            )
            .is_ok(),
            "{app}"
        );
        assert!(
            c.evaluate(&pp, &facts(&c, &["privileged-role-administrator"]))
                .is_err(),
            "{app}: the consenting admin scans the objects too"
        );
        assert!(
            c.evaluate(&pp, &facts(&c, &["power-platform-administrator"]))
                .is_err(),
            "{app}: tenant-wide consent still needs Global or Privileged Role Administrator"
        );
        let bi = req_scanning(&c, app, ConsentMethod::Admin, Some(service), &["power-bi"]);
        assert!(
            c.evaluate(
                &bi,
                &facts(&c, &["global-administrator"]).with_sku("POWER_BI_PRO")
            )
            .is_ok(),
            "{app}"
        );
        let unmet = c
            .evaluate(&bi, &facts(&c, &["global-administrator"]))
            .unwrap_err();
        assert_eq!(unmet.missing, ["a Power BI license"], "{app}");
    }
}

#[test]
fn consent_method_names_and_serialized_forms() {
    assert_eq!(ConsentMethod::Admin.to_string(), "Administrator consent");
    assert_eq!(ConsentMethod::User.to_string(), "User consent");
    assert_eq!(
        serde_json::to_string(&ConsentMethod::Admin).unwrap(),
        "\"admin\""
    );
    assert_eq!(
        "user".parse::<ConsentMethod>().unwrap(),
        ConsentMethod::User
    );
    assert!("owner".parse::<ConsentMethod>().is_err());
    let c = cat();
    let r = req(&c, "portal-manager", ConsentMethod::Admin, None, &[]);
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(
        json,
        r#"{"any_of":[{"role":"global-administrator"},{"all_of":[{"role":"privileged-role-administrator"},{"role":"teams-administrator"}]}]}"#
    );
    assert_eq!(serde_json::from_str::<Requirement>(&json).unwrap(), r);
    let catalog_json = serde_json::to_value(&c).unwrap();
    assert_eq!(catalog_json["app_types"][0]["key"], "insights-m365");
}

#[test]
fn function_choices_are_checked_against_the_subscription() {
    use consentry_catalog::FunctionChoiceError;
    let c = cat();
    let app = c.app_type("cloud-backup-delegated").unwrap();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(
        app.check_functions(&s(&["restore-planner-comments"]), &s(&["planner", "teams"]))
            .is_ok()
    );
    let err = app
        .check_functions(&s(&["protect-power-bi"]), &s(&["planner"]))
        .unwrap_err();
    assert_eq!(
        err,
        FunctionChoiceError::ModuleNotSubscribed {
            function: "Protect Power BI".into(),
            module: "power-bi".into()
        }
    );
    assert!(
        err.to_string()
            .contains("add the module to the subscription")
    );
    assert!(matches!(
        app.check_functions(&[], &s(&["planner"])),
        Err(FunctionChoiceError::NoneChosen { .. })
    ));
    assert!(matches!(
        app.check_functions(&s(&["backup-mail"]), &s(&["planner"])),
        Err(FunctionChoiceError::Unknown { .. })
    ));
    // App types without functions accept the empty choice.
    assert!(
        c.app_type("myhub")
            .unwrap()
            .check_functions(&[], &[])
            .is_ok()
    );
}
