//! This node's identity on disk and the cluster's trust material.
//!
//! ```text
//!  <data>/certificates/swarm-root-ca.crt   the cluster's root CA (public)
//!                      swarm-node.crt      this node's certificate: CN node ID,
//!                      swarm-node.key      OU swarm-manager|swarm-worker, O cluster ID (0600)
//!                      raft-dek            a manager's Raft data key (0600), made once
//! ```
//!
//! The root CA's key and the join tokens are not here: they live in the Raft store (the
//! cluster object), which every manager keeps sealed with its data key.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use swarm_identity::{
    ClusterTls, JoinToken, NodeIdentity, NodeKey, Role, RootCa, DEFAULT_NODE_CERT_VALIDITY,
};
use swarm_raft::network::grpc::ConnectError;
use swarm_raft::network::Connect;
use swarm_raft::DataKey;

use crate::error::{Error, Result};

pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("certificates")
}

/// This node's identity, if it ever joined or initialized a swarm.
pub fn load(data_dir: &Path) -> Result<Option<NodeIdentity>> {
    let dir = dir(data_dir);
    if !NodeIdentity::exists(&dir) {
        return Ok(None);
    }
    Ok(Some(NodeIdentity::load(&dir)?))
}

/// The manager's Raft data key: read, or made from the kernel's random source and
/// written once (0600, fsynced) before any Raft file exists.
pub fn data_key(data_dir: &Path) -> Result<DataKey> {
    let dir = dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(Error::io(format!("create {}", dir.display())))?;
    let path = dir.join("raft-dek");
    if let Ok(bytes) = std::fs::read(&path) {
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::Other(format!("{}: not a 32-byte key", path.display())))?;
        return Ok(DataKey::new(key));
    }
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(Error::io("read /dev/urandom"))?;
    let tmp = dir.join("raft-dek.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(Error::io(format!("create {}", tmp.display())))?;
    f.write_all(&key)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(Error::io(format!("write {}", path.display())))?;
    Ok(DataKey::new(key))
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
