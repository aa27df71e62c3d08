//! How long a scheduling pass takes on a large cluster. Ignored by default; run with
//! `cargo test -p swarm-core --release -- --ignored sched_scale --nocapture`.

use std::time::Instant;

use super::fixture::{reserve, View};
use super::{decisions_to_actions, schedule, Decision};
use crate::model::{Placement, PlacementPreference, SpreadOver};
use crate::orchestrator::testkit::{node, t0};

/// `services` services of `replicas` pending tasks each, on `nodes` empty nodes; with
/// `zones` > 0, nodes carry `zone` labels and services spread over them.
fn measure(nodes: usize, services: usize, replicas: usize, zones: usize) {
    let built = Instant::now();
    let mut view = View::default();
    for i in 0..nodes {
        let mut n = node(&format!("node-{i:05}"));
        n.description.resources.nano_cpus = 1_000_000_000_000;
        n.description.resources.memory_bytes = 1 << 50;
        if zones > 0 {
            n.spec
                .labels
                .insert("zone".into(), format!("z{}", i % zones));
        }
        view.nodes.push(n);
    }
    view.tasks.reserve(services * replicas);
    for s in 0..services {
        let id = format!("svc-{s:05}");
        let spec = &mut view.add_service(&id).spec.task_template;
        spec.resources = reserve(1_000_000, 1 << 20);
        if zones > 0 {
            spec.placement = Some(Placement {
                preferences: vec![PlacementPreference {
                    spread: Some(SpreadOver {
                        spread_descriptor: "node.labels.zone".into(),
                        ..SpreadOver::default()
                    }),
                    ..PlacementPreference::default()
                }],
                ..Placement::default()
            });
        }
        view.add_pending(&id, replicas);
    }
    let built = built.elapsed();

    let start = Instant::now();
    let decisions = schedule(&view, t0());
    let scheduled = start.elapsed();
    let start = Instant::now();
    let actions = decisions_to_actions(&view, &decisions, t0());
    let converted = start.elapsed();

    let assigned = decisions
        .iter()
        .filter(|d| matches!(d, Decision::Assign { .. }))
        .count();
    assert_eq!(assigned, services * replicas);
    assert_eq!(actions.len(), services * replicas);
    let by_node = view.decisions_by_node();
    let (min, max) = (by_node.values().min(), by_node.values().max());
    println!(
        "sched_scale: {} tasks ({services} services x {replicas}, {zones} zones) on {nodes} nodes: \
         schedule {:.3} s, decisions_to_actions {:.3} s (fixture {:.1} s); \
         tasks per node {min:?}..={max:?}",
        services * replicas,
        scheduled.as_secs_f64(),
        converted.as_secs_f64(),
        built.as_secs_f64(),
    );
    assert!(max.unwrap() - min.unwrap() <= 1, "spread evenly");
}

#[test]
fn sched_scale_small() {
    measure(50, 4, 100, 0);
    measure(48, 4, 96, 3);
}

#[test]
#[ignore]
fn sched_scale_100k_tasks_1k_nodes() {
    measure(1_000, 100, 1_000, 0);
}

#[test]
#[ignore]
fn sched_scale_1m_tasks_10k_nodes() {
    measure(10_000, 1_000, 1_000, 0);
}

#[test]
#[ignore]
fn sched_scale_1m_tasks_10k_nodes_one_service() {
    measure(10_000, 1, 1_000_000, 0);
}

#[test]
#[ignore]
fn sched_scale_1m_tasks_10k_nodes_spread_over_10_zones() {
    measure(10_000, 1_000, 1_000, 10);
}

/// The costly shape: many small groups, each looking at every node once.
#[test]
#[ignore]
fn sched_scale_1m_tasks_10k_nodes_10k_services() {
    measure(10_000, 10_000, 100, 0);
}
