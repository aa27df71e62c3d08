//! What a node needs to know about the overlay networks its tasks use, as the dispatcher
//! sends it (JSON in `SessionMessage.networks`, beside the assignments): per network its
//! VNI and subnet, the peers (every task elsewhere on it, with its node's underlay
//! address), the names the embedded DNS answers and the VIPs' backends. Only networks
//! this node's tasks use travel to it.
//!
//! ```text
//!  manager::node_networks(store, node) ─▶ NodeNetworks ─JSON─▶ agent::network (ensure,
//!                                                              peers, VIPs, DNS records)
//! ```

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// Everything about networks one node gets, whole on every change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeNetworks {
    /// This node's underlay (data path) address as the managers know it.
    pub local_underlay: Option<Ipv4Addr>,
    /// The swarm's VXLAN UDP port (`swarm init --data-path-port`).
    pub data_path_port: u16,
    pub networks: Vec<NetworkInfo>,
    /// The routing mesh, when a service publishes a port through it: the `ingress`
    /// network is then also in `networks` (every node has it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressInfo>,
    /// Host-mode ports of this node's tasks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_ports: Vec<HostPortInfo>,
}

/// What a node's ingress sandbox serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngressInfo {
    /// The `ingress` network (its parameters and peers are in `networks`).
    pub network_id: String,
    /// This node's own address on it (`10.0.0.2/24`), the sandbox's; None until the
    /// managers gave this node one.
    pub addr: Option<String>,
    /// Every node's sandbox address: where tasks send replies back (keep_source).
    pub sandboxes: Vec<Ipv4Addr>,
    /// Every port published through the mesh in the swarm, with the running tasks.
    pub published: Vec<PublishedInfo>,
    /// Tasks see the client's own address (no SNAT on the way in).
    pub keep_source: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublishedInfo {
    /// `tcp` or `udp`.
    pub proto: String,
    pub published: u16,
    pub target: u16,
    /// Running tasks' addresses on the ingress network.
    pub backends: Vec<Ipv4Addr>,
}

/// A host-mode port of one of this node's tasks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HostPortInfo {
    pub task_id: String,
    pub proto: String,
    pub published: u16,
    pub target: u16,
}

impl NodeNetworks {
    pub fn network(&self, id: &str) -> Option<&NetworkInfo> {
        self.networks.iter().find(|n| n.id == id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkInfo {
    pub id: String,
    pub name: String,
    pub vni: u32,
    /// `10.0.1.0/24`.
    pub subnet: String,
    pub gateway: Ipv4Addr,
    /// `--internal`: no egress through the gateway bridge.
    #[serde(default)]
    pub internal: bool,
    /// Every task on this network on another node (no entry for this node's own).
    pub peers: Vec<PeerInfo>,
    /// Names the embedded DNS answers for containers on this network.
    pub records: Vec<NameRecord>,
    /// The VIP-mode services on this network.
    pub vips: Vec<VipInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PeerInfo {
    pub task_ip: Ipv4Addr,
    /// Docker's `02:42:<ip>` (the MAC every endpoint gets).
    pub mac: String,
    pub underlay: Ipv4Addr,
}

/// A name and its addresses: `web` (VIP, or the tasks with dnsrr), `tasks.web`,
/// `web.1.<task id>`, aliases.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NameRecord {
    pub name: String,
    pub addrs: Vec<Ipv4Addr>,
    /// Answers PTR queries for its addresses (a task's own name, as libnetwork).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reverse: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipInfo {
    pub service: String,
    pub vip: Ipv4Addr,
    /// `(tcp|udp, target port)`; empty: every port.
    pub ports: Vec<(String, u16)>,
    /// Running tasks' addresses on this network.
    pub backends: Vec<Ipv4Addr>,
}

/// One of a task's interfaces, in attachment order (eth0, eth1, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskAttachment {
    pub network_id: String,
    /// `10.0.1.5/24`.
    pub addr: String,
}

/// `10.0.1.5/24` -> the address and the prefix length.
pub fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, p) = s.split_once('/')?;
    let prefix: u8 = p.parse().ok().filter(|p| *p <= 32)?;
    Some((a.parse().ok()?, prefix))
}

/// Docker's MAC for an endpoint address, as text.
pub fn mac_text(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// `02:42:0a:00:01:05` -> bytes.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_and_mac() {
        assert_eq!(
            parse_cidr("10.0.1.5/24"),
            Some((Ipv4Addr::new(10, 0, 1, 5), 24))
        );
        assert_eq!(parse_cidr("10.0.1.5"), None);
        let m = mac_text(Ipv4Addr::new(10, 0, 1, 5));
        assert_eq!(m, "02:42:0a:00:01:05");
        assert_eq!(parse_mac(&m), Some([2, 0x42, 10, 0, 1, 5]));
    }
}
