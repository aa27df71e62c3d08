//! Jobs: replicated-job and global-job services run their tasks to completion.
//!
//! ```text
//! reconcile(view, service, now)
//!   0. iteration   JobStatus missing ──> iteration 0; a task of the current iteration
//!                  made from another spec (`service update`, `--force`) ──> iteration+1,
//!                  LastExecution = now; live tasks of older iterations ──> REMOVE
//!   1. complete    tasks observed COMPLETE ──> desired COMPLETE (done, never restarted)
//!   2. restart     failed tasks, per the restart policy, in the same slot / on the node
//!   3. fill        replicated: new slots while running < MaxConcurrent and
//!                              completed + running < TotalCompletions
//!                  global:     every node that may start a task and has none this
//!                              iteration (nodes that join later too)
//!   4. start delayed, reap
//! ```
//!
//! A slot is *settled* when its last task of the iteration completed, or failed and
//! the restart policy gives up on it; the job is done when every slot is settled. Job
//! tasks are made desired RUNNING (what the agents run) and moved to desired COMPLETE
//! once they complete, where swarmkit makes them desired COMPLETE from the start.
//! There are no rolling updates: a new spec is a new iteration.

use chrono::{DateTime, Utc};

use super::eligible;
use super::global::{
    delete_stopped_of_removed_nodes, finish, shut_down_off_nodes, startable_nodes,
};
use super::history;
use super::plan::Plan;
use super::restart::{self, is_stopped, should_restart};
use super::slot::{SlotKey, Working};
use super::task::{is_dirty, is_live, new_task};
use super::view::ClusterView;
use crate::model::{JobStatus, ModeKind, Service, Version};
use crate::state::TaskState;

/// Where a slot stands in the current iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotProgress {
    /// No task of this iteration, or its last one ended and will be restarted.
    Free,
    /// A live task (running, or waiting to).
    Running,
    Completed,
    /// Failed and the restart policy gives up.
    GaveUp,
}

/// Decides the writes that run a job service's current iteration to completion.
pub fn reconcile(view: &dyn ClusterView, original: &Service, now: DateTime<Utc>) -> Plan {
    let mut service = original.clone();
    let global = service.spec.mode.kind_or_default() == Some(ModeKind::GlobalJob);
    let mut ws = Working::new(view.tasks_of_service(service.id()).into_iter().filter(|t| {
        if global {
            t.slot == 0 && !t.node_id.is_empty()
        } else {
            t.slot > 0
        }
    }));

    let iteration = iterate(&ws, &mut service, now);
    retire_old_iterations(&mut ws, view, iteration);
    mark_completed(&mut ws);
    if global {
        shut_down_off_nodes(&mut ws, view, &service);
    }
    restart::restart_ended(&mut ws, view, &service, now);
    if global {
        for slot in startable_nodes(view, &service) {
            if progress(&ws, &slot, iteration) == SlotProgress::Free {
                create(&mut ws, &service, &slot, now);
            }
        }
        delete_stopped_of_removed_nodes(&mut ws, view);
    } else {
        fill_replicated(&mut ws, &service, iteration, now);
    }
    let mut plan = Plan::default();
    restart::start_delayed(&mut ws, view, now, &mut plan);
    history::reap(&mut ws, view, history::retention(view, &service));
    finish(plan, original, service, ws)
}

/// Step 0: the current iteration, starting a new one when the spec changed.
fn iterate(ws: &Working, service: &mut Service, now: DateTime<Utc>) -> Version {
    let current = service.job_status.as_ref().map(|j| j.job_iteration);
    let stale = current.is_some_and(|current| {
        ws.all()
            .any(|t| t.job_iteration == Some(current) && is_dirty(service, t))
    });
    match (current, stale) {
        (Some(current), false) => current,
        (current, _) => {
            let next = current.map_or(Version::new(0), |c| Version::new(c.index + 1));
            service.job_status = Some(JobStatus {
                job_iteration: next,
                last_execution: now,
            });
            next
        }
    }
}

/// Tasks of older iterations: the live ones REMOVE, deleted once stopped.
fn retire_old_iterations(ws: &mut Working, view: &dyn ClusterView, iteration: Version) {
    let old: Vec<(String, bool)> = ws
        .all()
        .filter(|t| t.job_iteration != Some(iteration))
        .filter(|t| is_live(t) || t.desired_state == TaskState::Remove)
        .map(|t| (t.id().to_string(), is_stopped(view, t)))
        .collect();
    for (id, stopped) in old {
        ws.set_desired(&id, TaskState::Remove);
        if stopped {
            ws.delete(&id);
        }
    }
}

/// Step 1: a task that completed is done: desired COMPLETE.
fn mark_completed(ws: &mut Working) {
    let done: Vec<String> = ws
        .all()
        .filter(|t| is_live(t) && t.status.state == TaskState::Complete)
        .map(|t| t.id().to_string())
        .collect();
    for id in done {
        ws.set_desired(&id, TaskState::Complete);
    }
}

/// Where `slot` stands in `iteration`.
pub fn progress(ws: &Working, slot: &SlotKey, iteration: Version) -> SlotProgress {
    let tasks: Vec<_> = ws
        .slot(slot)
        .into_iter()
        .filter(|t| t.job_iteration == Some(iteration))
        .collect();
    if tasks.iter().any(|t| is_live(t)) {
        return SlotProgress::Running;
    }
    match tasks.last() {
        None => SlotProgress::Free,
        Some(t) if t.status.state == TaskState::Complete => SlotProgress::Completed,
        Some(t) if t.desired_state == TaskState::Shutdown && !should_restart(t, &tasks) => {
            SlotProgress::GaveUp
        }
        Some(_) => SlotProgress::Free,
    }
}

/// `(MaxConcurrent, TotalCompletions)` with Docker's defaults: 1, and MaxConcurrent.
pub fn replicated_limits(service: &Service) -> (u64, u64) {
    let job = service.spec.mode.replicated_job.as_ref();
    let max = job.and_then(|j| j.max_concurrent).unwrap_or(1);
    let total = job.and_then(|j| j.total_completions).unwrap_or(max);
    (max, total)
}

/// Step 3 (replicated): new tasks in the lowest free slots, while fewer than
/// MaxConcurrent run and the completions wanted are not all running or done.
fn fill_replicated(ws: &mut Working, service: &Service, iteration: Version, now: DateTime<Utc>) {
    let (max, total) = replicated_limits(service);
    let slots: Vec<(u64, SlotProgress)> = (1..=total)
        .map(|n| (n, progress(ws, &SlotKey::Replica(n), iteration)))
        .collect();
    let running = slots
        .iter()
        .filter(|(_, p)| *p == SlotProgress::Running)
        .count() as u64;
    let free: Vec<u64> = slots
        .iter()
        .filter(|(_, p)| *p == SlotProgress::Free)
        .map(|(n, _)| *n)
        .collect();
    let room = max.saturating_sub(running);
    for n in free
        .into_iter()
        .take(usize::try_from(room).unwrap_or(usize::MAX))
    {
        create(ws, service, &SlotKey::Replica(n), now);
    }
}

fn create(ws: &mut Working, service: &Service, slot: &SlotKey, now: DateTime<Utc>) {
    let id = ws.new_id(service.id(), service.meta.version.index, slot, now);
    ws.create(new_task(service, slot, id, TaskState::Running, now));
}

/// Whether the job's current iteration is done: every slot completed or given up (a
/// global job: every node that may run it).
pub fn is_done(view: &dyn ClusterView, service: &Service) -> bool {
    let Some(iteration) = service.job_status.as_ref().map(|j| j.job_iteration) else {
        return false;
    };
    let ws = Working::new(view.tasks_of_service(service.id()));
    let settled = |slot: &SlotKey| {
        matches!(
            progress(&ws, slot, iteration),
            SlotProgress::Completed | SlotProgress::GaveUp
        )
    };
    if service.spec.mode.kind_or_default() == Some(ModeKind::GlobalJob) {
        view.nodes()
            .into_iter()
            .filter(|n| eligible::may_start(&service.spec.task_template, n))
            .all(|n| settled(&SlotKey::Node(n.id().to_string())))
    } else {
        let (_, total) = replicated_limits(service);
        (1..=total).all(|n| settled(&SlotKey::Replica(n)))
    }
}
