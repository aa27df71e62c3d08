//! openraft's own storage test suite against the redb log and snapshot stores.

mod common;

use common::Kv;
use openraft::testing::{StoreBuilder, Suite};
use swarm_raft::storage::{self, LogStore, StateMachineStore};
use swarm_raft::types::StorageError;
use swarm_raft::TypeConfig;
use tempfile::TempDir;

struct Builder;

impl StoreBuilder<TypeConfig<Kv>, LogStore<Kv>, StateMachineStore<Kv>, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore<Kv>, StateMachineStore<Kv>), StorageError> {
        let dir = TempDir::new().expect("temp dir");
        let store = storage::open(dir.path(), Kv::default()).expect("open storage");
        Ok((dir, store.log, store.state_machine))
    }
}

#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(Builder) {
        panic!("storage suite: {e}");
    }
}
