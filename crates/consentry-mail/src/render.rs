//! What a message looks like: each [`EmailContent`] rendered to a plain-text part and an HTML part
//! (askama templates; the HTML is escaped, self-contained, with no image, remote resource or
//! tracking of any kind).

use askama::Template;
use consentry_domain::EmailContent;
use consentry_domain::mail::{
    AdminInvite, Digest, InvalidNotice, Invitation, VendorCredentialNotice,
};

/// A rendered message.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The `text/plain` part.
    pub text: String,
    /// The `text/html` part.
    pub html: String,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The parts can hold a consent link.
        f.debug_struct("Rendered")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

#[derive(Template)]
#[template(path = "invitation.txt")]
struct InvitationText<'a> {
    i: &'a Invitation,
    expires: String,
}

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationHtml<'a> {
    subject: &'a str,
    i: &'a Invitation,
    expires: String,
}

#[derive(Template)]
#[template(path = "invalid.txt")]
struct InvalidText<'a> {
    n: &'a InvalidNotice,
}

#[derive(Template)]
#[template(path = "invalid.html")]
struct InvalidHtml<'a> {
    subject: &'a str,
    n: &'a InvalidNotice,
}

#[derive(Template)]
#[template(path = "digest.txt")]
struct DigestText<'a> {
    d: &'a Digest,
}

#[derive(Template)]
#[template(path = "digest.html")]
struct DigestHtml<'a> {
    subject: &'a str,
    d: &'a Digest,
}

#[derive(Template)]
#[template(path = "admin_invitation.txt")]
struct AdminInviteText<'a> {
    i: &'a AdminInvite,
    expires: String,
}

#[derive(Template)]
#[template(path = "admin_invitation.html")]
struct AdminInviteHtml<'a> {
    subject: &'a str,
    i: &'a AdminInvite,
    expires: String,
}

#[derive(Template)]
#[template(path = "vendor_credential.txt")]
struct VendorCredentialText<'a> {
    subject: &'a str,
    n: &'a VendorCredentialNotice,
    ends: String,
}

#[derive(Template)]
#[template(path = "vendor_credential.html")]
struct VendorCredentialHtml<'a> {
    subject: &'a str,
    n: &'a VendorCredentialNotice,
    ends: String,
}

fn day_and_time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// Renders a message's subject, text and HTML.
pub fn render(content: &EmailContent) -> Result<Rendered, askama::Error> {
    let subject = content.subject();
    let (text, html) = match content {
        EmailContent::Invitation(i) => {
            let expires = day_and_time(i.expires_at);
            (
                InvitationText {
                    i,
                    expires: expires.clone(),
                }
                .render()?,
                InvitationHtml {
                    subject: &subject,
                    i,
                    expires,
                }
                .render()?,
            )
        }
        EmailContent::ProfileInvalid(n) => (
            InvalidText { n }.render()?,
            InvalidHtml {
                subject: &subject,
                n,
            }
            .render()?,
        ),
        EmailContent::VendorCredential(n) => {
            let ends = n.ends_at.map(day_and_time).unwrap_or_else(|| "?".into());
            (
                VendorCredentialText {
                    subject: &subject,
                    n,
                    ends: ends.clone(),
                }
                .render()?,
                VendorCredentialHtml {
                    subject: &subject,
                    n,
                    ends,
                }
                .render()?,
            )
        }
        EmailContent::AdminInvitation(i) => {
            let expires = day_and_time(i.expires_at);
            (
                AdminInviteText {
                    i,
                    expires: expires.clone(),
                }
                .render()?,
                AdminInviteHtml {
                    subject: &subject,
                    i,
                    expires,
                }
                .render()?,
            )
        }
        EmailContent::Digest(d) => (
            DigestText { d }.render()?,
            DigestHtml {
                subject: &subject,
                d,
            }
            .render()?,
        ),
    };
    Ok(Rendered {
        subject,
        text,
        html,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use consentry_domain::mail::{DigestLine, InvitationApp};

    fn invitation() -> EmailContent {
        EmailContent::Invitation(Invitation {
            organization: "Northwind <Backup>".into(),
            tenant_domain: "contoso.example".into(),
            link: "https://consentry.example/campaign/abc?x=1&y=2".into(),
            expires_at: time::macros::datetime!(2026-12-10 08:30 UTC),
            reminder: false,
            started_by: "Ops".into(),
            apps: vec![InvitationApp {
                app_name: "Insights".into(),
                entra_app_name: Some("AvePoint Insights".into()),
                permissions: vec!["Files.Read.All".into()],
                why: "to read files".into(),
                required_roles: "Global Administrator".into(),
            }],
            outbound_addresses: vec!["203.0.113.7".into()],
        })
    }

    #[test]
    fn every_kind_renders_text_and_escaped_html_without_images() {
        let all = [
            invitation(),
            EmailContent::ProfileInvalid(InvalidNotice {
                organization: "Northwind".into(),
                tenant_domain: "contoso.example".into(),
                app_name: "Insights <script>".into(),
                profile_id: "p1".into(),
                reason: "The consent was revoked.".into(),
                remediation: vec!["Re-authorize it.".into(), "Then check.".into()],
            }),
            EmailContent::Digest(Digest {
                organization: "Northwind".into(),
                day: "2026-12-03".into(),
                counts: [3, 1, 2, 0],
                lines: vec![DigestLine {
                    tenant_domain: "contoso.example".into(),
                    app_name: "Insights".into(),
                    status: "invalid".into(),
                    reason: "revoked".into(),
                }],
            }),
            EmailContent::AdminInvitation(AdminInvite {
                organization: "Fabrikam & Co".into(),
                url: "https://consentry.example/console/invitations/tok3n".into(),
                expires_at: time::macros::datetime!(2026-12-06 09:00 UTC),
            }),
        ];
        for c in &all {
            let r = render(c).unwrap();
            assert_eq!(r.subject, c.subject());
            assert!(!r.text.is_empty() && r.html.starts_with("<!DOCTYPE html>"));
            let lower = r.html.to_ascii_lowercase();
            for banned in ["<img", "<script", "src=", "url(", "<link", "@import"] {
                assert!(!lower.contains(banned), "{banned} in {}", r.html);
            }
        }
        let r = render(&all[0]).unwrap();
        assert!(
            r.text
                .contains("https://consentry.example/campaign/abc?x=1&y=2")
        );
        assert!(
            r.html
                .contains("href=\"https://consentry.example/campaign/abc?x=1&#38;y=2\""),
            "{}",
            r.html
        );
        assert!(r.html.contains("Northwind &#60;Backup&#62;"), "{}", r.html);
        assert!(r.text.contains("2026-12-10 08:30 UTC") && r.text.contains("203.0.113.7"));
        let r = render(&all[1]).unwrap();
        assert!(r.html.contains("Insights &#60;script&#62;"));
        assert!(r.text.contains("1. Re-authorize it.") && r.text.contains("2. Then check."));
        assert!(!format!("{r:?}").contains("Re-authorize"));
        let r = render(&all[3]).unwrap();
        assert!(
            r.text
                .contains("https://consentry.example/console/invitations/tok3n")
        );
        assert!(r.text.contains("until 2026-12-06 09:00 UTC"), "{}", r.text);
        assert!(
            r.html
                .contains("href=\"https://consentry.example/console/invitations/tok3n\""),
            "{}",
            r.html
        );
        assert!(r.html.contains("Fabrikam &#38; Co"), "{}", r.html);
        assert!(
            !format!("{r:?}").contains("tok3n"),
            "the link is never in Debug"
        );
    }
}
