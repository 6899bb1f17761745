//! The platform operator's "Vendor apps" page (`/console/vendor-apps`): every configured vendor
//! registration as last read by the server's watch ([`consentry_domain::VendorCredentialWatch`]) —
//! whether it could be read, what it lacks (redirect URIs, permissions) and each credential's end with
//! its state and the command that rotates it. Organization accounts are refused
//! (`Action::ReadVendorApps`).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use consentry_domain::{CredentialFact, Expiry, RegistrationRead, VendorAppFacts};

use super::auth::Operator;
use super::error::{ConsoleError, html};
use super::pages::{Layout, when};
use crate::AppState;

#[derive(Template)]
#[template(path = "console/vendor_apps.html")]
struct View {
    layout: Layout,
    read_at: Option<String>,
    apps: Vec<App>,
    needing_attention: usize,
}

struct App {
    label: String,
    cloud: String,
    client_id: String,
    /// Why it could not be read, if it could not.
    unread: Option<String>,
    problems: Vec<String>,
    credentials: Vec<Credential>,
    rotate: String,
}

struct Credential {
    kind: &'static str,
    key_id: String,
    ends: String,
    in_use: &'static str,
    state: &'static str,
    /// The badge's CSS class.
    class: &'static str,
}

fn credential(c: &CredentialFact) -> Credential {
    Credential {
        kind: c.kind.as_str(),
        key_id: c.key_id.clone().unwrap_or_else(|| match c.source {
            consentry_domain::vendor_credentials::FactSource::LocalCertificate => {
                "configured certificate file".into()
            }
            _ => "configured secret".into(),
        }),
        ends: c
            .ends_at
            .as_ref()
            .map(when)
            .unwrap_or_else(|| "unknown".into()),
        in_use: match c.in_use {
            Some(true) => "yes",
            Some(false) => "no",
            None => "cannot tell",
        },
        state: match c.expiry {
            Expiry::Ok => "ok",
            Expiry::Attention => "ends within 30 days",
            Expiry::Expired => "expired",
            Expiry::Unknown => "unknown",
        },
        class: match c.expiry {
            Expiry::Ok => "valid",
            Expiry::Attention => "attention",
            Expiry::Expired => "invalid",
            Expiry::Unknown => "idle",
        },
    }
}

fn app(f: &VendorAppFacts) -> App {
    let r = &f.registration;
    let unread = match &r.read {
        RegistrationRead::Read(_) => None,
        RegistrationRead::NotFound => Some(format!(
            "the application is not found in {}: check client_id and vendor_tenant",
            r.home_tenant.as_deref().unwrap_or("the vendor tenant")
        )),
        RegistrationRead::NoVendorTenant => {
            Some("vendor_tenant is not set: the registration's home tenant is unknown".into())
        }
        RegistrationRead::TokenRefused(e) => Some(format!(
            "no token by client credentials in the home tenant: {}",
            e.message
        )),
        RegistrationRead::ReadFailed(e) => {
            Some(format!("the registration could not be read: {}", e.message))
        }
    };
    App {
        label: r.app.label().to_string(),
        cloud: r.cloud.to_string(),
        client_id: r.client_id.to_string(),
        unread,
        problems: f.problems.iter().map(ToString::to_string).collect(),
        credentials: f.credentials.iter().map(credential).collect(),
        rotate: r.app.rotate_command(),
    }
}

/// `GET /console/vendor-apps`.
pub async fn page(State(st): State<AppState>, op: Operator) -> Result<Response, ConsoleError> {
    let snapshot = st.vendor_credentials.view(&op.caller())?;
    let layout = Layout::new(&st, &op).await?;
    let view = match snapshot {
        Some(s) => View {
            layout,
            read_at: Some(when(&s.read_at)),
            needing_attention: s.needing_attention(),
            apps: s.apps.iter().map(app).collect(),
        },
        None => View {
            layout,
            read_at: None,
            needing_attention: 0,
            apps: Vec::new(),
        },
    };
    Ok(html(StatusCode::OK, &view))
}
