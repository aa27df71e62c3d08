//! Encryption at rest: nothing written under a node's directory shows its commands, and the
//! directory opens only with its data key.

mod common;

use std::path::Path;

use anyhow::Result;
use common::{put, Kv};
use swarm_raft::error::StorageError;
use swarm_raft::network::NoPeers;
use swarm_raft::{DataKey, RaftConfig, RaftError, RaftNode};

const SECRET: &str = "SECRET-PLAINTEXT-123";

async fn open(dir: &Path, key: Option<[u8; 32]>) -> Result<RaftNode<Kv>, RaftError> {
    let config = RaftConfig {
        data_key: key.map(DataKey::new),
        ..RaftConfig::fast()
    };
    let node = RaftNode::open(
        dir,
        1,
        "127.0.0.1:1".into(),
        Kv::default(),
        config,
        NoPeers { from: 1 },
    )
    .await?;
    Ok(node)
}

/// Every file under `dir` that contains `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(path.display().to_string());
                }
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_and_snapshots_are_sealed_and_open_only_with_their_key() -> Result<()> {
    let key = [0x5a; 32];
    let dir = tempfile::tempdir()?;
    let node = open(dir.path(), Some(key)).await?;
    node.initialize_single().await?;
    node.propose(put(format!("{SECRET}-in-snapshot"), 1))
        .await?;
    node.snapshot(common::DEADLINE).await?;
    node.propose(put(format!("{SECRET}-in-log"), 2)).await?;
    node.shutdown().await?;

    let found = files_containing(dir.path(), SECRET.as_bytes());
    assert!(found.is_empty(), "plaintext on disk in {found:?}");
    // Nor the node's address, which the membership holds.
    let found = files_containing(dir.path(), b"127.0.0.1:1");
    assert!(found.is_empty(), "membership address on disk in {found:?}");

    // A wrong key, or none, fails open with a clear error instead of garbage.
    let err = open(dir.path(), Some([0x11; 32]))
        .await
        .err()
        .expect("opened with a wrong key");
    assert!(
        matches!(err, RaftError::Storage(StorageError::WrongKey { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("data key does not match"), "{err}");
    let err = open(dir.path(), None)
        .await
        .err()
        .expect("opened without the key");
    assert!(
        matches!(err, RaftError::Storage(StorageError::KeyRequired { .. })),
        "{err}"
    );

    // With the key: everything is there.
    let node = open(dir.path(), Some(key)).await?;
    let map = node.read(|kv| kv.map.clone()).await;
    assert_eq!(map.get(&format!("{SECRET}-in-snapshot")), Some(&1));
    assert_eq!(map.get(&format!("{SECRET}-in-log")), Some(&2));
    node.wait_metrics(common::DEADLINE, "leads again", |m| {
        m.state == swarm_raft::ServerState::Leader
    })
    .await?;
    node.propose(put("after-reopen", 3)).await?;
    node.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unencrypted_data_is_not_opened_with_a_key() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = open(dir.path(), None).await?;
    node.initialize_single().await?;
    node.propose(put(SECRET, 1)).await?;
    node.shutdown().await?;
    assert!(!files_containing(dir.path(), SECRET.as_bytes()).is_empty());

    let err = open(dir.path(), Some([1; 32]))
        .await
        .err()
        .expect("opened with a key");
    assert!(
        matches!(err, RaftError::Storage(StorageError::NotEncrypted { .. })),
        "{err}"
    );
    Ok(())
}
