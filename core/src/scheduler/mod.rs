//! The scheduler: gives each PENDING task a node.
//!
//! ```text
//! schedule(view, now)
//!   tasks PENDING, no node, desired <= RUNNING (oldest first)
//!     └─ for each: nodes ──pipeline (filters)──> fits ──rank──> Assign{task, node}
//!                                   └─ none fits ──> NoSuitableNode{task, explanation}
//! decisions_to_actions(view, decisions, now) ──> [StoreAction::UpdateTask]
//! ```
//!
//! Ranking spreads: the node with the fewest tasks of the task's service, then the
//! fewest tasks, then the lowest node ID (so a plan is deterministic). Each placement
//! counts at once, so one pass spreads a whole batch. A task with no node keeps its
//! explanation in `Status.Err` and is looked at again on the next pass (run on any
//! change to nodes or tasks), not by polling.

pub mod constraint;
pub mod filter;
pub mod node_info;
pub mod pipeline;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::model::Task;
use crate::orchestrator::ClusterView;
use crate::state::TaskState;
use crate::store::{task_status, StoreAction};
use node_info::{holds_resources, NodeInfo};
use pipeline::Pipeline;

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

/// Decides a node for every task waiting for one.
pub fn schedule(view: &dyn ClusterView, _now: DateTime<Utc>) -> Vec<Decision> {
    let mut nodes: Vec<NodeInfo<'_>> = {
        let mut ns = view.nodes();
        ns.sort_by(|a, b| a.id().cmp(b.id()));
        ns.into_iter().map(NodeInfo::new).collect()
    };
    let index: BTreeMap<String, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.node.id().to_string(), i))
        .collect();
    let tasks = view.tasks();
    for t in tasks.iter().filter(|t| holds_resources(t)) {
        if let Some(&i) = index.get(&t.node_id) {
            nodes[i].add_task(t);
        }
    }

    let mut pending: Vec<&Task> = tasks.into_iter().filter(|t| is_schedulable(t)).collect();
    pending.sort_by(|a, b| (a.meta.created_at, a.id()).cmp(&(b.meta.created_at, b.id())));

    let mut decisions = Vec::with_capacity(pending.len());
    for task in pending {
        let mut pipeline = Pipeline::for_task(task);
        let best = (0..nodes.len())
            .filter(|&i| pipeline.process(&nodes[i]))
            .min_by_key(|&i| {
                let n = &nodes[i];
                (n.active_of_service(&task.service_id), n.active_tasks, i)
            });
        match best {
            Some(i) => {
                nodes[i].add_task(task);
                decisions.push(Decision::Assign {
                    task_id: task.id().to_string(),
                    node_id: nodes[i].node.id().to_string(),
                });
            }
            None => {
                let why = pipeline.explain();
                let explanation = if why.is_empty() {
                    "no suitable node".to_string()
                } else {
                    format!("no suitable node ({why})")
                };
                decisions.push(Decision::NoSuitableNode {
                    task_id: task.id().to_string(),
                    explanation,
                });
            }
        }
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
    let tasks = view.tasks();
    let by_id: BTreeMap<&str, &Task> = tasks.iter().map(|t| (t.id(), *t)).collect();
    let mut actions = Vec::new();
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
