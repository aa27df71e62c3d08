//! Scheduler tests: constraint parsing with Docker's errors, each filter, spread, and
//! the explanation of an unplaceable task, word for word. Here through the store and
//! the orchestrator; `filters` and `spread` on a plain view; `properties` with
//! proptest.

mod filters;
mod properties;
mod spread;

use super::constraint::{parse, parse_all, ConstraintError};
use super::{decisions_to_actions, schedule, Decision};
use crate::model::{
    NodeAvailability, NodeRole, NodeState, Placement, Platform, ResourceRequirements, Resources,
};
use crate::orchestrator::testkit::{node, service, Sim};
use crate::orchestrator::ClusterView;
use crate::state::TaskState;
use crate::store::{Object, StoreAction};

#[test]
fn constraint_parse_errors_are_dockers() {
    let err = |e: &str| parse(e).unwrap_err().to_string();
    assert_eq!(
        err("node.role=manager"),
        "constraint expected one operator from ==, !="
    );
    assert_eq!(err("no de==x"), "key 'no de' is invalid");
    assert_eq!(err("==x"), "key '' is invalid");
    assert_eq!(err("node.role==man<ager"), "value 'man<ager' is invalid");
    assert_eq!(err("node.role=="), "value '' is invalid");
    assert_eq!(
        parse_all(&["node.role==worker", "x"]).unwrap_err(),
        ConstraintError::NoOperator
    );
    let c = parse(" node.labels.Zone != East ").unwrap();
    assert_eq!(
        (c.raw_key.as_str(), c.value.as_str()),
        ("node.labels.Zone", "East")
    );
}

fn placed(sim: &mut Sim, constraints: &[&str]) -> Vec<Decision> {
    let mut svc = service("svc", "web", 1);
    svc.spec.task_template.placement = Some(Placement {
        constraints: constraints.iter().map(|c| c.to_string()).collect(),
        ..Placement::default()
    });
    sim.add_service(svc);
    sim.reconcile("svc");
    let d = schedule(&sim.store, sim.now);
    sim.apply(&[StoreAction::Remove(
        crate::store::ObjectKind::Service,
        "svc".into(),
    )]);
    let plan = crate::orchestrator::reconcile(&sim.store, "svc", sim.now);
    sim.apply(&plan.actions);
    d
}

fn node_of(d: &[Decision]) -> String {
    match &d[0] {
        Decision::Assign { node_id, .. } => node_id.clone(),
        Decision::NoSuitableNode { explanation, .. } => explanation.clone(),
    }
}

#[test]
fn constraints_select_nodes() {
    let mut sim = Sim::new();
    let mut a = node("a");
    a.spec.labels.insert("zone".into(), "east".into());
    a.description
        .engine
        .labels
        .insert("disk".into(), "ssd".into());
    let mut b = node("b");
    b.spec.role = Some(NodeRole::Manager);
    b.description.platform.os = "freebsd".into();
    b.description.platform.architecture = "arm64".into();
    sim.add_node(a);
    sim.add_node(b);
    let cases: &[(&[&str], &str)] = &[
        (&["node.labels.zone==east"], "a"),
        (&["node.labels.zone==EAST"], "a"),
        (&["node.labels.zone!=east"], "b"),
        (&["engine.labels.disk==ssd"], "a"),
        (&["node.role==manager"], "b"),
        (&["node.role!=manager"], "a"),
        (&["node.id==b"], "b"),
        (&["node.hostname==host-a"], "a"),
        (&["node.platform.os==freebsd"], "b"),
        (&["node.platform.arch==x86_64"], "a"),
        (&["node.ip==10.0.0.0/8", "node.id!=a"], "b"),
        (
            &["node.labels.zone==west"],
            "no suitable node (scheduling constraints not satisfied on 2 nodes)",
        ),
        (
            &["foo==bar"],
            "no suitable node (scheduling constraints not satisfied on 2 nodes)",
        ),
    ];
    for (constraints, want) in cases {
        assert_eq!(
            node_of(&placed(&mut sim, constraints)),
            *want,
            "{constraints:?}"
        );
    }
}

#[test]
fn spread_by_service_then_by_total() {
    let mut sim = Sim::new();
    for id in ["a", "b", "c"] {
        sim.add_node(node(id));
    }
    // Another service already has two tasks on a.
    sim.add_service(service("other", "other", 2));
    sim.reconcile("other");
    let other: Vec<String> = sim
        .store
        .tasks_of_service("other")
        .map(|t| t.id().to_string())
        .collect();
    for id in &other {
        sim.apply(&[StoreAction::AssignTask {
            id: id.clone(),
            node_id: "a".into(),
            status: crate::store::task_status(TaskState::Assigned, "x", sim.now),
        }]);
    }
    sim.add_service(service("svc", "web", 5));
    sim.reconcile("svc");
    let d = schedule(&sim.store, sim.now);
    let nodes: Vec<String> = d
        .iter()
        .map(|d| match d {
            Decision::Assign { node_id, .. } => node_id.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    // b and c first (fewest tasks overall), then a gets one, then b and c... by service count.
    assert_eq!(nodes, vec!["b", "c", "a", "b", "c"]);
    let actions = decisions_to_actions(&sim.store, &d, sim.now);
    sim.apply(&actions);
    assert!(sim
        .store
        .tasks_of_service("svc")
        .all(|t| t.status.state == TaskState::Assigned
            && t.status.message == "scheduler assigned task to node"));
}

#[test]
fn explanation_counts_each_node_against_its_first_failing_filter() {
    let mut sim = Sim::new();
    for id in ["a", "b", "c", "d", "e"] {
        let mut n = node(id);
        if id != "d" {
            n.spec.labels.insert("zone".into(), "west".into());
        }
        n.description.resources.memory_bytes = 1 << 30;
        sim.add_node(n);
    }
    let mut down = sim.store.node("e").unwrap().clone();
    down.status.state = Some(NodeState::Down);
    sim.apply(&[StoreAction::Update(Object::Node(Box::new(down)))]);
    let mut svc = service("svc", "web", 1);
    svc.spec.task_template.placement = Some(Placement {
        constraints: vec!["node.labels.zone!=west".into()],
        ..Placement::default()
    });
    svc.spec.task_template.resources = Some(ResourceRequirements {
        reservations: Some(Resources {
            memory_bytes: 2 << 30,
            ..Resources::default()
        }),
        ..ResourceRequirements::default()
    });
    sim.add_service(svc);
    sim.reconcile("svc");
    let d = schedule(&sim.store, sim.now);
    let want =
        "no suitable node (insufficient resources on 4 nodes; 1 node not available for new tasks)";
    assert_eq!(node_of(&d), want);
    // Written once into Status.Err; an unchanged pass writes nothing.
    let actions = decisions_to_actions(&sim.store, &d, sim.now);
    assert_eq!(actions.len(), 1);
    sim.apply(&actions);
    let t = sim.store.tasks_of_service("svc").next().unwrap().clone();
    assert_eq!(
        (t.status.state, t.status.err.as_str()),
        (TaskState::Pending, want)
    );
    assert!(decisions_to_actions(&sim.store, &schedule(&sim.store, sim.now), sim.now).is_empty());

    // Resources fit: constraints fail on 3 nodes (west), the drained/down ones are unavailable.
    let mut svc = sim.service("svc");
    svc.spec.task_template.resources = None;
    sim.apply(&[StoreAction::Update(Object::Node(Box::new({
        let mut n = sim.store.node("d").unwrap().clone();
        n.spec.availability = Some(NodeAvailability::Drain);
        n
    })))]);
    sim.apply(&[StoreAction::Update(Object::Service(Box::new(svc)))]);
    sim.reconcile("svc");
    let d = schedule(&sim.store, sim.now);
    let fresh = d.iter().find(
        |d| matches!(d, Decision::NoSuitableNode { task_id, .. } if task_id.as_str() != t.id()),
    );
    let Some(Decision::NoSuitableNode { explanation, .. }) = fresh else {
        panic!("{d:?}")
    };
    assert_eq!(
        explanation,
        "no suitable node (scheduling constraints not satisfied on 3 nodes; 2 nodes not available for new tasks)"
    );
}

#[test]
fn resources_max_replicas_and_platform() {
    let mut sim = Sim::new();
    sim.add_node(node("a")); // 4 CPUs
    let mut svc = service("svc", "web", 3);
    svc.spec.task_template.resources = Some(ResourceRequirements {
        reservations: Some(Resources {
            nano_cpus: 1_500_000_000,
            ..Resources::default()
        }),
        ..ResourceRequirements::default()
    });
    sim.add_service(svc);
    sim.reconcile("svc");
    let d = sim.schedule();
    assert_eq!(
        d.iter()
            .filter(|d| matches!(d, Decision::Assign { .. }))
            .count(),
        2
    );
    assert_eq!(
        node_of(&d[2..]),
        "no suitable node (insufficient resources on 1 node)"
    );

    let mut sim = Sim::new();
    sim.add_node(node("a"));
    sim.add_node(node("b"));
    let mut svc = service("svc", "web", 3);
    svc.spec.task_template.placement = Some(Placement {
        max_replicas: 1,
        ..Placement::default()
    });
    sim.add_service(svc);
    sim.reconcile("svc");
    let d = sim.schedule();
    assert_eq!(
        node_of(&d[2..]),
        "no suitable node (max replicas per node limit exceed)"
    );

    let mut sim = Sim::new();
    sim.add_node(node("a")); // linux/x86_64
    let mut svc = service("svc", "web", 2);
    svc.spec.task_template.placement = Some(Placement {
        platforms: vec![Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Platform::default()
        }],
        ..Placement::default()
    });
    sim.add_service(svc);
    sim.reconcile("svc");
    assert_eq!(node_of(&sim.schedule()), "a", "x86_64 is amd64");
    let mut svc = sim.service("svc");
    svc.spec.task_template.placement.as_mut().unwrap().platforms[0].architecture = "arm64".into();
    svc.spec.mode = crate::model::ServiceMode::replicated(3);
    sim.apply(&[StoreAction::Update(Object::Service(Box::new(svc)))]);
    sim.reconcile("svc");
    let d = sim.schedule();
    assert_eq!(
        node_of(&d),
        "no suitable node (unsupported platform on 1 node)"
    );
    assert!(sim.store.nodes().count() == ClusterView::nodes(&sim.store).len());
}
