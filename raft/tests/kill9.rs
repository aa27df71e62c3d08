//! Every acknowledged write survives `kill -9`.
//!
//! The test re-executes its own binary as a child (`KILL9_CHILD_DIR` set) that proposes
//! without pause from several tasks and prints `ACK <key>` once `propose` returned. The
//! parent SIGKILLs it at a random point, reopens the directory and checks that every
//! acknowledged key is in the state. Several rounds on the same directory, so each child
//! also starts from a crashed one's files.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use common::{put, Kv};
use swarm_raft::network::NoPeers;
use swarm_raft::{RaftConfig, RaftNode};

const CHILD_DIR: &str = "KILL9_CHILD_DIR";
const CHILD_ROUND: &str = "KILL9_CHILD_ROUND";

async fn open(dir: &Path) -> Result<RaftNode<Kv>> {
    let config = RaftConfig {
        // Small enough that some rounds die around a snapshot and a purge.
        snapshot_every: 150,
        keep_logs_after_snapshot: 20,
        ..RaftConfig::fast()
    };
    let node = RaftNode::open(
        dir,
        1,
        "local".into(),
        Kv::default(),
        config,
        NoPeers { from: 1 },
    )
    .await?;
    node.initialize_single().await?;
    Ok(node)
}

/// The child: proposes forever until killed. A no-op when run as a normal test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_child() -> Result<()> {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return Ok(());
    };
    let round = std::env::var(CHILD_ROUND)?;
    let node = Arc::new(open(Path::new(&dir)).await?);
    println!("READY");
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..4 {
        let node = node.clone();
        let round = round.clone();
        tasks.spawn(async move {
            for i in 0u64.. {
                let key = format!("r{round}-w{w}-{i}");
                node.propose(put(key.clone(), i)).await?;
                // println! takes stdout's lock and flushes at the newline.
                println!("ACK {key}");
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

fn ack(line: &str) -> Option<&str> {
    line.find("ACK ").map(|at| &line[at + 4..])
}

/// A small xorshift, seeded from the clock and printed so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill9() -> Result<()> {
    if std::env::var(CHILD_DIR).is_ok() {
        return Ok(());
    }
    let seed = std::env::var("KILL9_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("kill9 seed {seed} (rerun with KILL9_SEED={seed})");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    let mut acked: Vec<String> = Vec::new();

    for round in 0..5 {
        let kill_after = 1 + rng.below(400);
        let mut child = Command::new(&exe)
            .args(["--exact", "kill9_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut this_round = 0u64;
        let mut ready = false;
        for line in lines.by_ref() {
            let line = line?;
            // libtest prints "test kill9_child ... " without a newline before our first line.
            if line.ends_with("READY") {
                ready = true;
            } else if let Some(key) = ack(&line) {
                acked.push(key.to_string());
                this_round += 1;
                if this_round == kill_after {
                    child.kill()?; // SIGKILL
                    break;
                }
            }
        }
        anyhow::ensure!(ready, "round {round}: child never became ready");
        // Acknowledgements already written to the pipe before the kill count too.
        for line in lines {
            if let Some(key) = ack(&line?) {
                acked.push(key.to_string());
                this_round += 1;
            }
        }
        let status = child.wait()?;
        anyhow::ensure!(
            status.code().is_none(),
            "round {round}: child exited by itself: {status}"
        );
        println!("round {round}: killed after {this_round} acknowledged writes");
    }

    let node = open(dir.path()).await?;
    let missing: Vec<&String> = node
        .read(|kv| {
            acked
                .iter()
                .filter(|k| !kv.map.contains_key(*k))
                .collect::<Vec<_>>()
        })
        .await;
    let total = node.read(|kv| kv.map.len()).await;
    node.shutdown().await?;
    anyhow::ensure!(
        missing.is_empty(),
        "seed {seed}: {} of {} acknowledged writes lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    println!(
        "{} acknowledged writes all present ({total} keys in the state)",
        acked.len()
    );
    Ok(())
}
