//! Consent links: a re-authorization handed to the tenant's administrator, who needs no Consentry
//! account. The link shows what the consent is for and, when opened, starts the first step at
//! Microsoft bound to the opening browser.

use consentry_catalog::{AppType, ConsentMethod, PermissionType};
use serde::Serialize;
use time::OffsetDateTime;

use super::choice::legs;
use super::secrets::{PendingSecrets, random_token, state_hash};
use super::{PENDING_LIFETIME, Reauthorizer};
use crate::error::DomainError;
use crate::ids::ProfileId;
use crate::model::{AppProfile, AuthLeg, PendingAuthorization};
use crate::status::StatusReason;

/// What a consent link shows before it continues to Microsoft.
#[derive(Debug, Clone, Serialize)]
pub struct HandoffView {
    /// App type display name.
    pub app_type_name: String,
    /// The app's name in Microsoft Entra ID (None for custom apps).
    pub entra_app_name: Option<String>,
    /// The app type is a custom app (the customer's own app registration), not one of the vendor's.
    pub custom_app: bool,
    /// The service using it.
    pub service_name: String,
    /// The tenant's primary domain.
    pub tenant_domain: String,
    /// The consent method.
    pub method: ConsentMethod,
    /// The permissions the app asks for: (name, "delegated" | "application").
    pub permissions: Vec<(String, &'static str)>,
    /// What the consenting account needs, in words.
    pub required_roles: String,
    /// Why it is needed: the profile's reason before the re-authorization.
    pub why: Option<String>,
    /// The functions chosen.
    pub functions: Vec<String>,
    /// What the profile will scan (names).
    pub scan_targets: Vec<String>,
    /// The catalog's notes on the app type (guidance for the consenting account).
    pub notes: Option<String>,
    /// Who created the link, in words ([`crate::Actor::describe`]: the console account, the API
    /// caller, the service or the operator).
    pub created_by: String,
    /// The name of the organization (the vendor's customer) the link was created for.
    pub organization: String,
    /// Until when it works.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl Reauthorizer {
    /// The pending consent link of a profile, if `token` is its secret and it is still valid.
    async fn live_link(
        &self,
        profile_id: ProfileId,
        token: &str,
    ) -> Result<(AppProfile, AppType, PendingAuthorization), DomainError> {
        let gone = || {
            DomainError::invalid(
                "link",
                "this consent link is not valid: it was already used, replaced by a newer one, cancelled or mistyped; ask for a new link",
            )
        };
        if token.is_empty() || token.len() > 128 {
            return Err(gone());
        }
        let profile = self.core.profile(profile_id).await.map_err(|_| gone())?;
        let pending = self
            .core
            .store()
            .pending_for_profile(profile_id)
            .await?
            .filter(|p| p.leg == AuthLeg::Handoff && p.state_hash == state_hash(token))
            .ok_or_else(gone)?;
        if self.core.clock().now() > pending.expires_at {
            return Err(DomainError::invalid(
                "link",
                "this consent link has expired; ask for a new link",
            ));
        }
        let app = self.app_type(&profile)?;
        Ok((profile, app, pending))
    }

    /// What a consent link shows: the app, its permissions, why, and what the consenting account needs.
    pub async fn handoff_view(
        &self,
        profile_id: ProfileId,
        token: &str,
    ) -> Result<HandoffView, DomainError> {
        let (profile, app, pending) = self.live_link(profile_id, token).await?;
        let tenant = self
            .core
            .tenant(&crate::ids::TenantRef::Id(profile.tenant_id))
            .await?;
        let organization = self.core.organization(tenant.org_id).await?.name;
        let catalog = self.core.catalog();
        let required_roles = app
            .requirement_for(
                pending.method,
                Some(&profile.service),
                &pending.functions,
                &pending.scan_targets,
            )
            .map(|r| catalog.describe(&r))
            .unwrap_or_else(|| "no particular role".into());
        Ok(HandoffView {
            app_type_name: app.display_name.clone(),
            entra_app_name: app.entra_app_name.clone(),
            custom_app: app.custom_app,
            service_name: catalog
                .service(&profile.service)
                .map(|s| s.name.clone())
                .unwrap_or_else(|| profile.service.clone()),
            tenant_domain: tenant.primary_domain.to_string(),
            method: pending.method,
            permissions: permission_rows(&app),
            required_roles,
            why: pending.previous_reason.as_ref().map(StatusReason::summary),
            functions: function_names(&app, &pending.functions),
            scan_targets: scan_target_names(&app, &pending.scan_targets),
            notes: app.notes.clone(),
            created_by: pending.started_by.describe(),
            organization,
            expires_at: pending.expires_at,
        })
    }

    /// Opens a consent link (once): starts its first step at Microsoft and returns the URL to go to.
    /// `browser_binding`: the random value of the opening browser's binding cookie (the callback
    /// is then accepted only from that browser).
    pub async fn continue_handoff(
        &self,
        profile_id: ProfileId,
        token: &str,
        browser_binding: Option<&str>,
    ) -> Result<String, DomainError> {
        let (profile, app, _) = self.live_link(profile_id, token).await?;
        // Atomic single use: of two concurrent openings only one takes the record.
        let Some(mut pending) = self
            .core
            .store()
            .take_pending(&state_hash(token), self.hold_until())
            .await?
        else {
            return Err(DomainError::invalid(
                "link",
                "this consent link was already used; ask for a new link",
            ));
        };
        let mut secrets = PendingSecrets::of(&pending).map_err(|_| {
            DomainError::Conflict("the consent link is damaged; ask for a new link".into())
        })?;
        secrets.browser_binding = browser_binding.map(state_hash);
        pending.secrets = secrets.to_blob().map_err(DomainError::internal)?.into();
        let (first_leg, sign_in_follows) = legs(&app, pending.method);
        let client_id = match pending.custom_app_id {
            Some(id) => id,
            None => self.vendor_client_id(&profile.cloud, &app)?,
        };
        let state = random_token(32);
        pending.state_hash = state_hash(&state);
        pending.leg = first_leg;
        pending.sign_in_follows = sign_in_follows;
        pending.expires_at = self.core.clock().now() + PENDING_LIFETIME;
        self.core.store().put_pending(&pending).await?;
        Ok(self.microsoft_url(
            &profile,
            &app,
            first_leg,
            client_id,
            state,
            pending.nonce.clone(),
            &secrets.code_verifier,
            None,
        ))
    }
}

/// The permissions an app asks for: (name, "delegated" | "application").
fn permission_rows(app: &AppType) -> Vec<(String, &'static str)> {
    let kind = |k: PermissionType| match k {
        PermissionType::Scope => "delegated",
        PermissionType::Role => "application",
    };
    app.permissions
        .iter()
        .map(|p| (p.name.clone(), kind(p.kind)))
        .collect()
}

/// The names of the chosen functions (a key the catalog no longer knows, as it is).
fn function_names(app: &AppType, keys: &[String]) -> Vec<String> {
    keys.iter()
        .map(|f| {
            app.function(f)
                .map_or_else(|| f.clone(), |x| x.name.clone())
        })
        .collect()
}

/// The names of the chosen scan targets (a key the catalog no longer knows, as it is).
fn scan_target_names(app: &AppType, keys: &[String]) -> Vec<String> {
    keys.iter()
        .map(|t| {
            app.scan_target(t)
                .map_or_else(|| t.clone(), |x| x.name.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reauth::testing::app;

    #[test]
    fn permissions_are_listed_with_their_kind_in_words() {
        let rows = permission_rows(&app("insights-m365"));
        assert!(rows.contains(&("User.Read".to_string(), "delegated")));
        assert!(rows.contains(&("Reports.Read.All".to_string(), "application")));
    }

    #[test]
    fn chosen_keys_are_shown_by_name_and_unknown_ones_as_they_are() {
        let a = app("cloud-backup-delegated");
        let names = function_names(&a, &["protect-power-bi".into(), "gone".into()]);
        assert_eq!(names, vec!["Protect Power BI", "gone"]);
        let p = app("insights-power-platform");
        let targets = scan_target_names(&p, &["environments".into(), "gone".into()]);
        assert_ne!(targets[0], "environments", "a name, not the key");
        assert_eq!(targets[1], "gone");
    }
}
