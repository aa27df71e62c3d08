//! How Raft nodes reach each other: implementations of openraft's `RaftNetworkFactory`.
//!
//! - [`NoPeers`]: one manager, nobody to call.
//! - [`Router`]: several nodes in one process, with links that tests cut and heal.
//! - [`GrpcNetwork`]: managers in different processes, over gRPC (tonic); the caller brings
//!   the connector (the daemon's is mutual TLS). Its server side is
//!   [`grpc::RaftService`], which hands requests to a node's [`crate::node::RaftHandle`].
//!
//! Besides openraft's three calls, a node may hold a [`LeaderClient`]: how a follower
//! forwards a write to the leader and how a manager asks the leader to add or remove it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::machine::StateMachine;

pub mod grpc;
mod none;
mod router;

pub use grpc::{Connect, GrpcNetwork, PlainTcp, RaftService};
pub use none::NoPeers;
pub use router::{Router, RouterNetwork};

/// A peer could not be reached: the link is cut or the node is not there.
#[derive(Debug, thiserror::Error)]
#[error("node {to} unreachable from node {from}: {why}")]
pub struct Unreachable {
    pub from: u64,
    pub to: u64,
    pub why: &'static str,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A write the leader committed and applied for a follower: its log index, so the follower
/// waits until it applied it too, and the state machine's response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Forwarded<R> {
    pub index: u64,
    pub response: R,
}

/// Why the leader (or the way to it) did not do what a follower asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum LeaderError {
    /// The callee is not the leader; it names the one it knows of, if any.
    #[error("not the leader (leader: {leader_id:?} at {leader_addr:?})")]
    NotLeader {
        leader_id: Option<u64>,
        leader_addr: Option<String>,
    },
    /// The leader could not commit in time; the write may still commit.
    #[error("no quorum after {waited_ms} ms")]
    NoQuorum { waited_ms: u64 },
    /// The leader refused the request (a membership change that is not allowed).
    #[error("{0}")]
    Refused(String),
    #[error("raft stopped: {0}")]
    Stopped(String),
    /// Transport only: the leader could not be reached (nothing was sent, or the call failed).
    #[error("leader unreachable: {0}")]
    Unreachable(String),
    /// Transport only: no answer in time; the request may have been carried out.
    #[error("no answer from the leader in {0:?}")]
    Timeout(Duration),
}

/// A node's calls to the leader, by address (the leader's `BasicNode::addr`).
pub trait LeaderClient<S: StateMachine>: Send + Sync + 'static {
    /// Has the leader at `leader_addr` propose `cmd`, and returns once it applied it.
    fn forward(
        &self,
        leader_addr: String,
        cmd: Arc<S::Command>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Forwarded<S::Response>, LeaderError>>;

    /// Asks the leader to make node `id` at `addr` a voter (learner, caught up, voter).
    fn join(
        &self,
        leader_addr: String,
        id: u64,
        addr: String,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<(), LeaderError>>;

    /// Asks the leader to remove voter `id` (`force`: even at the risk of losing quorum).
    fn leave(
        &self,
        leader_addr: String,
        id: u64,
        force: bool,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<(), LeaderError>>;

    /// When node `id` last answered a Raft call from this node (the leader's heartbeats),
    /// if this client tracks it; the leader's quorum check before removing a member.
    fn last_contact(&self, _id: u64) -> Option<Instant> {
        None
    }
}
