//! `RaftNode::backup`: a copy taken while writes go on holds the state at exactly one
//! applied index (a prefix of the writes, nothing torn), opens as a node of its own with
//! the same key (and not without it), and takes writes after that index.

mod common;

use anyhow::{ensure, Result};
use common::{put, Kv, DEADLINE};
use swarm_raft::network::NoPeers;
use swarm_raft::{DataKey, RaftConfig, RaftNode, ServerState};

fn config() -> RaftConfig {
    RaftConfig {
        data_key: Some(DataKey::new([7; 32])),
        ..RaftConfig::fast()
    }
}

async fn open(dir: &std::path::Path, config: RaftConfig) -> Result<RaftNode<Kv>> {
    Ok(RaftNode::open(
        dir,
        1,
        "manager-1".into(),
        Kv::default(),
        config,
        NoPeers { from: 1 },
    )
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_writes_is_one_applied_index_and_opens_on_its_own() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let node = std::sync::Arc::new(open(&tmp.path().join("raft"), config()).await?);
    node.initialize_single().await?;
    let writer = {
        let node = node.clone();
        tokio::spawn(async move {
            for i in 0..200u64 {
                node.propose(put(format!("k{i:03}"), i)).await?;
            }
            anyhow::Ok(())
        })
    };
    node.wait_applied(50, DEADLINE).await?;
    let out = tmp.path().join("backup");
    let copy = node.backup(&out, Kv::default()).await?;
    writer.await??;
    ensure!(
        node.backup(&out, Kv::default()).await.is_err(),
        "a backup over an existing directory"
    );
    let node = std::sync::Arc::into_inner(node).expect("the writer is done");
    node.shutdown().await?;

    let plain = RaftConfig {
        data_key: None,
        ..RaftConfig::fast()
    };
    ensure!(
        open(&out, plain).await.is_err(),
        "the backup opened without the key"
    );
    let restored = open(&out, config()).await?;
    restored
        .wait_metrics(DEADLINE, "leads alone", |m| m.state == ServerState::Leader)
        .await?;
    let (len, last, prefix) = restored
        .read(|kv| {
            let prefix = kv
                .map
                .iter()
                .enumerate()
                .all(|(i, (k, v))| *k == format!("k{i:03}") && *v == i as u64);
            (kv.map.len() as u64, kv.last_index, prefix)
        })
        .await;
    // Index 1 is the membership entry of initialize, then one entry per write.
    ensure!(
        last == copy.index,
        "state at {last}, backup says {}",
        copy.index
    );
    ensure!(
        prefix && len == copy.index - 1 && (49..200).contains(&len),
        "{len} writes"
    );
    restored.propose(put("after", 1)).await?;
    ensure!(restored.applied_index() > copy.index);
    Ok(())
}
