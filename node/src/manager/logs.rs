//! Cluster-wide logs: the leader's log broker. `service logs` on any manager reads the
//! tasks' logs on every node that ran them, through the agents' sessions (swarmkit's
//! log broker, reduced to what `service logs` and `task logs` need).
//!
//! ```text
//!  client ─▶ any manager ── SubscribeLogs (or directly, on the leader) ──▶ broker
//!  broker ── per node: LogSubscription in that node's session ──▶ agent
//!  agent  ── PublishLogs(batches) ──▶ broker ── the subscription's channel ──▶ client
//!  follow: every new task of the service is subscribed on its node as it appears
//! ```
//!
//! A node without a session (down, gone) is named in a warning, in Docker's words:
//! `warning: incomplete log stream. some logs could not be retrieved for the following
//! reasons: node X is not available`. Without follow, the stream ends once every node
//! asked has sent all it had.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use swarm_core::model::Task;
use tokio::sync::mpsc;

use super::dispatcher::{heartbeat_period, GRACE_PERIODS};
use super::Manager;
use crate::cluster::proto::{LogBatch, LogLine, LogSubscription};

/// One client's subscription, while it reads.
struct Sub {
    tx: mpsc::Sender<LogBatch>,
    follow: bool,
    /// The nodes asked that have not finished yet (without follow).
    pending: BTreeSet<String>,
}

/// The leader's subscriptions, by ID.
#[derive(Default)]
pub struct LogBroker {
    subs: Mutex<HashMap<String, Sub>>,
}

impl LogBroker {
    /// Where a node's batches for `id` go (None: the client went away).
    pub fn sender(&self, id: &str) -> Option<mpsc::Sender<LogBatch>> {
        let subs = self.subs.lock().expect("log broker lock");
        subs.get(id).map(|s| s.tx.clone())
    }

    /// `node` has sent everything it had for `id`; the last one ends the subscription
    /// (without follow).
    pub fn done(&self, id: &str, node: &str) {
        let mut subs = self.subs.lock().expect("log broker lock");
        if let Some(s) = subs.get_mut(id) {
            s.pending.remove(node);
            if !s.follow && s.pending.is_empty() {
                subs.remove(id);
            }
        }
    }

    /// `nodes` are asked for `id` and have not answered yet.
    fn pend<'a>(&self, id: &str, nodes: impl Iterator<Item = &'a String>) {
        let mut subs = self.subs.lock().expect("log broker lock");
        if let Some(s) = subs.get_mut(id) {
            s.pending.extend(nodes.cloned());
        }
    }

    fn forget(&self, id: &str) {
        self.subs.lock().expect("log broker lock").remove(id);
    }
}

/// The warning Docker's log broker gives for what it could not read.
pub fn incomplete(reasons: &[String]) -> String {
    format!(
        "warning: incomplete log stream. some logs could not be retrieved for the following reasons: {}",
        reasons.join(", ")
    )
}

/// On the leader: the logs of `req.service_id`'s tasks (or of `req.task_ids`), from
/// every node that has them, as batches; the receiver ends when everything was sent
/// (without follow) or when this manager stops leading.
pub async fn subscribe(m: &Arc<Manager>, mut req: LogSubscription) -> mpsc::Receiver<LogBatch> {
    let (tx, rx) = mpsc::channel(64);
    req.id = crate::ids::new_id();
    let id = req.id.clone();
    m.log_broker.subs.lock().expect("log broker lock").insert(
        id.clone(),
        Sub {
            tx: tx.clone(),
            follow: req.follow,
            pending: BTreeSet::new(),
        },
    );
    // A node is asked while its session lives: a heartbeat within the dispatcher's grace.
    let grace = m.store.read(heartbeat_period).await * GRACE_PERIODS;
    let mut seen = BTreeSet::new();
    let first = new_tasks(m, &req, &mut seen).await;
    tracing::debug!(subscription = %id, nodes = ?first.keys().collect::<Vec<_>>(), "logs subscribed");
    if first.is_empty() && !req.follow {
        // Nobody to ask: the stream ends here.
        m.log_broker.forget(&id);
        return rx;
    }
    if let Some(w) = ask(m, &req, first, grace) {
        let _ = tx.send(w).await;
    }
    if !req.follow {
        return rx;
    }
    // Follow: new tasks of the service are asked for as they are assigned; the
    // subscription ends when the client goes or leadership does.
    let m = m.clone();
    tokio::spawn(async move {
        let mut applied = m.store.subscribe();
        // A new task's log is read from its beginning.
        let new = LogSubscription {
            tail: -1,
            ..req.clone()
        };
        loop {
            tokio::select! {
                r = applied.changed() => if r.is_err() { break },
                () = tx.closed() => break,
            }
            if !m.store.is_leader() {
                break;
            }
            let fresh = new_tasks(&m, &req, &mut seen).await;
            if fresh.is_empty() {
                continue;
            }
            if let Some(w) = ask(&m, &new, fresh, grace) {
                if tx.send(w).await.is_err() {
                    break;
                }
            }
        }
        m.log_broker.forget(&id);
    });
    rx
}

/// The subscription's tasks assigned to a node and not in `seen` yet (added to it), by
/// node.
async fn new_tasks(
    m: &Manager,
    req: &LogSubscription,
    seen: &mut BTreeSet<String>,
) -> BTreeMap<String, Vec<String>> {
    let by_node = m
        .store
        .read(|s| {
            let mut by_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let wanted = |t: &Task| {
                !t.node_id.is_empty()
                    && !seen.contains(t.id())
                    && if req.service_id.is_empty() {
                        req.task_ids.iter().any(|id| id == t.id())
                    } else {
                        t.service_id == req.service_id
                    }
            };
            for t in s.tasks().filter(|t| wanted(t)) {
                by_node
                    .entry(t.node_id.clone())
                    .or_default()
                    .push(t.id().to_string());
            }
            by_node
        })
        .await;
    seen.extend(by_node.values().flatten().cloned());
    by_node
}

/// Sends each node its part of `req` in its session; what the client is told of the
/// nodes without a live one.
fn ask(
    m: &Manager,
    req: &LogSubscription,
    by_node: BTreeMap<String, Vec<String>>,
    grace: std::time::Duration,
) -> Option<LogBatch> {
    // Every node pending before any can answer, so no early end cuts the others off.
    m.log_broker.pend(&req.id, by_node.keys());
    let mut unavailable = Vec::new();
    for (node, task_ids) in by_node {
        let sub = LogSubscription {
            task_ids: task_ids.clone(),
            service_id: String::new(),
            ..req.clone()
        };
        if !(m.dispatcher.alive(&node, grace) && m.dispatcher.send_logs(&node, sub)) {
            m.log_broker.done(&req.id, &node);
            unavailable.push((node, task_ids));
        }
    }
    warning(req, unavailable)
}

/// What the client is told of the nodes that could not be asked: without follow, one
/// warning that ends its stream (Docker's); with follow, which never ends, a stderr line
/// in each of their tasks' logs, so the docker CLI shows it under the task's prefix.
fn warning(req: &LogSubscription, unavailable: Vec<(String, Vec<String>)>) -> Option<LogBatch> {
    if unavailable.is_empty() {
        return None;
    }
    let reasons: Vec<String> = unavailable
        .iter()
        .map(|(node, _)| format!("node {node} is not available"))
        .collect();
    let text = incomplete(&reasons);
    let mut batch = LogBatch {
        subscription_id: req.id.clone(),
        ..LogBatch::default()
    };
    if req.follow {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        batch.lines = unavailable
            .into_iter()
            .flat_map(|(_, tasks)| tasks)
            .map(|task_id| LogLine {
                task_id,
                time_nanos: now,
                stream: 2,
                line: format!("{text}\n").into_bytes(),
            })
            .collect();
    } else {
        batch.warning = text;
    }
    Some(batch)
}
