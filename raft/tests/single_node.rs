//! One manager on real disk: propose, reopen, snapshot + purge + reopen, commit latency.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use common::{put, Kv, DEADLINE};
use swarm_raft::network::NoPeers;
use swarm_raft::{RaftConfig, RaftNode};

async fn open(dir: &Path, config: RaftConfig) -> Result<RaftNode<Kv>> {
    let node = RaftNode::open(
        dir,
        1,
        "127.0.0.1:2377".into(),
        Kv::default(),
        config,
        NoPeers { from: 1 },
    )
    .await?;
    node.initialize_single().await?;
    Ok(node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propose_reopen_snapshot_reopen() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = RaftConfig {
        snapshot_every: 1_000_000,
        keep_logs_after_snapshot: 10,
        ..RaftConfig::fast()
    };

    let node = open(dir.path(), config.clone()).await?;
    assert!(node.is_leader());
    assert_eq!(node.leader(), Some(1));
    let applied = node.subscribe();
    // Proposals in flight together: openraft batches them into one fsync.
    let mut tasks = tokio::task::JoinSet::new();
    let node = std::sync::Arc::new(node);
    for w in 0..10u64 {
        let node = node.clone();
        tasks.spawn(async move {
            for i in 0..100u64 {
                let prev = node.propose(put(format!("k{w}-{i}"), i)).await?;
                assert_eq!(prev, None);
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    assert!(applied.has_changed()?, "subscribers are woken by applies");
    assert_eq!(node.propose(put("k0-0", 7)).await?, Some(0));
    let before = node.read(|kv| (kv.map.clone(), kv.applied)).await;
    assert_eq!(before.0.len(), 1000);
    assert_eq!(before.1, 1001);
    let node = std::sync::Arc::into_inner(node).expect("no other handle");
    node.shutdown().await?;

    // Reopen: no snapshot yet, the whole log is replayed.
    let node = open(dir.path(), config.clone()).await?;
    assert_eq!(node.read(|kv| (kv.map.clone(), kv.applied)).await, before);

    // Snapshot, which purges the log behind it but for the last 10 entries.
    let at = node.snapshot(DEADLINE).await?;
    assert!(at >= 1002, "snapshot covers every entry, got {at}");
    let m = node
        .wait_metrics(DEADLINE, "log purged", |m| {
            m.purged.map(|p| p.index).unwrap_or(0) + 10 >= at
        })
        .await?;
    assert!(m.purged.is_some());
    node.propose(put("after-snapshot", 1)).await?;
    let before = node.read(|kv| (kv.map.clone(), kv.applied)).await;
    node.shutdown().await?;

    // Reopen: snapshot restored, then the few entries after it replayed.
    let node = open(dir.path(), config).await?;
    assert_eq!(node.read(|kv| (kv.map.clone(), kv.applied)).await, before);
    let first_log = node.metrics().borrow().purged.map(|p| p.index);
    assert!(first_log.is_some(), "purge survived the reopen");
    node.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_policy_builds_and_purges() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = RaftConfig {
        snapshot_every: 50,
        keep_logs_after_snapshot: 5,
        ..RaftConfig::fast()
    };
    let node = open(dir.path(), config.clone()).await?;
    for i in 0..120u64 {
        node.propose(put(format!("k{i}"), i)).await?;
    }
    let m = node
        .wait_metrics(DEADLINE, "snapshot by policy", |m| {
            m.snapshot.map(|s| s.index).unwrap_or(0) >= 90 && m.purged.is_some()
        })
        .await?;
    assert!(m.purged.unwrap().index >= 80);
    let before = node.read(|kv| kv.map.clone()).await;
    node.shutdown().await?;
    let node = open(dir.path(), config).await?;
    assert_eq!(node.read(|kv| kv.map.clone()).await, before);
    node.shutdown().await?;
    Ok(())
}

/// Commit latency of one proposal at a time: append + fsync + apply on this disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_latency() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = open(dir.path(), RaftConfig::fast()).await?;
    let n = 200;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let t = Instant::now();
        node.propose(put("k", i)).await?;
        samples.push(t.elapsed());
    }
    samples.sort();
    let pct = |p: usize| samples[(samples.len() - 1) * p / 100];
    let mean = samples.iter().sum::<Duration>() / n as u32;
    println!(
        "commit latency over {n} sequential proposals: p50 {:?}, p90 {:?}, p99 {:?}, mean {:?}",
        pct(50),
        pct(90),
        pct(99),
        mean
    );
    node.shutdown().await?;
    Ok(())
}
