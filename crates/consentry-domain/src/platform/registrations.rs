//! What reading the vendor's own registrations gives ([`IdentityPlatform::vendor_registrations`](super::IdentityPlatform::vendor_registrations)):
//! which registration, the credential Consentry is configured with, and the application object as
//! read, or why it could not be read. The facts built on them are in `vendor_credentials`.

use std::fmt;

use consentry_catalog::PermissionType;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::PlatformError;
use crate::ids::{AppId, CloudKey};

/// Which of the vendor's registrations: an app type's, or Consentry's own app (`[consentry_app]`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", content = "app_type", rename_all = "snake_case")]
pub enum VendorAppKey {
    /// The registration of a catalog app type (`[apps.<app type>]`).
    AppType(String),
    /// Consentry's own app (`[consentry_app]`).
    ConsentryApp,
}

impl VendorAppKey {
    /// The label used in metrics, events and the console: the app type's key, or `consentry-app`.
    pub fn label(&self) -> &str {
        match self {
            VendorAppKey::AppType(k) => k,
            VendorAppKey::ConsentryApp => "consentry-app",
        }
    }

    /// The configuration section of this registration in `cloud`.
    pub fn config_section(&self, cloud: &CloudKey) -> String {
        match (self, cloud.is_global()) {
            (VendorAppKey::AppType(k), true) => format!("[apps.{k}]"),
            (VendorAppKey::AppType(k), false) => format!("[clouds.{cloud}.apps.{k}]"),
            (VendorAppKey::ConsentryApp, _) => "[consentry_app]".into(),
        }
    }

    /// The command that replaces the credential without downtime.
    pub fn rotate_command(&self) -> String {
        format!("consentry apps rotate-credential {}", self.label())
    }
}

impl fmt::Display for VendorAppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A client secret or a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// A client secret (`passwordCredentials`).
    Secret,
    /// A certificate (`keyCredentials`).
    Certificate,
}

impl CredentialKind {
    /// `secret` or `certificate`.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Secret => "secret",
            CredentialKind::Certificate => "certificate",
        }
    }
}

/// The credential Consentry is configured with, as far as it identifies a registered one.
#[derive(Clone, PartialEq, Eq)]
pub enum ConfiguredCredential {
    /// A client secret: its first three characters, what Graph shows as the credential's `hint`.
    Secret {
        /// The first three characters of the configured secret.
        hint: String,
    },
    /// A certificate: its SHA-1 thumbprint (upper-case hex) and when it ends.
    Certificate {
        /// SHA-1 thumbprint, upper-case hex.
        thumbprint: String,
        /// The certificate's `notAfter`.
        not_after: OffsetDateTime,
    },
}

impl fmt::Debug for ConfiguredCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfiguredCredential::Secret { .. } => f.write_str("Secret { hint: [redacted] }"),
            ConfiguredCredential::Certificate {
                thumbprint,
                not_after,
            } => f
                .debug_struct("Certificate")
                .field("thumbprint", thumbprint)
                .field("not_after", not_after)
                .finish(),
        }
    }
}

impl ConfiguredCredential {
    /// The configured secret's identification: its first three characters.
    pub fn secret(value: &str) -> Self {
        ConfiguredCredential::Secret {
            hint: value.chars().take(3).collect(),
        }
    }

    /// Secret or certificate.
    pub fn kind(&self) -> CredentialKind {
        match self {
            ConfiguredCredential::Secret { .. } => CredentialKind::Secret,
            ConfiguredCredential::Certificate { .. } => CredentialKind::Certificate,
        }
    }
}

/// A credential registered on an application, as Graph lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredCredential {
    /// Secret or certificate.
    pub kind: CredentialKind,
    /// The credential's ID (`keyId`).
    pub key_id: Option<String>,
    /// A secret's `hint` (its first three characters), or a certificate's SHA-1 thumbprint
    /// (upper-case hex).
    pub hint: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// End of validity.
    pub ends_at: Option<OffsetDateTime>,
}

/// An application object as the domain needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Registration {
    /// The web platform's redirect URIs.
    pub redirect_uris: Vec<String>,
    /// `requiredResourceAccess`, flattened: (resource app ID, permission ID, kind).
    pub requested: Vec<(Uuid, Uuid, PermissionType)>,
    /// Secrets and certificates.
    pub credentials: Vec<RegisteredCredential>,
}

/// What reading one registration gave.
#[derive(Debug, Clone)]
pub enum RegistrationRead {
    /// The registration.
    Read(Registration),
    /// The token worked but Graph does not find the application in the vendor's tenant (the
    /// client ID is another tenant's, or `vendor_tenant` is not the registration's home).
    NotFound,
    /// `vendor_tenant` is not configured for this cloud: the home tenant is unknown.
    NoVendorTenant,
    /// No token by client credentials in the home tenant (wrong or expired secret, …).
    TokenRefused(PlatformError),
    /// The token worked; reading the registration failed.
    ReadFailed(PlatformError),
}

/// One configured vendor registration and what reading it gave.
#[derive(Debug, Clone)]
pub struct VendorRegistration {
    /// Which registration.
    pub app: VendorAppKey,
    /// Its cloud.
    pub cloud: CloudKey,
    /// Its application (client) ID.
    pub client_id: AppId,
    /// The home tenant asked (`vendor_tenant`), when configured.
    pub home_tenant: Option<String>,
    /// The credential Consentry uses.
    pub configured: ConfiguredCredential,
    /// The result.
    pub read: RegistrationRead,
}
