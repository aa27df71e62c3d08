//! The manager's store: `swarm-core`'s [`Store`](CoreStore) as the Raft state machine.
//!
//! ```text
//!  propose(actions) ─▶ Batch { now, actions } ─▶ swarm-raft (redb log, fsync, commit)
//!                                                        │ apply(index, batch)
//!  read(|store| ..) ◀── core Store (in memory) ◀─────────┘ Result<events, error>
//!  subscribe()      ◀── applied index
//! ```
//!
//! The core store lives only in memory: a restarted swarmd rebuilds it from Raft's last
//! snapshot plus its log, both under `<data>/raft`. There is no other copy on disk.
//! A batch the core refuses (a stale version, a taken name) is still a committed entry,
//! applied as a no-op; its error comes back to the proposer as the entry's response.

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use swarm_core::store::{Event, Store as CoreStore, StoreAction};
use swarm_core::ErrorKind;
use swarm_raft::network::Connect;
use swarm_raft::{ProposeError, RaftConfig, RaftNode, StateMachine};
use tokio::sync::watch;

use super::events;
use crate::api::ApiError;
use crate::error::Result;
use crate::events::Feed;

/// One Raft entry: what the proposer decided, and when by its clock (every replica applies
/// the same timestamps; `apply` never reads a clock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub now: DateTime<Utc>,
    pub actions: Vec<StoreAction>,
}

/// The most actions one entry carries when a pass has many independent ones (the
/// scheduler's assignments): an entry travels whole in one AppendEntries, so a pass over a
/// million tasks must not make one entry of them all.
pub const ENTRY_ACTIONS: usize = 5000;

/// How many entries one pass has in Raft at once: while one is replicated and applied the
/// next is encoded and written, rather than each waiting for the one before.
pub const IN_FLIGHT: usize = 4;

/// Proposes each of `entries` as its own entry (each applied all or nothing; empty ones
/// skipped), up to [`IN_FLIGHT`] at once; the results in order. `propose` is the store's
/// (swarmd) or a bare Raft node's (the scale benchmark).
pub async fn propose_each<T, E, F>(
    entries: impl IntoIterator<Item = Vec<StoreAction>>,
    propose: impl FnMut(Vec<StoreAction>) -> F,
) -> Vec<Result<T, E>>
where
    F: std::future::Future<Output = Result<T, E>>,
{
    use futures::StreamExt;
    futures::stream::iter(entries.into_iter().filter(|a| !a.is_empty()))
        .map(propose)
        .buffered(IN_FLIGHT)
        .collect()
        .await
}

/// `actions` cut into entries of at most [`ENTRY_ACTIONS`].
pub fn entries_of(actions: Vec<StoreAction>) -> Vec<Vec<StoreAction>> {
    let mut entries = Vec::with_capacity(actions.len().div_ceil(ENTRY_ACTIONS));
    let mut rest = actions.into_iter().peekable();
    while rest.peek().is_some() {
        entries.push(rest.by_ref().take(ENTRY_ACTIONS).collect());
    }
    entries
}

/// A batch the core store applied: the entry's index (every object it wrote has that
/// `Version.Index`) and what changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub index: u64,
    pub events: Vec<Event>,
}

/// A batch the core store refused, in a form Raft can carry: the error's kind (which
/// decides the HTTP status) and its message (Docker's words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApplyError {
    pub kind: ErrorKind,
    pub message: String,
}

impl From<swarm_core::Error> for ApplyError {
    fn from(e: swarm_core::Error) -> ApplyError {
        ApplyError {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// How an LZ4 frame starts (little-endian 0x184D2204); a JSON snapshot starts with `{`.
const LZ4_FRAME_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

/// The state machine: the core store, newtyped so this crate can implement Raft's trait,
/// and where Docker's events are published from (`events.rs`; none without a feed).
#[derive(Debug, Clone, Default)]
pub struct StoreMachine(pub CoreStore, pub Option<Arc<Feed>>);

impl Deref for StoreMachine {
    type Target = CoreStore;
    fn deref(&self) -> &CoreStore {
        &self.0
    }
}

impl StateMachine for StoreMachine {
    type Command = Batch;
    type Response = std::result::Result<Applied, ApplyError>;

    fn apply(&mut self, index: u64, batch: &Batch) -> Self::Response {
        let Some(feed) = &self.1 else {
            let events = self.0.apply(&batch.actions, index, batch.now)?;
            return Ok(Applied { index, events });
        };
        let old = events::olds(&self.0, &batch.actions);
        let events = self.0.apply(&batch.actions, index, batch.now)?;
        feed.publish(events::messages(&self.0, &events, &old, batch.now));
        Ok(Applied { index, events })
    }

    /// The store's JSON, LZ4-compressed (frame format) as it is written: a million tasks
    /// are about 1 GiB of JSON, which was built whole in memory before (docs/raft.md).
    fn snapshot(&self) -> Vec<u8> {
        let mut lz4 = lz4_flex::frame::FrameEncoder::new(Vec::new());
        self.0
            .write_snapshot_json(&mut lz4)
            .expect("the model always serializes into memory");
        lz4.finish().expect("compressing into memory")
    }

    /// Reads what [`StateMachine::snapshot`] made, or the plain JSON of earlier versions.
    fn restore(&mut self, data: &[u8]) -> std::result::Result<(), String> {
        self.0 = if data.starts_with(&LZ4_FRAME_MAGIC) {
            CoreStore::read_snapshot_json(lz4_flex::frame::FrameDecoder::new(data))
        } else {
            CoreStore::restore_json(data)
        }
        .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Why a write did not happen: Raft did not commit it, or the store refused it.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Raft(#[from] ProposeError),
    #[error(transparent)]
    Refused(#[from] ApplyError),
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> ApiError {
        match e {
            WriteError::Raft(e) => e.into(),
            WriteError::Refused(e) => e.into(),
        }
    }
}

/// The store of one manager: a Raft node over the core store.
pub struct Store {
    raft: RaftNode<StoreMachine>,
    /// Docker's events of every entry this manager applies.
    feed: Arc<Feed>,
}

impl Store {
    /// Opens (or creates) Raft under `dir`; the store is rebuilt from its snapshot and log
    /// before this returns.
    /// Peers are reached through `connector` (the daemon's mutual TLS); followers
    /// forward writes to the leader.
    pub async fn open(
        dir: &Path,
        raft_id: u64,
        addr: String,
        config: RaftConfig,
        connector: impl Connect,
    ) -> Result<Store> {
        let feed = Arc::new(Feed::default());
        let raft = RaftNode::open_grpc(
            dir,
            raft_id,
            addr,
            StoreMachine(CoreStore::default(), Some(feed.clone())),
            config,
            connector,
        )
        .await?;
        // Elections for `/metrics`: the metrics' sender goes with Raft, ending the task.
        let mut metrics = raft.metrics();
        tokio::spawn(async move {
            let mut leader = None;
            while metrics.changed().await.is_ok() {
                let now = metrics.borrow().current_leader;
                // A leader lost and found again is no change.
                if now.is_some() && now != leader {
                    crate::metrics::leader_changed();
                    leader = now;
                }
            }
        });
        Ok(Store { raft, feed })
    }

    /// The events of what this manager applies (`GET /events`).
    pub fn feed(&self) -> &Arc<Feed> {
        &self.feed
    }

    /// Joins the Raft cluster of the manager at `addr` (any manager; it redirects to the
    /// leader): added as a learner, caught up, then made a voter.
    pub async fn join(&self, addr: &str) -> Result<()> {
        Ok(self.raft.join(addr).await?)
    }

    /// Removes manager `raft_id` from the Raft membership (refused when it would lose
    /// quorum, unless `force`).
    pub async fn remove_member(&self, raft_id: u64, force: bool) -> Result<()> {
        Ok(self.raft.remove_member(raft_id, force).await?)
    }

    /// On the leader: refused as [`Store::remove_member`] would refuse it, without
    /// changing anything.
    pub fn check_removal(&self, raft_id: u64) -> Result<()> {
        Ok(self.raft.check_removal(raft_id, false)?)
    }

    /// The Raft IDs of the managers that vote.
    pub fn voters(&self) -> std::collections::BTreeSet<u64> {
        self.raft.voters()
    }

    /// The handle the cluster port's Raft service serves.
    pub fn handle(&self) -> swarm_raft::RaftHandle<StoreMachine> {
        self.raft.handle()
    }

    /// The cluster address of the leader this manager knows of.
    pub fn leader_addr(&self) -> Option<String> {
        self.raft.leader_addr()
    }

    /// The Raft ID of the leader this manager knows of.
    pub fn leader(&self) -> Option<u64> {
        self.raft.leader()
    }

    /// Raft's view: members and, on the leader, when each was last heard from.
    pub fn metrics(&self) -> swarm_raft::RaftMetrics<u64, swarm_raft::BasicNode> {
        self.raft.metrics().borrow().clone()
    }

    /// `swarm init --force-new-cluster`: stops Raft and rewrites `dir` (the directory it
    /// was opened on) as a new cluster of this manager alone, with the whole store (see
    /// `swarm_raft::force`). Open `dir` again afterwards; this store is done.
    pub async fn force_new_cluster(&self, dir: &Path) -> Result<swarm_raft::ForcedCluster> {
        Ok(self
            .raft
            .force_new_cluster(dir, StoreMachine::default())
            .await?)
    }

    /// `swarm backup`: the applied store at one index, written into `dir` as a Raft
    /// directory sealed with this manager's data key (see `swarm_raft::backup`).
    pub async fn backup(&self, dir: &Path) -> Result<swarm_raft::Backup> {
        Ok(self.raft.backup(dir, StoreMachine::default()).await?)
    }

    /// This manager's Raft address.
    pub fn addr(&self) -> String {
        self.raft.addr().to_string()
    }

    /// `swarm init`: this manager becomes the only member and the leader.
    pub async fn initialize(&self) -> Result<()> {
        Ok(self.raft.initialize_single().await?)
    }

    /// Commits (fsync) and applies a batch with this manager's clock. Empty batches are
    /// skipped (no entry, no events).
    pub async fn propose(&self, actions: Vec<StoreAction>) -> Result<Applied, WriteError> {
        if actions.is_empty() {
            return Ok(Applied {
                index: self.raft.applied_index(),
                events: Vec::new(),
            });
        }
        let batch = Batch {
            now: Utc::now(),
            actions,
        };
        Ok(self.raft.propose(batch).await??)
    }

    /// A consistent read of this manager's applied store.
    pub async fn read<T>(&self, f: impl FnOnce(&CoreStore) -> T) -> T {
        self.raft.read(|t: &StoreMachine| f(&t.0)).await
    }

    /// The applied index, changing on every applied entry.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.raft.subscribe()
    }

    pub fn is_leader(&self) -> bool {
        self.raft.is_leader()
    }

    /// Stops Raft and waits until its files are closed.
    pub async fn shutdown(self) -> Result<()> {
        Ok(self.raft.shutdown().await?)
    }

    /// Stops Raft through a shared handle (on SIGTERM); the files close as the process ends.
    pub async fn stop(&self) {
        if let Err(e) = self.raft.raft().shutdown().await {
            tracing::warn!("stop raft: {e}");
        }
    }
}

/// The Raft ID of a node: a stable 64-bit hash (FNV-1a) of its node ID, never 0. Derived,
/// not stored, so a restarted swarmd reopens its log as the same member.
pub fn raft_id(node_id: &str) -> u64 {
    let h = node_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    h.max(1)
}

#[cfg(test)]
mod tests {
    use swarm_core::model::{Service, ServiceSpec};
    use swarm_core::store::{Object, ObjectKind};

    use super::*;

    fn service(id: &str) -> StoreAction {
        let mut spec: ServiceSpec =
            serde_json::from_value(serde_json::json!({"Name": id, "Unknown": {"kept": true}}))
                .unwrap();
        spec.name = id.into();
        let mut s = Service {
            spec,
            ..Service::default()
        };
        s.meta.id = id.into();
        StoreAction::Create(Object::Service(Box::new(s)))
    }

    async fn open(dir: &Path) -> Store {
        let s = Store::open(
            dir,
            raft_id("n1"),
            "127.0.0.1:2377".into(),
            RaftConfig::fast(),
            swarm_raft::network::PlainTcp::default(),
        )
        .await
        .unwrap();
        s.initialize().await.unwrap();
        s
    }

    #[test]
    fn snapshots_are_compressed_and_plain_json_ones_still_restore() {
        let mut m = StoreMachine::default();
        let batch = Batch {
            now: Utc::now(),
            actions: vec![service("a"), service("b")],
        };
        m.apply(1, &batch).unwrap();
        let data = m.snapshot();
        assert!(data.starts_with(&LZ4_FRAME_MAGIC));
        let json = m.0.snapshot_json();
        assert!(data.len() < json.len());

        let mut from_lz4 = StoreMachine::default();
        from_lz4.restore(&data).unwrap();
        assert_eq!(from_lz4.0.snapshot(), m.0.snapshot());
        let mut from_json = StoreMachine::default();
        from_json.restore(&json).unwrap();
        assert_eq!(from_json.0.snapshot(), m.0.snapshot());
        assert!(StoreMachine::default()
            .restore(&data[..data.len() / 2])
            .is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_survive_reopen_from_log_and_from_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        let a = s.propose(vec![service("a")]).await.unwrap().index;
        let b = s.propose(vec![service("b")]).await.unwrap();
        assert!(b.index > a, "indexes grow: {a} then {}", b.index);
        assert_eq!(b.events.len(), 1);
        s.propose(vec![StoreAction::Remove(ObjectKind::Service, "a".into())])
            .await
            .unwrap();
        assert_eq!(
            s.propose(vec![]).await.unwrap().index,
            s.raft.applied_index()
        );
        s.shutdown().await.unwrap();

        // Reopened: the log is replayed onto an empty store.
        let s = open(dir.path()).await;
        s.read(|t| {
            assert!(t.service("a").is_none());
            let b_ = t.service("b").unwrap();
            assert_eq!(b_.meta.version.index, b.index);
            assert_eq!(b_.spec.extra["Unknown"]["kept"], true);
        })
        .await;
        s.raft
            .snapshot(std::time::Duration::from_secs(10))
            .await
            .unwrap();
        let c = s.propose(vec![service("c")]).await.unwrap().index;
        s.shutdown().await.unwrap();

        // Reopened: snapshot, then the entry after it.
        let s = open(dir.path()).await;
        s.read(|t| {
            let ids: Vec<&str> = t.services().map(|s| s.id()).collect();
            assert_eq!(ids, ["b", "c"]);
            assert_eq!(t.service("c").unwrap().meta.version.index, c);
        })
        .await;
        s.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_batch_changes_nothing_and_maps_to_dockers_status() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        s.propose(vec![service("a")]).await.unwrap();
        // The same name again, after a create that would have succeeded: all or nothing.
        let e = s
            .propose(vec![service("b"), service("a")])
            .await
            .unwrap_err();
        let api = ApiError::from(e);
        assert_eq!(api.status(), 409, "{api}");
        assert!(s.read(|t| t.service("b").is_none()).await);
        s.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_raft_refuses_is_503() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        s.stop().await;
        let e = s.propose(vec![service("late")]).await.unwrap_err();
        let api = ApiError::from(e);
        assert_eq!(api.status(), 503, "{api}");
        assert!(s.read(|t| t.services().next().is_none()).await);
    }

    #[test]
    fn raft_ids_are_stable_and_nonzero() {
        assert_eq!(raft_id("abc"), raft_id("abc"));
        assert_ne!(raft_id("abc"), raft_id("abd"));
        assert_ne!(raft_id(""), 0);
    }
}
