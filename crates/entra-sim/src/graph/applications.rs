//! Graph's application writes, in v1.0's shapes: `POST /applications`, `PATCH /applications/{id}`
//! and `/applications(appId='…')`, `addPassword` / `removePassword`, `addKey` / `removeKey` (with a
//! proof of possession) and `POST /servicePrincipals`, with Microsoft's permission checks. The
//! directory changes themselves are `State` methods (`state::applications`).
//!
//! Facts, in the marks of entra-facts (§0) — GD is microsoftgraph/microsoft-graph-docs-contrib:
//! - Permissions: delegated `Application.ReadWrite.All` (or `Directory.ReadWrite.All`) and a
//!   signed-in user who may write registrations: Global, Application or Cloud Application
//!   Administrator, an owner of the app (update, credentials), or any member when the tenant lets
//!   users register applications (create); application `Application.ReadWrite.All`, or
//!   `Application.ReadWrite.OwnedBy` to create apps and manage those the caller owns. Otherwise
//!   403 `Authorization_RequestDenied` "Insufficient privileges to complete the operation." [V]
//!   GD:api-reference/v1.0/api/application-post-applications.md, application-update.md,
//!   application-addpassword.md, application-addkey.md (roles list of its current revision).
//! - `POST /applications` needs `displayName`; answers 201 with the application; the creator
//!   becomes an owner [V] application-post-applications.md; `signInAudience` defaults to
//!   `AzureADMyOrg` [V] GD:resources/application.md (the create example still shows an older
//!   default). Creating with `passwordCredentials` is not supported [V] (same page): secrets come
//!   from `addPassword`.
//! - `PATCH` answers 204 No Content [V] application-update.md; `keyCredentials` replaces the
//!   collection [V] (collections are replaced by a PATCH, GD:concepts/…).
//! - `addPassword` answers 200 with the passwordCredential, `secretText` shown this once, `hint` its
//!   first three characters; `startDateTime` defaults to now and `endDateTime` to start + 2 years
//!   [V] application-addpassword.md, resources/passwordcredential.md. `removePassword` {keyId} → 204
//!   [V] application-removepassword.md.
//! - `addKey` needs a proof: a JWT signed with one of the app's current certificates, `aud`
//!   `00000002-0000-0000-c000-000000000000`, `iss` the application's object `id`, `nbf`, `exp` at
//!   most 10 minutes later; an app needs no permission to roll its own keys; an app without a valid
//!   certificate cannot use it [V] application-addkey.md. It answers 200 with the keyCredential.
//! - `POST /servicePrincipals` {appId} → 201 [V] serviceprincipal-post-serviceprincipals.md; a
//!   second one for the same app → 409 `Request_MultipleObjectsWithSameKeyValue` "The service
//!   principal cannot be created, updated, or restored because the service principal name {appId}
//!   is already in use." [V-obs] Azure/reliable-web-app-pattern-java#185, KelvinTegelaar/CIPP#1142.
//! - UNVERIFIED (docs/entra-sim.md lists them): the codes and messages of a malformed body, a
//!   missing `displayName`, an unknown permission ID or resource in `requiredResourceAccess`, an
//!   unknown `keyId` on `removePassword` / `removeKey`, a failed proof, and an unknown `appId` on
//!   `POST /servicePrincipals`; that an app-only creator becomes an owner with
//!   `Application.ReadWrite.All` too (it does with `OwnedBy`).

use std::collections::HashMap;

use axum::http::StatusCode;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Caller, GraphCall, GraphError, GraphRequest, homed_in, key_json, object_id};
use crate::crypto::CertInfo;
use crate::model::{App, KeyCredential, SignInAudience};
use crate::state::State as SimState;
use crate::wellknown::{ROLE_APPLICATION_ADMIN, ROLE_CLOUD_APPLICATION_ADMIN, ROLE_GLOBAL_ADMIN};

/// Permissions that write every registration (delegated or application).
const WRITE_ALL: &[&str] = &["Application.ReadWrite.All", "Directory.ReadWrite.All"];
/// The application permission that creates apps and manages the ones the caller owns.
const OWNED_BY: &str = "Application.ReadWrite.OwnedBy";
/// Directory roles that may write every registration.
const ADMIN_ROLES: &[&str] = &[
    ROLE_GLOBAL_ADMIN,
    ROLE_APPLICATION_ADMIN,
    ROLE_CLOUD_APPLICATION_ADMIN,
];
/// `aud` of an `addKey` / `removeKey` proof of possession [V] application-addkey.md.
const PROOF_AUDIENCE: &str = "00000002-0000-0000-c000-000000000000";
/// Properties of an application a write may carry without the simulator storing them: read-only
/// ones a client echoes back.
const READ_ONLY: &[&str] = &[
    "id",
    "appId",
    "createdDateTime",
    "deletedDateTime",
    "publisherDomain",
];

type Written = Result<(StatusCode, Value), GraphError>;

/// How a request names an application.
enum Address<'p> {
    /// `applications/{id}` (object ID).
    Object(&'p str),
    /// `applications(appId='{appId}')`.
    AppId(&'p str),
}

/// Answers a Graph write (any method but GET) for `caller`.
pub(super) fn write(
    st: &mut SimState,
    caller: &Caller,
    call: &GraphCall<'_>,
    query: &HashMap<String, String>,
    base: &str,
) -> Written {
    let path = call.path.trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').collect();
    let method = call.method.to_ascii_uppercase();
    let mut w = Writer {
        st,
        caller,
        query,
        base,
        version: call.version,
    };
    let (address, action) = match segs.as_slice() {
        ["applications"] if method == "POST" => return w.create(call.body),
        ["servicePrincipals"] if method == "POST" => return w.create_sp(call.body),
        ["applications", id] => (Address::Object(id), None),
        ["applications", id, action] => (Address::Object(id), Some(*action)),
        [seg] if seg.starts_with("applications(") => (
            Address::AppId(super::key_arg(seg, "applications").unwrap_or_default()),
            None,
        ),
        [seg, action] if seg.starts_with("applications(") => (
            Address::AppId(super::key_arg(seg, "applications").unwrap_or_default()),
            Some(*action),
        ),
        _ => return Err(GraphError::method_not_allowed()),
    };
    let action = action.map(|a| a.strip_prefix("microsoft.graph.").unwrap_or(a));
    match (method.as_str(), action) {
        ("PATCH", None) => {
            w.may_write_at_all()?;
            let app = w.find(&address)?;
            w.update(app, call.body)
        }
        ("POST", Some(a)) if a.eq_ignore_ascii_case("addPassword") => {
            w.may_write_at_all()?;
            let app = w.find(&address)?;
            w.add_password(&app, call.body)
        }
        ("POST", Some(a)) if a.eq_ignore_ascii_case("removePassword") => {
            w.may_write_at_all()?;
            let app = w.find(&address)?;
            w.remove_password(&app, call.body)
        }
        ("POST", Some(a)) if a.eq_ignore_ascii_case("addKey") => {
            let app = w.find(&address)?;
            w.add_key(&app, call.body)
        }
        ("POST", Some(a)) if a.eq_ignore_ascii_case("removeKey") => {
            let app = w.find(&address)?;
            w.remove_key(&app, call.body)
        }
        _ => Err(GraphError::method_not_allowed()),
    }
}

fn invalid_json() -> GraphError {
    GraphError::bad_request(
        "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
    )
}

/// 400 for a property whose value the directory refuses (Graph's wording for directory objects).
fn invalid_value(property: &str, resource: &str, why: &str) -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "Request_BadRequest",
        format!(
            "Invalid value specified for property '{property}' of resource '{resource}'. {why}"
        ),
    )
}

fn parse_body(body: &[u8]) -> Result<Map<String, Value>, GraphError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        _ => Err(invalid_json()),
    }
}

fn parse_time(v: &Value, property: &str) -> Result<Option<OffsetDateTime>, GraphError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(Some)
                .map_err(|_| {
                    invalid_value(
                        property,
                        "PasswordCredential",
                        "Give an ISO 8601 date and time in UTC, e.g. 2030-01-01T00:00:00Z.",
                    )
                })
        }
        _ => Err(invalid_value(
            property,
            "PasswordCredential",
            "It must be a string.",
        )),
    }
}

/// Whether a value carries nothing (a client may send defaults of properties it does not set).
fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty_value),
        Value::Number(_) | Value::Bool(true) => false,
    }
}

struct Writer<'a> {
    st: &'a mut SimState,
    caller: &'a Caller,
    query: &'a HashMap<String, String>,
    base: &'a str,
    version: &'a str,
}

impl Writer<'_> {
    /// A read view of the state for answering with Graph's read shapes.
    fn view(&self) -> GraphRequest<'_> {
        GraphRequest {
            st: &*self.st,
            eventual: false,
            caller: self.caller.clone(),
            version: self.version,
            base: self.base.to_owned(),
            path: String::new(),
            query: self.query.clone(),
        }
    }

    fn context(&self, what: &str) -> String {
        format!("{}/$metadata#{what}", self.base)
    }

    /// The caller holds some permission that writes registrations (checked before the target is
    /// looked up, so a caller without one learns nothing about which apps exist).
    fn may_write_at_all(&self) -> Result<(), GraphError> {
        let c = self.caller;
        let held = if c.user.is_some() {
            c.scopes.iter().any(|s| WRITE_ALL.contains(&s.as_str()))
        } else {
            c.roles
                .iter()
                .any(|r| WRITE_ALL.contains(&r.as_str()) || r == OWNED_BY)
        };
        if held {
            Ok(())
        } else {
            Err(GraphError::denied())
        }
    }

    /// Whether the caller may create a registration (`target` `None`) or write `target`.
    fn authorize(&self, target: Option<&App>) -> Result<(), GraphError> {
        self.may_write_at_all()?;
        let c = self.caller;
        let owns = |who: Option<Uuid>| {
            target.is_some_and(|app| {
                who.is_some_and(|o| self.st.owners_of(app.client_id).contains(&o))
            })
        };
        let allowed = match c.user {
            Some(uid) => {
                let user = self
                    .st
                    .user(c.tenant, uid)
                    .filter(|u| !u.deleted && u.enabled);
                let admin =
                    user.is_some_and(|u| u.roles.iter().any(|r| ADMIN_ROLES.contains(&r.as_str())));
                admin
                    || (user.is_some()
                        && target.is_none()
                        && self.st.settings.users_can_register_apps)
                    || owns(Some(uid))
            }
            None => {
                c.roles.iter().any(|r| WRITE_ALL.contains(&r.as_str()))
                    || (c.roles.iter().any(|r| r == OWNED_BY) && (target.is_none() || owns(c.oid)))
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(GraphError::denied())
        }
    }

    /// The application a request names, in the caller's tenant (application objects exist only
    /// in their home tenant).
    fn find(&self, address: &Address<'_>) -> Result<App, GraphError> {
        let tenant = &self.st.tenants[self.caller.tenant];
        let (shown, found) = match address {
            Address::Object(id) => (
                *id,
                self.st.apps.iter().find(|a| {
                    homed_in(tenant, a) && object_id(a).to_string().eq_ignore_ascii_case(id)
                }),
            ),
            Address::AppId(id) => (
                *id,
                self.st.apps.iter().find(|a| {
                    homed_in(tenant, a) && a.client_id.to_string().eq_ignore_ascii_case(id)
                }),
            ),
        };
        found.cloned().ok_or_else(|| GraphError::not_found(shown))
    }

    /// `POST /applications`.
    fn create(&mut self, body: &[u8]) -> Written {
        self.authorize(None)?;
        let doc = parse_body(body)?;
        if doc
            .get("displayName")
            .and_then(Value::as_str)
            .is_none_or(|n| n.trim().is_empty())
        {
            return Err(invalid_value(
                "displayName",
                "Application",
                "An application needs a display name.",
            ));
        }
        let mut app = App {
            client_id: Uuid::new_v4(),
            object_id: Some(Uuid::new_v4()),
            display_name: String::new(),
            home_tenant: self.st.tenants[self.caller.tenant].id.to_string(),
            catalog_key: None,
            sign_in_audience: SignInAudience::AzureADMyOrg,
            redirect_uris: Vec::new(),
            allow_public_client: false,
            public_client_redirect_uris: Vec::new(),
            secrets: Vec::new(),
            certificates: Vec::new(),
            delegated: Vec::new(),
            application: Vec::new(),
        };
        self.apply(&mut app, &doc)?;
        let client_id = app.client_id;
        // The creator becomes an owner: the signed-in user, or the calling app's service principal.
        let owner = self.caller.user.or(self.caller.oid);
        self.st.register_app(app, owner);
        let view = self.view();
        let app = view
            .st
            .app(client_id)
            .ok_or_else(|| GraphError::not_found("application"))?;
        let body = view.with_context(view.app_json(app), "applications/$entity");
        Ok((StatusCode::CREATED, body))
    }

    /// `PATCH /applications/{id}`.
    fn update(&mut self, app: App, body: &[u8]) -> Written {
        self.authorize(Some(&app))?;
        let doc = parse_body(body)?;
        let mut updated = app;
        self.apply(&mut updated, &doc)?;
        self.st.update_app(updated);
        Ok((StatusCode::NO_CONTENT, Value::Null))
    }

    /// Applies the properties of a create or update body to `app`.
    fn apply(&self, app: &mut App, doc: &Map<String, Value>) -> Result<(), GraphError> {
        for (key, value) in doc {
            match key.as_str() {
                "displayName" => {
                    let name = value
                        .as_str()
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .ok_or_else(|| {
                            invalid_value("displayName", "Application", "It must not be empty.")
                        })?;
                    name.clone_into(&mut app.display_name);
                }
                "signInAudience" => {
                    app.sign_in_audience = match value.as_str() {
                        Some("AzureADMyOrg") => SignInAudience::AzureADMyOrg,
                        Some("AzureADMultipleOrgs") => SignInAudience::AzureADMultipleOrgs,
                        Some("AzureADandPersonalMicrosoftAccount" | "PersonalMicrosoftAccount") => {
                            return Err(invalid_value(
                                "signInAudience",
                                "Application",
                                "entra-sim simulates work and school accounts only: use AzureADMyOrg or AzureADMultipleOrgs.",
                            ));
                        }
                        _ => {
                            return Err(invalid_value(
                                "signInAudience",
                                "Application",
                                "Use AzureADMyOrg or AzureADMultipleOrgs.",
                            ));
                        }
                    };
                }
                "web" => {
                    let uris = platform(value, "web")?;
                    if let Some(uris) = uris {
                        app.redirect_uris = redirect_uris(uris, "web.redirectUris", true)?;
                    }
                }
                "publicClient" => {
                    let uris = platform(value, "publicClient")?;
                    if let Some(uris) = uris {
                        app.public_client_redirect_uris =
                            redirect_uris(uris, "publicClient.redirectUris", false)?;
                    }
                }
                "isFallbackPublicClient" => {
                    app.allow_public_client = match value {
                        Value::Null => false,
                        Value::Bool(b) => *b,
                        _ => {
                            return Err(invalid_value(
                                "isFallbackPublicClient",
                                "Application",
                                "It must be true, false or null.",
                            ));
                        }
                    };
                }
                "requiredResourceAccess" => self.required_resource_access(app, value)?,
                "keyCredentials" => app.certificates = key_credentials(app, value)?,
                "passwordCredentials" => {
                    // Secrets come from addPassword; a client echoing the current ones is fine.
                    let echoed = value.as_array().is_none_or(|list| {
                        list.iter().all(|p| {
                            p.get("keyId").and_then(Value::as_str).is_some_and(|k| {
                                app.secrets
                                    .iter()
                                    .any(|s| s.key_id.to_string().eq_ignore_ascii_case(k))
                            })
                        })
                    });
                    if !echoed {
                        return Err(invalid_value(
                            "passwordCredentials",
                            "Application",
                            "Password credentials cannot be set when creating or updating an application: use addPassword and removePassword.",
                        ));
                    }
                }
                k if READ_ONLY.contains(&k) || k.starts_with("@odata.") => {}
                other if is_empty_value(value) => {
                    let _ = other;
                }
                other => {
                    return Err(GraphError::new(
                        StatusCode::BAD_REQUEST,
                        "Request_BadRequest",
                        format!(
                            "Property '{other}' is not supported by entra-sim: it stores displayName, signInAudience, web.redirectUris, publicClient.redirectUris, isFallbackPublicClient, requiredResourceAccess and keyCredentials."
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `requiredResourceAccess`: each permission ID resolved against the resource's published
    /// permissions (an app role for `Role`, a delegated scope for `Scope`).
    fn required_resource_access(&self, app: &mut App, value: &Value) -> Result<(), GraphError> {
        let bad = |why: String| invalid_value("requiredResourceAccess", "Application", &why);
        let list = match value {
            Value::Null => &Vec::new(),
            Value::Array(a) => a,
            _ => return Err(bad("It must be an array.".into())),
        };
        let graph = self.st.graph_idx();
        let mut delegated = Vec::new();
        let mut application = Vec::new();
        for entry in list {
            let resource_text = entry
                .get("resourceAppId")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let r = Uuid::parse_str(resource_text)
                .ok()
                .and_then(|id| self.st.resources.iter().position(|res| res.app_id == id))
                .ok_or_else(|| {
                    bad(format!(
                        "The resource application '{resource_text}' is not known."
                    ))
                })?;
            let resource = &self.st.resources[r];
            let access = entry
                .get("resourceAccess")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for a in access {
                let id_text = a.get("id").and_then(Value::as_str).unwrap_or_default();
                let id = Uuid::parse_str(id_text).ok();
                let kind = a.get("type").and_then(Value::as_str).unwrap_or_default();
                let role = match kind {
                    "Role" => true,
                    "Scope" => false,
                    other => {
                        return Err(bad(format!(
                            "The type '{other}' of permission '{id_text}' must be Scope or Role."
                        )));
                    }
                };
                let def = resource
                    .permissions
                    .iter()
                    .find(|p| {
                        id.is_some()
                            && if role {
                                p.role_id == id
                            } else {
                                p.scope_id == id
                            }
                    })
                    .ok_or_else(|| {
                        bad(format!(
                            "{} publishes no {} with ID '{id_text}'.",
                            resource.display_name,
                            if role {
                                "application permission (Role)"
                            } else {
                                "delegated permission (Scope)"
                            }
                        ))
                    })?;
                let name = if r == graph {
                    def.value.clone()
                } else {
                    format!(
                        "{}/{}",
                        resource.identifier_uri.trim_end_matches('/'),
                        def.value
                    )
                };
                let list = if role {
                    &mut application
                } else {
                    &mut delegated
                };
                if !list.contains(&name) {
                    list.push(name);
                }
            }
        }
        app.delegated = delegated;
        app.application = application;
        Ok(())
    }

    /// `POST /applications/{id}/addPassword`.
    fn add_password(&mut self, app: &App, body: &[u8]) -> Written {
        self.authorize(Some(app))?;
        let doc = parse_body(body)?;
        let pc = match doc.get("passwordCredential") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(o)) => o.clone(),
            Some(_) => return Err(invalid_json()),
        };
        let now = self.st.now();
        let start = parse_time(
            pc.get("startDateTime").unwrap_or(&Value::Null),
            "startDateTime",
        )?
        .unwrap_or(now);
        let default_end = start
            .replace_year(start.year() + 2)
            .unwrap_or(start + time::Duration::days(730));
        let end = parse_time(pc.get("endDateTime").unwrap_or(&Value::Null), "endDateTime")?
            .unwrap_or(default_end);
        if end <= start {
            return Err(invalid_value(
                "endDateTime",
                "PasswordCredential",
                "It must be later than startDateTime.",
            ));
        }
        let display_name = pc
            .get("displayName")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let secret = self
            .st
            .add_secret(app.client_id, display_name, start, end)
            .ok_or_else(|| GraphError::not_found(&app.client_id.to_string()))?;
        let mut body =
            json!({"@odata.context": self.context("microsoft.graph.passwordCredential")});
        if let (Some(out), Value::Object(fields)) =
            (body.as_object_mut(), super::password_json(&secret))
        {
            out.extend(fields);
        }
        use secrecy::ExposeSecret;
        body["secretText"] = json!(secret.value.expose_secret());
        Ok((StatusCode::OK, body))
    }

    /// `POST /applications/{id}/removePassword` {keyId}.
    fn remove_password(&mut self, app: &App, body: &[u8]) -> Written {
        self.authorize(Some(app))?;
        let key_id = key_id_of(&parse_body(body)?, "PasswordCredential")?;
        if !self.st.remove_secret(app.client_id, key_id) {
            return Err(invalid_value(
                "keyId",
                "PasswordCredential",
                &format!("The application has no password credential with keyId '{key_id}'."),
            ));
        }
        Ok((StatusCode::NO_CONTENT, Value::Null))
    }

    /// Whether the caller is the app itself (which needs no permission to roll its own keys).
    fn is_the_app(&self, app: &App) -> bool {
        self.caller.app_id == app.client_id
    }

    /// `POST /applications/{id}/addKey` {keyCredential, passwordCredential, proof}.
    fn add_key(&mut self, app: &App, body: &[u8]) -> Written {
        if !self.is_the_app(app) {
            self.authorize(Some(app))?;
        }
        let doc = parse_body(body)?;
        self.verify_proof(app, doc.get("proof"))?;
        let kc = doc
            .get("keyCredential")
            .filter(|v| v.is_object())
            .ok_or_else(|| invalid_value("keyCredential", "KeyCredential", "It is required."))?;
        if doc.get("passwordCredential").is_some_and(|p| !p.is_null()) {
            return Err(invalid_value(
                "passwordCredential",
                "KeyCredential",
                "entra-sim supports AsymmetricX509Cert keys only, which take no password: send null.",
            ));
        }
        let key = new_certificate(kc)?;
        if app.certificates.iter().any(|c| c.key_id == key.key_id) {
            return Err(invalid_value(
                "keyId",
                "KeyCredential",
                "The application already has a key credential with this keyId.",
            ));
        }
        let shown = key_json(&key, false, None).unwrap_or(Value::Null);
        self.st.add_certificate(app.client_id, key);
        let mut body = json!({"@odata.context": self.context("microsoft.graph.keyCredential")});
        if let (Some(out), Value::Object(fields)) = (body.as_object_mut(), shown) {
            out.extend(fields);
        }
        Ok((StatusCode::OK, body))
    }

    /// `POST /applications/{id}/removeKey` {keyId, proof}.
    fn remove_key(&mut self, app: &App, body: &[u8]) -> Written {
        if !self.is_the_app(app) {
            self.authorize(Some(app))?;
        }
        let doc = parse_body(body)?;
        self.verify_proof(app, doc.get("proof"))?;
        let key_id = key_id_of(&doc, "KeyCredential")?;
        if !self.st.remove_certificate(app.client_id, key_id) {
            return Err(invalid_value(
                "keyId",
                "KeyCredential",
                &format!("The application has no key credential with keyId '{key_id}'."),
            ));
        }
        Ok((StatusCode::NO_CONTENT, Value::Null))
    }

    /// Checks the proof of possession of `addKey` / `removeKey`: a JWT signed with one of the
    /// app's currently valid certificates, for `aud` 00000002-…, issued by the application's object
    /// ID, valid now and for at most 10 minutes.
    fn verify_proof(&self, app: &App, proof: Option<&Value>) -> Result<(), GraphError> {
        let fail = |why: &str| {
            invalid_value(
                "proof",
                "KeyCredential",
                &format!("The proof of possession is not valid: {why}"),
            )
        };
        let proof = proof
            .and_then(Value::as_str)
            .ok_or_else(|| fail("it is missing."))?;
        let now = self.st.now();
        let current: Vec<CertInfo> = self
            .st
            .certificates_of(app)
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| c.not_before <= now && now < c.not_after)
            .collect();
        if current.is_empty() {
            return Err(fail(
                "the application has no valid certificate to prove possession of; update its keyCredentials (PATCH) instead.",
            ));
        }
        let header = jsonwebtoken::decode_header(proof).map_err(|_| fail("it is not a JWT."))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
            return Err(fail("it must be signed with RS256 or PS256."));
        }
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = current
            .iter()
            .find_map(|c| {
                let key = DecodingKey::from_rsa_der(&c.rsa_public_pkcs1);
                jsonwebtoken::decode::<Value>(proof, &key, &validation).ok()
            })
            .map(|d| d.claims)
            .ok_or_else(|| fail("it is not signed by a current certificate of the application."))?;
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => a == PROOF_AUDIENCE,
            Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(PROOF_AUDIENCE)),
            _ => false,
        };
        if !aud_ok {
            return Err(fail(
                "its aud must be 00000002-0000-0000-c000-000000000000.",
            ));
        }
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !iss.eq_ignore_ascii_case(&object_id(app).to_string()) {
            return Err(fail("its iss must be the application's object id."));
        }
        let skew = self.st.settings.assertion_clock_skew_secs;
        let t = now.unix_timestamp();
        let nbf = claims
            .get("nbf")
            .and_then(Value::as_i64)
            .unwrap_or(i64::MAX);
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .unwrap_or(i64::MIN);
        if nbf > t + skew || exp <= t - skew || exp - nbf > 600 + skew {
            return Err(fail(
                "it must be valid now (nbf, exp) and for at most 10 minutes.",
            ));
        }
        Ok(())
    }

    /// `POST /servicePrincipals` {appId}: the app's service principal in the caller's tenant.
    fn create_sp(&mut self, body: &[u8]) -> Written {
        self.may_write_at_all()?;
        let doc = parse_body(body)?;
        let text = doc.get("appId").and_then(Value::as_str).unwrap_or_default();
        let t = self.caller.tenant;
        let tenant_id = self.st.tenants[t].id;
        let app = Uuid::parse_str(text)
            .ok()
            .and_then(|id| self.st.app(id).cloned())
            .filter(|a| self.st.app_usable_in(a.client_id, tenant_id))
            .ok_or_else(|| {
                GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    format!(
                        "The appId '{text}' of the service principal does not reference a valid application object."
                    ),
                )
            })?;
        self.authorize(Some(&app))?;
        let Some(sp_id) = self.st.create_service_principal(t, app.client_id) else {
            return Err(GraphError::new(
                StatusCode::CONFLICT,
                "Request_MultipleObjectsWithSameKeyValue",
                format!(
                    "The service principal cannot be created, updated, or restored because the service principal name {} is already in use.",
                    app.client_id
                ),
            ));
        };
        let view = self.view();
        let sp = view.st.tenants[t]
            .service_principals
            .iter()
            .find(|s| s.id == sp_id)
            .ok_or_else(|| GraphError::not_found(&sp_id.to_string()))?;
        let body = view.with_context(view.sp_json(sp), "servicePrincipals/$entity");
        Ok((StatusCode::CREATED, body))
    }
}

/// The `platform` object of `web` / `publicClient`: its `redirectUris` when given (other
/// properties of the platform are not stored and must be empty).
fn platform<'v>(value: &'v Value, name: &str) -> Result<Option<&'v Value>, GraphError> {
    match value {
        Value::Null => Ok(None),
        Value::Object(o) => {
            if let Some((k, _)) = o
                .iter()
                .find(|(k, v)| k.as_str() != "redirectUris" && !is_empty_value(v))
            {
                return Err(GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    format!(
                        "Property '{name}.{k}' is not supported by entra-sim: it stores {name}.redirectUris only."
                    ),
                ));
            }
            Ok(o.get("redirectUris"))
        }
        _ => Err(invalid_value(name, "Application", "It must be an object.")),
    }
}

/// Checks redirect URIs: absolute, without a fragment; a web one uses https, or http on a loopback
/// host (Microsoft's rule for web redirect URIs).
fn redirect_uris(value: &Value, property: &str, web: bool) -> Result<Vec<String>, GraphError> {
    let bad = |why: String| invalid_value(property, "Application", &why);
    let list = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => return Err(bad("It must be an array of URIs.".into())),
    };
    let mut out = Vec::new();
    for v in list {
        let text = v
            .as_str()
            .ok_or_else(|| bad("Each entry must be a string.".into()))?;
        let url =
            url::Url::parse(text).map_err(|_| bad(format!("'{text}' is not an absolute URI.")))?;
        if url.fragment().is_some() {
            return Err(bad(format!("'{text}' must not contain a fragment.")));
        }
        let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if web && !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
            return Err(bad(format!(
                "'{text}' must use https (http is allowed for localhost only)."
            )));
        }
        if !out.iter().any(|o: &String| o == text) {
            out.push(text.to_owned());
        }
    }
    Ok(out)
}

/// `keyCredentials` of a create or update: the new collection. An entry with a `key` adds that
/// certificate; an entry with only the `keyId` of a current certificate keeps it.
fn key_credentials(app: &App, value: &Value) -> Result<Vec<KeyCredential>, GraphError> {
    let list = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => {
            return Err(invalid_value(
                "keyCredentials",
                "Application",
                "It must be an array.",
            ));
        }
    };
    let mut out: Vec<KeyCredential> = Vec::new();
    for entry in list {
        let has_key = entry.get("key").is_some_and(|k| !k.is_null());
        let key = if has_key {
            new_certificate(entry)?
        } else {
            let id = entry
                .get("keyId")
                .and_then(Value::as_str)
                .unwrap_or_default();
            app.certificates
                .iter()
                .find(|c| c.key_id.to_string().eq_ignore_ascii_case(id))
                .cloned()
                .ok_or_else(|| {
                    invalid_value(
                        "keyCredentials",
                        "Application",
                        "Each key credential needs its key (the base64 DER certificate), or the keyId of a current one.",
                    )
                })?
        };
        if out.iter().any(|k| k.key_id == key.key_id) {
            return Err(invalid_value(
                "keyCredentials",
                "Application",
                "Two key credentials have the same keyId.",
            ));
        }
        out.push(key);
    }
    Ok(out)
}

/// A certificate from a keyCredential object: `type` AsymmetricX509Cert, `usage` Verify, `key` the
/// base64 DER certificate (public part only).
fn new_certificate(kc: &Value) -> Result<KeyCredential, GraphError> {
    let bad = |why: &str| invalid_value("keyCredentials", "Application", why);
    let kind = kc.get("type").and_then(Value::as_str).unwrap_or_default();
    let usage = kc.get("usage").and_then(Value::as_str).unwrap_or_default();
    if kind != "AsymmetricX509Cert" || usage != "Verify" {
        return Err(bad(
            "entra-sim stores certificates only: type AsymmetricX509Cert with usage Verify.",
        ));
    }
    let key = kc.get("key").and_then(Value::as_str).unwrap_or_default();
    let info = CertInfo::parse(key).map_err(|e| {
        bad(&format!(
            "The key is not a base64 DER X.509 certificate ({e})."
        ))
    })?;
    let key_id = match kc.get("keyId").and_then(Value::as_str) {
        Some(id) => Uuid::parse_str(id).map_err(|_| bad("The keyId must be a GUID."))?,
        None => Uuid::new_v4(),
    };
    Ok(KeyCredential {
        key_id,
        display_name: Some(
            kc.get("displayName")
                .and_then(Value::as_str)
                .map_or_else(|| info.subject.clone(), str::to_owned),
        ),
        certificate: key.to_owned(),
    })
}

fn key_id_of(doc: &Map<String, Value>, resource: &str) -> Result<Uuid, GraphError> {
    doc.get("keyId")
        .and_then(Value::as_str)
        .and_then(|k| Uuid::parse_str(k).ok())
        .ok_or_else(|| invalid_value("keyId", resource, "It is required, as a GUID."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_redirect_uris_need_https_or_loopback_http() {
        let ok = json!([
            "https://consentry.example/oauth/callback",
            "http://127.0.0.1:8080/oauth/callback"
        ]);
        assert_eq!(
            redirect_uris(&ok, "web.redirectUris", true).unwrap().len(),
            2
        );
        for bad in [
            "http://consentry.example/cb",
            "not a uri",
            "https://x.example/cb#frag",
        ] {
            let e = redirect_uris(&json!([bad]), "web.redirectUris", true).unwrap_err();
            assert!(
                e.message().contains("web.redirectUris"),
                "{bad}: {}",
                e.message()
            );
        }
        // A public client may use custom schemes.
        assert!(
            redirect_uris(&json!(["myapp://auth"]), "publicClient.redirectUris", false).is_ok()
        );
    }

    #[test]
    fn empty_values_are_recognised() {
        assert!(is_empty_value(
            &json!({"homePageUrl": null, "implicitGrantSettings": {"enableIdTokenIssuance": false}})
        ));
        assert!(!is_empty_value(
            &json!({"homePageUrl": "https://x.example"})
        ));
        assert!(!is_empty_value(&json!(2)));
    }
}
