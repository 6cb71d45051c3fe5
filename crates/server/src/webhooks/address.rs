//! Which addresses a webhook may reach. Loopback, private, link-local, unique-local, shared
//! (CGNAT), unspecified, broadcast and multicast addresses are refused unless the server was
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

/// Whether `ip` is one a webhook may not reach by default.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                // Shared address space (RFC 6598, carrier-grade NAT).
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
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
        ] {
            let ip: IpAddr = internal.parse().unwrap();
            assert!(is_internal(ip), "{internal} should be refused");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
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
