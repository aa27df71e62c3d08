//! Overlay networks as libnetwork's overlay driver builds them: one network namespace
//! per network holding a bridge `br0` (the gateway address) and `vxlan0`; tasks join
//! through veth pairs; remote tasks are static FDB and neighbour entries from the
//! assignments (no learning, no flooding across the underlay).
//!
//! The VXLAN device is created in the host namespace and then moved: its UDP socket
//! stays in the namespace it was created in, so it sends from the host's underlay
//! address while its frames are bridged inside the overlay namespace. One consequence:
//! two networks with the same VNI cannot exist on one host (the kernel refuses the
//! second device), which the allocator's unique VNIs already rule out.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use crate::error::{Error, Result};
use crate::netlink::{Neighbour, Netlink, VxlanSpec};
use crate::{endpoint_link_name, netns, Host};

/// Docker's default VXLAN port (`--data-path-port`).
pub const DEFAULT_DATA_PATH_PORT: u16 = 4789;
/// 1500 less the 50 bytes of VXLAN over IPv4, libnetwork's default.
pub const DEFAULT_MTU: u32 = 1450;
const BRIDGE: &str = "br0";
/// A VXLAN device's name in the host namespace between its creation and its move.
pub(crate) const VXLAN_TMP_PREFIX: &str = "swvx";
const VXLAN: &str = "vxlan0";

/// One overlay network as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    pub network_id: String,
    pub vni: u32,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub data_path_port: u16,
    /// The address this node's VXLAN packets leave from (its advertise address).
    pub local_underlay_ip: Ipv4Addr,
    pub mtu: u32,
}

impl Overlay {
    /// With Docker's defaults: port 4789, MTU 1450.
    pub fn new(
        network_id: impl Into<String>,
        vni: u32,
        subnet: Ipv4Net,
        gateway: Ipv4Addr,
        local_underlay_ip: Ipv4Addr,
    ) -> Self {
        Self {
            network_id: network_id.into(),
            vni,
            subnet,
            gateway,
            data_path_port: DEFAULT_DATA_PATH_PORT,
            local_underlay_ip,
            mtu: DEFAULT_MTU,
        }
    }
}

/// A task on another node: reach `task_ip`/`task_mac` through the tunnel to
/// `underlay_ip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub underlay_ip: Ipv4Addr,
    pub task_ip: Ipv4Addr,
    pub task_mac: [u8; 6],
}

impl Peer {
    /// A peer whose MAC is derived from its address, as Docker derives it.
    pub fn new(underlay_ip: Ipv4Addr, task_ip: Ipv4Addr) -> Self {
        Self {
            underlay_ip,
            task_ip,
            task_mac: mac_for(task_ip),
        }
    }
}

/// A task's interface: `ifname` with `addr/prefix` inside `container_netns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub container_netns: PathBuf,
    pub ifname: String,
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

/// Docker's MAC for an address: `02:42` and the four bytes of the IPv4 address.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x42, a, b, c, d]
}

impl Host {
    /// Where the namespace of network `network_id` is pinned: `ov-` and the first 12
    /// characters of the ID.
    pub fn overlay_netns(&self, network_id: &str) -> PathBuf {
        let short: String = network_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect();
        self.netns_dir().join(format!("ov-{short}"))
    }

    /// Make (or complete, or confirm) the overlay namespace, its bridge and its VXLAN
    /// device; a device with another VNI, local address or port is replaced. Returns
    /// the namespace's path.
    pub fn ensure_overlay(&self, ov: &Overlay) -> Result<PathBuf> {
        if ov.network_id.is_empty() || ov.vni == 0 || ov.vni >= 1 << 24 {
            return Err(Error::Invalid {
                what: "overlay (network id, vni 1..2^24)",
                value: format!("{:?} vni {}", ov.network_id, ov.vni),
            });
        }
        let ns = self.overlay_netns(&ov.network_id);
        netns::create(&ns)?;
        let mut nl = Netlink::open(Some(&ns))?;
        let br = match nl.link(BRIDGE)? {
            Some(l) => l,
            None => {
                nl.add_bridge(BRIDGE, Some(ov.mtu))?;
                nl.need_link(BRIDGE)?
            }
        };
        nl.ensure_addr(br.index, ov.gateway, ov.subnet.prefix_len())?;
        match nl.link(VXLAN)? {
            Some(l)
                if (l.vni, l.vxlan_local, l.vxlan_port)
                    == (
                        Some(ov.vni),
                        Some(ov.local_underlay_ip),
                        Some(ov.data_path_port),
                    ) => {}
            Some(stale) => {
                nl.del_link(stale.index)?;
                self.create_vxlan(ov, &ns)?;
            }
            None => self.create_vxlan(ov, &ns)?,
        }
        let vx = nl.need_link(VXLAN)?;
        if vx.master != Some(br.index) {
            nl.set_master(vx.index, br.index)?;
        }
        nl.set_up(vx.index)?;
        nl.set_up(br.index)?;
        Ok(ns)
    }

    /// Create the VXLAN device in the host namespace under a name of ours, then move it
    /// into the overlay namespace as `vxlan0`.
    fn create_vxlan(&self, ov: &Overlay, ns: &Path) -> Result<()> {
        let tmp = format!("{VXLAN_TMP_PREFIX}{:06x}", ov.vni);
        let mut host = Netlink::open(self.netns())?;
        host.del_link_by_name(&tmp)?; // left by a crash between create and move
        host.add_vxlan(
            &tmp,
            &VxlanSpec {
                vni: ov.vni,
                local: ov.local_underlay_ip,
                port: ov.data_path_port,
                mtu: ov.mtu,
            },
        )?;
        let link = host.need_link(&tmp)?;
        host.move_to(link.index, ns, VXLAN).inspect_err(|_| {
            let _ = host.del_link(link.index);
        })
    }

    /// Remove network `network_id`'s namespace and everything in it; gone already is
    /// fine. Links are deleted before the namespace is unpinned so that nothing
    /// lingers if some process still holds the namespace open.
    pub fn remove_overlay(&self, network_id: &str) -> Result<()> {
        let ns = self.overlay_netns(network_id);
        if netns::is_netns(&ns) {
            let mut nl = Netlink::open(Some(&ns))?;
            for link in nl.links()? {
                if link.kind.is_some() {
                    match nl.del_link(link.index) {
                        Err(e) if !e.is_not_found() => return Err(e),
                        _ => {}
                    }
                }
            }
        }
        netns::remove(&ns)
    }

    /// Make the FDB and neighbour entries of network `network_id` exactly `peers`:
    /// add the missing, replace the changed, delete the rest.
    pub fn set_peers(&self, network_id: &str, peers: &[Peer]) -> Result<()> {
        let ns = self.overlay_netns(network_id);
        let mut nl = Netlink::open(Some(&ns))?;
        let vx = nl.need_link(VXLAN)?;
        let fdb: BTreeSet<Neighbour> = peers
            .iter()
            .map(|p| Neighbour {
                ip: p.underlay_ip,
                mac: p.task_mac,
            })
            .collect();
        let neigh: BTreeSet<Neighbour> = peers
            .iter()
            .map(|p| Neighbour {
                ip: p.task_ip,
                mac: p.task_mac,
            })
            .collect();
        for (is_fdb, want) in [(true, fdb), (false, neigh)] {
            let have: BTreeSet<Neighbour> = nl.neighbours(vx.index, is_fdb)?.into_iter().collect();
            for gone in have.difference(&want) {
                nl.del_neighbour(vx.index, is_fdb, gone)?;
            }
            for new in want.difference(&have) {
                nl.add_neighbour(vx.index, is_fdb, new)?;
            }
        }
        Ok(())
    }

    /// Give the container at `ep.container_netns` the interface `ep.ifname` on network
    /// `network_id`: a veth pair from the overlay's bridge, the address, a MAC derived
    /// from it, up, and no default route (egress goes through the gateway bridge).
    /// Returns the MAC.
    pub fn attach(&self, network_id: &str, ep: &Endpoint) -> Result<[u8; 6]> {
        let ns = self.overlay_netns(network_id);
        if !netns::is_netns(&ns) {
            return Err(Error::Invalid {
                what: "overlay network (not ensured on this node)",
                value: network_id.to_owned(),
            });
        }
        let mac = mac_for(ep.addr);
        let outer = endpoint_link_name('v', &ep.container_netns, &ep.ifname);
        let mut ov = Netlink::open(Some(&ns))?;
        let mtu = ov.need_link(VXLAN)?.mtu;
        connect(&mut ov, BRIDGE, &outer, ep, mac, mtu)?;
        Ok(mac)
    }

    /// Take `ep.ifname` out of the container; the veth pair goes with it. A container
    /// namespace already gone took the pair with it.
    pub fn detach(&self, ep: &Endpoint) -> Result<()> {
        if !netns::is_netns(&ep.container_netns) {
            return Ok(());
        }
        Netlink::open(Some(&ep.container_netns))?.del_link_by_name(&ep.ifname)
    }
}

/// The shared half of `attach` and `attach_gw`: a veth pair whose outer end `outer` is
/// enslaved to `bridge` (in `outside`'s namespace) and whose inner end is `ep` with
/// `mac`, both up. Reuses a pair already there.
pub(crate) fn connect(
    outside: &mut Netlink,
    bridge: &str,
    outer: &str,
    ep: &Endpoint,
    mac: [u8; 6],
    mtu: u32,
) -> Result<()> {
    let mut inside = Netlink::open(Some(&ep.container_netns))?;
    if inside.link(&ep.ifname)?.is_none() || outside.link(outer)?.is_none() {
        inside.del_link_by_name(&ep.ifname)?;
        outside.del_link_by_name(outer)?;
        outside.add_veth(
            outer,
            &ep.ifname,
            Some(&ep.container_netns),
            Some(mac),
            Some(mtu),
        )?;
    }
    let br = outside.need_link(bridge)?;
    let link = outside.need_link(outer)?;
    if link.master != Some(br.index) {
        outside.set_master(link.index, br.index)?;
    }
    outside.set_up(link.index)?;
    let inner = inside.need_link(&ep.ifname)?;
    inside.ensure_addr(inner.index, ep.addr, ep.prefix)?;
    inside.set_up(inner.index)?;
    inside.set_up_by_name("lo")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_is_dockers() {
        assert_eq!(
            mac_for(Ipv4Addr::new(10, 0, 1, 5)),
            [0x02, 0x42, 10, 0, 1, 5]
        );
    }

    #[test]
    fn overlay_netns_path_uses_a_short_id() {
        let host = Host::new("/run/swarm");
        assert_eq!(
            host.overlay_netns("4mp1e2x9qkz7abcdefghijklm"),
            PathBuf::from("/run/swarm/netns/ov-4mp1e2x9qkz7")
        );
    }
}
