//! What of ours exists on a host, by name alone: the restarted agent compares it with
//! its assignments and removes the rest; tests check that nothing is left.

use std::path::PathBuf;

use crate::error::Result;
use crate::netlink::{Link, Netlink};
use crate::{ingress, netns, nft, Host, LINK_PREFIX};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Links named `sw*` in the host namespace (the gateway bridge and its veths, a
    /// VXLAN device caught between create and move).
    pub links: Vec<Link>,
    /// Overlay namespaces pinned under the run dir, as the short network IDs that
    /// `remove_overlay` accepts.
    pub overlays: Vec<String>,
    /// Files under the run dir's `netns/` that are not namespaces (a crash between
    /// create and mount).
    pub stale_files: Vec<PathBuf>,
    /// Families of the nftables tables named `swarm` in the host namespace.
    pub nft_tables: Vec<String>,
    /// The routing mesh's sandbox is pinned under the run dir (`netns/ingress_sbox`).
    pub ingress_sandbox: bool,
    /// Our `ip` tables for ports in the host namespace: `swarm_mesh` (published
    /// through the mesh), `swarm_ports` (host mode).
    pub port_tables: Vec<String>,
}

impl Inventory {
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
            && self.overlays.is_empty()
            && self.stale_files.is_empty()
            && self.nft_tables.is_empty()
            && !self.ingress_sandbox
            && self.port_tables.is_empty()
    }
}

impl Host {
    pub fn list_ours(&self) -> Result<Inventory> {
        let mut inv = Inventory {
            links: Netlink::open(self.netns())?
                .links()?
                .into_iter()
                .filter(|l| l.name.starts_with(LINK_PREFIX))
                .collect(),
            ..Inventory::default()
        };
        match std::fs::read_dir(self.netns_dir()) {
            Ok(dir) => {
                for entry in dir {
                    let path = entry?.path();
                    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    match name.strip_prefix("ov-") {
                        Some(id) if netns::is_netns(&path) => inv.overlays.push(id.to_owned()),
                        None if name == ingress::SANDBOX && netns::is_netns(&path) => {
                            inv.ingress_sandbox = true
                        }
                        _ => inv.stale_files.push(path),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        inv.overlays.sort();
        let tables = nft::tables(self.netns())?;
        inv.nft_tables = tables
            .iter()
            .filter(|(_, name)| name == nft::TABLE)
            .map(|(family, _)| family.clone())
            .collect();
        inv.port_tables = tables
            .into_iter()
            .filter(|(family, name)| {
                family == "ip" && (name == ingress::MESH_TABLE || name == ingress::PORTS_TABLE)
            })
            .map(|(_, name)| name)
            .collect();
        inv.port_tables.sort();
        Ok(inv)
    }

    /// After a restart: remove every overlay whose network is not in `keep` (full or
    /// short IDs), stale files under the run dir, and VXLAN devices left in the host
    /// namespace between create and move. Returns the short IDs removed.
    pub fn prune_overlays(&self, keep: &[&str]) -> Result<Vec<String>> {
        let inv = self.list_ours()?;
        let kept: Vec<PathBuf> = keep.iter().map(|id| self.overlay_netns(id)).collect();
        let mut removed = Vec::new();
        for id in inv.overlays {
            if !kept.contains(&self.overlay_netns(&id)) {
                self.remove_overlay(&id)?;
                removed.push(id);
            }
        }
        for path in inv.stale_files {
            netns::remove(&path)?;
        }
        let mut nl = Netlink::open(self.netns())?;
        for link in inv.links {
            if link.name.starts_with(crate::overlay::VXLAN_TMP_PREFIX) {
                nl.del_link_by_name(&link.name)?;
            }
        }
        Ok(removed)
    }
}
