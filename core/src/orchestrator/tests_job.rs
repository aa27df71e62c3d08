//! Exact-plan tests for jobs: replicated jobs run `TotalCompletions` tasks to completion,
//! at most `MaxConcurrent` at once; global jobs once per node; a spec change (or
//! `--force`) starts a new iteration.

use super::job::is_done;
use super::testkit::{global_job, node, replicated_job, secs, Sim};
use crate::model::{RestartCondition, RestartPolicy, Version};
use crate::state::TaskState::{self, *};
use crate::store::{Object, StoreAction};

fn sim(nodes: usize) -> Sim {
    let mut s = Sim::new();
    for i in 1..=nodes {
        s.add_node(node(&format!("n{i}")));
    }
    s
}

fn created(plan: &super::Plan) -> Vec<(u64, TaskState, Option<u64>)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            StoreAction::Create(Object::Task(t)) => {
                Some((t.slot, t.desired_state, t.job_iteration.map(|v| v.index)))
            }
            _ => None,
        })
        .collect()
}

/// Every task observed RUNNING completes.
fn finish_running(s: &mut Sim, id: &str) {
    let running: Vec<String> = s
        .tasks(id)
        .iter()
        .filter(|t| t.status.state == Running)
        .map(|t| t.id().to_string())
        .collect();
    for t in running {
        s.report(&t, Complete, "finished");
    }
}

fn iteration(s: &Sim, id: &str) -> u64 {
    s.service(id).job_status.unwrap().job_iteration.index
}

#[test]
fn a_replicated_job_runs_max_concurrent_at_a_time_until_total_completions() {
    let mut s = sim(2);
    s.add_service(replicated_job("j", "migrate", 2, 5));
    let plan = s.reconcile("j");
    assert_eq!(
        created(&plan),
        vec![(1, Running, Some(0)), (2, Running, Some(0))]
    );
    let StoreAction::Update(Object::Service(svc)) = &plan.actions[0] else {
        panic!("the job's status is written first")
    };
    assert_eq!(
        svc.job_status.as_ref().unwrap().job_iteration,
        Version::new(0)
    );
    assert_eq!(svc.job_status.as_ref().unwrap().last_execution, s.now);
    s.settle("j", 10);
    assert_eq!(s.running("j"), 2);

    // Two complete: they are done (desired COMPLETE), two more start.
    finish_running(&mut s, "j");
    let plan = s.reconcile("j");
    assert_eq!(
        created(&plan),
        vec![(3, Running, Some(0)), (4, Running, Some(0))]
    );
    assert_eq!(
        s.table("j")
            .iter()
            .filter(|r| r.1 == Complete && r.2 == Complete)
            .count(),
        2
    );
    s.settle("j", 10);
    finish_running(&mut s, "j");
    let plan = s.reconcile("j");
    assert_eq!(created(&plan), vec![(5, Running, Some(0))]);
    s.settle("j", 10);
    assert!(!is_done(&s.store, &s.service("j")));
    finish_running(&mut s, "j");
    let plan = s.reconcile("j");
    assert_eq!(created(&plan), vec![]);
    assert!(is_done(&s.store, &s.service("j")));
    assert_eq!(s.tasks("j").len(), 5);
    assert!(s.reconcile("j").is_empty());
}

#[test]
fn a_failed_job_task_is_retried_in_its_slot_and_completed_ones_never_are() {
    let mut s = sim(1);
    let mut job = replicated_job("j", "migrate", 1, 1);
    job.spec.task_template.restart_policy = Some(RestartPolicy {
        condition: Some(RestartCondition::OnFailure),
        delay: Some(secs(1).as_nanos() as i64),
        max_attempts: Some(2),
        ..RestartPolicy::default()
    });
    s.add_service(job);
    s.settle("j", 10);
    let first = s.tasks("j")[0].id().to_string();
    s.report(&first, Failed, "task: non-zero exit (1)");
    let plan = s.reconcile("j");
    assert_eq!(created(&plan), vec![(1, Ready, Some(0))]);
    assert_eq!(plan.requeue_after, Some(secs(1)));
    s.advance(secs(1));
    s.settle("j", 10);
    // Fails again: the second (last) attempt.
    // The running one (tasks made at the same instant are ordered by ID).
    let live = |s: &Sim| {
        s.tasks("j")
            .into_iter()
            .find(|t| t.desired_state == Running)
            .map(|t| t.id().to_string())
            .unwrap()
    };
    let second = live(&s);
    assert_ne!(second, first);
    s.report(&second, Failed, "task: non-zero exit (1)");
    s.reconcile("j");
    s.advance(secs(1));
    s.settle("j", 10);
    assert_eq!(s.tasks("j").len(), 3);
    let third = live(&s);
    s.report(&third, Failed, "task: non-zero exit (1)");
    let plan = s.reconcile("j");
    assert_eq!(created(&plan), vec![], "max attempts reached");
    assert!(
        is_done(&s.store, &s.service("j")),
        "given up counts as settled"
    );

    // A job whose task completes is done even with condition any.
    let mut s = sim(1);
    s.add_service(replicated_job("j", "migrate", 1, 1));
    s.settle("j", 10);
    finish_running(&mut s, "j");
    s.advance(secs(60));
    s.settle("j", 10);
    assert_eq!(s.table("j").len(), 1);
    assert_eq!(s.table("j")[0].1, Complete);
}

#[test]
fn force_update_starts_a_new_iteration() {
    let mut s = sim(1);
    s.add_service(replicated_job("j", "migrate", 2, 2));
    s.settle("j", 10);
    let first: Vec<String> = s.tasks("j").iter().map(|t| t.id().to_string()).collect();
    finish_running(&mut s, "j");
    s.settle("j", 10);
    assert!(is_done(&s.store, &s.service("j")));

    s.advance(secs(30));
    s.update_service("j", |spec| spec.task_template.force_update += 1);
    let plan = s.reconcile("j");
    assert_eq!(
        created(&plan),
        vec![(1, Running, Some(1)), (2, Running, Some(1))]
    );
    assert_eq!(iteration(&s, "j"), 1);
    assert_eq!(s.service("j").job_status.unwrap().last_execution, s.now);
    assert!(!is_done(&s.store, &s.service("j")));
    // The first iteration's tasks stay as history (they completed).
    assert!(first.iter().all(|id| s.store.task(id).is_some()));

    // An update while tasks still run: they are removed.
    s.settle("j", 10);
    s.update_service("j", |spec| spec.task_template.force_update += 1);
    let plan = s.reconcile("j");
    assert_eq!(iteration(&s, "j"), 2);
    let removed = plan
        .actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                StoreAction::SetTaskDesiredState {
                    desired_state: Remove,
                    ..
                }
            )
        })
        .count();
    assert_eq!(removed, 2);
    assert_eq!(created(&plan).len(), 2);
    s.settle("j", 10);
    finish_running(&mut s, "j");
    s.settle("j", 10);
    assert!(is_done(&s.store, &s.service("j")));
}

#[test]
fn a_global_job_runs_once_per_node_and_on_nodes_that_join() {
    let mut s = sim(2);
    s.add_service(global_job("gj", "prune"));
    let plan = s.reconcile("gj");
    assert_eq!(
        created(&plan),
        vec![(0, Running, Some(0)), (0, Running, Some(0))]
    );
    s.settle("gj", 10);
    finish_running(&mut s, "gj");
    s.settle("gj", 10);
    assert!(is_done(&s.store, &s.service("gj")));
    assert!(s.reconcile("gj").is_empty());

    s.add_node(node("n3"));
    assert!(!is_done(&s.store, &s.service("gj")));
    let plan = s.reconcile("gj");
    assert_eq!(created(&plan), vec![(0, Running, Some(0))]);
    s.settle("gj", 10);
    finish_running(&mut s, "gj");
    s.settle("gj", 10);
    assert!(is_done(&s.store, &s.service("gj")));
    assert_eq!(s.tasks("gj").len(), 3);
}

#[test]
fn a_global_job_task_on_a_node_that_leaves_is_shut_down_and_rerun_when_it_returns() {
    use crate::model::NodeAvailability;
    let mut s = sim(2);
    s.add_service(global_job("gj", "prune"));
    s.settle("gj", 10);
    let on_n2 = s
        .tasks("gj")
        .into_iter()
        .find(|t| t.node_id == "n2")
        .unwrap();
    s.change_node("n2", |n| {
        n.spec.availability = Some(NodeAvailability::Drain)
    });
    let plan = s.reconcile("gj");
    assert_eq!(
        plan.actions,
        vec![StoreAction::SetTaskDesiredState {
            id: on_n2.id().to_string(),
            desired_state: Shutdown
        }]
    );
    s.agent();
    finish_running(&mut s, "gj");
    s.settle("gj", 10);
    assert!(is_done(&s.store, &s.service("gj")), "n2 is not eligible");

    s.change_node("n2", |n| {
        n.spec.availability = Some(NodeAvailability::Active)
    });
    assert!(!is_done(&s.store, &s.service("gj")));
    let plan = s.reconcile("gj");
    assert_eq!(created(&plan), vec![(0, Running, Some(0))]);
    s.settle("gj", 10);
    finish_running(&mut s, "gj");
    s.settle("gj", 10);
    assert!(is_done(&s.store, &s.service("gj")));
}
