//! This node's identity on disk and the cluster's trust material.
//!
//! ```text
//!  <data>/certificates/swarm-root-ca.crt   the cluster's root CA (public)
//!                      swarm-node.crt      this node's certificate: CN node ID,
//!                      swarm-node.key      OU swarm-manager|swarm-worker, O cluster ID (0600)
//!                      raft-dek            a manager's Raft data key (0600), made once
//!                      swarm-node.key.locked  instead, while autolock is on: the node key and
//!                                             the data key sealed together under the unlock key
//! ```
//!
//! The root CA's key and the join tokens are not here: they live in the Raft store (the
//! cluster object), which every manager keeps sealed with its data key.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use swarm_identity::{
    ClusterTls, JoinToken, NodeIdentity, NodeKey, Role, RootCa, UnlockKey,
    DEFAULT_NODE_CERT_VALIDITY,
};
use swarm_raft::network::grpc::ConnectError;
use swarm_raft::network::Connect;
use swarm_raft::storage::Codec;
use swarm_raft::DataKey;

use crate::error::{Error, Result};

pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("certificates")
}

/// This node's identity and a manager's Raft data key on disk: plain (`swarm-node.key`,
/// `raft-dek`), or while autolock is on both sealed together under the unlock key in one
/// file (`swarm-node.key.locked`), so that a reseal (autolock on, off, a rotated key) is
/// one atomic rename and a crash leaves the keys under the old unlock key or the new one,
/// never split between them. The unlock key lives in memory only: a restarted manager
/// whose keys are sealed is locked until `swarm unlock` gives it back.
pub struct Sealing {
    dir: PathBuf,
    key: RwLock<Option<UnlockKey>>,
}

pub(crate) const DEK_FILE: &str = "raft-dek";
const SEALED: &str = "swarm keys";

/// What is sealed: the node's private key and, on a manager, its Raft data key.
#[derive(serde::Serialize, serde::Deserialize)]
struct Bundle {
    node_key: String,
    #[serde(default)]
    raft_dek: Option<Vec<u8>>,
}

impl Sealing {
    pub fn new(data_dir: &Path) -> Arc<Sealing> {
        Arc::new(Sealing {
            dir: dir(data_dir),
            key: RwLock::new(None),
        })
    }

    fn key(&self) -> Option<UnlockKey> {
        self.key.read().expect("sealing lock").clone()
    }

    fn codec(key: &UnlockKey) -> Codec {
        Codec::new(Some(&DataKey::new(*key.bytes())))
    }

    /// The sealed bundle on disk, opened with `key`; `None` when the keys are plain.
    fn open_bundle(&self, key: Option<&UnlockKey>) -> Result<Option<Bundle>> {
        let Some(sealed) = NodeIdentity::sealed_key(&self.dir) else {
            return Ok(None);
        };
        let key = key.ok_or(Error::Locked)?;
        let plain = Sealing::codec(key)
            .open(SEALED, SEALED.as_bytes(), &sealed)
            .map_err(|_| Error::Locked)?;
        Ok(Some(serde_json::from_slice(&plain)?))
    }

    /// Writes `identity` and `dek` under `key`: the bundle (one atomic write) when there
    /// is a key, else the plain files (the data key first: the sealed bundle is removed
    /// last).
    fn write(
        &self,
        identity: &NodeIdentity,
        dek: Option<[u8; 32]>,
        key: Option<&UnlockKey>,
    ) -> Result<()> {
        match key {
            Some(k) => {
                let bundle = Bundle {
                    node_key: identity.key_pem.clone(),
                    raft_dek: dek.map(|d| d.to_vec()),
                };
                let sealed = Sealing::codec(k)
                    .seal(SEALED, SEALED.as_bytes(), &serde_json::to_vec(&bundle)?)
                    .map_err(|e| Error::Other(format!("seal this node's keys: {e}")))?;
                identity.save_sealed(&self.dir, Some(&sealed))?;
                remove(&self.dir.join(DEK_FILE))
            }
            None => {
                if let Some(dek) = dek {
                    write_private(&self.dir, DEK_FILE, &dek)?;
                }
                Ok(identity.save_sealed(&self.dir, None)?)
            }
        }
    }

    /// Sealed keys on disk and no key to open them: the API answers that the swarm is
    /// locked.
    pub fn locked(&self) -> bool {
        self.key().is_none() && NodeIdentity::sealed_key(&self.dir).is_some()
    }

    /// `swarm unlock`: kept if it opens what is sealed, else `Error::Locked`.
    pub fn unlock(&self, key: UnlockKey) -> Result<()> {
        self.open_bundle(Some(&key))?;
        *self.key.write().expect("sealing lock") = Some(key);
        Ok(())
    }

    /// This node's identity, if it ever joined or initialized a swarm.
    pub fn load_identity(&self) -> Result<Option<NodeIdentity>> {
        if !NodeIdentity::exists(&self.dir) {
            return Ok(None);
        }
        Ok(Some(match self.open_bundle(self.key().as_ref())? {
            None => NodeIdentity::load(&self.dir)?,
            Some(b) => NodeIdentity::load_with_key(&self.dir, b.node_key)?,
        }))
    }

    /// Writes this node's identity, its key sealed (with the data key) while there is an
    /// unlock key.
    pub fn save_identity(&self, identity: &NodeIdentity) -> Result<()> {
        let key = self.key();
        let dek = self.read_dek(key.as_ref())?;
        self.write(identity, dek, key.as_ref())
    }

    /// The manager's Raft data key: read, or made from the kernel's random source and
    /// written once (0600, fsynced) before any Raft file exists.
    pub fn data_key(&self) -> Result<DataKey> {
        let key = self.key();
        if let Some(dek) = self.read_dek(key.as_ref())? {
            return Ok(DataKey::new(dek));
        }
        let mut dek = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut dek))
            .map_err(Error::io("read /dev/urandom"))?;
        match (key, self.load_identity()?) {
            (Some(k), Some(identity)) => self.write(&identity, Some(dek), Some(&k))?,
            _ => write_private(&self.dir, DEK_FILE, &dek)?,
        }
        Ok(DataKey::new(dek))
    }

    fn read_dek(&self, key: Option<&UnlockKey>) -> Result<Option<[u8; 32]>> {
        let plain = self.dir.join(DEK_FILE);
        let bytes = if let Ok(bytes) = std::fs::read(&plain) {
            bytes
        } else {
            match self.open_bundle(key)?.and_then(|b| b.raft_dek) {
                Some(dek) => dek,
                None => return Ok(None),
            }
        };
        let dek: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::Other(format!("{}: not a 32-byte key", plain.display())))?;
        Ok(Some(dek))
    }

    /// Autolock turned on, off or its key rotated (the cluster object's unlock key, seen
    /// by every manager): the node key and the data key are sealed again under `new`
    /// (plain for `None`). A no-op when `new` is the key in use.
    pub fn set_key(&self, new: Option<UnlockKey>) -> Result<()> {
        let old = self.key();
        if old == new {
            return Ok(());
        }
        if let Some(identity) = self.load_identity()? {
            let dek = self.read_dek(old.as_ref())?;
            self.write(&identity, dek, new.as_ref())?;
        }
        tracing::info!(
            sealed = new.is_some(),
            "this node's keys on disk follow the swarm's unlock key"
        );
        *self.key.write().expect("sealing lock") = new;
        Ok(())
    }

    /// Forgets the Raft data key (the manager half stopped for good; its keys are
    /// plain again first, see [`Sealing::set_key`]).
    pub fn remove_data_key(&self) {
        let _ = std::fs::remove_file(self.dir.join(DEK_FILE));
    }
}

fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("remove {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}

/// `dir/name` with `bytes`, 0600, written to a temporary file, fsynced and renamed.
fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(Error::io(format!("create {}", dir.display())))?;
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(Error::io(format!("create {}", tmp.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(Error::io(format!("write {}", path.display())))
}

/// What `swarm init` makes: the root CA, the first manager's identity, two join tokens.
pub struct NewCluster {
    pub root: RootCa,
    pub identity: NodeIdentity,
    pub worker_token: String,
    pub manager_token: String,
}

pub fn new_cluster(cluster_id: &str, node_id: &str) -> Result<NewCluster> {
    let root = RootCa::generate(cluster_id)?;
    let identity = issue_local(&root, node_id, Role::Manager, cluster_id)?;
    Ok(NewCluster {
        worker_token: JoinToken::generate(&root).to_string(),
        manager_token: JoinToken::generate(&root).to_string(),
        root,
        identity,
    })
}

/// A certificate for a node whose key is made here (the manager's own).
pub fn issue_local(
    root: &RootCa,
    node_id: &str,
    role: Role,
    cluster_id: &str,
) -> Result<NodeIdentity> {
    let key = NodeKey::generate()?;
    let cert = root.issue(
        &key.csr_pem()?,
        node_id,
        role,
        cluster_id,
        DEFAULT_NODE_CERT_VALIDITY,
    )?;
    Ok(NodeIdentity::new(
        cert,
        key.key_pem(),
        root.cert_pem().to_string(),
    )?)
}

/// Raft's and the agent's way to a manager: mutual TLS with this node's live certificate.
pub fn connector(tls: Arc<ClusterTls>) -> impl Connect {
    move |addr: String| {
        let client = tls.client();
        async move {
            swarm_identity::connect(&addr, client)
                .await
                .map_err(|e| Box::new(e) as ConnectError)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manager's keys through autolock on, a restart, a rotation and autolock off.
    #[test]
    fn keys_follow_the_unlock_key_and_a_restart_needs_it() {
        let data = tempfile::tempdir().unwrap();
        let new = new_cluster("c1", "n1").unwrap();
        let sealing = Sealing::new(data.path());
        sealing.save_identity(&new.identity).unwrap();
        sealing.data_key().unwrap();
        let dek = sealing.read_dek(None).unwrap().unwrap();
        let (k1, k2) = (UnlockKey::generate(), UnlockKey::generate());

        sealing.set_key(Some(k1.clone())).unwrap();
        let dir = dir(data.path());
        assert!(!dir.join("swarm-node.key").exists() && !dir.join(DEK_FILE).exists());
        let restarted = Sealing::new(data.path());
        assert!(restarted.locked());
        assert!(matches!(restarted.load_identity(), Err(Error::Locked)));
        assert!(matches!(restarted.unlock(k2.clone()), Err(Error::Locked)));
        restarted.unlock(k1.clone()).unwrap();
        assert_eq!(restarted.load_identity().unwrap().unwrap(), new.identity);
        restarted.data_key().unwrap();
        assert_eq!(restarted.read_dek(Some(&k1)).unwrap(), Some(dek));

        restarted.set_key(Some(k2.clone())).unwrap();
        let again = Sealing::new(data.path());
        assert!(matches!(again.unlock(k1.clone()), Err(Error::Locked)));
        again.unlock(k2).unwrap();
        again.set_key(None).unwrap();
        assert!(!Sealing::new(data.path()).locked());
        assert_eq!(Sealing::new(data.path()).read_dek(None).unwrap(), Some(dek));
    }
}
