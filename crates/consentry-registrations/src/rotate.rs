//! Rotating one registration's credential without downtime: add a new secret (or certificate), prove
//! it gets a token in the vendor's tenant, switch the file the configuration names to it (atomically:
//! running servers re-read that file before asking for a new token), wait a grace period, then remove
//! the OLD credential only. A failure before the switch removes the new credential again, leaving
//! everything as it was.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use consentry_certs::ClientCertificate;
use consentry_entra::applications::{Application, ApplicationFilter, KeyCredentialWrite};
use consentry_entra::{ClientCredential, EntraClient};
use secrecy::{ExposeSecret as _, SecretString};

use crate::apply::{
    ApplyError, CredentialChoice, NewCredential, add_credential, credential_works, explain,
};
use crate::config_file::write_secret_file;

/// The credential the configuration holds now, in a file (what rotation switches).
pub enum Current {
    /// `client_secret_file`.
    Secret {
        /// The file.
        file: PathBuf,
        /// Its secret.
        secret: SecretString,
    },
    /// `certificate_file` (+ its password, kept: the new .pfx gets the same one).
    Certificate {
        /// The .pfx file.
        file: PathBuf,
        /// Its password.
        password: SecretString,
        /// The certificate in it.
        certificate: Box<ClientCertificate>,
    },
}

impl std::fmt::Debug for Current {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret { file, .. } => f
                .debug_struct("Current::Secret")
                .field("file", file)
                .finish_non_exhaustive(),
            Self::Certificate { file, .. } => f
                .debug_struct("Current::Certificate")
                .field("file", file)
                .finish_non_exhaustive(),
        }
    }
}

/// How to rotate.
#[derive(Debug, Clone, Copy)]
pub struct RotateOptions {
    /// Time between the switch and the removal of the old credential.
    pub grace: Duration,
    /// How long to keep trying the new credential (Microsoft may take a while to replicate it).
    pub prove_for: Duration,
    /// Validity of the new credential, in days.
    pub validity_days: u32,
}

/// What a rotation did.
#[derive(Debug, Default)]
pub struct Rotated {
    /// The old credential's IDs that were removed.
    pub removed: Vec<String>,
    /// Set when the old credential could not be identified for sure and was left in place: what to do.
    pub left_in_place: Option<String>,
}

/// The old credential's IDs on `app`: password credentials whose hint is the secret's first three
/// characters, or key credentials of the certificate.
fn old_ids(app: &Application, current: &Current) -> Vec<String> {
    match current {
        Current::Secret { secret, .. } => {
            let hint: String = secret.expose_secret().chars().take(3).collect();
            app.password_credentials
                .iter()
                .filter(|p| p.hint.as_deref() == Some(hint.as_str()))
                .filter_map(|p| p.key_id.clone())
                .collect()
        }
        Current::Certificate { certificate, .. } => app
            .key_credentials
            .iter()
            .filter(|k| k.matches(certificate))
            .filter_map(|k| k.key_id.clone())
            .collect(),
    }
}

async fn remove_credentials(
    client: &EntraClient,
    token: &SecretString,
    tenant: &str,
    object_id: &str,
    secrets: bool,
    key_ids: &[String],
) -> Result<(), ApplyError> {
    let entra = |e| ApplyError::Entra(explain(&e, tenant));
    if secrets {
        for id in key_ids {
            client
                .remove_password(token, object_id, id)
                .await
                .map_err(entra)?;
        }
        return Ok(());
    }
    let app = client.application(token, object_id).await.map_err(entra)?;
    let keep = app
        .key_credentials
        .iter()
        .filter(|k| !k.key_id.as_ref().is_some_and(|id| key_ids.contains(id)))
        .map(KeyCredentialWrite::existing)
        .collect::<Result<Vec<_>, _>>()
        .map_err(entra)?;
    client
        .set_key_credentials(token, object_id, &keep)
        .await
        .map_err(entra)
}

/// Rotates the credential of the registration `app_id` in `tenant`, printing each step with `say`.
pub async fn rotate(
    client: &EntraClient,
    token: &SecretString,
    tenant: &str,
    app_id: &str,
    current: &Current,
    options: RotateOptions,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<Rotated, ApplyError> {
    let entra = |e| ApplyError::Entra(explain(&e, tenant));
    let app = client
        .applications_where(token, &ApplicationFilter::AppId(app_id.to_owned()))
        .await
        .map_err(entra)?
        .into_iter()
        .next()
        .ok_or_else(|| {
            ApplyError::Other(format!(
                "the vendor's tenant {tenant} holds no registration with client ID {app_id}: check client_id and vendor_tenant"
            ))
        })?;
    let display_name = app
        .display_name
        .clone()
        .unwrap_or_else(|| app_id.to_owned());
    let old = old_ids(&app, current);
    let is_secret = matches!(current, Current::Secret { .. });
    // The old credential's IDs are taken before the new one is added, so the new one can never be
    // among them (a new secret may share the old one's first three characters).
    let before: Vec<String> = if is_secret {
        app.password_credentials
            .iter()
            .filter_map(|p| p.key_id.clone())
            .collect()
    } else {
        app.key_credentials
            .iter()
            .filter_map(|k| k.key_id.clone())
            .collect()
    };

    // 1. Add.
    let (choice, reuse) = match current {
        Current::Secret { .. } => (
            CredentialChoice::Secret {
                days: options.validity_days,
            },
            None,
        ),
        Current::Certificate { password, .. } => (
            CredentialChoice::Certificate {
                years: options.validity_days.div_ceil(365).max(1),
            },
            Some(password.clone()),
        ),
    };
    let new = add_credential(client, token, tenant, &app.id, &display_name, choice, reuse).await?;
    let new_ids: Vec<String> = match &new {
        NewCredential::Secret { key_id, .. } => key_id.iter().cloned().collect(),
        NewCredential::Certificate { .. } => client
            .application(token, &app.id)
            .await
            .map_err(entra)?
            .key_credentials
            .iter()
            .filter_map(|k| k.key_id.clone())
            .filter(|id| !before.contains(id))
            .collect(),
    };
    say(match &new {
        NewCredential::Secret { key_id, .. } => format!(
            "1. added a new client secret (key ID {}) to \"{display_name}\"",
            key_id.as_deref().unwrap_or("?")
        ),
        NewCredential::Certificate { thumbprint, .. } => {
            format!("1. added a new certificate (SHA-1 {thumbprint}) to \"{display_name}\"")
        }
    });

    // 2. Prove, 3. switch: on failure, take the new credential off again.
    let switched = async {
        let credential: ClientCredential = new.client_credential()?;
        let started = Instant::now();
        loop {
            match credential_works(client, tenant, app_id, &credential).await {
                Ok(true) => break,
                Ok(false) | Err(_) if started.elapsed() < options.prove_for => {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Ok(false) => {
                    return Err(ApplyError::Other(format!(
                        "the new credential got no token in {tenant} within {} s",
                        options.prove_for.as_secs()
                    )));
                }
                Err(e) => return Err(entra(e)),
            }
        }
        say(format!(
            "2. the new credential gets a token (client credentials in {tenant})"
        ));
        match (&new, current) {
            (NewCredential::Secret { secret, .. }, Current::Secret { file, .. }) => {
                write_secret_file(file, secret.expose_secret().as_bytes())?;
                say(format!(
                    "3. switched: {} now holds the new secret",
                    file.display()
                ));
            }
            (NewCredential::Certificate { pfx, .. }, Current::Certificate { file, .. }) => {
                write_secret_file(file, pfx)?;
                say(format!(
                    "3. switched: {} now holds the new certificate (same password)",
                    file.display()
                ));
            }
            _ => {
                return Err(ApplyError::Other(
                    "credential kinds differ (this is a bug)".into(),
                ));
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = switched {
        let undo = remove_credentials(client, token, tenant, &app.id, is_secret, &new_ids).await;
        return Err(match undo {
            Ok(()) => ApplyError::Other(format!(
                "{e}; the new credential was removed again and the configuration is unchanged"
            )),
            Err(u) => ApplyError::Other(format!(
                "{e}; removing the new credential again failed too ({u}): remove key ID(s) {} of \"{display_name}\" by hand; the configuration is unchanged",
                new_ids.join(", ")
            )),
        });
    }

    // 4. Grace, 5. remove the old one.
    if !options.grace.is_zero() {
        say(format!(
            "4. waiting {} s so every running server picks the new credential up",
            options.grace.as_secs()
        ));
        tokio::time::sleep(options.grace).await;
    }
    let mut rotated = Rotated::default();
    let old: Vec<String> = old.into_iter().filter(|id| !new_ids.contains(id)).collect();
    match old.len() {
        0 => {
            let what = "the old credential is not on the registration any more; nothing to remove";
            say(format!("5. {what}"));
        }
        1 => {
            remove_credentials(client, token, tenant, &app.id, is_secret, &old).await?;
            say(format!("5. removed the old credential (key ID {})", old[0]));
            rotated.removed = old;
        }
        _ => {
            let what = format!(
                "several credentials of \"{display_name}\" match the old one (key IDs {}); none was removed: \
                 remove the old one by hand (Entra admin center > App registrations > Certificates & secrets), \
                 keeping the new one (key ID {})",
                old.join(", "),
                new_ids.join(", ")
            );
            say(format!("5. {what}"));
            rotated.left_in_place = Some(what);
        }
    }
    Ok(rotated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use consentry_entra::applications::PasswordCredential;

    fn password(key_id: &str, hint: &str) -> PasswordCredential {
        PasswordCredential {
            key_id: Some(key_id.into()),
            display_name: None,
            hint: Some(hint.into()),
            start_date_time: None,
            end_date_time: None,
        }
    }

    fn app(passwords: Vec<PasswordCredential>) -> Application {
        Application {
            id: "11111111-1111-4111-8111-111111111111".into(),
            app_id: "22222222-2222-4222-8222-222222222222".into(),
            display_name: None,
            sign_in_audience: None,
            web: None,
            is_fallback_public_client: None,
            required_resource_access: Vec::new(),
            password_credentials: passwords,
            key_credentials: Vec::new(),
        }
    }

    fn secret(value: &str) -> Current {
        Current::Secret {
            file: PathBuf::from("/nonexistent"),
            secret: SecretString::from(value.to_owned()),
        }
    }

    #[test]
    fn the_old_secret_is_found_by_its_hint_and_several_matches_are_all_reported() {
        let a = app(vec![password("k1", "abc"), password("k2", "xyz")]);
        assert_eq!(old_ids(&a, &secret("abcdef")), ["k1"]);
        assert!(old_ids(&a, &secret("qrs123")).is_empty());
        let a = app(vec![password("k1", "abc"), password("k2", "abc")]);
        assert_eq!(old_ids(&a, &secret("abc999")), ["k1", "k2"]);
    }
}
