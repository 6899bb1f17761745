//! Well-known identifiers: directory role template IDs and the Microsoft Graph permission table
//! (entra-facts §5.1 and §5.2), and Graph's error date format.

use time::OffsetDateTime;
use time::macros::format_description;
use uuid::Uuid;

/// Application (client) ID of Microsoft Graph, identical in every tenant.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// Resource URI of Microsoft Graph.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";

/// Application ID of Viva Engage (Yammer), the "Office 365 Yammer" service principal (entra-facts §10).
pub const YAMMER_APP_ID: &str = "00000005-0000-0ff1-ce00-000000000000";
/// Resource URI of the Viva Engage (Yammer) REST API: the `aud` of its access tokens.
pub const YAMMER_RESOURCE: &str = "https://api.yammer.com";
/// The one delegated scope of the Viva Engage REST API.
pub const YAMMER_SCOPE: &str = "user_impersonation";
/// Path prefix under which the simulator serves the Viva Engage REST API (Microsoft serves it at
/// `https://www.yammer.com`; a client's configured base URL is `{sim}/yammer`).
pub const YAMMER_PATH_PREFIX: &str = "/yammer";

/// Role template ID of Global Administrator.
pub const ROLE_GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
/// Role template ID of Privileged Role Administrator.
pub const ROLE_PRIVILEGED_ROLE_ADMIN: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";

/// Role template ID of Application Administrator (creates and manages every app registration).
pub const ROLE_APPLICATION_ADMIN: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
/// Role template ID of Cloud Application Administrator (the same for app registrations).
pub const ROLE_CLOUD_APPLICATION_ADMIN: &str = "158c047a-c907-4556-b7ef-446551a6b5f7";

/// Tenant ID of Microsoft's own services tenant, the publisher (`appOwnerOrganizationId`) of
/// first-party apps such as Microsoft Graph.
pub const MICROSOFT_SERVICES_TENANT: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";
/// Application ID of "Microsoft Graph Command Line Tools" (formerly "Microsoft Graph PowerShell"),
/// the first-party public client `Connect-MgGraph` signs in with (device code included); it asks
/// for Graph's delegated scopes dynamically and exists in every tenant. The ID is the one
/// `Connect-MgGraph` prints ("Connected via delegated access using 14d82eec-…").
pub const GRAPH_CLI_APP_ID: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";
/// Display name of [`GRAPH_CLI_APP_ID`].
pub const GRAPH_CLI_NAME: &str = "Microsoft Graph Command Line Tools";

/// Built-in directory roles: (template ID, display name, alternative names accepted in scenarios).
pub const DIRECTORY_ROLES: &[(&str, &str, &[&str])] = &[
    (
        ROLE_GLOBAL_ADMIN,
        "Global Administrator",
        &["Company Administrator"],
    ),
    (
        ROLE_PRIVILEGED_ROLE_ADMIN,
        "Privileged Role Administrator",
        &[],
    ),
    (
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "Exchange Administrator",
        &[],
    ),
    (
        "69091246-20e8-4a56-aa4d-066075b2a7a8",
        "Teams Administrator",
        &["Teams Service Administrator"],
    ),
    (
        "11648597-926c-4cf3-9c36-bcebb0ba8dcc",
        "Power Platform Administrator",
        &[],
    ),
    (
        "a9ea8996-122f-4c74-9520-8edcd192826c",
        "Fabric Administrator",
        &["Power BI Administrator"],
    ),
    // "Engage Administrator" as a name for this role is UNVERIFIED (entra-facts §5.1); accepted as an alias.
    (
        "810a2642-a034-447f-a5e8-41beaa378541",
        "Yammer Administrator",
        &["Engage Administrator"],
    ),
    (
        "1707125e-0aa2-4d4d-8655-a7c786c76a25",
        "Microsoft 365 Backup Administrator",
        &[],
    ),
    (
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        "Application Administrator",
        &[],
    ),
    (
        "158c047a-c907-4556-b7ef-446551a6b5f7",
        "Cloud Application Administrator",
        &[],
    ),
    ("f2ef992c-3afb-46b9-b7cf-a126ee74c451", "Global Reader", &[]),
    (
        "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
        "SharePoint Administrator",
        &[],
    ),
    (
        "fe930be7-5e62-47db-91af-98c3a49a38b1",
        "User Administrator",
        &[],
    ),
    (
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
        "Security Administrator",
        &[],
    ),
    (
        "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
        "Conditional Access Administrator",
        &[],
    ),
    (
        "44367163-eba1-44c3-98af-f5787879f96a",
        "Dynamics 365 Administrator",
        &[],
    ),
    (
        "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
        "Directory Readers",
        &[],
    ),
];

/// Resolves a role given by template ID or by (alternative) display name to its template ID.
pub fn resolve_role(role: &str) -> Option<&'static str> {
    DIRECTORY_ROLES
        .iter()
        .find(|(id, name, alts)| {
            id.eq_ignore_ascii_case(role)
                || name.eq_ignore_ascii_case(role)
                || alts.iter().any(|a| a.eq_ignore_ascii_case(role))
        })
        .map(|(id, _, _)| *id)
}

/// Display name of a role template ID (unknown IDs are shown as given).
pub fn role_display_name(template_id: &str) -> String {
    DIRECTORY_ROLES
        .iter()
        .find(|(id, _, _)| id.eq_ignore_ascii_case(template_id))
        .map_or_else(|| template_id.to_owned(), |(_, name, _)| (*name).to_owned())
}

/// Microsoft Graph permissions with their published IDs: (value, application role ID, delegated scope ID).
pub const GRAPH_PERMISSIONS: &[(&str, Option<&str>, Option<&str>)] = &[
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
        "User.ReadWrite.All",
        Some("741f803b-c850-494e-b5df-cde7c675a1ca"),
        Some("204e0828-b5ca-4ad8-b9f3-f32a958e7cc4"),
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
        "Sites.Selected",
        Some("883ea226-0bf2-4a8f-9f9d-92c9162a727d"),
        None,
    ),
    // The delegated Tasks.ReadWrite.All scope ID is UNVERIFIED (entra-facts §5.2): a synthetic ID is used.
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
        "Tasks.ReadWrite.Shared",
        None,
        Some("c5ddf11b-c114-4886-8558-8a4e557cd52b"),
    ),
    (
        "Tasks.Read.All",
        Some("f10e1f91-74ed-437f-a6fd-d6ae88e26c1f"),
        None,
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
        "GroupMember.Read.All",
        Some("98830695-27a2-44f7-8c18-0c3ebc9698f6"),
        Some("bc024368-1153-4739-b217-4326f2e966d0"),
    ),
    // Reading the sign-in logs (entra-facts §12); IDs from Microsoft's permissions reference.
    (
        "AuditLog.Read.All",
        Some("b0afded3-3588-46d8-8b3d-9842eff778da"),
        Some("e4c9e354-4dc5-45b8-9e7c-e1393b0b1a20"),
    ),
    (
        "Directory.Read.All",
        Some("7ab1d382-f21e-4acd-a863-ba3e13f7da61"),
        Some("06da0dbc-49e2-44d2-8312-53f166ab848a"),
    ),
    (
        "Directory.ReadWrite.All",
        Some("19dbc75e-c2e2-444c-a770-ec69d8559fc7"),
        Some("c5366453-9fb0-48a5-a156-24f0c49a4b84"),
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
        "Mail.Send",
        Some("b633e1c5-b582-4048-a93e-9f11b44c7e96"),
        Some("e383f46e-2787-4529-855e-0e479a3ffac0"),
    ),
    (
        "Application.Read.All",
        Some("9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30"),
        Some("c79f8feb-a9db-4090-85f9-90d820caa0eb"),
    ),
    (
        "Application.ReadWrite.All",
        Some("1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9"),
        Some("bdfbf15f-ee85-4955-8675-146e8e5296b5"),
    ),
    // Application only: create apps, and manage those the caller owns.
    (
        "Application.ReadWrite.OwnedBy",
        Some("18a4783c-866b-4cc7-a460-3d5e5662c884"),
        None,
    ),
    (
        "AppRoleAssignment.ReadWrite.All",
        Some("06b708a9-e830-4db3-a914-8e69da51d44f"),
        Some("84bccea3-f856-4a8a-967b-dbe0a3d53a64"),
    ),
    (
        "DelegatedPermissionGrant.ReadWrite.All",
        Some("8e8e4742-1d95-4f68-9d56-6ee75648c72a"),
        Some("41ce6ca6-6826-4807-84f1-1c82854f7ee5"),
    ),
    (
        "RoleManagement.Read.Directory",
        Some("483bed4a-2ad3-4361-a73b-c83ccdbdc53c"),
        Some("741c54c3-0c1e-44a1-818b-3f97ab4e8c83"),
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
    ("email", None, Some("64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0")),
    (
        "offline_access",
        None,
        Some("7427e0e9-2fba-42fe-b0c0-848c9e6a8182"),
    ),
];

/// The OpenID Connect scopes, which belong to no resource and never need consent beyond sign-in.
pub const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// Namespace for synthetic, deterministic IDs (permissions whose real ID is not in entra-facts, object
/// IDs derived from names). These IDs are stable across runs but are NOT Microsoft's.
pub const SYNTHETIC_NAMESPACE: Uuid = Uuid::from_u128(0x5e1d_0000_0000_4000_8000_e47a_0000_0001);

/// A deterministic synthetic ID for `kind`/`name`.
pub fn synthetic_id(kind: &str, name: &str) -> Uuid {
    Uuid::new_v5(&SYNTHETIC_NAMESPACE, format!("{kind}:{name}").as_bytes())
}

/// Whether a delegated Graph scope needs an administrator's consent. Microsoft publishes this per
/// permission; this table covers the common ones and treats any other `*.All` scope as admin-only.
pub fn graph_scope_needs_admin(value: &str) -> bool {
    const USER_CONSENTABLE_ALL: &[&str] = &[
        "Files.Read.All",
        "Files.ReadWrite.All",
        "Sites.Read.All",
        "Sites.ReadWrite.All",
        "User.ReadBasic.All",
        "Calendars.Read.Shared",
        "Tasks.ReadWrite.Shared",
    ];
    if OIDC_SCOPES.contains(&value) || USER_CONSENTABLE_ALL.contains(&value) {
        return false;
    }
    value.ends_with(".All")
        || value.starts_with("Directory.")
        || value.starts_with("RoleManagement.")
}

/// Graph's `innerError.date`: ISO-8601 without a zone suffix.
pub(crate) fn graph_date(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]"
    ))
    .unwrap_or_default()
}

/// A Microsoft cloud as the simulator serves it (entra-facts §11): what a tenant's OpenID metadata
/// says of the cloud it lives in, and how the global authority refuses such a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimCloud {
    /// The key a scenario tenant names (`cloud = "usgov"`) and the path prefix of its endpoints
    /// (`{base}/clouds/<key>`); the global cloud is served at `{base}` itself.
    pub key: &'static str,
    /// `cloud_instance_name`.
    pub cloud_instance_name: &'static str,
    /// `msgraph_host` (Microsoft's Graph host of the cloud: the metadata names it, whatever host the
    /// simulator listens on).
    pub msgraph_host: &'static str,
    /// `tenant_region_scope` of the cloud's tenants.
    pub region_scope: &'static str,
    /// `tenant_region_sub_scope` of the cloud's tenants, if any.
    pub region_sub_scope: Option<&'static str>,
    /// The AADSTS code and message with which the global authority refuses a request for a tenant
    /// of this cloud (none for the global cloud). UNVERIFIED (docs/entra-sim.md): see [`CLOUDS`].
    pub global_refusal: Option<(u32, &'static str)>,
}

/// The key of the global cloud.
pub const GLOBAL_CLOUD: &str = "global";

/// The clouds the simulator serves. Hosts: Microsoft's national-cloud deployment page
/// (learn.microsoft.com/graph/deployments). Refusals at the global authority, UNVERIFIED:
/// AADSTS900439 for US government tenants is quoted in public issues (jgraph/drawio#1066,
/// Yvand/EntraCP#95: "Confidential Client requests are not supported on the public endpoint
/// (login.microsoftonline.com) for tenants in the Azure Government cloud…"), without the HTTP status
/// or the OAuth `error`; AADSTS900382 "Confidential Client is not supported in Cross Cloud request"
/// is quoted with `invalid_request` and 400 (webprofusion/certify#553), but not for a China tenant
/// in particular. China's `tenant_region_scope` (`AS`) is UNVERIFIED too.
pub const CLOUDS: &[SimCloud] = &[
    SimCloud {
        key: GLOBAL_CLOUD,
        cloud_instance_name: "microsoftonline.com",
        msgraph_host: "graph.microsoft.com",
        region_scope: "NA",
        region_sub_scope: None,
        global_refusal: None,
    },
    SimCloud {
        key: "usgov",
        cloud_instance_name: "microsoftonline.us",
        msgraph_host: "graph.microsoft.us",
        region_scope: "USGov",
        region_sub_scope: Some("DODCON"),
        global_refusal: Some((
            900439,
            "Confidential Client requests are not supported on the public endpoint (login.microsoftonline.com) for tenants in the Azure Government cloud. Send your login requests to https://login.microsoftonline.us instead.",
        )),
    },
    SimCloud {
        key: "usgov-dod",
        cloud_instance_name: "microsoftonline.us",
        msgraph_host: "dod-graph.microsoft.us",
        region_scope: "USGov",
        region_sub_scope: Some("DOD"),
        global_refusal: Some((
            900439,
            "Confidential Client requests are not supported on the public endpoint (login.microsoftonline.com) for tenants in the Azure Government cloud. Send your login requests to https://login.microsoftonline.us instead.",
        )),
    },
    SimCloud {
        key: "china",
        cloud_instance_name: "partner.microsoftonline.cn",
        msgraph_host: "microsoftgraph.chinacloudapi.cn",
        region_scope: "AS",
        region_sub_scope: None,
        global_refusal: Some((
            900382,
            "Confidential Client is not supported in Cross Cloud request.",
        )),
    },
];

/// The cloud with this key.
pub fn sim_cloud(key: &str) -> Option<&'static SimCloud> {
    CLOUDS.iter().find(|c| c.key == key)
}
