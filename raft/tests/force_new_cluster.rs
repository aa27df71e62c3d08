//! `force_new_cluster`: three managers (sealed, over the router) lose two; the survivor
//! restarts as a cluster of one with every write, takes writes again, and stays so after
//! a reopen; its old directory is kept; the new files are sealed with its key.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use common::{put, Kv, DEADLINE};
use swarm_raft::network::{NoPeers, Router};
use swarm_raft::{DataKey, RaftConfig, RaftError, RaftNode, ServerState};

fn config(id: u64) -> RaftConfig {
    RaftConfig {
        data_key: Some(DataKey::new([id as u8; 32])),
        ..RaftConfig::fast()
    }
}

async fn reopen(dir: &Path, id: u64) -> Result<RaftNode<Kv>> {
    let node = RaftNode::open(
        dir,
        id,
        format!("manager-{id}"),
        Kv::default(),
        config(id),
        NoPeers { from: id },
    )
    .await?;
    node.wait_metrics(DEADLINE, "leads alone", |m| m.state == ServerState::Leader)
        .await?;
    Ok(node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_survivor_of_a_lost_quorum_goes_on_alone_with_every_write() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = |id: u64| tmp.path().join(format!("m{id}")).join("raft");
    let router = Router::new();
    let mut nodes = BTreeMap::new();
    for id in 1..=3u64 {
        let node = RaftNode::open(
            &dir(id),
            id,
            format!("manager-{id}"),
            Kv::default(),
            config(id),
            router.network(id),
        )
        .await?;
        router.register(id, node.raft().clone());
        nodes.insert(id, node);
    }
    let members = (1..=3).map(|id| (id, format!("manager-{id}"))).collect();
    nodes[&1].initialize(members).await?;
    nodes[&1]
        .wait_metrics(DEADLINE, "1 leads", |m| m.state == ServerState::Leader)
        .await?;
    // Writes before and after a snapshot on the survivor: both paths are carried.
    for i in 0..30 {
        nodes[&1].propose(put(format!("k{i}"), i)).await?;
    }
    let last = nodes[&1].applied_index();
    nodes[&3].wait_applied(last, DEADLINE).await?;
    nodes[&3].snapshot(DEADLINE).await?;
    for i in 30..50 {
        nodes[&1].propose(put(format!("k{i}"), i)).await?;
    }
    let last = nodes[&1].applied_index();
    nodes[&3].wait_applied(last, DEADLINE).await?;

    // Managers 1 and 2 are gone: 3 cannot commit.
    for id in [1, 2] {
        router.unregister(id);
        nodes.remove(&id).context("node")?.shutdown().await?;
    }
    let survivor = nodes.remove(&3).context("node 3")?;
    let lost = survivor.propose(put("lost", 1)).await;
    ensure!(lost.is_err(), "a write without quorum: {lost:?}");

    let forced = survivor.force_new_cluster(&dir(3), Kv::default()).await?;
    ensure!(forced.last_index >= last, "{forced:?} behind {last}");
    ensure!(
        forced.backup.join("raft-log.redb").exists() && forced.backup.starts_with(tmp.path()),
        "the old log is kept: {forced:?}"
    );
    survivor.shutdown().await?;

    let node = reopen(&dir(3), 3).await?;
    ensure!(
        node.voters().into_iter().eq([3]),
        "voters {:?}",
        node.voters()
    );
    let (n, k49) = node
        .read(|kv| (kv.map.len(), kv.map.get("k49").copied()))
        .await;
    ensure!(
        n == 50 && k49 == Some(49),
        "state carried: {n} keys, k49 {k49:?}"
    );
    node.propose(put("after", 1)).await?;
    let after = node.applied_index();
    ensure!(after > forced.last_index, "indexes go on: {after}");
    node.shutdown().await?;

    // Reopened: still alone, still leading, the write after it there.
    let node = reopen(&dir(3), 3).await?;
    ensure!(node.read(|kv| kv.map.get("after").copied()).await == Some(1));
    node.propose(put("again", 2)).await?;
    node.shutdown().await?;

    // Sealed with the node's key, as before.
    let plain = RaftNode::open(
        &dir(3),
        3,
        "manager-3".into(),
        Kv::default(),
        RaftConfig::fast(),
        NoPeers { from: 3 },
    )
    .await;
    ensure!(
        matches!(plain, Err(RaftError::Storage(_))),
        "opened without the key"
    );
    Ok(())
}

#[tokio::test]
async fn an_interrupted_swap_is_finished_on_open() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("raft");
    let node = RaftNode::open(
        &dir,
        7,
        "manager-7".into(),
        Kv::default(),
        config(7),
        NoPeers { from: 7 },
    )
    .await?;
    node.initialize_single().await?;
    node.propose(put("a", 1)).await?;
    let forced = node.force_new_cluster(&dir, Kv::default()).await?;
    node.shutdown().await?;
    // As if the process died between the two renames.
    std::fs::rename(&dir, tmp.path().join("raft.new"))?;
    let node = tokio::time::timeout(Duration::from_secs(30), reopen(&dir, 7)).await??;
    ensure!(node.read(|kv| kv.map.get("a").copied()).await == Some(1));
    ensure!(forced.backup.exists());
    node.shutdown().await?;
    Ok(())
}
