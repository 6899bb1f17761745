//! The server's watch over the vendor's own credentials ([`VendorCredentialWatch`]): reads every
//! configured registration through the identity-platform port (periodically, and once at start), keeps
//! the latest facts for `/metrics` and the operator's console page, and raises an alert — to its
//! [`VendorCredentialObserver`]s (the operator webhook, the operator email) — when a credential that
//! matters enters attention (30 days or less) or expires: once per credential and stage, claimed in the
//! store ([`VendorAlertStore`](crate::ports::VendorAlertStore)), so neither a restart nor another
//! replica raises it again. A registration that could not be read is "unknown" and raises nothing.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::access::{Action, Caller};
use crate::error::DomainError;
use crate::ids::AppId;
use crate::platform::IdentityPlatform;
use crate::ports::VendorCredentialAlert;
use crate::service::Consentry;
use crate::vendor_credentials::{CredentialFact, Expiry, VendorAppFacts, facts};

/// The latest reading of every vendor registration.
#[derive(Debug, Clone)]
pub struct VendorSnapshot {
    /// When it was read.
    pub read_at: OffsetDateTime,
    /// Each registration's facts.
    pub apps: Vec<VendorAppFacts>,
}

impl VendorSnapshot {
    /// Every credential fact.
    pub fn credentials(&self) -> impl Iterator<Item = &CredentialFact> {
        self.apps.iter().flat_map(|a| a.credentials.iter())
    }

    /// Credentials that matter and need attention or expired.
    pub fn needing_attention(&self) -> usize {
        self.credentials().filter(|c| c.alerting()).count()
    }
}

/// An alert about a vendor credential, as observers get it.
#[derive(Debug, Clone, Serialize)]
pub struct VendorCredentialEvent {
    /// The credential.
    pub credential: CredentialFact,
    /// The registration's application (client) ID.
    pub client_id: AppId,
    /// The stage entered: attention or expired.
    pub stage: Expiry,
    /// What to run.
    pub rotate_command: String,
    /// When it was raised.
    #[serde(with = "time::serde::rfc3339")]
    pub raised_at: OffsetDateTime,
}

/// Told of each alert once (the operator webhook, the operator email).
#[async_trait]
pub trait VendorCredentialObserver: Send + Sync + std::fmt::Debug {
    /// An alert was raised (by this process: no other raises the same one).
    async fn vendor_credential_alert(&self, event: &VendorCredentialEvent);
}

/// Reads the vendor's registrations, keeps the latest facts and raises expiry alerts.
#[derive(Debug, Clone)]
pub struct VendorCredentialWatch {
    core: Consentry,
    platform: Arc<dyn IdentityPlatform>,
    public_url: String,
    worker: String,
    observers: Vec<Arc<dyn VendorCredentialObserver>>,
    latest: Arc<RwLock<Option<VendorSnapshot>>>,
}

impl VendorCredentialWatch {
    /// A watch over the registrations `platform` is configured with; `public_url` gives the redirect
    /// URIs they must carry; `worker` names this process in the alerts it records.
    pub fn new(
        core: Consentry,
        platform: Arc<dyn IdentityPlatform>,
        public_url: &str,
        worker: String,
    ) -> Self {
        Self {
            core,
            platform,
            public_url: public_url.to_string(),
            worker,
            observers: Vec::new(),
            latest: Arc::default(),
        }
    }

    /// Adds an observer of alerts.
    pub fn with_observer(mut self, observer: Arc<dyn VendorCredentialObserver>) -> Self {
        self.observers.push(observer);
        self
    }

    /// The latest reading, if any (for `/metrics`).
    pub fn latest(&self) -> Option<VendorSnapshot> {
        self.latest
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The latest reading for `caller`: the platform operator only.
    pub fn view(&self, caller: &Caller) -> Result<Option<VendorSnapshot>, DomainError> {
        caller.may(Action::ReadVendorApps, None)?;
        Ok(self.latest())
    }

    /// Reads every registration now, keeps the facts and raises the alerts due. Returns the
    /// snapshot and how many alerts this call raised.
    pub async fn refresh(&self) -> (VendorSnapshot, usize) {
        let now = self.core.clock().now();
        let apps: Vec<VendorAppFacts> = self
            .platform
            .vendor_registrations()
            .await
            .into_iter()
            .map(|r| facts(r, self.core.catalog(), &self.public_url, now))
            .collect();
        let snapshot = VendorSnapshot { read_at: now, apps };
        *self
            .latest
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(snapshot.clone());
        let mut raised = 0;
        for app in &snapshot.apps {
            for c in app.credentials.iter().filter(|c| c.alerting()) {
                let alert = VendorCredentialAlert {
                    app: c.app.label().to_string(),
                    cloud: c.cloud.to_string(),
                    credential_id: c.id(),
                    stage: c.expiry.as_str().to_string(),
                    ends_at: c.ends_at,
                    raised_at: now,
                    raised_by: self.worker.clone(),
                };
                match self.core.store().claim_vendor_alert(&alert).await {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, app = %alert.app, "a vendor credential alert could not be recorded; not raised now (tried again at the next reading)");
                        continue;
                    }
                }
                raised += 1;
                tracing::warn!(
                    app = %alert.app,
                    cloud = %alert.cloud,
                    credential = %alert.credential_id,
                    stage = %alert.stage,
                    "a vendor credential needs rotating"
                );
                let event = VendorCredentialEvent {
                    credential: c.clone(),
                    client_id: app.registration.client_id,
                    stage: c.expiry,
                    rotate_command: c.app.rotate_command(),
                    raised_at: now,
                };
                for o in &self.observers {
                    o.vendor_credential_alert(&event).await;
                }
            }
        }
        (snapshot, raised)
    }
}
