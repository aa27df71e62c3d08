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
//! reasons: node X is not available`. Beyond Docker (moby#37336), the last lines of its
//! tasks that ended (the tail their node sent with the final status, kept in the store)
//! come before the warning. Without follow, the stream ends once every node asked has
//! sent all it had.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use swarm_core::model::{TailLine, Task};
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
    let (first, tails) = new_tasks(m, &req, &mut seen).await;
    tracing::debug!(subscription = %id, nodes = ?first.keys().collect::<Vec<_>>(), "logs subscribed");
    if first.is_empty() && !req.follow {
        // Nobody to ask: the stream ends here.
        m.log_broker.forget(&id);
        return rx;
    }
    if let Some(w) = ask(m, &req, first, &tails, grace) {
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
            let (fresh, tails) = new_tasks(&m, &req, &mut seen).await;
            if fresh.is_empty() {
                continue;
            }
            if let Some(w) = ask(&m, &new, fresh, &tails, grace) {
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
/// node; and the kept last lines of those that ended.
async fn new_tasks(
    m: &Manager,
    req: &LogSubscription,
    seen: &mut BTreeSet<String>,
) -> (BTreeMap<String, Vec<String>>, Tails) {
    let (by_node, tails) = m
        .store
        .read(|s| {
            let mut by_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut tails = Tails::new();
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
                if !t.status.log_tail.is_empty() {
                    tails.insert(t.id().to_string(), t.status.log_tail.clone());
                }
            }
            (by_node, tails)
        })
        .await;
    seen.extend(by_node.values().flatten().cloned());
    (by_node, tails)
}

/// Tasks' kept last lines, by task ID.
type Tails = HashMap<String, Vec<TailLine>>;

/// What `req` asks of a task's kept lines: those since `since_nanos`, the last `tail`.
fn kept_lines(req: &LogSubscription, task_id: &str, kept: &[TailLine]) -> Vec<LogLine> {
    let lines: Vec<LogLine> = kept
        .iter()
        .map(|l| LogLine {
            task_id: task_id.to_string(),
            time_nanos: l.time.timestamp_nanos_opt().unwrap_or_default(),
            stream: l.stream,
            line: l.line.clone().into_bytes(),
        })
        .filter(|l| l.time_nanos >= req.since_nanos)
        .collect();
    let skip = usize::try_from(req.tail).map_or(0, |tail| lines.len().saturating_sub(tail));
    lines.into_iter().skip(skip).collect()
}

/// Sends each node its part of `req` in its session; what the client is told of the
/// nodes without a live one.
fn ask(
    m: &Manager,
    req: &LogSubscription,
    by_node: BTreeMap<String, Vec<String>>,
    tails: &Tails,
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
    warning(req, unavailable, tails)
}

/// What the client is told of the nodes that could not be asked: their tasks' kept last
/// lines, then, without follow, one warning that ends its stream (Docker's); with
/// follow, which never ends, a stderr line in each of their tasks' logs, so the docker
/// CLI shows it under the task's prefix.
fn warning(
    req: &LogSubscription,
    unavailable: Vec<(String, Vec<String>)>,
    tails: &Tails,
) -> Option<LogBatch> {
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
        lines: unavailable
            .iter()
            .flat_map(|(_, tasks)| tasks)
            .filter_map(|t| tails.get(t).map(|kept| kept_lines(req, t, kept)))
            .flatten()
            .collect(),
        ..LogBatch::default()
    };
    if req.follow {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        batch.lines.extend(
            unavailable
                .into_iter()
                .flat_map(|(_, tasks)| tasks)
                .map(|task_id| LogLine {
                    task_id,
                    time_nanos: now,
                    stream: 2,
                    line: format!("{text}\n").into_bytes(),
                }),
        );
    } else {
        batch.warning = text;
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn kept() -> Vec<TailLine> {
        (1..=5)
            .map(|i| TailLine {
                time: DateTime::<Utc>::from_timestamp_nanos(i * 1000),
                stream: if i == 3 { 2 } else { 1 },
                line: format!("line {i}\n"),
            })
            .collect()
    }

    fn texts(lines: &[LogLine]) -> Vec<String> {
        lines
            .iter()
            .map(|l| String::from_utf8_lossy(&l.line).trim().to_string())
            .collect()
    }

    #[test]
    fn an_unavailable_nodes_ended_tasks_give_their_kept_lines_then_the_warning() {
        let req = LogSubscription {
            id: "sub".into(),
            tail: -1,
            ..LogSubscription::default()
        };
        let tails: Tails = [("t1".to_string(), kept())].into_iter().collect();
        let unavailable = vec![("n2".to_string(), vec!["t1".to_string(), "t2".to_string()])];
        let b = warning(&req, unavailable.clone(), &tails).unwrap();
        assert_eq!(
            texts(&b.lines),
            ["line 1", "line 2", "line 3", "line 4", "line 5"]
        );
        assert_eq!(b.lines[2].stream, 2);
        assert!(b.lines.iter().all(|l| l.task_id == "t1"));
        assert_eq!(
            b.warning,
            "warning: incomplete log stream. some logs could not be retrieved for the following reasons: node n2 is not available"
        );
        // --tail 2 --since (after line 1): the last two of those since.
        let req = LogSubscription {
            tail: 2,
            since_nanos: 2000,
            ..req
        };
        assert_eq!(
            texts(&warning(&req, unavailable.clone(), &tails).unwrap().lines),
            ["line 4", "line 5"]
        );
        // Follow: the kept lines, then the warning line in each task's log.
        let req = LogSubscription {
            follow: true,
            tail: 1,
            ..req
        };
        let b = warning(&req, unavailable, &tails).unwrap();
        assert_eq!(texts(&b.lines)[0], "line 5");
        assert_eq!(b.lines.len(), 3);
        assert!(b.warning.is_empty());
    }
}
