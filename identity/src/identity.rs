//! A node's own identity: its certificate, key and the cluster roots, on disk and in memory.
//!
//! ```text
//! <dir>/swarm-root-ca.crt   root CA bundle (PEM)            0644
//! <dir>/swarm-node.crt      this node's certificate (PEM)   0644
//! <dir>/swarm-node.key      its private key (PKCS#8 PEM)    0600
//!       swarm-node.key.locked  or that key sealed under the unlock key (autolock)
//! ```
//!
//! Each file is written to a temporary file in the same directory, fsynced, renamed over
//! the old one, and the directory fsynced: a crash leaves the old file or the new one.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::{peer, pem, Error, NodeKey, PeerIdentity, Result, Role};

pub const ROOT_CA_FILE: &str = "swarm-root-ca.crt";
pub const NODE_CERT_FILE: &str = "swarm-node.crt";
pub const NODE_KEY_FILE: &str = "swarm-node.key";
/// The key sealed under the unlock key, while autolock is on.
pub const NODE_KEY_FILE_LOCKED: &str = "swarm-node.key.locked";

/// Renew when fewer than this remains, whatever the validity.
pub const RENEWAL_MARGIN: Duration = Duration::from_secs(3600);

/// This node's certificate and key, and the roots it trusts.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    pub node_id: String,
    pub role: Role,
    pub cluster_id: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl NodeIdentity {
    /// Builds an identity from an issued certificate: reads node ID, role, cluster ID and
    /// validity from it, and checks that `key_pem` is its key and `ca_pem` parses.
    pub fn new(cert_pem: String, key_pem: String, ca_pem: String) -> Result<NodeIdentity> {
        let leaf = pem::certs(&cert_pem)?.remove(0);
        let peer = PeerIdentity::from_der(&leaf)?;
        if NodeKey::from_pem(&key_pem)?.public_key_der() != peer::spki(&leaf)? {
            return Err(Error::KeyMismatch);
        }
        pem::certs(&ca_pem).map_err(|e| Error::InvalidRootCa(e.to_string()))?;
        Ok(NodeIdentity {
            node_id: peer.node_id,
            role: peer.role,
            cluster_id: peer.cluster_id,
            cert_pem,
            key_pem,
            ca_pem,
            not_before: peer.not_before,
            not_after: peer.not_after,
        })
    }

    /// Writes the three files into `dir` (created if missing).
    pub fn save(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(Error::io(dir))?;
        write_atomic(dir, ROOT_CA_FILE, self.ca_pem.as_bytes(), 0o644)?;
        write_atomic(dir, NODE_KEY_FILE, self.key_pem.as_bytes(), 0o600)?;
        write_atomic(dir, NODE_CERT_FILE, self.cert_pem.as_bytes(), 0o644)?;
        let d = fs::File::open(dir).map_err(Error::io(dir))?;
        d.sync_all().map_err(Error::io(dir))
    }

    /// Writes the root and the certificate, and the key as `sealed` gives it (autolock:
    /// the key sealed under the unlock key) to `swarm-node.key.locked`; the plain key file
    /// goes once the sealed one is on disk. `sealed: None` is [`NodeIdentity::save`], and
    /// removes a sealed key left from before.
    pub fn save_sealed(&self, dir: &Path, sealed: Option<&[u8]>) -> Result<()> {
        let Some(sealed) = sealed else {
            self.save(dir)?;
            return remove_if_present(&dir.join(NODE_KEY_FILE_LOCKED));
        };
        fs::create_dir_all(dir).map_err(Error::io(dir))?;
        write_atomic(dir, ROOT_CA_FILE, self.ca_pem.as_bytes(), 0o644)?;
        write_atomic(dir, NODE_KEY_FILE_LOCKED, sealed, 0o600)?;
        write_atomic(dir, NODE_CERT_FILE, self.cert_pem.as_bytes(), 0o644)?;
        remove_if_present(&dir.join(NODE_KEY_FILE))?;
        let d = fs::File::open(dir).map_err(Error::io(dir))?;
        d.sync_all().map_err(Error::io(dir))
    }

    /// The sealed key [`NodeIdentity::save_sealed`] wrote, if the plain one is not there.
    pub fn sealed_key(dir: &Path) -> Option<Vec<u8>> {
        if dir.join(NODE_KEY_FILE).is_file() {
            return None;
        }
        fs::read(dir.join(NODE_KEY_FILE_LOCKED)).ok()
    }

    /// Reads the identity with the key given (opened from [`NodeIdentity::sealed_key`]).
    pub fn load_with_key(dir: &Path, key_pem: String) -> Result<NodeIdentity> {
        let read = |name: &str| {
            let path = dir.join(name);
            fs::read_to_string(&path).map_err(Error::io(path))
        };
        NodeIdentity::new(read(NODE_CERT_FILE)?, key_pem, read(ROOT_CA_FILE)?)
    }

    /// Reads what [`NodeIdentity::save`] wrote.
    pub fn load(dir: &Path) -> Result<NodeIdentity> {
        let read = |name: &str| {
            let path = dir.join(name);
            fs::read_to_string(&path).map_err(Error::io(path))
        };
        NodeIdentity::new(
            read(NODE_CERT_FILE)?,
            read(NODE_KEY_FILE)?,
            read(ROOT_CA_FILE)?,
        )
    }

    /// Whether the files of an identity are in `dir` (a node that joined before), its key
    /// plain or sealed.
    pub fn exists(dir: &Path) -> bool {
        [ROOT_CA_FILE, NODE_CERT_FILE]
            .iter()
            .all(|f| dir.join(f).is_file())
            && (dir.join(NODE_KEY_FILE).is_file() || dir.join(NODE_KEY_FILE_LOCKED).is_file())
    }

    /// When to renew: half-way through the validity (swarmkit picks a random point
    /// between 50% and 80%; the caller may add jitter after this).
    pub fn renew_at(&self) -> SystemTime {
        let total = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        let half = self.not_before + total / 2;
        half.min(self.not_after - RENEWAL_MARGIN.min(total))
    }

    /// Past half of the validity, or within [`RENEWAL_MARGIN`] of the end.
    pub fn needs_renewal(&self, now: SystemTime) -> bool {
        now >= self.renew_at()
    }

    /// The node key, to make a CSR for a renewal with the same key.
    pub fn key(&self) -> Result<NodeKey> {
        NodeKey::from_pem(&self.key_pem)
    }
}

impl fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("node_id", &self.node_id)
            .field("role", &self.role)
            .field("cluster_id", &self.cluster_id)
            .field("not_after", &self.not_after)
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path)(e)),
        _ => Ok(()),
    }
}

fn write_atomic(dir: &Path, name: &str, data: &[u8], mode: u32) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(Error::io(&tmp))?;
    f.write_all(data).map_err(Error::io(&tmp))?;
    f.sync_all().map_err(Error::io(&tmp))?;
    drop(f);
    fs::rename(&tmp, &target).map_err(Error::io(&target))
}
