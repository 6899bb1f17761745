//! Looking registrations up in the vendor's tenant ([`find`]) and carrying a plan out through Graph
//! with the operator's token ([`apply_one`]), one registration at a time so the caller can write each
//! one's settings (and its new secret) before the next.

use std::path::Path;
use std::time::Duration;

use consentry_entra::applications::{Application, ApplicationFilter, KeyCredentialWrite};
use consentry_entra::{
    ClientCredential, EntraClient, EntraError, GRAPH_DEFAULT_SCOPE, GraphErrorKind, RetryPolicy,
    with_retry,
};
use secrecy::{ExposeSecret as _, SecretString};
use time::OffsetDateTime;

use crate::config_file::{ConfigFileError, CredentialFiles, secrets_dir, write_secret_file};
use crate::manifest::{Manifest, Registration};
use crate::plan::{Action, Found, Lookup, PlannedRegistration};

/// Which credential a registration gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialChoice {
    /// A client secret valid for `days`.
    Secret {
        /// Days of validity.
        days: u32,
    },
    /// A self-signed certificate (as `consentry cert new` makes) valid for `years`.
    Certificate {
        /// Years of validity.
        years: u32,
    },
}

/// A credential just added to a registration.
pub enum NewCredential {
    /// A client secret.
    Secret {
        /// Its `keyId`.
        key_id: Option<String>,
        /// Its value.
        secret: SecretString,
    },
    /// A certificate with its private key.
    Certificate {
        /// The .pfx.
        pfx: Vec<u8>,
        /// Its password.
        password: SecretString,
        /// SHA-1 thumbprint, as Entra shows it.
        thumbprint: String,
    },
}

impl std::fmt::Debug for NewCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret { key_id, .. } => f
                .debug_struct("NewCredential::Secret")
                .field("key_id", key_id)
                .finish_non_exhaustive(),
            Self::Certificate { thumbprint, .. } => f
                .debug_struct("NewCredential::Certificate")
                .field("thumbprint", thumbprint)
                .finish_non_exhaustive(),
        }
    }
}

impl NewCredential {
    /// The credential as the token endpoint takes it.
    pub fn client_credential(&self) -> Result<ClientCredential, ApplyError> {
        Ok(match self {
            Self::Secret { secret, .. } => ClientCredential::Secret(secret.clone()),
            Self::Certificate { pfx, password, .. } => ClientCredential::certificate(
                consentry_certs::ClientCertificate::from_pfx(
                    pfx,
                    password.expose_secret(),
                    OffsetDateTime::now_utc(),
                )
                .map_err(|e| ApplyError::Other(format!("the new certificate: {e}")))?,
            ),
        })
    }
}

/// What applying one registration's plan did.
#[derive(Debug)]
pub struct Applied {
    /// Which registration.
    pub registration: Registration,
    /// Its client ID.
    pub app_id: String,
    /// The credential added, if one was.
    pub credential: Option<NewCredential>,
    /// What was done, for people.
    pub done: Vec<String>,
}

/// Why a lookup or a change failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Graph or the identity platform refused or failed.
    #[error("{0}")]
    Entra(String),
    /// A secret file could not be written.
    #[error(transparent)]
    File(#[from] ConfigFileError),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// What a Graph failure means for the operator: a refusal names the role the account needs.
pub fn explain(e: &EntraError, tenant: &str) -> String {
    match e {
        EntraError::Graph(g) if g.kind == GraphErrorKind::AccessDenied || g.status == 403 => {
            format!(
                "Microsoft Graph refused ({} {}: {}): the signed-in account may not create or change app \
             registrations in the vendor's tenant {tenant}. Sign in with an account holding the \
             Application Administrator or Cloud Application Administrator role (or Global \
             Administrator) in that tenant",
                g.status, g.code, g.message
            )
        }
        other => other.to_string(),
    }
}

fn entra(tenant: &str) -> impl Fn(EntraError) -> ApplyError + '_ {
    move |e| ApplyError::Entra(explain(&e, tenant))
}

/// Whether `credential` is one of `app`'s (secret: by Graph's 3-character hint; certificate: by
/// thumbprint or DER).
pub fn credential_on_app(app: &Application, credential: &ClientCredential) -> bool {
    match credential {
        ClientCredential::Secret(s) => {
            let hint: String = s.expose_secret().chars().take(3).collect();
            app.password_credentials
                .iter()
                .any(|p| p.hint.as_deref() == Some(hint.as_str()))
        }
        ClientCredential::Certificate { certificate, .. } => {
            app.key_credentials.iter().any(|k| k.matches(certificate))
        }
    }
}

/// Whether `credential` gets a client-credentials token for `app_id` in `tenant`: `Ok(false)` when the
/// identity platform refuses it, an error when it fails transiently (never evidence either way).
pub async fn credential_works(
    client: &EntraClient,
    tenant: &str,
    app_id: &str,
    credential: &ClientCredential,
) -> Result<bool, EntraError> {
    match with_retry(&RetryPolicy::default(), || {
        client.client_credentials(tenant, app_id, credential, GRAPH_DEFAULT_SCOPE)
    })
    .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.is_transient() => Err(e),
        Err(EntraError::Identity(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Looks one registration up in the vendor's tenant: by the client ID the configuration names, else by
/// display name; whether its service principal exists there; whether the configured credential works
/// (when the service principal is missing, no token can prove it: then whether it is on the app).
pub async fn find(
    client: &EntraClient,
    token: &SecretString,
    tenant: &str,
    manifest: &Manifest,
    configured: Option<(&str, Option<&ClientCredential>)>,
) -> Result<Found, ApplyError> {
    let lookup = match configured {
        Some((app_id, _)) => {
            let apps = client
                .applications_where(token, &ApplicationFilter::AppId(app_id.to_owned()))
                .await
                .map_err(entra(tenant))?;
            Lookup::ConfiguredAppId(app_id.to_owned(), apps.into_iter().next().map(Box::new))
        }
        None => Lookup::DisplayName(
            client
                .applications_where(
                    token,
                    &ApplicationFilter::DisplayName(manifest.display_name().to_owned()),
                )
                .await
                .map_err(entra(tenant))?,
        ),
    };
    let app = match &lookup {
        Lookup::ConfiguredAppId(_, Some(app)) => Some(app.as_ref()),
        Lookup::DisplayName(apps) if apps.len() == 1 => apps.first(),
        _ => None,
    };
    let mut found = Found {
        lookup: lookup.clone(),
        service_principal: false,
        credential_works: false,
    };
    let Some(app) = app else {
        return Ok(found);
    };
    found.service_principal = client
        .service_principal_by_app_id(token, &app.app_id)
        .await
        .map_err(entra(tenant))?
        .is_some();
    // A credential in the configuration counts only for the registration it names.
    if let Some((app_id, Some(credential))) = configured
        && app_id.eq_ignore_ascii_case(&app.app_id)
    {
        found.credential_works = if found.service_principal {
            credential_works(client, tenant, app_id, credential)
                .await
                .map_err(entra(tenant))?
        } else {
            credential_on_app(app, credential)
        };
    }
    Ok(found)
}

fn random_password() -> String {
    use base64::Engine as _;
    let bytes: [u8; 24] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Adds a credential of kind `choice` to the registration `object_id` (keeping its other
/// certificates).
pub async fn add_credential(
    client: &EntraClient,
    token: &SecretString,
    tenant: &str,
    object_id: &str,
    display_name: &str,
    choice: CredentialChoice,
    reuse_password: Option<SecretString>,
) -> Result<NewCredential, ApplyError> {
    let now = OffsetDateTime::now_utc();
    match choice {
        CredentialChoice::Secret { days } => {
            let p = client
                .add_password(
                    token,
                    object_id,
                    &format!("consentry {}", now.date()),
                    now + time::Duration::days(i64::from(days)),
                )
                .await
                .map_err(entra(tenant))?;
            Ok(NewCredential::Secret {
                key_id: p.key_id,
                secret: p.secret_text,
            })
        }
        CredentialChoice::Certificate { years } => {
            let password = reuse_password.unwrap_or_else(|| SecretString::from(random_password()));
            let subject: String = display_name.chars().take(60).collect();
            let pair = consentry_certs::generate_self_signed(
                &subject,
                years,
                password.expose_secret(),
                now,
            )
            .map_err(|e| ApplyError::Other(format!("cannot make a certificate: {e}")))?;
            let app = client
                .application(token, object_id)
                .await
                .map_err(entra(tenant))?;
            let mut keys = app
                .key_credentials
                .iter()
                .map(KeyCredentialWrite::existing)
                .collect::<Result<Vec<_>, _>>()
                .map_err(entra(tenant))?;
            keys.push(KeyCredentialWrite::certificate(
                &pair.cer_der,
                &format!("CN={subject}"),
            ));
            client
                .set_key_credentials(token, object_id, &keys)
                .await
                .map_err(entra(tenant))?;
            Ok(NewCredential::Certificate {
                pfx: pair.pfx,
                password,
                thumbprint: pair.sha1_thumbprint.to_string(),
            })
        }
    }
}

/// Writes a new credential's secret files for `registration` in the secrets directory beside
/// `config_path` (mode 0600): `<name>.secret`, or `<name>.pfx` and `<name>.pfx-password`.
pub fn store_credential(
    config_path: &Path,
    registration: &Registration,
    credential: &NewCredential,
) -> Result<CredentialFiles, ApplyError> {
    let dir = secrets_dir(config_path);
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let stem = registration.file_stem();
    Ok(match credential {
        NewCredential::Secret { secret, .. } => {
            let path = dir.join(format!("{stem}.secret"));
            write_secret_file(&path, secret.expose_secret().as_bytes())?;
            CredentialFiles::Secret(path)
        }
        NewCredential::Certificate { pfx, password, .. } => {
            let pfx_path = dir.join(format!("{stem}.pfx"));
            let password_path = dir.join(format!("{stem}.pfx-password"));
            write_secret_file(&password_path, password.expose_secret().as_bytes())?;
            write_secret_file(&pfx_path, pfx)?;
            CredentialFiles::Certificate {
                pfx: pfx_path,
                password: password_path,
            }
        }
    })
}

/// Carries out one registration's plan. A new registration's service principal is retried for a short
/// while: Graph may not find an application created a moment ago yet (replication; UNVERIFIED how long
/// Microsoft takes).
pub async fn apply_one(
    client: &EntraClient,
    token: &SecretString,
    tenant: &str,
    manifest: &Manifest,
    planned: &PlannedRegistration,
    choice: CredentialChoice,
) -> Result<Applied, ApplyError> {
    let mut app_id = planned.app_id.clone();
    let mut object_id = planned.object_id.clone();
    let mut done = Vec::new();
    let mut credential = None;
    for action in &planned.actions {
        match action {
            Action::Create => {
                let app = client
                    .create_application(token, &manifest.application)
                    .await
                    .map_err(entra(tenant))?;
                done.push(format!("created (client ID {})", app.app_id));
                app_id = Some(app.app_id);
                object_id = Some(app.id);
            }
            Action::Update { changes, patch } => {
                let id = object_id.as_deref().ok_or_else(no_object)?;
                client
                    .update_application(token, id, patch)
                    .await
                    .map_err(entra(tenant))?;
                done.push(format!("updated: {}", changes.join("; ")));
            }
            Action::CreateServicePrincipal => {
                let id = app_id.as_deref().ok_or_else(no_object)?;
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match client.create_service_principal(token, id).await {
                        Ok(_) => break,
                        Err(EntraError::Graph(g))
                            if attempt < 6
                                && matches!(
                                    g.kind,
                                    GraphErrorKind::NotFound | GraphErrorKind::BadRequest
                                ) =>
                        {
                            tokio::time::sleep(Duration::from_secs(2)).await;
                        }
                        Err(e) => return Err(entra(tenant)(e)),
                    }
                }
                done.push("service principal created in the vendor's tenant".into());
            }
            Action::AddCredential => {
                let id = object_id.as_deref().ok_or_else(no_object)?;
                let c = add_credential(
                    client,
                    token,
                    tenant,
                    id,
                    manifest.display_name(),
                    choice,
                    None,
                )
                .await?;
                done.push(match &c {
                    NewCredential::Secret { .. } => "client secret added".to_owned(),
                    NewCredential::Certificate { thumbprint, .. } => {
                        format!("certificate {thumbprint} added")
                    }
                });
                credential = Some(c);
            }
            Action::WriteConfig => {}
        }
    }
    Ok(Applied {
        registration: planned.registration.clone(),
        app_id: app_id.ok_or_else(no_object)?,
        credential,
        done,
    })
}

fn no_object() -> ApplyError {
    ApplyError::Other("the plan names no registration to change (this is a bug)".into())
}
