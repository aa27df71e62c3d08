//! Rolling update and rollback: replace the tasks made from an older spec, a batch of
//! `Parallelism` slots at a time, and record the progress in `UpdateStatus`.
//!
//! ```text
//!             dirty slots
//!   (none) ───────────────> updating ──all slots new, running, monitored──> completed
//!                              │ a new task failed (ratio exceeded)
//!          FailureAction:      ├─ pause ────> paused
//!                              ├─ continue ─> (keep going)
//!                              └─ rollback ─> rollback_started (Spec := PreviousSpec)
//!   API `service rollback` ──> rollback_started ──────────────> rollback_completed
//!                              └─ failure ──> rollback_paused
//! ```
//!
//! A slot is *dirty* when its task was made from another task template than the
//! service's (an image change, `--force`). A slot is *in flight* from the moment its
//! replacement is made until that replacement has been RUNNING for `Delay` (swarmkit's
//! worker waits so long before taking the next slot); at most `Parallelism` slots are
//! in flight (0: all at once). Stop-first makes the replacement in READY and starts it
//! once the old task stopped; start-first starts it at once and shuts the old task
//! down when the new one runs. After the last batch, the update completes once every
//! replacement has run for `Monitor` (`Delay + 1s` when the delay is longer).
//!
//! The updater keeps no memory: a replacement is a task of the current spec created at
//! or after `UpdateStatus.StartedAt` in a slot whose history holds another spec. A
//! failure is such a task ending COMPLETE, FAILED or REJECTED before it ran, or within
//! `Monitor` of its first RUNNING report (`Task.RunningSince`, kept by the store), as
//! swarmkit's updater watches each task it started for `Monitor` and no longer.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::plan::Plan;
use super::slot::{SlotKey, Working};
use super::task::{add, is_dirty, nanos, new_task, until};
use crate::model::{
    FailureAction, Service, Task, UpdateConfig, UpdateOrder, UpdateState, UpdateStatus,
};
use crate::state::TaskState;

/// Docker's default monitor window.
pub const DEFAULT_MONITOR: Duration = Duration::from_secs(5);

/// An `UpdateConfig` (or `RollbackConfig`) with Docker's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdatePolicy {
    /// Slots replaced at once; 0: all.
    pub parallelism: u64,
    pub delay: Duration,
    pub failure_action: FailureAction,
    pub monitor: Duration,
    pub max_failure_ratio: f64,
    pub order: UpdateOrder,
}

impl UpdatePolicy {
    /// Without a config: parallelism 1, no delay, pause on failure, monitor 5 s,
    /// stop-first. A config's zero `Monitor` means the default.
    pub fn of(config: Option<&UpdateConfig>) -> Self {
        let Some(c) = config else {
            return UpdatePolicy {
                parallelism: 1,
                delay: Duration::ZERO,
                failure_action: FailureAction::Pause,
                monitor: DEFAULT_MONITOR,
                max_failure_ratio: 0.0,
                order: UpdateOrder::StopFirst,
            };
        };
        UpdatePolicy {
            parallelism: c.parallelism,
            delay: nanos(c.delay),
            failure_action: c.failure_action.clone().unwrap_or(FailureAction::Pause),
            monitor: if c.monitor > 0 {
                nanos(c.monitor)
            } else {
                DEFAULT_MONITOR
            },
            max_failure_ratio: c.max_failure_ratio,
            order: c.order.clone().unwrap_or(UpdateOrder::StopFirst),
        }
    }

    /// How long after the last batch settles the update still watches for failures.
    fn monitor_window(&self) -> Duration {
        if self.delay >= self.monitor {
            self.delay + Duration::from_secs(1)
        } else {
            self.monitor
        }
    }
}

/// Docker's messages.
pub const MSG_IN_PROGRESS: &str = "update in progress";
pub const MSG_COMPLETED: &str = "update completed";
pub const MSG_ROLLBACK_COMPLETED: &str = "rollback completed";

fn msg_paused(task: &str) -> String {
    format!("update paused due to failure or early termination of task {task}")
}
fn msg_rollback_paused(task: &str) -> String {
    format!("rollback paused due to failure or early termination of task {task}")
}
fn msg_rolled_back(task: &str) -> String {
    format!("update rolled back due to failure or early termination of task {task}")
}

/// Start-first: once a slot's replacement runs, shut down the tasks it replaces.
pub fn finish_start_first(ws: &mut Working, service: &Service) {
    for slot in ws.slots() {
        let live = ws.live(&slot);
        if live.len() < 2 {
            continue;
        }
        let replacement_runs = live
            .iter()
            .any(|t| !is_dirty(service, t) && t.status.state == TaskState::Running);
        if !replacement_runs {
            continue;
        }
        let old: Vec<String> = live
            .iter()
            .filter(|t| is_dirty(service, t))
            .map(|t| t.id().to_string())
            .collect();
        for id in old {
            ws.set_desired(&id, TaskState::Shutdown);
        }
    }
}

/// What one slot looks like to the updater.
struct SlotState {
    slot: SlotKey,
    dirty: bool,
    /// Replaced during this update: the live task is new, the history holds another spec.
    touched: bool,
    /// When the replacement has run for `Delay` (None: it does not run yet).
    settles_at: Option<DateTime<Utc>>,
    /// More than one live task (start-first, the old one not yet stopped).
    crowded: bool,
}

fn slot_state(
    ws: &Working,
    service: &Service,
    slot: &SlotKey,
    started: Option<DateTime<Utc>>,
    delay: Duration,
) -> SlotState {
    let tasks = ws.slot(slot);
    let live: Vec<&Task> = ws.live(slot);
    let newest = tasks.last().copied();
    let dirty = live.len() > 1
        || live.iter().any(|t| is_dirty(service, t))
        || (live.is_empty() && newest.is_some_and(|t| is_dirty(service, t)));
    let current = live.iter().rev().find(|t| !is_dirty(service, t)).copied();
    let touched = match (current, started) {
        (Some(t), Some(started)) => {
            t.meta.created_at >= started && tasks.iter().any(|h| is_dirty(service, h))
        }
        _ => false,
    };
    let settles_at = current
        .filter(|t| t.status.state == TaskState::Running)
        .map(|t| add(t.status.timestamp, delay));
    SlotState {
        slot: slot.clone(),
        dirty,
        touched,
        settles_at,
        crowded: live.len() > 1,
    }
}

/// Step 4: advance the rolling update (or rollback) of `service` over `slots` (the
/// slots the service keeps after scaling). Changes to `UpdateStatus` (and, on an
/// automatic rollback, the spec) are made on `service`.
pub fn roll(
    ws: &mut Working,
    service: &mut Service,
    slots: &[SlotKey],
    now: DateTime<Utc>,
    plan: &mut Plan,
) {
    finish_start_first(ws, service);

    let state = service.update_status.as_ref().and_then(|s| s.state.clone());
    if matches!(
        state,
        Some(UpdateState::Paused) | Some(UpdateState::RollbackPaused)
    ) {
        return;
    }
    let rollback = state == Some(UpdateState::RollbackStarted);
    let in_progress = matches!(
        state,
        Some(UpdateState::Updating) | Some(UpdateState::RollbackStarted)
    );
    let policy = UpdatePolicy::of(if rollback {
        service.spec.rollback_config.as_ref()
    } else {
        service.spec.update_config.as_ref()
    });
    let started = if in_progress {
        service.update_status.as_ref().and_then(|s| s.started_at)
    } else {
        None
    };

    let states: Vec<SlotState> = slots
        .iter()
        .map(|s| slot_state(ws, service, s, started, policy.delay))
        .collect();
    let in_flight =
        |s: &SlotState| s.touched && (s.crowded || s.settles_at.is_none_or(|at| at > now));
    let dirty: Vec<SlotKey> = states
        .iter()
        .filter(|s| s.dirty && !in_flight(s))
        .map(|s| s.slot.clone())
        .collect();
    let flying = states.iter().filter(|s| in_flight(s)).count();

    if dirty.is_empty() && flying == 0 {
        if !in_progress {
            return; // a pure scale, or nothing to do: UpdateStatus untouched
        }
        if fail(ws, service, slots.len(), started, &policy, rollback, plan) {
            return;
        }
        let done_at = states
            .iter()
            .filter(|s| s.touched)
            .filter_map(|s| s.settles_at)
            .max()
            .map(|at| add(at, policy.monitor_window()));
        match done_at.and_then(|at| until(now, at)) {
            Some(left) => plan.requeue(left),
            None => complete(service, rollback, now),
        }
        return;
    }

    if !in_progress {
        if dirty.is_empty() {
            return;
        }
        service.update_status = Some(UpdateStatus {
            state: Some(UpdateState::Updating),
            started_at: Some(now),
            completed_at: None,
            message: MSG_IN_PROGRESS.to_string(),
        });
    } else if fail(ws, service, slots.len(), started, &policy, rollback, plan) {
        return;
    }

    for s in states.iter().filter(|s| in_flight(s)) {
        if let Some(left) = s.settles_at.and_then(|at| until(now, at)) {
            plan.requeue(left);
        }
    }
    let free = if policy.parallelism == 0 {
        usize::MAX
    } else {
        usize::try_from(policy.parallelism)
            .unwrap_or(usize::MAX)
            .saturating_sub(flying)
    };
    for slot in dirty.into_iter().take(free) {
        replace(ws, service, &slot, &policy.order, now);
    }
}

/// Makes the replacement of one slot.
fn replace(
    ws: &mut Working,
    service: &Service,
    slot: &SlotKey,
    order: &UpdateOrder,
    now: DateTime<Utc>,
) {
    let live: Vec<String> = ws.live(slot).iter().map(|t| t.id().to_string()).collect();
    let desired = if live.is_empty() {
        TaskState::Running
    } else if *order == UpdateOrder::StartFirst {
        // The slot may still hold two tasks (a start-first replacement of an earlier
        // update, not yet running): keep one serving, the newest running one, so the
        // slot never holds more than two.
        let tasks = ws.live(slot);
        let serving = tasks
            .iter()
            .rev()
            .find(|t| t.status.state == TaskState::Running)
            .or(tasks.last())
            .map(|t| t.id().to_string());
        for id in live.iter().filter(|id| Some(*id) != serving.as_ref()) {
            ws.set_desired(id, TaskState::Shutdown);
        }
        TaskState::Running
    } else {
        for id in &live {
            ws.set_desired(id, TaskState::Shutdown);
        }
        TaskState::Ready
    };
    let id = ws.new_id(service.id(), service.meta.version.index, slot, now);
    ws.create(new_task(service, slot, id, desired, now));
}

/// Applies the failure action if the update's failures exceed the ratio; true when the
/// update stops here (paused or rolled back).
fn fail(
    ws: &Working,
    service: &mut Service,
    slots: usize,
    started: Option<DateTime<Utc>>,
    policy: &UpdatePolicy,
    rollback: bool,
    plan: &mut Plan,
) -> bool {
    let Some(started) = started else {
        return false;
    };
    let mut failed: Vec<&Task> = ws
        .all()
        .filter(|t| {
            !is_dirty(service, t)
                && t.meta.created_at >= started
                && t.running_since
                    .is_none_or(|since| t.status.timestamp <= add(since, policy.monitor))
                && matches!(
                    t.status.state,
                    TaskState::Complete | TaskState::Failed | TaskState::Rejected
                )
                && ws
                    .slot(&SlotKey::of(t))
                    .iter()
                    .any(|h| is_dirty(service, h))
        })
        .collect();
    if failed.is_empty()
        || (failed.len() as f64) / (slots.max(1) as f64) <= policy.max_failure_ratio
    {
        return false;
    }
    failed.sort_by_key(|t| (t.status.timestamp, t.id().to_string()));
    let first = failed[0].id().to_string();
    let status = service
        .update_status
        .get_or_insert_with(UpdateStatus::default);
    match policy.failure_action {
        FailureAction::Continue => false,
        FailureAction::Rollback if rollback => {
            status.state = Some(UpdateState::RollbackPaused);
            status.message = msg_rollback_paused(&first);
            true
        }
        FailureAction::Rollback if service.previous_spec.is_some() => {
            status.state = Some(UpdateState::RollbackStarted);
            status.message = msg_rolled_back(&first);
            let previous = service.previous_spec.take().unwrap_or_default();
            service.spec = previous;
            service.spec_version = None;
            plan.requeue(Duration::ZERO);
            true
        }
        // Pause, an unknown action, or a rollback with nothing to roll back to.
        _ => {
            status.state = Some(if rollback {
                UpdateState::RollbackPaused
            } else {
                UpdateState::Paused
            });
            status.message = msg_paused(&first);
            true
        }
    }
}

fn complete(service: &mut Service, rollback: bool, now: DateTime<Utc>) {
    let status = service
        .update_status
        .get_or_insert_with(UpdateStatus::default);
    if rollback {
        status.state = Some(UpdateState::RollbackCompleted);
        status.message = MSG_ROLLBACK_COMPLETED.to_string();
    } else {
        status.state = Some(UpdateState::Completed);
        status.message = MSG_COMPLETED.to_string();
    }
    status.completed_at = Some(now);
}
