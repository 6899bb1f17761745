//! The evidence behind a diagnosis: the tenant's sign-in log entries that show why the consent
//! user's sign-in failed — when, from which IP address, which conditional access policy refused it
//! and with what result — or why they could not be read.
//!
//! Microsoft keeps sign-in logs per tenant and lets an app read them through Graph
//! (`auditLogs/signIns`) when it holds `AuditLog.Read.All` in the tenant and the tenant has a
//! Microsoft Entra ID P1 or P2 license (entra-facts §12). A check that finds a delegated or
//! conditional access failure asks for the entries of the consent user and the profile's app;
//! without the permission or the license the diagnosis stands as it is and says why there is no
//! evidence. Microsoft's entries can take a few minutes to appear, so a check that finds none asks
//! again the next time.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How many entries are kept with a diagnosis (the most recent failures).
pub const MAX_EVIDENCE_ENTRIES: usize = 5;

/// The sign-in log entries a check looks for: the consent user's, for the profile's app, since
/// `since`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInLogQuery {
    /// The consent user's sign-in name.
    pub upn: String,
    /// The oldest entry of interest.
    pub since: OffsetDateTime,
}

/// One conditional access policy as Microsoft evaluated it for a sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppliedPolicy {
    /// The policy's display name.
    pub display_name: String,
    /// `success`, `failure`, `notApplied`, `notEnabled`, … as Microsoft reports it.
    pub result: String,
}

/// One entry of the tenant's sign-in logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignInLogEntry {
    /// When the sign-in happened.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: OffsetDateTime,
    /// The user's sign-in name.
    pub user_principal_name: Option<String>,
    /// The app signed in to, as Entra ID names it.
    pub app_display_name: Option<String>,
    /// The address the sign-in came from, as Microsoft saw it.
    pub ip_address: Option<String>,
    /// A person signing in (`true`) or a client redeeming a token without one (`false`).
    pub interactive: bool,
    /// The AADSTS code of a failed sign-in; 0 for a successful one.
    pub error_code: Option<u32>,
    /// Microsoft's explanation of the failure.
    pub failure_reason: Option<String>,
    /// `success`, `failure` or `notApplied`.
    pub conditional_access_status: Option<String>,
    /// The conditional access policies evaluated, with their results.
    pub policies: Vec<AppliedPolicy>,
}

impl SignInLogEntry {
    /// Whether the sign-in failed.
    pub fn failed(&self) -> bool {
        self.error_code.is_some_and(|c| c != 0)
    }

    /// The policies that refused the sign-in.
    pub fn failed_policies(&self) -> impl Iterator<Item = &AppliedPolicy> {
        self.policies.iter().filter(|p| p.result == "failure")
    }
}

/// Why no sign-in log entries could be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum EvidenceUnavailable {
    /// The profile's app does not hold `AuditLog.Read.All` in the tenant.
    PermissionMissing,
    /// The tenant has no Microsoft Entra ID P1 or P2 license (Graph answered
    /// `Authentication_RequestFromNonPremiumTenantOrB2CTenant`).
    LicenseMissing,
    /// Reading failed for another reason (Microsoft did not answer, or answered something else).
    ReadFailed {
        /// What happened, without secrets.
        message: String,
    },
}

impl EvidenceUnavailable {
    /// A sentence for the administrator: why there is no evidence and what would give it.
    pub fn explain(&self) -> String {
        match self {
            Self::PermissionMissing => "The app has not been granted AuditLog.Read.All in this tenant, so Consentry cannot read the tenant's sign-in logs. Grant that application permission to see the failed sign-ins here.".into(),
            Self::LicenseMissing => "The tenant has no Microsoft Entra ID P1 or P2 license, which Microsoft requires for reading sign-in logs through Microsoft Graph.".into(),
            Self::ReadFailed { message } => format!("The tenant's sign-in logs could not be read ({message}); the next check tries again."),
        }
    }
}

/// The evidence attached to a diagnosis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Evidence {
    /// The sign-in log was read: the matching failed sign-ins, newest first (possibly none yet:
    /// Microsoft's entries take minutes to appear).
    SignIns {
        /// When the log was read.
        #[serde(with = "time::serde::rfc3339")]
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        read_at: OffsetDateTime,
        /// The entries, newest first, at most [`MAX_EVIDENCE_ENTRIES`].
        entries: Vec<SignInLogEntry>,
    },
    /// The sign-in log could not be read.
    Unavailable {
        /// When reading was tried.
        #[serde(with = "time::serde::rfc3339")]
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        read_at: OffsetDateTime,
        /// Why.
        why: EvidenceUnavailable,
    },
}

impl Evidence {
    /// Keeps the failed sign-ins among `entries` (newest first), at most [`MAX_EVIDENCE_ENTRIES`].
    pub fn from_entries(read_at: OffsetDateTime, mut entries: Vec<SignInLogEntry>) -> Self {
        entries.retain(SignInLogEntry::failed);
        entries.sort_by_key(|e| std::cmp::Reverse(e.at));
        entries.truncate(MAX_EVIDENCE_ENTRIES);
        Self::SignIns { read_at, entries }
    }

    /// Whether it holds at least one entry (no need to read the log again for the same reason).
    pub fn is_conclusive(&self) -> bool {
        matches!(self, Self::SignIns { entries, .. } if !entries.is_empty())
    }

    /// One sentence summing it up, for history lines and lists.
    pub fn summary(&self) -> String {
        match self {
            Self::SignIns { entries, .. } => match entries.first() {
                None => "no failed sign-in of the consent user in the tenant's sign-in logs yet (Microsoft's entries take a few minutes to appear)".into(),
                Some(e) => {
                    let mut s = format!(
                        "sign-in refused{} from {}",
                        e.error_code.map(|c| format!(" (AADSTS{c})")).unwrap_or_default(),
                        e.ip_address.as_deref().unwrap_or("an unknown address")
                    );
                    let names: Vec<&str> =
                        e.failed_policies().map(|p| p.display_name.as_str()).collect();
                    if !names.is_empty() {
                        s.push_str(&format!(" by conditional access policy {}", names.join(", ")));
                    }
                    s
                }
            },
            Self::Unavailable { why, .. } => format!("evidence unavailable: {}", why.explain()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(minutes: i64, code: u32, policy: Option<(&str, &str)>) -> SignInLogEntry {
        SignInLogEntry {
            at: OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(minutes),
            user_principal_name: Some("a@contoso.com".into()),
            app_display_name: Some("App".into()),
            ip_address: Some("203.0.113.7".into()),
            interactive: false,
            error_code: Some(code),
            failure_reason: None,
            conditional_access_status: Some("failure".into()),
            policies: policy
                .map(|(n, r)| {
                    vec![AppliedPolicy {
                        display_name: n.into(),
                        result: r.into(),
                    }]
                })
                .unwrap_or_default(),
        }
    }

    #[test]
    fn keeps_the_newest_failures_only() {
        let mut entries: Vec<_> = (0..8).map(|m| entry(m, 53003, None)).collect();
        entries.push(entry(100, 0, None));
        let e = Evidence::from_entries(OffsetDateTime::UNIX_EPOCH, entries);
        let Evidence::SignIns { entries, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(entries.len(), MAX_EVIDENCE_ENTRIES);
        assert!(entries.iter().all(SignInLogEntry::failed));
        assert_eq!(
            entries[0].at,
            OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(7)
        );
        assert!(e.is_conclusive());
    }

    #[test]
    fn the_summary_names_the_refusing_policy_and_the_address() {
        let e = Evidence::from_entries(
            OffsetDateTime::UNIX_EPOCH,
            vec![entry(1, 53003, Some(("Head office only", "failure")))],
        );
        assert_eq!(
            e.summary(),
            "sign-in refused (AADSTS53003) from 203.0.113.7 by conditional access policy Head office only"
        );
        let none = Evidence::from_entries(OffsetDateTime::UNIX_EPOCH, vec![entry(1, 0, None)]);
        assert!(!none.is_conclusive());
        assert!(none.summary().starts_with("no failed sign-in"));
        let unavailable = Evidence::Unavailable {
            read_at: OffsetDateTime::UNIX_EPOCH,
            why: EvidenceUnavailable::LicenseMissing,
        };
        assert!(unavailable.summary().contains("P1 or P2"));
    }
}
