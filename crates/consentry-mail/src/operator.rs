//! The platform operator's email ([`OperatorMail`]): vendor credential alerts sent straight to
//! `[email] operator_to` over SMTP (no organization's outbox: the operator belongs to none), each
//! retried a few times on a transient failure. The alert itself is recorded once in the store before
//! this runs, so a message that cannot be sent is logged, not sent again; the console's Vendor apps
//! page and `/metrics` still show the credential.

use std::time::Duration;

use async_trait::async_trait;
use consentry_domain::mail::{EmailContent, VendorCredentialNotice};
use consentry_domain::{
    DeliveryFailure, EmailAddress, EmailId, OutboxMessage, VendorCredentialEvent,
    VendorCredentialObserver,
};

use crate::SmtpSender;

/// Sends vendor credential alerts to the operator's addresses.
#[derive(Debug, Clone)]
pub struct OperatorMail {
    sender: SmtpSender,
    to: Vec<EmailAddress>,
    attempts: u32,
    delay: Duration,
}

impl OperatorMail {
    /// Over `sender`, to `to`: three attempts per message, a second apart, then a doubling delay.
    pub fn new(sender: SmtpSender, to: Vec<EmailAddress>) -> Self {
        Self {
            sender,
            to,
            attempts: 3,
            delay: Duration::from_secs(1),
        }
    }
}

#[async_trait]
impl VendorCredentialObserver for OperatorMail {
    async fn vendor_credential_alert(&self, event: &VendorCredentialEvent) {
        let content = EmailContent::VendorCredential(VendorCredentialNotice::of(event));
        for to in &self.to {
            let mut msg = OutboxMessage {
                id: EmailId::new_random(),
                to: to.clone(),
                subject: content.subject(),
                content: content.clone(),
                attempts: 0,
            };
            let mut delay = self.delay;
            loop {
                match self.sender.send(&msg).await {
                    Ok(()) => break,
                    Err(DeliveryFailure::Transient(e)) if msg.attempts + 1 < self.attempts => {
                        tracing::info!(error = %e, "an operator email could not be sent yet; retrying");
                        msg.attempts += 1;
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e.message(), "an operator email about a vendor credential could not be sent");
                        break;
                    }
                }
            }
        }
    }
}
