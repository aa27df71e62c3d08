//! An in-process network: several Raft nodes in one process call each other directly.
//!
//! Links are symmetric and can be cut and healed one by one or per node, so tests and the
//! scale benchmark can run "3 managers in one process" and partition them at will.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;

use super::Unreachable;
use crate::machine::StateMachine;
use crate::types::{Raft, TypeConfig};

struct Inner<S: StateMachine> {
    nodes: BTreeMap<u64, Raft<S>>,
    /// Cut links as (smaller id, larger id).
    cut: BTreeSet<(u64, u64)>,
}

/// The switchboard shared by every node of one in-process cluster.
pub struct Router<S: StateMachine> {
    inner: Arc<Mutex<Inner<S>>>,
}

impl<S: StateMachine> Clone for Router<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S: StateMachine> Default for Router<S> {
    fn default() -> Self {
        Self::new()
    }
}

fn link(a: u64, b: u64) -> (u64, u64) {
    (a.min(b), a.max(b))
}

impl<S: StateMachine> Router<S> {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                nodes: BTreeMap::new(),
                cut: BTreeSet::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The network factory for node `from`, to pass to [`crate::RaftNode::open`].
    pub fn network(&self, from: u64) -> RouterNetwork<S> {
        RouterNetwork {
            router: self.clone(),
            from,
            to: from,
        }
    }

    /// Makes node `id` reachable through its Raft handle (after opening it).
    pub fn register(&self, id: u64, raft: Raft<S>) {
        self.lock().nodes.insert(id, raft);
    }

    /// Takes node `id` off the network (it stopped).
    pub fn unregister(&self, id: u64) {
        self.lock().nodes.remove(&id);
    }

    /// Cuts the link between `a` and `b`, both ways.
    pub fn cut(&self, a: u64, b: u64) {
        self.lock().cut.insert(link(a, b));
    }

    /// Restores the link between `a` and `b`.
    pub fn heal(&self, a: u64, b: u64) {
        self.lock().cut.remove(&link(a, b));
    }

    /// Cuts every link of `id`, to every node registered now.
    pub fn isolate(&self, id: u64) {
        let mut inner = self.lock();
        let others: Vec<u64> = inner.nodes.keys().copied().filter(|&n| n != id).collect();
        for n in others {
            inner.cut.insert(link(id, n));
        }
    }

    /// Restores every link of `id`.
    pub fn rejoin(&self, id: u64) {
        self.lock().cut.retain(|&(a, b)| a != id && b != id);
    }

    /// Restores every link.
    pub fn heal_all(&self) {
        self.lock().cut.clear();
    }

    fn target(&self, from: u64, to: u64) -> Result<Raft<S>, Unreachable> {
        let inner = self.lock();
        if inner.cut.contains(&link(from, to)) {
            return Err(Unreachable {
                from,
                to,
                why: "link cut",
            });
        }
        inner.nodes.get(&to).cloned().ok_or(Unreachable {
            from,
            to,
            why: "node not registered",
        })
    }
}

/// A node's view of the router: a factory for its connections, and a connection itself.
pub struct RouterNetwork<S: StateMachine> {
    router: Router<S>,
    from: u64,
    to: u64,
}

impl<S: StateMachine> RouterNetwork<S> {
    /// Resolves the peer, and checks the link again once it answered: a reply over a link
    /// cut meanwhile is lost, as on a real network.
    async fn call<T, E, F>(
        &self,
        f: impl FnOnce(Raft<S>) -> F,
    ) -> Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>
    where
        E: std::error::Error,
        F: std::future::Future<Output = Result<T, RaftError<u64, E>>>,
    {
        let unreachable =
            |e: Unreachable| RPCError::Unreachable(openraft::error::Unreachable::new(&e));
        let raft = self
            .router
            .target(self.from, self.to)
            .map_err(unreachable)?;
        let res = f(raft).await;
        self.router
            .target(self.from, self.to)
            .map_err(unreachable)?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }
}

impl<S: StateMachine> RaftNetworkFactory<TypeConfig<S>> for RouterNetwork<S> {
    type Network = RouterNetwork<S>;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> RouterNetwork<S> {
        RouterNetwork {
            router: self.router.clone(),
            from: self.from,
            to: target,
        }
    }
}

impl<S: StateMachine> RaftNetwork<TypeConfig<S>> for RouterNetwork<S> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig<S>>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call(|raft| async move { raft.append_entries(rpc).await })
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig<S>>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        self.call(|raft| async move { raft.install_snapshot(rpc).await })
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call(|raft| async move { raft.vote(rpc).await }).await
    }
}
