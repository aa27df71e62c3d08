//! The node's kernel plumbing for Swarm overlay networks, shaped like libnetwork's
//! overlay driver, for the agent to drive from its assignments:
//!
//! ```text
//!  host netns (underlay 10.0.0.1)          overlay netns <run>/netns/ov-<id>
//!   vxlan UDP socket :4789  <─── vxlan0 (vni, nolearning, proxy) ──┐
//!   sw_gwbridge 172.18.0.1  (masquerade,                           br0 (gateway 10.0.1.1)
//!     table inet swarm)                                            │
//!      │                                                           swXXXXXXXXXX (veth)
//!      └─ veth ─ container eth1 (default route)   container eth0 ──┘ 10.0.1.5/24
//! ```
//!
//! Everything made carries the `sw` link prefix or the nftables table name `swarm`;
//! every `ensure_*` converges from any state (nothing, half-made, already done), and
//! every `remove_*` tolerates what is already gone, so a restarted daemon simply calls
//! them again from its assignments.
//!
//! `dns` is the embedded DNS server (127.0.0.11 in every task's namespace), the one
//! async part: it runs on the daemon's tokio runtime.
#![forbid(unsafe_code)]

pub mod dns;
pub mod error;
pub mod gwbridge;
pub mod ingress;
pub mod inventory;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod overlay;
pub mod vip;

use std::path::{Path, PathBuf};

pub use error::{Error, Result};
pub use gwbridge::GwBridge;
pub use ingress::{HostPort, IngressSandbox, MeshOptions, PublishedPort};
pub use inventory::Inventory;
pub use overlay::{mac_for, Endpoint, Overlay, Peer};
pub use vip::{Proto, Vip};

/// The prefix of every link this crate makes in a host namespace.
pub const LINK_PREFIX: &str = "sw";

/// Where the node's networking happens: the namespace holding the underlay (the
/// daemon's own, or a test's "host" namespace) and the directory the overlay
/// namespaces are pinned under (`<run_dir>/netns/`).
#[derive(Debug, Clone)]
pub struct Host {
    netns: Option<PathBuf>,
    run_dir: PathBuf,
}

impl Host {
    /// The caller's own network namespace.
    pub fn new(run_dir: impl Into<PathBuf>) -> Self {
        Self {
            netns: None,
            run_dir: run_dir.into(),
        }
    }

    /// The namespace pinned at `netns` (tests' hosts).
    pub fn in_netns(netns: impl Into<PathBuf>, run_dir: impl Into<PathBuf>) -> Self {
        Self {
            netns: Some(netns.into()),
            run_dir: run_dir.into(),
        }
    }

    pub fn netns(&self) -> Option<&Path> {
        self.netns.as_deref()
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    fn netns_dir(&self) -> PathBuf {
        self.run_dir.join("netns")
    }
}

/// A link name for an endpoint's outer veth end: `sw` + `tag` + a hash of where the
/// inner end lives, so ensure finds its own again after a restart. At most 15 bytes.
pub(crate) fn endpoint_link_name(tag: char, container_netns: &Path, ifname: &str) -> String {
    // FNV-1a: stable across builds, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in container_netns
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .chain(b"/")
        .chain(ifname.as_bytes())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{LINK_PREFIX}{tag}{:010x}", h & 0xff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_link_names_fit_and_are_stable() {
        let a = endpoint_link_name('v', Path::new("/run/c/1"), "eth0");
        assert_eq!(a.len(), 13);
        assert!(a.starts_with("swv"));
        assert_eq!(a, endpoint_link_name('v', Path::new("/run/c/1"), "eth0"));
        assert_ne!(a, endpoint_link_name('v', Path::new("/run/c/1"), "eth1"));
    }
}
