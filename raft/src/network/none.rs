//! The network of a single manager: every peer is unreachable (there are none).

use openraft::error::{InstallSnapshotError, RPCError, RaftError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;

use super::Unreachable;
use crate::machine::StateMachine;
use crate::types::TypeConfig;

/// A network without peers, for a swarm of one manager.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPeers {
    pub from: u64,
}

/// The connection [`NoPeers`] hands out: it fails every call.
#[derive(Debug, Clone, Copy)]
pub struct NoPeer {
    from: u64,
    to: u64,
}

impl NoPeer {
    fn err<E: std::error::Error>(&self) -> RPCError<u64, BasicNode, E> {
        RPCError::Unreachable(openraft::error::Unreachable::new(&Unreachable {
            from: self.from,
            to: self.to,
            why: "single-node network has no peers",
        }))
    }
}

impl<S: StateMachine> RaftNetworkFactory<TypeConfig<S>> for NoPeers {
    type Network = NoPeer;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> NoPeer {
        NoPeer {
            from: self.from,
            to: target,
        }
    }
}

impl<S: StateMachine> RaftNetwork<TypeConfig<S>> for NoPeer {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig<S>>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(self.err())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig<S>>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        Err(self.err())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(self.err())
    }
}
