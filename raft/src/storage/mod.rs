//! Raft's state on disk, in two redb files under the node's directory:
//!
//! ```text
//! <dir>/raft-log.redb       log:  index -> entry      meta: "vote" | "committed" | "last_purged"
//! <dir>/raft-snapshot.redb  snapshot: "meta" | "data"   (the last snapshot only)
//! ```
//!
//! Two files so that writing a large snapshot never holds up log appends (redb has one
//! writer per file). Every value goes through [`codec`], the one place where bytes meet the
//! disk, so encryption at rest wraps there.

pub mod codec;
pub mod log;
pub mod state_machine;

use std::path::Path;
use std::sync::Arc;

use redb::{Database, TableDefinition};
use tokio::sync::mpsc;

pub use self::log::LogStore;
pub use self::state_machine::StateMachineStore;
use crate::error::StorageError;

pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(crate) const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");

pub const LOG_FILE: &str = "raft-log.redb";
pub const SNAPSHOT_FILE: &str = "raft-snapshot.redb";

/// Opens (or creates) a redb file and its tables.
pub(crate) fn open_db(
    path: &Path,
    tables: &[TableDefinition<'static, &str, &[u8]>],
    with_log: bool,
) -> Result<Arc<Database>, StorageError> {
    let db = Database::create(path).map_err(|source| StorageError::Open {
        path: path.display().to_string(),
        source,
    })?;
    let txn = db.begin_write()?;
    for table in tables {
        txn.open_table(*table)?;
    }
    if with_log {
        txn.open_table(LOG)?;
    }
    txn.commit()?;
    Ok(Arc::new(db))
}

/// Both stores of a node's directory, and a signal for when they are closed.
pub struct Storage<S> {
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

/// Opens both stores of a node's directory.
pub fn open<S: crate::StateMachine>(dir: &Path, sm: S) -> Result<Storage<S>, StorageError> {
    std::fs::create_dir_all(dir).map_err(|source| StorageError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let (tx, rx) = mpsc::channel(1);
    let alive = Alive(tx);
    let log = LogStore::open(&dir.join(LOG_FILE), alive.clone())?;
    let state_machine = StateMachineStore::open(&dir.join(SNAPSHOT_FILE), sm, alive)?;
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
