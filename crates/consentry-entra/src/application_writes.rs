//! Graph writes on app registrations in their home tenant (what `consentry apps register` and
//! `consentry apps rotate-credential` do with a signed-in administrator's token): list by `$filter`,
//! create, `PATCH`, `addPassword` / `removePassword`, the certificate list (`keyCredentials`), and the
//! app's service principal in its home tenant. They need `Application.ReadWrite.All` (delegated, with an
//! Application Administrator, Cloud Application Administrator or Global Administrator role) or the
//! caller owning the application; a refusal is Graph's 403 `Authorization_RequestDenied`, parsed into
//! [`EntraError::Graph`] like every other Graph error.

use reqwest::Method;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::applications::{
    APPLICATION_SELECT, Application, ApplicationFilter, ApplicationWrite, KeyCredentialWrite,
    NewPassword,
};
use crate::client::{EntraClient, Service};
use crate::error::EntraError;
use crate::graph::ServicePrincipal;
use crate::urls::check_guid;

impl EntraClient {
    /// Sends a Graph write with a JSON body; the answer's body (empty for 204).
    async fn graph_write(
        &self,
        token: &SecretString,
        method: Method,
        url: Url,
        body: &impl Serialize,
    ) -> Result<(Vec<u8>, String), EntraError> {
        let request = self
            .request(method, url)
            .bearer_auth(token.expose_secret())
            .json(body);
        let answer = self.send(Service::Graph, request).await?;
        Ok((answer.body, answer.client_request_id))
    }

    async fn graph_write_json<T: DeserializeOwned>(
        &self,
        token: &SecretString,
        method: Method,
        url: Url,
        body: &impl Serialize,
    ) -> Result<T, EntraError> {
        let (body, client_request_id) = self.graph_write(token, method, url, body).await?;
        serde_json::from_slice(&body).map_err(|e| EntraError::Protocol {
            detail: format!("unexpected Graph answer shape: {e}"),
            client_request_id: Some(client_request_id),
        })
    }

    /// The registrations in the token's tenant matching `filter` (`GET /applications?$filter=…`),
    /// with [`APPLICATION_SELECT`].
    pub async fn applications_where(
        &self,
        token: &SecretString,
        filter: &ApplicationFilter,
    ) -> Result<Vec<Application>, EntraError> {
        let filter = match filter {
            ApplicationFilter::AppId(id) => {
                check_guid(id, "application (client) ID")?;
                format!("appId eq '{id}'")
            }
            // OData string literals double their single quotes.
            ApplicationFilter::DisplayName(name) => {
                format!("displayName eq '{}'", name.replace('\'', "''"))
            }
        };
        let url = self.graph_url(
            &["applications"],
            &[("$filter", &filter), ("$select", APPLICATION_SELECT)],
        );
        self.graph_collection(token, url).await
    }

    /// The registration with object ID `object_id`, its certificates' `key` included.
    pub async fn application(
        &self,
        token: &SecretString,
        object_id: &str,
    ) -> Result<Application, EntraError> {
        check_guid(object_id, "application object ID")?;
        let url = self.graph_url(
            &["applications", object_id],
            &[("$select", APPLICATION_SELECT)],
        );
        self.graph_get(token, url).await
    }

    /// Creates a registration (`POST /applications`); Graph answers the new object.
    pub async fn create_application(
        &self,
        token: &SecretString,
        body: &ApplicationWrite,
    ) -> Result<Application, EntraError> {
        let url = self.graph_url(&["applications"], &[]);
        self.graph_write_json(token, Method::POST, url, body).await
    }

    /// Updates the fields set in `body` (`PATCH /applications/{id}`; Graph answers 204).
    pub async fn update_application(
        &self,
        token: &SecretString,
        object_id: &str,
        body: &ApplicationWrite,
    ) -> Result<(), EntraError> {
        check_guid(object_id, "application object ID")?;
        let url = self.graph_url(&["applications", object_id], &[]);
        self.graph_write(token, Method::PATCH, url, body).await?;
        Ok(())
    }

    /// Adds a client secret (`POST /applications/{id}/addPassword`): Graph generates it and returns
    /// its value once, in [`NewPassword::secret_text`].
    pub async fn add_password(
        &self,
        token: &SecretString,
        object_id: &str,
        display_name: &str,
        end: time::OffsetDateTime,
    ) -> Result<NewPassword, EntraError> {
        check_guid(object_id, "application object ID")?;
        let end = end
            .replace_nanosecond(0)
            .unwrap_or(end)
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| EntraError::InvalidInput(format!("the end date is not valid ({e})")))?;
        let url = self.graph_url(&["applications", object_id, "addPassword"], &[]);
        let body = serde_json::json!({
            "passwordCredential": { "displayName": display_name, "endDateTime": end }
        });
        self.graph_write_json(token, Method::POST, url, &body).await
    }

    /// Removes the client secret `key_id` (`POST /applications/{id}/removePassword`; 204).
    pub async fn remove_password(
        &self,
        token: &SecretString,
        object_id: &str,
        key_id: &str,
    ) -> Result<(), EntraError> {
        check_guid(object_id, "application object ID")?;
        check_guid(key_id, "password credential key ID")?;
        let url = self.graph_url(&["applications", object_id, "removePassword"], &[]);
        let body = serde_json::json!({ "keyId": key_id });
        self.graph_write(token, Method::POST, url, &body).await?;
        Ok(())
    }

    /// Replaces the registration's certificates with `keys` (`PATCH /applications/{id}` with
    /// `keyCredentials`): the list is written whole, so keep the ones that stay in it. Graph's
    /// `addKey` needs a proof of possession signed by a certificate already on the app, which a first
    /// certificate cannot give; the `PATCH` is what Graph's documentation gives for that case.
    pub async fn set_key_credentials(
        &self,
        token: &SecretString,
        object_id: &str,
        keys: &[KeyCredentialWrite],
    ) -> Result<(), EntraError> {
        check_guid(object_id, "application object ID")?;
        let url = self.graph_url(&["applications", object_id], &[]);
        let body = serde_json::json!({ "keyCredentials": keys });
        self.graph_write(token, Method::PATCH, url, &body).await?;
        Ok(())
    }

    /// Creates the service principal of `app_id` in the token's tenant (`POST /servicePrincipals`):
    /// in its home tenant, what lets the app get client-credentials tokens there.
    pub async fn create_service_principal(
        &self,
        token: &SecretString,
        app_id: &str,
    ) -> Result<ServicePrincipal, EntraError> {
        check_guid(app_id, "application (client) ID")?;
        let url = self.graph_url(&["servicePrincipals"], &[]);
        let body = serde_json::json!({ "appId": app_id });
        self.graph_write_json(token, Method::POST, url, &body).await
    }
}
