//! The Raft log, the vote and the committed index in redb: openraft's `RaftLogStorage`.
//!
//! An append is one redb transaction committed with `Durability::Immediate` (fsync) before
//! openraft is told the entries are flushed; only then may they count towards a quorum.
//! The committed index is written without fsync: it is a hint for replay on open, and the
//! next append makes it durable anyway.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, Entry, LogState, OptionalSend, RaftLogReader, StorageIOError};
use redb::{Database, Durability, ReadableDatabase, ReadableTable};

use super::codec::{log_aad, Codec};
use super::{blocking, open_db, Alive, LOG, META};
use crate::error::StorageError as DiskError;
use crate::machine::StateMachine;
use crate::types::{LogId, StorageError, TypeConfig, Vote};

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// The log store of one node; clones share the database (openraft wants a separate reader).
pub struct LogStore<S> {
    db: Arc<Database>,
    codec: Codec,
    _alive: Alive,
    _sm: PhantomData<fn() -> S>,
}

impl<S> Clone for LogStore<S> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            codec: self.codec.clone(),
            _alive: self._alive.clone(),
            _sm: PhantomData,
        }
    }
}

impl<S: StateMachine> LogStore<S> {
    pub(crate) fn open(path: &Path, alive: Alive, codec: Codec) -> Result<Self, DiskError> {
        Ok(Self {
            db: open_db(path, META, true, &codec)?,
            codec,
            _alive: alive,
            _sm: PhantomData,
        })
    }

    /// The index of the last entry on disk (purged or not); 0 when there is none.
    pub fn last_index(&self) -> Result<u64, DiskError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOG)?;
        if let Some((k, _)) = table.last()? {
            return Ok(k.value());
        }
        let purged: Option<LogId> = self.read_meta(LAST_PURGED)?;
        Ok(purged.map(|l| l.index).unwrap_or(0))
    }

    fn read_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, DiskError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(META)?;
        match table.get(key)? {
            Some(v) => self.codec.decode(key, key.as_bytes(), v.value()),
            None => Ok(None),
        }
    }

    async fn write_meta<T: serde::Serialize>(
        &self,
        key: &'static str,
        value: &T,
        durability: Durability,
    ) -> Result<(), DiskError> {
        let bytes = self.codec.encode(key, key.as_bytes(), value)?;
        let db = self.db.clone();
        blocking(move || {
            let mut txn = db.begin_write()?;
            txn.set_durability(durability)?;
            txn.open_table(META)?.insert(key, bytes.as_slice())?;
            txn.commit()?;
            Ok(())
        })
        .await
    }

    fn entries(
        &self,
        range: impl RangeBounds<u64>,
    ) -> Result<Vec<Entry<TypeConfig<S>>>, DiskError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOG)?;
        let mut out = Vec::new();
        for item in table.range(range)? {
            let (k, v) = item?;
            out.push(
                self.codec
                    .decode("log entry", &log_aad(k.value()), v.value())?,
            );
        }
        Ok(out)
    }
}

fn read_err(e: DiskError) -> StorageError {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}
fn write_err(e: DiskError) -> StorageError {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

impl<S: StateMachine> RaftLogReader<TypeConfig<S>> for LogStore<S> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig<S>>>, StorageError> {
        self.entries(range).map_err(read_err)
    }
}

impl<S: StateMachine> RaftLogStorage<TypeConfig<S>> for LogStore<S> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig<S>>, StorageError> {
        let last_purged: Option<LogId> = self.read_meta(LAST_PURGED).map_err(read_err)?;
        let last = (|| {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(LOG)?;
            let last = match table.last()? {
                Some((k, v)) => {
                    let e: Entry<TypeConfig<S>> =
                        self.codec
                            .decode("log entry", &log_aad(k.value()), v.value())?;
                    Some(e.log_id)
                }
                None => None,
            };
            Ok::<_, DiskError>(last)
        })()
        .map_err(read_err)?;
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last.or(last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.write_meta(VOTE, vote, Durability::Immediate)
            .await
            .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(VOTE)
            .map_err(|e| StorageIOError::read_vote(AnyError::new(&e)).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.write_meta(COMMITTED, &committed, Durability::None)
            .await
            .map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self
            .read_meta::<Option<LogId>>(COMMITTED)
            .map_err(read_err)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig<S>>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig<S>>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let rows = entries
            .into_iter()
            .map(|e| {
                let index = e.log_id.index;
                Ok((index, self.codec.encode("log entry", &log_aad(index), &e)?))
            })
            .collect::<Result<Vec<_>, DiskError>>()
            .map_err(write_err)?;
        let db = self.db.clone();
        let res = blocking(move || {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(LOG)?;
                for (index, bytes) in &rows {
                    table.insert(*index, bytes.as_slice())?;
                }
            }
            // Durability::Immediate (the default): fsync before commit() returns.
            txn.commit()?;
            Ok(())
        })
        .await;
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_write()?;
            txn.open_table(LOG)?
                .retain_in(log_id.index.., |_, _| false)?;
            txn.commit()?;
            Ok(())
        })
        .await
        .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let purged = self
            .codec
            .encode(LAST_PURGED, LAST_PURGED.as_bytes(), &Some(log_id))
            .map_err(write_err)?;
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_write()?;
            // One transaction: the purge mark and the deletion land together or not at all.
            txn.open_table(META)?
                .insert(LAST_PURGED, purged.as_slice())?;
            txn.open_table(LOG)?
                .retain_in(..=log_id.index, |_, _| false)?;
            txn.commit()?;
            Ok(())
        })
        .await
        .map_err(write_err)
    }
}
