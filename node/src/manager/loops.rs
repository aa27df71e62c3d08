//! The leader's loops and the local dispatcher.
//!
//! ```text
//!   applied index changed ─┐
//!   requeue_after elapsed ─┴─▶ reconcile ─▶ propose ─▶ assignments of this node ─▶ agent
//!   agent StatusReports ─▶ batch ─▶ forward-only task status updates ─▶ propose
//! ```
//!
//! Level-triggered: each pass reads the whole store, so a restarted manager needs no
//! memory of what it did before.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;

use super::model::{ContainerStatus, TaskState, TaskStatus};
use super::orchestrator::{reconcile, Plan};
use super::store::Action;
use super::Manager;
use crate::agent::{Agent, Assignment, Desired, StatusReport, TaskIdentity, TaskSpecView};

/// Run the loops until the process ends.
pub fn spawn(m: Arc<Manager>, agent: Arc<Agent>, reports: mpsc::UnboundedReceiver<StatusReport>) {
    tokio::spawn(leader_loop(m.clone(), agent));
    tokio::spawn(status_loop(m, reports));
}

async fn leader_loop(m: Arc<Manager>, agent: Arc<Agent>) {
    let mut applied = m.store.subscribe();
    loop {
        applied.borrow_and_update();
        // Only the leader orchestrates; a follower's store follows the leader's plans.
        let plan = if m.store.is_leader() {
            m.store.read(|t| reconcile(t, Utc::now())).await
        } else {
            Plan::default()
        };
        if !plan.actions.is_empty() {
            if let Err(e) = m.propose(plan.actions).await {
                tracing::error!("propose the orchestrator's plan: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        agent.assign(assignments(&m).await);
        let wait = plan.requeue_after.unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            r = applied.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// The tasks this node runs, as the agent sees them.
async fn assignments(m: &Manager) -> Vec<Assignment> {
    m.store
        .read(|t| {
            t.tasks
                .values()
                .filter(|x| x.node_id == m.node_id && x.status.state >= TaskState::Assigned)
                .map(|x| Assignment {
                    who: TaskIdentity {
                        task_id: x.id.clone(),
                        service_id: x.service_id.clone(),
                        service_name: t
                            .services
                            .get(&x.service_id)
                            .map(|s| s.name().to_string())
                            .unwrap_or_default(),
                        node_id: x.node_id.clone(),
                        slot: x.slot,
                    },
                    spec: serde_json::from_value::<TaskSpecView>(x.spec.clone())
                        .unwrap_or_default(),
                    desired: match x.desired_state {
                        d if d <= TaskState::Running => Desired::Running,
                        TaskState::Remove => Desired::Remove,
                        _ => Desired::Shutdown,
                    },
                })
                .collect()
        })
        .await
}

async fn status_loop(m: Arc<Manager>, mut reports: mpsc::UnboundedReceiver<StatusReport>) {
    while let Some(first) = reports.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = reports.try_recv() {
            batch.push(more);
        }
        let actions = m
            .store
            .read(|t| {
                let mut updated: std::collections::BTreeMap<String, super::model::Task> =
                    Default::default();
                for r in batch {
                    let Some(task) = updated.get(&r.task_id).or_else(|| t.tasks.get(&r.task_id))
                    else {
                        continue;
                    };
                    let Some(state) = TaskState::parse(r.state.as_str()) else {
                        continue;
                    };
                    // Observed state never moves backwards.
                    if state <= task.status.state {
                        continue;
                    }
                    let mut task = task.clone();
                    let mut cs = task
                        .status
                        .container_status
                        .clone()
                        .unwrap_or(ContainerStatus {
                            container_id: task.id.clone(),
                            pid: 0,
                            exit_code: 0,
                        });
                    if let Some(pid) = r.pid {
                        cs.pid = pid as i64;
                    }
                    if let Some(code) = r.exit_code {
                        cs.exit_code = code as i64;
                        cs.pid = 0;
                    }
                    task.status = TaskStatus {
                        timestamp: r.timestamp,
                        state,
                        message: r.message,
                        err: r.err,
                        container_status: (state >= TaskState::Starting).then_some(cs),
                    };
                    task.updated_at = r.timestamp;
                    updated.insert(task.id.clone(), task);
                }
                updated
                    .into_values()
                    .map(Action::PutTask)
                    .collect::<Vec<_>>()
            })
            .await;
        if let Err(e) = m.propose(actions).await {
            tracing::error!("propose task status updates: {e}");
        }
    }
}
