//! openraft's own storage test suite against the redb log and snapshot stores.

mod common;

use common::Kv;
use openraft::testing::{StoreBuilder, Suite};
use swarm_raft::storage::{self, LogStore, StateMachineStore};
use swarm_raft::types::StorageError;
use swarm_raft::{DataKey, TypeConfig};
use tempfile::TempDir;

/// `Some`: every record sealed with a data key.
struct Builder(Option<DataKey>);

impl StoreBuilder<TypeConfig<Kv>, LogStore<Kv>, StateMachineStore<Kv>, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore<Kv>, StateMachineStore<Kv>), StorageError> {
        let dir = TempDir::new().expect("temp dir");
        let store =
            storage::open(dir.path(), Kv::default(), self.0.as_ref()).expect("open storage");
        Ok((dir, store.log, store.state_machine))
    }
}

#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(Builder(None)) {
        panic!("storage suite: {e}");
    }
}

#[test]
fn openraft_storage_suite_sealed() {
    if let Err(e) = Suite::test_all(Builder(Some(DataKey::new([7; 32])))) {
        panic!("storage suite (sealed): {e}");
    }
}
