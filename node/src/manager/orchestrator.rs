//! The leader's reconcile pass, a pure function of the tables and the time:
//! replicated and global orchestration (slots, restart policy), rolling updates,
//! scheduling and the task reaper.
//!
//! Stand-in until `swarm-core`'s orchestrators and scheduler land; same contract:
//! `reconcile(view, now) -> Plan { actions, requeue_after }`, retries as data.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::model::{Service, Task, TaskState, TaskStatus, UpdateStatus, Version};
use super::store::{Action, Tables};

#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Run again after this long even if nothing changes (a restart delay running out).
    pub requeue_after: Option<Duration>,
}

impl Plan {
    fn requeue(&mut self, after: Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(after, |d| d.min(after)));
    }
}

const DEFAULT_RESTART_DELAY: Duration = Duration::from_secs(5);
const DEFAULT_HISTORY: usize = 5;

struct RestartPolicy {
    condition: String,
    delay: Duration,
    max_attempts: u64,
}

fn restart_policy(template: &Value) -> RestartPolicy {
    let p = &template["RestartPolicy"];
    RestartPolicy {
        condition: p["Condition"].as_str().unwrap_or("any").to_string(),
        delay: p["Delay"]
            .as_u64()
            .map(Duration::from_nanos)
            .unwrap_or(DEFAULT_RESTART_DELAY),
        max_attempts: p["MaxAttempts"].as_u64().unwrap_or(0),
    }
}

fn live(t: &Task) -> bool {
    t.desired_state <= TaskState::Running
}

pub fn new_task(s: &Service, slot: u64, node_id: &str, now: DateTime<Utc>) -> Task {
    Task {
        id: crate::ids::new_id(),
        version: Version::default(),
        created_at: now,
        updated_at: now,
        labels: serde_json::json!({}),
        spec: s.template().clone(),
        service_id: s.id.clone(),
        slot,
        node_id: node_id.to_string(),
        status: TaskStatus {
            timestamp: now,
            state: if node_id.is_empty() {
                TaskState::Pending
            } else {
                TaskState::Assigned
            },
            message: if node_id.is_empty() {
                "pending task scheduling".into()
            } else {
                "scheduler assigned task to node".into()
            },
            err: (node_id.is_empty()).then(|| "no suitable node".to_string()),
            container_status: None,
        },
        desired_state: TaskState::Running,
        spec_version: s.version,
    }
}

fn with_desired(t: &Task, d: TaskState, now: DateTime<Utc>) -> Action {
    let mut t = t.clone();
    t.desired_state = d;
    t.updated_at = now;
    Action::PutTask(t)
}

/// The nodes tasks can go to: ready and active.
fn ready_nodes(v: &Tables) -> Vec<String> {
    v.nodes
        .values()
        .filter(|n| n.status["State"] == "ready" && n.spec["Availability"] != "drain")
        .map(|n| n.id.clone())
        .collect()
}

pub fn reconcile(v: &Tables, now: DateTime<Utc>) -> Plan {
    let mut plan = Plan::default();
    let nodes = ready_nodes(v);
    let mut by_service: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
    for t in v.tasks.values() {
        by_service.entry(t.service_id.as_str()).or_default().push(t);
    }
    for s in v.services.values() {
        let tasks = by_service.remove(s.id.as_str()).unwrap_or_default();
        reconcile_service(s, &tasks, &nodes, now, &mut plan);
    }
    // Tasks of removed services: shut down, then reaped.
    for tasks in by_service.values() {
        for t in tasks {
            if t.desired_state < TaskState::Remove {
                plan.actions.push(with_desired(t, TaskState::Remove, now));
            }
        }
    }
    reap(v, &plan.actions.clone(), &mut plan);
    schedule(v, &nodes, now, &mut plan);
    plan
}

fn reconcile_service(
    s: &Service,
    tasks: &[&Task],
    nodes: &[String],
    now: DateTime<Utc>,
    plan: &mut Plan,
) {
    let policy = restart_policy(s.template());
    let parallelism = s.spec["UpdateConfig"]["Parallelism"].as_u64().unwrap_or(1);
    let mut slots: BTreeMap<(u64, String), Vec<&Task>> = BTreeMap::new();
    for t in tasks {
        // Replicated tasks are keyed by slot, global ones by node.
        let key = if t.slot > 0 {
            (t.slot, String::new())
        } else {
            (0, t.node_id.clone())
        };
        slots.entry(key).or_default().push(t);
    }
    let wanted: Vec<(u64, String)> = match s.replicas() {
        Some(n) => (1..=n).map(|i| (i, String::new())).collect(),
        None => nodes.iter().map(|n| (0, n.clone())).collect(),
    };
    let up_to_date = |t: &Task| t.spec == *s.template();
    // The scheduler's choice for a replicated slot: the first ready node (one node now;
    // spreading comes with swarm-core's scheduler).
    let place = |key: &(u64, String)| -> String {
        if key.1.is_empty() {
            nodes.first().cloned().unwrap_or_default()
        } else {
            key.1.clone()
        }
    };
    // Updated tasks not yet running: the rolling update waits for them.
    let mut in_flight = tasks
        .iter()
        .filter(|t| live(t) && up_to_date(t) && t.status.state < TaskState::Running)
        .count() as u64;
    let mut outdated_left = false;
    for key in &wanted {
        let empty = Vec::new();
        let slot_tasks = slots.get(key).unwrap_or(&empty);
        let mut current: Vec<&Task> = slot_tasks.iter().copied().filter(|t| live(t)).collect();
        // A live task that ended: its slot restarts (the policy permitting).
        let mut ended = None;
        current.retain(|t| {
            if t.status.state.is_terminal() {
                plan.actions.push(with_desired(t, TaskState::Shutdown, now));
                ended = Some(*t);
                false
            } else {
                true
            }
        });
        if current.is_empty() {
            let last = ended.or_else(|| slot_tasks.iter().copied().max_by_key(|t| t.created_at));
            if let Some(last) = last.filter(|t| t.status.state.is_terminal()) {
                let restart = match policy.condition.as_str() {
                    "none" => false,
                    "on-failure" => last.status.state != TaskState::Complete,
                    _ => true,
                };
                let attempts = slot_tasks
                    .iter()
                    .filter(|t| t.spec == *s.template() && t.status.state.is_terminal())
                    .count() as u64;
                if !restart || (policy.max_attempts > 0 && attempts >= policy.max_attempts) {
                    continue;
                }
                let since = (now - last.status.timestamp).to_std().unwrap_or_default();
                if since < policy.delay {
                    plan.requeue(policy.delay - since);
                    continue;
                }
            }
            plan.actions
                .push(Action::PutTask(new_task(s, key.0, &place(key), now)));
            in_flight += 1;
            continue;
        }
        for t in current.iter().filter(|t| !up_to_date(t)) {
            outdated_left = true;
            if in_flight < parallelism {
                // stop-first: the old task goes, the new one takes its slot.
                plan.actions.push(with_desired(t, TaskState::Shutdown, now));
                plan.actions
                    .push(Action::PutTask(new_task(s, key.0, &place(key), now)));
                in_flight += 1;
            }
        }
    }
    // Slots (or nodes) no longer wanted: scale down.
    for (key, slot_tasks) in &slots {
        if !wanted.contains(key) {
            for t in slot_tasks.iter().filter(|t| live(t)) {
                plan.actions.push(with_desired(t, TaskState::Remove, now));
            }
        }
    }
    if let Some(us) = &s.update_status {
        let done = !outdated_left && in_flight == 0;
        let next = match us.state.as_str() {
            "updating" if done => Some("completed"),
            "rollback_started" if done => Some("rollback_completed"),
            _ => None,
        };
        if let Some(state) = next {
            let mut s = s.clone();
            s.update_status = Some(UpdateStatus {
                state: state.into(),
                started_at: us.started_at,
                completed_at: Some(now),
                message: if state == "completed" {
                    "update completed".into()
                } else {
                    "rollback completed".into()
                },
            });
            plan.actions.push(Action::PutService(s));
        }
    }
}

/// Delete tasks that are gone for good: removed ones once stopped, and history past the
/// retention limit per slot.
fn reap(v: &Tables, pending: &[Action], plan: &mut Plan) {
    let changed: BTreeMap<&str, &Task> = pending
        .iter()
        .filter_map(|a| match a {
            Action::PutTask(t) => Some((t.id.as_str(), t)),
            _ => None,
        })
        .collect();
    let history = v
        .swarm
        .as_ref()
        .and_then(|s| s.spec["Orchestration"]["TaskHistoryRetentionLimit"].as_u64())
        .map_or(DEFAULT_HISTORY, |n| n as usize);
    let mut per_slot: BTreeMap<(&str, u64, &str), Vec<&Task>> = BTreeMap::new();
    for t in v.tasks.values() {
        let t = changed.get(t.id.as_str()).copied().unwrap_or(t);
        let stopped = t.status.state.is_terminal() || t.node_id.is_empty();
        if t.desired_state == TaskState::Remove && stopped {
            plan.actions.push(Action::DeleteTask(t.id.clone()));
            continue;
        }
        if !live(t) && t.status.state.is_terminal() {
            let node = if t.slot > 0 { "" } else { t.node_id.as_str() };
            per_slot
                .entry((t.service_id.as_str(), t.slot, node))
                .or_default()
                .push(t);
        }
    }
    for old in per_slot.values_mut() {
        if old.len() > history {
            old.sort_by_key(|t| t.created_at);
            let n = old.len() - history;
            for t in &old[..n] {
                plan.actions.push(Action::DeleteTask(t.id.clone()));
            }
        }
    }
}

/// Pending tasks (created before any node was ready) get a node.
fn schedule(v: &Tables, nodes: &[String], now: DateTime<Utc>, plan: &mut Plan) {
    let Some(node) = nodes.first() else { return };
    for t in v.tasks.values() {
        if t.node_id.is_empty() && t.status.state == TaskState::Pending && live(t) {
            let mut t = t.clone();
            t.node_id = node.clone();
            t.status = TaskStatus {
                timestamp: now,
                state: TaskState::Assigned,
                message: "scheduler assigned task to node".into(),
                err: None,
                container_status: None,
            };
            plan.actions.push(Action::PutTask(t));
        }
    }
}
