//! swarm-raft: the managers' replicated log (openraft 0.9) with its log and snapshots on disk.
//!
//! ```text
//!  propose(cmd) ──► openraft leader ──► LogStore (redb, fsync) ──► replicate ──► commit
//!                                                                                 │
//!  read(|sm| ..) ◄── StateMachine S (in memory) ◄── apply(index, cmd) ◄───────────┘
//!  subscribe()   ◄── watch of the applied index
//! ```
//!
//! The crate is generic over the replicated [`StateMachine`]: the manager plugs in the core's
//! store. Only Raft's log and snapshots are on disk; the state machine is rebuilt on
//! [`RaftNode::open`] from the last snapshot plus a replay of the committed log.
//! The network is openraft's [`RaftNetworkFactory`]: [`network::NoPeers`] for one manager,
//! [`network::Router`] for several nodes in one process (tests, benchmarks), and
//! [`network::GrpcNetwork`] between processes, served by [`network::RaftService`].
//!
//! With a data key in [`RaftConfig::data_key`], everything written under the node's
//! directory is sealed (XChaCha20-Poly1305); see [`storage::codec`].
#![forbid(unsafe_code)]

pub mod backup;
pub mod config;
pub mod error;
pub mod force;
pub mod machine;
pub mod network;
pub mod node;
pub mod storage;
pub mod types;

pub use backup::Backup;
pub use config::{DataKey, RaftConfig};
pub use error::{ProposeError, RaftError};
pub use force::{finish_swap, ForcedCluster};
pub use machine::StateMachine;
pub use node::{RaftHandle, RaftNode, LOSS_OF_QUORUM_MESSAGE};
pub use openraft::{BasicNode, RaftMetrics, RaftNetworkFactory, ServerState};
pub use types::TypeConfig;
