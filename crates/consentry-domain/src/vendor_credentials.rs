//! The vendor's own app registrations as facts: each credential's expiry (classified ok / attention /
//! expired / unknown) and what a registration lacks (Consentry's redirect URIs, the catalog's
//! permissions). Read through [`IdentityPlatform::vendor_registrations`](crate::IdentityPlatform::vendor_registrations)
//! (each app reads its own registration in its home tenant, `vendor_tenant`); `consentry doctor`, the
//! server's periodic refresh, `/metrics`, the console and the expiry alerts all build on [`facts`].
//!
//! A registration that could not be read (a transient failure, a refused token) gives facts whose
//! expiry is [`Expiry::Unknown`]: never evidence of an expiry.

use std::fmt;

use consentry_catalog::{Catalog, PermissionType};
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::ids::CloudKey;
pub use crate::platform::registrations::{
    ConfiguredCredential, CredentialKind, RegisteredCredential, Registration, RegistrationRead,
    VendorAppKey, VendorRegistration,
};

/// A credential ending within this many days needs attention.
pub const ATTENTION_DAYS: i64 = 30;

/// How close a credential is to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expiry {
    /// More than [`ATTENTION_DAYS`] days left.
    Ok,
    /// Not known (the registration could not be read, or Graph gives no end date).
    Unknown,
    /// [`ATTENTION_DAYS`] days or less left.
    Attention,
    /// Ended.
    Expired,
}

impl Expiry {
    /// `ok`, `unknown`, `attention`, `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Expiry::Ok => "ok",
            Expiry::Unknown => "unknown",
            Expiry::Attention => "attention",
            Expiry::Expired => "expired",
        }
    }

    /// Classifies an end date against `now`.
    pub fn of(ends_at: Option<OffsetDateTime>, now: OffsetDateTime) -> Expiry {
        match ends_at {
            None => Expiry::Unknown,
            Some(end) if end <= now => Expiry::Expired,
            Some(end) if end - now <= Duration::days(ATTENTION_DAYS) => Expiry::Attention,
            Some(_) => Expiry::Ok,
        }
    }
}

/// Where a credential fact comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactSource {
    /// The registration, as Graph lists it.
    Registration,
    /// The certificate file Consentry is configured with (its `notAfter`).
    LocalCertificate,
    /// Nothing could be read: the configured credential, end unknown.
    Configured,
}

/// One credential's expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialFact {
    /// Which registration.
    pub app: VendorAppKey,
    /// Its cloud.
    pub cloud: CloudKey,
    /// Secret or certificate.
    pub kind: CredentialKind,
    /// The credential's ID (`keyId`), when registered.
    pub key_id: Option<String>,
    /// A secret's hint or a certificate's thumbprint (not serialized: a secret's first characters
    /// stay out of reports and logs).
    #[serde(skip_serializing)]
    pub hint: Option<String>,
    /// When it ends.
    #[serde(with = "time::serde::rfc3339::option")]
    pub ends_at: Option<OffsetDateTime>,
    /// Whether it is the credential Consentry uses (None: Graph gives no hint to tell).
    pub in_use: Option<bool>,
    /// Where the fact comes from.
    pub source: FactSource,
    /// Its classification at the time of reading.
    pub expiry: Expiry,
}

impl CredentialFact {
    /// Whether the credential matters to Consentry: the one it uses, or one it cannot tell apart.
    pub fn matters(&self) -> bool {
        self.in_use != Some(false)
    }

    /// A stable identifier of the credential within its app and cloud (its key ID, or its source).
    pub fn id(&self) -> String {
        match (&self.key_id, self.source) {
            (Some(k), _) => k.clone(),
            (None, FactSource::LocalCertificate) => {
                format!("local:{}", self.hint.as_deref().unwrap_or_default())
            }
            (None, _) => format!("configured-{}", self.kind.as_str()),
        }
    }

    /// Whether this fact is evidence of an expiry Consentry must alert about: a credential that
    /// matters, attention or expired (never an unknown one).
    pub fn alerting(&self) -> bool {
        self.matters() && matches!(self.expiry, Expiry::Attention | Expiry::Expired)
    }
}

/// Something a registration lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum RegistrationProblem {
    /// A redirect URI Consentry uses is not registered.
    RedirectUriMissing {
        /// The URI to add (web platform).
        uri: String,
    },
    /// A catalog permission is not in `requiredResourceAccess`.
    PermissionMissing {
        /// The permission's name in the catalog.
        name: String,
        /// Delegated or application.
        kind: PermissionType,
        /// The resource's application ID.
        resource_app_id: Uuid,
        /// The permission's ID.
        id: Uuid,
    },
}

impl fmt::Display for RegistrationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistrationProblem::RedirectUriMissing { uri } => {
                write!(f, "redirect URI {uri} is not registered (web platform)")
            }
            RegistrationProblem::PermissionMissing { name, kind, id, .. } => {
                write!(f, "{kind} permission {name} ({id}) is not requested")
            }
        }
    }
}

/// The facts of one registration.
#[derive(Debug, Clone)]
pub struct VendorAppFacts {
    /// The registration as read.
    pub registration: VendorRegistration,
    /// Each credential's expiry: the registration's, and the local certificate's.
    pub credentials: Vec<CredentialFact>,
    /// What the registration lacks (empty when it could not be read).
    pub problems: Vec<RegistrationProblem>,
    /// Catalog permissions whose IDs the catalog does not know (not called missing).
    pub unchecked_permissions: Vec<String>,
}

/// The redirect URIs a registration must carry: `{public_url}/oauth/callback` for an app type's,
/// the console's two callbacks for Consentry's own app.
pub fn required_redirect_uris(app: &VendorAppKey, public_url: &str) -> Vec<String> {
    let base = public_url.trim_end_matches('/');
    match app {
        VendorAppKey::AppType(_) => vec![format!("{base}/oauth/callback")],
        VendorAppKey::ConsentryApp => vec![
            format!("{base}/console/sign-in/microsoft/callback"),
            format!("{base}{}", crate::connect::CONNECT_CALLBACK_PATH),
        ],
    }
}

/// The facts of a registration read at `now`: credentials classified, problems against the catalog
/// and the redirect URIs Consentry uses.
pub fn facts(
    registration: VendorRegistration,
    catalog: &Catalog,
    public_url: &str,
    now: OffsetDateTime,
) -> VendorAppFacts {
    let mut credentials = Vec::new();
    let mut problems = Vec::new();
    let mut unchecked_permissions = Vec::new();
    let fact = |kind, key_id, hint, ends_at, in_use, source| CredentialFact {
        app: registration.app.clone(),
        cloud: registration.cloud.clone(),
        kind,
        key_id,
        hint,
        ends_at,
        in_use,
        source,
        expiry: Expiry::of(ends_at, now),
    };
    if let ConfiguredCredential::Certificate {
        thumbprint,
        not_after,
    } = &registration.configured
    {
        credentials.push(fact(
            CredentialKind::Certificate,
            None,
            Some(thumbprint.clone()),
            Some(*not_after),
            Some(true),
            FactSource::LocalCertificate,
        ));
    }
    match &registration.read {
        RegistrationRead::Read(reg) => {
            let configured_kind = registration.configured.kind();
            // Graph gives a secret's hint; when it gives none for any secret, which one is in use
            // cannot be told.
            let hints_known = reg
                .credentials
                .iter()
                .filter(|c| c.kind == CredentialKind::Secret)
                .any(|c| c.hint.is_some());
            for c in &reg.credentials {
                let in_use = match (&registration.configured, c.kind) {
                    (ConfiguredCredential::Secret { hint }, CredentialKind::Secret) => {
                        if hints_known {
                            Some(c.hint.as_deref() == Some(hint.as_str()))
                        } else {
                            None
                        }
                    }
                    (
                        ConfiguredCredential::Certificate { thumbprint, .. },
                        CredentialKind::Certificate,
                    ) => Some(
                        c.hint
                            .as_deref()
                            .is_some_and(|h| h.eq_ignore_ascii_case(thumbprint)),
                    ),
                    _ => {
                        debug_assert_ne!(c.kind, configured_kind);
                        Some(false)
                    }
                };
                credentials.push(fact(
                    c.kind,
                    c.key_id.clone(),
                    c.hint.clone(),
                    c.ends_at,
                    in_use,
                    FactSource::Registration,
                ));
            }
            for uri in required_redirect_uris(&registration.app, public_url) {
                if !reg.redirect_uris.contains(&uri) {
                    problems.push(RegistrationProblem::RedirectUriMissing { uri });
                }
            }
            if let VendorAppKey::AppType(key) = &registration.app
                && let Some(app_type) = catalog.app_type(key)
            {
                let required = app_type.required_access();
                for (resource, id, kind) in required.missing_from(&reg.requested) {
                    let name = app_type
                        .permissions
                        .iter()
                        .find(|p| p.id == Some(id) && p.kind == kind)
                        .map(|p| p.name.clone())
                        .unwrap_or_else(|| id.to_string());
                    problems.push(RegistrationProblem::PermissionMissing {
                        name,
                        kind,
                        resource_app_id: resource.resource_app_id,
                        id,
                    });
                }
                unchecked_permissions = required.unplaced.into_iter().map(|u| u.name).collect();
            }
        }
        _ => {
            // Nothing read: the configured secret's end is unknown (a certificate's local end is
            // known and already listed).
            if registration.configured.kind() == CredentialKind::Secret {
                credentials.push(fact(
                    CredentialKind::Secret,
                    None,
                    None,
                    None,
                    Some(true),
                    FactSource::Configured,
                ));
            }
        }
    }
    VendorAppFacts {
        registration,
        credentials,
        problems,
        unchecked_permissions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AppId;
    use crate::platform::{PlatformCause, PlatformError};

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time")
    }

    fn registration(
        read: RegistrationRead,
        configured: ConfiguredCredential,
    ) -> VendorRegistration {
        VendorRegistration {
            app: VendorAppKey::AppType("insights-m365".into()),
            cloud: CloudKey::global(),
            client_id: AppId::parse("6731de76-14a6-49ae-97bc-6eba6914391e").expect("id"),
            home_tenant: Some("vendor.onmicrosoft.com".into()),
            configured,
            read,
        }
    }

    fn secret(key: &str, hint: Option<&str>, days: i64) -> RegisteredCredential {
        RegisteredCredential {
            kind: CredentialKind::Secret,
            key_id: Some(key.into()),
            hint: hint.map(str::to_string),
            display_name: None,
            ends_at: Some(now() + Duration::days(days)),
        }
    }

    fn complete(catalog: &Catalog) -> Vec<(Uuid, Uuid, PermissionType)> {
        let app = catalog.app_type("insights-m365").expect("app type");
        app.required_access()
            .resources
            .iter()
            .flat_map(|r| {
                r.access
                    .iter()
                    .map(move |&(i, k)| (r.resource_app_id, i, k))
            })
            .collect()
    }

    #[test]
    fn expiry_is_classified_from_thirty_days() {
        let n = now();
        assert_eq!(Expiry::of(None, n), Expiry::Unknown);
        assert_eq!(
            Expiry::of(Some(n - Duration::seconds(1)), n),
            Expiry::Expired
        );
        assert_eq!(Expiry::of(Some(n), n), Expiry::Expired);
        assert_eq!(
            Expiry::of(Some(n + Duration::days(10)), n),
            Expiry::Attention
        );
        assert_eq!(
            Expiry::of(Some(n + Duration::days(30)), n),
            Expiry::Attention
        );
        assert_eq!(
            Expiry::of(Some(n + Duration::days(30) + Duration::seconds(1)), n),
            Expiry::Ok
        );
    }

    #[test]
    fn the_secret_in_use_is_the_one_whose_hint_matches() {
        let catalog = Catalog::builtin();
        let reg = Registration {
            redirect_uris: vec!["https://c.example/oauth/callback".into()],
            requested: complete(&catalog),
            credentials: vec![
                secret("old", Some("abc"), 10),
                secret("new", Some("xyz"), 700),
            ],
        };
        let f = facts(
            registration(
                RegistrationRead::Read(reg),
                ConfiguredCredential::secret("xyz-secret"),
            ),
            &catalog,
            "https://c.example/",
            now(),
        );
        assert!(f.problems.is_empty(), "{:?}", f.problems);
        let old = f.credentials.iter().find(|c| c.id() == "old").expect("old");
        assert_eq!((old.in_use, old.expiry), (Some(false), Expiry::Attention));
        assert!(
            !old.alerting(),
            "a secret Consentry does not use raises nothing"
        );
        let new = f.credentials.iter().find(|c| c.id() == "new").expect("new");
        assert_eq!((new.in_use, new.expiry), (Some(true), Expiry::Ok));
        // Without hints, every secret matters.
        let reg = Registration {
            redirect_uris: vec!["https://c.example/oauth/callback".into()],
            requested: complete(&catalog),
            credentials: vec![secret("only", None, 10)],
        };
        let f = facts(
            registration(
                RegistrationRead::Read(reg),
                ConfiguredCredential::secret("xyz-secret"),
            ),
            &catalog,
            "https://c.example",
            now(),
        );
        assert_eq!(f.credentials[0].in_use, None);
        assert!(f.credentials[0].alerting());
    }

    #[test]
    fn missing_redirect_uri_and_permission_are_problems() {
        let catalog = Catalog::builtin();
        let mut requested = complete(&catalog);
        let dropped = requested.pop().expect("a permission");
        let reg = Registration {
            redirect_uris: vec!["https://other.example/oauth/callback".into()],
            requested,
            credentials: vec![],
        };
        let f = facts(
            registration(
                RegistrationRead::Read(reg),
                ConfiguredCredential::secret("xyz"),
            ),
            &catalog,
            "https://c.example",
            now(),
        );
        assert_eq!(f.problems.len(), 2, "{:?}", f.problems);
        assert_eq!(
            f.problems[0],
            RegistrationProblem::RedirectUriMissing {
                uri: "https://c.example/oauth/callback".into()
            }
        );
        assert!(matches!(
            &f.problems[1],
            RegistrationProblem::PermissionMissing { id, kind, .. } if *id == dropped.1 && *kind == dropped.2
        ));
        // Consentry's own app needs the console's two callbacks.
        let uris = required_redirect_uris(&VendorAppKey::ConsentryApp, "https://c.example/");
        assert_eq!(uris.len(), 2);
        assert!(uris[0].ends_with("/console/sign-in/microsoft/callback"));
    }

    #[test]
    fn an_unreadable_registration_is_unknown_never_an_alert() {
        let catalog = Catalog::builtin();
        let transient = PlatformError {
            cause: PlatformCause::Transient,
            aadsts: None,
            error: None,
            message: "timed out".into(),
        };
        let f = facts(
            registration(
                RegistrationRead::ReadFailed(transient),
                ConfiguredCredential::secret("x"),
            ),
            &catalog,
            "https://c.example",
            now(),
        );
        assert_eq!(f.credentials.len(), 1);
        assert_eq!(f.credentials[0].expiry, Expiry::Unknown);
        assert!(!f.credentials[0].alerting());
        assert!(f.problems.is_empty());
        // A certificate's local end is still known.
        let cert = ConfiguredCredential::Certificate {
            thumbprint: "AB12".into(),
            not_after: now() + Duration::days(5),
        };
        let f = facts(
            registration(RegistrationRead::NoVendorTenant, cert),
            &catalog,
            "https://c.example",
            now(),
        );
        assert_eq!(f.credentials.len(), 1);
        assert_eq!(f.credentials[0].source, FactSource::LocalCertificate);
        assert!(f.credentials[0].alerting());
    }
}
