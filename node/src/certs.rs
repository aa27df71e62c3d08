//! This node's identity on disk and the cluster's trust material.
//!
//! ```text
//!  <data>/certificates/swarm-root-ca.crt   the cluster's root CA (public)
//!                      swarm-node.crt      this node's certificate: CN node ID,
//!                      swarm-node.key      OU swarm-manager|swarm-worker, O cluster ID (0600)
//!                      raft-dek            a manager's Raft data key (0600), made once
//!          swarm-node.key.locked, raft-dek.locked  the same two keys, sealed under the
//!                                                  unlock key while autolock is on
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

/// This node's identity and a manager's Raft data key on disk, sealed under the unlock
/// key while autolock is on (`swarm-node.key.locked`, `raft-dek.locked`), plain
/// otherwise. The unlock key lives in memory only: a restarted manager whose files are
/// sealed is locked until `swarm unlock` gives it back.
pub struct Sealing {
    dir: PathBuf,
    key: RwLock<Option<UnlockKey>>,
}

const DEK_FILE: &str = "raft-dek";
const DEK_FILE_LOCKED: &str = "raft-dek.locked";

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

    fn open(&self, what: &'static str, sealed: &[u8], key: Option<&UnlockKey>) -> Result<Vec<u8>> {
        let key = key.ok_or(Error::Locked)?;
        Sealing::codec(key)
            .open(what, what.as_bytes(), sealed)
            .map_err(|_| Error::Locked)
    }

    fn seal(what: &'static str, plain: &[u8], key: &UnlockKey) -> Result<Vec<u8>> {
        Sealing::codec(key)
            .seal(what, what.as_bytes(), plain.to_vec())
            .map_err(|e| Error::Other(format!("seal {what}: {e}")))
    }

    /// Sealed files on disk and no key to open them: the API answers that the swarm is
    /// locked.
    pub fn locked(&self) -> bool {
        self.key().is_none()
            && (NodeIdentity::sealed_key(&self.dir).is_some()
                || self.dir.join(DEK_FILE_LOCKED).is_file())
    }

    /// `swarm unlock`: kept if it opens what is sealed, else `Error::Locked`.
    pub fn unlock(&self, key: UnlockKey) -> Result<()> {
        if let Some(sealed) = NodeIdentity::sealed_key(&self.dir) {
            self.open("swarm-node.key", &sealed, Some(&key))?;
        }
        if let Ok(sealed) = std::fs::read(self.dir.join(DEK_FILE_LOCKED)) {
            self.open("raft-dek", &sealed, Some(&key))?;
        }
        *self.key.write().expect("sealing lock") = Some(key);
        Ok(())
    }

    /// This node's identity, if it ever joined or initialized a swarm.
    pub fn load_identity(&self) -> Result<Option<NodeIdentity>> {
        if !NodeIdentity::exists(&self.dir) {
            return Ok(None);
        }
        Ok(Some(match NodeIdentity::sealed_key(&self.dir) {
            None => NodeIdentity::load(&self.dir)?,
            Some(sealed) => {
                let pem = self.open("swarm-node.key", &sealed, self.key().as_ref())?;
                let pem = String::from_utf8(pem)
                    .map_err(|_| Error::Other("the sealed node key is not PEM".into()))?;
                NodeIdentity::load_with_key(&self.dir, pem)?
            }
        }))
    }

    /// Writes this node's identity, its key sealed while there is an unlock key.
    pub fn save_identity(&self, identity: &NodeIdentity) -> Result<()> {
        self.save_identity_under(identity, self.key().as_ref())
    }

    fn save_identity_under(&self, identity: &NodeIdentity, key: Option<&UnlockKey>) -> Result<()> {
        let sealed = key
            .map(|k| Sealing::seal("swarm-node.key", identity.key_pem.as_bytes(), k))
            .transpose()?;
        Ok(identity.save_sealed(&self.dir, sealed.as_deref())?)
    }

    /// The manager's Raft data key: read, or made from the kernel's random source and
    /// written once (0600, fsynced) before any Raft file exists.
    pub fn data_key(&self) -> Result<DataKey> {
        if let Some(key) = self.read_dek(self.key().as_ref())? {
            return Ok(DataKey::new(key));
        }
        let mut key = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .map_err(Error::io("read /dev/urandom"))?;
        self.write_dek(&key, self.key().as_ref())?;
        Ok(DataKey::new(key))
    }

    fn read_dek(&self, key: Option<&UnlockKey>) -> Result<Option<[u8; 32]>> {
        let plain = self.dir.join(DEK_FILE);
        let bytes = if let Ok(bytes) = std::fs::read(&plain) {
            bytes
        } else if let Ok(sealed) = std::fs::read(self.dir.join(DEK_FILE_LOCKED)) {
            self.open("raft-dek", &sealed, key)?
        } else {
            return Ok(None);
        };
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::Other(format!("{}: not a 32-byte key", plain.display())))?;
        Ok(Some(key))
    }

    fn write_dek(&self, dek: &[u8; 32], key: Option<&UnlockKey>) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(Error::io(format!("create {}", self.dir.display())))?;
        let (name, other, bytes) = match key {
            Some(k) => (
                DEK_FILE_LOCKED,
                DEK_FILE,
                Sealing::seal("raft-dek", dek, k)?,
            ),
            None => (DEK_FILE, DEK_FILE_LOCKED, dek.to_vec()),
        };
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(Error::io(format!("create {}", tmp.display())))?;
        f.write_all(&bytes)
            .and_then(|()| f.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(Error::io(format!("write {}", path.display())))?;
        match std::fs::remove_file(self.dir.join(other)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("remove {other}"))(e))
            }
            _ => Ok(()),
        }
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
            self.save_identity_under(&identity, new.as_ref())?;
        }
        if let Some(dek) = self.read_dek(old.as_ref())? {
            self.write_dek(&dek, new.as_ref())?;
        }
        tracing::info!(
            sealed = new.is_some(),
            "this node's keys on disk follow the swarm's unlock key"
        );
        *self.key.write().expect("sealing lock") = new;
        Ok(())
    }

    /// Forgets the Raft data key (the manager half stopped for good).
    pub fn remove_data_key(&self) {
        for f in [DEK_FILE, DEK_FILE_LOCKED] {
            let _ = std::fs::remove_file(self.dir.join(f));
        }
    }
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
