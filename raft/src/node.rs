//! One Raft node: opens its storage, runs openraft, and offers propose / read / subscribe,
//! and the membership changes (join, leave, remove).
//!
//! ```text
//! propose ─┬─(leader)────► client_write ──► append + fsync ──► quorum ──► apply ──► Response
//!          └─(follower)──► LeaderClient::forward ──► leader's client_write ──► (index, Response)
//!                              └── then wait until `index` is applied here too
//!    └── after `propose_timeout` with no commit: ProposeError::NoQuorum (or NoLeader)
//! ```
//!
//! [`RaftHandle`] is the cloneable part: what a transport's server side needs (the openraft
//! handle, writes and membership changes carried out on the leader). [`RaftNode`] owns the
//! storage besides, and closes it on shutdown.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use openraft::error::ClientWriteError;
use openraft::{BasicNode, ChangeMembers, RaftNetworkFactory, ServerState};
use tokio::sync::watch;
use tokio::time::Instant as Deadline;

use crate::config::RaftConfig;
use crate::error::{ProposeError, RaftError};
use crate::machine::StateMachine;
use crate::network::grpc::{Connect, GrpcNetwork};
use crate::network::{LeaderClient, LeaderError};
use crate::storage::state_machine::Shared;
use crate::storage::{self, Closed, LogStore};
use crate::types::{Metrics, Raft, TypeConfig};

/// Docker's (swarmkit's) refusal to remove a manager whose loss would leave no quorum.
pub const LOSS_OF_QUORUM_MESSAGE: &str =
    "raft: member cannot be removed, because removing it may result in loss of quorum";

/// A running Raft node over a state machine `S`.
pub struct RaftNode<S: StateMachine> {
    pub(crate) handle: RaftHandle<S>,
    pub(crate) shared: Arc<Shared<S>>,
    /// The log, read directly by `force_new_cluster` once openraft stopped.
    pub(crate) log: LogStore<S>,
    closed: Closed,
}

/// The cloneable part of a node: openraft's handle, the config, the applied index, and the
/// way to the leader. A transport's server side holds one.
pub struct RaftHandle<S: StateMachine> {
    id: u64,
    addr: String,
    pub(crate) raft: Raft<S>,
    pub(crate) config: RaftConfig,
    applied: watch::Receiver<u64>,
    leader_client: Arc<OnceLock<Box<dyn LeaderClient<S>>>>,
}

impl<S: StateMachine> Clone for RaftHandle<S> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            addr: self.addr.clone(),
            raft: self.raft.clone(),
            config: self.config.clone(),
            applied: self.applied.clone(),
            leader_client: self.leader_client.clone(),
        }
    }
}

impl<S: StateMachine> std::ops::Deref for RaftNode<S> {
    type Target = RaftHandle<S>;

    fn deref(&self) -> &RaftHandle<S> {
        &self.handle
    }
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
        crate::force::finish_swap(dir)?;
        let dir = dir.to_path_buf();
        let key = config.data_key.clone();
        let (store, last_index) = tokio::task::spawn_blocking(move || {
            let store = storage::open(&dir, sm, key.as_ref())?;
            let last = store.log.last_index()?;
            Ok::<_, crate::error::StorageError>((store, last))
        })
        .await
        .map_err(|e| RaftError::Fatal(format!("open task: {e}")))??;
        let shared = store.state_machine.shared();
        let log = store.log.clone();
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
            handle: RaftHandle {
                id: node_id,
                addr,
                raft,
                config,
                applied: shared.subscribe(),
                leader_client: Arc::new(OnceLock::new()),
            },
            shared,
            log,
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

    /// Opens a node whose peers are reached over gRPC through `connector` (the daemon's
    /// mutual TLS, or [`crate::network::PlainTcp`]); followers forward writes to the
    /// leader and `join` / `leave` work. Serve [`RaftNode::handle`] with
    /// [`crate::network::RaftService`].
    pub async fn open_grpc(
        dir: &Path,
        node_id: u64,
        addr: String,
        sm: S,
        config: RaftConfig,
        connector: impl Connect,
    ) -> Result<Self, RaftError> {
        let network = GrpcNetwork::<S>::new(node_id, connector);
        let node = Self::open(dir, node_id, addr, sm, config, network.clone()).await?;
        node.set_leader_client(network);
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

    /// Reads the applied state on this node (possibly behind the leader's; but never behind
    /// a write that `propose` acknowledged here).
    pub async fn read<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&self.shared.read().sm)
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

    /// A cloneable handle, for a transport's server side.
    pub fn handle(&self) -> RaftHandle<S> {
        self.handle.clone()
    }

    /// Stops Raft and waits until its files are closed, so `dir` can be opened again.
    pub async fn shutdown(self) -> Result<(), RaftError> {
        self.handle
            .raft
            .shutdown()
            .await
            .map_err(|e| RaftError::Fatal(format!("shutdown: {e}")))?;
        let Self {
            handle,
            shared,
            log,
            closed,
        } = self;
        let t = handle.config.propose_timeout.max(Duration::from_secs(5));
        drop((handle, shared, log));
        tokio::time::timeout(t, closed.wait())
            .await
            .map_err(|_| RaftError::Timeout(t, "raft storage to close".into()))
    }
}

impl<S: StateMachine> RaftHandle<S> {
    /// How this node reaches the leader: forwarding writes, join and leave. Set once.
    pub fn set_leader_client(&self, client: impl LeaderClient<S>) {
        if self.leader_client.set(Box::new(client)).is_err() {
            tracing::warn!("raft leader client already set; keeping the first");
        }
    }

    fn client(&self) -> Option<&dyn LeaderClient<S>> {
        self.leader_client.get().map(|c| c.as_ref())
    }

    /// Proposes `cmd`; returns once it is committed (on disk on a quorum) and applied here.
    ///
    /// On a follower with a leader client the write is forwarded to the leader, and this
    /// returns once it is applied here too, so a read here after it sees it. Without one, a
    /// follower answers [`ProposeError::NotLeader`].
    pub async fn propose(&self, cmd: S::Command) -> Result<S::Response, ProposeError> {
        let cmd = Arc::new(cmd);
        let Some(client) = self.client() else {
            return self
                .write_here(cmd)
                .await
                .map(|(_, r)| r)
                .map_err(into_propose);
        };
        let waited = self.config.propose_timeout;
        let deadline = Deadline::now() + waited;
        let mut hint: Option<String> = None;
        loop {
            let leader = self.leader();
            let res = if leader == Some(self.id) {
                self.write_here(cmd.clone()).await
            } else if let Some(addr) = hint.take().or_else(|| self.leader_addr()) {
                let left = deadline.saturating_duration_since(Deadline::now());
                match client.forward(addr, cmd.clone(), left).await {
                    Ok(f) => {
                        let left = deadline.saturating_duration_since(Deadline::now());
                        // Committed; until applied here a read here would not see it.
                        return match self.wait_applied(f.index, left).await {
                            Ok(()) => Ok(f.response),
                            Err(_) => Err(ProposeError::NoQuorum { waited }),
                        };
                    }
                    // The leader is shutting down: it may or may not have taken the
                    // entry, so this write's outcome is unknown (retryable).
                    Err(LeaderError::Stopped(why)) => {
                        tracing::debug!(%why, "the leader stopped while forwarding");
                        return Err(ProposeError::NoQuorum { waited });
                    }
                    Err(e) => Err(e),
                }
            } else {
                Err(LeaderError::NotLeader {
                    leader_id: None,
                    leader_addr: None,
                })
            };
            match res {
                Ok((_, r)) => return Ok(r),
                // The leader moved or is being elected: follow it until the deadline.
                Err(LeaderError::NotLeader { leader_addr, .. }) => hint = leader_addr,
                Err(LeaderError::Unreachable(why)) => {
                    tracing::debug!(%why, "forward to the leader");
                }
                Err(e) => return Err(into_propose(e)),
            }
            if !self.pause_until_leader(deadline).await {
                return Err(ProposeError::NoLeader);
            }
        }
    }

    /// Waits a heartbeat (or until the known leader changes), unless past `deadline`.
    async fn pause_until_leader(&self, deadline: Deadline) -> bool {
        let pause = Deadline::now() + self.config.heartbeat_interval;
        if pause >= deadline {
            return false;
        }
        let mut m = self.raft.metrics();
        let before = m.borrow().current_leader;
        let changed = m.wait_for(|m| m.current_leader != before && m.current_leader.is_some());
        let _ = tokio::time::timeout_at(pause, changed).await;
        true
    }

    /// Proposes `cmd` on this node, which must lead: the entry's index and the response.
    pub async fn write_here(
        &self,
        cmd: Arc<S::Command>,
    ) -> Result<(u64, S::Response), LeaderError> {
        let waited = self.config.propose_timeout;
        match tokio::time::timeout(waited, self.raft.client_write(cmd)).await {
            Ok(Ok(resp)) => Ok((
                resp.log_id.index,
                resp.data
                    .expect("a normal entry's application always yields a response"),
            )),
            Ok(Err(e)) => Err(write_error(e)),
            // The leader cannot reach a quorum (openraft 0.9 leaders do not step down alone).
            Err(_) => Err(LeaderError::NoQuorum {
                waited_ms: millis(waited),
            }),
        }
    }

    /// How long a join or a removal may take: a learner catching up may need a snapshot.
    fn membership_timeout(&self) -> Duration {
        (self.config.propose_timeout * 4).max(Duration::from_secs(20))
    }

    /// On the leader: makes node `id` at `addr` a voter. It becomes a learner first, and a
    /// voter once it caught up (openraft's joint consensus does the switch). A node that is
    /// a voter already is left as it is.
    pub async fn add_voter_here(&self, id: u64, addr: String) -> Result<(), LeaderError> {
        self.leads()?;
        let voters = self.voters();
        if voters.contains(&id) {
            return Ok(());
        }
        let t = self.membership_timeout();
        let add = self.raft.add_learner(id, BasicNode::new(addr), true);
        tokio::time::timeout(t, add)
            .await
            .map_err(|_| LeaderError::Timeout(t))?
            .map_err(write_error)?;
        self.change_members(ChangeMembers::AddVoterIds(BTreeSet::from([id])))
            .await?;
        tracing::info!(id, "raft member joined as a voter");
        Ok(())
    }

    /// On the leader: removes voter `id` (and forgets its address). Refused when it is the
    /// last voter, and, unless `force`, when the managers left that answer the leader would
    /// not make a quorum of the new membership.
    pub async fn remove_voter_here(&self, id: u64, force: bool) -> Result<(), LeaderError> {
        self.leads()?;
        let (voters, known) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let membership = m.membership_config.membership();
            let voters: BTreeSet<u64> = membership.voter_ids().collect();
            let known = membership.get_node(&id).is_some();
            (voters, known)
        };
        if !voters.contains(&id) {
            if !known {
                return Ok(());
            }
            // A learner (a join that never finished): just forget it.
            return self
                .change_members(ChangeMembers::RemoveNodes(BTreeSet::from([id])))
                .await;
        }
        self.removal_refusal(&voters, id, force)?;
        self.change_members(ChangeMembers::RemoveVoters(BTreeSet::from([id])))
            .await?;
        tracing::info!(id, "raft member removed");
        Ok(())
    }

    /// Commits a membership change, within the membership timeout.
    async fn change_members(
        &self,
        change: ChangeMembers<u64, BasicNode>,
    ) -> Result<(), LeaderError> {
        let t = self.membership_timeout();
        tokio::time::timeout(t, self.raft.change_membership(change, false))
            .await
            .map_err(|_| LeaderError::Timeout(t))?
            .map(|_| ())
            .map_err(write_error)
    }

    /// On the leader: whether removing voter `id` would be refused (the last voter; or,
    /// unless `force`, the voters left that answer would not make a quorum of the new
    /// membership). Lets a caller check before it writes anything else about the removal.
    pub fn check_removal(&self, id: u64, force: bool) -> Result<(), RaftError> {
        self.leads()
            .and_then(|()| self.removal_refusal(&self.voters(), id, force))
            .map_err(membership_error)
    }

    fn removal_refusal(
        &self,
        voters: &BTreeSet<u64>,
        id: u64,
        force: bool,
    ) -> Result<(), LeaderError> {
        let left: Vec<u64> = voters.iter().copied().filter(|&v| v != id).collect();
        if left.is_empty() {
            return Err(LeaderError::Refused(
                "raft: cannot remove the last manager of the swarm".into(),
            ));
        }
        if !force {
            let reachable = left.iter().filter(|&&v| self.reachable(v)).count();
            if reachable < left.len() / 2 + 1 {
                return Err(LeaderError::Refused(LOSS_OF_QUORUM_MESSAGE.into()));
            }
        }
        Ok(())
    }

    /// Whether voter `v` answers this leader: it answered a call within an election
    /// timeout (when the transport tracks that), else it has every entry the leader has.
    fn reachable(&self, v: u64) -> bool {
        if v == self.id {
            return true;
        }
        if let Some(at) = self.client().and_then(|c| c.last_contact(v)) {
            let window = self
                .config
                .election_timeout_max
                .max(self.config.heartbeat_interval * 4);
            return at.elapsed() <= window;
        }
        let m = self.raft.metrics();
        let m = m.borrow();
        let last = m.last_log_index;
        m.replication
            .as_ref()
            .and_then(|r| r.get(&v).copied().flatten())
            .is_some_and(|matched| Some(matched.index) >= last)
    }

    fn leads(&self) -> Result<(), LeaderError> {
        let m = self.raft.metrics();
        let m = m.borrow();
        if m.state == ServerState::Leader {
            return Ok(());
        }
        let leader_addr = m
            .current_leader
            .and_then(|l| m.membership_config.membership().get_node(&l))
            .map(|n| n.addr.clone());
        Err(LeaderError::NotLeader {
            leader_id: m.current_leader,
            leader_addr,
        })
    }

    /// The voters of the membership this node knows of.
    pub fn voters(&self) -> BTreeSet<u64> {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.membership_config.membership().voter_ids().collect()
    }

    /// Joins the cluster whose leader (or any manager, which redirects) is at `leader_addr`:
    /// the leader adds this node as a learner, waits until it caught up, then makes it a
    /// voter. Open this node uninitialized and serving before calling it.
    pub async fn join(&self, leader_addr: &str) -> Result<(), RaftError> {
        let (id, addr) = (self.id, self.addr.clone());
        self.ask_leader(leader_addr.to_string(), move |client, leader, left| {
            client.join(leader, id, addr.clone(), left)
        })
        .await?;
        Ok(())
    }

    /// Removes this node from the membership through the leader (see
    /// [`RaftHandle::remove_member`]).
    pub async fn leave(&self, force: bool) -> Result<(), RaftError> {
        self.remove_member(self.id, force).await
    }

    /// Removes voter `id` (on the leader, or through it): joint consensus to the membership
    /// without it, and its address forgotten. Refused with [`LOSS_OF_QUORUM_MESSAGE`] when
    /// the managers left could lack a quorum, unless `force`.
    pub async fn remove_member(&self, id: u64, force: bool) -> Result<(), RaftError> {
        if self.is_leader() || self.client().is_none() {
            return self
                .remove_voter_here(id, force)
                .await
                .map_err(membership_error);
        }
        let Some(leader) = self.leader_addr() else {
            return Err(ProposeError::NoLeader.into());
        };
        self.ask_leader(leader, move |client, leader, left| {
            client.leave(leader, id, force, left)
        })
        .await
    }

    /// Calls the leader through the leader client, following redirects until the
    /// membership timeout.
    async fn ask_leader<F>(&self, first: String, call: F) -> Result<(), RaftError>
    where
        F: for<'a> Fn(
            &'a dyn LeaderClient<S>,
            String,
            Duration,
        ) -> crate::network::BoxFuture<'a, Result<(), LeaderError>>,
    {
        let Some(client) = self.client() else {
            return Err(RaftError::Membership(
                "no leader client: open the node with a network that reaches the leader".into(),
            ));
        };
        let deadline = Deadline::now() + self.membership_timeout();
        let mut addr = first;
        loop {
            let left = deadline.saturating_duration_since(Deadline::now());
            match call(client, addr.clone(), left).await {
                Ok(()) => return Ok(()),
                Err(LeaderError::NotLeader {
                    leader_addr: Some(next),
                    ..
                }) => addr = next,
                Err(e @ (LeaderError::NotLeader { .. } | LeaderError::Unreachable(_))) => {
                    if Deadline::now() + self.config.heartbeat_interval >= deadline {
                        return Err(membership_error(e));
                    }
                    tokio::time::sleep(self.config.heartbeat_interval).await;
                    if let Some(a) = self.leader_addr() {
                        addr = a;
                    }
                }
                Err(e) => return Err(membership_error(e)),
            }
        }
    }

    /// The index of the last entry applied here.
    pub fn applied_index(&self) -> u64 {
        *self.applied.borrow()
    }

    /// A watch of the applied index: loops wake on every apply.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.applied.clone()
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

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn config(&self) -> &RaftConfig {
        &self.config
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
        self.voters().into_iter().eq([self.id])
    }
}

/// openraft's refusal of a write or a membership change, as the leader tells a caller.
fn write_error(
    e: openraft::error::RaftError<u64, ClientWriteError<u64, BasicNode>>,
) -> LeaderError {
    match e {
        openraft::error::RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            LeaderError::NotLeader {
                leader_id: f.leader_id,
                leader_addr: f.leader_node.map(|n| n.addr),
            }
        }
        openraft::error::RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            LeaderError::Refused(format!("raft: {e}"))
        }
        openraft::error::RaftError::Fatal(e) => LeaderError::Stopped(e.to_string()),
    }
}

/// The leader's answer as a proposer sees it.
fn into_propose(e: LeaderError) -> ProposeError {
    match e {
        LeaderError::NotLeader {
            leader_id: Some(leader_id),
            leader_addr,
        } => ProposeError::NotLeader {
            leader_id,
            leader_addr: leader_addr.unwrap_or_default(),
        },
        LeaderError::NotLeader {
            leader_id: None, ..
        }
        | LeaderError::Unreachable(_) => ProposeError::NoLeader,
        LeaderError::NoQuorum { waited_ms } => ProposeError::NoQuorum {
            waited: Duration::from_millis(waited_ms),
        },
        LeaderError::Timeout(waited) => ProposeError::NoQuorum { waited },
        LeaderError::Refused(why) | LeaderError::Stopped(why) => ProposeError::Stopped(why),
    }
}

/// The leader's answer to a membership change as its caller sees it.
fn membership_error(e: LeaderError) -> RaftError {
    match e {
        LeaderError::Refused(why) => RaftError::Membership(why),
        LeaderError::Stopped(why) => RaftError::Fatal(why),
        LeaderError::Timeout(t) => RaftError::Timeout(t, "the membership change".into()),
        e => RaftError::Propose(into_propose(e)),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn fatal(e: openraft::error::Fatal<u64>) -> RaftError {
    RaftError::Fatal(e.to_string())
}
