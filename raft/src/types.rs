//! openraft's type configuration, generic over the state machine.
//!
//! `declare_raft_types!` only makes concrete types, so the trait is implemented by hand for
//! `TypeConfig<S>`; the derives would wrongly require `S: Clone + Ord + ...`.

use std::cmp::Ordering;
use std::fmt;
use std::io::Cursor;
use std::marker::PhantomData;
use std::sync::Arc;

use openraft::impls::OneshotResponder;
use openraft::{BasicNode, Entry, RaftTypeConfig, TokioRuntime};

use crate::machine::StateMachine;

/// Raft's types for a state machine `S`: node ids are `u64`, nodes carry their address.
pub struct TypeConfig<S>(PhantomData<fn() -> S>);

impl<S: StateMachine> RaftTypeConfig for TypeConfig<S> {
    /// Shared: openraft clones entries (replication, the log cache, apply) and a
    /// command can hold thousands of objects.
    type D = Arc<S::Command>;
    /// `None` for the entries Raft makes itself (blank, membership).
    type R = Option<S::Response>;
    type NodeId = u64;
    type Node = BasicNode;
    type Entry = Entry<Self>;
    type SnapshotData = Cursor<Vec<u8>>;
    type AsyncRuntime = TokioRuntime;
    type Responder = OneshotResponder<Self>;
}

impl<S> fmt::Debug for TypeConfig<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TypeConfig")
    }
}
impl<S> Clone for TypeConfig<S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for TypeConfig<S> {}
impl<S> Default for TypeConfig<S> {
    fn default() -> Self {
        Self(PhantomData)
    }
}
impl<S> PartialEq for TypeConfig<S> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<S> Eq for TypeConfig<S> {}
impl<S> PartialOrd for TypeConfig<S> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<S> Ord for TypeConfig<S> {
    fn cmp(&self, _: &Self) -> Ordering {
        Ordering::Equal
    }
}

/// openraft's types instantiated for `S`.
pub type Raft<S> = openraft::Raft<TypeConfig<S>>;
pub type LogId = openraft::LogId<u64>;
pub type Vote = openraft::Vote<u64>;
pub type StorageError = openraft::StorageError<u64>;
pub type StoredMembership = openraft::StoredMembership<u64, BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<u64, BasicNode>;
pub type Snapshot<S> = openraft::Snapshot<TypeConfig<S>>;
pub type Metrics = openraft::RaftMetrics<u64, BasicNode>;
