//! Properties over random clusters, checked against a plain re-statement of each rule
//! (not the scheduler's own filters):
//! - no assignment breaks readiness, availability, a constraint, the platform, the
//!   resources left, the host-mode ports or max replicas, in the order decided;
//! - a task left unplaced fits no node once the pass is done (so when capacity allows,
//!   every task is placed);
//! - identical nodes get a service's tasks within one of each other, per node and per
//!   spread branch;
//! - the plan does not depend on the order of the view.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use crate::model::{
    NodeAvailability, NodeState, Placement, PlacementPreference, Platform, PortProtocol,
    SpreadOver, Task,
};
use crate::orchestrator::testkit::{node, t0};
use crate::scheduler::constraint::{node_matches, parse_all};
use crate::scheduler::fixture::{host_port, reserve, View};
use crate::scheduler::{schedule, Decision};
use crate::state::TaskState;

const CPU: i64 = 500_000_000;
const MEM: i64 = 1 << 30;
const CONSTRAINTS: &[&str] = &[
    "node.labels.zone==a",
    "node.labels.zone!=b",
    "node.platform.os==linux",
    "node.role!=manager",
];
const ARCHS: &[&str] = &["x86_64", "amd64", "arm64", "aarch64"];

#[derive(Debug, Clone)]
struct NodeGen {
    ready: bool,
    availability: u8,
    zone: Option<u8>,
    arch: usize,
    windows: bool,
    cpus: i64,
    mem: i64,
}

#[derive(Debug, Clone)]
struct ServiceGen {
    replicas: usize,
    constraint: Option<usize>,
    platform: Option<(usize, bool)>,
    cpus: i64,
    mem: i64,
    max_replicas: u64,
    port: Option<(u32, bool)>,
    spread: bool,
}

fn node_gen() -> impl Strategy<Value = NodeGen> {
    (
        prop::bool::weighted(0.85),
        prop::sample::select(vec![0u8, 0, 0, 1, 2]),
        prop::option::of(0u8..3),
        0..ARCHS.len(),
        prop::bool::weighted(0.2),
        0i64..=8,
        0i64..=8,
    )
        .prop_map(
            |(ready, availability, zone, arch, windows, cpus, mem)| NodeGen {
                ready,
                availability,
                zone,
                arch,
                windows,
                cpus,
                mem,
            },
        )
}

fn service_gen() -> impl Strategy<Value = ServiceGen> {
    (
        0usize..15,
        prop::option::of(0..CONSTRAINTS.len()),
        prop::option::weighted(0.3, (0..ARCHS.len(), any::<bool>())),
        prop::sample::select(vec![0i64, 0, 1, 2, 3]),
        prop::sample::select(vec![0i64, 0, 1, 2]),
        prop::sample::select(vec![0u64, 0, 1, 2, 3]),
        prop::option::weighted(0.3, (80u32..82, any::<bool>())),
        any::<bool>(),
    )
        .prop_map(
            |(replicas, constraint, platform, cpus, mem, max_replicas, port, spread)| ServiceGen {
                replicas,
                constraint,
                platform,
                cpus,
                mem,
                max_replicas,
                port,
                spread,
            },
        )
}

fn zone_spread() -> Vec<PlacementPreference> {
    vec![PlacementPreference {
        spread: Some(SpreadOver {
            spread_descriptor: "node.labels.zone".into(),
            ..SpreadOver::default()
        }),
        ..PlacementPreference::default()
    }]
}

/// Nodes `n0..`, services `s0..`; existing tasks first (service, node, state), then
/// each service's pending tasks.
fn build(nodes: &[NodeGen], services: &[ServiceGen], existing: &[(usize, usize, u8)]) -> View {
    let mut view = View::default();
    for (i, g) in nodes.iter().enumerate() {
        let mut n = node(&format!("n{i}"));
        if !g.ready {
            n.status.state = Some(NodeState::Down);
        }
        n.spec.availability = Some(
            [
                NodeAvailability::Active,
                NodeAvailability::Pause,
                NodeAvailability::Drain,
            ][g.availability as usize]
                .clone(),
        );
        if let Some(z) = g.zone {
            n.spec
                .labels
                .insert("zone".into(), ["a", "b", "c"][z as usize].into());
        }
        n.description.platform.architecture = ARCHS[g.arch].into();
        if g.windows {
            n.description.platform.os = "windows".into();
        }
        n.description.resources.nano_cpus = g.cpus * CPU;
        n.description.resources.memory_bytes = g.mem * MEM;
        view.nodes.push(n);
    }
    for (i, g) in services.iter().enumerate() {
        let s = view.add_service(&format!("s{i}"));
        let spec = &mut s.spec.task_template;
        spec.resources = reserve(g.cpus * CPU, g.mem * MEM);
        spec.placement = Some(Placement {
            constraints: g
                .constraint
                .map(|c| CONSTRAINTS[c].into())
                .into_iter()
                .collect(),
            preferences: if g.spread { zone_spread() } else { vec![] },
            max_replicas: g.max_replicas,
            platforms: g
                .platform
                .map(|(a, linux)| Platform {
                    architecture: ARCHS[a].into(),
                    os: if linux { "linux".into() } else { String::new() },
                    ..Platform::default()
                })
                .into_iter()
                .collect(),
            ..Placement::default()
        });
        if let Some((port, tcp)) = g.port {
            let proto = if tcp {
                PortProtocol::Tcp
            } else {
                PortProtocol::Udp
            };
            s.endpoint.ports = vec![host_port(port, proto)];
        }
    }
    for &(s, n, state) in existing {
        let (s, n) = (s % services.len(), n % nodes.len());
        let state = [TaskState::Assigned, TaskState::Running, TaskState::Failed][state as usize];
        view.add_on_node(&format!("s{s}"), &format!("n{n}"), state);
    }
    for (i, g) in services.iter().enumerate() {
        view.add_pending(&format!("s{i}"), g.replicas);
    }
    view
}

/// What the rules say a node holds, restated from the model.
#[derive(Debug, Clone, Default)]
struct Held {
    cpus: i64,
    mem: i64,
    ports: BTreeSet<(String, u32)>,
    of_service: BTreeMap<String, u64>,
}

fn task_ports(view: &View, t: &Task) -> Vec<(String, u32)> {
    view.services[&t.service_id]
        .endpoint
        .ports
        .iter()
        .map(|p| {
            (
                p.protocol_or_default().as_str().to_string(),
                p.published_port,
            )
        })
        .collect()
}

fn reservation(t: &Task) -> (i64, i64) {
    let r = t
        .spec
        .resources
        .as_ref()
        .and_then(|r| r.reservations.as_ref());
    r.map_or((0, 0), |r| (r.nano_cpus, r.memory_bytes))
}

fn arch(a: &str) -> &str {
    match a {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

/// Why node `n` may not take `t`, or `None` when it may.
fn refusal(view: &View, held: &BTreeMap<String, Held>, n: usize, t: &Task) -> Option<&'static str> {
    let node = &view.nodes[n];
    let h = held.get(node.id()).cloned().unwrap_or_default();
    let p = t.spec.placement.clone().unwrap_or_default();
    let (cpus, mem) = reservation(t);
    if node.status.state != Some(NodeState::Ready)
        || node.spec.availability != Some(NodeAvailability::Active)
    {
        return Some("ready");
    }
    if (cpus > 0 || mem > 0)
        && (node.description.resources.nano_cpus - h.cpus < cpus
            || node.description.resources.memory_bytes - h.mem < mem)
    {
        return Some("resources");
    }
    if !node_matches(&parse_all(&p.constraints).unwrap(), node) {
        return Some("constraints");
    }
    let on = &node.description.platform;
    if !p.platforms.is_empty()
        && !p.platforms.iter().any(|w| {
            (w.architecture.is_empty() || arch(&w.architecture) == arch(&on.architecture))
                && (w.os.is_empty() || w.os == on.os)
        })
    {
        return Some("platform");
    }
    if task_ports(view, t)
        .iter()
        .any(|port| h.ports.contains(port))
    {
        return Some("host port");
    }
    if p.max_replicas > 0 && h.of_service.get(&t.service_id).copied().unwrap_or(0) >= p.max_replicas
    {
        return Some("max replicas");
    }
    None
}

fn hold(view: &View, held: &mut BTreeMap<String, Held>, node_id: &str, t: &Task) {
    let h = held.entry(node_id.to_string()).or_default();
    let (cpus, mem) = reservation(t);
    h.cpus += cpus;
    h.mem += mem;
    h.ports.extend(task_ports(view, t));
    if t.desired_state <= TaskState::Complete {
        *h.of_service.entry(t.service_id.clone()).or_default() += 1;
    }
}

/// Replays the decisions in order against the rules; panics on the first breach.
fn check_rules(view: &View, decisions: &[Decision]) -> Result<(), TestCaseError> {
    let mut held: BTreeMap<String, Held> = BTreeMap::new();
    for t in &view.tasks {
        let holds = !t.node_id.is_empty()
            && t.status.state >= TaskState::Pending
            && t.status.state <= TaskState::Running;
        if holds {
            hold(view, &mut held, &t.node_id, t);
        }
    }
    let task = |id: &str| view.tasks.iter().find(|t| t.id() == id).unwrap();
    let node_index = |id: &str| view.nodes.iter().position(|n| n.id() == id).unwrap();
    let mut unplaced = Vec::new();
    for d in decisions {
        match d {
            Decision::Assign { task_id, node_id } => {
                let t = task(task_id);
                let why = refusal(view, &held, node_index(node_id), t);
                prop_assert_eq!(why, None, "{} on {}", task_id, node_id);
                hold(view, &mut held, node_id, t);
            }
            Decision::NoSuitableNode { task_id, .. } => unplaced.push(task(task_id)),
        }
    }
    for t in unplaced {
        for n in 0..view.nodes.len() {
            prop_assert!(
                refusal(view, &held, n, t).is_some(),
                "{} left unplaced but fits {}",
                t.id(),
                view.nodes[n].id()
            );
        }
    }
    let decided: BTreeSet<&str> = decisions
        .iter()
        .map(|d| match d {
            Decision::Assign { task_id, .. } | Decision::NoSuitableNode { task_id, .. } => {
                task_id.as_str()
            }
        })
        .collect();
    let pending = view.tasks.iter().filter(|t| t.node_id.is_empty()).count();
    prop_assert_eq!(decided.len(), pending, "one decision per pending task");
    prop_assert_eq!(decisions.len(), pending);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn no_decision_breaks_a_rule_and_no_task_is_left_that_fits(
        nodes in prop::collection::vec(node_gen(), 1..10),
        services in prop::collection::vec(service_gen(), 1..5),
        existing in prop::collection::vec((0usize..5, 0usize..10, 0u8..3), 0..12),
    ) {
        let view = build(&nodes, &services, &existing);
        let decisions = schedule(&view, t0());
        check_rules(&view, &decisions)?;

        let mut shuffled = view.clone();
        shuffled.nodes.reverse();
        shuffled.tasks.reverse();
        let n = shuffled.nodes.len();
        shuffled.nodes.rotate_left(n / 2);
        prop_assert_eq!(&schedule(&shuffled, t0()), &decisions, "order of the view");
    }

    #[test]
    fn identical_nodes_share_a_service_within_one(
        nodes in 1usize..20,
        replicas in 0usize..100,
        zones in prop::collection::vec(0u8..3, 20),
        spread in any::<bool>(),
    ) {
        let ids: Vec<String> = (0..nodes).map(|i| format!("n{i:02}")).collect();
        let mut view = View::with_nodes(&ids.iter().map(String::as_str).collect::<Vec<_>>());
        let zone_of: BTreeMap<String, u8> =
            ids.iter().cloned().zip(zones.iter().copied()).collect();
        for n in &mut view.nodes {
            n.spec.labels.insert("zone".into(), zone_of[n.id()].to_string());
        }
        if spread {
            view.add_service("web").spec.task_template.placement = Some(Placement {
                preferences: zone_spread(),
                ..Placement::default()
            });
        }
        view.add_service("web");
        view.add_pending("web", replicas);
        let by_node = view.decisions_by_node();
        prop_assert_eq!(by_node.values().sum::<usize>(), replicas, "all placed");
        let per_node: Vec<usize> = ids.iter().map(|n| by_node.get(n).copied().unwrap_or(0)).collect();
        if spread {
            // Even per zone; inside a zone, even per node.
            let mut per_zone: BTreeMap<u8, Vec<usize>> = BTreeMap::new();
            for (id, c) in ids.iter().zip(&per_node) {
                per_zone.entry(zone_of[id]).or_default().push(*c);
            }
            let sums: Vec<usize> = per_zone.values().map(|v| v.iter().sum()).collect();
            prop_assert!(sums.iter().max().unwrap() - sums.iter().min().unwrap() <= 1, "{:?}", per_zone);
            for v in per_zone.values() {
                prop_assert!(v.iter().max().unwrap() - v.iter().min().unwrap() <= 1, "{:?}", per_zone);
            }
        } else {
            prop_assert!(per_node.iter().max().unwrap() - per_node.iter().min().unwrap() <= 1, "{:?}", per_node);
        }
    }
}
