//! Saving and resuming the simulator's state, so that a demo survives a restart: the directory
//! (consents, service principals, user changes), refresh tokens, the clock offset, fault rules and
//! the TEST-ONLY signing key. Opt-in with [`SimOptions::persist`](crate::SimOptions::persist); the
//! file is `state.json` in the state directory. A saved state is resumed only for the same scenario.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;

use crate::crypto::SigningKey;
use crate::faults::FaultRule;
use crate::model::{App, ResourceApi, Settings, Tenant};
use crate::scenario::Scenario;
use crate::state::{RefreshGrant, State};

const VERSION: u32 = 1;
/// File name of the saved state inside the state directory.
pub(crate) const FILE: &str = "state.json";

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    scenario_fingerprint: String,
    clock_offset_secs: i64,
    signing_key_pem: String,
    signing_cert_der: String,
    settings: Settings,
    tenants: Value,
    apps: Value,
    /// Owners of app registrations made through Graph (absent in files saved before them).
    #[serde(default)]
    app_owners: HashMap<uuid::Uuid, Vec<uuid::Uuid>>,
    /// Certificate end dates set by the control API (RFC 3339, by keyId).
    #[serde(default)]
    certificate_end_dates: HashMap<uuid::Uuid, String>,
    resources: Vec<ResourceApi>,
    refresh_tokens: HashMap<String, RefreshGrant>,
    faults: Vec<FaultRule>,
}

/// Identifies a scenario: a saved state is resumed only for the scenario it came from.
pub(crate) fn fingerprint(scenario: &Scenario) -> String {
    let text = serde_json::to_string(scenario).unwrap_or_default();
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The state as JSON, secrets included (the file holds demo values and a TEST-ONLY key).
pub(crate) fn to_json(st: &State, key: &SigningKey, fingerprint: &str) -> String {
    let mut tenants = serde_json::to_value(&st.tenants).unwrap_or_default();
    for (t, tenant) in st.tenants.iter().enumerate() {
        for (u, user) in tenant.users.iter().enumerate() {
            let v = &mut tenants[t]["users"][u];
            v["password"] = Value::from(user.password.expose_secret());
            v["mfa_code"] = user
                .mfa_code
                .as_ref()
                .map_or(Value::Null, |c| Value::from(c.expose_secret()));
        }
    }
    let mut apps = serde_json::to_value(&st.apps).unwrap_or_default();
    for (a, app) in st.apps.iter().enumerate() {
        for (s, secret) in app.secrets.iter().enumerate() {
            apps[a]["secrets"][s]["value"] = Value::from(secret.value.expose_secret());
        }
    }
    let snapshot = Snapshot {
        version: VERSION,
        scenario_fingerprint: fingerprint.to_owned(),
        clock_offset_secs: st.clock_offset.whole_seconds(),
        signing_key_pem: key.key_pem().expose_secret().to_owned(),
        signing_cert_der: STANDARD.encode(&key.cert_der),
        settings: st.settings.clone(),
        tenants,
        apps,
        app_owners: st.app_owners.clone(),
        certificate_end_dates: st
            .certificate_end_dates
            .iter()
            .map(|(k, t)| {
                let text = t
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                (*k, text)
            })
            .collect(),
        resources: st.resources.clone(),
        refresh_tokens: st.refresh_tokens.clone(),
        faults: st.faults.clone(),
    };
    serde_json::to_string_pretty(&snapshot).unwrap_or_default()
}

/// Loads a saved state for `fingerprint`; `None` when there is none, it is for another scenario, or
/// it cannot be read (the reason is logged and the simulator starts fresh).
pub(crate) fn load(dir: &Path, fingerprint: &str, base: &str) -> Option<(State, SigningKey)> {
    let path = dir.join(FILE);
    let text = std::fs::read_to_string(&path).ok()?;
    let parsed = (|| -> Result<(State, SigningKey), String> {
        let snap: Snapshot = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        if snap.version != VERSION {
            return Err(format!("version {} is not {VERSION}", snap.version));
        }
        if snap.scenario_fingerprint != fingerprint {
            return Err("it was saved for another scenario".into());
        }
        let tenants: Vec<Tenant> =
            serde_json::from_value(snap.tenants).map_err(|e| e.to_string())?;
        let apps: Vec<App> = serde_json::from_value(snap.apps).map_err(|e| e.to_string())?;
        let der = STANDARD
            .decode(snap.signing_cert_der)
            .map_err(|e| e.to_string())?;
        let key = SigningKey::from_parts(SecretString::from(snap.signing_key_pem), der)
            .map_err(|e| e.to_string())?;
        let state = State::resume(
            base,
            snap.settings,
            tenants,
            apps,
            snap.app_owners,
            snap.certificate_end_dates
                .iter()
                .filter_map(|(k, t)| {
                    let at = time::OffsetDateTime::parse(
                        t,
                        &time::format_description::well_known::Rfc3339,
                    );
                    at.ok().map(|at| (*k, at))
                })
                .collect(),
            snap.resources,
            time::Duration::seconds(snap.clock_offset_secs),
            snap.refresh_tokens,
            snap.faults,
        );
        Ok((state, key))
    })();
    match parsed {
        Ok(v) => {
            tracing::info!(path = %path.display(), "resuming the saved simulator state");
            Some(v)
        }
        Err(reason) => {
            tracing::warn!(path = %path.display(), %reason, "not resuming the saved simulator state; starting from the scenario");
            None
        }
    }
}

/// Writes `json` to the state file atomically (temporary file, then rename).
pub(crate) fn write(dir: &Path, json: &str) -> std::io::Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    std::fs::write(&tmp, json)?;
    std::fs::rename(tmp, dir.join(FILE))
}
