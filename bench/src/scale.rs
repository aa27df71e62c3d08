//! `swarm-bench scale`: placement through the real manager path, in one process.
//!
//! Three Raft managers (swarm-raft over its in-process router, logs and snapshots on disk
//! in temp dirs, sealed with a data key) replicate swarmd's state machine
//! (`swarm_node::manager::store::StoreMachine`). The leader does what swarmd's leader loop
//! does: `reconcile` every service, propose the plans, `schedule` +
//! `decisions_to_actions`, propose; fake agents report every assigned task RUNNING
//! (`SetTaskStatus`), proposed too. Entries as swarmd makes them, with its own functions
//! (`propose_each`, `entries_of`): one per service's plan, the scheduler's assignments
//! (and the agents' reports) in entries of up to `ENTRY_ACTIONS`, `IN_FLIGHT` at once.
//!
//! Printed: wall time until every task is assigned and until every task is running,
//! tasks committed per second (creation + assignment + running report each commit), p99
//! of (assignment commit - creation commit) per task, this process's RSS (three managers).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use serde_json::json;
use swarm_core::model::{Node, Service};
use swarm_core::orchestrator::reconcile;
use swarm_core::scheduler::{decisions_to_actions, schedule};
use swarm_core::store::{task_status, Object, StoreAction};
use swarm_core::TaskState;
use swarm_node::manager::store::{
    entries_of, propose_each, Batch, StoreMachine, ENTRY_ACTIONS, IN_FLIGHT,
};
use swarm_raft::network::Router;
use swarm_raft::{DataKey, RaftConfig, RaftNode, StateMachine};

const REPLICAS_PER_SERVICE: usize = 1000;

type Raft = RaftNode<StoreMachine>;

/// One entry, as swarmd's `Store::propose` makes it.
async fn propose_one(leader: &Raft, actions: Vec<StoreAction>) -> Result<()> {
    let batch = Batch {
        now: Utc::now(),
        actions,
    };
    leader
        .propose(batch)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// Each of `entries` as its own entry, as swarmd's leader loop proposes them.
async fn propose(leader: &Raft, entries: Vec<Vec<StoreAction>>) -> Result<()> {
    propose_each(entries, |actions| propose_one(leader, actions))
        .await
        .into_iter()
        .collect()
}

pub fn run(nodes: usize, tasks: usize) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run_async(nodes, tasks))
}

async fn run_async(nodes: usize, tasks: usize) -> Result<()> {
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir())
        .collect::<std::io::Result<_>>()?;
    let router = Router::<StoreMachine>::new();
    let mut rafts = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let id = i as u64 + 1;
        let config = RaftConfig {
            data_key: Some(DataKey::new([7; 32])),
            ..RaftConfig::default()
        };
        let node = RaftNode::open(
            dir.path(),
            id,
            format!("m{id}"),
            StoreMachine::default(),
            config,
            router.network(id),
        )
        .await?;
        router.register(id, node.raft().clone());
        rafts.push(node);
    }
    let members: BTreeMap<u64, String> = (1..=3).map(|i| (i, format!("m{i}"))).collect();
    rafts[0].initialize(members).await?;
    rafts[0]
        .wait_metrics(Duration::from_secs(10), "a leader", |m| {
            m.current_leader.is_some()
        })
        .await?;
    let leader_id = rafts[0].leader().context("leader")?;
    let leader = &rafts[(leader_id - 1) as usize];

    // The cluster: Ready, active nodes with room for every task.
    let node_actions: Vec<StoreAction> = (0..nodes)
        .map(|i| {
            let n: Node = serde_json::from_value(json!({
                "ID": format!("node{i:06}"),
                "Spec": {"Role": "worker", "Availability": "active"},
                "Description": {"Hostname": format!("h{i}"),
                    "Platform": {"Architecture": "x86_64", "OS": "linux"},
                    "Resources": {"NanoCPUs": 64_000_000_000i64, "MemoryBytes": 274_877_906_944i64}},
                "Status": {"State": "ready", "Addr": "10.0.0.1"}
            }))
            .expect("node json");
            StoreAction::Create(Object::Node(Box::new(n)))
        })
        .collect();
    propose(leader, entries_of(node_actions)).await?;

    let services = tasks.div_ceil(REPLICAS_PER_SERVICE);
    let start = Instant::now();
    let service_actions: Vec<StoreAction> = (0..services)
        .map(|i| {
            let replicas = REPLICAS_PER_SERVICE.min(tasks - i * REPLICAS_PER_SERVICE);
            let s: Service = serde_json::from_value(json!({
                "ID": format!("svc{i:05}"),
                "Spec": {"Name": format!("s{i}"),
                    "TaskTemplate": {"ContainerSpec": {"Image": "busybox:1", "Args": ["sleep", "1d"]}},
                    "Mode": {"Replicated": {"Replicas": replicas}}}
            }))
            .expect("service json");
            StoreAction::Create(Object::Service(Box::new(s)))
        })
        .collect();
    propose(leader, entries_of(service_actions)).await?;

    let mut created: HashMap<String, Instant> = HashMap::with_capacity(tasks);
    let mut waits: Vec<Duration> = Vec::with_capacity(tasks);
    let (mut t_reconcile, mut t_schedule, mut t_propose) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut all_assigned = None;
    let mut committed = 0usize;
    loop {
        let now = Utc::now();
        let t = Instant::now();
        let plans: Vec<Vec<StoreAction>> = leader
            .read(|sm| {
                (0..services)
                    .map(|i| reconcile(&sm.0, &format!("svc{i:05}"), now).actions)
                    .collect()
            })
            .await;
        t_reconcile += t.elapsed();
        let new: Vec<String> = plans
            .iter()
            .flatten()
            .filter_map(|a| match a {
                StoreAction::Create(Object::Task(t)) => Some(t.meta.id.clone()),
                _ => None,
            })
            .collect();
        let t = Instant::now();
        committed += plans.iter().map(Vec::len).sum::<usize>();
        propose(leader, plans).await?;
        t_propose += t.elapsed();
        let at = Instant::now();
        for id in new {
            created.insert(id, at);
        }

        let now = Utc::now();
        let t = Instant::now();
        let decided = leader
            .read(|sm| decisions_to_actions(&sm.0, &schedule(&sm.0, now), now))
            .await;
        t_schedule += t.elapsed();
        let assigned: Vec<String> = decided
            .iter()
            .filter_map(|a| match a {
                StoreAction::AssignTask { id, .. } => Some(id.clone()),
                _ => None,
            })
            .collect();
        let t = Instant::now();
        committed += decided.len();
        propose(leader, entries_of(decided)).await?;
        t_propose += t.elapsed();
        let at = Instant::now();
        for id in &assigned {
            if let Some(c) = created.get(id) {
                waits.push(at - *c);
            }
        }
        if waits.len() >= tasks && all_assigned.is_none() {
            all_assigned = Some(start.elapsed());
        }

        // Fake agents: every assigned task reports RUNNING.
        let now = Utc::now();
        let reports: Vec<StoreAction> = leader
            .read(|sm| {
                sm.0.tasks()
                    .filter(|t| t.status.state == TaskState::Assigned)
                    .map(|t| StoreAction::SetTaskStatus {
                        id: t.meta.id.clone(),
                        status: task_status(TaskState::Running, "started", now),
                    })
                    .collect()
            })
            .await;
        let t = Instant::now();
        committed += reports.len();
        propose(leader, entries_of(reports)).await?;
        t_propose += t.elapsed();
        let running = leader
            .read(|sm| {
                sm.0.tasks()
                    .filter(|t| t.status.state == TaskState::Running)
                    .count()
            })
            .await;
        if running >= tasks {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("not converged after 600 s: {running} of {tasks} running");
        }
    }
    let total = start.elapsed();
    waits.sort();
    let p99 = waits
        .get(waits.len().saturating_sub(1) * 99 / 100)
        .copied()
        .unwrap_or_default();
    println!(
        "scale: {tasks} tasks ({services} services x {REPLICAS_PER_SERVICE}) on {nodes} nodes, 3 managers in one process (raft on disk, sealed), an entry per service plan, assignments in entries of up to {ENTRY_ACTIONS} actions, {IN_FLIGHT} entries in flight\n"
    );
    println!(
        "all assigned {:>8.2} s   all running {:>8.2} s   (goal for 1M/10k: < 60 s)",
        all_assigned.unwrap_or(total).as_secs_f64(),
        total.as_secs_f64()
    );
    println!(
        "tasks placed per second {:>10.0}   store actions committed per second {:>10.0}   (Nomad C1M: 3,750/s)",
        tasks as f64 / all_assigned.unwrap_or(total).as_secs_f64(),
        committed as f64 / total.as_secs_f64()
    );
    println!(
        "p99 creation -> assignment commit {:>8.0} ms",
        p99.as_secs_f64() * 1000.0
    );
    println!(
        "time in: reconcile {:.2} s, schedule {:.2} s, propose/commit/apply {:.2} s",
        t_reconcile.as_secs_f64(),
        t_schedule.as_secs_f64(),
        t_propose.as_secs_f64()
    );
    let pid = std::process::id();
    let (rss, peak) = (
        crate::util::rss_kib(pid) as f64 / 1024.0,
        crate::util::peak_rss_kib(pid) as f64 / 1024.0,
    );
    println!(
        "RSS of this process (3 managers' stores and logs, and this driver): {rss:.0} MiB at the end, {peak:.0} MiB at the peak; a third of the peak: {:.0} MiB   (goal: manager < 2 GB)",
        peak / 3.0
    );

    // Not part of the placement figures above: what one snapshot of this store costs (the
    // default policy builds one every 10,000 entries; this run made fewer).
    let applied = leader.applied_index();
    let t = Instant::now();
    leader
        .raft()
        .trigger()
        .snapshot()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    leader
        .wait_metrics(Duration::from_secs(600), "a snapshot", |m| {
            m.snapshot.is_some_and(|s| s.index >= applied)
        })
        .await?;
    let took = t.elapsed();
    let snapshot_bytes: u64 = std::fs::metadata(
        dirs[(leader_id - 1) as usize]
            .path()
            .join(swarm_raft::storage::SNAPSHOT_FILE),
    )
    .map(|m| m.len())
    .unwrap_or(0);
    println!(
        "then one snapshot on the leader: {:.2} s, {:.0} MiB on disk (JSON, LZ4, sealed); peak RSS since the start {:.0} MiB",
        took.as_secs_f64(),
        snapshot_bytes as f64 / (1 << 20) as f64,
        crate::util::peak_rss_kib(pid) as f64 / 1024.0
    );

    under_load(leader, services).await?;

    // What a restarting manager (or one sent this snapshot) does with it.
    let data = leader.read(|sm| sm.snapshot()).await;
    let t = Instant::now();
    let mut restored = StoreMachine::default();
    restored
        .restore(&data)
        .map_err(|e| anyhow::anyhow!("restore: {e}"))?;
    println!(
        "restoring a store from it: {:.2} s ({} tasks)",
        t.elapsed().as_secs_f64(),
        restored.0.tasks().count()
    );
    Ok(())
}

/// A second snapshot on the leader, this time with clients: one task reads the service
/// list (what `service ls` reads) back to back, another proposes one small entry after
/// another, both until the snapshot is on disk. Printed: how long each read and each
/// commit took meanwhile (issue 15 item 7: reads and writes never wait for a snapshot).
async fn under_load(leader: &Raft, services: usize) -> Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    // One entry past the first snapshot, so this one has something new to cover.
    propose_one(leader, vec![probe_service(usize::MAX)]).await?;
    let applied = leader.applied_index();
    let done = Arc::new(AtomicBool::new(false));
    let t = Instant::now();
    leader
        .raft()
        .trigger()
        .snapshot()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let reads = async {
        let mut took = Vec::new();
        while !done.load(Ordering::Relaxed) {
            let t = Instant::now();
            let names = leader
                .read(|sm| {
                    sm.0.services()
                        .map(|s| s.spec.name.clone())
                        .collect::<Vec<_>>()
                })
                .await;
            took.push(t.elapsed());
            assert!(names.len() >= services);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        took
    };
    let writes = async {
        let mut took = Vec::new();
        let mut i = 0usize;
        while !done.load(Ordering::Relaxed) {
            let t = Instant::now();
            propose_one(leader, vec![probe_service(i)]).await?;
            took.push(t.elapsed());
            i += 1;
        }
        Ok::<_, anyhow::Error>(took)
    };
    let snapshot = async {
        let res = leader
            .wait_metrics(Duration::from_secs(600), "a snapshot", |m| {
                m.snapshot.is_some_and(|s| s.index >= applied)
            })
            .await;
        done.store(true, Ordering::Relaxed);
        res
    };
    // Each on its own thread, so a read that blocks holds up neither the writer nor the
    // wait for the snapshot.
    let rt = tokio::runtime::Handle::current();
    let (mut reads, writes, snapshot) = tokio::task::block_in_place(|| {
        std::thread::scope(|s| {
            let reads = s.spawn(|| rt.block_on(reads));
            let writes = s.spawn(|| rt.block_on(writes));
            let snapshot = rt.block_on(snapshot);
            let reads = reads.join().expect("the reader does not panic");
            let writes = writes.join().expect("the writer does not panic");
            (reads, writes, snapshot)
        })
    });
    snapshot?;
    let took = t.elapsed();
    let mut writes = writes?;
    reads.sort();
    writes.sort();
    let pct = |v: &[Duration], p: usize| {
        v.get(v.len().saturating_sub(1) * p / 100)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    println!(
        "a snapshot with clients: {:.2} s; meanwhile {} service-list reads (p50 {:.2} ms, max {:.2} ms) and {} commits (p50 {:.2} ms, max {:.2} ms)",
        took.as_secs_f64(),
        reads.len(),
        pct(&reads, 50),
        pct(&reads, 100),
        writes.len(),
        pct(&writes, 50),
        pct(&writes, 100),
    );
    Ok(())
}

/// A service of no replicas: a small entry for [`under_load`]'s writer.
fn probe_service(i: usize) -> StoreAction {
    let s: Service = serde_json::from_value(json!({
        "ID": format!("probe{i:06}"),
        "Spec": {"Name": format!("probe{i}"),
            "TaskTemplate": {"ContainerSpec": {"Image": "busybox:1"}},
            "Mode": {"Replicated": {"Replicas": 0}}}
    }))
    .expect("service json");
    StoreAction::Create(Object::Service(Box::new(s)))
}
