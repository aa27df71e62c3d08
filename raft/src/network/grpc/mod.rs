//! Raft over gRPC (tonic): the `Raft` service of `proto/raft.proto`.
//!
//! ```text
//!  openraft ──► GrpcNetwork ──► GrpcPeer ──(Connect: the caller's TLS or PlainTcp)──►
//!       ──► RaftServer<RaftService> ──► RaftHandle: append_entries | vote |
//!           install_snapshot | forward (client write) | join | leave
//! ```
//!
//! openraft's messages travel as JSON in a protobuf envelope ([`proto::Payload`]); a reply
//! carries either the callee's answer or its error, so a refusal by the callee
//! (`RemoteError`) is told apart from a call that did not get through (`Unreachable`,
//! `Timeout`, `Network`). No authorization here: the daemon wraps the service with its own
//! interceptor (`RaftServer::with_interceptor`).

mod client;
mod server;

pub use client::{Connect, ConnectError, GrpcNetwork, GrpcPeer, PlainTcp};
pub use server::RaftService;

/// The generated protobuf types, client and server.
pub mod proto {
    tonic::include_proto!("swarm.raft");
}

pub use proto::raft_client::RaftClient;
pub use proto::raft_server::RaftServer;

/// The most encoded entries one AppendEntries call carries (at least one entry).
///
/// openraft 0.9 gives every AppendEntries the heartbeat interval (100 ms) to finish,
/// and resends the same entries whole when it runs out; it hands over up to
/// `max_payload_entries` (32) at once, which for a follower far behind on entries of
/// thousands of actions is tens of MB: a call that never finishes in time, resent for
/// ever. So the client sends the prefix that fits and tells openraft
/// `PartialSuccess(last sent)`; openraft goes on from there.
pub const APPEND_BUDGET_BYTES: usize = 1 << 20;

/// The largest message either side accepts: a snapshot chunk of 1 MiB as JSON, or a batch
/// of entries, with room to spare.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;
