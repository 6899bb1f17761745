//! Where webhooks may point: https URLs to public addresses. Checked when a webhook is created
//! ([`check_webhook_url`]) and again at every delivery: the notifier's HTTP client resolves names
//! through [`PublicOnlyResolver`], which drops private, loopback and link-local addresses, so a
//! name that later resolves to an internal address (DNS rebinding) is never connected to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is an address a webhook may be delivered to: not private, loopback, link-local,
/// unspecified, broadcast, documentation, shared (CGNAT), multicast or unique-local, nor an
/// IPv4-mapped IPv6 form of one.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || o[0] == 0
        || (o[0] == 100 && (64..128).contains(&o[1]))
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || o[0] >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x64 && s[1] == 0xff9b))
}

/// Why a webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    /// Not an absolute URL.
    #[error("the webhook URL is not an absolute URL such as https://alerts.example.com/consentry")]
    NotAUrl,
    /// Not https (and private destinations are not allowed).
    #[error("the webhook URL must use https")]
    NotHttps,
    /// Credentials in the URL.
    #[error("the webhook URL must not carry a user name or password")]
    Credentials,
    /// A literal private, loopback or link-local address, or `localhost`.
    #[error(
        "the webhook URL points to a private, loopback or link-local address: give a public https endpoint"
    )]
    Private,
}

/// Checks a webhook URL: absolute http(s) without credentials; unless `allow_private`, https and
/// not a literal non-public address or `localhost` (names are checked again at delivery).
pub fn check_webhook_url(raw: &str, allow_private: bool) -> Result<url::Url, DestinationError> {
    let url = url::Url::parse(raw.trim()).map_err(|_| DestinationError::NotAUrl)?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(DestinationError::NotAUrl);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DestinationError::Credentials);
    }
    if allow_private {
        return Ok(url);
    }
    if url.scheme() != "https" {
        return Err(DestinationError::NotHttps);
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) if !is_public_ip(IpAddr::V4(ip)) => {
            Err(DestinationError::Private)
        }
        Some(url::Host::Ipv6(ip)) if !is_public_ip(IpAddr::V6(ip)) => {
            Err(DestinationError::Private)
        }
        Some(url::Host::Domain(d))
            if d.eq_ignore_ascii_case("localhost")
                || d.to_ascii_lowercase().ends_with(".localhost") =>
        {
            Err(DestinationError::Private)
        }
        _ => Ok(url),
    }
}

/// A resolver that answers only public addresses (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> =
                all.into_iter().filter(|a| is_public_ip(a.ip())).collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves only to private, loopback or link-local addresses; webhooks are delivered to public addresses only"
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(is_public_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn webhook_urls() {
        use DestinationError as E;
        assert!(check_webhook_url("https://alerts.example.com/x", false).is_ok());
        assert_eq!(
            check_webhook_url("http://alerts.example.com/x", false),
            Err(E::NotHttps)
        );
        assert_eq!(
            check_webhook_url("https://127.0.0.1/x", false),
            Err(E::Private)
        );
        assert_eq!(check_webhook_url("https://[::1]/x", false), Err(E::Private));
        assert_eq!(
            check_webhook_url("https://169.254.169.254/", false),
            Err(E::Private)
        );
        assert_eq!(
            check_webhook_url("https://LOCALHOST:8443/", false),
            Err(E::Private)
        );
        assert_eq!(
            check_webhook_url("https://u:p@example.com/", false),
            Err(E::Credentials)
        );
        assert_eq!(
            check_webhook_url("javascript:alert(1)", false),
            Err(E::NotAUrl)
        );
        assert_eq!(
            check_webhook_url("ftp://example.com/", true),
            Err(E::NotAUrl)
        );
        assert!(check_webhook_url("http://127.0.0.1:9/x", true).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_drops_loopback_answers() {
        let name: Name = "localhost".parse().unwrap();
        let err = PublicOnlyResolver
            .resolve(name)
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().contains("public addresses only"), "{err}");
    }
}
