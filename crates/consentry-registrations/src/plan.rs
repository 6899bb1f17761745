//! The plan: the desired manifests against what the vendor's tenant holds, registration by
//! registration. Pure (no I/O): [`Found`] is gathered by the caller. A plan only ever creates, adds to
//! or sets fields: it never deletes a registration, a redirect URI, a permission or a credential.

use std::fmt::Write as _;

use consentry_entra::applications::{
    Application, ApplicationWrite, RequiredResourceAccess, WebApplication,
};

use crate::manifest::{Manifest, Registration, SIGN_IN_AUDIENCE};

/// How a registration was looked for in the vendor's tenant, and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// By the client ID the configuration names; `None`: Graph does not know it there.
    ConfiguredAppId(String, Option<Box<Application>>),
    /// By display name (the configuration names no client ID): every registration of that name.
    DisplayName(Vec<Application>),
}

/// What the vendor's tenant holds for one desired registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The lookup and its result.
    pub lookup: Lookup,
    /// Whether the registration's service principal exists in the vendor's tenant.
    pub service_principal: bool,
    /// Whether the configuration holds a credential for it that gets a token (client credentials in
    /// the vendor's tenant).
    pub credential_works: bool,
}

/// One change to one registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `POST /applications` with the manifest.
    Create,
    /// `PATCH /applications/{id}` with `patch`; `changes` says what, in words.
    Update {
        /// What changes, for people.
        changes: Vec<String>,
        /// The fields to write.
        patch: ApplicationWrite,
    },
    /// `POST /servicePrincipals` in the vendor's tenant (client credentials need it there).
    CreateServicePrincipal,
    /// A new client secret or certificate (the configuration has no working one).
    AddCredential,
    /// Write the client ID (and credential) into the configuration.
    WriteConfig,
}

/// The plan of one registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRegistration {
    /// Which registration.
    pub registration: Registration,
    /// Its display name (the manifest's).
    pub display_name: String,
    /// Its client ID, when it exists.
    pub app_id: Option<String>,
    /// Its object ID, when it exists.
    pub object_id: Option<String>,
    /// Found by display name and not named in the configuration: adopted, not duplicated.
    pub adopted: bool,
    /// What to do, in order; empty: nothing.
    pub actions: Vec<Action>,
    /// Why nothing can be done for it (the operator must decide); `actions` is then empty.
    pub blocked: Option<String>,
}

/// The whole plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// By registration, in manifest order.
    pub registrations: Vec<PlannedRegistration>,
}

impl Plan {
    /// Whether it changes nothing (blocked registrations change nothing either).
    pub fn is_noop(&self) -> bool {
        self.registrations.iter().all(|r| r.actions.is_empty())
    }

    /// The registrations that cannot be planned.
    pub fn blocked(&self) -> impl Iterator<Item = &PlannedRegistration> {
        self.registrations.iter().filter(|r| r.blocked.is_some())
    }

    /// The plan for people: one block per registration.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for r in &self.registrations {
            let id = r
                .app_id
                .as_deref()
                .map(|a| format!(" (client ID {a})"))
                .unwrap_or_default();
            let _ = writeln!(out, "{} \"{}\"{id}", r.registration, r.display_name);
            if let Some(why) = &r.blocked {
                let _ = writeln!(out, "  cannot proceed: {why}");
                continue;
            }
            if r.actions.is_empty() {
                let _ = writeln!(out, "  nothing to do");
                continue;
            }
            if r.adopted {
                let _ = writeln!(
                    out,
                    "  found by display name, not in the configuration: adopted (not duplicated)"
                );
            }
            for a in &r.actions {
                let line = match a {
                    Action::Create => "create the registration (multi-tenant, redirect URIs and permissions of the manifest)".to_owned(),
                    Action::Update { changes, .. } => format!("update: {}", changes.join("; ")),
                    Action::CreateServicePrincipal => {
                        "create its service principal in the vendor's tenant".to_owned()
                    }
                    Action::AddCredential => "add a credential (the configuration has no working one)".to_owned(),
                    Action::WriteConfig => format!("write {} into the configuration", r.registration),
                };
                let _ = writeln!(out, "  - {line}");
            }
        }
        let changing = self
            .registrations
            .iter()
            .filter(|r| !r.actions.is_empty())
            .count();
        if changing == 0 {
            let _ = writeln!(out, "Nothing to do.");
        } else {
            let _ = writeln!(
                out,
                "{changing} of {} registrations change; nothing is deleted.",
                self.registrations.len()
            );
        }
        out
    }
}

/// What `found` lacks of `desired`, as a `PATCH` (only the fields that differ; collections keep what
/// is there and add what is missing).
pub fn differences(desired: &Manifest, found: &Application) -> (Vec<String>, ApplicationWrite) {
    let mut changes = Vec::new();
    let mut patch = ApplicationWrite::default();
    if found.display_name.as_deref() != Some(desired.display_name()) {
        changes.push(format!(
            "displayName {:?} → {:?}",
            found.display_name.as_deref().unwrap_or(""),
            desired.display_name()
        ));
        patch.display_name = Some(desired.display_name().to_owned());
    }
    if found.sign_in_audience.as_deref() != Some(SIGN_IN_AUDIENCE) {
        changes.push(format!(
            "signInAudience {:?} → {SIGN_IN_AUDIENCE:?}",
            found.sign_in_audience.as_deref().unwrap_or("")
        ));
        patch.sign_in_audience = Some(SIGN_IN_AUDIENCE.to_owned());
    }
    let missing_uris: Vec<&String> = desired
        .redirect_uris()
        .iter()
        .filter(|u| !found.redirect_uris().contains(u))
        .collect();
    if !missing_uris.is_empty() {
        let mut uris = found.redirect_uris().to_vec();
        uris.extend(missing_uris.iter().map(|u| (*u).clone()));
        changes.push(format!(
            "add redirect URI{} {}",
            if missing_uris.len() > 1 { "s" } else { "" },
            missing_uris
                .iter()
                .map(|u| u.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        patch.web = Some(WebApplication {
            redirect_uris: uris,
        });
    }
    let mut access: Vec<RequiredResourceAccess> = found.required_resource_access.clone();
    let mut added = 0usize;
    for want in desired.required_resource_access() {
        let pos = match access.iter().position(|r| {
            r.resource_app_id
                .eq_ignore_ascii_case(&want.resource_app_id)
        }) {
            Some(p) => p,
            None => {
                access.push(RequiredResourceAccess {
                    resource_app_id: want.resource_app_id.clone(),
                    resource_access: Vec::new(),
                });
                access.len() - 1
            }
        };
        for p in &want.resource_access {
            let have = access[pos]
                .resource_access
                .iter()
                .any(|a| a.id.eq_ignore_ascii_case(&p.id) && a.kind == p.kind);
            if !have {
                access[pos].resource_access.push(p.clone());
                added += 1;
            }
        }
    }
    if added > 0 {
        changes.push(format!(
            "add {added} permission{} to requiredResourceAccess (administrators of customer tenants must consent again)",
            if added > 1 { "s" } else { "" }
        ));
        patch.required_resource_access = Some(access);
    }
    (changes, patch)
}

/// Plans one registration.
pub fn plan_one(desired: &Manifest, found: &Found) -> PlannedRegistration {
    let mut planned = PlannedRegistration {
        registration: desired.registration.clone(),
        display_name: desired.display_name().to_owned(),
        app_id: None,
        object_id: None,
        adopted: false,
        actions: Vec::new(),
        blocked: None,
    };
    let existing = match &found.lookup {
        Lookup::ConfiguredAppId(app_id, None) => {
            planned.app_id = Some(app_id.clone());
            planned.blocked = Some(format!(
                "the configuration names client ID {app_id}, which the vendor's tenant does not hold: \
                 correct client_id in {} (or remove the table to register it anew)",
                desired.registration
            ));
            return planned;
        }
        Lookup::ConfiguredAppId(_, Some(app)) => app.as_ref(),
        Lookup::DisplayName(apps) if apps.is_empty() => {
            planned.actions = vec![
                Action::Create,
                Action::CreateServicePrincipal,
                Action::AddCredential,
                Action::WriteConfig,
            ];
            return planned;
        }
        Lookup::DisplayName(apps) if apps.len() > 1 => {
            let ids: Vec<&str> = apps.iter().map(|a| a.app_id.as_str()).collect();
            planned.blocked = Some(format!(
                "{} registrations are named {:?} (client IDs {}): write the right one's client_id into {} and run again",
                apps.len(),
                desired.display_name(),
                ids.join(", "),
                desired.registration
            ));
            return planned;
        }
        Lookup::DisplayName(apps) => {
            planned.adopted = true;
            &apps[0]
        }
    };
    planned.app_id = Some(existing.app_id.clone());
    planned.object_id = Some(existing.id.clone());
    let (changes, patch) = differences(desired, existing);
    if !changes.is_empty() {
        planned.actions.push(Action::Update { changes, patch });
    }
    if !found.service_principal {
        planned.actions.push(Action::CreateServicePrincipal);
    }
    if !found.credential_works {
        planned.actions.push(Action::AddCredential);
    }
    if planned.adopted || !found.credential_works {
        planned.actions.push(Action::WriteConfig);
    }
    planned
}

/// Plans every registration: `desired[i]` against `found[i]`.
pub fn plan(desired: &[Manifest], found: &[Found]) -> Plan {
    Plan {
        registrations: desired
            .iter()
            .zip(found)
            .map(|(d, f)| plan_one(d, f))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::for_consentry_app;
    use consentry_entra::applications::ResourceAccess;

    fn registered(m: &Manifest) -> Application {
        Application {
            id: "11111111-1111-4111-8111-111111111111".into(),
            app_id: "22222222-2222-4222-8222-222222222222".into(),
            display_name: m.application.display_name.clone(),
            sign_in_audience: m.application.sign_in_audience.clone(),
            web: m.application.web.clone(),
            is_fallback_public_client: None,
            required_resource_access: m.required_resource_access().to_vec(),
            password_credentials: Vec::new(),
            key_credentials: Vec::new(),
        }
    }

    fn found(lookup: Lookup, sp: bool, works: bool) -> Found {
        Found {
            lookup,
            service_principal: sp,
            credential_works: works,
        }
    }

    #[test]
    fn nothing_found_creates_everything() {
        let m = for_consentry_app("https://c.example");
        let p = plan_one(&m, &found(Lookup::DisplayName(vec![]), false, false));
        assert_eq!(
            p.actions,
            [
                Action::Create,
                Action::CreateServicePrincipal,
                Action::AddCredential,
                Action::WriteConfig
            ]
        );
        assert!(!plan(&[m], &[found(Lookup::DisplayName(vec![]), false, false)]).is_noop());
    }

    #[test]
    fn a_matching_configured_registration_with_a_working_credential_needs_nothing() {
        let m = for_consentry_app("https://c.example");
        let app = registered(&m);
        let f = found(
            Lookup::ConfiguredAppId(app.app_id.clone(), Some(Box::new(app))),
            true,
            true,
        );
        let p = plan(std::slice::from_ref(&m), &[f]);
        assert!(p.is_noop(), "{}", p.render());
        assert!(p.render().contains("nothing to do"));
    }

    #[test]
    fn differences_add_what_is_missing_and_keep_the_rest() {
        let m = for_consentry_app("https://c.example");
        let mut app = registered(&m);
        app.display_name = Some("Old name".into());
        app.web = Some(WebApplication {
            redirect_uris: vec!["https://other.example/cb".into()],
        });
        app.required_resource_access[0].resource_access.truncate(1);
        app.required_resource_access[0]
            .resource_access
            .push(ResourceAccess {
                id: "33333333-3333-4333-8333-333333333333".into(),
                kind: "Scope".into(),
            });
        let (changes, patch) = differences(&m, &app);
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert_eq!(patch.display_name.as_deref(), Some("Consentry"));
        assert!(patch.sign_in_audience.is_none());
        let uris = patch.web.unwrap().redirect_uris;
        assert_eq!(uris[0], "https://other.example/cb", "kept");
        assert_eq!(uris.len(), 3);
        let access = &patch.required_resource_access.unwrap()[0].resource_access;
        assert_eq!(access.len(), 5, "the extra permission is kept: {access:?}");
        // Found by display name, no credential: adopted, updated, credential added, configuration written.
        let p = plan_one(
            &m,
            &found(Lookup::DisplayName(vec![app.clone()]), true, false),
        );
        assert!(p.adopted);
        assert!(matches!(p.actions[0], Action::Update { .. }));
        assert_eq!(p.actions[1..], [Action::AddCredential, Action::WriteConfig]);
    }

    #[test]
    fn ambiguous_or_missing_registrations_block_instead_of_guessing() {
        let m = for_consentry_app("https://c.example");
        let app = registered(&m);
        let p = plan_one(
            &m,
            &found(Lookup::DisplayName(vec![app.clone(), app]), true, false),
        );
        assert!(p.actions.is_empty());
        assert!(p.blocked.unwrap().contains("2 registrations are named"));
        let p = plan_one(
            &m,
            &found(
                Lookup::ConfiguredAppId("44444444-4444-4444-8444-444444444444".into(), None),
                false,
                false,
            ),
        );
        assert!(p.actions.is_empty());
        assert!(p.blocked.unwrap().contains("does not hold"));
    }
}
