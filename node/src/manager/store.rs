//! The manager's store: tables of swarm, nodes, services and tasks, replicated by Raft.
//!
//! ```text
//!  propose(actions) ─▶ Batch { now, actions } ─▶ swarm-raft (redb log, fsync, commit)
//!                                                        │ apply(index, batch)
//!  read(|tables| ..) ◀── Tables (in memory) ◀───────────┘ versions = the entry's index
//!  subscribe()       ◀── applied index
//! ```
//!
//! [`Tables`] is the Raft [`StateMachine`]: it lives only in memory, and a restarted
//! swarmd rebuilds it from Raft's last snapshot plus its log, both under `<data>/raft`.
//! There is no other copy of the state on disk.
//!
//! Stand-in tables until `swarm-core`'s store lands; same entry shape (a batch of actions
//! with the proposer's timestamp).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use swarm_raft::network::NoPeers;
use swarm_raft::{ProposeError, RaftConfig, RaftNode, StateMachine};
use tokio::sync::watch;

use super::model::{Node, Service, Swarm, Task, Version};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    PutSwarm(Swarm),
    PutNode(Node),
    PutService(Service),
    DeleteService(String),
    PutTask(Task),
    DeleteTask(String),
}

/// One Raft entry: what the proposer decided, and when by its clock (every replica applies
/// the same timestamps; `apply` never reads a clock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub now: DateTime<Utc>,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tables {
    pub swarm: Option<Swarm>,
    pub nodes: BTreeMap<String, Node>,
    pub services: BTreeMap<String, Service>,
    pub tasks: BTreeMap<String, Task>,
}

impl StateMachine for Tables {
    type Command = Batch;
    /// The log index the batch was applied at: every object it wrote has that version.
    type Response = u64;

    fn apply(&mut self, index: u64, batch: &Batch) -> u64 {
        let v = Version { index };
        for a in &batch.actions {
            match a.clone() {
                Action::PutSwarm(mut s) => {
                    s.version = v;
                    self.swarm = Some(s);
                }
                Action::PutNode(mut n) => {
                    n.version = v;
                    self.nodes.insert(n.id.clone(), n);
                }
                Action::PutService(mut s) => {
                    s.version = v;
                    self.services.insert(s.id.clone(), s);
                }
                Action::DeleteService(id) => {
                    self.services.remove(&id);
                }
                Action::PutTask(mut t) => {
                    t.version = v;
                    self.tasks.insert(t.id.clone(), t);
                }
                Action::DeleteTask(id) => {
                    self.tasks.remove(&id);
                }
            }
        }
        index
    }

    fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("the tables serialize to JSON")
    }

    fn restore(&mut self, data: &[u8]) -> std::result::Result<(), String> {
        *self = serde_json::from_slice(data).map_err(|e| format!("decode the tables: {e}"))?;
        Ok(())
    }
}

/// The store of one manager: a Raft node over [`Tables`].
pub struct Store {
    raft: RaftNode<Tables>,
}

impl Store {
    /// Opens (or creates) Raft under `dir`; the tables are rebuilt from its snapshot and log
    /// before this returns.
    pub async fn open(dir: &Path, raft_id: u64, addr: String, config: RaftConfig) -> Result<Store> {
        let raft = RaftNode::open(
            dir,
            raft_id,
            addr,
            Tables::default(),
            config,
            NoPeers { from: raft_id },
        )
        .await?;
        Ok(Store { raft })
    }

    /// `swarm init`: this manager becomes the only member and the leader.
    pub async fn initialize(&self) -> Result<()> {
        Ok(self.raft.initialize_single().await?)
    }

    /// Commits (fsync) and applies a batch; returns its index. Empty batches are skipped.
    pub async fn propose(&self, actions: Vec<Action>) -> Result<u64, ProposeError> {
        if actions.is_empty() {
            return Ok(self.raft.applied_index());
        }
        let batch = Batch {
            now: Utc::now(),
            actions,
        };
        self.raft.propose(batch).await
    }

    /// A consistent read of this manager's applied tables.
    pub async fn read<T>(&self, f: impl FnOnce(&Tables) -> T) -> T {
        self.raft.read(f).await
    }

    /// The applied index, changing on every applied entry.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.raft.subscribe()
    }

    pub fn is_leader(&self) -> bool {
        self.raft.is_leader()
    }

    /// Stops Raft and waits until its files are closed.
    pub async fn shutdown(self) -> Result<()> {
        Ok(self.raft.shutdown().await?)
    }

    /// Stops Raft through a shared handle (on SIGTERM); the files close as the process ends.
    pub async fn stop(&self) {
        if let Err(e) = self.raft.raft().shutdown().await {
            tracing::warn!("stop raft: {e}");
        }
    }
}

/// The Raft ID of a node: a stable 64-bit hash (FNV-1a) of its node ID, never 0. Derived,
/// not stored, so a restarted swarmd reopens its log as the same member.
pub fn raft_id(node_id: &str) -> u64 {
    let h = node_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    h.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(id: &str) -> Service {
        Service {
            id: id.into(),
            version: Version::default(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            spec: serde_json::json!({"Name": id, "Unknown": {"kept": true}}),
            previous_spec: None,
            endpoint: serde_json::json!({}),
            update_status: None,
        }
    }

    async fn open(dir: &Path) -> Store {
        let s = Store::open(
            dir,
            raft_id("n1"),
            "127.0.0.1:2377".into(),
            RaftConfig::fast(),
        )
        .await
        .unwrap();
        s.initialize().await.unwrap();
        s
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_survive_reopen_from_log_and_from_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        let a = s
            .propose(vec![Action::PutService(service("a"))])
            .await
            .unwrap();
        let b = s
            .propose(vec![Action::PutService(service("b"))])
            .await
            .unwrap();
        assert!(b > a, "indexes grow: {a} then {b}");
        s.propose(vec![Action::DeleteService("a".into())])
            .await
            .unwrap();
        assert_eq!(s.propose(vec![]).await.unwrap(), s.raft.applied_index());
        s.shutdown().await.unwrap();

        // Reopened: the log is replayed onto empty tables.
        let s = open(dir.path()).await;
        s.read(|t| {
            assert!(!t.services.contains_key("a"));
            assert_eq!(t.services["b"].version.index, b);
            assert_eq!(t.services["b"].spec["Unknown"]["kept"], true);
        })
        .await;
        s.raft
            .snapshot(std::time::Duration::from_secs(10))
            .await
            .unwrap();
        let c = s
            .propose(vec![Action::PutService(service("c"))])
            .await
            .unwrap();
        s.shutdown().await.unwrap();

        // Reopened: snapshot, then the entry after it.
        let s = open(dir.path()).await;
        s.read(|t| {
            assert_eq!(t.services.keys().collect::<Vec<_>>(), ["b", "c"]);
            assert_eq!(t.services["c"].version.index, c);
        })
        .await;
        s.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_raft_refuses_is_503() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        s.stop().await;
        let e = s
            .propose(vec![Action::PutService(service("late"))])
            .await
            .unwrap_err();
        let api = crate::api::ApiError::from(e);
        assert_eq!(api.status(), 503, "{api}");
        assert!(s.read(|t| t.services.is_empty()).await);
    }

    #[test]
    fn raft_ids_are_stable_and_nonzero() {
        assert_eq!(raft_id("abc"), raft_id("abc"));
        assert_ne!(raft_id("abc"), raft_id("abd"));
        assert_ne!(raft_id(""), 0);
    }
}
