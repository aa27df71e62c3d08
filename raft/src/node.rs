//! One Raft node: opens its storage, runs openraft, and offers propose / read / subscribe.
//!
//! ```text
//! propose ──► client_write ──► (leader) append + fsync ──► quorum ──► apply ──► Response
//!    └── after `propose_timeout` with no commit: ProposeError::NoQuorum
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::ClientWriteError;
use openraft::{BasicNode, RaftNetworkFactory, ServerState};
use tokio::sync::watch;

use crate::config::RaftConfig;
use crate::error::{ProposeError, RaftError};
use crate::machine::StateMachine;
use crate::storage::state_machine::Shared;
use crate::storage::{self, Closed};
use crate::types::{Metrics, Raft, TypeConfig};

/// A running Raft node over a state machine `S`.
pub struct RaftNode<S: StateMachine> {
    id: u64,
    addr: String,
    raft: Raft<S>,
    shared: Arc<Shared<S>>,
    config: RaftConfig,
    closed: Closed,
}

impl<S: StateMachine> RaftNode<S> {
    /// Opens (or creates) the node's storage under `dir` and starts Raft.
    ///
    /// `sm` must be empty: it is restored from the last snapshot, then openraft replays the
    /// committed log. A node that is the only voter leads again at once; `open` waits until
    /// it has applied its whole log, so every write acknowledged before a crash is visible.
    pub async fn open<N>(
        dir: &Path,
        node_id: u64,
        addr: String,
        sm: S,
        config: RaftConfig,
        network: N,
    ) -> Result<Self, RaftError>
    where
        N: RaftNetworkFactory<TypeConfig<S>>,
    {
        let raft_config = Arc::new(config.to_openraft()?);
        let dir = dir.to_path_buf();
        let (store, last_index) = tokio::task::spawn_blocking(move || {
            let store = storage::open(&dir, sm)?;
            let last = store.log.last_index()?;
            Ok::<_, crate::error::StorageError>((store, last))
        })
        .await
        .map_err(|e| RaftError::Fatal(format!("open task: {e}")))??;
        let shared = store.state_machine.shared();
        let raft = Raft::new(
            node_id,
            raft_config,
            network,
            store.log,
            store.state_machine,
        )
        .await
        .map_err(|e| RaftError::Fatal(e.to_string()))?;
        let node = Self {
            id: node_id,
            addr,
            raft,
            shared,
            config,
            closed: store.closed,
        };
        if last_index > node.applied_index() && node.is_sole_voter() {
            let deadline = node.config.election_timeout_max * 2 + node.config.propose_timeout;
            if let Err(e) = node.wait_applied(last_index, deadline).await {
                tracing::warn!(error = %e, "reopened log not applied yet");
            }
        }
        Ok(node)
    }

    /// Makes this node the first and only member (`swarm init`); no-op once initialized.
    /// Returns when it leads.
    pub async fn initialize_single(&self) -> Result<(), RaftError> {
        let members = BTreeMap::from([(self.id, self.addr.clone())]);
        self.initialize(members).await?;
        let t = self.config.election_timeout_max * 4;
        self.wait_metrics(t, "this node leads", |m| m.state == ServerState::Leader)
            .await?;
        Ok(())
    }

    /// Initializes a cluster of `members` (node id to address) on this node; no-op once
    /// initialized. Call it on one node only.
    pub async fn initialize(&self, members: BTreeMap<u64, String>) -> Result<(), RaftError> {
        if self.raft.is_initialized().await.map_err(fatal)? {
            return Ok(());
        }
        let nodes: BTreeMap<u64, BasicNode> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode::new(addr)))
            .collect();
        self.raft
            .initialize(nodes)
            .await
            .map_err(|e| RaftError::Initialize(e.to_string()))
    }

    /// Adds a non-voting member and, on the leader, waits until it caught up.
    pub async fn add_learner(&self, id: u64, addr: String) -> Result<(), RaftError> {
        self.raft
            .add_learner(id, BasicNode::new(addr), true)
            .await
            .map(|_| ())
            .map_err(|e| RaftError::Membership(e.to_string()))
    }

    /// Sets the voters (learners stay learners, removed voters are dropped).
    pub async fn change_membership(&self, voters: BTreeSet<u64>) -> Result<(), RaftError> {
        self.raft
            .change_membership(voters, false)
            .await
            .map(|_| ())
            .map_err(|e| RaftError::Membership(e.to_string()))
    }

    /// Proposes `cmd`; returns once it is committed (on disk on a quorum) and applied here.
    pub async fn propose(&self, cmd: S::Command) -> Result<S::Response, ProposeError> {
        let waited = self.config.propose_timeout;
        match tokio::time::timeout(waited, self.raft.client_write(cmd)).await {
            Ok(Ok(resp)) => Ok(resp
                .data
                .expect("a normal entry's application always yields a response")),
            Ok(Err(openraft::error::RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(match f.leader_id {
                    Some(leader_id) => ProposeError::NotLeader {
                        leader_id,
                        leader_addr: f.leader_node.map(|n| n.addr).unwrap_or_default(),
                    },
                    None => ProposeError::NoLeader,
                })
            }
            Ok(Err(openraft::error::RaftError::APIError(e))) => {
                Err(ProposeError::Stopped(e.to_string()))
            }
            Ok(Err(openraft::error::RaftError::Fatal(e))) => {
                Err(ProposeError::Stopped(e.to_string()))
            }
            // The leader cannot reach a quorum (openraft 0.9 leaders do not step down alone).
            Err(_) => Err(ProposeError::NoQuorum { waited }),
        }
    }

    /// Reads the applied state on this node (possibly behind the leader's).
    pub async fn read<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&self.shared.read().sm)
    }

    /// The index of the last entry applied here.
    pub fn applied_index(&self) -> u64 {
        *self.shared.subscribe().borrow()
    }

    /// A watch of the applied index: loops wake on every apply.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.subscribe()
    }

    /// Waits until this node applied `index`.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<(), RaftError> {
        let mut rx = self.subscribe();
        let res = tokio::time::timeout(timeout, rx.wait_for(|&i| i >= index)).await;
        match res {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(RaftError::Fatal("state machine closed".into())),
            Err(_) => Err(RaftError::Timeout(
                timeout,
                format!("applied index {index}"),
            )),
        }
    }

    /// Waits until Raft's metrics satisfy `f`, and returns them.
    pub async fn wait_metrics(
        &self,
        timeout: Duration,
        what: &str,
        f: impl Fn(&Metrics) -> bool + Send,
    ) -> Result<Metrics, RaftError> {
        self.raft
            .wait(Some(timeout))
            .metrics(f, what)
            .await
            .map_err(|e| match e {
                openraft::metrics::WaitError::Timeout(t, s) => RaftError::Timeout(t, s),
                e => RaftError::Fatal(e.to_string()),
            })
    }

    /// Builds a snapshot now (the log behind it is then purged, keeping
    /// `keep_logs_after_snapshot` entries) and waits until it is on disk.
    pub async fn snapshot(&self, timeout: Duration) -> Result<u64, RaftError> {
        let index = self.applied_index();
        self.raft.trigger().snapshot().await.map_err(fatal)?;
        let m = self
            .wait_metrics(timeout, "snapshot built", |m| {
                m.snapshot.map(|s| s.index).unwrap_or(0) >= index
            })
            .await?;
        Ok(m.snapshot.map(|s| s.index).unwrap_or(0))
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// The leader this node knows of.
    pub fn leader(&self) -> Option<u64> {
        self.raft.metrics().borrow().current_leader
    }

    /// The address of the leader this node knows of, to forward writes to.
    pub fn leader_addr(&self) -> Option<String> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let leader = m.current_leader?;
        let node = m.membership_config.membership().get_node(&leader)?;
        Some(node.addr.clone())
    }

    /// openraft's metrics: state, term, leader, log and snapshot positions, membership.
    pub fn metrics(&self) -> watch::Receiver<Metrics> {
        self.raft.metrics()
    }

    /// The openraft handle, for a transport's server side (`append_entries`, `vote`,
    /// `install_snapshot`) and for registering with a [`crate::network::Router`].
    pub fn raft(&self) -> &Raft<S> {
        &self.raft
    }

    fn is_sole_voter(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
        voters == [self.id]
    }

    /// Stops Raft and waits until its files are closed, so `dir` can be opened again.
    pub async fn shutdown(self) -> Result<(), RaftError> {
        self.raft
            .shutdown()
            .await
            .map_err(|e| RaftError::Fatal(format!("shutdown: {e}")))?;
        let Self {
            raft,
            shared,
            closed,
            config,
            ..
        } = self;
        drop((raft, shared));
        let t = config.propose_timeout.max(Duration::from_secs(5));
        tokio::time::timeout(t, closed.wait())
            .await
            .map_err(|_| RaftError::Timeout(t, "raft storage to close".into()))
    }
}

fn fatal(e: openraft::error::Fatal<u64>) -> RaftError {
    RaftError::Fatal(e.to_string())
}
