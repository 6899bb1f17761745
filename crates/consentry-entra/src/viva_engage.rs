//! The Viva Engage (Yammer) REST API: the signed-in user's `verified_admin` flag, which Microsoft
//! Graph does not expose (entra-facts §10).
//!
//! `GET {viva_engage}/api/v1/users/current.json` with a delegated access token issued for the
//! resource `https://api.yammer.com` (scope `user_impersonation`; resource app ID
//! `00000005-0000-0ff1-ce00-000000000000`). A Microsoft Graph token is refused there (401;
//! UNVERIFIED: the exact status and body Viva Engage answers for a token of another audience or
//! without the scope).

use reqwest::Method;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Deserializer};

use crate::EntraClient;
use crate::client::{Service, join_segments};
use crate::error::EntraError;

/// The Viva Engage (Yammer) resource: the audience of its access tokens.
pub const VIVA_ENGAGE_RESOURCE: &str = "https://api.yammer.com";
/// The delegated scope a token for the Viva Engage REST API needs, in full form.
pub const VIVA_ENGAGE_SCOPE: &str = "https://api.yammer.com/user_impersonation";

/// The signed-in Viva Engage user, as far as Consentry reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VivaEngageUser {
    /// The user's e-mail (their sign-in name), when given.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the user is a Viva Engage verified admin. Viva Engage renders it as the string
    /// `"true"`/`"false"` (either case accepted); a JSON boolean is accepted too (UNVERIFIED which
    /// type every response uses). Absent means not verified.
    #[serde(default, deserialize_with = "flag")]
    pub verified_admin: bool,
}

fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Text(String),
        Null(()),
    }
    Ok(match Flag::deserialize(d)? {
        Flag::Bool(b) => b,
        Flag::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "true" => true,
            "false" | "" => false,
            other => {
                return Err(serde::de::Error::custom(format!(
                    "verified_admin is `{other}`, neither true nor false"
                )));
            }
        },
        Flag::Null(()) => false,
    })
}

impl EntraClient {
    /// `GET /api/v1/users/current.json` on the Viva Engage API with a token for
    /// [`VIVA_ENGAGE_RESOURCE`]. 429 and 5xx are transient ([`EntraError::is_transient`]); another
    /// refusal is [`EntraError::VivaEngage`].
    pub async fn viva_engage_current_user(
        &self,
        token: &SecretString,
    ) -> Result<VivaEngageUser, EntraError> {
        let url = join_segments(&self.viva_engage, &["api", "v1", "users", "current.json"]);
        let request = self
            .request(Method::GET, url)
            .bearer_auth(token.expose_secret());
        let answer = self.send(Service::VivaEngage, request).await?;
        serde_json::from_slice(&answer.body).map_err(|e| EntraError::Protocol {
            detail: format!("unexpected Viva Engage answer shape: {e}"),
            client_request_id: Some(answer.client_request_id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::VivaEngageUser;

    fn parse(json: &str) -> Result<VivaEngageUser, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn verified_admin_is_read_as_a_string_in_either_case_or_a_boolean() {
        for (json, want) in [
            (r#"{"verified_admin": "true"}"#, true),
            (r#"{"verified_admin": "True"}"#, true),
            (r#"{"verified_admin": "TRUE"}"#, true),
            (r#"{"verified_admin": "false"}"#, false),
            (r#"{"verified_admin": "False"}"#, false),
            (r#"{"verified_admin": true}"#, true),
            (r#"{"verified_admin": false}"#, false),
            (r#"{"verified_admin": null}"#, false),
            (r#"{"email": "a@b.c"}"#, false),
        ] {
            assert_eq!(parse(json).unwrap().verified_admin, want, "{json}");
        }
        assert!(parse(r#"{"verified_admin": "maybe"}"#).is_err());
    }
}
