//! The Raft log, the vote and the committed index in redb: openraft's `RaftLogStorage`.
//!
//! An append is one redb transaction committed with `Durability::Immediate` (fsync) before
//! openraft is told the entries are flushed; only then may they count towards a quorum.
//! The committed index is written without fsync: it is a hint for replay on open, and the
//! next append makes it durable anyway.
//!
//! The newest entries are also kept decoded in memory ([`Recent`]): the leader reads each
//! entry back to replicate it and every node reads it back to apply it, right after it was
//! appended. Without the cache each read opened and JSON-decoded the entry again (five
//! times per entry across three managers, the largest cost of a big write).

use std::collections::VecDeque;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

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

/// How much of the log's tail [`Recent`] keeps, counted in encoded bytes.
const RECENT_BYTES: usize = 128 << 20;

/// The newest entries of the log, decoded (their commands are shared, so a copy is cheap).
///
/// Always a contiguous suffix of the log on disk: appends add at the back, the oldest are
/// dropped past [`RECENT_BYTES`] (keeping at least one), truncation cuts the back and a
/// purge the front. Empty after open: until the first append every read goes to disk.
struct Recent<S: StateMachine> {
    entries: VecDeque<(Entry<TypeConfig<S>>, usize)>,
    bytes: usize,
    /// [`RECENT_BYTES`] but in tests.
    limit: usize,
}

impl<S: StateMachine> Recent<S> {
    fn new(limit: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|(e, _)| e.log_id.index)
    }

    fn push(&mut self, entry: Entry<TypeConfig<S>>, size: usize) {
        if let Some((last, _)) = self.entries.back() {
            if entry.log_id.index != last.log_id.index + 1 {
                // Not the next index (openraft truncates before it overwrites): start over
                // rather than ever hold a hole.
                self.clear();
            }
        }
        self.entries.push_back((entry, size));
        self.bytes += size;
        while self.bytes > self.limit && self.entries.len() > 1 {
            if let Some((_, s)) = self.entries.pop_front() {
                self.bytes -= s;
            }
        }
    }

    /// Drops the entries from `index` on.
    fn truncate(&mut self, index: u64) {
        self.drop_while(End::Back, |i| i >= index);
    }

    /// Drops the entries up to and including `index`.
    fn purge(&mut self, index: u64) {
        self.drop_while(End::Front, |i| i <= index);
    }

    /// Drops entries from one end while `drop` holds for their index.
    fn drop_while(&mut self, end: End, drop: impl Fn(u64) -> bool) {
        loop {
            let at = match end {
                End::Front => self.entries.front(),
                End::Back => self.entries.back(),
            };
            if !at.is_some_and(|(e, _)| drop(e.log_id.index)) {
                return;
            }
            let popped = match end {
                End::Front => self.entries.pop_front(),
                End::Back => self.entries.pop_back(),
            };
            if let Some((_, size)) = popped {
                self.bytes -= size;
            }
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// The entries of `range` when they are all here (every index from the range's start on
    /// is, as the cache is the log's suffix); `None` sends the read to disk.
    fn get(&self, range: &impl RangeBounds<u64>) -> Option<Vec<Entry<TypeConfig<S>>>> {
        let first = self.first_index()?;
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s + 1,
            Bound::Unbounded => 0,
        };
        if start < first {
            return None;
        }
        Some(
            self.entries
                .iter()
                .skip((start - first) as usize)
                .take_while(|(e, _)| range.contains(&e.log_id.index))
                .map(|(e, _)| e.clone())
                .collect(),
        )
    }
}

#[derive(Clone, Copy)]
enum End {
    Front,
    Back,
}

/// The log store of one node; clones share the database and the cache (openraft wants a
/// separate reader).
pub struct LogStore<S: StateMachine> {
    db: Arc<Database>,
    codec: Codec,
    recent: Arc<Mutex<Recent<S>>>,
    _alive: Alive,
    _sm: PhantomData<fn() -> S>,
}

impl<S: StateMachine> Clone for LogStore<S> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            codec: self.codec.clone(),
            recent: self.recent.clone(),
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
            recent: Arc::new(Mutex::new(Recent::new(RECENT_BYTES))),
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

    // Nothing panics while holding it; a poisoned cache is still a valid suffix.
    fn recent(&self) -> MutexGuard<'_, Recent<S>> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn entries(
        &self,
        range: impl RangeBounds<u64>,
    ) -> Result<Vec<Entry<TypeConfig<S>>>, DiskError> {
        if let Some(hit) = self.recent().get(&range) {
            return Ok(hit);
        }
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
        let (rows, decoded): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .map(|e| {
                let index = e.log_id.index;
                let bytes = self.codec.encode("log entry", &log_aad(index), &e)?;
                let size = bytes.len();
                Ok(((index, bytes), (e, size)))
            })
            .collect::<Result<Vec<_>, DiskError>>()
            .map_err(write_err)?
            .into_iter()
            .unzip();
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
                // Before the callback: once openraft hears the entries are flushed it may
                // read them back.
                let mut recent = self.recent();
                for (entry, size) in decoded {
                    recent.push(entry, size);
                }
                drop(recent);
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
        // First: a read racing the disk write must not find entries that are going away.
        self.recent().truncate(log_id.index);
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
        self.recent().purge(log_id.index);
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

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;

    #[derive(Clone)]
    struct Nop;
    impl StateMachine for Nop {
        type Command = ();
        type Response = ();
        fn apply(&mut self, _: u64, _: &()) {}
        fn snapshot(&self) -> Vec<u8> {
            Vec::new()
        }
        fn restore(&mut self, _: &[u8]) -> Result<(), String> {
            Ok(())
        }
    }

    fn entry(index: u64) -> Entry<TypeConfig<Nop>> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    fn indexes(got: Option<Vec<Entry<TypeConfig<Nop>>>>) -> Option<Vec<u64>> {
        got.map(|es| es.iter().map(|e| e.log_id.index).collect())
    }

    #[test]
    fn the_cache_is_the_logs_suffix_within_its_limit() {
        let mut r = Recent::<Nop>::new(30);
        assert_eq!(indexes(r.get(&(1..))), None, "empty: read the disk");
        for i in 1..=5 {
            r.push(entry(i), 10);
        }
        // 50 bytes over a 30-byte limit: the three newest stay.
        assert_eq!(r.first_index(), Some(3));
        assert_eq!(indexes(r.get(&(3..=4))), Some(vec![3, 4]));
        assert_eq!(indexes(r.get(&(4..))), Some(vec![4, 5]));
        assert_eq!(
            indexes(r.get(&(2..5))),
            None,
            "2 was dropped: read the disk"
        );

        r.truncate(5);
        assert_eq!(indexes(r.get(&(3..))), Some(vec![3, 4]));
        r.push(entry(5), 10);
        r.purge(3);
        assert_eq!(indexes(r.get(&(4..))), Some(vec![4, 5]));
        assert_eq!(r.bytes, 20);

        // An index out of sequence never leaves a hole: the cache starts over.
        r.push(entry(9), 10);
        assert_eq!(indexes(r.get(&(4..))), None);
        assert_eq!(indexes(r.get(&(9..))), Some(vec![9]));
        assert_eq!(r.bytes, 10);

        // One entry larger than the limit is still kept.
        r.push(entry(10), 100);
        assert_eq!(indexes(r.get(&(10..))), Some(vec![10]));
    }
}
