//! Errors of the Raft layer: opening and running a node, and proposing a command.

use std::time::Duration;

/// Docker's words when no leader can commit a write.
pub const NO_LEADER_MESSAGE: &str = "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.";

/// Opening, initializing or running a node failed.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    #[error("raft storage: {0}")]
    Storage(#[from] StorageError),
    #[error("invalid raft config: {0}")]
    Config(String),
    #[error("raft initialize: {0}")]
    Initialize(String),
    #[error("raft membership change: {0}")]
    Membership(String),
    #[error("raft stopped: {0}")]
    Fatal(String),
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    /// No leader could take the request (Docker's sentence), or the leader lost quorum.
    #[error(transparent)]
    Propose(#[from] ProposeError),
}

/// The on-disk store failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("open {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: redb::DatabaseError,
    },
    #[error(transparent)]
    Database(#[from] redb::Error),
    #[error("encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("decode {what}: {source}")]
    Decode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("seal {what}: encryption failed")]
    Seal { what: &'static str },
    #[error("open {what}: authentication failed (wrong data key or corrupted record)")]
    Unseal { what: &'static str },
    #[error("open {what}: unknown record format version {version}")]
    UnknownRecord { what: &'static str, version: u8 },
    #[error("{path}: the raft data key does not match the one this data was sealed with")]
    WrongKey { path: String },
    #[error("{path}: raft data is encrypted at rest and no data key was given")]
    KeyRequired { path: String },
    #[error("{path}: raft data was written unencrypted; it cannot be opened with a data key")]
    NotEncrypted { path: String },
    #[error("restore state machine from snapshot: {0}")]
    Restore(String),
    #[error("create {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<redb::TransactionError> for StorageError {
    fn from(e: redb::TransactionError) -> Self {
        Self::Database(e.into())
    }
}
impl From<redb::TableError> for StorageError {
    fn from(e: redb::TableError) -> Self {
        Self::Database(e.into())
    }
}
impl From<redb::StorageError> for StorageError {
    fn from(e: redb::StorageError) -> Self {
        Self::Database(e.into())
    }
}
impl From<redb::CommitError> for StorageError {
    fn from(e: redb::CommitError) -> Self {
        Self::Database(e.into())
    }
}
impl From<redb::SetDurabilityError> for StorageError {
    fn from(e: redb::SetDurabilityError) -> Self {
        Self::Database(e.into())
    }
}

/// A proposal was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// This node is a follower; the write belongs on the leader.
    #[error("this manager is not the leader: the leader is node {leader_id} at {leader_addr}")]
    NotLeader { leader_id: u64, leader_addr: String },
    /// No leader is known (an election is under way or there is no quorum).
    #[error("{NO_LEADER_MESSAGE}")]
    NoLeader,
    /// This node leads but could not commit in time: too few managers answer. The entry may
    /// still commit later if the quorum comes back.
    #[error("{NO_LEADER_MESSAGE}")]
    NoQuorum { waited: Duration },
    #[error("raft is shutting down: {0}")]
    Stopped(String),
}

impl ProposeError {
    /// Whether the same proposal may succeed later, here or on the leader.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Stopped(_))
    }

    /// Whether the command may still be applied although this proposal failed.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, Self::NoQuorum { .. } | Self::Stopped(_))
    }

    /// The leader to forward the write to, when one is known.
    pub fn leader(&self) -> Option<(u64, &str)> {
        match self {
            Self::NotLeader {
                leader_id,
                leader_addr,
            } => Some((*leader_id, leader_addr)),
            _ => None,
        }
    }
}
