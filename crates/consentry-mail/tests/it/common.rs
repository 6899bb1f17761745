//! A store, the domain services on an adjustable clock, an organization with one tenant, and a
//! mailbox.

use std::sync::Arc;
use std::time::Duration;

use consentry_domain::{
    Caller, Consentry, DomainName, Mail, OffsetClock, Tenant, TenantId, TenantRef,
};
use consentry_mail::mailbox::Mailbox;
use consentry_mail::{DeliveryWorker, Security, SmtpSender, SmtpSettings, WorkerConfig};
use consentry_store::{Sealer, SqlStore};
use secrecy::ExposeSecret;

pub struct Env {
    pub svc: Consentry,
    pub mail: Mail,
    pub clock: Arc<OffsetClock>,
    pub tenant: Tenant,
    pub dir: tempfile::TempDir,
}

pub async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let key = Sealer::generate_key_base64();
    let store = SqlStore::open(
        &format!("sqlite://{}", dir.path().join("c.db").display()),
        Sealer::from_base64(key.expose_secret()).unwrap(),
    )
    .await
    .unwrap();
    let clock = Arc::new(OffsetClock::default());
    let svc = Consentry::new(
        Arc::new(store),
        Arc::new(consentry_domain::catalog::Catalog::builtin()),
        clock.clone(),
    );
    let org = svc.create_organization("Northwind", &[]).await.unwrap();
    let tenant = svc
        .connect_tenant(
            org.id,
            TenantId::parse("11111111-2222-3333-4444-555555555555").unwrap(),
            DomainName::parse("contoso.example").unwrap(),
            Some("Contoso"),
            consentry_domain::Placement::In(&consentry_domain::CloudKey::global()),
        )
        .await
        .unwrap();
    Env {
        mail: Mail::new(svc.clone()),
        svc,
        clock,
        tenant,
        dir,
    }
}

impl Env {
    pub fn caller(&self) -> Caller {
        Caller::platform("test")
    }

    pub fn tenant_ref(&self) -> TenantRef {
        TenantRef::Id(self.tenant.id)
    }

    pub async fn set_contacts(&self, addresses: &[&str]) {
        let entries: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
        self.mail
            .set_contacts(&self.caller(), &self.tenant_ref(), &entries)
            .await
            .unwrap();
    }

    /// A worker sending to `port` on 127.0.0.1, plain (loopback).
    pub fn worker(&self, port: u16) -> DeliveryWorker {
        let sender = SmtpSender::new(&SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            security: Security::None,
            username: None,
            password: None,
            from: "Consentry <consentry@vendor.example>".into(),
            timeout: Duration::from_secs(20),
        })
        .unwrap();
        DeliveryWorker::new(self.mail.clone(), sender, WorkerConfig::default())
    }

    pub fn mailbox(&self) -> Mailbox {
        Mailbox::start(&self.dir.path().join("mailbox")).unwrap()
    }

    pub async fn emails(&self) -> Vec<consentry_domain::ports::EmailRecord> {
        self.mail
            .tenant_emails(&self.caller(), &self.tenant_ref(), 100)
            .await
            .unwrap()
    }
}

/// A worker over a new `Mail` service on the same store (as a restarted process would build).
pub fn env_worker_after_restart(e: &Env, port: u16) -> DeliveryWorker {
    worker_with(e, port, WorkerConfig::default())
}

/// A worker sending to `port` with `config`.
pub fn worker_with(e: &Env, port: u16, config: WorkerConfig) -> DeliveryWorker {
    let sender = SmtpSender::new(&SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        security: Security::None,
        username: None,
        password: None,
        from: "consentry@vendor.example".into(),
        timeout: Duration::from_secs(20),
    })
    .unwrap();
    DeliveryWorker::new(Mail::new(e.svc.clone()), sender, config)
}
