//! The scheduler: gives each PENDING task a node.
//!
//! ```text
//! schedule(view, now)
//!   Cluster::build: nodes by ID, what their tasks hold (resources, host ports, counts)
//!   tasks PENDING, no node, desired <= RUNNING ──group_pending──> groups (service,
//!                                                   resources, placement), oldest first
//!     └─ for each group: place_group
//!          filters once per node ──> Tree (spread levels, heaps of fitting nodes)
//!          ──fill──> Assign{task, node} ... | NoSuitableNode{task, explanation}
//! decisions_to_actions(view, decisions, now) ──> [StoreAction::AssignTask | SetTaskStatus]
//! ```
//!
//! Ranking, as swarmkit: spread preferences first (even counts of the service's tasks
//! per label value), then the node with the fewest tasks of the service, then the
//! fewest tasks, then the lowest node ID (so a plan is deterministic). Each placement
//! counts at once, so one pass spreads a whole batch. A task with no node keeps its
//! explanation in `Status.Err` and is looked at again on the next pass (run on any
//! change to nodes or tasks), not by polling. A pass costs about O(groups × nodes +
//! tasks × log nodes).

pub mod cluster;
pub mod constraint;
pub mod filter;
pub mod group;
pub mod node_info;
pub mod pipeline;
pub mod place;
pub mod spread;

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod scale;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::model::Task;
use crate::orchestrator::ClusterView;
use crate::state::TaskState;
use crate::store::{task_status, StoreAction};
use cluster::Cluster;

/// Docker's message for an assigned task.
pub const ASSIGNED_MESSAGE: &str = "scheduler assigned task to node";

/// What the scheduler decided for one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The task goes to the node (state ASSIGNED, `NodeID` set).
    Assign { task_id: String, node_id: String },
    /// No node fits; `explanation` is the whole `Status.Err`, e.g.
    /// `no suitable node (insufficient resources on 1 node)`.
    NoSuitableNode {
        task_id: String,
        explanation: String,
    },
}

/// A task waiting for a node.
pub fn is_schedulable(task: &Task) -> bool {
    task.status.state == TaskState::Pending
        && task.node_id.is_empty()
        && task.desired_state <= TaskState::Running
}

/// A task made for its node (global modes), waiting for the scheduler to confirm it fits.
pub fn is_preassigned(task: &Task) -> bool {
    task.status.state == TaskState::Pending
        && !task.node_id.is_empty()
        && task.desired_state <= TaskState::Running
}

/// Decides a node for every task waiting for one: groups in the order of their oldest
/// task, the tasks of a group oldest first.
pub fn schedule(view: &dyn ClusterView, _now: DateTime<Utc>) -> Vec<Decision> {
    let tasks = view.tasks();
    let mut cluster = Cluster::build(view, &tasks);
    let mut decisions = Vec::new();
    // Tasks made for their node first, oldest first, as swarmkit does.
    let mut preassigned: Vec<&Task> = tasks
        .iter()
        .copied()
        .filter(|t| is_preassigned(t))
        .collect();
    preassigned.sort_by(|a, b| (a.meta.created_at, a.id()).cmp(&(b.meta.created_at, b.id())));
    for t in preassigned {
        place::confirm_preassigned(&mut cluster, t, &mut decisions);
    }
    let pending: Vec<&Task> = tasks.into_iter().filter(|t| is_schedulable(t)).collect();
    decisions.reserve(pending.len());
    let groups = group::group_pending(pending, |id| cluster.service(id));
    for g in &groups {
        place::place_group(&mut cluster, g, &mut decisions);
    }
    decisions
}

/// The store writes for a pass's decisions: an assigned task moves to ASSIGNED on its
/// node; an unplaced task gets its explanation in `Status.Err` (only when it changed,
/// so an unchanged cluster gives no writes).
pub fn decisions_to_actions(
    view: &dyn ClusterView,
    decisions: &[Decision],
    now: DateTime<Utc>,
) -> Vec<StoreAction> {
    // Only unplaced tasks need their current status; look just those up.
    let unplaced: HashSet<&str> = decisions
        .iter()
        .filter_map(|d| match d {
            Decision::NoSuitableNode { task_id, .. } => Some(task_id.as_str()),
            Decision::Assign { .. } => None,
        })
        .collect();
    let by_id: HashMap<&str, &Task> = if unplaced.is_empty() {
        HashMap::new()
    } else {
        view.tasks()
            .into_iter()
            .filter(|t| unplaced.contains(t.id()))
            .map(|t| (t.id(), t))
            .collect()
    };
    let mut actions = Vec::with_capacity(decisions.len());
    for d in decisions {
        match d {
            Decision::Assign { task_id, node_id } => actions.push(StoreAction::AssignTask {
                id: task_id.clone(),
                node_id: node_id.clone(),
                status: task_status(TaskState::Assigned, ASSIGNED_MESSAGE, now),
            }),
            Decision::NoSuitableNode {
                task_id,
                explanation,
            } => {
                let Some(t) = by_id.get(task_id.as_str()) else {
                    continue;
                };
                if t.status.err == *explanation {
                    continue;
                }
                let mut status = t.status.clone();
                status.err = explanation.clone();
                status.timestamp = now;
                actions.push(StoreAction::SetTaskStatus {
                    id: task_id.clone(),
                    status,
                });
            }
        }
    }
    actions
}
