//! Microsoft's clouds as data ([`Clouds`], from the embedded `clouds.toml`): each cloud's authority
//! and Graph hosts and the OpenID metadata values that identify it, and the pure mapping from a
//! tenant's metadata to its cloud ([`Clouds::identify`]). No cloud has a code branch of its own.

use std::sync::OnceLock;

use consentry_domain::{CloudKey, TenantId};
use serde::Deserialize;

/// The embedded cloud table.
const BUILTIN: &str = include_str!("clouds.toml");

/// One Microsoft cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    /// The stable key stored with tenants (`global`, `usgov`, `usgov-dod`, `china`).
    pub key: CloudKey,
    /// The name shown to people.
    pub name: String,
    /// The authority host, e.g. `login.microsoftonline.us`.
    pub authority_host: String,
    /// The Microsoft Graph host, e.g. `graph.microsoft.us`.
    pub graph_host: String,
    /// The metadata's `cloud_instance_name` values of this cloud.
    pub cloud_instance_names: Vec<String>,
    /// The metadata's `tenant_region_sub_scope` values that place a tenant in this cloud.
    pub region_sub_scopes: Vec<String>,
}

impl Cloud {
    /// The authority URL Consentry uses by default: `https://<authority host>`.
    pub fn default_authority(&self) -> String {
        format!("https://{}", self.authority_host)
    }

    /// The Graph URL Consentry uses by default: `https://<graph host>/v1.0`.
    pub fn default_graph(&self) -> String {
        format!("https://{}/v1.0", self.graph_host)
    }

    /// Microsoft Graph's resource identifier in this cloud, with its trailing slash: scopes that
    /// name Graph use it (`https://graph.microsoft.us/.default`; Microsoft's national-cloud page:
    /// "any permission scope value that contains the Microsoft Graph domain must use the domain of
    /// the national cloud's service root").
    pub fn graph_resource(&self) -> String {
        format!("https://{}/", self.graph_host)
    }
}

/// The cloud table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clouds {
    clouds: Vec<Cloud>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    cloud: Vec<Row>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    key: String,
    name: String,
    authority_host: String,
    graph_host: String,
    cloud_instance_names: Vec<String>,
    #[serde(default)]
    region_sub_scopes: Vec<String>,
}

/// A tenant's metadata names a cloud the table does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownCloud {
    /// The metadata has no `cloud_instance_name`.
    #[error(
        "the tenant's OpenID metadata names no cloud (`cloud_instance_name` is missing): Consentry cannot tell which cloud it lives in"
    )]
    NoInstance,
    /// No cloud of the table has the metadata's values.
    #[error(
        "the tenant's OpenID metadata names the cloud instance {instance:?}{}{}, which Consentry's cloud table does not know",
        graph_host.as_deref().map(|h| format!(", Graph host {h:?}")).unwrap_or_default(),
        sub_scope.as_deref().map(|s| format!(", region sub-scope {s:?}")).unwrap_or_default()
    )]
    NotInTable {
        /// `cloud_instance_name`.
        instance: String,
        /// `msgraph_host`, if any.
        graph_host: Option<String>,
        /// `tenant_region_sub_scope`, if any.
        sub_scope: Option<String>,
    },
}

impl Clouds {
    /// The built-in table (`clouds.toml`).
    pub fn builtin() -> &'static Clouds {
        static TABLE: OnceLock<Clouds> = OnceLock::new();
        TABLE.get_or_init(|| {
            Clouds::parse(BUILTIN).unwrap_or_else(|e| panic!("the built-in clouds.toml: {e}"))
        })
    }

    /// Parses a table: keys unique and valid, `global` present, hosts bare host names.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut clouds = Vec::new();
        for row in file.cloud {
            let key = CloudKey::parse(&row.key).map_err(|e| e.to_string())?;
            if clouds.iter().any(|c: &Cloud| c.key == key) {
                return Err(format!("the cloud {key} is listed twice"));
            }
            for (what, host) in [
                ("authority_host", &row.authority_host),
                ("graph_host", &row.graph_host),
            ] {
                if host.is_empty()
                    || !host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
                {
                    return Err(format!(
                        "cloud {key}: {what} {host:?} is not a bare host name such as login.microsoftonline.us"
                    ));
                }
            }
            if row.cloud_instance_names.is_empty() {
                return Err(format!("cloud {key}: cloud_instance_names is empty"));
            }
            clouds.push(Cloud {
                key,
                name: row.name,
                authority_host: row.authority_host,
                graph_host: row.graph_host,
                cloud_instance_names: row.cloud_instance_names,
                region_sub_scopes: row.region_sub_scopes,
            });
        }
        if !clouds.iter().any(|c| c.key.is_global()) {
            return Err("the table has no `global` cloud".into());
        }
        Ok(Self { clouds })
    }

    /// Every cloud, in table order (global first in the built-in table).
    pub fn iter(&self) -> impl Iterator<Item = &Cloud> {
        self.clouds.iter()
    }

    /// The cloud with this key.
    pub fn get(&self, key: &str) -> Option<&Cloud> {
        self.clouds.iter().find(|c| c.key.as_str() == key)
    }

    /// Parses a cloud key given by a person (the API's or the CLI's `cloud`): a key of this table,
    /// or an error listing the keys.
    pub fn parse_key(&self, raw: &str) -> Result<CloudKey, String> {
        match CloudKey::parse(raw) {
            Ok(key) if self.get(key.as_str()).is_some() => Ok(key),
            _ => {
                let known: Vec<&str> = self.iter().map(|c| c.key.as_str()).collect();
                Err(format!(
                    "no cloud {raw:?}; the clouds are {}",
                    known.join(", ")
                ))
            }
        }
    }

    /// The global cloud.
    pub fn global(&self) -> &Cloud {
        self.clouds
            .iter()
            .find(|c| c.key.is_global())
            .unwrap_or(&self.clouds[0])
    }

    /// The cloud a tenant's metadata places it in: the clouds whose instance names include
    /// `cloud_instance_name`; among several, the one whose Graph host is the metadata's
    /// `msgraph_host` (preferred where present, entra-facts §11), else the one listing its
    /// `tenant_region_sub_scope`. GCC moderate (`GCC`) is the global cloud.
    pub fn identify(&self, meta: &TenantMetadata) -> Result<&Cloud, UnknownCloud> {
        let instance = meta
            .cloud_instance_name
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(UnknownCloud::NoInstance)?;
        let unknown = || UnknownCloud::NotInTable {
            instance: instance.to_owned(),
            graph_host: meta.msgraph_host.clone(),
            sub_scope: meta.tenant_region_sub_scope.clone(),
        };
        let candidates: Vec<&Cloud> = self
            .clouds
            .iter()
            .filter(|c| {
                c.cloud_instance_names
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(instance))
            })
            .collect();
        if let Some(host) = meta.msgraph_host.as_deref().filter(|h| !h.is_empty()) {
            return candidates
                .into_iter()
                .find(|c| c.graph_host.eq_ignore_ascii_case(host))
                .ok_or_else(unknown);
        }
        if let [only] = candidates.as_slice() {
            return Ok(only);
        }
        let sub = meta.tenant_region_sub_scope.as_deref().unwrap_or_default();
        candidates
            .into_iter()
            .find(|c| {
                c.region_sub_scopes
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(sub))
            })
            .ok_or_else(unknown)
    }
}

/// What Consentry reads of a tenant's OpenID metadata
/// (`{authority}/{tenant}/v2.0/.well-known/openid-configuration`, entra-facts §1.6 and §11).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TenantMetadata {
    /// `issuer`: `{authority}/{tenant ID}/v2.0`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// `cloud_instance_name`, e.g. `microsoftonline.com`.
    #[serde(default)]
    pub cloud_instance_name: Option<String>,
    /// `msgraph_host`, e.g. `graph.microsoft.com`.
    #[serde(default)]
    pub msgraph_host: Option<String>,
    /// `tenant_region_scope`, e.g. `NA`, `USGov`.
    #[serde(default)]
    pub tenant_region_scope: Option<String>,
    /// `tenant_region_sub_scope`: `GCC`, `DODCON`, `DOD` for US government tenants.
    #[serde(default)]
    pub tenant_region_sub_scope: Option<String>,
}

impl TenantMetadata {
    /// Parses the document's JSON (unknown fields are ignored; non-string values of the fields
    /// read are refused).
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("the OpenID metadata is not usable: {e}"))
    }

    /// The tenant ID the issuer names (`…/{tenant ID}/v2.0`), if it is a GUID.
    pub fn tenant_id(&self) -> Option<TenantId> {
        let issuer = self.issuer.as_deref()?;
        let path = issuer.trim_end_matches('/').strip_suffix("/v2.0")?;
        let (_, tid) = path.rsplit_once('/')?;
        TenantId::parse(tid).ok()
    }
}

impl crate::EntraClient {
    /// Reads a tenant's OpenID metadata at this client's authority (`tenant`: a GUID or a domain).
    /// An unknown tenant is Microsoft's AADSTS90002 (entra-facts §1.6), parsed like every error.
    pub async fn tenant_metadata(&self, tenant: &str) -> Result<TenantMetadata, crate::EntraError> {
        let tenant = crate::urls::check_tenant(tenant, &["common", "organizations", "consumers"])?;
        let url = crate::client::join_segments(
            &self.authority,
            &[tenant, "v2.0", ".well-known", "openid-configuration"],
        );
        let answer = self
            .send(
                crate::client::Service::Identity,
                self.request(reqwest::Method::GET, url),
            )
            .await?;
        TenantMetadata::from_json(&answer.body).map_err(|detail| crate::EntraError::Protocol {
            detail,
            client_request_id: Some(answer.client_request_id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(instance: &str, graph: Option<&str>, sub: Option<&str>) -> TenantMetadata {
        TenantMetadata {
            issuer: None,
            cloud_instance_name: Some(instance.into()),
            msgraph_host: graph.map(str::to_owned),
            tenant_region_scope: None,
            tenant_region_sub_scope: sub.map(str::to_owned),
        }
    }

    fn key(meta: &TenantMetadata) -> Result<&'static str, UnknownCloud> {
        Clouds::builtin().identify(meta).map(|c| c.key.as_str())
    }

    #[test]
    fn every_row_of_the_table_is_found_from_its_own_metadata() {
        let table = Clouds::builtin();
        let keys: Vec<&str> = table.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["global", "usgov", "usgov-dod", "china"]);
        for cloud in table.iter() {
            for instance in &cloud.cloud_instance_names {
                let with_graph = meta(instance, Some(&cloud.graph_host), None);
                assert_eq!(
                    table.identify(&with_graph).map(|c| &c.key),
                    Ok(&cloud.key),
                    "{instance} + msgraph_host {}",
                    cloud.graph_host
                );
                for sub in &cloud.region_sub_scopes {
                    let with_sub = meta(instance, None, Some(sub));
                    assert_eq!(
                        table.identify(&with_sub).map(|c| &c.key),
                        Ok(&cloud.key),
                        "{instance} + sub-scope {sub}"
                    );
                }
            }
        }
    }

    #[test]
    fn hosts_are_microsofts_documented_ones() {
        let t = Clouds::builtin();
        let hosts = |k: &str| {
            let c = t.get(k).unwrap();
            (c.default_authority(), c.default_graph(), c.graph_resource())
        };
        assert_eq!(
            hosts("global"),
            (
                "https://login.microsoftonline.com".into(),
                "https://graph.microsoft.com/v1.0".into(),
                "https://graph.microsoft.com/".into()
            )
        );
        assert_eq!(hosts("usgov").1, "https://graph.microsoft.us/v1.0");
        assert_eq!(hosts("usgov-dod").0, "https://login.microsoftonline.us");
        assert_eq!(hosts("usgov-dod").1, "https://dod-graph.microsoft.us/v1.0");
        assert_eq!(hosts("china").0, "https://login.chinacloudapi.cn");
        assert_eq!(hosts("china").2, "https://microsoftgraph.chinacloudapi.cn/");
    }

    #[test]
    fn a_cloud_key_given_by_a_person_must_be_in_the_table() {
        let t = Clouds::builtin();
        assert_eq!(t.parse_key("usgov-dod").unwrap().as_str(), "usgov-dod");
        assert_eq!(
            t.parse_key("germany").unwrap_err(),
            "no cloud \"germany\"; the clouds are global, usgov, usgov-dod, china"
        );
        assert!(t.parse_key("US Gov").is_err());
    }

    #[test]
    fn gcc_moderate_lives_in_the_global_cloud() {
        // A GCC (moderate) tenant's metadata: the global instance, region USGov, sub-scope GCC.
        let mut m = meta("microsoftonline.com", None, Some("GCC"));
        m.tenant_region_scope = Some("USGov".into());
        assert_eq!(key(&m), Ok("global"));
        m.msgraph_host = Some("graph.microsoft.com".into());
        assert_eq!(key(&m), Ok("global"));
        // A commercial tenant has no sub-scope at all.
        assert_eq!(key(&meta("microsoftonline.com", None, None)), Ok("global"));
    }

    #[test]
    fn us_government_tenants_are_told_apart_by_graph_host_first_then_sub_scope() {
        assert_eq!(
            key(&meta("microsoftonline.us", None, Some("DODCON"))),
            Ok("usgov")
        );
        assert_eq!(
            key(&meta("microsoftonline.us", None, Some("DOD"))),
            Ok("usgov-dod")
        );
        // The metadata's msgraph_host wins over the sub-scope.
        assert_eq!(
            key(&meta(
                "microsoftonline.us",
                Some("dod-graph.microsoft.us"),
                Some("DODCON")
            )),
            Ok("usgov-dod")
        );
        // Neither says which: never a guess.
        assert!(matches!(
            key(&meta("microsoftonline.us", None, None)),
            Err(UnknownCloud::NotInTable { .. })
        ));
    }

    #[test]
    fn unknown_metadata_is_a_clear_error() {
        let e = key(&meta("microsoftonline.de", None, None)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the tenant's OpenID metadata names the cloud instance \"microsoftonline.de\", which Consentry's cloud table does not know"
        );
        let e = key(&meta(
            "microsoftonline.com",
            Some("graph.example.org"),
            None,
        ))
        .unwrap_err();
        assert!(
            e.to_string().contains("Graph host \"graph.example.org\""),
            "{e}"
        );
        assert_eq!(
            key(&TenantMetadata::default()),
            Err(UnknownCloud::NoInstance)
        );
        assert_eq!(key(&meta("  ", None, None)), Err(UnknownCloud::NoInstance));
    }

    #[test]
    fn the_metadata_document_is_read_with_its_tenant_id() {
        let doc = br#"{"issuer":"https://login.microsoftonline.us/4f2c8f44-53a3-4a4c-8f5f-7c5b4d1c2e11/v2.0",
            "cloud_instance_name":"microsoftonline.us","msgraph_host":"graph.microsoft.us",
            "tenant_region_scope":"USGov","tenant_region_sub_scope":"DODCON","rbac_url":"x"}"#;
        let m = TenantMetadata::from_json(doc).unwrap();
        assert_eq!(
            m.tenant_id().map(|t| t.to_string()).as_deref(),
            Some("4f2c8f44-53a3-4a4c-8f5f-7c5b4d1c2e11")
        );
        assert_eq!(key(&m), Ok("usgov"));
        // `common`'s issuer holds the `{tenantid}` placeholder: no tenant ID.
        let common = TenantMetadata {
            issuer: Some("https://login.microsoftonline.com/{tenantid}/v2.0".into()),
            ..TenantMetadata::default()
        };
        assert_eq!(common.tenant_id(), None);
        assert!(TenantMetadata::from_json(b"{\"cloud_instance_name\": 5}").is_err());
        assert!(TenantMetadata::from_json(b"not json").is_err());
    }

    #[test]
    fn a_bad_table_is_refused_with_what_is_wrong() {
        let row = |k: &str, host: &str| {
            format!(
                "[[cloud]]\nkey = \"{k}\"\nname = \"n\"\nauthority_host = \"{host}\"\ngraph_host = \"g.example\"\ncloud_instance_names = [\"i\"]\n"
            )
        };
        assert!(Clouds::parse(&row("global", "login.example")).is_ok());
        let twice = format!(
            "{}{}",
            row("global", "a.example"),
            row("global", "b.example")
        );
        assert!(Clouds::parse(&twice).unwrap_err().contains("twice"));
        assert!(
            Clouds::parse(&row("usgov", "a.example"))
                .unwrap_err()
                .contains("no `global`")
        );
        assert!(
            Clouds::parse(&row("global", "https://a.example"))
                .unwrap_err()
                .contains("bare host")
        );
        assert!(Clouds::parse(&row("Global", "a.example")).is_err());
    }
}
