//! Reads and writes go on while a snapshot is being serialized (issue 15 item 7).
//!
//! The state machine's `snapshot` is held at a gate (as a store of a million tasks holds
//! it for seconds); meanwhile a write must commit and a read must answer at once and see
//! it. When the snapshot shared a lock with apply and read, the write waited for the
//! whole serialization and the read queued behind the waiting write.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use common::{put, Kv, Put, DEADLINE};
use swarm_raft::network::NoPeers;
use swarm_raft::{RaftConfig, RaftNode, StateMachine};

/// Where `snapshot` waits: until opened, or for `HOLD` at most, so a node whose applies
/// wait for the snapshot still ends the test.
#[derive(Debug, Default)]
struct Gate {
    entered: AtomicBool,
    open: Mutex<bool>,
    opened: Condvar,
}

const HOLD: Duration = Duration::from_secs(5);

impl Gate {
    fn wait(&self) {
        self.entered.store(true, Ordering::SeqCst);
        let open = self.open.lock().unwrap();
        let _open = self.opened.wait_timeout_while(open, HOLD, |o| !*o).unwrap();
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    fn is_open(&self) -> bool {
        *self.open.lock().unwrap()
    }
}

/// Opens the gate however the test ends.
struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// [`Kv`] whose snapshots take as long as the gate holds them.
#[derive(Debug, Clone, Default)]
struct SlowKv {
    kv: Kv,
    gate: Arc<Gate>,
}

impl StateMachine for SlowKv {
    type Command = Put;
    type Response = Option<u64>;

    fn apply(&mut self, index: u64, cmd: &Put) -> Option<u64> {
        self.kv.apply(index, cmd)
    }

    fn snapshot(&self) -> Vec<u8> {
        self.gate.wait();
        self.kv.snapshot()
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        self.kv.restore(data)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_and_writes_go_on_while_a_snapshot_is_serialized() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(gate.clone());
    let config = RaftConfig {
        snapshot_every: 1_000_000,
        ..RaftConfig::fast()
    };
    let sm = SlowKv {
        gate: gate.clone(),
        ..SlowKv::default()
    };
    let node = RaftNode::open(dir.path(), 1, "n1".into(), sm, config, NoPeers { from: 1 }).await?;
    node.initialize_single().await?;
    for i in 0..100 {
        node.propose(put(format!("k{i}"), i)).await?;
    }
    let before = node.applied_index();

    node.raft().trigger().snapshot().await?;
    let deadline = Instant::now() + DEADLINE;
    while !gate.entered.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the snapshot never started");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    // A write commits while the snapshot is held.
    let t = Instant::now();
    let write = tokio::time::timeout(Duration::from_secs(3), node.propose(put("during", 7))).await;
    let took = t.elapsed();
    assert!(
        matches!(write, Ok(Ok(None))),
        "a write waited for the snapshot: {write:?} after {took:?}"
    );
    // A read answers at once and sees it, the snapshot still held.
    let t = Instant::now();
    let seen = node.read(|s| s.kv.map.get("during").copied()).await;
    let took = t.elapsed();
    assert!(
        took < Duration::from_millis(50),
        "a read waited {took:?} for the snapshot"
    );
    assert_eq!(
        seen,
        Some(7),
        "a read sees the write acknowledged before it"
    );
    assert!(!gate.is_open(), "all of this happened during the snapshot");

    // Released, the snapshot is the state it started from, not one with the later write.
    gate.open();
    let m = node
        .wait_metrics(DEADLINE, "the snapshot", |m| m.snapshot.is_some())
        .await?;
    let snapshot_index = m.snapshot.map(|s| s.index).unwrap_or(0);
    assert!(
        (before..node.applied_index()).contains(&snapshot_index),
        "snapshot at {snapshot_index}: built from the state at {before}, before the write at {}",
        node.applied_index()
    );
    node.shutdown().await?;
    Ok(())
}
