//! The restart policy: when a slot's task ends (or its node is Down or drained), whether
//! and when the slot gets a new task.
//!
//! ```text
//! task ended ──> desired SHUTDOWN ──should_restart?──no──> slot is done (kept as history)
//!                                        │yes
//!                                        v
//!                 replacement, same slot, desired READY ──delay passed and
//!                                                         old task stopped──> RUNNING
//! ```
//!
//! Docker's defaults: condition `any`, delay 5 s, max attempts 0 (unlimited), window 0
//! (forever). Restarts are counted from the store, not from memory, so a new leader
//! counts the same: the restarts of a slot are its tasks made from the same spec, less
//! the first. (The history reaper keeps `max_attempts + 1` tasks per slot for this, as
//! swarmkit's does.)

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::plan::Plan;
use super::slot::Working;
use super::task::{add, is_live, nanos, new_task, node_lost, until};
use super::view::ClusterView;
use crate::model::{Node, NodeState, RestartCondition, Service, Task, TaskSpec};
use crate::state::TaskState;

/// Docker's default restart delay.
pub const DEFAULT_DELAY: Duration = Duration::from_secs(5);

/// A task spec's restart policy with Docker's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartPolicy {
    pub condition: RestartCondition,
    pub delay: Duration,
    /// 0: unlimited.
    pub max_attempts: u64,
    /// Zero: count every restart.
    pub window: Duration,
}

impl RestartPolicy {
    pub fn of(spec: &TaskSpec) -> Self {
        let p = spec.restart_policy.as_ref();
        RestartPolicy {
            condition: p
                .and_then(|p| p.condition.clone())
                .unwrap_or(RestartCondition::Any),
            delay: p.and_then(|p| p.delay).map(nanos).unwrap_or(DEFAULT_DELAY),
            max_attempts: p.and_then(|p| p.max_attempts).unwrap_or(0),
            window: p.and_then(|p| p.window).map(nanos).unwrap_or_default(),
        }
    }
}

/// A live task that must be replaced: it ended, or its node is gone, Down or drained.
/// A node no longer meeting the task's constraints counts as drained.
pub fn needs_restart(view: &dyn ClusterView, task: &Task) -> bool {
    is_live(task)
        && (task.status.state > TaskState::Running
            || (!task.node_id.is_empty()
                && !super::eligible::may_keep(&task.spec, view.node(&task.node_id))))
}

/// Whether the policy allows another task in the ended task's slot.
pub fn should_restart(task: &Task, slot: &[&Task]) -> bool {
    let policy = RestartPolicy::of(&task.spec);
    if task.job_iteration.is_some() && task.status.state == TaskState::Complete {
        return false; // a job's task that completed is done, whatever the condition
    }
    match policy.condition {
        RestartCondition::None => return false,
        RestartCondition::OnFailure if task.status.state == TaskState::Complete => return false,
        _ => {}
    }
    if policy.max_attempts == 0 {
        return true;
    }
    restarts_counted(task, slot, policy.window) < policy.max_attempts
}

/// The restarts that count against `max_attempts` when `task` ended: the slot's tasks
/// made from the same spec, except the first, created within `window` before the end.
fn restarts_counted(task: &Task, slot: &[&Task], window: Duration) -> u64 {
    let mut same: Vec<&&Task> = slot.iter().filter(|t| t.spec == task.spec).collect();
    same.sort_by_key(|t| (t.meta.created_at, t.id().to_string()));
    let restarts = same.iter().skip(1);
    if window.is_zero() {
        return restarts.count() as u64;
    }
    let end = task.status.timestamp;
    let lookback = end - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    restarts
        .filter(|t| t.meta.created_at > lookback && t.meta.created_at <= end)
        .count() as u64
}

/// Whether a task no longer runs (or never will): it ended, it never reached a node and
/// is not wanted, or its node is lost.
pub fn is_stopped(view: &dyn ClusterView, task: &Task) -> bool {
    task.status.state > TaskState::Running
        || (task.status.state < TaskState::Assigned && !is_live(task))
        || (!task.node_id.is_empty() && node_lost(view.node(&task.node_id)))
}

/// Step 1: shut down the slot's ended tasks and give the slot a replacement when the
/// policy says so (unless another live task already holds the slot).
pub fn restart_ended(
    ws: &mut Working,
    view: &dyn ClusterView,
    service: &Service,
    now: DateTime<Utc>,
) {
    for slot in ws.slots() {
        let ended: Vec<Task> = ws
            .live(&slot)
            .into_iter()
            .filter(|t| needs_restart(view, t))
            .cloned()
            .collect();
        for task in ended {
            ws.set_desired(task.id(), TaskState::Shutdown);
            if !ws.live(&slot).is_empty() || !should_restart(&task, &ws.slot(&slot)) {
                continue;
            }
            let node = view.node(&task.node_id);
            let delay = if moved_off(&task, node) {
                Duration::ZERO
            } else {
                RestartPolicy::of(&service.spec.task_template).delay
            };
            let wait_stop = !(node_lost(node)
                || task.status.state > TaskState::Running
                || task.node_id.is_empty());
            let desired = if delay.is_zero() && !wait_stop {
                TaskState::Running
            } else {
                TaskState::Ready
            };
            let id = ws.new_id(service.id(), service.meta.version.index, &slot, now);
            ws.create(new_task(service, &slot, id, desired, now));
        }
    }
}

/// Step 2: start the replacements that wait in READY once every other task of their
/// slot has stopped and their delay has passed; requeue for the delays still running.
pub fn start_delayed(
    ws: &mut Working,
    view: &dyn ClusterView,
    now: DateTime<Utc>,
    plan: &mut Plan,
) {
    for slot in ws.slots() {
        let tasks = ws.slot(&slot);
        let mut start = Vec::new();
        for t in &tasks {
            if t.desired_state != TaskState::Ready {
                continue;
            }
            let others_stopped = tasks
                .iter()
                .filter(|o| o.id() != t.id())
                .all(|o| is_stopped(view, o));
            if !others_stopped {
                continue; // the old task's stop is a store change: reconcile runs again
            }
            let delay = start_delay(view, t, predecessor(&tasks, t));
            match until(now, add(t.meta.created_at, delay)) {
                None => start.push(t.id().to_string()),
                Some(left) => plan.requeue(left),
            }
        }
        for id in start {
            ws.set_desired(&id, TaskState::Running);
        }
    }
}

/// The task a replacement follows: the newest other task created no later than it (of
/// tasks created at the same instant, one of another spec counts as the newer).
fn predecessor<'a>(tasks: &[&'a Task], task: &Task) -> Option<&'a Task> {
    tasks
        .iter()
        .filter(|o| o.id() != task.id() && o.meta.created_at <= task.meta.created_at)
        .max_by_key(|o| (o.meta.created_at, o.spec != task.spec, o.id().to_string()))
        .copied()
}

/// Whether the task leaves a node that is up but no longer takes it (drained, or its
/// labels no longer meet the constraints): a move, not a restart, so no delay.
fn moved_off(task: &Task, node: Option<&Node>) -> bool {
    node.is_some_and(|n| {
        n.status.state != Some(NodeState::Down) && !super::eligible::may_keep(&task.spec, Some(n))
    })
}

/// A restart waits the policy's delay; an update's replacement (its predecessor had
/// another spec) and a task moved off a drained node start at once.
fn start_delay(view: &dyn ClusterView, task: &Task, predecessor: Option<&Task>) -> Duration {
    let Some(prev) = predecessor else {
        return Duration::ZERO;
    };
    if prev.spec != task.spec || moved_off(prev, view.node(&prev.node_id)) {
        Duration::ZERO
    } else {
        RestartPolicy::of(&task.spec).delay
    }
}
