//! Several nodes on one PostgreSQL database: the address the other nodes reach this one at,
//! and how long a room's lease lasts.

use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;

/// How this node takes part when several share one PostgreSQL database (ignored on SQLite).
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// Base URL the other nodes reach this node at (`http://10.0.0.5:8080`, plain HTTP on the
    /// nodes' own network): a room's lease names its node by it, and a node that does not
    /// hold a room forwards that room's requests there. Defaults to http://<listen address>,
    /// which is refused when the listen address is 0.0.0.0 or [::] (the others could not
    /// reach that): set it then.
    #[arg(long, env = "DUET_NODE_URL")]
    pub node_url: Option<String>,
    /// Seconds a room's lease lasts without a renewal (the room renews it every third of
    /// that): a node that dies hands its rooms over after at most this long. 2 to 10.
    #[arg(
        long = "room-lease-secs",
        env = "DUET_ROOM_LEASE_SECS",
        default_value_t = 6,
        value_parser = clap::value_parser!(u64).range(2..=10)
    )]
    pub lease_secs: u64,
}

impl Default for NodeArgs {
    fn default() -> Self {
        NodeArgs {
            node_url: None,
            lease_secs: 6,
        }
    }
}

impl NodeArgs {
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.lease_secs.clamp(2, 10))
    }

    /// This node's URL: `--node-url` checked, or `http://<bound address>`.
    pub fn url(&self, bound: SocketAddr) -> Result<String, String> {
        let Some(given) = &self.node_url else {
            if bound.ip().is_unspecified() {
                return Err(format!(
                    "listening on {bound} (every interface), this node cannot tell the others where to reach it: set --node-url (DUET_NODE_URL) to the http://address:port they reach it at"
                ));
            }
            return Ok(format!("http://{bound}"));
        };
        let url = url::Url::parse(given.trim())
            .map_err(|e| format!("--node-url {given:?} is not a URL: {e}"))?;
        if url.scheme() != "http" {
            return Err(format!(
                "--node-url {given:?}: nodes reach each other over plain http:// on their own network"
            ));
        }
        if url.host_str().is_none_or(str::is_empty)
            || url.path() != "/"
            || url.query().is_some()
            || !url.username().is_empty()
        {
            return Err(format!(
                "--node-url {given:?}: give the base URL only, http://host:port"
            ));
        }
        if url.host().is_some_and(|h| {
            matches!(h, url::Host::Ipv4(ip) if ip.is_unspecified())
                || matches!(h, url::Host::Ipv6(ip) if ip.is_unspecified())
        }) {
            return Err(format!(
                "--node-url {given:?}: an unspecified address cannot be reached; give this node's own address"
            ));
        }
        Ok(url.as_str().trim_end_matches('/').to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(url: Option<&str>) -> NodeArgs {
        NodeArgs {
            node_url: url.map(str::to_owned),
            ..NodeArgs::default()
        }
    }

    #[test]
    fn node_url_defaults_to_the_bound_address_but_never_to_every_interface() {
        let bound: SocketAddr = "127.0.0.1:8081".parse().unwrap();
        assert_eq!(at(None).url(bound).unwrap(), "http://127.0.0.1:8081");
        let everywhere: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let refused = at(None).url(everywhere).unwrap_err();
        assert!(refused.contains("--node-url"), "{refused}");
        assert_eq!(
            at(Some("http://10.0.0.5:8080/")).url(everywhere).unwrap(),
            "http://10.0.0.5:8080"
        );
    }

    #[test]
    fn node_url_must_be_a_reachable_http_base_url() {
        let bound: SocketAddr = "127.0.0.1:8081".parse().unwrap();
        for bad in [
            "https://node:8080",
            "http://0.0.0.0:8080",
            "http://node:8080/duet",
            "node:8080",
            "http://[::]:8080",
        ] {
            assert!(at(Some(bad)).url(bound).is_err(), "{bad} was accepted");
        }
    }
}
