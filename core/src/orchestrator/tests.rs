//! Exact-plan tests for each behaviour of the replicated orchestrator, and property
//! tests over a simulated cluster (fake agents, a clock that moves only when told).

use std::time::Duration;

use proptest::prelude::*;

use super::testkit::{node, secs, service, t0, template, Sim};
use crate::model::{
    FailureAction, NodeAvailability, NodeState, OrchestrationConfig, Placement, RestartCondition,
    RestartPolicy, Swarm, UpdateConfig, UpdateOrder, UpdateState,
};
use crate::orchestrator::reconcile;
use crate::state::TaskState::{self, *};
use crate::store::{Object, ObjectKind, StoreAction};

fn sim(nodes: usize) -> Sim {
    let mut s = Sim::new();
    for i in 1..=nodes {
        s.add_node(node(&format!("n{i}")));
    }
    s
}

fn created(plan: &super::Plan) -> Vec<(u64, TaskState, TaskState, String)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            StoreAction::Create(Object::Task(t)) => {
                Some((t.slot, t.desired_state, t.status.state, t.name.clone()))
            }
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

fn restart_policy(
    condition: RestartCondition,
    delay: Duration,
    max_attempts: u64,
) -> RestartPolicy {
    RestartPolicy {
        condition: Some(condition),
        delay: Some(delay.as_nanos() as i64),
        max_attempts: Some(max_attempts),
        ..RestartPolicy::default()
    }
}

fn update_status(s: &Sim, id: &str) -> Option<(UpdateState, String)> {
    s.service(id)
        .update_status
        .map(|u| (u.state.unwrap(), u.message))
}

#[test]
fn new_service_gets_one_pending_task_per_slot() {
    let mut s = sim(1);
    s.add_service(service("svc", "web", 3));
    let plan = reconcile(&s.store, "svc", s.now);
    assert_eq!(
        created(&plan),
        vec![
            (1, Running, Pending, "web.1".into()),
            (2, Running, Pending, "web.2".into()),
            (3, Running, Pending, "web.3".into()),
        ]
    );
    assert_eq!(plan.requeue_after, None);
    let StoreAction::Create(Object::Task(t)) = &plan.actions[0] else {
        panic!()
    };
    assert_eq!(*t.spec, template("busybox:1"));
    assert_eq!(t.service_id, "svc");
    assert_eq!(t.status.message, "pending task scheduling");
    assert_eq!(t.id().len(), 25);
    // Pure: the same view and time give the same plan.
    assert_eq!(plan, reconcile(&s.store, "svc", s.now));
    // Applied, the next plan is empty.
    s.apply(&plan.actions);
    assert!(reconcile(&s.store, "svc", s.now).is_empty());
}

#[test]
fn scale_up_fills_free_slots_and_scale_down_removes_the_highest() {
    let mut s = sim(2);
    s.add_service(service("svc", "web", 3));
    s.settle("svc", 10);
    assert_eq!(s.running("svc"), 3);

    s.scale("svc", 5);
    let plan = s.reconcile("svc");
    assert_eq!(
        created(&plan),
        vec![
            (4, Running, Pending, "web.4".into()),
            (5, Running, Pending, "web.5".into())
        ]
    );
    s.settle("svc", 10);
    assert_eq!(s.running("svc"), 5);
    assert_eq!(
        s.service("svc").update_status,
        None,
        "a scale is not an update"
    );

    s.scale("svc", 1);
    let mut ids: Vec<String> = s
        .tasks("svc")
        .iter()
        .skip(1)
        .map(|t| t.id().to_string())
        .collect();
    ids.sort();
    let plan = s.reconcile("svc");
    assert_eq!(
        plan.actions,
        ids.iter().map(|id| desired(id, Remove)).collect::<Vec<_>>()
    );
    // The agent stops them; the next reconcile deletes them.
    s.agent();
    assert!(s.table("svc")[1..]
        .iter()
        .all(|r| r.1 == Remove && r.2 == Shutdown));
    let plan = s.reconcile("svc");
    assert_eq!(
        plan.actions,
        ids.iter()
            .map(|id| StoreAction::Remove(ObjectKind::Task, id.clone()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        s.table("svc"),
        vec![(1, Running, Running, "busybox:1".into())]
    );

    // Scale up again: slot 2 is free again.
    s.scale("svc", 2);
    assert_eq!(
        created(&s.reconcile("svc")),
        vec![(2, Running, Pending, "web.2".into())]
    );
}

#[test]
fn a_failed_task_is_replaced_in_its_slot_after_the_restart_delay() {
    let mut s = sim(1);
    s.add_service(service("svc", "web", 1));
    s.settle("svc", 10);
    let old = s.tasks("svc")[0].id().to_string();

    s.advance(secs(60));
    s.report(&old, Failed, "task: non-zero exit (137)");
    let plan = s.reconcile("svc");
    assert_eq!(plan.actions[0], desired(&old, Shutdown));
    assert_eq!(created(&plan), vec![(1, Ready, Pending, "web.1".into())]);
    assert_eq!(
        plan.requeue_after,
        Some(secs(5)),
        "Docker's default delay: 5 s"
    );
    let new = plan.actions[1].clone();
    let StoreAction::Create(Object::Task(new)) = new else {
        panic!()
    };

    // Before the delay: nothing but the wait.
    s.advance(secs(3));
    let plan = s.reconcile("svc");
    assert_eq!(plan.actions, vec![]);
    assert_eq!(plan.requeue_after, Some(secs(2)));

    s.advance(secs(2));
    let plan = s.reconcile("svc");
    assert_eq!(plan.actions, vec![desired(new.id(), Running)]);
    assert_eq!(plan.requeue_after, None);

    s.settle("svc", 10);
    assert_eq!(
        s.table("svc"),
        vec![
            (1, Shutdown, Failed, "busybox:1".into()),
            (1, Running, Running, "busybox:1".into())
        ]
    );
}

#[test]
fn restart_condition_none_and_on_failure() {
    // none: the slot is kept, ended, not refilled.
    let mut s = sim(1);
    let mut svc = service("svc", "job", 1);
    svc.spec.task_template.restart_policy =
        Some(restart_policy(RestartCondition::None, secs(0), 0));
    s.add_service(svc);
    s.settle("svc", 10);
    let id = s.tasks("svc")[0].id().to_string();
    s.report(&id, Failed, "boom");
    let plan = s.reconcile("svc");
    assert_eq!(plan.actions, vec![desired(&id, Shutdown)]);
    assert!(
        s.reconcile("svc").is_empty(),
        "no refill of a slot the policy gave up on"
    );

    // on-failure: a clean exit is not restarted, a failure is.
    let mut s = sim(1);
    let mut svc = service("svc", "job", 2);
    svc.spec.task_template.restart_policy =
        Some(restart_policy(RestartCondition::OnFailure, secs(0), 0));
    s.add_service(svc);
    s.settle("svc", 10);
    let t = s.tasks("svc");
    s.report(t[0].id(), Complete, "finished");
    s.report(t[1].id(), Failed, "boom");
    let plan = s.reconcile("svc");
    assert_eq!(created(&plan), vec![(2, Running, Pending, "job.2".into())]);
}

#[test]
fn max_attempts_stops_restarting_and_history_keeps_attempts_plus_one() {
    let mut s = sim(1);
    let mut svc = service("svc", "web", 1);
    svc.spec.task_template.restart_policy = Some(restart_policy(RestartCondition::Any, secs(0), 2));
    s.add_service(svc);
    s.settle("svc", 10);
    for round in 0..3 {
        let live = s
            .tasks("svc")
            .into_iter()
            .find(|t| t.desired_state == Running)
            .unwrap();
        s.advance(secs(1));
        s.report(live.id(), Failed, "boom");
        let plan = s.reconcile("svc");
        let expected = if round < 2 { 1 } else { 0 };
        assert_eq!(created(&plan).len(), expected, "round {round}");
        s.settle("svc", 10);
    }
    let table = s.table("svc");
    assert_eq!(table.len(), 3);
    assert!(table.iter().all(|r| r.1 == Shutdown && r.2 == Failed));
}

#[test]
fn max_attempts_counts_only_within_the_window() {
    let mut s = sim(1);
    let mut svc = service("svc", "web", 1);
    let mut p = restart_policy(RestartCondition::Any, secs(0), 1);
    p.window = Some(secs(10).as_nanos() as i64);
    svc.spec.task_template.restart_policy = Some(p);
    s.add_service(svc);
    s.settle("svc", 10);
    for _ in 0..4 {
        let live = s
            .tasks("svc")
            .into_iter()
            .find(|t| t.desired_state == Running)
            .unwrap();
        s.advance(secs(30)); // each failure long after the last restart
        s.report(live.id(), Failed, "boom");
        assert_eq!(created(&s.reconcile("svc")).len(), 1);
        s.settle("svc", 10);
    }
    // A failure within the window of the last restart is not restarted.
    let live = s
        .tasks("svc")
        .into_iter()
        .find(|t| t.desired_state == Running)
        .unwrap();
    s.advance(secs(1));
    s.report(live.id(), Failed, "boom");
    assert_eq!(created(&s.reconcile("svc")).len(), 0);
}

#[test]
fn history_is_kept_to_the_retention_limit() {
    let mut s = sim(1);
    let mut svc = service("svc", "web", 1);
    svc.spec.task_template.restart_policy = Some(restart_policy(RestartCondition::Any, secs(0), 0));
    s.add_service(svc);
    s.settle("svc", 10);
    for _ in 0..8 {
        let live = s
            .tasks("svc")
            .into_iter()
            .find(|t| t.desired_state == Running)
            .unwrap();
        s.advance(secs(1));
        s.report(live.id(), Failed, "boom");
        s.settle("svc", 10);
    }
    assert_eq!(s.tasks("svc").len(), 5, "Docker's default: 5 per slot");
    assert_eq!(s.running("svc"), 1);

    // The swarm's TaskHistoryRetentionLimit.
    let mut swarm = Swarm::default();
    swarm.cluster.meta.id = "cluster".into();
    swarm.cluster.spec.orchestration = OrchestrationConfig {
        task_history_retention_limit: Some(2),
        ..OrchestrationConfig::default()
    };
    s.apply(&[StoreAction::Create(Object::Cluster(Box::new(swarm)))]);
    let plan = s.reconcile("svc");
    assert_eq!(plan.actions.len(), 3);
    assert!(plan
        .actions
        .iter()
        .all(|a| matches!(a, StoreAction::Remove(ObjectKind::Task, _))));
    assert_eq!(s.tasks("svc").len(), 2);
}

#[test]
fn tasks_of_a_down_or_drained_node_are_replaced() {
    let mut s = sim(2);
    s.add_service(service("svc", "web", 2));
    s.settle("svc", 10);
    let on_n1: Vec<String> = s
        .tasks("svc")
        .iter()
        .filter(|t| t.node_id == "n1")
        .map(|t| t.id().to_string())
        .collect();
    assert_eq!(on_n1.len(), 1);

    // Drain: the replacement waits for the old task to stop, with no delay.
    let mut n1 = s.store.node("n1").unwrap().clone();
    n1.spec.availability = Some(NodeAvailability::Drain);
    s.apply(&[StoreAction::Update(Object::Node(Box::new(n1)))]);
    let plan = s.reconcile("svc");
    assert_eq!(plan.actions[0], desired(&on_n1[0], Shutdown));
    assert_eq!(created(&plan).len(), 1);
    assert_eq!(created(&plan)[0].1, Ready);
    s.agent(); // n1 stops its task
    s.settle("svc", 10);
    assert_eq!(s.running("svc"), 2);
    assert!(s
        .tasks("svc")
        .iter()
        .filter(|t| t.desired_state == Running)
        .all(|t| t.node_id == "n2"));

    // Down: no waiting for a stop that will not be reported; the restart delay applies.
    let mut n2 = s.store.node("n2").unwrap().clone();
    n2.status.state = Some(NodeState::Down);
    s.apply(&[StoreAction::Update(Object::Node(Box::new(n2)))]);
    let plan = s.reconcile("svc");
    assert_eq!(created(&plan).len(), 2);
    assert_eq!(plan.requeue_after, Some(secs(5)));
}

fn update_sim(replicas: u64, config: Option<UpdateConfig>) -> Sim {
    let mut s = sim(3);
    let mut svc = service("svc", "web", replicas);
    svc.spec.update_config = config;
    svc.spec.rollback_config = Some(UpdateConfig {
        parallelism: 0,
        ..UpdateConfig::default()
    });
    s.add_service(svc);
    s.settle("svc", 20);
    assert_eq!(s.running("svc"), replicas as usize);
    s
}

fn set_image(s: &mut Sim, image: &str) {
    let image = image.to_string();
    s.update_service("svc", |spec| {
        spec.task_template.container_spec.as_mut().unwrap().image = image;
    });
}

fn images(s: &Sim) -> Vec<String> {
    s.table("svc")
        .into_iter()
        .filter(|r| r.1 == Running)
        .map(|r| r.3)
        .collect()
}

#[test]
fn stop_first_update_replaces_one_slot_at_a_time() {
    let mut s = update_sim(3, None);
    let old: Vec<String> = s.tasks("svc").iter().map(|t| t.id().to_string()).collect();
    set_image(&mut s, "busybox:2");

    let plan = s.reconcile("svc");
    let StoreAction::Update(Object::Service(svc)) = &plan.actions[0] else {
        panic!("{plan:?}")
    };
    let st = svc.update_status.clone().unwrap();
    assert_eq!(
        (st.state.unwrap(), st.message.as_str()),
        (UpdateState::Updating, "update in progress")
    );
    assert_eq!(st.started_at, Some(s.now));
    assert_eq!(plan.actions[1], desired(&old[0], Shutdown));
    assert_eq!(created(&plan), vec![(1, Ready, Pending, "web.1".into())]);
    assert_eq!(plan.actions.len(), 3);

    // Nothing more until the old task stopped; then the replacement starts.
    s.schedule();
    assert!(s.reconcile("svc").actions.is_empty());
    s.agent();
    let plan = s.reconcile("svc");
    assert_eq!(plan.actions.len(), 1);
    assert!(matches!(
        &plan.actions[0],
        StoreAction::SetTaskDesiredState {
            desired_state: Running,
            ..
        }
    ));
    s.agent();
    // Slot 1 runs the new image; slot 2 goes next.
    let plan = s.reconcile("svc");
    assert_eq!(plan.actions[0], desired(&old[1], Shutdown));
    assert_eq!(created(&plan), vec![(2, Ready, Pending, "web.2".into())]);

    s.settle("svc", 30);
    assert_eq!(images(&s), vec!["busybox:2"; 3]);
    // Completed only after the monitor window (5 s) has passed.
    assert_eq!(update_status(&s, "svc").unwrap().0, UpdateState::Updating);
    let plan = s.reconcile("svc");
    assert_eq!(plan.requeue_after, Some(secs(5)));
    s.advance(secs(5));
    s.reconcile("svc");
    assert_eq!(
        update_status(&s, "svc"),
        Some((UpdateState::Completed, "update completed".into()))
    );
    assert_eq!(
        s.service("svc").update_status.unwrap().completed_at,
        Some(s.now)
    );
    // History: each slot's old task Shutdown.
    assert_eq!(s.tasks("svc").len(), 6);
}

#[test]
fn update_delay_spaces_the_batches_and_parallelism_sizes_them() {
    let mut s = update_sim(
        4,
        Some(UpdateConfig {
            parallelism: 2,
            delay: secs(10).as_nanos() as i64,
            ..UpdateConfig::default()
        }),
    );
    set_image(&mut s, "busybox:2");
    let plan = s.reconcile("svc");
    assert_eq!(
        created(&plan).iter().map(|c| c.0).collect::<Vec<_>>(),
        vec![1, 2]
    );
    s.settle("svc", 10);
    // Slots 1 and 2 run the new image; the delay holds slots 3 and 4 back.
    assert_eq!(
        images(&s),
        vec!["busybox:2", "busybox:2", "busybox:1", "busybox:1"]
    );
    let plan = s.reconcile("svc");
    assert_eq!(plan.actions, vec![]);
    assert_eq!(plan.requeue_after, Some(secs(10)));
    s.advance(secs(10));
    let plan = s.reconcile("svc");
    assert_eq!(
        created(&plan).iter().map(|c| c.0).collect::<Vec<_>>(),
        vec![3, 4]
    );

    // Parallelism 0: every slot at once.
    let mut s = update_sim(4, Some(UpdateConfig::default()));
    set_image(&mut s, "busybox:2");
    assert_eq!(created(&s.reconcile("svc")).len(), 4);
}

#[test]
fn start_first_starts_the_new_task_before_stopping_the_old() {
    let mut s = update_sim(
        1,
        Some(UpdateConfig {
            parallelism: 1,
            order: Some(UpdateOrder::StartFirst),
            ..UpdateConfig::default()
        }),
    );
    let old = s.tasks("svc")[0].id().to_string();
    set_image(&mut s, "busybox:2");
    let plan = s.reconcile("svc");
    assert_eq!(created(&plan), vec![(1, Running, Pending, "web.1".into())]);
    assert!(!plan.actions.contains(&desired(&old, Shutdown)));
    s.schedule();
    s.agent();
    assert_eq!(
        s.table("svc").iter().filter(|r| r.2 == Running).count(),
        2,
        "both run for a moment"
    );
    let plan = s.reconcile("svc");
    assert_eq!(plan.actions, vec![desired(&old, Shutdown)]);
    s.settle("svc", 10);
    assert_eq!(images(&s), vec!["busybox:2"]);
}

#[test]
fn a_failed_new_task_pauses_the_update() {
    let mut s = update_sim(3, None);
    set_image(&mut s, "busybox:bad");
    s.reconcile("svc");
    s.schedule();
    s.agent();
    s.reconcile("svc");
    let new = s
        .tasks("svc")
        .into_iter()
        .find(|t| {
            t.desired_state == Running
                && t.spec.container_spec.as_ref().unwrap().image == "busybox:bad"
        })
        .unwrap();
    s.report(new.id(), Failed, "task: non-zero exit (1)");
    let plan = s.reconcile("svc");
    let StoreAction::Update(Object::Service(svc)) = &plan.actions[0] else {
        panic!("{plan:?}")
    };
    let st = svc.update_status.clone().unwrap();
    assert_eq!(st.state, Some(UpdateState::Paused));
    assert_eq!(
        st.message,
        format!(
            "update paused due to failure or early termination of task {}",
            new.id()
        )
    );
    // Paused: the restart policy still keeps slot 1 filled, the other slots stay old.
    s.advance(secs(5));
    s.settle("svc", 20);
    assert_eq!(update_status(&s, "svc").unwrap().0, UpdateState::Paused);
    assert_eq!(images(&s), vec!["busybox:bad", "busybox:1", "busybox:1"]);

    // `service update` of a paused service resumes it, with the new spec.
    set_image(&mut s, "busybox:good");
    s.reconcile("svc");
    assert_eq!(
        update_status(&s, "svc"),
        Some((UpdateState::Updating, "update in progress".into()))
    );
    for _ in 0..30 {
        s.settle("svc", 10);
        s.advance(secs(1));
    }
    assert_eq!(
        update_status(&s, "svc"),
        Some((UpdateState::Completed, "update completed".into()))
    );
    assert_eq!(images(&s), vec!["busybox:good"; 3]);
}

/// swarmkit watches a replacement for `Monitor` after it starts: a failure later on is
/// the restart policy's business, not the update's.
#[test]
fn a_failure_after_the_monitor_window_does_not_count() {
    // The first replacement of an update to `image`, once it runs.
    fn start_replacement(s: &mut Sim, image: &str) -> crate::model::Task {
        set_image(s, image);
        for _ in 0..5 {
            s.reconcile("svc");
            s.schedule();
            s.agent();
            let running = s.tasks("svc").into_iter().find(|t| {
                t.status.state == Running && t.spec.container_spec.as_ref().unwrap().image == image
            });
            if let Some(t) = running {
                return t;
            }
        }
        panic!("no {image} replacement running")
    }
    let mut s = update_sim(3, None);
    let first = start_replacement(&mut s, "busybox:2");
    assert_eq!(
        first.running_since,
        Some(s.now),
        "kept from the RUNNING report"
    );
    // Past the default 5 s monitor: the failure leaves the update going.
    s.advance(secs(6));
    s.report(first.id(), Failed, "task: non-zero exit (1)");
    s.reconcile("svc");
    assert_eq!(update_status(&s, "svc").unwrap().0, UpdateState::Updating);
    for _ in 0..30 {
        s.settle("svc", 10);
        s.advance(secs(1));
    }
    assert_eq!(
        update_status(&s, "svc"),
        Some((UpdateState::Completed, "update completed".into()))
    );

    // The same failure within the window pauses it (as a_failed_new_task_pauses_the_update).
    let next = start_replacement(&mut s, "busybox:3");
    s.advance(secs(4));
    s.report(next.id(), Failed, "task: non-zero exit (1)");
    s.reconcile("svc");
    assert_eq!(update_status(&s, "svc").unwrap().0, UpdateState::Paused);
}

#[test]
fn a_node_no_longer_meeting_the_constraints_loses_its_tasks() {
    let mut s = sim(2);
    s.change_node("n1", |n| {
        n.spec.labels.insert("zone".into(), "a".into());
    });
    s.change_node("n2", |n| {
        n.spec.labels.insert("zone".into(), "a".into());
    });
    let mut svc = service("svc", "web", 2);
    svc.spec.task_template.placement = Some(Placement {
        constraints: vec!["node.labels.zone==a".into()],
        ..Placement::default()
    });
    s.add_service(svc);
    s.settle("svc", 10);
    let on_n1 = s
        .tasks("svc")
        .into_iter()
        .find(|t| t.node_id == "n1")
        .unwrap();
    s.change_node("n1", |n| {
        n.spec.labels.insert("zone".into(), "b".into());
    });
    let plan = s.reconcile("svc");
    assert_eq!(plan.actions[0], desired(on_n1.id(), Shutdown));
    assert_eq!(
        created(&plan),
        vec![(on_n1.slot, Ready, Pending, on_n1.name.clone())]
    );
    s.settle("svc", 10);
    assert_eq!(s.running("svc"), 2);
    assert!(s
        .tasks("svc")
        .iter()
        .filter(|t| t.desired_state == Running)
        .all(|t| t.node_id == "n2"));
}

#[test]
fn failure_action_rollback_rolls_back_to_the_previous_spec() {
    let mut s = update_sim(
        2,
        Some(UpdateConfig {
            parallelism: 1,
            failure_action: Some(FailureAction::Rollback),
            ..UpdateConfig::default()
        }),
    );
    set_image(&mut s, "busybox:bad");
    s.reconcile("svc");
    s.schedule();
    s.agent();
    s.reconcile("svc");
    let new = s
        .tasks("svc")
        .into_iter()
        .find(|t| {
            t.desired_state == Running
                && t.spec.container_spec.as_ref().unwrap().image == "busybox:bad"
        })
        .unwrap();
    s.report(new.id(), Failed, "boom");
    let plan = s.reconcile("svc");
    assert_eq!(plan.requeue_after, Some(Duration::ZERO));
    let svc = s.service("svc");
    let st = svc.update_status.clone().unwrap();
    assert_eq!(st.state, Some(UpdateState::RollbackStarted));
    assert_eq!(
        st.message,
        format!(
            "update rolled back due to failure or early termination of task {}",
            new.id()
        )
    );
    assert_eq!(svc.spec.task_template, template("busybox:1"));
    assert_eq!(svc.previous_spec, None);

    s.advance(secs(5));
    s.settle("svc", 30);
    s.advance(secs(5));
    s.reconcile("svc");
    assert_eq!(
        update_status(&s, "svc"),
        Some((UpdateState::RollbackCompleted, "rollback completed".into()))
    );
    assert_eq!(images(&s), vec!["busybox:1", "busybox:1"]);
}

#[test]
fn service_rollback_returns_to_the_previous_spec_with_the_rollback_config() {
    let mut s = update_sim(3, None);
    set_image(&mut s, "busybox:2");
    for _ in 0..10 {
        s.settle("svc", 30);
        s.advance(secs(5));
    }
    assert_eq!(update_status(&s, "svc").unwrap().0, UpdateState::Completed);
    assert_eq!(images(&s), vec!["busybox:2"; 3]);

    s.rollback_service("svc");
    // RollbackConfig here has parallelism 0: all slots at once.
    let plan = s.reconcile("svc");
    assert_eq!(created(&plan).len(), 3);
    s.settle("svc", 30);
    assert_eq!(images(&s), vec!["busybox:1"; 3]);
    assert_eq!(
        update_status(&s, "svc").unwrap().0,
        UpdateState::RollbackStarted
    );
    s.advance(secs(5));
    s.reconcile("svc");
    assert_eq!(
        update_status(&s, "svc"),
        Some((UpdateState::RollbackCompleted, "rollback completed".into()))
    );
}

#[test]
fn force_update_redeploys_every_slot() {
    let mut s = update_sim(
        2,
        Some(UpdateConfig {
            parallelism: 0,
            ..UpdateConfig::default()
        }),
    );
    s.update_service("svc", |spec| spec.task_template.force_update += 1);
    assert_eq!(created(&s.reconcile("svc")).len(), 2);
}

#[test]
fn removing_the_service_shuts_down_then_removes_its_tasks() {
    let mut s = sim(1);
    s.add_service(service("svc", "web", 2));
    s.settle("svc", 10);
    let mut ids: Vec<String> = s.tasks("svc").iter().map(|t| t.id().to_string()).collect();
    ids.sort();
    s.apply(&[StoreAction::Remove(ObjectKind::Service, "svc".into())]);
    let plan = s.reconcile("svc");
    assert_eq!(
        plan.actions,
        ids.iter().map(|id| desired(id, Remove)).collect::<Vec<_>>()
    );
    s.agent();
    let plan = s.reconcile("svc");
    assert_eq!(
        plan.actions,
        ids.iter()
            .map(|id| StoreAction::Remove(ObjectKind::Task, id.clone()))
            .collect::<Vec<_>>()
    );
    assert!(s.tasks("svc").is_empty());
}

// ---------------------------------------------------------------------------------
// Properties over a simulated cluster.

#[derive(Debug, Clone)]
enum Op {
    Scale(u64),
    Update,
    Crash(usize),
    NodeDown(usize),
    NodeUp(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..6).prop_map(Op::Scale),
        Just(Op::Update),
        (0usize..8).prop_map(Op::Crash),
        (0usize..3).prop_map(Op::NodeDown),
        (0usize..3).prop_map(Op::NodeUp),
        (1u64..8).prop_map(Op::Advance),
    ]
}

fn set_node_state(s: &mut Sim, i: usize, state: NodeState) {
    let mut n = s.store.node(&format!("n{}", i + 1)).unwrap().clone();
    if n.status.state != Some(state.clone()) {
        n.status.state = Some(state);
        s.apply(&[StoreAction::Update(Object::Node(Box::new(n)))]);
    }
}

/// Invariants that hold after every step.
fn check(
    s: &Sim,
    allowed: usize,
    seen: &mut std::collections::BTreeMap<String, TaskState>,
) -> Result<(), TestCaseError> {
    let tasks = s.tasks("svc");
    for t in &tasks {
        // State never goes backwards.
        if let Some(prev) = seen.insert(t.id().to_string(), t.status.state) {
            prop_assert!(
                prev <= t.status.state,
                "task {} went {prev} -> {}",
                t.id(),
                t.status.state
            );
        }
        // Constraints hold wherever a task was placed.
        if !t.node_id.is_empty() {
            prop_assert_ne!(&t.node_id, "n3", "constraint node.labels.zone!=c violated");
        }
    }
    // At most one task per slot desired RUNNING and not ended (stop-first), two
    // (start-first); tasks on a Down node do not count: they are being replaced.
    let mut per_slot = std::collections::BTreeMap::<u64, usize>::new();
    for t in &tasks {
        let lost = s
            .store
            .node(&t.node_id)
            .is_some_and(|n| n.status.state == Some(NodeState::Down));
        if t.desired_state == Running && t.status.state <= Running && !lost {
            *per_slot.entry(t.slot).or_default() += 1;
        }
    }
    for (slot, n) in per_slot {
        prop_assert!(n <= allowed, "slot {slot} has {n} tasks that may run");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn replicas_converge_and_invariants_hold(
        ops in proptest::collection::vec(op(), 1..25),
        start_first in any::<bool>(),
    ) {
        let order = if start_first { UpdateOrder::StartFirst } else { UpdateOrder::StopFirst };
        let allowed = if start_first { 2 } else { 1 };
        let mut s = sim(3);
        let mut n3 = s.store.node("n3").unwrap().clone();
        n3.spec.labels.insert("zone".into(), "c".into());
        s.apply(&[StoreAction::Update(Object::Node(Box::new(n3)))]);
        let mut svc = service("svc", "web", 3);
        svc.spec.task_template.placement = Some(Placement {
            constraints: vec!["node.labels.zone!=c".into()],
            ..Placement::default()
        });
        svc.spec.task_template.restart_policy = Some(restart_policy(RestartCondition::Any, secs(2), 0));
        svc.spec.update_config = Some(UpdateConfig { parallelism: 1, order: Some(order), failure_action: Some(FailureAction::Continue), ..UpdateConfig::default() });
        s.add_service(svc);
        let mut seen = Default::default();
        let mut replicas = 3;
        let mut version = 1;
        for op in ops {
            match op {
                Op::Scale(n) => { replicas = n; s.scale("svc", n); }
                Op::Update => {
                    version += 1;
                    let image = format!("busybox:{version}");
                    s.update_service("svc", |spec| {
                        spec.task_template.container_spec.as_mut().unwrap().image = image;
                    });
                }
                Op::Crash(i) => {
                    let running: Vec<String> = s.tasks("svc").iter().filter(|t| t.status.state == Running).map(|t| t.id().to_string()).collect();
                    if !running.is_empty() {
                        let id = running[i % running.len()].clone();
                        s.report(&id, Failed, "crash");
                    }
                }
                Op::NodeDown(i) => set_node_state(&mut s, i, NodeState::Down),
                Op::NodeUp(i) => set_node_state(&mut s, i, NodeState::Ready),
                Op::Advance(n) => s.advance(secs(n)),
            }
            s.reconcile("svc");
            check(&s, allowed, &mut seen)?;
            s.schedule();
            check(&s, allowed, &mut seen)?;
            s.agent();
            check(&s, allowed, &mut seen)?;
        }
        // Fault-free phase: every node up, time moves on; the service converges.
        for i in 0..3 { set_node_state(&mut s, i, NodeState::Ready); }
        for _ in 0..60 {
            s.settle("svc", 10);
            check(&s, allowed, &mut seen)?;
            s.advance(secs(1));
        }
        prop_assert_eq!(s.running("svc"), replicas as usize, "{:#?}", s.table("svc"));
        let image = format!("busybox:{version}");
        prop_assert!(images(&s).iter().all(|i| *i == image), "{:#?}", s.table("svc"));
        let status = s.service("svc").update_status.and_then(|u| u.state);
        prop_assert!(status.is_none() || status == Some(UpdateState::Completed), "{status:?}");
        prop_assert!(s.now > t0());
    }
}
