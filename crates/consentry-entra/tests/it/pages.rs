//! The simulator's sign-in, MFA and consent pages played by a plain HTTP client, for the tests of
//! the client (`sim`) and of the platform adapter (`platform`).

use std::collections::BTreeMap;
use std::time::Duration;

use entra_sim::RunningSim;

const PASSWORD: &str = "Demo-Passw0rd!";
/// Registered on every vendor app of the scenario.
const REDIRECT: &str = "https://localhost:8443/oauth/callback";

/// Just enough of a browser for the simulator's sign-in, MFA and consent pages.
pub struct Browser {
    http: reqwest::Client,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

fn attr(html: &str, name: &str, after: &str) -> Option<String> {
    let start = html.find(after)?;
    let rest = &html[start..];
    let pat = format!("{name}=\"");
    let i = rest.find(&pat)? + pat.len();
    let end = rest[i..].find('"')? + i;
    Some(
        rest[i..end]
            .replace("&amp;", "&")
            .replace("&#x2f;", "/")
            .replace("&#47;", "/"),
    )
}

impl Browser {
    pub fn new(sim: &RunningSim) -> Self {
        let ca = reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).unwrap();
        let http = reqwest::Client::builder()
            .tls_certs_merge([ca])
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Self { http }
    }

    async fn finish(resp: reqwest::Response) -> Page {
        Page {
            status: resp.status().as_u16(),
            location: resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&self, url: &str) -> Page {
        Self::finish(self.http.get(url).send().await.unwrap()).await
    }

    /// Submits the page's form with its hidden `flow` plus `fields`.
    pub async fn submit(&self, page: &Page, fields: &[(&str, &str)]) -> Page {
        let action = attr(&page.body, "action", "<form").expect("a form");
        let flow = attr(&page.body, "value", "name=\"flow\"").expect("a flow field");
        let mut form: Vec<(&str, &str)> = vec![("flow", &flow)];
        form.extend_from_slice(fields);
        Self::finish(self.http.post(action).form(&form).send().await.unwrap()).await
    }

    /// Signs in (with the one-time code when asked) and answers the consent page, if any, with
    /// `decision`; returns the redirect's query.
    pub async fn sign_in(&self, url: &str, user: &str, decision: &str) -> String {
        let page = self.get(url).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let mut page = self
            .submit(&page, &[("username", user), ("password", PASSWORD)])
            .await;
        if page.status == 200 && page.body.contains("name=\"otc\"") {
            page = self.submit(&page, &[("otc", "123456")]).await;
        }
        if page.status == 200 && page.body.contains("name=\"decision\"") {
            page = self.submit(&page, &[("decision", decision)]).await;
        }
        let location = page
            .location
            .unwrap_or_else(|| panic!("no redirect ({}): {}", page.status, page.body));
        assert!(location.starts_with(REDIRECT), "{location}");
        url::Url::parse(&location)
            .unwrap()
            .query()
            .unwrap_or_default()
            .to_owned()
    }

    /// [`Browser::sign_in`], the redirect's query as name/value pairs.
    pub async fn sign_in_pairs(
        &self,
        url: &str,
        user: &str,
        decision: &str,
    ) -> BTreeMap<String, String> {
        url::form_urlencoded::parse(self.sign_in(url, user, decision).await.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}
