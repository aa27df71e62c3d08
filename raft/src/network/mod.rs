//! How Raft nodes reach each other: implementations of openraft's `RaftNetworkFactory`.
//!
//! - [`NoPeers`]: one manager, nobody to call.
//! - [`Router`]: several nodes in one process, with links that tests cut and heal.
//!
//! A transport between processes (gRPC over mutual TLS) implements the same factory and, on
//! the receiving side, hands requests to [`crate::RaftNode::raft`]'s `append_entries`, `vote`
//! and `install_snapshot`.

mod none;
mod router;

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
