//! Email delivery: the SMTP sender (lettre over tokio with rustls: STARTTLS, implicit TLS, or plain
//! only to a loopback host; a username and a password read from a file), the rendering of every
//! [`EmailContent`](consentry_domain::EmailContent) to a `multipart/alternative` message with a
//! text and an HTML part (askama templates, HTML escaped, no remote images, no tracking), and the
//! outbox's delivery worker, which leases due messages through the domain's
//! [`Mail`](consentry_domain::Mail) service, sends them and records the outcome: a permanent SMTP
//! refusal (5xx) fails a message for good with the server's answer, anything else is retried with
//! backoff ([`RetryPolicy`](consentry_domain::RetryPolicy)). The outbox is in the database, so
//! nothing is lost across restarts.
//!
//! [`OperatorMail`] sends the platform operator's vendor credential alerts straight over SMTP.
//!
//! Message content and links are never logged: an invitation's link is a credential.
//!
//! With the `mailbox` feature, [`mailbox::Mailbox`] is a real SMTP server on a loopback port that
//! writes each received message to `<dir>/<n>.eml` (tests and `consentry demo`).

pub mod operator;
pub mod render;
pub mod sender;
pub mod settings;
pub mod worker;

#[cfg(feature = "mailbox")]
pub mod mailbox;

pub use operator::OperatorMail;
pub use render::{Rendered, render};
pub use sender::SmtpSender;
pub use settings::{Security, SettingsError, SmtpSettings};
pub use worker::{DeliveryReport, DeliveryWorker, WorkerConfig};
