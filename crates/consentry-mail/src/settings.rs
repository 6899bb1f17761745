//! How to reach the SMTP server: host, port, transport security, credentials and the sender address.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use secrecy::SecretString;

/// Transport security towards the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP upgraded with STARTTLS, which is required (port 587 by default).
    StartTls,
    /// TLS from the first byte, "SMTPS" (port 465 by default).
    Tls,
    /// No TLS at all: only to a loopback host (a local relay, the demo's mailbox).
    None,
}

impl Security {
    /// Parses `starttls`, `tls` or `none`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "starttls" => Some(Self::StartTls),
            "tls" => Some(Self::Tls),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    /// The configuration's name of it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StartTls => "starttls",
            Self::Tls => "tls",
            Self::None => "none",
        }
    }

    /// The usual port.
    pub fn default_port(self) -> u16 {
        match self {
            Self::StartTls => 587,
            Self::Tls => 465,
            Self::None => 25,
        }
    }
}

/// What is wrong with the settings, naming the `[email]` key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("email.{key}: {message}")]
pub struct SettingsError {
    /// The key under `[email]`.
    pub key: &'static str,
    /// What to fix.
    pub message: String,
}

fn err(key: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        key,
        message: message.into(),
    }
}

/// The SMTP server and the sender.
#[derive(Clone)]
pub struct SmtpSettings {
    /// Host name or address of the server.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Transport security.
    pub security: Security,
    /// The user to authenticate as (with `password`), if the server wants one.
    pub username: Option<String>,
    /// The password (read from `password_file`).
    pub password: Option<SecretString>,
    /// The sender, `address` or `Name <address>`.
    pub from: String,
    /// Time limit of one connection's commands.
    pub timeout: Duration,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Whether `host` is this machine: `localhost`, or a loopback address.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

impl SmtpSettings {
    /// Checks the settings: a host, a sender lettre accepts, plain SMTP only to a loopback host,
    /// a username and a password together.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.host.trim().is_empty() || self.host.contains(char::is_whitespace) {
            return Err(err("smtp_host", "is empty or holds spaces"));
        }
        if self.port == 0 {
            return Err(err("smtp_port", "must be between 1 and 65535"));
        }
        if self.security == Security::None && !is_loopback_host(&self.host) {
            return Err(err(
                "security",
                format!(
                    "\"none\" sends mail and credentials in the clear and is only allowed to a loopback host (localhost, 127.0.0.1, ::1), not {:?}: use \"starttls\" or \"tls\"",
                    self.host
                ),
            ));
        }
        match (&self.username, &self.password) {
            (Some(_), None) => {
                return Err(err(
                    "password_file",
                    "username is set: give the file holding its password",
                ));
            }
            (None, Some(_)) => {
                return Err(err("username", "password_file is set: give the user name"));
            }
            _ => {}
        }
        crate::sender::parse_from(&self.from).map_err(|m| err("from", m))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SmtpSettings {
        SmtpSettings {
            host: "smtp.vendor.example".into(),
            port: 587,
            security: Security::StartTls,
            username: None,
            password: None,
            from: "Consentry <consentry@vendor.example>".into(),
            timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn plain_smtp_is_refused_unless_the_host_is_loopback() {
        assert_eq!(base().validate(), Ok(()));
        let plain = SmtpSettings {
            security: Security::None,
            ..base()
        };
        let e = plain.validate().unwrap_err();
        assert_eq!(e.key, "security");
        assert!(e.to_string().starts_with("email.security: "), "{e}");
        for host in ["localhost", "127.0.0.1", "127.3.4.5", "::1", "[::1]"] {
            let ok = SmtpSettings {
                host: host.into(),
                security: Security::None,
                ..base()
            };
            assert_eq!(ok.validate(), Ok(()), "{host}");
        }
    }

    #[test]
    fn a_bad_sender_or_half_credentials_name_the_key() {
        let bad = SmtpSettings {
            from: "not an address".into(),
            ..base()
        };
        assert_eq!(bad.validate().unwrap_err().key, "from");
        let user_only = SmtpSettings {
            username: Some("consentry".into()),
            ..base()
        };
        assert_eq!(user_only.validate().unwrap_err().key, "password_file");
        let both = SmtpSettings {
            username: Some("consentry".into()),
            password: Some(SecretString::from("pw".to_string())),
            ..base()
        };
        assert_eq!(both.validate(), Ok(()));
        assert!(!format!("{both:?}").contains("\"pw\""));
        assert_eq!(Security::parse("starttls"), Some(Security::StartTls));
        assert_eq!(Security::parse("ssl"), None);
    }
}
