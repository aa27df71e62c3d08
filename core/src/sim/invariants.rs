//! What must hold after every step of a simulation, and what must be true once the
//! faults stop and the cluster has settled.

use std::collections::BTreeMap;

use super::cluster::World;
use crate::model::{ModeKind, NodeState, Service, UpdateOrder, UpdateState};
use crate::orchestrator::eligible;
use crate::orchestrator::job::{is_done, replicated_limits};
use crate::orchestrator::slot::SlotKey;
use crate::orchestrator::task::{is_dirty, is_live};
use crate::state::TaskState;

/// The checker's memory: the last state seen of every task.
#[derive(Default)]
pub struct Seen(BTreeMap<String, TaskState>);

/// Tasks a slot may have that run or may soon: 2 when the service updates (or rolls
/// back) start-first, else 1.
fn slot_allowance(s: &Service) -> usize {
    let start_first = |c: Option<&crate::model::UpdateConfig>| {
        c.and_then(|c| c.order.clone()) == Some(UpdateOrder::StartFirst)
    };
    if start_first(s.spec.update_config.as_ref()) || start_first(s.spec.rollback_config.as_ref()) {
        2
    } else {
        1
    }
}

/// Invariants after a step.
pub fn check_step(w: &World, seen: &mut Seen) -> Result<(), String> {
    for t in w.store.tasks() {
        // A task's observed state never goes backwards.
        if let Some(prev) = seen.0.insert(t.id().to_string(), t.status.state) {
            if prev > t.status.state {
                return Err(format!("task {} went {prev} -> {}", t.id(), t.status.state));
            }
        }
        // No live task sits on a node that may not hold it (constraints, drain, Down).
        if is_live(t) && !t.node_id.is_empty() {
            let node = w.store.node(&t.node_id);
            if !eligible::may_keep(&t.spec, node) {
                return Err(format!(
                    "task {} ({}) is live on node {} that may not hold it: {:?}",
                    t.id(),
                    t.name,
                    t.node_id,
                    node.map(|n| (&n.status.state, &n.spec.availability, &n.spec.labels))
                ));
            }
        }
    }
    for s in w.store.services() {
        let tasks: Vec<_> = w.store.tasks_of_service(s.id()).collect();
        // Never more tasks that may run in a slot than the update order allows.
        let mut per_slot: BTreeMap<SlotKey, usize> = BTreeMap::new();
        for t in &tasks {
            let lost = w
                .store
                .node(&t.node_id)
                .is_some_and(|n| n.status.state == Some(NodeState::Down));
            if t.desired_state == TaskState::Running
                && t.status.state <= TaskState::Running
                && !lost
            {
                *per_slot.entry(SlotKey::of(t)).or_default() += 1;
            }
        }
        let allowed = slot_allowance(s);
        if let Some((slot, n)) = per_slot.iter().find(|(_, n)| **n > allowed) {
            return Err(format!(
                "service {}: slot {slot:?} has {n} tasks that may run (allowed {allowed})",
                s.name()
            ));
        }
        match s.spec.mode.kind_or_default() {
            Some(ModeKind::Replicated) => {
                let replicas = s.spec.mode.replicas().unwrap_or(1);
                if let Some(t) = tasks.iter().find(|t| is_live(t) && t.slot > replicas) {
                    return Err(format!(
                        "service {}: task {} live in slot {} beyond {replicas} replicas",
                        s.name(),
                        t.id(),
                        t.slot
                    ));
                }
            }
            Some(ModeKind::ReplicatedJob) => {
                let (max, total) = replicated_limits(s);
                let iteration = s.job_status.as_ref().map(|j| j.job_iteration);
                let current = tasks.iter().filter(|t| t.job_iteration == iteration);
                let running = current.clone().filter(|t| is_live(t)).count() as u64;
                let completed = current
                    .filter(|t| t.status.state == TaskState::Complete)
                    .count() as u64;
                if running > max || completed > total {
                    return Err(format!(
                        "job {}: {running} running (max {max}), {completed} completed (total {total})",
                        s.name()
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// What must be true once the cluster has settled with no faults.
pub fn check_converged(w: &World) -> Result<(), String> {
    for s in w.store.services() {
        let tasks: Vec<_> = w.store.tasks_of_service(s.id()).collect();
        let live: Vec<_> = tasks.iter().filter(|t| is_live(t)).collect();
        let not_running: Vec<_> = live
            .iter()
            .filter(|t| {
                t.status.state != TaskState::Running || t.desired_state != TaskState::Running
            })
            .map(|t| (t.name.clone(), t.desired_state, t.status.state))
            .collect();
        let kind = s.spec.mode.kind_or_default();
        if !kind.is_some_and(ModeKind::is_job) && !not_running.is_empty() {
            return Err(format!(
                "service {}: live tasks not running: {not_running:?}",
                s.name()
            ));
        }
        let state = s.update_status.as_ref().and_then(|u| u.state.clone());
        if matches!(
            state,
            Some(UpdateState::Updating) | Some(UpdateState::RollbackStarted)
        ) {
            return Err(format!("service {}: update still {state:?}", s.name()));
        }
        if matches!(
            state,
            None | Some(UpdateState::Completed) | Some(UpdateState::RollbackCompleted)
        ) && !kind.is_some_and(ModeKind::is_job)
        {
            if let Some(t) = live.iter().find(|t| is_dirty(s, t)) {
                return Err(format!(
                    "service {}: task {} out of date after {state:?}",
                    s.name(),
                    t.id()
                ));
            }
        }
        match kind {
            Some(ModeKind::Replicated) => {
                let replicas = s.spec.mode.replicas().unwrap_or(1) as usize;
                if live.len() != replicas {
                    return Err(format!(
                        "service {}: {} running, {replicas} wanted",
                        s.name(),
                        live.len()
                    ));
                }
            }
            Some(ModeKind::Global) => {
                for n in w.store.nodes() {
                    let on = live.iter().filter(|t| t.node_id == n.id()).count();
                    let want = usize::from(eligible::may_start(&s.spec.task_template, n));
                    if on != want {
                        return Err(format!(
                            "global service {}: {on} tasks on node {}, {want} wanted",
                            s.name(),
                            n.id()
                        ));
                    }
                }
            }
            Some(ModeKind::ReplicatedJob) | Some(ModeKind::GlobalJob) if !is_done(&w.store, s) => {
                return Err(format!("job {} not done", s.name()));
            }
            _ => {}
        }
    }
    Ok(())
}
