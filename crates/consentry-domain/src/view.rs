//! Read models: an app profile joined with what the catalog says about it, worded for people.
//! Shared by the JSON API, the console and the CLI so that all three say the same thing.

use consentry_catalog::{Catalog, Marker};
use serde::Serialize;

use crate::evidence::Evidence;
use crate::model::AppProfile;
use crate::status::{ActionOwner, StatusReason};

/// The reason of a non-valid status, in words.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReasonView {
    /// Stable code.
    pub code: &'static str,
    /// One sentence.
    pub summary: String,
    /// Steps to fix it.
    pub remediation: Vec<String>,
    /// Who has to act.
    pub owner: ActionOwner,
    /// The typed reason with its data.
    pub detail: StatusReason,
    /// For a refused sign-in of the consent user: the tenant's sign-in log entries that show it,
    /// or why they could not be read (see [`Evidence`]). Given by a profile's own reads (one
    /// profile, its check), not by lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

impl From<&StatusReason> for ReasonView {
    fn from(r: &StatusReason) -> Self {
        Self {
            code: r.code(),
            summary: r.summary(),
            remediation: r.remediation(),
            owner: r.owner(),
            detail: r.clone(),
            evidence: None,
        }
    }
}

/// An app profile as shown to people and API clients.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfileView {
    /// The stored profile.
    #[serde(flatten)]
    pub profile: AppProfile,
    /// App type display name from the catalog ("unknown app type KEY" if the catalog lost it).
    pub app_type_name: String,
    /// Service display name.
    pub service_name: String,
    /// Hybrid / purebred marker.
    pub marker: Option<Marker>,
    /// Status label.
    pub status_label: &'static str,
    /// The reason, in words (None when valid).
    pub reason_view: Option<ReasonView>,
}

impl ProfileView {
    /// Joins a profile with the catalog.
    pub fn new(profile: AppProfile, catalog: &Catalog) -> Self {
        let at = catalog.app_type(&profile.app_type);
        let app_type_name = at
            .map(|a| a.display_name.clone())
            .unwrap_or_else(|| format!("unknown app type {}", profile.app_type));
        let service_name = catalog
            .service(&profile.service)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| profile.service.clone());
        Self {
            app_type_name,
            service_name,
            marker: at.and_then(|a| a.marker()),
            status_label: profile.status.label(),
            reason_view: profile.reason.as_ref().map(ReasonView::from),
            profile,
        }
    }

    /// With the evidence kept with the reason (see [`Consentry::reason_evidence`]).
    ///
    /// [`Consentry::reason_evidence`]: crate::Consentry::reason_evidence
    pub fn with_evidence(mut self, evidence: Option<Evidence>) -> Self {
        if let Some(r) = &mut self.reason_view {
            r.evidence = evidence;
        }
        self
    }
}
