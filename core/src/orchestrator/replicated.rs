//! The replicated orchestrator: `replicas` slots, each with one task.
//!
//! ```text
//! reconcile(view, service_id, now)
//!   service gone ──> every task desired REMOVE; stopped ones deleted
//!   otherwise    ──> restart ─> scale ─> update ─> start delayed ─> reap ─> Plan
//! ```
//!
//! Scaling: a slot is *kept* while it has a live task, or while its last task ended
//! and the restart policy gives up on it (a job done, `--restart-condition none`,
//! max attempts reached: Docker does not refill such a slot). Scale up fills the
//! lowest free slot numbers; scale down removes the highest kept slots (their tasks
//! desired REMOVE, deleted once stopped, as Docker's task reaper does).

use chrono::{DateTime, Utc};

use super::history;
use super::plan::{Plan, StoreAction};
use super::restart;
use super::slot::{SlotKey, Working};
use super::task::{is_live, new_task};
use super::update;
use super::view::ClusterView;
use crate::model::{ModeKind, Service};
use crate::state::TaskState;
use crate::store::Object;

/// Decides the writes that bring a replicated service's tasks to what its spec asks
/// for at `now` (see [`super::reconcile`], which dispatches by mode).
pub fn reconcile(view: &dyn ClusterView, original: &Service, now: DateTime<Utc>) -> Plan {
    let service_id = original.id();
    let Some(replicas) = original.spec.mode.replicas() else {
        return Plan::default();
    };
    debug_assert_eq!(
        original.spec.mode.kind_or_default(),
        Some(ModeKind::Replicated)
    );

    let mut service = original.clone();
    let mut plan = Plan::default();
    let mut ws = Working::new(
        view.tasks_of_service(service_id)
            .into_iter()
            .filter(|t| t.slot > 0),
    );

    restart::restart_ended(&mut ws, view, &service, now);
    let kept = scale(&mut ws, view, &service, replicas, now);
    update::roll(&mut ws, &mut service, &kept, now, &mut plan);
    // An automatic rollback restores the previous spec, replicas included.
    if let Some(rolled_back) = service.spec.mode.replicas().filter(|&r| r != replicas) {
        scale(&mut ws, view, &service, rolled_back, now);
    }
    restart::start_delayed(&mut ws, view, now, &mut plan);
    history::reap(&mut ws, view, history::retention(view, &service));

    if service != *original {
        plan.actions
            .push(StoreAction::Update(Object::Service(Box::new(service))));
    }
    plan.actions.extend(ws.into_actions());
    plan
}

/// Whether a slot without a live task is kept: its last task ended and will not be
/// restarted.
pub fn done(ws: &Working, slot: &SlotKey) -> bool {
    let tasks = ws.slot(slot);
    let Some(last) = tasks.last() else {
        return false;
    };
    !is_live(last)
        && last.desired_state == TaskState::Shutdown
        && !restart::should_restart(last, &tasks)
}

/// Step 3: add tasks to free slots up to `replicas`, remove the highest slots beyond;
/// delete the stopped tasks of slots that are gone. Returns the kept slots.
fn scale(
    ws: &mut Working,
    view: &dyn ClusterView,
    service: &Service,
    replicas: u64,
    now: DateTime<Utc>,
) -> Vec<SlotKey> {
    let mut kept: Vec<SlotKey> = ws
        .slots()
        .into_iter()
        .filter(|s| !ws.live(s).is_empty() || done(ws, s))
        .collect();
    let want = usize::try_from(replicas).unwrap_or(usize::MAX);
    if kept.len() > want {
        for slot in kept.split_off(want) {
            let ids: Vec<String> = ws.slot(&slot).iter().map(|t| t.id().to_string()).collect();
            for id in ids {
                ws.set_desired(&id, TaskState::Remove);
            }
        }
    } else {
        let mut n = 0;
        while kept.len() < want {
            n += 1;
            let slot = SlotKey::Replica(n);
            if kept.contains(&slot) {
                continue;
            }
            let id = ws.new_id(service.id(), service.meta.version.index, &slot, now);
            ws.create(new_task(service, &slot, id, TaskState::Running, now));
            kept.push(slot);
        }
        kept.sort_unstable();
    }
    // Slots no longer kept: their tasks go once they no longer run.
    delete_stopped_outside(ws, view, &kept);
    kept
}

/// Deletes the stopped tasks of every slot not in `kept`.
pub fn delete_stopped_outside(ws: &mut Working, view: &dyn ClusterView, kept: &[SlotKey]) {
    for slot in ws.slots() {
        if kept.contains(&slot) {
            continue;
        }
        let stopped: Vec<String> = ws
            .slot(&slot)
            .iter()
            .filter(|t| !is_live(t) && restart::is_stopped(view, t))
            .map(|t| t.id().to_string())
            .collect();
        for id in stopped {
            ws.delete(&id);
        }
    }
}

/// The service is gone: every task desired REMOVE, the stopped ones deleted.
pub fn remove_service_tasks(view: &dyn ClusterView, service_id: &str) -> Plan {
    let mut ws = Working::new(view.tasks_of_service(service_id));
    let ids: Vec<String> = ws.all().map(|t| t.id().to_string()).collect();
    for id in &ids {
        ws.set_desired(id, TaskState::Remove);
        if ws.get(id).is_some_and(|t| restart::is_stopped(view, t)) {
            ws.delete(id);
        }
    }
    Plan {
        actions: ws.into_actions(),
        requeue_after: None,
    }
}
