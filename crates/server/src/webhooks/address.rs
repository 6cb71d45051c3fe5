//! Which addresses a webhook may reach. Loopback, private, link-local, unique-local, shared
//! (CGNAT), unspecified, broadcast, multicast, reserved, benchmarking and documentation addresses
//! (and IPv6 forms that lead to any of them: IPv4-mapped, NAT64, 6to4) are refused unless the server was
//! started with `--webhook-allow-private-addresses`: a webhook URL must not be a way into the
//! team's own network. Checked when an endpoint is registered and again at every delivery, on
//! the addresses the connection actually uses ([`Guarded`] is the HTTP client's resolver), so a
//! name that resolves differently later (DNS rebinding) is still refused.

use std::net::{IpAddr, SocketAddr};

/// Why a URL may not be used.
#[derive(Debug, thiserror::Error)]
pub enum UrlRefused {
    #[error("not a URL: {0}")]
    Malformed(String),
    #[error("only http:// and https:// URLs are taken")]
    Scheme,
    #[error("the URL has no host")]
    NoHost,
    #[error("{host} resolves to {ip}, a loopback, private, link-local or otherwise internal address (the server allows these only with --webhook-allow-private-addresses)")]
    Internal { host: String, ip: IpAddr },
    #[error("{host} does not resolve: {reason}")]
    Unresolved { host: String, reason: String },
}

/// Whether `ip` is one a webhook may not reach by default: everything in IANA's special-purpose
/// registries that is not globally reachable, and, for the IPv6 forms that carry an IPv4 address
/// (mapped, NAT64, 6to4), the IPv4 address they lead to.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || a == 0
                // Shared address space (RFC 6598, carrier-grade NAT).
                || (a == 100 && (64..128).contains(&b))
                // IETF protocol assignments (192.0.0.0/24), the documentation nets, the 6to4
                // relay anycast (192.88.99.0/24) and benchmarking (198.18.0.0/15).
                || (a == 192 && b == 0 && (c == 0 || c == 2))
                || (a == 192 && b == 88 && c == 99)
                || (a == 198 && (b == 18 || b == 19))
                || (a == 198 && b == 51 && c == 100)
                || (a == 203 && b == 0 && c == 113)
                // Reserved (240.0.0.0/4), which holds the broadcast address too.
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                IpAddr::V4(std::net::Ipv4Addr::from(
                    (u32::from(hi) << 16) | u32::from(lo),
                ))
            };
            // NAT64's well-known prefix (64:ff9b::/96) leads to the IPv4 address in its last 32
            // bits; 6to4 (2002::/16) to the one in bits 16 to 48.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_internal(embedded(s[6], s[7]));
            }
            if s[0] == 0x2002 {
                return is_internal(embedded(s[1], s[2]));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                // IPv4-compatible (::/96, deprecated) and the rest of ::/8 (reserved).
                || (s[0] & 0xff00) == 0
                // Local-use NAT64 (64:ff9b:1::/48) and discard-only (100::/64).
                || s[..3] == [0x64, 0xff9b, 1]
                || s[..4] == [0x100, 0, 0, 0]
                // IETF protocol assignments (2001::/23: Teredo, which hides an IPv4 address,
                // benchmarking, ORCHID) and documentation (2001:db8::/32).
                || (s[0] == 0x2001 && s[1] < 0x200)
                || (s[0] == 0x2001 && s[1] == 0xdb8)
                // Site-local (fec0::/10, deprecated).
                || (s[0] & 0xffc0) == 0xfec0
        }
    }
}

/// Parses `url` and checks where it leads: its scheme, and every address its host resolves to
/// (any internal one refuses it, unless `allow_private`).
pub async fn checked_url(url: &str, allow_private: bool) -> Result<reqwest::Url, UrlRefused> {
    let parsed = reqwest::Url::parse(url).map_err(|e| UrlRefused::Malformed(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(UrlRefused::Scheme);
    }
    let host = match parsed.host() {
        None => return Err(UrlRefused::NoHost),
        Some(url::Host::Ipv4(ip)) => return literal(&parsed, IpAddr::V4(ip), allow_private),
        Some(url::Host::Ipv6(ip)) => return literal(&parsed, IpAddr::V6(ip), allow_private),
        Some(url::Host::Domain(name)) => name.to_owned(),
    };
    if allow_private {
        return Ok(parsed);
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addrs = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| UrlRefused::Unresolved {
            host: host.clone(),
            reason: e.to_string(),
        })?;
    let refused = addrs.map(|a| a.ip()).find(|ip| is_internal(*ip));
    match refused {
        Some(ip) => Err(UrlRefused::Internal { host, ip }),
        None => Ok(parsed),
    }
}

fn literal(
    url: &reqwest::Url,
    ip: IpAddr,
    allow_private: bool,
) -> Result<reqwest::Url, UrlRefused> {
    if !allow_private && is_internal(ip) {
        return Err(UrlRefused::Internal {
            host: ip.to_string(),
            ip,
        });
    }
    Ok(url.clone())
}

/// The HTTP client's resolver: only addresses [`is_internal`] allows are handed to the
/// connector, so the check holds for the connection itself, whatever DNS said at registration.
pub struct Guarded {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| allow_private || !is_internal(a.ip()))
                .collect();
            match (allowed.is_empty(), found.first()) {
                (true, Some(addr)) => Err(Box::new(UrlRefused::Internal {
                    host,
                    ip: addr.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges_are_refused_and_public_ones_are_not() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "198.18.0.1",
            "198.19.255.255",
            "240.0.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "::7f00:1",
            "::a00:1",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "2001::1",
            "2001:db8::1",
            "100::1",
            "fec0::1",
        ] {
            let ip: IpAddr = internal.parse().unwrap();
            assert!(is_internal(ip), "{internal} should be refused");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "100.128.0.1",
            "198.20.0.1",
            // NAT64 and 6to4 forms of a public IPv4 address lead where it leads.
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2a00:1450::1",
        ] {
            let ip: IpAddr = public.parse().unwrap();
            assert!(!is_internal(ip), "{public} is public");
        }
    }

    #[tokio::test]
    async fn urls_that_lead_inside_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:9/hook",
            "http://[::1]/hook",
            "http://localhost:9/hook",
            "https://169.254.169.254/latest/meta-data",
        ] {
            let refused = checked_url(url, false).await;
            assert!(
                matches!(refused, Err(UrlRefused::Internal { .. })),
                "{url}: {refused:?}"
            );
            assert!(checked_url(url, true).await.is_ok(), "{url} with the flag");
        }
        assert!(matches!(
            checked_url("ftp://example.com/", false).await,
            Err(UrlRefused::Scheme)
        ));
        assert!(matches!(
            checked_url("not a url", false).await,
            Err(UrlRefused::Malformed(_))
        ));
    }
}
