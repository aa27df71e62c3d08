//! Exact-plan tests for global services: one task per eligible node, following joins,
//! leaves, drains and label changes.

use super::testkit::{global_service, node, secs, Sim};
use crate::model::{NodeAvailability, NodeState, Placement, UpdateConfig, UpdateState};
use crate::state::TaskState::{self, *};
use crate::store::{Object, StoreAction};

fn sim(nodes: usize) -> Sim {
    let mut s = Sim::new();
    for i in 1..=nodes {
        s.add_node(node(&format!("n{i}")));
    }
    s
}

/// `(node, desired, observed)` of every task created by the plan.
fn created(plan: &super::Plan) -> Vec<(String, TaskState, TaskState, String)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            StoreAction::Create(Object::Task(t)) => Some((
                t.node_id.clone(),
                t.desired_state,
                t.status.state,
                t.name.clone(),
            )),
            _ => None,
        })
        .collect()
}

fn desired(id: &str, state: TaskState) -> StoreAction {
    StoreAction::SetTaskDesiredState {
        id: id.into(),
        desired_state: state,
    }
}

/// `(node, desired, observed)` of every task of the service.
fn table(s: &Sim) -> Vec<(String, TaskState, TaskState)> {
    let mut v: Vec<_> = s
        .tasks("g")
        .iter()
        .map(|t| (t.node_id.clone(), t.desired_state, t.status.state))
        .collect();
    v.sort();
    v
}

fn task_on(s: &Sim, node: &str) -> String {
    s.tasks("g")
        .iter()
        .find(|t| t.node_id == node && t.desired_state == Running)
        .map(|t| t.id().to_string())
        .expect("a running task on the node")
}

#[test]
fn one_task_per_eligible_node_made_on_it_and_confirmed_by_the_scheduler() {
    let mut s = sim(4);
    s.change_node("n2", |n| {
        n.spec.availability = Some(NodeAvailability::Drain)
    });
    s.change_node("n3", |n| {
        n.spec.labels.insert("zone".into(), "b".into());
    });
    s.change_node("n4", |n| n.status.state = Some(NodeState::Down));
    let mut svc = global_service("g", "agent");
    svc.spec.task_template.placement = Some(Placement {
        constraints: vec!["node.labels.zone!=b".into()],
        ..Placement::default()
    });
    s.add_service(svc);
    let plan = s.reconcile("g");
    assert_eq!(
        created(&plan),
        vec![("n1".into(), Running, Pending, "agent.n1".into())]
    );
    let StoreAction::Create(Object::Task(t)) = &plan.actions[0] else {
        panic!()
    };
    assert_eq!(t.slot, 0);
    assert_eq!(t.status.message, "pending task scheduling");
    let decided = s.schedule();
    assert_eq!(
        decided,
        vec![crate::scheduler::Decision::Assign {
            task_id: t.id().to_string(),
            node_id: "n1".into()
        }],
        "the scheduler confirms a task made for its node"
    );
    s.agent();
    assert_eq!(table(&s), vec![("n1".into(), Running, Running)]);
    assert!(s.reconcile("g").is_empty());
}

#[test]
fn follows_joins_drains_downs_and_label_changes() {
    let mut s = sim(2);
    s.add_service(global_service("g", "agent"));
    s.settle("g", 10);
    assert_eq!(s.running("g"), 2);

    // A node joins: it gets a task.
    s.add_node(node("n3"));
    let plan = s.reconcile("g");
    assert_eq!(
        created(&plan),
        vec![("n3".into(), Running, Pending, "agent.n3".into())]
    );
    s.agent();

    // Drained: its task is shut down, not replaced.
    let on_n1 = task_on(&s, "n1");
    s.change_node("n1", |n| {
        n.spec.availability = Some(NodeAvailability::Drain)
    });
    let plan = s.reconcile("g");
    assert_eq!(plan.actions, vec![desired(&on_n1, Shutdown)]);
    s.agent();

    // Down: the same.
    let on_n2 = task_on(&s, "n2");
    s.change_node("n2", |n| n.status.state = Some(NodeState::Down));
    let plan = s.reconcile("g");
    assert_eq!(plan.actions, vec![desired(&on_n2, Shutdown)]);

    // Back: both get a new task; the old one of n2 (still running there) is stopped
    // by its agent because it is desired SHUTDOWN.
    s.change_node("n1", |n| {
        n.spec.availability = Some(NodeAvailability::Active)
    });
    s.change_node("n2", |n| n.status.state = Some(NodeState::Ready));
    let plan = s.reconcile("g");
    assert_eq!(
        created(&plan)
            .iter()
            .map(|c| c.0.as_str())
            .collect::<Vec<_>>(),
        vec!["n1", "n2"]
    );
    s.settle("g", 10);
    assert_eq!(s.running("g"), 3);
    assert_eq!(
        table(&s),
        vec![
            ("n1".into(), Running, Running),
            ("n1".into(), Shutdown, Shutdown),
            ("n2".into(), Running, Running),
            ("n2".into(), Shutdown, Shutdown),
            ("n3".into(), Running, Running),
        ]
    );

    // A label change takes n3 out of the constraints: its task goes.
    let mut svc = s.service("g");
    svc.spec.task_template.placement = Some(Placement {
        constraints: vec!["node.labels.gpu!=no".into()],
        ..Placement::default()
    });
    s.apply(&[StoreAction::Update(Object::Service(Box::new(svc)))]);
    s.settle("g", 10);
    let on_n3 = task_on(&s, "n3");
    s.change_node("n3", |n| {
        n.spec.labels.insert("gpu".into(), "no".into());
    });
    let plan = s.reconcile("g");
    assert_eq!(plan.actions, vec![desired(&on_n3, Shutdown)]);

    // A removed node's stopped tasks are deleted.
    s.agent();
    s.apply(&[StoreAction::Remove(
        crate::store::ObjectKind::Node,
        "n3".into(),
    )]);
    s.reconcile("g");
    assert!(s.tasks("g").iter().all(|t| t.node_id != "n3"));
}

#[test]
fn a_failed_global_task_restarts_on_its_node_after_the_delay() {
    let mut s = sim(2);
    s.add_service(global_service("g", "agent"));
    s.settle("g", 10);
    let old = task_on(&s, "n2");
    s.report(&old, Failed, "task: non-zero exit (1)");
    let plan = s.reconcile("g");
    assert_eq!(plan.actions[0], desired(&old, Shutdown));
    assert_eq!(
        created(&plan),
        vec![("n2".into(), Ready, Pending, "agent.n2".into())]
    );
    assert_eq!(plan.requeue_after, Some(secs(5)));
    s.advance(secs(5));
    s.settle("g", 10);
    assert_eq!(s.running("g"), 2);
    assert_eq!(task_on(&s, "n1").len(), 25);
    assert_ne!(task_on(&s, "n2"), old);
}

#[test]
fn a_global_service_rolls_its_update_node_by_node() {
    let mut s = sim(3);
    let mut svc = global_service("g", "agent");
    svc.spec.update_config = Some(UpdateConfig {
        parallelism: 1,
        ..UpdateConfig::default()
    });
    s.add_service(svc);
    s.settle("g", 10);
    s.update_service("g", |spec| {
        spec.task_template.container_spec.as_mut().unwrap().image = "busybox:2".into()
    });
    let plan = s.reconcile("g");
    assert_eq!(
        created(&plan),
        vec![("n1".into(), Ready, Pending, "agent.n1".into())]
    );
    assert_eq!(
        s.service("g").update_status.unwrap().state,
        Some(UpdateState::Updating)
    );
    for _ in 0..20 {
        s.settle("g", 10);
        s.advance(secs(1));
    }
    assert_eq!(
        s.service("g").update_status.unwrap().state,
        Some(UpdateState::Completed)
    );
    let images: Vec<String> = s
        .tasks("g")
        .iter()
        .filter(|t| t.desired_state == Running)
        .map(|t| t.spec.container_spec.as_ref().unwrap().image.clone())
        .collect();
    assert_eq!(images, vec!["busybox:2"; 3]);
}

// ---------------------------------------------------------------------------------
// Properties: a global service over random node events.

use proptest::prelude::*;

use super::eligible;
use super::task::is_live;
use crate::model::UpdateOrder;

#[derive(Debug, Clone)]
enum Op {
    Join,
    Down(usize),
    Up(usize),
    Drain(usize),
    Activate(usize),
    Label(usize, bool),
    Crash(usize),
    Update,
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Join),
        (0usize..6).prop_map(Op::Down),
        (0usize..6).prop_map(Op::Up),
        (0usize..6).prop_map(Op::Drain),
        (0usize..6).prop_map(Op::Activate),
        (0usize..6, any::<bool>()).prop_map(|(i, b)| Op::Label(i, b)),
        (0usize..8).prop_map(Op::Crash),
        Just(Op::Update),
        (1u64..6).prop_map(Op::Advance),
    ]
}

fn node_ids(s: &Sim) -> Vec<String> {
    let mut v: Vec<String> = s.store.nodes().map(|n| n.id().to_string()).collect();
    v.sort();
    v
}

/// At most `allowed` tasks per node that run or may, none on a node that may not
/// hold them, and observed states never going back.
fn check(
    s: &Sim,
    allowed: usize,
    seen: &mut std::collections::BTreeMap<String, TaskState>,
) -> Result<(), TestCaseError> {
    let svc = s.service("g");
    for t in s.tasks("g") {
        if let Some(prev) = seen.insert(t.id().to_string(), t.status.state) {
            prop_assert!(prev <= t.status.state, "task {} went backwards", t.id());
        }
        if is_live(&t) {
            let node = s.store.node(&t.node_id);
            prop_assert!(
                eligible::may_keep(&svc.spec.task_template, node),
                "live task {} on node {} that may not hold it",
                t.id(),
                t.node_id
            );
        }
    }
    for n in node_ids(s) {
        let may_run = s
            .tasks("g")
            .iter()
            .filter(|t| t.node_id == n && t.desired_state == Running && t.status.state <= Running)
            .count();
        prop_assert!(
            may_run <= allowed,
            "node {n} has {may_run} tasks that may run"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn a_global_service_has_one_task_per_eligible_node(
        ops in proptest::collection::vec(op(), 1..30),
        start_first in any::<bool>(),
    ) {
        let mut s = sim(3);
        let mut svc = global_service("g", "agent");
        svc.spec.task_template.placement = Some(Placement {
            constraints: vec!["node.labels.gpu!=no".into()],
            ..Placement::default()
        });
        let order = if start_first { UpdateOrder::StartFirst } else { UpdateOrder::StopFirst };
        svc.spec.update_config = Some(UpdateConfig {
            parallelism: 1,
            order: Some(order),
            failure_action: Some(crate::model::FailureAction::Continue),
            ..UpdateConfig::default()
        });
        s.add_service(svc);
        let allowed = if start_first { 2 } else { 1 };
        let mut seen = Default::default();
        let mut version = 1;
        let mut joined = 3;
        for op in ops {
            let ids = node_ids(&s);
            let pick = |i: usize| ids[i % ids.len()].clone();
            match op {
                Op::Join => { joined += 1; s.add_node(node(&format!("n{joined}"))); }
                Op::Down(i) => s.change_node(&pick(i), |n| n.status.state = Some(NodeState::Down)),
                Op::Up(i) => s.change_node(&pick(i), |n| n.status.state = Some(NodeState::Ready)),
                Op::Drain(i) => s.change_node(&pick(i), |n| n.spec.availability = Some(NodeAvailability::Drain)),
                Op::Activate(i) => s.change_node(&pick(i), |n| n.spec.availability = Some(NodeAvailability::Active)),
                Op::Label(i, gpu) => s.change_node(&pick(i), |n| {
                    n.spec.labels.insert("gpu".into(), if gpu { "yes" } else { "no" }.into());
                }),
                Op::Crash(i) => {
                    let running: Vec<String> = s.tasks("g").iter().filter(|t| t.status.state == Running).map(|t| t.id().to_string()).collect();
                    if !running.is_empty() {
                        s.report(&running[i % running.len()].clone(), Failed, "crash");
                    }
                }
                Op::Update => {
                    version += 1;
                    let image = format!("busybox:{version}");
                    s.update_service("g", |spec| spec.task_template.container_spec.as_mut().unwrap().image = image);
                }
                Op::Advance(n) => s.advance(secs(n)),
            }
            s.reconcile("g");
            check(&s, allowed, &mut seen)?;
            s.agent();
            check(&s, allowed, &mut seen)?;
        }
        // Every node back: exactly one running task on each node that may run one.
        for id in node_ids(&s) {
            s.change_node(&id, |n| n.status.state = Some(NodeState::Ready));
        }
        for _ in 0..40 {
            s.settle("g", 10);
            check(&s, allowed, &mut seen)?;
            s.advance(secs(1));
        }
        let svc = s.service("g");
        for n in s.store.nodes() {
            let running = s.tasks("g").iter().filter(|t| t.node_id == n.id() && is_live(t) && t.status.state == Running).count();
            let want = usize::from(eligible::may_start(&svc.spec.task_template, n));
            prop_assert_eq!(running, want, "node {}: {:#?}", n.id(), table(&s));
        }
        let status = svc.update_status.and_then(|u| u.state);
        prop_assert!(status.is_none() || status == Some(UpdateState::Completed), "{:?}", status);
    }
}

/// A task made for its node stays PENDING, and says why, while its node cannot hold it
/// (swarmkit's check of pre-assigned tasks); it is assigned once the node can.
#[test]
fn a_global_task_waits_for_room_on_its_node() {
    use crate::model::{ResourceRequirements, Resources};
    let mut s = sim(1);
    let mut svc = global_service("g", "agent");
    svc.spec.task_template.resources = Some(ResourceRequirements {
        reservations: Some(Resources {
            memory_bytes: 16 << 30,
            ..Resources::default()
        }),
        ..ResourceRequirements::default()
    });
    s.add_service(svc);
    s.reconcile("g");
    s.schedule();
    let t = &s.tasks("g")[0];
    assert_eq!(t.status.state, Pending);
    assert_eq!(t.node_id, "n1");
    assert_eq!(
        t.status.err,
        "no suitable node (insufficient resources on 1 node)"
    );
    s.change_node("n1", |n| n.description.resources.memory_bytes = 32 << 30);
    s.schedule();
    assert_eq!(s.tasks("g")[0].status.state, Assigned);
}
