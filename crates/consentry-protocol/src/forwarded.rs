//! The client's address behind trusted proxies, from the `Forwarded` (RFC 7239) or `X-Forwarded-For`
//! headers a load balancer adds.
//!
//! Only proxies the operator trusts are believed: starting from the connection's peer, while the
//! address in hand is a trusted proxy, the next address to the left of the forwarding chain is taken
//! (each proxy appends the address it received the request from, so the rightmost entries are the
//! nearest hops and the leftmost ones are whatever the client chose to send). The first address that
//! is not a trusted proxy is the client. A chain that runs out, or holds an entry that is not an
//! address (`unknown`, an obfuscated identifier, garbage), stops at the last trusted hop seen, so a
//! malformed header never yields an address the proxies did not vouch for.
//!
//! `Forwarded` is preferred when present (it is the standard); otherwise `X-Forwarded-For`. Several
//! header lines are one list, in order.

use std::net::{IpAddr, SocketAddr};

/// The longest chain read (hops beyond it are ignored: the client is then the last trusted hop).
pub const MAX_HOPS: usize = 32;

/// The address the request came from, believing forwarding headers only from `trusted` peers.
/// `forwarded` and `x_forwarded_for` are the values of every `Forwarded` and `X-Forwarded-For`
/// header line, in the order received.
pub fn client_address(
    peer: IpAddr,
    forwarded: &[&str],
    x_forwarded_for: &[&str],
    trusted: impl Fn(IpAddr) -> bool,
) -> IpAddr {
    if !trusted(peer) {
        return peer;
    }
    let chain: Vec<Option<IpAddr>> = if forwarded.iter().any(|v| !v.trim().is_empty()) {
        forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(forwarded_for)
            .collect()
    } else {
        x_forwarded_for
            .iter()
            .flat_map(|v| v.split(','))
            .map(|s| parse_node(s.trim()))
            .collect()
    };
    let mut client = peer;
    for hop in chain.into_iter().rev().take(MAX_HOPS) {
        match hop {
            Some(addr) => {
                client = addr;
                if !trusted(addr) {
                    return addr;
                }
            }
            None => return client,
        }
    }
    client
}

/// The `for=` node of one `Forwarded` element (`for=192.0.2.60;proto=http;by=203.0.113.43`), if it
/// names an address.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        parse_node(value)
    })
}

/// An address, with or without a port, IPv6 with or without brackets.
fn parse_node(s: &str) -> Option<IpAddr> {
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    // `[2001:db8::1]` without a port.
    s.strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .and_then(|v| v.parse::<IpAddr>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The balancer at 10.0.0.5 and an internal proxy at 10.0.0.9 are trusted.
    fn trusted(a: IpAddr) -> bool {
        matches!(a, IpAddr::V4(v4) if v4.octets()[0] == 10)
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        assert_eq!(
            client_address(
                ip("198.51.100.7"),
                &["for=192.0.2.1"],
                &["192.0.2.1"],
                trusted
            ),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn behind_the_balancer_the_forwarded_address_is_the_client() {
        assert_eq!(
            client_address(ip("10.0.0.5"), &[], &["203.0.113.9"], trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(
                ip("10.0.0.5"),
                &["for=\"203.0.113.9:4711\";proto=https;by=10.0.0.5"],
                &[],
                trusted
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(ip("10.0.0.5"), &["For=\"[2001:db8::7]:443\""], &[], trusted),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn a_spoofed_leftmost_entry_is_not_believed() {
        // The client sent "X-Forwarded-For: 10.9.9.9, 1.2.3.4"; the balancer appended the real peer.
        assert_eq!(
            client_address(
                ip("10.0.0.5"),
                &[],
                &["10.9.9.9, 1.2.3.4", "203.0.113.9"],
                trusted
            ),
            ip("203.0.113.9")
        );
        // Two trusted hops: the balancer, then an internal proxy.
        assert_eq!(
            client_address(
                ip("10.0.0.9"),
                &[],
                &["1.2.3.4, 203.0.113.9, 10.0.0.5"],
                trusted
            ),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for() {
        assert_eq!(
            client_address(
                ip("10.0.0.5"),
                &["for=203.0.113.1"],
                &["203.0.113.2"],
                trusted
            ),
            ip("203.0.113.1")
        );
    }

    #[test]
    fn a_chain_that_runs_out_or_breaks_stops_at_the_last_trusted_hop() {
        assert_eq!(
            client_address(ip("10.0.0.5"), &[], &[], trusted),
            ip("10.0.0.5")
        );
        assert_eq!(
            client_address(ip("10.0.0.5"), &[], &["10.0.0.9"], trusted),
            ip("10.0.0.9")
        );
        for garbage in ["unknown", "_hidden", "not an address", "", "999.1.1.1"] {
            assert_eq!(
                client_address(
                    ip("10.0.0.5"),
                    &[],
                    &[&format!("1.2.3.4, {garbage}")],
                    trusted
                ),
                ip("10.0.0.5"),
                "{garbage:?}"
            );
        }
        assert_eq!(
            client_address(ip("10.0.0.5"), &["for=unknown"], &[], trusted),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn a_long_chain_is_cut() {
        let chain = vec!["10.1.1.1"; MAX_HOPS + 5].join(", ");
        assert_eq!(
            client_address(
                ip("10.0.0.5"),
                &[],
                &[&format!("1.2.3.4, {chain}")],
                trusted
            ),
            ip("10.1.1.1")
        );
    }
}
