//! The user's state machine in memory behind openraft's `RaftStateMachine`, and the last
//! snapshot in redb.
//!
//! Nothing of the applied state is written per entry: on open the state is the last
//! snapshot, and openraft replays the committed log after it. A snapshot is persisted
//! before the state or the log moves past it, so the log never has a hole behind it.

use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use openraft::storage::RaftStateMachine;
use openraft::{AnyError, Entry, EntryPayload, RaftSnapshotBuilder, StorageIOError};
use redb::{Database, ReadableDatabase};
use tokio::sync::watch;

use super::codec::Codec;
use super::{blocking, open_db, Alive, SNAPSHOT};
use crate::error::StorageError as DiskError;
use crate::machine::StateMachine;
use crate::types::{LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

const META_KEY: &str = "meta";
const DATA_KEY: &str = "data";

/// The applied state: the user's machine and how far Raft has driven it.
pub(crate) struct Applied<S> {
    pub(crate) sm: S,
    pub(crate) last_applied: Option<LogId>,
    pub(crate) membership: StoredMembership,
}

/// What the node, the snapshot builder and openraft's state machine worker share.
pub(crate) struct Shared<S> {
    state: RwLock<Applied<S>>,
    applied: watch::Sender<u64>,
    snapshot_db: Arc<Database>,
    codec: Codec,
    snapshot_seq: AtomicU64,
    _alive: Alive,
}

impl<S> Shared<S> {
    // A panic inside the user's apply already stops openraft; the lock poison adds nothing.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Applied<S>> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write(&self) -> RwLockWriteGuard<'_, Applied<S>> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }
}

/// openraft's state machine: applies entries to `S` and keeps its snapshots on disk.
pub struct StateMachineStore<S> {
    shared: Arc<Shared<S>>,
}

/// Builds a snapshot of the shared state (openraft runs it on its own task).
pub struct SnapshotBuilder<S> {
    shared: Arc<Shared<S>>,
}

impl<S: StateMachine> StateMachineStore<S> {
    /// Opens the snapshot file and restores `sm` from the last snapshot, if any.
    pub(crate) fn open(
        path: &Path,
        mut sm: S,
        alive: Alive,
        codec: Codec,
    ) -> Result<Self, DiskError> {
        let snapshot_db = open_db(path, SNAPSHOT, false, &codec)?;
        let mut last_applied = None;
        let mut membership = StoredMembership::default();
        if let Some((meta, data)) = load_snapshot(&snapshot_db, &codec)? {
            sm.restore(&data).map_err(DiskError::Restore)?;
            last_applied = meta.last_log_id;
            membership = meta.last_membership;
        }
        let (applied, _) = watch::channel(last_applied.map(|l| l.index).unwrap_or(0));
        Ok(Self {
            shared: Arc::new(Shared {
                state: RwLock::new(Applied {
                    sm,
                    last_applied,
                    membership,
                }),
                applied,
                snapshot_db,
                codec,
                snapshot_seq: AtomicU64::new(0),
                _alive: alive,
            }),
        })
    }

    pub(crate) fn shared(&self) -> Arc<Shared<S>> {
        self.shared.clone()
    }
}

fn load_snapshot(
    db: &Database,
    codec: &Codec,
) -> Result<Option<(SnapshotMeta, Vec<u8>)>, DiskError> {
    let txn = db.begin_read()?;
    let table = txn.open_table(SNAPSHOT)?;
    let (Some(meta), Some(data)) = (table.get(META_KEY)?, table.get(DATA_KEY)?) else {
        return Ok(None);
    };
    Ok(Some((
        codec.decode("snapshot meta", META_KEY.as_bytes(), meta.value())?,
        codec.open("snapshot data", DATA_KEY.as_bytes(), data.value())?,
    )))
}

async fn save_snapshot(
    db: Arc<Database>,
    codec: &Codec,
    meta: &SnapshotMeta,
    data: &[u8],
) -> Result<(), DiskError> {
    let meta = codec.encode("snapshot meta", META_KEY.as_bytes(), meta)?;
    let data = codec.seal("snapshot data", DATA_KEY.as_bytes(), data)?;
    blocking(move || {
        let txn = db.begin_write()?;
        {
            let mut table = txn.open_table(SNAPSHOT)?;
            table.insert(DATA_KEY, data.as_slice())?;
            table.insert(META_KEY, meta.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    })
    .await
}

impl<S: StateMachine> RaftSnapshotBuilder<TypeConfig<S>> for SnapshotBuilder<S> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<S>, StorageError> {
        // The state is cloned under the lock and serialized outside it (the clone shares
        // its rows), so applies and reads go on during a long serialization.
        let (meta, copy) = {
            let st = self.shared.read();
            let seq = self.shared.snapshot_seq.fetch_add(1, Ordering::Relaxed);
            let snapshot_id = match st.last_applied {
                Some(l) => format!("{}-{}-{}", l.leader_id, l.index, seq),
                None => format!("none-{seq}"),
            };
            let meta = SnapshotMeta {
                last_log_id: st.last_applied,
                last_membership: st.membership.clone(),
                snapshot_id,
            };
            (meta, st.sm.clone())
        };
        let data = tokio::task::spawn_blocking(move || copy.snapshot())
            .await
            .map_err(|e| {
                StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e))
            })?;
        save_snapshot(
            self.shared.snapshot_db.clone(),
            &self.shared.codec,
            &meta,
            &data,
        )
        .await
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e)))?;
        tracing::debug!(snapshot = %meta, bytes = data.len(), "snapshot built");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl<S: StateMachine> RaftStateMachine<TypeConfig<S>> for StateMachineStore<S> {
    type SnapshotBuilder = SnapshotBuilder<S>;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let st = self.shared.read();
        Ok((st.last_applied, st.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Option<S::Response>>, StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig<S>>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut out = Vec::new();
        let last = {
            let mut st = self.shared.write();
            for entry in entries {
                st.last_applied = Some(entry.log_id);
                out.push(match entry.payload {
                    EntryPayload::Blank => None,
                    EntryPayload::Normal(cmd) => Some(st.sm.apply(entry.log_id.index, &cmd)),
                    EntryPayload::Membership(m) => {
                        st.membership = StoredMembership::new(Some(entry.log_id), m);
                        None
                    }
                });
            }
            st.last_applied
        };
        if let Some(l) = last {
            self.shared.applied.send_replace(l.index);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            shared: self.shared.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let sig = || Some(meta.signature());
        // Disk first: once the log is purged behind this snapshot, it must survive a crash.
        save_snapshot(
            self.shared.snapshot_db.clone(),
            &self.shared.codec,
            meta,
            &data,
        )
        .await
        .map_err(|e| StorageIOError::write_snapshot(sig(), AnyError::new(&e)))?;
        {
            let mut st = self.shared.write();
            st.sm
                .restore(&data)
                .map_err(|e| StorageIOError::read_snapshot(sig(), AnyError::error(e)))?;
            st.last_applied = meta.last_log_id;
            st.membership = meta.last_membership.clone();
        }
        self.shared
            .applied
            .send_replace(meta.last_log_id.map(|l| l.index).unwrap_or(0));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<S>>, StorageError> {
        let loaded = load_snapshot(&self.shared.snapshot_db, &self.shared.codec)
            .map_err(|e| StorageIOError::read_snapshot(None, AnyError::new(&e)))?;
        Ok(loaded.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
