//! A deterministic simulation of a whole cluster over the real core: the store's
//! `apply`, `orchestrator::reconcile`, `scheduler::schedule` and
//! `decisions_to_actions`, with fake agents and a simulated clock.
//!
//! ```text
//! seed ──> Rng ──> cluster (nodes with labels) + services of every mode with random
//!                  restart / update / rollback policies
//!   faulty phase, `steps` times:
//!     one random op (scale, update, --force, rollback, node down/up, drain/activate,
//!     label change, join, remove, crash, unhealthy, leader change)
//!     ──> orchestrate ──> agents ──> check_step ──> clock to the next wake-up
//!   fault-free phase: every node back, no failures, time runs until nothing changes
//!     ──> check_converged
//! ```
//!
//! A failure names its seed; `SWARM_SIM_SEED=<seed> cargo test -p swarm-core sim::`
//! replays it (`SWARM_SIM_STEPS` sets the length of the faulty phase).

mod cluster;
mod invariants;
mod rng;

use std::time::Duration;

use chrono::{TimeZone, Utc};

use crate::model::{
    ContainerSpec, FailureAction, GlobalJob, Node, NodeAvailability, NodeRole, NodeSpec, NodeState,
    NodeStatus, OrchestrationConfig, Placement, Platform, ReplicatedJob, Resources,
    RestartCondition, RestartPolicy, Service, ServiceMode, ServiceSpec, Swarm, TaskSpec,
    UpdateConfig, UpdateOrder,
};
use crate::state::TaskState;
use crate::store::{Object, StoreAction};
use cluster::{Knobs, World};
use invariants::{check_converged, check_step, Seen};
use rng::Rng;

/// What one run did.
#[derive(Debug, Default)]
pub struct Report {
    pub steps: usize,
    pub settle_rounds: usize,
    pub tasks: usize,
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn nanos(d: Duration) -> i64 {
    d.as_nanos() as i64
}

fn make_node(id: &str, zone: &str) -> Node {
    let mut n = Node {
        spec: NodeSpec {
            role: Some(NodeRole::Worker),
            availability: Some(NodeAvailability::Active),
            ..NodeSpec::default()
        },
        status: NodeStatus {
            state: Some(NodeState::Ready),
            addr: "10.0.0.1".into(),
            ..NodeStatus::default()
        },
        ..Node::default()
    };
    n.meta.id = id.into();
    n.spec.labels.insert("zone".into(), zone.into());
    n.description.hostname = format!("host-{id}");
    n.description.platform = Platform {
        architecture: "x86_64".into(),
        os: "linux".into(),
        ..Platform::default()
    };
    n.description.resources = Resources {
        nano_cpus: 4_000_000_000,
        memory_bytes: 8 << 30,
        ..Resources::default()
    };
    n
}

const ZONES: [&str; 3] = ["a", "b", "c"];

fn update_config(rng: &mut Rng) -> UpdateConfig {
    UpdateConfig {
        parallelism: rng.below(3),
        delay: nanos(secs(rng.below(3))),
        failure_action: rng
            .pick(&[
                FailureAction::Pause,
                FailureAction::Continue,
                FailureAction::Rollback,
            ])
            .cloned(),
        monitor: nanos(secs(1 + rng.below(3))),
        max_failure_ratio: *rng.pick(&[0.0, 0.5]).expect("non-empty"),
        order: rng
            .pick(&[UpdateOrder::StopFirst, UpdateOrder::StartFirst])
            .cloned(),
        ..UpdateConfig::default()
    }
}

fn make_service(rng: &mut Rng, id: &str, mode: ServiceMode, job: bool) -> Service {
    let constraint = if rng.chance(50) {
        vec![format!(
            "node.labels.zone!={}",
            rng.pick(&ZONES[1..]).expect("zone")
        )]
    } else {
        vec![]
    };
    let restart = RestartPolicy {
        condition: Some(if job || rng.chance(50) {
            RestartCondition::OnFailure
        } else {
            RestartCondition::Any
        }),
        delay: Some(nanos(secs(rng.below(3)))),
        // Services retry for ever (so they must converge); jobs may give up.
        max_attempts: Some(if job {
            *rng.pick(&[0, 3]).expect("n")
        } else {
            0
        }),
        ..RestartPolicy::default()
    };
    let mut s = Service {
        spec: ServiceSpec {
            name: id.into(),
            task_template: TaskSpec {
                container_spec: Some(ContainerSpec {
                    image: "busybox:1".into(),
                    ..ContainerSpec::default()
                }),
                placement: Some(Placement {
                    constraints: constraint,
                    ..Placement::default()
                }),
                restart_policy: Some(restart),
                ..TaskSpec::default()
            },
            mode,
            update_config: Some(update_config(rng)),
            rollback_config: Some(update_config(rng)),
            ..ServiceSpec::default()
        },
        ..Service::default()
    };
    s.meta.id = id.into();
    s.spec_version = Some(crate::model::Version::new(1));
    s
}

/// The cluster a seed starts from: 3 to 5 nodes (n1 in zone a, so every service has
/// somewhere to run), one service of each mode.
fn setup(rng: &mut Rng) -> Result<World, String> {
    let mut w = World::new(Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap());
    let mut swarm = Swarm::default();
    swarm.cluster.meta.id = "cluster".into();
    swarm.cluster.spec.orchestration = OrchestrationConfig {
        task_history_retention_limit: Some(*rng.pick(&[2, 5]).expect("n")),
        ..OrchestrationConfig::default()
    };
    w.apply(vec![StoreAction::Create(Object::Cluster(Box::new(swarm)))])?;
    let nodes = 3 + rng.below(3);
    for i in 1..=nodes {
        let zone = if i == 1 {
            "a"
        } else {
            rng.pick(&ZONES).expect("zone")
        };
        w.apply(vec![StoreAction::Create(Object::Node(Box::new(
            make_node(&format!("n{i}"), zone),
        )))])?;
    }
    let replicas = 1 + rng.below(4);
    let max = 1 + rng.below(3);
    let total = 1 + rng.below(6);
    let services = [
        make_service(rng, "rep", ServiceMode::replicated(replicas), false),
        make_service(rng, "glob", ServiceMode::global(), false),
        make_service(
            rng,
            "rjob",
            ServiceMode {
                replicated_job: Some(ReplicatedJob {
                    max_concurrent: Some(max),
                    total_completions: Some(total),
                    ..ReplicatedJob::default()
                }),
                ..ServiceMode::default()
            },
            true,
        ),
        make_service(
            rng,
            "gjob",
            ServiceMode {
                global_job: Some(GlobalJob::default()),
                ..ServiceMode::default()
            },
            true,
        ),
    ];
    for s in services {
        w.apply(vec![StoreAction::Create(Object::Service(Box::new(s)))])?;
    }
    Ok(w)
}

fn node_ids(w: &World) -> Vec<String> {
    let mut ids: Vec<String> = w.store.nodes().map(|n| n.id().to_string()).collect();
    ids.sort();
    ids
}

fn change_node(w: &mut World, id: &str, change: impl FnOnce(&mut Node)) -> Result<(), String> {
    let mut n = w.node(id);
    let before = n.clone();
    change(&mut n);
    if n != before {
        w.update(Object::Node(Box::new(n)))?;
    }
    Ok(())
}

/// One random fault or user action. Returns its description (for the failure trace).
fn random_op(w: &mut World, rng: &mut Rng, image: &mut u64) -> Result<(World, String), String> {
    let nodes = node_ids(w);
    let node = rng.pick(&nodes).cloned().unwrap_or_default();
    let service = rng
        .pick(&["rep", "glob", "rjob", "gjob"])
        .expect("s")
        .to_string();
    let what = match rng.below(15) {
        0 => {
            let n = rng.below(6);
            let mut s = w.service("rep");
            s.spec.mode = ServiceMode::replicated(n);
            w.update(Object::Service(Box::new(s)))?;
            format!("scale rep={n}")
        }
        1 | 2 => {
            let target = if rng.chance(50) { "rep" } else { "glob" };
            *image += 1;
            let img = format!("busybox:{image}");
            w.update_service(target, |spec| {
                if let Some(c) = spec.task_template.container_spec.as_mut() {
                    c.image = img.clone();
                }
            })?;
            format!("update {target} image={img}")
        }
        3 => {
            w.update_service(&service, |spec| spec.task_template.force_update += 1)?;
            format!("update --force {service}")
        }
        4 => {
            let target = if rng.chance(50) { "rep" } else { "glob" };
            w.rollback_service(target)?;
            format!("rollback {target}")
        }
        5 => {
            change_node(w, &node, |n| n.status.state = Some(NodeState::Down))?;
            format!("node {node} down")
        }
        6 => {
            change_node(w, &node, |n| n.status.state = Some(NodeState::Ready))?;
            format!("node {node} up")
        }
        7 => {
            change_node(w, &node, |n| {
                n.spec.availability = Some(NodeAvailability::Drain)
            })?;
            format!("drain {node}")
        }
        8 => {
            change_node(w, &node, |n| {
                n.spec.availability = Some(NodeAvailability::Active)
            })?;
            format!("activate {node}")
        }
        9 => {
            let zone = rng.pick(&ZONES).expect("zone").to_string();
            if node != "n1" {
                change_node(w, &node, |n| {
                    n.spec.labels.insert("zone".into(), zone.clone());
                })?;
            }
            format!("label {node} zone={zone}")
        }
        10 => {
            let id = format!("n{}", w.index + 100);
            let zone = rng.pick(&ZONES).expect("zone");
            w.apply(vec![StoreAction::Create(Object::Node(Box::new(
                make_node(&id, zone),
            )))])?;
            format!("join {id} zone={zone}")
        }
        11 => {
            // Docker removes only a Down node (or with --force); n1 stays.
            let down = w.node(&node).status.state == Some(NodeState::Down);
            if node != "n1" && down {
                w.remove_node(&node)?;
            }
            format!("node rm {node}")
        }
        12 | 13 => {
            let msg = if rng.chance(50) {
                "task: non-zero exit (137)"
            } else {
                "task: unhealthy container"
            };
            let mut running: Vec<String> = w
                .store
                .tasks()
                .filter(|t| t.status.state == TaskState::Running)
                .map(|t| t.id().to_string())
                .collect();
            running.sort();
            match rng.pick(&running).cloned() {
                Some(id) => {
                    w.fail_task(&id, msg)?;
                    format!("fail {id}: {msg}")
                }
                None => "fail: nothing running".into(),
            }
        }
        _ => {
            let next = w.leader_change();
            return Ok((next, "leader change".into()));
        }
    };
    let next = World {
        store: std::mem::take(&mut w.store),
        index: w.index,
        now: w.now,
        wake: w.wake,
    };
    Ok((next, what))
}

/// Moves the clock: to the orchestrator's wake-up if it comes first, else by `max`.
fn tick(w: &mut World, max: Duration) {
    let mut next = w.now + chrono::Duration::from_std(max).expect("duration");
    if let Some(wake) = w.wake {
        if wake > w.now && wake < next {
            next = wake;
        }
    }
    w.now = next;
}

/// Runs one seed: `steps` steps with faults, then settles without them.
pub fn run(seed: u64, steps: usize) -> Result<Report, String> {
    let mut rng = Rng::new(seed);
    let mut w = setup(&mut rng)?;
    let mut seen = Seen::default();
    let mut image = 1;
    let mut trace: Vec<String> = Vec::new();
    let faulty = Knobs {
        job_run_for: secs(1 + rng.below(3)),
        job_failure_percent: 20,
    };
    let fail = |step: usize, trace: &[String], e: String| {
        let last: Vec<&String> = trace.iter().rev().take(8).rev().collect();
        format!("seed {seed}, step {step}: {e}\n  last ops: {last:?}")
    };
    for step in 0..steps {
        if rng.chance(60) {
            let (next, what) =
                random_op(&mut w, &mut rng, &mut image).map_err(|e| fail(step, &trace, e))?;
            w = next;
            trace.push(format!("{step}: {what}"));
        }
        w.orchestrate().map_err(|e| fail(step, &trace, e))?;
        w.agents(faulty, &mut rng)
            .map_err(|e| fail(step, &trace, e))?;
        check_step(&w, &mut seen).map_err(|e| fail(step, &trace, e))?;
        let ms = rng.below(1500);
        tick(&mut w, Duration::from_millis(ms));
    }

    // Fault-free: every node back and active, no job fails; run until nothing changes.
    for id in node_ids(&w) {
        change_node(&mut w, &id, |n| {
            n.status.state = Some(NodeState::Ready);
            n.spec.availability = Some(NodeAvailability::Active);
        })
        .map_err(|e| fail(steps, &trace, e))?;
    }
    let calm = Knobs {
        job_failure_percent: 0,
        ..faulty
    };
    let mut quiet = 0;
    let mut rounds = 0;
    while quiet < 3 && rounds < 600 {
        rounds += 1;
        let wrote = w
            .orchestrate()
            .map_err(|e| fail(steps + rounds, &trace, e))?
            | w.agents(calm, &mut rng)
                .map_err(|e| fail(steps + rounds, &trace, e))?;
        check_step(&w, &mut seen).map_err(|e| fail(steps + rounds, &trace, e))?;
        let running_jobs = w.store.tasks().any(|t| {
            t.status.state == TaskState::Running
                && t.job_iteration.is_some()
                && t.desired_state == TaskState::Running
        });
        quiet = if wrote || w.wake.is_some() || running_jobs {
            0
        } else {
            quiet + 1
        };
        tick(&mut w, secs(1));
    }
    check_converged(&w).map_err(|e| {
        fail(
            steps + rounds,
            &trace,
            format!("not converged after {rounds} rounds: {e}"),
        )
    })?;
    Ok(Report {
        steps,
        settle_rounds: rounds,
        tasks: w.store.tasks().count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<u64> {
        std::env::var(name).ok().and_then(|v| v.parse().ok())
    }

    fn run_seed(seed: u64, steps: usize) {
        match run(seed, steps) {
            Ok(r) => eprintln!(
                "sim seed {seed}: {} steps, settled in {} rounds, {} tasks",
                r.steps, r.settle_rounds, r.tasks
            ),
            Err(e) => panic!("simulation failed: {e}\n  replay: SWARM_SIM_SEED={seed} cargo test -p swarm-core sim::"),
        }
    }

    /// A fixed set of seeds, every run; or only `SWARM_SIM_SEED` when set.
    #[test]
    fn fixed_seeds_hold_invariants_and_converge() {
        let steps = env("SWARM_SIM_STEPS").map_or(150, |s| s as usize);
        if let Some(seed) = env("SWARM_SIM_SEED") {
            run_seed(seed, steps);
            return;
        }
        for seed in 1..=16 {
            run_seed(seed, steps);
        }
    }

    /// A new seed each run (printed, so a failure replays).
    #[test]
    fn a_random_seed_holds_invariants_and_converges() {
        if env("SWARM_SIM_SEED").is_some() {
            return;
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        eprintln!("sim random seed: {seed}");
        run_seed(seed, 150);
    }
}
