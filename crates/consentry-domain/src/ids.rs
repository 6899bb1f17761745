//! Parse-don't-validate newtypes for the identifiers Consentry handles.
//!
//! Every constructor is fallible and its error says what was wrong and what a valid value looks like.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A value that failed to parse into one of the identifier newtypes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {expected}")]
pub struct InvalidId {
    /// Which kind of identifier was being parsed ("tenant ID", "UPN", …).
    pub what: &'static str,
    /// The rejected input, truncated to 80 characters so that huge inputs are not echoed whole.
    pub value: String,
    /// What a valid value looks like.
    pub expected: &'static str,
}

impl InvalidId {
    fn new(what: &'static str, value: &str, expected: &'static str) -> Self {
        let mut shown: String = value.chars().take(80).collect();
        if value.chars().count() > 80 {
            shown.push('…');
        }
        let value = shown;
        Self {
            what,
            value,
            expected,
        }
    }
}

const GUID_EXPECTED: &str = "expected a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47";

/// Parses a GUID in its canonical hyphenated form (the form Microsoft shows everywhere).
fn parse_guid(what: &'static str, s: &str) -> Result<Uuid, InvalidId> {
    let t = s.trim();
    if t.len() != 36 {
        return Err(InvalidId::new(what, s, GUID_EXPECTED));
    }
    Uuid::try_parse(t).map_err(|_| InvalidId::new(what, s, GUID_EXPECTED))
}

macro_rules! guid_newtype {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Uuid);

        impl $name {
            /// Parses the canonical hyphenated GUID form.
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                parse_guid($what, s).map(Self)
            }
            /// Wraps an already parsed UUID.
            pub fn from_uuid(u: Uuid) -> Self {
                Self(u)
            }
            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.to_string()
            }
        }
    };
}

guid_newtype!(
    /// A Microsoft Entra tenant ID (directory ID).
    TenantId,
    "tenant ID"
);
guid_newtype!(
    /// An application (client) ID, the same in every tenant.
    AppId,
    "application ID"
);
guid_newtype!(
    /// A directory object ID (user, service principal, group) inside one tenant.
    ObjectId,
    "object ID"
);
guid_newtype!(
    /// Consentry's own identifier of an organization (a customer of the vendor).
    OrgId,
    "organization ID"
);
guid_newtype!(
    /// Consentry's own identifier of an app profile.
    ProfileId,
    "profile ID"
);

impl OrgId {
    /// A fresh random organization ID.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl ProfileId {
    /// A fresh random profile ID.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }
}

guid_newtype!(
    /// Consentry's own identifier of a scan profile.
    ScanProfileId,
    "scan profile ID"
);

impl ScanProfileId {
    /// A fresh random scan profile ID.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }
}

guid_newtype!(
    /// Consentry's own identifier of a service API key.
    ApiKeyId,
    "API key ID"
);

impl ApiKeyId {
    /// A fresh random API key ID.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }
}

guid_newtype!(
    /// Consentry's own identifier of a webhook.
    WebhookId,
    "webhook ID"
);

impl WebhookId {
    /// A fresh random webhook ID.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }
}

guid_newtype!(
    /// Consentry's own identifier of a consent campaign.
    CampaignId,
    "campaign ID"
);

impl CampaignId {
    /// A fresh random campaign ID.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }
}

guid_newtype!(
    /// Consentry's own identifier of an email in the outbox.
    EmailId,
    "email ID"
);

impl EmailId {
    /// A fresh random email ID.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }
}

fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

fn is_domain(s: &str) -> bool {
    s.len() <= 253 && s.contains('.') && s.split('.').all(is_dns_label)
}

/// A verified domain name of a tenant, e.g. `contoso.onmicrosoft.com`. Stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

impl DomainName {
    /// Parses a DNS domain name (letters, digits, hyphens; at least two labels).
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        let t = s.trim().trim_end_matches('.').to_ascii_lowercase();
        if is_domain(&t) {
            Ok(Self(t))
        } else {
            Err(InvalidId::new(
                "domain name",
                s,
                "expected a domain such as contoso.onmicrosoft.com",
            ))
        }
    }
    /// The domain as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user principal name, `name@domain`. Compared case-insensitively (stored lower-case).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct Upn(String);

impl Upn {
    /// Parses `local@domain` where the local part has no spaces and the domain is a DNS name.
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        let t = s.trim();
        let bad = || {
            InvalidId::new(
                "UPN",
                s,
                "expected a user principal name such as adele@contoso.com",
            )
        };
        let (local, domain) = t.rsplit_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || local.len() > 113
            || local
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '@')
            || !is_domain(&domain.to_ascii_lowercase())
        {
            return Err(bad());
        }
        Ok(Self(format!("{}@{}", local, domain).to_lowercase()))
    }
    /// The UPN as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A certificate thumbprint (SHA-1, 40 hex digits), stored upper-case as Entra shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct Thumbprint(String);

impl Thumbprint {
    /// Parses 40 hex digits, ignoring case, colons and spaces.
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        let hex: String = s
            .chars()
            .filter(|c| *c != ':' && !c.is_whitespace())
            .collect();
        if hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(hex.to_ascii_uppercase()))
        } else {
            Err(InvalidId::new(
                "certificate thumbprint",
                s,
                "expected 40 hexadecimal digits (a SHA-1 thumbprint)",
            ))
        }
    }
    /// The thumbprint as upper-case hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a permission (a delegated scope or an application role), e.g. `Tasks.ReadWrite.All`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope(String);

impl Scope {
    /// Parses a permission name: letters, digits and `.`, `_`, `-`, at most 120 characters.
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        let t = s.trim();
        if !t.is_empty()
            && t.len() <= 120
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            Ok(Self(t.to_string()))
        } else {
            Err(InvalidId::new(
                "permission name",
                s,
                "expected a Microsoft Graph permission name such as User.Read",
            ))
        }
    }
    /// The permission name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The key of the Microsoft cloud a tenant lives in (`global`, `usgov`, `usgov-dod`, `china`, or another
/// key of the configured cloud table). Opaque to the domain: which hosts a cloud has is the identity
/// platform adapter's business. Lower-case letters, digits and hyphens, at most 32 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct CloudKey(String);

impl CloudKey {
    /// The key of Microsoft's global cloud (which also serves GCC moderate tenants).
    pub const GLOBAL: &'static str = "global";

    /// Parses a cloud key: 1–32 lower-case ASCII letters, digits and hyphens, starting with a letter.
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        let t = s.trim();
        if !t.is_empty()
            && t.len() <= 32
            && t.starts_with(|c: char| c.is_ascii_lowercase())
            && t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            Ok(Self(t.to_owned()))
        } else {
            Err(InvalidId::new(
                "cloud",
                s,
                "expected a cloud key such as global, usgov, usgov-dod or china",
            ))
        }
    }

    /// Microsoft's global cloud.
    pub fn global() -> Self {
        Self(Self::GLOBAL.to_owned())
    }

    /// Whether this is the global cloud.
    pub fn is_global(&self) -> bool {
        self.0 == Self::GLOBAL
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_newtype_impls {
    ($($name:ident),*) => {$(
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(&self.0) }
        }
        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> { Self::parse(s) }
        }
        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, Self::Error> { Self::parse(&s) }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String { v.0 }
        }
    )*};
}
string_newtype_impls!(DomainName, Upn, Thumbprint, Scope, CloudKey);

/// How a tenant is named in a request: by its GUID or by one of its verified domains.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TenantRef {
    /// The tenant GUID.
    Id(TenantId),
    /// A verified domain of the tenant.
    Domain(DomainName),
}

impl TenantRef {
    /// Parses a tenant GUID or a domain name.
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if let Ok(id) = TenantId::parse(s) {
            return Ok(Self::Id(id));
        }
        DomainName::parse(s).map(Self::Domain).map_err(|_| {
            InvalidId::new(
                "tenant",
                s,
                "expected a tenant ID (GUID) or a verified domain such as contoso.onmicrosoft.com",
            )
        })
    }
}

impl fmt::Display for TenantRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => id.fmt(f),
            Self::Domain(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_accepts_canonical_and_rejects_others() {
        let t = TenantId::parse("72F988BF-86F1-41AF-91AB-2D7CD011DB47").unwrap();
        assert_eq!(t.to_string(), "72f988bf-86f1-41af-91ab-2d7cd011db47");
        for bad in [
            "",
            "72f988bf86f141af91ab2d7cd011db47",
            "not-a-guid",
            "72f988bf-86f1-41af-91ab-2d7cd011db4z",
        ] {
            let e = TenantId::parse(bad).unwrap_err();
            assert_eq!(e.what, "tenant ID");
            assert!(e.to_string().contains("expected a GUID"), "{e}");
        }
    }

    #[test]
    fn upn_is_normalised_and_validated() {
        assert_eq!(
            Upn::parse(" Adele.V@Contoso.com ").unwrap().as_str(),
            "adele.v@contoso.com"
        );
        for bad in [
            "adele",
            "@contoso.com",
            "a b@contoso.com",
            "adele@contoso",
            "adele@-x.com",
        ] {
            assert!(Upn::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn thumbprint_accepts_separators_and_rejects_wrong_length() {
        let t = Thumbprint::parse("84:e0:5c:1d:98:bc:e3:a5:42:1d:22:5b:14:0b:36:e8:6a:3d:55:34")
            .unwrap();
        assert_eq!(t.as_str(), "84E05C1D98BCE3A5421D225B140B36E86A3D5534");
        assert!(Thumbprint::parse("84E05C").is_err());
        assert!(Thumbprint::parse("Z4E05C1D98BCE3A5421D225B140B36E86A3D5534").is_err());
    }

    #[test]
    fn scope_and_domain_and_tenant_ref() {
        assert!(Scope::parse("Tasks.ReadWrite.All").is_ok());
        assert!(Scope::parse("<script>").is_err());
        assert!(Scope::parse("").is_err());
        assert_eq!(
            DomainName::parse("Contoso.OnMicrosoft.com.")
                .unwrap()
                .as_str(),
            "contoso.onmicrosoft.com"
        );
        assert!(matches!(
            TenantRef::parse("contoso.onmicrosoft.com").unwrap(),
            TenantRef::Domain(_)
        ));
        assert!(matches!(
            TenantRef::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap(),
            TenantRef::Id(_)
        ));
        assert!(TenantRef::parse("no such thing").is_err());
    }

    #[test]
    fn long_input_is_truncated_in_errors() {
        let long = "x".repeat(10_000);
        let e = Upn::parse(&long).unwrap_err();
        assert!(e.value.chars().count() <= 81);
    }

    #[test]
    fn serde_round_trip_validates() {
        let t: TenantId = serde_json::from_str("\"72f988bf-86f1-41af-91ab-2d7cd011db47\"").unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"72f988bf-86f1-41af-91ab-2d7cd011db47\""
        );
        assert!(serde_json::from_str::<TenantId>("\"nope\"").is_err());
    }
}

/// An email address a person reads, e.g. `it-admin@contoso.com`: a dot-atom local part (checked by
/// the `email_address` crate, which lettre, the sender, uses too) and a DNS domain of two labels
/// or more (no IP literals, no quoted local parts). The domain is stored lower-case, the local part
/// as given (it may be case-sensitive at the receiving server).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses `local@domain`.
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        let t = s.trim();
        let bad = || {
            InvalidId::new(
                "email address",
                s,
                "expected one address such as it-admin@contoso.com",
            )
        };
        if t.len() > 254 || !email_address::EmailAddress::is_valid(t) {
            return Err(bad());
        }
        let (local, domain) = t.rsplit_once('@').ok_or_else(bad)?;
        let domain = domain.to_ascii_lowercase();
        if local.starts_with('"') || !is_domain(&domain) {
            return Err(bad());
        }
        Ok(Self(format!("{local}@{domain}")))
    }
    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<EmailAddress> for String {
    fn from(v: EmailAddress) -> String {
        v.0
    }
}

#[cfg(test)]
mod email_tests {
    use super::EmailAddress;

    #[test]
    fn an_email_address_keeps_its_local_part_and_lowers_its_domain() {
        let a = EmailAddress::parse(" It-Admin@Contoso.COM ").unwrap();
        assert_eq!(a.as_str(), "It-Admin@contoso.com");
    }

    #[test]
    fn malformed_addresses_are_refused_with_what_was_expected() {
        for bad in [
            "",
            "admin",
            "admin@",
            "@contoso.com",
            "a b@contoso.com",
            "admin@localhost",
            "admin@[127.0.0.1]",
            "\"a b\"@contoso.com",
            "one@contoso.com, two@contoso.com",
            "admin@contoso.com\r\nBcc: x@evil.example",
        ] {
            let e = EmailAddress::parse(bad).unwrap_err();
            assert_eq!(e.what, "email address", "{bad}");
            assert!(e.expected.contains("it-admin@contoso.com"), "{bad}");
        }
    }
}

#[cfg(test)]
mod cloud_key_tests {
    use super::CloudKey;

    #[test]
    fn cloud_keys_are_short_lower_case_names() {
        for good in ["global", "usgov", "usgov-dod", "china", " china "] {
            assert!(CloudKey::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Global",
            "us gov",
            "-dod",
            "1cloud",
            "usgov.dod",
            &"a".repeat(33),
        ] {
            let e = CloudKey::parse(bad).unwrap_err();
            assert_eq!(e.what, "cloud", "{bad}");
        }
        assert!(CloudKey::global().is_global());
        assert!(!CloudKey::parse("china").unwrap().is_global());
    }
}
