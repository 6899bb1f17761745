//! App registrations written through Graph (`POST`/`PATCH /applications`, `addPassword`,
//! `addKey`, `POST /servicePrincipals`): the directory side of `graph::applications`, which checks
//! the caller and the request before it calls these.

use rand::Rng;
use secrecy::SecretString;
use time::OffsetDateTime;
use uuid::Uuid;

use super::State;
use crate::crypto::CertInfo;
use crate::model::{App, ClientSecret, KeyCredential};

/// Characters of a generated client secret (Microsoft's secrets use letters, digits and `.~_-`).
const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.~_-";

/// A new client secret value: 40 characters, the shape of Microsoft's current secrets (three
/// characters, `8Q~`, then 34 more; Graph documents 16 to 64 characters). The first three
/// characters are the `hint`.
pub(crate) fn generate_secret() -> String {
    let mut rng = rand::rng();
    let mut pick = |n: usize, alnum_only: bool| -> String {
        let pool = if alnum_only {
            &SECRET_CHARS[..62]
        } else {
            SECRET_CHARS
        };
        (0..n)
            .map(|_| pool[rng.random_range(0..pool.len())] as char)
            .collect()
    };
    let head = pick(3, true);
    let tail = pick(34, false);
    format!("{head}8Q~{tail}")
}

impl State {
    /// Index of the app registration with `client_id`.
    pub fn app_index(&self, client_id: Uuid) -> Option<usize> {
        self.apps.iter().position(|a| a.client_id == client_id)
    }

    /// The app's certificates that parse, by keyId, each ending at its own `notAfter` or at the
    /// earlier end date the control API set (a certificate close to expiry).
    pub fn certificates_of(&self, app: &App) -> Vec<(Uuid, CertInfo)> {
        app.certificates
            .iter()
            .filter_map(|c| {
                let mut info = CertInfo::parse(&c.certificate).ok()?;
                if let Some(end) = self.certificate_end_dates.get(&c.key_id) {
                    info.not_after = info.not_after.min(*end);
                }
                Some((c.key_id, info))
            })
            .collect()
    }

    /// The owners (user or service principal object IDs) of an app registration.
    pub fn owners_of(&self, client_id: Uuid) -> &[Uuid] {
        self.app_owners
            .get(&client_id)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Adds a new app registration (already checked by the caller), owned by `owner`. No service
    /// principal is created: Graph creates one only with `POST /servicePrincipals` (or consent).
    pub fn register_app(&mut self, app: App, owner: Option<Uuid>) {
        if let Some(owner) = owner {
            self.app_owners
                .entry(app.client_id)
                .or_default()
                .push(owner);
        }
        self.apps.push(app);
    }

    /// Replaces an app registration with its updated version (`PATCH`, already checked). Its
    /// service principals keep their display names (each tenant's enterprise app is its own object).
    pub fn update_app(&mut self, app: App) {
        if let Some(a) = self.app_index(app.client_id) {
            self.apps[a] = app;
        }
    }

    /// Adds a generated client secret to the app and returns it (the only time its value is
    /// shown). `None` when the app does not exist.
    pub fn add_secret(
        &mut self,
        client_id: Uuid,
        display_name: Option<String>,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Option<ClientSecret> {
        let a = self.app_index(client_id)?;
        let secret = ClientSecret {
            key_id: Uuid::new_v4(),
            value: SecretString::from(generate_secret()),
            end_date_time: end,
            display_name,
            start_date_time: Some(start),
        };
        self.apps[a].secrets.push(secret.clone());
        Some(secret)
    }

    /// Removes the app's client secret `key_id`; whether there was one.
    pub fn remove_secret(&mut self, client_id: Uuid, key_id: Uuid) -> bool {
        let Some(a) = self.app_index(client_id) else {
            return false;
        };
        let before = self.apps[a].secrets.len();
        self.apps[a].secrets.retain(|s| s.key_id != key_id);
        self.apps[a].secrets.len() != before
    }

    /// Adds a certificate to the app (`addKey`, already checked).
    pub fn add_certificate(&mut self, client_id: Uuid, key: KeyCredential) {
        if let Some(a) = self.app_index(client_id) {
            self.apps[a].certificates.push(key);
        }
    }

    /// Removes the app's certificate `key_id`; whether there was one.
    pub fn remove_certificate(&mut self, client_id: Uuid, key_id: Uuid) -> bool {
        let Some(a) = self.app_index(client_id) else {
            return false;
        };
        let before = self.apps[a].certificates.len();
        self.apps[a].certificates.retain(|c| c.key_id != key_id);
        self.apps[a].certificates.len() != before
    }

    /// Creates the app's service principal in tenant `t` (`POST /servicePrincipals`); `None` when
    /// it already has one there.
    pub fn create_service_principal(&mut self, t: usize, client_id: Uuid) -> Option<Uuid> {
        if self.sp(t, client_id).is_some() {
            return None;
        }
        Some(self.ensure_sp(t, client_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_have_microsofts_shape_and_differ() {
        let a = generate_secret();
        let b = generate_secret();
        assert_eq!(a.len(), 40);
        assert_eq!(&a[3..6], "8Q~");
        assert!(a[..3].chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }
}
