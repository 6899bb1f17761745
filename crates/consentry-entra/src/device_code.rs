//! The device code flow (RFC 8628; Microsoft's `v2-oauth2-device-code`) for a public client: the
//! operator's sign-in of `consentry apps register` / `rotate-credential`, which works over SSH (the
//! operator opens Microsoft's page on any device and types the code).
//!
//! [`EntraClient::start_device_code`] asks `/{tenant}/oauth2/v2.0/devicecode` for a code;
//! [`EntraClient::wait_for_device_code`] polls the token endpoint every `interval` seconds:
//! `authorization_pending` → poll again, `slow_down` → 5 more seconds between polls (RFC 8628 §3.5),
//! `expired_token` / `authorization_declined` (and `bad_verification_code`) → stop with
//! [`DeviceCodeError`]. Transient failures are retried until the code expires.

use std::fmt;
use std::time::{Duration, Instant};

use reqwest::Method;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::client::{EntraClient, Service, join_segments};
use crate::error::{EntraError, OAuthError};
use crate::token::TokenResponse;
use crate::urls::{check_guid, check_tenant};

/// The device code grant type.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A device code sign-in under way: what to show the user, and the code to poll with.
#[derive(Clone)]
pub struct DeviceCodeSignIn {
    /// The code the user types on the verification page.
    pub user_code: String,
    /// Where the user types it (`https://microsoft.com/devicelogin`).
    pub verification_uri: String,
    /// Microsoft's sentence for the user (the URL and the code), to print as it is.
    pub message: String,
    /// Seconds the code is valid.
    pub expires_in: u64,
    /// Seconds between polls.
    pub interval: u64,
    device_code: SecretString,
    tenant: String,
    client_id: String,
    started: Instant,
}

impl fmt::Debug for DeviceCodeSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCodeSignIn")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("device_code", &"[REDACTED]")
            .finish()
    }
}

#[derive(Deserialize)]
struct DeviceCodeAnswer {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    interval: Option<u64>,
    #[serde(default)]
    message: Option<String>,
}

/// Why a device code sign-in ended without tokens.
#[derive(Debug, thiserror::Error)]
pub enum DeviceCodeError {
    /// The code expired before the user signed in (`expired_token`, or its lifetime passed).
    #[error(
        "the sign-in code expired before the sign-in was completed: run the command again and enter the new code within {0} minutes"
    )]
    Expired(u64),
    /// The user declined (`authorization_declined`).
    #[error("the sign-in was declined on Microsoft's page: run the command again and accept")]
    Declined,
    /// Any other answer from the identity platform.
    #[error(transparent)]
    Entra(#[from] EntraError),
}

/// One poll's outcome.
enum Poll {
    Tokens(Box<TokenResponse>),
    Pending,
    SlowDown,
}

impl EntraClient {
    /// Starts a device code sign-in of the public client `client_id` in `tenant` for `scopes`
    /// (space-joined as given; qualify Graph scopes first).
    pub async fn start_device_code(
        &self,
        tenant: &str,
        client_id: &str,
        scopes: &[String],
    ) -> Result<DeviceCodeSignIn, EntraError> {
        let tenant = check_tenant(tenant, &["consumers"])?;
        check_guid(client_id, "application (client) ID")?;
        let url = join_segments(&self.authority, &[tenant, "oauth2", "v2.0", "devicecode"]);
        let form = [
            ("client_id", client_id.to_owned()),
            ("scope", scopes.join(" ")),
        ];
        let request = self.request(Method::POST, url).form(&form);
        let answer = self.send(Service::Identity, request).await?;
        let a: DeviceCodeAnswer =
            serde_json::from_slice(&answer.body).map_err(|e| EntraError::Protocol {
                detail: format!("unexpected device code answer: {e}"),
                client_request_id: Some(answer.client_request_id.clone()),
            })?;
        let message = a.message.unwrap_or_else(|| {
            format!(
                "To sign in, use a web browser to open the page {} and enter the code {} to authenticate.",
                a.verification_uri, a.user_code
            )
        });
        Ok(DeviceCodeSignIn {
            user_code: a.user_code,
            verification_uri: a.verification_uri,
            message,
            // Microsoft's are 900 and 5; RFC 8628 §3.2's default interval is 5.
            expires_in: a.expires_in.unwrap_or(900),
            interval: a.interval.unwrap_or(5).max(1),
            device_code: SecretString::from(a.device_code),
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            started: Instant::now(),
        })
    }

    async fn poll_device_code(&self, sign_in: &DeviceCodeSignIn) -> Result<Poll, DeviceCodeError> {
        let endpoint = self.token_endpoint(&sign_in.tenant)?;
        let form = [
            ("grant_type", DEVICE_CODE_GRANT),
            ("client_id", sign_in.client_id.as_str()),
            ("device_code", sign_in.device_code.expose_secret()),
        ];
        let request = self.request(Method::POST, endpoint).form(&form);
        match self.send(Service::Identity, request).await {
            Ok(answer) => Ok(Poll::Tokens(Box::new(TokenResponse::from_json(
                &answer.body,
                answer.client_request_id,
            )?))),
            Err(EntraError::Identity(e)) => match &e.error {
                OAuthError::Other(code) if code == "authorization_pending" => Ok(Poll::Pending),
                OAuthError::Other(code) if code == "slow_down" => Ok(Poll::SlowDown),
                OAuthError::Other(code) if code == "expired_token" => {
                    Err(DeviceCodeError::Expired(sign_in.expires_in / 60))
                }
                OAuthError::Other(code)
                    if code == "authorization_declined" || code == "bad_verification_code" =>
                {
                    Err(DeviceCodeError::Declined)
                }
                OAuthError::AccessDenied => Err(DeviceCodeError::Declined),
                _ => Err(DeviceCodeError::Entra(EntraError::Identity(e))),
            },
            Err(e) => Err(DeviceCodeError::Entra(e)),
        }
    }

    /// Polls until the user has signed in (tokens), declined, or the code expired, honouring
    /// `interval` and `slow_down`. Transient failures (timeouts, 5xx, 429) are polled through.
    pub async fn wait_for_device_code(
        &self,
        sign_in: &DeviceCodeSignIn,
    ) -> Result<TokenResponse, DeviceCodeError> {
        let mut interval = sign_in.interval;
        let deadline = sign_in.started + Duration::from_secs(sign_in.expires_in);
        loop {
            tokio::time::sleep(Duration::from_secs(interval)).await;
            if Instant::now() >= deadline {
                return Err(DeviceCodeError::Expired(sign_in.expires_in / 60));
            }
            match self.poll_device_code(sign_in).await {
                Ok(Poll::Tokens(t)) => return Ok(*t),
                Ok(Poll::Pending) => {}
                Ok(Poll::SlowDown) => interval += 5,
                Err(DeviceCodeError::Entra(e)) if e.is_transient() => {
                    tracing::debug!(error = %e, "device code poll failed transiently; polling on");
                }
                Err(e) => return Err(e),
            }
        }
    }
}
