//! The vendor's registrations read by themselves ([`IdentityPlatform::vendor_registrations`]): each
//! configured app gets a token by client credentials in its home tenant (`vendor_tenant`) and reads
//! its own application object; and [`EntraClient::probe`], which `consentry doctor` uses to check TLS
//! trust and the clock against the authority's and Graph's answers.
//!
//! [`IdentityPlatform::vendor_registrations`]: consentry_domain::IdentityPlatform::vendor_registrations

use consentry_domain::{
    ConfiguredCredential, CredentialKind, RegisteredCredential, Registration, RegistrationRead,
    VendorRegistration,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;
use uuid::Uuid;

use crate::EntraClient;
use crate::applications::Application;
use crate::error::{EntraError, TransportKind};
use crate::platform::{EntraPlatform, VendorApp, platform_error};
use crate::retry::with_retry;
use crate::token::ClientCredential;

/// Reads every configured registration, one after the other.
pub(crate) async fn read_all(platform: &EntraPlatform) -> Vec<VendorRegistration> {
    let mut out = Vec::new();
    for (cloud, app, client, tenant, vendor) in platform.registrations_to_read() {
        // The credential as its files hold it now: the one the token is asked with is the one compared.
        let credential = vendor.credential();
        let read = match tenant {
            None => RegistrationRead::NoVendorTenant,
            Some(tenant) => read_one(platform, client, tenant, vendor, &credential).await,
        };
        out.push(VendorRegistration {
            app,
            cloud,
            client_id: vendor.client_id,
            home_tenant: tenant.map(str::to_string),
            configured: configured(&credential),
            read,
        });
    }
    out
}

fn configured(credential: &ClientCredential) -> ConfiguredCredential {
    match credential {
        ClientCredential::Secret(s) => {
            ConfiguredCredential::secret(secrecy::ExposeSecret::expose_secret(s))
        }
        ClientCredential::Certificate { certificate, .. } => ConfiguredCredential::Certificate {
            thumbprint: certificate.sha1_thumbprint().hex_upper(),
            not_after: certificate.not_after(),
        },
    }
}

async fn read_one(
    platform: &EntraPlatform,
    client: &EntraClient,
    tenant: &str,
    vendor: &VendorApp,
    credential: &ClientCredential,
) -> RegistrationRead {
    let client_id = vendor.client_id.to_string();
    let scope = format!("{}.default", client.config().graph_resource);
    let token = match with_retry(platform.retry_policy(), || {
        client.client_credentials(tenant, &client_id, credential, &scope)
    })
    .await
    {
        Ok(t) => t,
        Err(e) => return RegistrationRead::TokenRefused(platform_error(&e)),
    };
    match with_retry(platform.retry_policy(), || {
        client.application_by_app_id(&token.access_token, &client_id)
    })
    .await
    {
        Ok(Some(app)) => RegistrationRead::Read(registration(&app, credential)),
        Ok(None) => RegistrationRead::NotFound,
        Err(e) => RegistrationRead::ReadFailed(platform_error(&e)),
    }
}

/// The application object in domain terms. A certificate's identifier is its SHA-1 thumbprint in
/// upper-case hex (the configured certificate's when the key credential is it).
fn registration(app: &Application, credential: &ClientCredential) -> Registration {
    let time = |s: &Option<String>| {
        s.as_deref()
            .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
    };
    let mut credentials: Vec<RegisteredCredential> = app
        .password_credentials
        .iter()
        .map(|p| RegisteredCredential {
            kind: CredentialKind::Secret,
            key_id: p.key_id.clone(),
            hint: p.hint.clone(),
            display_name: p.display_name.clone(),
            ends_at: time(&p.end_date_time),
        })
        .collect();
    for k in &app.key_credentials {
        let hint = match credential {
            ClientCredential::Certificate { certificate, .. } if k.matches(certificate) => {
                Some(certificate.sha1_thumbprint().hex_upper())
            }
            _ => k.custom_key_identifier.as_deref().map(|c| {
                consentry_certs::Thumbprint::parse(c)
                    .map(|t| t.hex_upper())
                    .unwrap_or_else(|_| c.to_string())
            }),
        };
        credentials.push(RegisteredCredential {
            kind: CredentialKind::Certificate,
            key_id: k.key_id.clone(),
            hint,
            display_name: k.display_name.clone(),
            ends_at: time(&k.end_date_time),
        });
    }
    let requested = app
        .required_resource_access
        .iter()
        .filter_map(|r| Uuid::parse_str(&r.resource_app_id).ok().map(|res| (res, r)))
        .flat_map(|(res, r)| {
            r.resource_access.iter().filter_map(move |a| {
                let kind = match a.kind.as_str() {
                    "Role" => consentry_catalog::PermissionType::Role,
                    "Scope" => consentry_catalog::PermissionType::Scope,
                    _ => return None,
                };
                Uuid::parse_str(&a.id).ok().map(|id| (res, id, kind))
            })
        })
        .collect();
    Registration {
        redirect_uris: app.redirect_uris().to_vec(),
        requested,
        credentials,
    }
}

/// What a plain HTTPS request to a Microsoft endpoint showed ([`EntraClient::probe`]).
#[derive(Debug, Clone)]
pub struct Probe {
    /// The HTTP status answered (any: an answer proves the TLS handshake).
    pub status: u16,
    /// The answer's `Date` header, when present and parseable.
    pub date: Option<OffsetDateTime>,
}

/// Why a probe got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// The TLS handshake failed: the server's certificate is not trusted (or not for this name).
    Tls(String),
    /// No connection, or no answer in time.
    Unreachable(String),
}

impl EntraClient {
    /// A GET of the authority's (`graph` false) or Graph's (`graph` true) base URL, answered with any
    /// status: proves the TLS handshake and gives the server's `Date`. Not retried.
    pub async fn probe(&self, graph: bool) -> Result<Probe, ProbeFailure> {
        let url: Url = if graph {
            self.graph
                .join("v1.0/")
                .unwrap_or_else(|_| self.graph.clone())
        } else {
            self.authority
                .join("common/v2.0/.well-known/openid-configuration")
                .unwrap_or_else(|_| self.authority.clone())
        };
        match self.http.get(url).send().await {
            Ok(r) => Ok(Probe {
                status: r.status().as_u16(),
                date: r
                    .headers()
                    .get(reqwest::header::DATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| httpdate::parse_http_date(v).ok())
                    .map(OffsetDateTime::from),
            }),
            Err(e) => {
                let detail = crate::client::error_chain(&e);
                if is_tls_failure(&detail) {
                    Err(ProbeFailure::Tls(detail))
                } else {
                    Err(ProbeFailure::Unreachable(detail))
                }
            }
        }
    }
}

/// Whether a transport failure's text is a TLS (certificate) failure rather than a network one.
pub fn is_tls_failure(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    ["certificate", "unknownissuer", "tls", "handshake"]
        .iter()
        .any(|w| d.contains(w))
}

/// Whether an error is a TLS failure (the connection failed on the certificate).
pub fn is_tls_error(e: &EntraError) -> bool {
    matches!(e, EntraError::Transport { kind: TransportKind::Connect, detail, .. } if is_tls_failure(detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_are_told_from_network_ones() {
        assert!(is_tls_failure(
            "error sending request: client error (Connect): invalid peer certificate: UnknownIssuer"
        ));
        assert!(!is_tls_failure(
            "error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)"
        ));
    }
}
