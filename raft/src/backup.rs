//! `swarm backup`: a copy of a running node's Raft state at one applied index, written as
//! a Raft directory of its own that [`RaftNode::open`] (and `force_new_cluster`) can start
//! from.
//!
//! ```text
//!  running node ──one read lock──► (last applied log id, its membership, state bytes)
//!        │                         + the vote on disk (its term is ≥ the applied entry's)
//!        ▼
//!  <out>/   fresh storage, sealed with the node's data key:
//!        snapshot = that state at the applied log id, with that membership
//!        log purged up to it (empty), committed = it, vote = the node's vote
//! ```
//!
//! Only what is applied is copied: an applied entry is committed, so the copy is a state
//! the cluster really went through; entries not applied yet are left out (their writers
//! may not have been answered yet). The node keeps running meanwhile.

use std::path::Path;

use openraft::storage::RaftLogStorage;

use crate::error::{RaftError, StorageError};
use crate::machine::StateMachine;
use crate::node::RaftNode;
use crate::types::SnapshotMeta;

/// What [`RaftNode::backup`] copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The applied index the copy holds the state of.
    pub index: u64,
    /// Its term.
    pub term: u64,
}

fn storage_err(e: openraft::StorageError<u64>) -> RaftError {
    RaftError::Fatal(format!("backup: {e}"))
}

impl<S: StateMachine> RaftNode<S> {
    /// Writes this node's applied state into `out` (a directory that must not exist yet)
    /// as a Raft directory sealed with this node's data key; `fresh` is an empty state
    /// machine to load it in. The node keeps running.
    pub async fn backup(&self, out: &Path, fresh: S) -> Result<Backup, RaftError> {
        if out.exists() {
            return Err(RaftError::Fatal(format!(
                "backup: {} already exists",
                out.display()
            )));
        }
        // The state, its position and its membership, under one lock: one applied index.
        let (applied, membership, copy) = {
            let st = self.shared.read();
            (st.last_applied, st.membership.clone(), st.sm.clone())
        };
        // Serialized outside the lock: applies and reads go on meanwhile.
        let data = tokio::task::spawn_blocking(move || copy.snapshot())
            .await
            .map_err(|e| RaftError::Fatal(format!("backup: {e}")))?;
        let Some(applied) = applied else {
            return Err(RaftError::Initialize(
                "backup: this node has applied nothing yet".into(),
            ));
        };
        let vote = self
            .log
            .clone()
            .read_vote()
            .await
            .map_err(storage_err)?
            .ok_or_else(|| RaftError::Fatal("backup: no vote on disk".into()))?;

        let meta = SnapshotMeta {
            last_log_id: Some(applied),
            last_membership: membership,
            snapshot_id: format!("backup-{}-{}", applied.leader_id, applied.index),
        };
        let key = self.config.data_key.clone();
        crate::force::write_snapshot_dir(out, fresh, key, &meta, data, &vote).await?;
        std::fs::File::open(out)
            .and_then(|f| f.sync_all())
            .map_err(|source| StorageError::Io {
                path: out.display().to_string(),
                source,
            })?;
        Ok(Backup {
            index: applied.index,
            term: applied.leader_id.term,
        })
    }
}
