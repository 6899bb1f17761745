//! The console's "Sign in with Microsoft" over [`EntraPlatform`]: the authorization URL at the
//! `organizations` authority with Consentry's own app, the code redeemed there (PKCE, Consentry's
//! credential), the ID token verified for the token's own tenant (keys from the `organizations`
//! discovery document, whose keys sign every work or school tenant's tokens), and the user's
//! direct memberships read from `/me/memberOf`.
//!
//! Only `openid profile User.Read` is asked for: no refresh token is wanted, none is kept.
//!
//! "Connect a Microsoft tenant" signs the administrator in the same way (`consentry_authorize_url`,
//! `redeem_consentry_code`), returning to its own callback.

use consentry_domain::{
    ClientRef, ConsoleSignInRequest, Memberships, MicrosoftSignedIn, ObjectId, PlatformCause,
    PlatformError, TenantId, Upn,
};
use secrecy::SecretString;
use url::Url;
use uuid::Uuid;

use crate::id_token::{IdTokenError, IdTokenExpectations};
use crate::platform::{EntraPlatform, platform_error};
use crate::retry::with_retry;
use crate::urls::{AuthorizeRequest, Prompt};

/// The authority segment of the console's sign-in: work or school accounts of any tenant.
pub const ORGANIZATIONS: &str = "organizations";
/// The scopes the console's sign-in asks for (no `offline_access`).
pub const CONSOLE_SIGN_IN_SCOPE: &str = "openid profile https://graph.microsoft.com/User.Read";

fn not_configured(message: &str) -> PlatformError {
    PlatformError {
        cause: PlatformCause::NotConfigured,
        aadsts: None,
        error: None,
        message: message.into(),
    }
}

fn claim_error(message: String) -> PlatformError {
    PlatformError {
        cause: PlatformCause::IdTokenRejected,
        aadsts: None,
        error: Some("invalid_id_token".into()),
        message,
    }
}

/// A code of a sign-in with Consentry's own app, redeemed, with its verified ID token's claims.
pub(crate) struct ConsentryCode {
    /// The token response (the delegated access token for `/me/memberOf`).
    pub token: crate::token::TokenResponse,
    /// The verified ID token's claims.
    pub claims: crate::token::TokenClaims,
    /// The same, as JSON (for claims the typed ones leave out, e.g. `roles`).
    pub raw: serde_json::Value,
}

impl ConsentryCode {
    /// Who signed in: the token's tenant, object ID and sign-in name.
    pub fn who(&self) -> Result<(TenantId, ObjectId, Upn), PlatformError> {
        let tenant = self
            .claims
            .tid
            .as_deref()
            .and_then(|t| TenantId::parse(t).ok())
            .ok_or_else(|| claim_error("the ID token has no usable `tid` claim".into()))?;
        let object_id = self
            .claims
            .oid
            .as_deref()
            .and_then(|o| ObjectId::parse(o).ok())
            .ok_or_else(|| claim_error("the ID token has no usable `oid` claim".into()))?;
        let upn = self
            .claims
            .user_principal()
            .and_then(|u| Upn::parse(u).ok())
            .ok_or_else(|| {
                claim_error("the ID token has no usable `preferred_username` claim".into())
            })?;
        Ok((tenant, object_id, upn))
    }
}

impl EntraPlatform {
    /// The console's callback, or why there is none.
    fn console_callback(&self) -> Result<&str, PlatformError> {
        self.console_redirect_uri().ok_or_else(|| {
            not_configured("the console's sign-in callback is not configured (EntraPlatform::with_console_redirect_uri)")
        })
    }

    /// The authorization URL of a sign-in with Consentry's own app at `organizations`, returning
    /// to `redirect_uri`: [`CONSOLE_SIGN_IN_SCOPE`] (no refresh token), `prompt=select_account`,
    /// PKCE and nonce. Shared by the console's "Sign in with Microsoft" and "Connect a Microsoft
    /// tenant".
    pub(crate) fn consentry_authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        code_challenge: &str,
    ) -> Result<String, PlatformError> {
        let client_id = self.consentry_app_id().ok_or_else(|| {
            not_configured(
                "Consentry's own app registration is not configured: set `[consentry_app]`",
            )
        })?;
        let authorize = AuthorizeRequest {
            tenant: ORGANIZATIONS.into(),
            client_id: client_id.to_string(),
            redirect_uri: redirect_uri.to_owned(),
            scopes: vec!["User.Read".into()],
            state: state.to_owned(),
            nonce: nonce.to_owned(),
            code_challenge: code_challenge.to_owned(),
            login_hint: None,
            prompt: Some(Prompt::SelectAccount),
        };
        let url = self
            .client()
            .authorize_url(&authorize)
            .map_err(|e| platform_error(&e))?;
        Ok(with_scope(url, CONSOLE_SIGN_IN_SCOPE).into())
    }

    /// Redeems the code of a [`consentry_authorize_url`](Self::consentry_authorize_url) sign-in
    /// at `organizations` (PKCE, Consentry's credential) and verifies its ID token for the token's
    /// own tenant: the issuer must be `{authority}/{tid}/v2.0` for its `tid` (checked by the
    /// verifier), the keys are the `organizations` discovery document's.
    pub(crate) async fn redeem_consentry_code(
        &self,
        code: &str,
        code_verifier: &SecretString,
        redirect_uri: &str,
    ) -> Result<ConsentryCode, PlatformError> {
        let (client_id, credential) = self.credential_of(&ClientRef::Consentry)?;
        // Not retried: a code is single-use.
        let token = self
            .client()
            .redeem_code_with_scope(
                ORGANIZATIONS,
                &client_id,
                &credential,
                &SecretString::from(code.to_owned()),
                redirect_uri,
                code_verifier,
                CONSOLE_SIGN_IN_SCOPE,
            )
            .await
            .map_err(|e| platform_error(&e))?;
        let id_token = token
            .id_token
            .as_deref()
            .ok_or_else(|| crate::platform::id_token_error(&IdTokenError::Missing))?;
        let (claims, raw) = self
            .id_token_verifier()
            .verify(
                self.client(),
                id_token,
                &IdTokenExpectations {
                    tenant: ORGANIZATIONS,
                    client_id: &client_id,
                    now: self.now(),
                },
            )
            .await
            .map_err(|e| crate::platform::id_token_error(&e))?;
        Ok(ConsentryCode { token, claims, raw })
    }

    /// See [`consentry_domain::IdentityPlatform::console_sign_in_url`].
    pub(crate) fn console_sign_in_url_impl(
        &self,
        req: &ConsoleSignInRequest,
    ) -> Result<String, PlatformError> {
        self.consentry_authorize_url(
            self.console_callback()?,
            &req.state,
            &req.nonce,
            &req.code_challenge,
        )
    }

    /// See [`consentry_domain::IdentityPlatform::redeem_console_sign_in`].
    pub(crate) async fn redeem_console_sign_in_impl(
        &self,
        code: &str,
        code_verifier: &SecretString,
    ) -> Result<MicrosoftSignedIn, PlatformError> {
        let redirect_uri = self.console_callback()?.to_owned();
        let signed = self
            .redeem_consentry_code(code, code_verifier, &redirect_uri)
            .await?;
        let (tenant, object_id, upn) = signed.who()?;
        let roles = signed
            .raw
            .get("roles")
            .and_then(|r| r.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(MicrosoftSignedIn {
            tenant,
            object_id,
            upn,
            display_name: signed.claims.name.clone(),
            nonce: signed.claims.nonce.clone(),
            app_roles: roles,
            access_token: signed.token.access_token,
        })
    }

    /// See [`consentry_domain::IdentityPlatform::memberships`].
    pub(crate) async fn memberships_impl(
        &self,
        access_token: &SecretString,
    ) -> Result<Memberships, PlatformError> {
        let client = self.client();
        let member_of = with_retry(self.retry_policy(), || client.me_member_of(access_token))
            .await
            .map_err(|e| platform_error(&e))?;
        let mut out = Memberships::default();
        for id in crate::directory_role_template_ids(&member_of) {
            if let Ok(id) = Uuid::parse_str(id) {
                out.role_template_ids.insert(id);
            }
        }
        for group in member_of.iter().filter(|o| o.is_group()) {
            if let Ok(id) = Uuid::parse_str(&group.id) {
                out.group_ids.insert(id);
            }
        }
        Ok(out)
    }
}

/// `url` with its `scope` parameter replaced by `scope`.
fn with_scope(mut url: Url, scope: &str) -> Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            if k == "scope" {
                (k.into_owned(), scope.to_owned())
            } else {
                (k.into_owned(), v.into_owned())
            }
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_is_replaced_and_nothing_else() {
        let url = Url::parse("https://login.example/organizations/oauth2/v2.0/authorize?client_id=a&scope=openid+offline_access&state=s").expect("url");
        let out = with_scope(url, CONSOLE_SIGN_IN_SCOPE);
        let q: Vec<(String, String)> = out.query_pairs().into_owned().collect();
        assert_eq!(
            q,
            vec![
                ("client_id".into(), "a".into()),
                ("scope".into(), CONSOLE_SIGN_IN_SCOPE.into()),
                ("state".into(), "s".into()),
            ]
        );
    }
}
