//! `swarm init --force-new-cluster`: a manager that lost its quorum starts a new Raft
//! cluster of one, itself, that holds the whole state it had.
//!
//! openraft cannot change a membership without a quorum, so the change is made on disk:
//!
//! ```text
//!  running node ──shutdown──► applied state (in memory) + every entry of its log after it
//!        │                        (committed or not, as etcd's --force-new-cluster does)
//!        ▼
//!  <dir>.new/  fresh storage, same data key:
//!        snapshot at the last entry's log id, membership {this node: its address}
//!        log purged up to that log id (empty), committed = it, vote = (last term, this node)
//!        ▼
//!  rename <dir> → <dir>.before-force-new-cluster-<unix secs>   (the old log kept, untouched)
//!  rename <dir>.new → <dir>
//! ```
//!
//! [`RaftNode::open`] on the new directory then finds a follower that is the only voter;
//! it elects itself at its first election timeout (term + 1) and appends its blank entry
//! after the old last index, so indexes (the store's object versions) keep growing.
//! A crash between the two renames leaves `<dir>.new` alone: [`finish_swap`] (called by
//! `open`) completes it. A crash before leaves the old directory in place.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::path::{Path, PathBuf};

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{BasicNode, EntryPayload, Membership, RaftLogReader};

use crate::error::{RaftError, StorageError};
use crate::machine::StateMachine;
use crate::node::RaftNode;
use crate::storage;
use crate::types::{SnapshotMeta, StoredMembership, Vote};

/// What [`RaftNode::force_new_cluster`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForcedCluster {
    /// The index of the last entry carried over; the new log goes on after it.
    pub last_index: u64,
    /// How many of the carried entries were not known to be committed here.
    pub uncommitted: u64,
    /// Where the old Raft directory was moved (kept, never deleted).
    pub backup: PathBuf,
}

/// `<dir>` with `suffix` appended to its last component: a sibling directory.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    dir.with_file_name(name)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn storage_err(e: openraft::StorageError<u64>) -> RaftError {
    RaftError::Fatal(format!("force new cluster: {e}"))
}

/// Completes a forced new cluster that a crash interrupted between its two renames: the
/// new directory is there and the old one already moved away.
pub fn finish_swap(dir: &Path) -> Result<(), StorageError> {
    let fresh = sibling(dir, ".new");
    if !dir.exists() && fresh.join(storage::SNAPSHOT_FILE).exists() {
        std::fs::rename(&fresh, dir).map_err(io(dir))?;
        tracing::warn!(dir = %dir.display(), "completed an interrupted force-new-cluster");
    }
    Ok(())
}

impl<S: StateMachine> RaftNode<S> {
    /// Stops this node and rewrites its Raft directory `dir` (the one it was opened on)
    /// so that it is the only voter of a new cluster, with the same id and address and
    /// the whole state: the applied state plus every entry of its log after it. `fresh`
    /// is an empty state machine to rebuild that state in. Reopen `dir` afterwards with
    /// [`RaftNode::open`]: it elects itself.
    ///
    /// The old directory is kept as [`ForcedCluster::backup`]. The new files are sealed
    /// with this node's data key, as the old ones were.
    pub async fn force_new_cluster(
        &self,
        dir: &Path,
        fresh: S,
    ) -> Result<ForcedCluster, RaftError> {
        if let Err(e) = self.raft.shutdown().await {
            tracing::debug!("raft already stopped: {e}");
        }
        // The applied state and its position, taken together.
        let (applied, data) = {
            let st = self.shared.read();
            (st.last_applied, st.sm.snapshot())
        };
        let mut log = self.log.clone();
        let vote = log.read_vote().await.map_err(storage_err)?;
        let committed = log.read_committed().await.map_err(storage_err)?;
        let from = applied.map_or(0, |l| l.index + 1);
        let entries = log.try_get_log_entries(from..).await.map_err(storage_err)?;

        let mut sm = fresh;
        sm.restore(&data).map_err(StorageError::Restore)?;
        let mut last = applied;
        for entry in &entries {
            if let EntryPayload::Normal(cmd) = &entry.payload {
                sm.apply(entry.log_id.index, cmd);
            }
            last = Some(entry.log_id);
        }
        let Some(last) = last else {
            return Err(RaftError::Initialize(
                "force new cluster: this node holds no Raft state".into(),
            ));
        };
        let committed_index = committed.map_or(0, |c| c.index).max(from.saturating_sub(1));
        let uncommitted = last.index.saturating_sub(committed_index);
        let term = vote
            .map_or(0, |v| v.leader_id().term)
            .max(last.leader_id.term);
        let data = sm.snapshot();

        let fresh_dir = sibling(dir, ".new");
        if fresh_dir.exists() {
            std::fs::remove_dir_all(&fresh_dir).map_err(io(&fresh_dir))?;
        }
        let membership = Membership::new(
            vec![BTreeSet::from([self.id()])],
            BTreeMap::from([(self.id(), BasicNode::new(self.addr()))]),
        );
        let meta = SnapshotMeta {
            last_log_id: Some(last),
            last_membership: StoredMembership::new(Some(last), membership),
            snapshot_id: format!("force-new-cluster-{}-{}", last.leader_id, last.index),
        };
        let key = self.config.data_key.clone();
        write_snapshot_dir(
            &fresh_dir,
            sm,
            key,
            &meta,
            data,
            &Vote::new(term, self.id()),
        )
        .await?;

        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let backup = sibling(dir, &format!(".before-force-new-cluster-{secs}"));
        std::fs::rename(dir, &backup).map_err(io(dir))?;
        std::fs::rename(&fresh_dir, dir).map_err(io(dir))?;
        if let Some(parent) = dir.parent() {
            // The renames are durable before anyone is told the new cluster exists.
            std::fs::File::open(parent)
                .and_then(|f| f.sync_all())
                .map_err(io(parent))?;
        }
        tracing::warn!(
            last_index = last.index,
            uncommitted,
            backup = %backup.display(),
            "raft: forced a new cluster of this node alone"
        );
        Ok(ForcedCluster {
            last_index: last.index,
            uncommitted,
            backup,
        })
    }
}

/// Writes a Raft directory at `dir` that starts at `meta`'s snapshot (`data`, the state
/// machine's bytes, loaded into the empty `sm`) with `vote`, its log purged up to the
/// snapshot and committed there: what `force_new_cluster` and `backup` both write. Every
/// write is on disk when it returns.
pub(crate) async fn write_snapshot_dir<S: StateMachine>(
    dir: &Path,
    sm: S,
    key: Option<crate::DataKey>,
    meta: &SnapshotMeta,
    data: Vec<u8>,
    vote: &Vote,
) -> Result<(), RaftError> {
    let err =
        |e: openraft::StorageError<u64>| RaftError::Fatal(format!("write {}: {e}", dir.display()));
    let path = dir.to_path_buf();
    let new = tokio::task::spawn_blocking(move || storage::open(&path, sm, key.as_ref()))
        .await
        .map_err(|e| RaftError::Fatal(format!("open task: {e}")))??;
    let storage::Storage {
        mut log,
        mut state_machine,
        closed,
    } = new;
    state_machine
        .install_snapshot(meta, Box::new(Cursor::new(data)))
        .await
        .map_err(err)?;
    log.save_vote(vote).await.map_err(err)?;
    let at = meta.last_log_id.expect("a snapshot at a log id");
    log.purge(at).await.map_err(err)?;
    log.save_committed(Some(at)).await.map_err(err)?;
    drop((log, state_machine));
    closed.wait().await;
    Ok(())
}
