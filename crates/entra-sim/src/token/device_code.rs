//! Public clients and the device code grant at the token endpoint.
//!
//! A request is a public client's (no credential, `azpacr` "0") when it redeems a code obtained
//! with one of the app's public-client redirect URIs, refreshes a grant issued to a public client,
//! or redeems a device code of an app that allows public client flows. Otherwise the client
//! authenticates as before, and without a credential gets AADSTS7000218.

use serde_json::Value;
use time::Duration;

use super::Request;
use crate::aad::AadError;
use crate::device::{DeviceStatus, GRANT_TYPE};
use crate::model::App;
use crate::state::RefreshGrant;

impl Request<'_> {
    /// `Some(Ok("0"))` for a public client's request, `Some(Err(700025))` when such a request
    /// carries a credential, `None` when the client must authenticate.
    pub(super) fn public_client(
        &self,
        app: &App,
        grant_type: &str,
    ) -> Option<Result<&'static str, AadError>> {
        let any_port = self.st.settings.loopback_redirect_any_port;
        let public = match grant_type {
            "authorization_code" => self
                .form
                .get("code")
                .and_then(|c| self.st.codes.get(c))
                .is_some_and(|c| {
                    c.client_id == app.client_id
                        && app.is_public_redirect(&c.redirect_uri, any_port)
                }),
            "refresh_token" => self
                .form
                .get("refresh_token")
                .and_then(|t| self.st.refresh_tokens.get(t))
                .is_some_and(|g| g.client_id == app.client_id && g.public_client),
            GRANT_TYPE => app.allow_public_client,
            _ => false,
        };
        if !public {
            return None;
        }
        let credential = self.form.contains_key("client_secret")
            || self.form.contains_key("client_assertion")
            || self.basic.is_some();
        if credential {
            // The documented name of this case (entra-facts §3.3); its OAuth `error` and status are
            // UNVERIFIED: `invalid_client`, with the status of Settings::invalid_client_status.
            return Some(Err(self.err(
                700025,
                "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            )));
        }
        Some(Ok("0"))
    }

    /// `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4, Microsoft's
    /// v2-oauth2-device-code): pending, slow_down, expired, declined, already redeemed, or the
    /// tokens, with the same user, consent and conditional access checks as a code redemption.
    pub(super) fn device_code(
        &mut self,
        app: &App,
        path_tenant: Option<usize>,
        azpacr: &str,
    ) -> Result<Value, AadError> {
        let code = self
            .form
            .get("device_code")
            .cloned()
            .ok_or_else(|| self.missing("device_code"))?;
        let settings = self.st.settings.device_code.clone();
        let invalid = |this: &Self, extra: &str| {
            this.err(
                settings.unknown_code,
                format!(
                    "The provided value for the input parameter 'device_code' is not valid.{extra}"
                ),
            )
            .with_error("invalid_grant")
        };
        let Some(device) = self.st.device_codes.get(&code).cloned() else {
            return Err(invalid(self, ""));
        };
        // The code for a device code of another client is UNVERIFIED; invalid_grant like an
        // unknown code.
        if device.client_id != app.client_id {
            return Err(invalid(
                self,
                " The device code was issued to a different client.",
            ));
        }
        match device.status {
            DeviceStatus::Redeemed => Err(self
                .err(
                    settings.redeemed_code,
                    "The provided value for the input parameter 'device_code' is not valid. This device code was already redeemed.",
                )
                .with_error(&settings.redeemed_error)),
            _ if device.expired(self.now, settings.lifetime_secs) => Err(self.err(
                70020,
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
            )),
            DeviceStatus::Declined => Err(self
                .err(
                    settings.declined_code,
                    "OAuth 2.0 device flow error. The end user declined the authorization request.",
                )
                .with_error(&settings.declined_error)),
            DeviceStatus::Pending => {
                let too_soon = settings.slow_down
                    && device
                        .last_poll
                        .is_some_and(|p| self.now < p + Duration::seconds(device.interval_secs));
                if let Some(d) = self.st.device_codes.get_mut(&code) {
                    d.last_poll = Some(self.now);
                    if too_soon {
                        d.interval_secs += 5;
                    }
                }
                if too_soon {
                    Err(self
                        .err(
                            settings.slow_down_code,
                            format!(
                                "OAuth 2.0 device flow error. Polling too often: wait {} seconds between polls.",
                                device.interval_secs + 5
                            ),
                        )
                        .with_error("slow_down"))
                } else {
                    Err(self.err(
                        70016,
                        "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                    ))
                }
            }
            DeviceStatus::Approved {
                tenant_id,
                user_id,
                sign_in_ip,
                mfa_done,
                auth_time,
            } => {
                // The code for a tenant other than the user's is UNVERIFIED; 700005 is the
                // documented answer for an authorization code.
                if path_tenant.is_some_and(|t| self.st.tenants[t].id != tenant_id) {
                    return Err(self.err(
                        700005,
                        "Provided device code is intended to use against other tenant, thus rejected.",
                    ));
                }
                if let Some(d) = self.st.device_codes.get_mut(&code) {
                    d.status = DeviceStatus::Redeemed;
                }
                let t = self
                    .st
                    .tenant_by_id(tenant_id)
                    .ok_or_else(|| invalid(self, ""))?;
                let grant = RefreshGrant {
                    client_id: app.client_id,
                    tenant_id,
                    user_id,
                    scopes: device.scopes.clone(),
                    auth_time,
                    issued_at: self.now,
                    last_used: self.now,
                    sign_in_ip,
                    mfa_done,
                    public_client: azpacr == "0",
                };
                self.check_user_and_app(t, app, &grant)?;
                self.issue_delegated(t, app, &grant, &device.scopes, None, azpacr)
            }
        }
    }
}
