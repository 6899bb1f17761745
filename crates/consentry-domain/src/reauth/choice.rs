//! What the person starting a re-authorization chose, and whether the catalog allows it: the consent
//! method, the functions (gated by the organization's modules), the scan targets and a custom app's
//! identity. Pure: nothing here talks to the store or to Microsoft.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use consentry_catalog::{AppType, ConsentMethod, PermissionKind, PermissionType};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use time::OffsetDateTime;

use super::explain::{explain_platform, required};
use crate::error::DomainError;
use crate::ids::AppId;
use crate::model::AuthLeg;
use crate::platform::{ClientRef, Grants, PlatformCause, PlatformError};

/// A custom Azure app's identity as uploaded by the administrator.
pub struct CustomAppInput {
    /// The application (client) ID, as typed.
    pub application_id: String,
    /// The .pfx file's bytes.
    pub pfx: Vec<u8>,
    /// The .pfx password.
    pub password: SecretString,
}

impl std::fmt::Debug for CustomAppInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomAppInput")
            .field("application_id", &self.application_id)
            .field("pfx_len", &self.pfx.len())
            .finish_non_exhaustive()
    }
}

/// What the person starting a re-authorization chose.
#[derive(Debug)]
pub struct StartRequest {
    /// Administrator or user consent.
    pub method: ConsentMethod,
    /// For custom app types: the app ID and certificate.
    pub custom_app: Option<CustomAppInput>,
    /// For app types with functions: the chosen function keys.
    pub functions: Vec<String>,
    /// For app types with scan targets: what the profile will scan (at least one).
    pub scan_targets: Vec<String>,
    /// Pre-fills the sign-in page.
    pub login_hint: Option<String>,
    /// Return a consent link for the tenant's administrator (who needs no Consentry account)
    /// instead of the Microsoft URL.
    pub handoff: bool,
}

/// A validated choice: the app the consent is for and what the profile will scan.
pub(super) struct Choice {
    /// The vendor's app or the custom app (with its certificate).
    pub(super) client: ClientRef,
    /// The custom app's ID.
    pub(super) custom_app_id: Option<AppId>,
    /// The custom app's .pfx (base64) and password, to seal with the pending record.
    pub(super) pfx: Option<(String, String)>,
    /// The chosen scan targets, in catalog order.
    pub(super) scan_targets: Vec<String>,
}

/// Refuses a consent method the catalog does not allow for the app type.
pub(super) fn check_method(app: &AppType, method: ConsentMethod) -> Result<(), DomainError> {
    if app.allows(method) {
        return Ok(());
    }
    Err(DomainError::invalid(
        "method",
        format!(
            "{} supports administrator consent only; user consent is available only for the app types the documentation lists",
            app.display_name
        ),
    ))
}

/// Checks the functions (against the organization's `modules`), the scan targets and the custom
/// app's identity (its certificate must open with the password and be valid at `now`).
pub(super) fn validate(
    app: &AppType,
    req: &StartRequest,
    modules: &[String],
    now: OffsetDateTime,
) -> Result<Choice, DomainError> {
    // Functions (Cloud Backup delegated app and the like).
    if app.functions.is_empty() {
        if !req.functions.is_empty() {
            return Err(DomainError::invalid(
                "functions",
                format!("{} has no selectable functions", app.display_name),
            ));
        }
    } else {
        app.check_functions(&req.functions, modules)
            .map_err(|e| DomainError::invalid("functions", e.to_string()))?;
    }
    // What the profile will scan (Power Platform app types): the consent's own choice, not gated by
    // modules; the consenting user's requirements follow from it.
    let scan_targets = app
        .check_scan_targets(&req.scan_targets)
        .map_err(|e| DomainError::invalid("scan_targets", e.to_string()))?;
    let (client, custom_app_id, pfx) = client_of(app, req.custom_app.as_ref(), now)?;
    Ok(Choice {
        client,
        custom_app_id,
        pfx,
        scan_targets,
    })
}

type ClientChoice = (ClientRef, Option<AppId>, Option<(String, String)>);

/// The app the consent is for: the custom app uploaded (required for custom app types, refused
/// for the others) or the vendor's.
fn client_of(
    app: &AppType,
    input: Option<&CustomAppInput>,
    now: OffsetDateTime,
) -> Result<ClientChoice, DomainError> {
    if !app.custom_app {
        if input.is_some() {
            return Err(DomainError::invalid(
                "application_id",
                format!(
                    "{} uses the service's own app: no application ID or certificate is needed",
                    app.display_name
                ),
            ));
        }
        let vendor = ClientRef::Vendor {
            app_type: app.key.clone(),
        };
        return Ok((vendor, None, None));
    }
    let input = input.ok_or_else(|| {
        DomainError::invalid(
            "application_id",
            format!(
                "{} needs the application ID of your custom app, its certificate file (.pfx) and the certificate password",
                app.display_name
            ),
        )
    })?;
    let app_id = AppId::parse(&input.application_id)
        .map_err(|e| DomainError::bad_id("application_id", e))?;
    consentry_certs::ClientCertificate::from_pfx(&input.pfx, input.password.expose_secret(), now)
        .map_err(|e| DomainError::invalid("certificate", e.to_string()))?;
    let custom = ClientRef::Custom {
        app_id,
        pfx: SecretSlice::from(input.pfx.clone()),
        password: input.password.clone(),
    };
    let sealed = (
        STANDARD.encode(&input.pfx),
        input.password.expose_secret().to_string(),
    );
    Ok((custom, Some(app_id), Some(sealed)))
}

/// The first step at Microsoft for an app type and method, and whether a sign-in follows it.
pub(super) fn legs(app: &AppType, method: ConsentMethod) -> (AuthLeg, bool) {
    match (app.permission_kind, method) {
        (PermissionKind::Application, _) => (AuthLeg::AdminConsent, false),
        (_, ConsentMethod::Admin) => (AuthLeg::AdminConsent, true),
        (_, ConsentMethod::User) => (AuthLeg::SignIn, false),
    }
}

/// Why user consent cannot start yet, from the app's grants in the tenant: it needs the
/// organization's admin consent first (the documentation's preparation step). Graph lists
/// delegated grants only to apps allowed to read them; when it does not, Microsoft itself refuses
/// the user's consent ("need admin approval") and the callback explains how to grant admin consent.
pub(super) fn user_consent_refusal(app: &AppType, grants: &Grants) -> Option<DomainError> {
    let needed = required(app, PermissionType::Scope);
    let missing = needed
        .iter()
        .any(|s| grants.delegated_readable && !grants.delegated_all_principals.contains(s));
    if grants.service_principal.is_some() && !missing {
        return None;
    }
    let f = explain_platform(
        &PlatformError {
            cause: PlatformCause::ConsentMissing,
            aadsts: None,
            error: None,
            message: String::new(),
        },
        app,
        app.custom_app,
    );
    Some(DomainError::invalid(
        "method",
        format!(
            "User consent needs admin consent to be granted to the app first. {}",
            f.remediation.join(" ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reauth::testing::{app, grants};

    fn request(method: ConsentMethod) -> StartRequest {
        StartRequest {
            method,
            custom_app: None,
            functions: vec![],
            scan_targets: vec![],
            login_hint: None,
            handoff: false,
        }
    }

    fn message(e: DomainError) -> String {
        e.to_string()
    }

    #[test]
    fn user_consent_is_refused_where_the_catalog_allows_administrator_consent_only() {
        let only_admin = app("m365-all");
        let e = check_method(&only_admin, ConsentMethod::User).unwrap_err();
        assert!(message(e).contains("supports administrator consent only"));
        assert!(check_method(&only_admin, ConsentMethod::Admin).is_ok());
        assert!(check_method(&app("insights-m365"), ConsentMethod::User).is_ok());
    }

    #[test]
    fn functions_are_refused_on_an_app_type_without_any() {
        let mut req = request(ConsentMethod::Admin);
        req.functions = vec!["protect-power-bi".into()];
        let e = validate(&app("insights-m365"), &req, &[], OffsetDateTime::now_utc())
            .err()
            .expect("refused");
        assert!(message(e).contains("has no selectable functions"));
    }

    #[test]
    fn a_function_needs_its_module_in_the_organization() {
        let mut req = request(ConsentMethod::Admin);
        req.functions = vec!["protect-power-bi".into()];
        let a = app("cloud-backup-delegated");
        let now = OffsetDateTime::now_utc();
        assert!(validate(&a, &req, &[], now).is_err());
        let ok = validate(&a, &req, &["power-bi".to_string()], now).expect("allowed");
        assert!(ok.custom_app_id.is_none());
        assert!(
            matches!(ok.client, ClientRef::Vendor { app_type } if app_type == "cloud-backup-delegated")
        );
    }

    #[test]
    fn scan_targets_are_required_and_kept_in_catalog_order() {
        let a = app("insights-power-platform");
        let now = OffsetDateTime::now_utc();
        let none = validate(&a, &request(ConsentMethod::Admin), &[], now);
        assert!(message(none.err().expect("at least one")).contains("scan_targets"));
        let mut req = request(ConsentMethod::Admin);
        req.scan_targets = vec!["power-bi".into(), "environments".into()];
        let ok = validate(&a, &req, &[], now).expect("valid");
        assert_eq!(ok.scan_targets, vec!["environments", "power-bi"]);
    }

    #[test]
    fn a_custom_app_type_needs_the_app_and_a_vendor_one_refuses_it() {
        let now = OffsetDateTime::now_utc();
        let e = validate(
            &app("custom-azure-app"),
            &request(ConsentMethod::Admin),
            &[],
            now,
        )
        .err()
        .expect("refused");
        assert!(message(e).contains("needs the application ID"));
        let mut req = request(ConsentMethod::Admin);
        req.custom_app = Some(CustomAppInput {
            application_id: "not a guid".into(),
            pfx: vec![1, 2, 3],
            password: SecretString::from("pw".to_string()),
        });
        let bad_id = validate(&app("custom-azure-app"), &req, &[], now)
            .err()
            .expect("refused");
        assert!(message(bad_id).contains("application_id"));
        req.custom_app.as_mut().unwrap().application_id =
            "0b1f8b4e-6b1e-4c1e-9a55-3c1e8b2f6d10".into();
        let bad_pfx = validate(&app("custom-azure-app"), &req, &[], now)
            .err()
            .expect("refused");
        assert!(message(bad_pfx).contains("certificate"));
        let vendor = validate(&app("insights-m365"), &req, &[], now)
            .err()
            .expect("refused");
        assert!(message(vendor).contains("no application ID or certificate is needed"));
    }

    #[test]
    fn the_first_leg_follows_the_permission_kind_and_method() {
        let application = app("m365-all");
        assert_eq!(
            legs(&application, ConsentMethod::Admin),
            (AuthLeg::AdminConsent, false)
        );
        let hybrid = app("insights-m365");
        assert_eq!(
            legs(&hybrid, ConsentMethod::Admin),
            (AuthLeg::AdminConsent, true)
        );
        assert_eq!(legs(&hybrid, ConsentMethod::User), (AuthLeg::SignIn, false));
    }

    #[test]
    fn user_consent_needs_the_app_in_the_tenant_with_its_scopes_consented() {
        let a = app("cloud-backup-delegated");
        let mut g = grants();
        g.service_principal = None;
        assert!(user_consent_refusal(&a, &g).is_some(), "not in the tenant");
        let mut g = grants();
        g.delegated_readable = true;
        g.delegated_all_principals = vec!["User.Read".into()];
        let e = user_consent_refusal(&a, &g).expect("scopes missing");
        assert!(message(e).contains("needs admin consent to be granted to the app first"));
        g.delegated_all_principals = required(&a, PermissionType::Scope);
        assert!(user_consent_refusal(&a, &g).is_none());
        // Graph does not say: Microsoft decides at the consent.
        let mut g = grants();
        g.delegated_readable = false;
        assert!(user_consent_refusal(&a, &g).is_none());
    }
}
