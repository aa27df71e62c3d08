//! The serving side: the `Raft` gRPC service over one node's [`RaftHandle`].
//!
//! The daemon adds `RaftService::new(node.handle()).into_server()` (or
//! `RaftServer::with_interceptor(service, check)`) to its own tonic `Server`, next to its
//! other cluster services; authorization is the interceptor's business, not this one's.

use std::sync::Arc;

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request, Response, Status};

use super::proto::raft_server::Raft;
use super::proto::{JoinRequest, LeaveRequest, Payload, Reply};
use super::{RaftServer, MAX_MESSAGE_SIZE};
use crate::machine::StateMachine;
use crate::network::Forwarded;
use crate::node::RaftHandle;
use crate::types::TypeConfig;

/// The `Raft` service of one manager.
pub struct RaftService<S: StateMachine> {
    handle: RaftHandle<S>,
}

impl<S: StateMachine> RaftService<S> {
    pub fn new(handle: RaftHandle<S>) -> Self {
        Self { handle }
    }

    /// As a tonic service with this crate's message size limits, to add to a `Server`.
    pub fn into_server(self) -> RaftServer<Self> {
        RaftServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }
}

fn decode<T: DeserializeOwned>(what: &str, req: Request<Payload>) -> Result<T, Status> {
    serde_json::from_slice(&req.into_inner().json)
        .map_err(|e| Status::invalid_argument(format!("decode {what}: {e}")))
}

/// The callee's answer or its error, both as JSON.
fn reply<T: Serialize, E: Serialize>(res: Result<T, E>) -> Result<Response<Reply>, Status> {
    let encode = |r: serde_json::Result<Vec<u8>>| {
        r.map_err(|e| Status::internal(format!("encode reply: {e}")))
    };
    let reply = match res {
        Ok(v) => Reply {
            ok: encode(serde_json::to_vec(&v))?,
            err: Vec::new(),
        },
        Err(e) => Reply {
            ok: Vec::new(),
            err: encode(serde_json::to_vec(&e))?,
        },
    };
    Ok(Response::new(reply))
}

#[tonic::async_trait]
impl<S: StateMachine> Raft for RaftService<S> {
    async fn append_entries(&self, req: Request<Payload>) -> Result<Response<Reply>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig<S>> = decode("append entries", req)?;
        reply(self.handle.raft().append_entries(rpc).await)
    }

    async fn vote(&self, req: Request<Payload>) -> Result<Response<Reply>, Status> {
        let rpc: VoteRequest<u64> = decode("vote", req)?;
        reply(self.handle.raft().vote(rpc).await)
    }

    async fn install_snapshot(&self, req: Request<Payload>) -> Result<Response<Reply>, Status> {
        let rpc: InstallSnapshotRequest<TypeConfig<S>> = decode("install snapshot", req)?;
        reply(self.handle.raft().install_snapshot(rpc).await)
    }

    async fn forward(&self, req: Request<Payload>) -> Result<Response<Reply>, Status> {
        let cmd: S::Command = decode("forwarded command", req)?;
        let res = self
            .handle
            .write_here(Arc::new(cmd))
            .await
            .map(|(index, response)| Forwarded { index, response });
        reply(res)
    }

    async fn join(&self, req: Request<JoinRequest>) -> Result<Response<Reply>, Status> {
        let JoinRequest { id, addr } = req.into_inner();
        if id == 0 || addr.is_empty() {
            return Err(Status::invalid_argument("join needs a node id and address"));
        }
        reply(self.handle.add_voter_here(id, addr).await)
    }

    async fn leave(&self, req: Request<LeaveRequest>) -> Result<Response<Reply>, Status> {
        let LeaveRequest { id, force } = req.into_inner();
        reply(self.handle.remove_voter_here(id, force).await)
    }
}
