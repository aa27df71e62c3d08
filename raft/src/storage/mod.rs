//! Raft's state on disk, in two redb files under the node's directory:
//!
//! ```text
//! <dir>/raft-log.redb       log:  index -> entry      meta: "vote" | "committed" | "last_purged"
//! <dir>/raft-snapshot.redb  snapshot: "meta" | "data"   (the last snapshot only)
//! ```
//!
//! Two files so that writing a large snapshot never holds up log appends (redb has one
//! writer per file). Every value goes through [`codec`], the one place where bytes meet the
//! disk: with a data key it seals each record (encryption at rest), and each file's
//! `key_check` record makes a wrong key fail `open` instead of yielding garbage.

pub mod codec;
pub mod log;
pub mod state_machine;

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use tokio::sync::mpsc;

pub use self::codec::Codec;
pub use self::log::LogStore;
pub use self::state_machine::StateMachineStore;
use crate::config::DataKey;
use crate::error::StorageError;

pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(crate) const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");

pub const LOG_FILE: &str = "raft-log.redb";
pub const SNAPSHOT_FILE: &str = "raft-snapshot.redb";

/// redb's page cache per file (its default is 1 GiB). Reads of recent log entries come
/// from the log store's own cache of decoded entries ([`log`]); redb's is for the rest.
const PAGE_CACHE_BYTES: usize = 32 << 20;

/// The key of the key check record, in a file's `meta` (log) or `snapshot` table.
const KEY_CHECK_KEY: &str = "key_check";

/// Opens (or creates) a redb file with its `main` table (and the log table), and checks
/// that `codec` holds the key its records were sealed with.
pub(crate) fn open_db(
    path: &Path,
    main: TableDefinition<'static, &str, &[u8]>,
    with_log: bool,
    codec: &Codec,
) -> Result<Arc<Database>, StorageError> {
    let shown = || path.display().to_string();
    let db = Database::builder()
        .set_cache_size(PAGE_CACHE_BYTES)
        .create(path)
        .map_err(|source| StorageError::Open {
            path: shown(),
            source,
        })?;
    let txn = db.begin_write()?;
    {
        let mut table = txn.open_table(main)?;
        let mut has_data = !table.is_empty()?;
        if with_log {
            has_data |= !txn.open_table(LOG)?.is_empty()?;
        }
        let check = table.get(KEY_CHECK_KEY)?.map(|v| v.value().to_vec());
        match (check, codec.is_sealed()) {
            (Some(sealed), true) => {
                let plain = codec.open("key check", KEY_CHECK_KEY.as_bytes(), &sealed);
                if plain.ok().as_deref() != Some(codec::KEY_CHECK) {
                    return Err(StorageError::WrongKey { path: shown() });
                }
            }
            (Some(_), false) => return Err(StorageError::KeyRequired { path: shown() }),
            (None, true) if has_data => return Err(StorageError::NotEncrypted { path: shown() }),
            (None, true) => {
                let sealed = codec.seal("key check", KEY_CHECK_KEY.as_bytes(), codec::KEY_CHECK)?;
                table.insert(KEY_CHECK_KEY, sealed.as_slice())?;
            }
            (None, false) => {}
        }
    }
    txn.commit()?;
    Ok(Arc::new(db))
}

/// Both stores of a node's directory, and a signal for when they are closed.
pub struct Storage<S: crate::StateMachine> {
    pub log: LogStore<S>,
    pub state_machine: StateMachineStore<S>,
    pub closed: Closed,
}

/// Resolves once every handle on the node's databases is dropped, so the directory can be
/// opened again (redb locks its files). openraft's tasks may outlive `Raft::shutdown`.
pub struct Closed(mpsc::Receiver<()>);

/// Held by every owner of a database handle; its last drop fires [`Closed`].
#[derive(Clone)]
pub(crate) struct Alive(#[allow(dead_code)] mpsc::Sender<()>);

impl Closed {
    pub async fn wait(mut self) {
        // recv() returns None once every Alive is dropped; nothing is ever sent.
        while self.0.recv().await.is_some() {}
    }
}

/// Opens both stores of a node's directory; `key` seals every record (see [`codec`]).
pub fn open<S: crate::StateMachine>(
    dir: &Path,
    sm: S,
    key: Option<&DataKey>,
) -> Result<Storage<S>, StorageError> {
    let codec = Codec::new(key);
    std::fs::create_dir_all(dir).map_err(|source| StorageError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let (tx, rx) = mpsc::channel(1);
    let alive = Alive(tx);
    let log = LogStore::open(&dir.join(LOG_FILE), alive.clone(), codec.clone())?;
    let state_machine = StateMachineStore::open(&dir.join(SNAPSHOT_FILE), sm, alive, codec)?;
    Ok(Storage {
        log,
        state_machine,
        closed: Closed(rx),
    })
}

/// Runs a blocking redb write (it fsyncs) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
