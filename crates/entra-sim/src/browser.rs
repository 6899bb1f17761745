//! A plain HTTP client that plays a person's browser on the simulator's pages: it signs in, enters
//! the one-time code, answers the consent page and follows redirects by hand. Used by tests and by
//! demos that authorize app profiles without a real browser.

use std::collections::HashMap;

/// The one-time code every MFA user of the default scenario enters.
pub const DEMO_OTC: &str = "123456";

/// A page or redirect.
#[derive(Debug)]
pub struct Page {
    /// HTTP status.
    pub status: u16,
    /// `Location` of a redirect.
    pub location: Option<String>,
    /// The body.
    pub body: String,
}

impl Page {
    /// Query parameters of the redirect target.
    pub fn redirect_params(&self) -> HashMap<String, String> {
        let loc = self
            .location
            .as_deref()
            .unwrap_or_else(|| panic!("not a redirect: {self:?}"));
        url::Url::parse(loc)
            .expect("URL")
            .query_pairs()
            .into_owned()
            .collect()
    }
}

/// A plain HTTP client playing the administrator's browser.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    forwarded_for: Option<String>,
    /// Cookies by host: name → value (paths and expiry are not modelled; an empty value or
    /// `Max-Age=0` removes one).
    jar: std::sync::Mutex<HashMap<String, HashMap<String, String>>>,
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let pat = format!(" {name}=\"");
    let start = tag.find(&pat)? + pat.len();
    let end = tag[start..].find('"')? + start;
    Some(
        tag[start..end]
            .replace("&#34;", "\"")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&#x2f;", "/")
            .replace("&amp;", "&"),
    )
}

/// The action and hidden/text fields of the first form of a page.
fn form(html: &str) -> (String, Vec<(String, String)>) {
    let start = html
        .find("<form")
        .unwrap_or_else(|| panic!("no form in:\n{html}"));
    let end = html[start..]
        .find("</form>")
        .map(|e| e + start)
        .unwrap_or(html.len());
    let f = &html[start..end];
    let open_end = f.find('>').expect("form tag");
    let action = attr(&f[..open_end], "action").expect("form action");
    let mut fields = vec![];
    let mut rest = f;
    while let Some(i) = rest.find("<input") {
        let tag_end = rest[i..].find('>').map(|e| e + i).unwrap_or(rest.len());
        let tag = &rest[i..tag_end];
        if attr(tag, "type").as_deref() != Some("checkbox")
            && let Some(name) = attr(tag, "name")
        {
            fields.push((name, attr(tag, "value").unwrap_or_default()));
        }
        rest = &rest[tag_end..];
    }
    (action, fields)
}

/// What the administrator does on Microsoft's consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Accept (for the organization when the checkbox is offered and `org_wide`).
    Accept {
        /// Tick "Consent on behalf of your organization".
        org_wide: bool,
    },
    /// Cancel.
    Cancel,
}

impl Browser {
    async fn finish(resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.text().await.expect("body");
        Page {
            status,
            location,
            body,
        }
    }

    fn host_of(url: &str) -> String {
        url::Url::parse(url)
            .ok()
            .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
            .unwrap_or_default()
    }

    /// Sends a request with the host's cookies and keeps the cookies the answer sets.
    async fn send(&self, url: &str, mut req: reqwest::RequestBuilder) -> Page {
        if let Some(ip) = &self.forwarded_for {
            req = req.header("x-forwarded-for", ip);
        }
        let host = Self::host_of(url);
        let cookies = {
            let jar = self.jar.lock().unwrap_or_else(|e| e.into_inner());
            jar.get(&host).map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        };
        if let Some(c) = cookies.filter(|c| !c.is_empty()) {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.expect("request");
        {
            let mut jar = self.jar.lock().unwrap_or_else(|e| e.into_inner());
            for v in resp.headers().get_all("set-cookie") {
                let Ok(v) = v.to_str() else { continue };
                let Some((name, value)) = v.split(';').next().and_then(|kv| kv.split_once('='))
                else {
                    continue;
                };
                let entry = jar.entry(host.clone()).or_default();
                if value.is_empty() || v.contains("Max-Age=0") {
                    entry.remove(name.trim());
                } else {
                    entry.insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
        }
        Self::finish(resp).await
    }

    /// Forgets every cookie (as another browser would have none).
    pub fn clear_cookies(&self) {
        self.jar.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// GET.
    pub async fn get(&self, url: &str) -> Page {
        self.send(url, self.http.get(url)).await
    }

    /// POST a form.
    pub async fn post(&self, url: &str, fields: &[(String, String)]) -> Page {
        self.send(url, self.http.post(url).form(fields)).await
    }

    /// Goes through Microsoft's pages from `url` as `user`: sign-in, one-time code if asked, consent
    /// page with `decision` if shown. Returns the first page that is not one of the simulator's pages
    /// with a form to fill: normally the redirect back to Consentry's callback.
    pub async fn at_microsoft(
        &self,
        url: &str,
        user: &str,
        password: &str,
        decision: Decision,
    ) -> Page {
        let page = self.get(url).await;
        self.fill_in(page, user, password, decision).await
    }

    /// Completes a device code sign-in as `user` on the verification page `verification_uri`: enters
    /// `user_code`, then signs in and answers the consent page like [`Browser::at_microsoft`]. Returns
    /// the last page (normally "You have signed in … You may now close this window").
    pub async fn device_login(
        &self,
        verification_uri: &str,
        user_code: &str,
        user: &str,
        password: &str,
        decision: Decision,
    ) -> Page {
        let page = self
            .post(
                verification_uri,
                &[("user_code".to_owned(), user_code.to_owned())],
            )
            .await;
        self.fill_in(page, user, password, decision).await
    }

    /// Fills in the simulator's sign-in, one-time code and consent pages from `page` on.
    async fn fill_in(
        &self,
        mut page: Page,
        user: &str,
        password: &str,
        decision: Decision,
    ) -> Page {
        for _ in 0..6 {
            if page.status != 200 {
                return page;
            }
            let body = page.body.clone();
            if body.contains("name=\"password\"") {
                let (action, mut fields) = form(&body);
                for f in &mut fields {
                    match f.0.as_str() {
                        "username" => f.1 = user.to_string(),
                        "password" => f.1 = password.to_string(),
                        _ => {}
                    }
                }
                page = self.post(&action, &fields).await;
            } else if body.contains("name=\"otc\"") {
                let (action, mut fields) = form(&body);
                for f in &mut fields {
                    if f.0 == "otc" {
                        f.1 = DEMO_OTC.to_string();
                    }
                }
                page = self.post(&action, &fields).await;
            } else if body.contains("name=\"decision\"") {
                let (action, mut fields) = form(&body);
                match decision {
                    Decision::Accept { org_wide } => {
                        if org_wide && body.contains("name=\"on_behalf\"") {
                            fields.push(("on_behalf".into(), "on".into()));
                        }
                        let value = if body.contains("value=\"accept\"") {
                            "accept"
                        } else {
                            "back"
                        };
                        fields.push(("decision".into(), value.into()));
                    }
                    Decision::Cancel => {
                        let value = if body.contains("value=\"cancel\"") {
                            "cancel"
                        } else {
                            "back"
                        };
                        fields.push(("decision".into(), value.into()));
                    }
                }
                page = self.post(&action, &fields).await;
            } else {
                return page;
            }
        }
        page
    }

    /// Follows redirects (by hand) from a page: through Consentry's callback and any further Microsoft
    /// step (signing in again as `user`), until a page that is not a redirect.
    pub async fn complete(
        &self,
        start_url: &str,
        user: &str,
        password: &str,
        decision: Decision,
    ) -> Page {
        let mut page = self.at_microsoft(start_url, user, password, decision).await;
        for _ in 0..6 {
            match (page.status, page.location.clone()) {
                (300..=399, Some(loc)) => {
                    let next = self.get(&loc).await;
                    page = if next.status == 200
                        && (next.body.contains("name=\"password\"")
                            || next.body.contains("name=\"decision\""))
                    {
                        self.at_microsoft(&loc, user, password, decision).await
                    } else {
                        next
                    };
                }
                _ => return page,
            }
        }
        page
    }
}

impl Browser {
    /// A browser trusting the simulator's CA (`ca_pem`), optionally sending `X-Forwarded-For: ip`
    /// (honoured when the simulator runs with `trust_forwarded_for`).
    pub fn new(ca_pem: &str, ip: Option<&str>) -> Result<Browser, reqwest::Error> {
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())?;
        Ok(Browser {
            http: reqwest::Client::builder()
                .tls_certs_merge([ca])
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()?,
            forwarded_for: ip.map(str::to_string),
            jar: std::sync::Mutex::default(),
        })
    }
}
