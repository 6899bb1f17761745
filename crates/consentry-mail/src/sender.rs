//! The SMTP sender: one lettre transport (connection pool) over tokio with rustls, and the
//! classification of its answers into the domain's [`DeliveryFailure`]s.

use consentry_domain::{DeliveryFailure, OutboxMessage};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::settings::{Security, SettingsError, SmtpSettings};

/// Parses a sender (`address` or `Name <address>`).
pub(crate) fn parse_from(from: &str) -> Result<Mailbox, String> {
    from.trim().parse::<Mailbox>().map_err(|e| {
        format!("{from:?} is not a sender address such as \"Consentry <consentry@vendor.example>\" ({e})")
    })
}

/// Sends rendered messages to the configured SMTP server.
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSender")
            .field("server", &self.server)
            .field("from", &self.from.email.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// A sender with `settings` (validated here too).
    pub fn new(settings: &SmtpSettings) -> Result<Self, SettingsError> {
        settings.validate()?;
        let from = parse_from(&settings.from).map_err(|message| SettingsError {
            key: "from",
            message,
        })?;
        let tls = match settings.security {
            Security::None => Tls::None,
            Security::StartTls | Security::Tls => {
                let params =
                    TlsParameters::new(settings.host.clone()).map_err(|e| SettingsError {
                        key: "smtp_host",
                        message: format!("TLS towards {:?}: {e}", settings.host),
                    })?;
                if settings.security == Security::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.clone())
                .port(settings.port)
                .tls(tls)
                .timeout(Some(settings.timeout));
        if let (Some(user), Some(pw)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                pw.expose_secret().to_string(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            server: format!(
                "{}:{} ({})",
                settings.host,
                settings.port,
                settings.security.as_str()
            ),
        })
    }

    /// The message as it goes out: `multipart/alternative` with the text and the HTML part.
    pub fn message(&self, msg: &OutboxMessage) -> Result<Message, DeliveryFailure> {
        let rendered = crate::render::render(&msg.content).map_err(|e| {
            DeliveryFailure::Permanent(format!("the message could not be rendered: {e}"))
        })?;
        let to: Mailbox = msg.to.as_str().parse().map_err(|e| {
            DeliveryFailure::Permanent(format!("the recipient is not a valid address: {e}"))
        })?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(|e| DeliveryFailure::Permanent(format!("the message could not be built: {e}")))
    }

    /// Sends one message. A permanent SMTP answer (5xx) is [`DeliveryFailure::Permanent`] with the
    /// server's answer; everything else (connection refused, time-out, TLS, 4xx) is transient.
    pub async fn send(&self, msg: &OutboxMessage) -> Result<(), DeliveryFailure> {
        let message = self.message(msg)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(DeliveryFailure::Permanent(format!(
                "the SMTP server refused it: {e}"
            ))),
            Err(e) => Err(DeliveryFailure::Transient(format!(
                "{} could not take it: {e}",
                self.server
            ))),
        }
    }
}
