//! The re-authorization wizard (consent method with the catalog's notes, custom app fields, functions,
//! what the profile will scan → Microsoft), "Check now" and cancelling a pending re-authorization.

use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use consentry_catalog::{AppType, Catalog, ConsentMethod};
use consentry_domain::{
    Action, AppProfile, CheckTrigger, CustomAppInput, DomainError, ProfileView, StartRequest,
};
use secrecy::SecretString;

use super::MAX_WIZARD_BYTES;
use super::auth::{CsrfForm, Operator};
use super::error::{ConsoleError, html, sentence};
use super::pages::{Layout, visible_profile};
use crate::AppState;

struct MethodChoice {
    value: &'static str,
    label: &'static str,
    needs: Vec<String>,
    checked: bool,
}

struct ScanTargetChoice {
    key: String,
    name: String,
    checked: bool,
}

struct FunctionChoice {
    key: String,
    name: String,
    enabled: bool,
    checked: bool,
    why_disabled: String,
}

#[derive(Template)]
#[template(path = "console/reauthorize.html")]
struct WizardPage {
    layout: Layout,
    v: ProfileView,
    methods: Vec<MethodChoice>,
    custom_app: bool,
    application_id: String,
    functions: Vec<FunctionChoice>,
    scan_targets: Vec<ScanTargetChoice>,
    /// The catalog's notes on the app type (e.g. where further permissions of the account are described).
    notes: Option<String>,
    login_hint: String,
    error: Option<String>,
    max_kb: usize,
    /// Conditional access preparation, for app types with delegated permissions.
    network_note: Option<String>,
    /// The IP address of the previous consent sign-in, if known.
    previous_ip: Option<String>,
}

/// The consent link made for the tenant's administrator.
#[derive(Template)]
#[template(path = "console/consent_link_created.html")]
struct LinkPage {
    layout: Layout,
    v: ProfileView,
    url: String,
    expires: String,
}

fn method_label(m: ConsentMethod) -> &'static str {
    match m {
        ConsentMethod::Admin => "Administrator consent",
        ConsentMethod::User => "User consent",
    }
}

/// The roles and conditions each consent method needs, in words from the catalog.
fn needs(catalog: &Catalog, app: &AppType, service: &str, m: ConsentMethod) -> Vec<String> {
    app.consent
        .iter()
        .filter(|r| {
            r.method == m && (r.services.is_empty() || r.services.iter().any(|s| s == service))
        })
        .map(|r| {
            let mut s = if r.requires.is_trivial() {
                match m {
                    ConsentMethod::Admin => {
                        "An administrator who may grant tenant-wide consent.".to_string()
                    }
                    ConsentMethod::User => "Any user of the tenant, for themselves.".to_string(),
                }
            } else {
                format!(
                    "The consenting account needs: {}.",
                    catalog.describe(&r.requires)
                )
            };
            // Catalog keys by their names (the key itself when the catalog has no name for it).
            let named = |keys: &[String], name: &dyn Fn(&str) -> Option<String>| {
                keys.iter()
                    .map(|k| name(k).unwrap_or_else(|| k.clone()))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if !r.functions.is_empty() {
                let names = named(&r.functions, &|f| app.function(f).map(|x| x.name.clone()));
                s = format!("When you choose {names}: {s}");
            }
            if !r.scan_targets.is_empty() {
                let names = named(&r.scan_targets, &|t| {
                    app.scan_target(t).map(|x| x.name.clone())
                });
                s = format!("When the profile scans {names}: {s}");
            }
            if let Some(n) = &r.note {
                s.push(' ');
                s.push_str(n);
            }
            s
        })
        .collect()
}

/// What the form said, to show it again after an error.
#[derive(Default)]
struct Chosen {
    method: Option<String>,
    application_id: Option<String>,
    functions: Option<Vec<String>>,
    scan_targets: Option<Vec<String>>,
    login_hint: String,
}

async fn render_form(
    st: &AppState,
    op: &Operator,
    p: AppProfile,
    chosen: Chosen,
    error: Option<String>,
) -> Result<Response, ConsoleError> {
    let layout = Layout::new(st, op).await?;
    let catalog = st.svc.catalog();
    let app = catalog.app_type(&p.app_type).cloned().ok_or_else(|| {
        DomainError::Conflict(format!(
            "the app type {} of this profile is no longer in the catalog",
            p.app_type
        ))
    })?;
    let org = st.svc.organization(p.org_id).await?;
    let allowed = app.consent_methods();
    let methods = allowed
        .iter()
        .enumerate()
        .map(|(i, m)| MethodChoice {
            value: m.as_str(),
            label: method_label(*m),
            needs: needs(catalog, &app, &p.service, *m),
            checked: match &chosen.method {
                Some(c) => c == m.as_str(),
                None => i == 0,
            },
        })
        .collect();
    let selected = chosen
        .functions
        .clone()
        .unwrap_or_else(|| p.functions.clone());
    let functions = app
        .functions
        .iter()
        .map(|f| {
            let enabled = org.modules.contains(&f.module);
            let module = catalog
                .module(&f.module)
                .map(|m| m.name.clone())
                .unwrap_or_else(|| f.module.clone());
            FunctionChoice {
                key: f.key.clone(),
                name: f.name.clone(),
                enabled,
                checked: enabled && selected.contains(&f.key),
                why_disabled: if enabled {
                    String::new()
                } else {
                    format!(
                        "Not available: your subscription does not include the {module} module."
                    )
                },
            }
        })
        .collect();
    let chosen_targets = chosen
        .scan_targets
        .clone()
        .unwrap_or_else(|| p.scan_targets.clone());
    let scan_targets = app
        .scan_targets
        .iter()
        .map(|t| ScanTargetChoice {
            key: t.key.clone(),
            name: t.name.clone(),
            checked: chosen_targets.contains(&t.key),
        })
        .collect();
    let application_id = chosen.application_id.unwrap_or_else(|| {
        if app.custom_app {
            p.application_id.map(|a| a.to_string()).unwrap_or_default()
        } else {
            String::new()
        }
    });
    let delegated = app.delegated_scopes().next().is_some();
    let network_note = delegated.then(|| {
        consentry_domain::conditional_access_preparation(&st.checker.policy().outbound_addresses)
    });
    let previous_ip = p
        .original_sign_in_ip
        .filter(|_| delegated)
        .map(|ip| ip.to_string());
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(html(
        status,
        &WizardPage {
            layout,
            custom_app: app.custom_app,
            v: ProfileView::new(p, catalog),
            methods,
            application_id,
            functions,
            scan_targets,
            notes: app.notes.clone(),
            login_hint: chosen.login_hint,
            error,
            max_kb: MAX_WIZARD_BYTES / 1024,
            network_note,
            previous_ip,
        },
    ))
}

/// `GET /console/profiles/{id}/reauthorize`.
pub async fn form(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let p = visible_profile(&st, &op, &id, Action::Reauthorize).await?;
    render_form(&st, &op, p, Chosen::default(), None).await
}

#[derive(Default)]
struct WizardForm {
    csrf: Option<String>,
    method: Option<String>,
    application_id: Option<String>,
    pfx: Option<Vec<u8>>,
    password: Option<SecretString>,
    functions: Vec<String>,
    scan_targets: Vec<String>,
    login_hint: Option<String>,
    handoff: bool,
}

async fn read_form(mut mp: Multipart) -> Result<WizardForm, ConsoleError> {
    let too_big = || {
        ConsoleError::BadRequest(format!(
            "the form is larger than {} KB; a .pfx file is usually a few kilobytes — check that you chose the right file",
            MAX_WIZARD_BYTES / 1024
        ))
    };
    let mut f = WizardForm::default();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_big()),
            Err(e) => {
                return Err(ConsoleError::BadRequest(format!(
                    "the form could not be read: {}",
                    e.body_text()
                )));
            }
        };
        let name = field.name().unwrap_or_default().to_string();
        // A file input with no file chosen is sent with an empty file name; a chosen empty file has
        // its name.
        let file_chosen = field.file_name().is_some_and(|n| !n.is_empty());
        let bytes = field.bytes().await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_big()
            } else {
                ConsoleError::BadRequest(format!("the form could not be read: {}", e.body_text()))
            }
        })?;
        let text = || String::from_utf8_lossy(&bytes).trim().to_string();
        match name.as_str() {
            "csrf" => f.csrf = Some(text()),
            "method" => f.method = Some(text()),
            "application_id" => f.application_id = Some(text()),
            // An empty file that was chosen goes on to the checks, which say it is empty.
            "certificate" => f.pfx = Some(bytes.to_vec()).filter(|b| !b.is_empty() || file_chosen),
            "password" => {
                f.password = Some(SecretString::from(
                    String::from_utf8_lossy(&bytes).into_owned(),
                ))
            }
            "functions" => f.functions.push(text()),
            "scan_targets" => f.scan_targets.push(text()),
            "login_hint" => f.login_hint = Some(text()).filter(|s| !s.is_empty()),
            "handoff" => f.handoff = text() == "on",
            _ => {}
        }
    }
    Ok(f)
}

/// `POST /console/profiles/{id}/reauthorize` (multipart): starts the re-authorization and sends the
/// browser to Microsoft.
pub async fn submit(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    mp: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ConsoleError> {
    // Anything but the wizard's own multipart form (a url-encoded POST, a missing boundary) gets the
    // console's error page, not axum's plain-text rejection.
    let mp = mp.map_err(|_| {
        ConsoleError::BadRequest(
            "the re-authorization form must be sent as multipart/form-data, as the wizard's page \
             sends it; open the app profile and click Re-authorize to start again"
                .into(),
        )
    })?;
    let f = read_form(mp).await?;
    op.check_csrf(f.csrf.as_deref())?;
    let p = visible_profile(&st, &op, &id, Action::Reauthorize).await?;
    let chosen = Chosen {
        method: f.method.clone(),
        application_id: f.application_id.clone(),
        functions: Some(f.functions.clone()),
        scan_targets: Some(f.scan_targets.clone()),
        login_hint: f.login_hint.clone().unwrap_or_default(),
    };
    let method = match f.method.as_deref().map(str::parse::<ConsentMethod>) {
        Some(Ok(m)) => m,
        _ => {
            return render_form(&st, &op, p, chosen, Some("Choose a consent method.".into())).await;
        }
    };
    let custom_app = match (f.application_id, f.pfx) {
        (None, None) => None,
        (Some(a), None) if a.is_empty() => None,
        (application_id, Some(pfx)) => Some(CustomAppInput {
            application_id: application_id.unwrap_or_default(),
            pfx,
            password: f
                .password
                .unwrap_or_else(|| SecretString::from(String::new())),
        }),
        (Some(_), None) => {
            return render_form(
                &st,
                &op,
                p,
                chosen,
                Some(
                    "No certificate file was chosen: choose the custom app's certificate file (.pfx)."
                        .into(),
                ),
            )
            .await;
        }
    };
    // The OAuth state is bound to this browser (a consent link is bound when it is opened).
    let (binding, binding_cookie) = crate::security::new_binding(st.security.tls, false);
    let started = st
        .reauth
        .start_in_browser(
            p.id,
            StartRequest {
                method,
                custom_app,
                functions: f.functions,
                scan_targets: f.scan_targets,
                login_hint: f.login_hint,
                handoff: f.handoff,
            },
            &op.actor(),
            &binding,
        )
        .await;
    match started {
        Ok(s) if s.consent_link => {
            let layout = Layout::new(&st, &op).await?;
            Ok(html(
                StatusCode::OK,
                &LinkPage {
                    layout,
                    url: s.url,
                    expires: super::pages::when(&s.expires_at),
                    v: ProfileView::new(s.profile, st.svc.catalog()),
                },
            ))
        }
        Ok(s) => {
            let mut res = Redirect::to(&s.url).into_response();
            *res.status_mut() = StatusCode::SEE_OTHER;
            res.headers_mut()
                .append(axum::http::header::SET_COOKIE, binding_cookie);
            Ok(res)
        }
        Err(DomainError::Invalid { message, .. }) => {
            render_form(&st, &op, p, chosen, Some(sentence(&message))).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /console/profiles/{id}/check`: checks the profile now through the monitor's checker.
pub async fn check_now(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(f.csrf.as_deref())?;
    let p = visible_profile(&st, &op, &id, Action::Check).await?;
    let outcome = st
        .checker
        .check(p.id, CheckTrigger::Manual(op.actor().to_string()))
        .await?;
    let mut res = Redirect::to(&format!(
        "/console/profiles/{}?checked={}",
        p.id,
        outcome.label()
    ))
    .into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    Ok(res)
}

/// `POST /console/profiles/{id}/cancel`: cancels a pending re-authorization.
pub async fn cancel(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(f.csrf.as_deref())?;
    let p = visible_profile(&st, &op, &id, Action::Reauthorize).await?;
    st.reauth.cancel(p.id, &op.actor()).await?;
    let mut res = Redirect::to(&format!("/console/profiles/{}?cancelled=1", p.id)).into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    Ok(res)
}
