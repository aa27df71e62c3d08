//! What one container's server answers for: its networks, and the resolv.conf facts that
//! change the answers.

use std::net::SocketAddr;

/// The view of one container (libnetwork's sandbox, as far as DNS goes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The IDs of the networks the container is on, in priority order: a name on more
    /// than one of them resolves on the first (libnetwork sorts overlays first, then
    /// ingress, then the gateway bridge; the agent passes its attachments in order).
    pub networks: Vec<String>,
    /// The container's resolv.conf sets `ndots` itself (from the host or the service's
    /// DNS options). Then a single-label A/AAAA query that is not ours gets an empty
    /// NOERROR instead of being forwarded, so the client goes on with its search
    /// domains (libnetwork's `NdotsSet`). See [`super::ContainerDns::ndots_set`].
    pub ndots_set: bool,
    /// Upstreams for this container instead of the resolver's (the service's
    /// `DNSConfig.Nameservers`); `None`: the resolver's.
    pub upstreams: Option<Vec<SocketAddr>>,
}

impl Scope {
    pub fn new(networks: Vec<String>) -> Self {
        Self {
            networks,
            ..Self::default()
        }
    }
}

impl From<Vec<String>> for Scope {
    fn from(networks: Vec<String>) -> Self {
        Self::new(networks)
    }
}
