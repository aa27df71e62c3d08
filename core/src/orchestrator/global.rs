//! The global orchestrator: one task on every node that may run the service.
//!
//! ```text
//! reconcile(view, service, now)
//!   1. off     live tasks on nodes that may no longer keep them (Down, drained,
//!              constraints or platform no longer met, node removed) ──> SHUTDOWN
//!   2. restart ended tasks, the replacement on the same node      (restart.rs)
//!   3. fill    every node that may start a task and has none: a new task, ASSIGNED
//!              to the node (no scheduler pass, as swarmkit does)
//!   4. update, start delayed, reap                                  (update.rs, ...)
//! ```
//!
//! A slot here is a node (`Slot` 0, `NodeID` set). A node that leaves keeps its
//! tasks' history until the node object is removed; then its stopped tasks are deleted.
//! Resources are not checked: a global task is not placed, it belongs to its node.

use chrono::{DateTime, Utc};

use super::eligible;
use super::history;
use super::plan::{Plan, StoreAction};
use super::replicated::done;
use super::restart;
use super::slot::{SlotKey, Working};
use super::task::{is_live, new_task};
use super::update;
use super::view::ClusterView;
use crate::model::Service;
use crate::state::TaskState;
use crate::store::Object;

/// Decides the writes that bring a global service's tasks to one per eligible node.
pub fn reconcile(view: &dyn ClusterView, original: &Service, now: DateTime<Utc>) -> Plan {
    let mut service = original.clone();
    let mut plan = Plan::default();
    let mut ws = Working::new(
        view.tasks_of_service(service.id())
            .into_iter()
            .filter(|t| t.slot == 0 && !t.node_id.is_empty()),
    );

    shut_down_off_nodes(&mut ws, view, &service);
    restart::restart_ended(&mut ws, view, &service, now);
    let kept = fill_nodes(&mut ws, view, &service, now);
    update::roll(&mut ws, &mut service, &kept, now, &mut plan);
    restart::start_delayed(&mut ws, view, now, &mut plan);
    history::reap(&mut ws, view, history::retention(view, &service));

    finish(plan, original, service, ws)
}

/// The plan: the service's own change first, then the tasks'.
pub fn finish(mut plan: Plan, original: &Service, service: Service, ws: Working) -> Plan {
    if service != *original {
        plan.actions
            .push(StoreAction::Update(Object::Service(Box::new(service))));
    }
    plan.actions.extend(ws.into_actions());
    plan
}

/// Step 1: live tasks on nodes that may no longer keep them are shut down, not
/// replaced.
pub fn shut_down_off_nodes(ws: &mut Working, view: &dyn ClusterView, service: &Service) {
    let off: Vec<String> = ws
        .all()
        .filter(|t| {
            is_live(t) && !eligible::may_keep(&service.spec.task_template, view.node(&t.node_id))
        })
        .map(|t| t.id().to_string())
        .collect();
    for id in off {
        ws.set_desired(&id, TaskState::Shutdown);
    }
}

/// The nodes that may start a new task of the service, by ID.
pub fn startable_nodes(view: &dyn ClusterView, service: &Service) -> Vec<SlotKey> {
    let mut nodes: Vec<SlotKey> = view
        .nodes()
        .into_iter()
        .filter(|n| eligible::may_start(&service.spec.task_template, n))
        .map(|n| SlotKey::Node(n.id().to_string()))
        .collect();
    nodes.sort_unstable();
    nodes
}

/// Step 3: a task for every node that may start one and holds none; the stopped tasks
/// of removed nodes deleted. Returns the nodes holding a task (the update's slots).
fn fill_nodes(
    ws: &mut Working,
    view: &dyn ClusterView,
    service: &Service,
    now: DateTime<Utc>,
) -> Vec<SlotKey> {
    let mut kept: Vec<SlotKey> = ws
        .slots()
        .into_iter()
        .filter(|s| !ws.live(s).is_empty() || done(ws, s))
        .collect();
    for slot in startable_nodes(view, service) {
        if kept.contains(&slot) {
            continue;
        }
        let id = ws.new_id(service.id(), service.meta.version.index, &slot, now);
        ws.create(new_task(service, &slot, id, TaskState::Running, now));
        kept.push(slot);
    }
    kept.sort_unstable();
    delete_stopped_of_removed_nodes(ws, view);
    kept
}

/// A removed node's tasks are gone with it: delete them once they no longer run.
pub fn delete_stopped_of_removed_nodes(ws: &mut Working, view: &dyn ClusterView) {
    let gone: Vec<String> = ws
        .all()
        .filter(|t| view.node(&t.node_id).is_none() && !is_live(t))
        .map(|t| t.id().to_string())
        .collect();
    for id in gone {
        ws.delete(&id);
    }
}
