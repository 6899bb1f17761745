//! Microsoft Graph reads that verify a consent and check a consent user (entra-facts §4).
//!
//! Collections follow `@odata.nextLink` to the end, up to [`EntraConfig::max_pages`] pages, and
//! only while the next link stays on the configured Graph origin (the bearer token is never sent
//! elsewhere). Unknown JSON fields are ignored; `null` collections read as empty.
//!
//! [`EntraConfig::max_pages`]: crate::EntraConfig::max_pages

use consentry_certs::{ClientCertificate, keycredential_matches};
use reqwest::Method;
use secrecy::{ExposeSecret as _, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use url::Url;

use crate::client::{EntraClient, Service, join_segments};
use crate::error::{EntraError, GraphErrorKind};
use crate::urls::check_guid;

/// Microsoft Graph's application ID, the same in every tenant.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// An app role (application permission) defined by a resource service principal.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRole {
    /// The app role ID (`appRoleId` in assignments).
    pub id: String,
    /// The permission name, e.g. `Sites.FullControl.All`.
    #[serde(default)]
    pub value: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// `User`, `Application`, …
    #[serde(default, deserialize_with = "null_as_empty")]
    pub allowed_member_types: Vec<String>,
    /// Whether the role is enabled.
    #[serde(default)]
    pub is_enabled: Option<bool>,
}

/// A delegated permission defined by a resource service principal.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionScope {
    /// The scope ID.
    pub id: String,
    /// The scope name, e.g. `User.Read`.
    #[serde(default)]
    pub value: Option<String>,
    /// `User` or `Admin` (who may consent).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Whether the scope is enabled.
    #[serde(default)]
    pub is_enabled: Option<bool>,
}

/// A certificate or symmetric key credential (entra-facts §4.9).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyCredential {
    /// The credential's ID.
    #[serde(default)]
    pub key_id: Option<String>,
    /// Usually the certificate's SHA-1 thumbprint (hex or base64, see entra-facts §4.9).
    #[serde(default)]
    pub custom_key_identifier: Option<String>,
    /// Display name (often the subject).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Start of validity (ISO 8601).
    #[serde(default)]
    pub start_date_time: Option<String>,
    /// End of validity (ISO 8601).
    #[serde(default)]
    pub end_date_time: Option<String>,
    /// `AsymmetricX509Cert`, `Symmetric`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// `Verify`, `Sign`.
    #[serde(default)]
    pub usage: Option<String>,
    /// Base64 DER certificate (only returned with `$select=keyCredentials`).
    #[serde(default)]
    pub key: Option<String>,
}

impl KeyCredential {
    /// Whether this credential is `certificate` (by DER when `key` is present, otherwise by
    /// thumbprint).
    pub fn matches(&self, certificate: &ClientCertificate) -> bool {
        keycredential_matches(
            certificate,
            self.custom_key_identifier.as_deref(),
            self.key.as_deref(),
        )
    }
}

/// A service principal (an app's instance in a tenant, entra-facts §4.6).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    /// Tenant-specific object ID (used as `clientId` / `principalId` / `resourceId`).
    pub id: String,
    /// The application ID, the same in every tenant.
    pub app_id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The application's display name.
    #[serde(default)]
    pub app_display_name: Option<String>,
    /// The publisher's tenant ID.
    #[serde(default)]
    pub app_owner_organization_id: Option<String>,
    /// Whether sign-in is enabled.
    #[serde(default)]
    pub account_enabled: Option<bool>,
    /// Whether users must be assigned.
    #[serde(default)]
    pub app_role_assignment_required: Option<bool>,
    /// App roles (application permissions) this resource defines.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub app_roles: Vec<AppRole>,
    /// Delegated permissions this resource defines.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub oauth2_permission_scopes: Vec<PermissionScope>,
    /// Key credentials (only with `$select`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub key_credentials: Vec<KeyCredential>,
}

impl ServicePrincipal {
    /// The permission name of one of this resource's app roles.
    pub fn app_role_value(&self, app_role_id: &str) -> Option<&str> {
        self.app_roles
            .iter()
            .find(|r| r.id.eq_ignore_ascii_case(app_role_id))
            .and_then(|r| r.value.as_deref())
    }
}

/// An app role granted to a principal (entra-facts §4.8).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignment {
    /// Assignment ID.
    pub id: String,
    /// The granted app role (map to a name with [`ServicePrincipal::app_role_value`]).
    pub app_role_id: String,
    /// The principal's object ID (the client SP for application permissions).
    pub principal_id: String,
    /// `ServicePrincipal`, `User`, `Group`.
    #[serde(default)]
    pub principal_type: Option<String>,
    /// The principal's display name.
    #[serde(default)]
    pub principal_display_name: Option<String>,
    /// The resource SP's object ID.
    pub resource_id: String,
    /// The resource's display name, e.g. `Microsoft Graph`.
    #[serde(default)]
    pub resource_display_name: Option<String>,
    /// When it was granted.
    #[serde(default)]
    pub created_date_time: Option<String>,
}

/// A delegated-permission grant (entra-facts §4.7).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2PermissionGrant {
    /// Grant ID.
    pub id: String,
    /// The client SP's object ID.
    pub client_id: String,
    /// `AllPrincipals` (admin consent) or `Principal` (one user).
    pub consent_type: String,
    /// The user's object ID for `Principal` grants.
    #[serde(default)]
    pub principal_id: Option<String>,
    /// The resource SP's object ID.
    pub resource_id: String,
    /// Space-separated scope names.
    #[serde(default)]
    pub scope: Option<String>,
}

impl OAuth2PermissionGrant {
    /// The granted scopes (split on whitespace: leading/trailing spaces in `scope` are reported
    /// in practice but UNVERIFIED, entra-facts §4.7).
    pub fn scopes(&self) -> Vec<&str> {
        self.scope
            .as_deref()
            .map(|s| s.split_whitespace().collect())
            .unwrap_or_default()
    }

    /// Whether this is tenant-wide (admin) consent.
    pub fn is_admin_consent(&self) -> bool {
        self.consent_type == "AllPrincipals"
    }
}

/// A tenant's organization (`GET /organization`, entra-facts §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    /// The tenant ID.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Verified domains.
    #[serde(default)]
    pub verified_domains: Vec<VerifiedDomain>,
}

/// One of an organization's verified domains.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedDomain {
    /// The domain name.
    pub name: String,
    /// The tenant's default domain (the primary domain).
    #[serde(default)]
    pub is_default: Option<bool>,
}

/// The signed-in user (`GET /me`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Object ID.
    pub id: String,
    /// UPN.
    #[serde(default)]
    pub user_principal_name: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Mail address.
    #[serde(default)]
    pub mail: Option<String>,
}

/// An entry of `/me/memberOf` or `/me/ownedObjects` (a group, directory role, …).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryObject {
    /// `#microsoft.graph.group`, `#microsoft.graph.directoryRole`, …
    #[serde(default, rename = "@odata.type")]
    pub odata_type: Option<String>,
    /// Object ID (for roles: the tenant-specific role object, not the template).
    pub id: String,
    /// Display name (may be null when the caller may not read the object).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Directory roles: the role template ID, compared with the catalog's roles.
    #[serde(default)]
    pub role_template_id: Option<String>,
    /// Groups: the mail address.
    #[serde(default)]
    pub mail: Option<String>,
}

impl DirectoryObject {
    /// Whether this is a directory role.
    pub fn is_directory_role(&self) -> bool {
        self.odata_type.as_deref() == Some("#microsoft.graph.directoryRole")
    }

    /// Whether this is a group.
    pub fn is_group(&self) -> bool {
        self.odata_type.as_deref() == Some("#microsoft.graph.group")
    }
}

/// The role template IDs among `memberOf` entries.
pub fn directory_role_template_ids(objects: &[DirectoryObject]) -> Vec<&str> {
    objects
        .iter()
        .filter(|o| o.is_directory_role())
        .filter_map(|o| o.role_template_id.as_deref())
        .collect()
}

/// A service plan inside a license.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePlanInfo {
    /// Plan ID.
    #[serde(default)]
    pub service_plan_id: Option<String>,
    /// Plan name, e.g. `SHAREPOINTENTERPRISE`.
    pub service_plan_name: String,
    /// `Success`, `PendingProvisioning`, `Disabled`, …
    #[serde(default)]
    pub provisioning_status: Option<String>,
    /// `User` or `Company`.
    #[serde(default)]
    pub applies_to: Option<String>,
}

/// A license assigned to the user (`/me/licenseDetails`, entra-facts §4.5).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseDetail {
    /// License detail ID.
    #[serde(default)]
    pub id: Option<String>,
    /// SKU ID.
    #[serde(default)]
    pub sku_id: Option<String>,
    /// SKU part number, e.g. `ENTERPRISEPREMIUM`.
    pub sku_part_number: String,
    /// The plans in it.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub service_plans: Vec<ServicePlanInfo>,
}

/// A conditional access policy as evaluated for a sign-in (`appliedConditionalAccessPolicies`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedConditionalAccessPolicy {
    /// The policy's name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// `success`, `failure`, `notApplied`, `notEnabled`, …
    #[serde(default)]
    pub result: Option<String>,
}

/// The `status` of a sign-in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInStatus {
    /// 0 on success, else the AADSTS code.
    #[serde(default)]
    pub error_code: Option<u32>,
    /// Microsoft's explanation.
    #[serde(default)]
    pub failure_reason: Option<String>,
}

/// An entry of the tenant's sign-in logs (`signIn`, entra-facts §12). The fields read are the
/// ones evidence shows; their presence in every real answer is UNVERIFIED, so all are optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignIn {
    /// When (ISO 8601).
    pub created_date_time: String,
    /// The user's sign-in name.
    #[serde(default)]
    pub user_principal_name: Option<String>,
    /// The app's client ID.
    #[serde(default)]
    pub app_id: Option<String>,
    /// The app's name.
    #[serde(default)]
    pub app_display_name: Option<String>,
    /// The address the sign-in came from.
    #[serde(default)]
    pub ip_address: Option<String>,
    /// A person signing in.
    #[serde(default)]
    pub is_interactive: Option<bool>,
    /// Outcome.
    #[serde(default)]
    pub status: Option<SignInStatus>,
    /// `success`, `failure`, `notApplied`.
    #[serde(default)]
    pub conditional_access_status: Option<String>,
    /// The policies evaluated.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub applied_conditional_access_policies: Vec<AppliedConditionalAccessPolicy>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct Page<T> {
    #[serde(default = "Vec::new", deserialize_with = "null_as_empty")]
    value: Vec<T>,
    #[serde(default, rename = "@odata.nextLink")]
    next_link: Option<String>,
}

#[derive(Deserialize)]
struct ApplicationKeys {
    #[serde(default, deserialize_with = "null_as_empty")]
    #[serde(rename = "keyCredentials")]
    key_credentials: Vec<KeyCredential>,
}

impl EntraClient {
    pub(crate) fn graph_url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = join_segments(&self.graph, segments);
        if !query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        url
    }

    fn same_origin(&self, url: &Url) -> bool {
        url.scheme() == self.graph.scheme()
            && url.host_str() == self.graph.host_str()
            && url.port_or_known_default() == self.graph.port_or_known_default()
    }

    pub(crate) async fn graph_get<T: DeserializeOwned>(
        &self,
        token: &SecretString,
        url: Url,
    ) -> Result<T, EntraError> {
        let request = self
            .request(Method::GET, url)
            .bearer_auth(token.expose_secret());
        let answer = self.send(Service::Graph, request).await?;
        serde_json::from_slice(&answer.body).map_err(|e| EntraError::Protocol {
            detail: format!("unexpected Graph answer shape: {e}"),
            client_request_id: Some(answer.client_request_id),
        })
    }

    pub(crate) async fn graph_collection<T: DeserializeOwned>(
        &self,
        token: &SecretString,
        first: Url,
    ) -> Result<Vec<T>, EntraError> {
        self.graph_pages(token, Vec::new(), Some(first), 0).await
    }

    /// A collection whose first page was read elsewhere (an answer inside a `$batch`): its items,
    /// with the rest followed as [`Self::graph_collection`] follows them.
    pub(crate) async fn graph_collection_after<T: DeserializeOwned>(
        &self,
        token: &SecretString,
        first_page: serde_json::Value,
    ) -> Result<Vec<T>, EntraError> {
        let page: Page<T> =
            serde_json::from_value(first_page).map_err(|e| EntraError::Protocol {
                detail: format!("unexpected Graph answer shape: {e}"),
                client_request_id: None,
            })?;
        let next = page.next_link.map(|l| self.next_page_url(&l)).transpose()?;
        self.graph_pages(token, page.value, next, 1).await
    }

    /// Follows `next` and the pages after it, adding their items to `items` (`pages` already read).
    async fn graph_pages<T: DeserializeOwned>(
        &self,
        token: &SecretString,
        mut items: Vec<T>,
        mut next: Option<Url>,
        mut pages: usize,
    ) -> Result<Vec<T>, EntraError> {
        while let Some(url) = next.take() {
            pages += 1;
            if pages > self.config.max_pages {
                return Err(EntraError::Protocol {
                    detail: format!(
                        "Graph collection longer than {} pages; raise max_pages if this is expected",
                        self.config.max_pages
                    ),
                    client_request_id: None,
                });
            }
            let page: Page<T> = self.graph_get(token, url).await?;
            items.extend(page.value);
            next = page.next_link.map(|l| self.next_page_url(&l)).transpose()?;
        }
        Ok(items)
    }

    /// An `@odata.nextLink`, refused when it leaves the Graph origin (the token is not sent there).
    fn next_page_url(&self, link: &str) -> Result<Url, EntraError> {
        let url = Url::parse(link).map_err(|e| EntraError::Protocol {
            detail: format!("@odata.nextLink is not a URL ({e})"),
            client_request_id: None,
        })?;
        if !self.same_origin(&url) {
            return Err(EntraError::Protocol {
                detail: format!(
                    "@odata.nextLink points outside the Graph origin ({}); the token was not sent there",
                    url.origin().ascii_serialization()
                ),
                client_request_id: None,
            });
        }
        Ok(url)
    }

    /// The service principal of `app_id` in the token's tenant; `None` when the app has none
    /// (never consented, or deleted).
    pub async fn service_principal_by_app_id(
        &self,
        token: &SecretString,
        app_id: &str,
    ) -> Result<Option<ServicePrincipal>, EntraError> {
        check_guid(app_id, "application ID")?;
        let filter = format!("appId eq '{app_id}'");
        let url = self.graph_url(&["servicePrincipals"], &[("$filter", &filter)]);
        let all: Vec<ServicePrincipal> = self.graph_collection(token, url).await?;
        Ok(all
            .into_iter()
            .find(|sp| sp.app_id.eq_ignore_ascii_case(app_id)))
    }

    /// Microsoft Graph's own service principal in the tenant, whose `appRoles` name the
    /// `appRoleId`s of assignments.
    pub async fn graph_service_principal(
        &self,
        token: &SecretString,
    ) -> Result<Option<ServicePrincipal>, EntraError> {
        self.service_principal_by_app_id(token, GRAPH_APP_ID).await
    }

    /// App roles (application permissions) granted to the service principal `sp_id`.
    pub async fn app_role_assignments(
        &self,
        token: &SecretString,
        sp_id: &str,
    ) -> Result<Vec<AppRoleAssignment>, EntraError> {
        check_guid(sp_id, "service principal object ID")?;
        let url = self.graph_url(&["servicePrincipals", sp_id, "appRoleAssignments"], &[]);
        self.graph_collection(token, url).await
    }

    /// Delegated-permission grants whose client is the service principal `client_sp_id`.
    pub async fn oauth2_permission_grants(
        &self,
        token: &SecretString,
        client_sp_id: &str,
    ) -> Result<Vec<OAuth2PermissionGrant>, EntraError> {
        check_guid(client_sp_id, "service principal object ID")?;
        let filter = format!("clientId eq '{client_sp_id}'");
        let url = self.graph_url(&["oauth2PermissionGrants"], &[("$filter", &filter)]);
        self.graph_collection(token, url).await
    }

    /// The token's tenant's organization: ID, display name and verified domains (with
    /// `Organization.Read.All`, or delegated `User.Read`).
    pub async fn organization(
        &self,
        token: &SecretString,
    ) -> Result<Vec<Organization>, EntraError> {
        self.graph_collection(token, self.graph_url(&["organization"], &[]))
            .await
    }

    /// The signed-in user (delegated tokens only).
    pub async fn me(&self, token: &SecretString) -> Result<User, EntraError> {
        self.graph_get(token, self.graph_url(&["me"], &[])).await
    }

    /// The signed-in user's direct memberships: groups and active directory roles (see
    /// [`directory_role_template_ids`]).
    pub async fn me_member_of(
        &self,
        token: &SecretString,
    ) -> Result<Vec<DirectoryObject>, EntraError> {
        self.graph_collection(token, self.graph_url(&["me", "memberOf"], &[]))
            .await
    }

    /// The signed-in user's licenses with their service plans.
    pub async fn me_license_details(
        &self,
        token: &SecretString,
    ) -> Result<Vec<LicenseDetail>, EntraError> {
        self.graph_collection(token, self.graph_url(&["me", "licenseDetails"], &[]))
            .await
    }

    /// The groups the signed-in user owns (from `/me/ownedObjects`, groups only).
    pub async fn me_owned_groups(
        &self,
        token: &SecretString,
    ) -> Result<Vec<DirectoryObject>, EntraError> {
        let all: Vec<DirectoryObject> = self
            .graph_collection(token, self.graph_url(&["me", "ownedObjects"], &[]))
            .await?;
        Ok(all.into_iter().filter(DirectoryObject::is_group).collect())
    }

    /// The sign-in log entries of the user `upn` for the app `app_id` since `since` (an RFC 3339
    /// time), interactive and non-interactive, newest first, at most `top` of them (one page).
    /// Asked of the beta API, whose `signInEventTypes` selects the non-interactive sign-ins a
    /// service's refresh makes (entra-facts §12); the v1.0 API lists interactive sign-ins only.
    pub async fn sign_ins(
        &self,
        token: &SecretString,
        app_id: &str,
        upn: &str,
        since: &str,
        top: u32,
    ) -> Result<Vec<SignIn>, EntraError> {
        check_guid(app_id, "application ID")?;
        let upn = upn.replace('\'', "''");
        let filter = format!(
            "appId eq '{app_id}' and userPrincipalName eq '{upn}' and createdDateTime ge {since} \
             and (signInEventTypes/any(t: t eq 'interactiveUser' or t eq 'nonInteractiveUser'))"
        );
        let mut url = self.graph.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            // `https://graph.microsoft.com/v1.0` → `https://graph.microsoft.com/beta`.
            path.pop_if_empty()
                .pop()
                .extend(["beta", "auditLogs", "signIns"]);
        }
        url.query_pairs_mut()
            .append_pair("$filter", &filter)
            .append_pair("$top", &top.to_string());
        let page: Page<SignIn> = self.graph_get(token, url).await?;
        Ok(page.value)
    }

    /// The key credentials of the app registration `app_id` (works only in the app's home
    /// tenant, i.e. for customers' custom apps); `None` when the application is not found.
    pub async fn application_key_credentials(
        &self,
        token: &SecretString,
        app_id: &str,
    ) -> Result<Option<Vec<KeyCredential>>, EntraError> {
        check_guid(app_id, "application ID")?;
        let segment = format!("applications(appId='{app_id}')");
        let url = self.graph_url(&[&segment], &[("$select", "id,appId,keyCredentials")]);
        match self.graph_get::<ApplicationKeys>(token, url).await {
            Ok(app) => Ok(Some(app.key_credentials)),
            Err(EntraError::Graph(e)) if e.kind == GraphErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}
