//! The dispatcher: every agent's session with the leader.
//!
//! ```text
//!  agent ── Session ──▶ leader: node Ready, stream: full set of assignments, then increments
//!        ── Heartbeat (every period) ──▶ last seen
//!        ── UpdateTaskStatus (batched reports) ──▶ SetTaskStatus ─▶ propose
//!  node status loop (leader): no heartbeat within 3 periods ─▶ node Down "heartbeat failure"
//!  log subscriptions (manager::logs) ─▶ the session's stream; PublishLogs ─▶ the broker
//! ```
//!
//! Node status is published by level: a node with a live session is made Ready whatever
//! the store says (an agent reconnecting after a leader change is Ready at once); a node
//! without one is Down once the grace has passed since this manager started leading.
//! A non-leader answers `Unavailable` with the leader's address in the `swarm-leader`
//! metadata, and the agent dials that.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use swarm_core::model::{NodeState, NodeStatus};
use swarm_core::store::{Store as CoreStore, StoreAction};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::loops::{assignments, status_actions};
use super::Manager;
use crate::agent::{Assignment, StatusReport};
use crate::cluster::proto::dispatcher_server::Dispatcher as DispatcherApi;
use crate::cluster::proto::{
    Empty, HeartbeatRequest, HeartbeatResponse, LogBatch, LogSubscription, SessionMessage,
    SessionRequest, StatusRequest,
};
use crate::cluster::{caller, LEADER_KEY};

/// Swarm's default heartbeat period.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);
/// A node is Down after this many periods without a heartbeat (swarmkit's multiplier).
pub const GRACE_PERIODS: u32 = 3;

struct Session {
    id: String,
    last_beat: Instant,
    /// Log subscriptions for this node, sent in its stream.
    logs: mpsc::UnboundedSender<LogSubscription>,
}

/// The sessions this manager holds, by node ID.
#[derive(Default)]
pub struct Dispatcher {
    sessions: Mutex<HashMap<String, Session>>,
    leading_since: Mutex<Option<Instant>>,
}

impl Dispatcher {
    fn register(&self, node_id: &str) -> (String, mpsc::UnboundedReceiver<LogSubscription>) {
        let id = crate::ids::new_id();
        let (logs, rx) = mpsc::unbounded_channel();
        let mut s = self.sessions.lock().expect("sessions lock");
        s.insert(
            node_id.to_string(),
            Session {
                id: id.clone(),
                last_beat: Instant::now(),
                logs,
            },
        );
        (id, rx)
    }

    /// Sends `sub` to the node in its session; false when it has none (or it ended).
    pub fn send_logs(&self, node_id: &str, sub: LogSubscription) -> bool {
        let s = self.sessions.lock().expect("sessions lock");
        s.get(node_id).is_some_and(|x| x.logs.send(sub).is_ok())
    }

    /// The node of a live session, after recording its heartbeat.
    fn beat(&self, session_id: &str) -> Option<String> {
        let mut s = self.sessions.lock().expect("sessions lock");
        let (node, session) = s.iter_mut().find(|(_, x)| x.id == session_id)?;
        session.last_beat = Instant::now();
        Some(node.clone())
    }

    fn node_of(&self, session_id: &str) -> Option<String> {
        let s = self.sessions.lock().expect("sessions lock");
        s.iter()
            .find(|(_, x)| x.id == session_id)
            .map(|(n, _)| n.clone())
    }

    fn is_current(&self, node_id: &str, session_id: &str) -> bool {
        let s = self.sessions.lock().expect("sessions lock");
        s.get(node_id).is_some_and(|x| x.id == session_id)
    }

    pub fn alive(&self, node_id: &str, grace: Duration) -> bool {
        let s = self.sessions.lock().expect("sessions lock");
        s.get(node_id)
            .is_some_and(|x| x.last_beat.elapsed() <= grace)
    }

    /// How many agents hold a session (`/metrics`).
    pub fn session_count(&self) -> usize {
        self.sessions.lock().expect("sessions lock").len()
    }

    fn forget_all(&self) {
        self.sessions.lock().expect("sessions lock").clear();
    }
}

/// The heartbeat period the swarm's spec sets.
pub fn heartbeat_period(s: &CoreStore) -> Duration {
    s.cluster()
        .map(|c| c.cluster.spec.dispatcher.heartbeat_period)
        .filter(|&ns| ns > 0)
        .map_or(DEFAULT_HEARTBEAT, |ns| Duration::from_nanos(ns as u64))
}

/// The managers' cluster addresses, for agents to reconnect to.
pub fn manager_addrs(s: &CoreStore) -> Vec<String> {
    s.nodes()
        .filter_map(|n| n.manager_status.as_ref())
        .map(|m| m.addr.clone())
        .filter(|a| !a.is_empty())
        .collect()
}

pub struct DispatcherService {
    pub m: Arc<Manager>,
}

impl DispatcherService {
    fn leading(&self) -> Result<(), Status> {
        if self.m.store.is_leader() {
            return Ok(());
        }
        let mut st = Status::unavailable("this manager is not the leader");
        if let Some(addr) = self.m.store.leader_addr() {
            if let Ok(v) = addr.parse() {
                st.metadata_mut().insert(LEADER_KEY, v);
            }
        }
        Err(st)
    }
}

#[tonic::async_trait]
impl DispatcherApi for DispatcherService {
    type SessionStream = ReceiverStream<Result<SessionMessage, Status>>;

    async fn session(
        &self,
        req: Request<SessionRequest>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let who = caller(&req, &self.m.cluster_id)?;
        self.leading()?;
        let protocol = req.get_ref().protocol;
        if protocol != crate::wire::PROTOCOL {
            tracing::warn!(node = %who.node_id, protocol, "refused the session of an agent that speaks another dispatcher protocol");
            return Err(Status::failed_precondition(format!(
                "this manager speaks dispatcher protocol {}, the agent speaks {protocol}: upgrade the node",
                crate::wire::PROTOCOL
            )));
        }
        let remote_ip = swarm_identity::peer_info(&req)
            .map(|p| p.remote_addr.ip().to_string())
            .unwrap_or_default();
        let m = self.m.clone();
        let node_id = who.node_id;
        let known = m.store.read(|s| s.node(&node_id).cloned()).await;
        let Some(node) = known else {
            tracing::warn!(node = %node_id, "refused the session of a node not in the swarm (removed)");
            return Err(Status::permission_denied(
                "node is not a member of this swarm (it was removed)",
            ));
        };
        let (session_id, logs) = m.dispatcher.register(&node_id);
        tracing::info!(node = %node_id, session = %session_id, "agent session");
        let addr = if remote_ip.is_empty() {
            node.status.addr.clone()
        } else {
            remote_ip
        };
        set_status(&m, &node_id, NodeState::Ready, "", &addr).await;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(stream_assignments(m, node_id, session_id, logs, tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn heartbeat(
        &self,
        req: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        self.leading()?;
        let sid = req.into_inner().session_id;
        if self.m.dispatcher.beat(&sid).is_none() {
            return Err(Status::not_found("session invalid"));
        }
        let period = self.m.store.read(heartbeat_period).await;
        Ok(Response::new(HeartbeatResponse {
            period_ms: period.as_millis() as u64,
        }))
    }

    async fn update_task_status(
        &self,
        req: Request<StatusRequest>,
    ) -> Result<Response<Empty>, Status> {
        self.leading()?;
        let r = req.into_inner();
        let Some(node_id) = self.m.dispatcher.node_of(&r.session_id) else {
            return Err(Status::not_found("session invalid"));
        };
        let reports: Vec<StatusReport> = r
            .statuses
            .into_iter()
            .map(crate::wire::decode_status)
            .collect::<Result<_, _>>()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let actions = self
            .m
            .store
            .read(|s| {
                // A node reports only on its own tasks.
                let mine: Vec<StatusReport> = reports
                    .into_iter()
                    .filter(|r| s.task(&r.task_id).is_some_and(|t| t.node_id == node_id))
                    .collect();
                status_actions(s, mine)
            })
            .await;
        self.m
            .propose(actions)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(Empty {}))
    }

    async fn publish_logs(
        &self,
        req: Request<tonic::Streaming<LogBatch>>,
    ) -> Result<Response<Empty>, Status> {
        self.leading()?;
        let mut stream = req.into_inner();
        let Some(first) = stream.message().await? else {
            return Ok(Response::new(Empty {}));
        };
        let Some(node) = self.m.dispatcher.node_of(&first.session_id) else {
            return Err(Status::not_found("session invalid"));
        };
        let id = first.subscription_id;
        // The client is gone: the agent's call ends, and its readers with it.
        let Some(tx) = self.m.log_broker.sender(&id) else {
            tracing::debug!(%node, subscription = %id, "logs published after the client went");
            return Ok(Response::new(Empty {}));
        };
        let mut lines = 0;
        loop {
            let batch = tokio::select! {
                b = stream.message() => b,
                () = tx.closed() => break,
            };
            match batch {
                Ok(Some(b)) => {
                    lines += b.lines.len();
                    if tx.send(b).await.is_err() {
                        tracing::debug!(%node, subscription = %id, "logs: the client's channel closed");
                        break;
                    }
                }
                Ok(None) => break,
                Err(st) => {
                    tracing::debug!(%node, subscription = %id, "publish logs: {st}");
                    break;
                }
            }
        }
        drop(tx);
        tracing::debug!(%node, subscription = %id, lines, "logs published");
        self.m.log_broker.done(&id, &node);
        Ok(Response::new(Empty {}))
    }

    type SubscribeLogsStream = ReceiverStream<Result<LogBatch, Status>>;

    async fn subscribe_logs(
        &self,
        req: Request<LogSubscription>,
    ) -> Result<Response<Self::SubscribeLogsStream>, Status> {
        let who = caller(&req, &self.m.cluster_id)?;
        if who.role != swarm_identity::Role::Manager {
            return Err(Status::permission_denied("only managers read logs"));
        }
        self.leading()?;
        let mut logs = super::logs::subscribe(&self.m, req.into_inner()).await;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Some(b) = logs.recv().await {
                if tx.send(Ok(b)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// The session's stream: the full set first, then what changed, on every applied entry.
async fn stream_assignments(
    m: Arc<Manager>,
    node_id: String,
    session_id: String,
    mut logs: mpsc::UnboundedReceiver<LogSubscription>,
    tx: mpsc::Sender<Result<SessionMessage, Status>>,
) {
    let mut applied = m.store.subscribe();
    let mut sent: BTreeMap<String, Assignment> = BTreeMap::new();
    let mut first = true;
    let mut sent_networks: Option<crate::agent::netmap::NodeNetworks> = None;
    let mut last_meta = (0u64, Vec::new(), String::new(), false, String::new());
    loop {
        applied.borrow_and_update();
        if !m.store.is_leader() {
            let _ = tx.send(Err(Status::unavailable("leadership lost"))).await;
            return;
        }
        if !m.dispatcher.is_current(&node_id, &session_id) {
            return;
        }
        let read = m
            .store
            .read(|s| {
                s.node(&node_id).map(|n| {
                    let role = match super::held_role(n) {
                        swarm_core::model::NodeRole::Manager => "manager",
                        _ => "worker",
                    };
                    (
                        (
                            assignments(s, &node_id),
                            super::node_networks::node_networks(s, &node_id),
                        ),
                        heartbeat_period(s).as_millis() as u64,
                        manager_addrs(s),
                        role.to_string(),
                        rotation_issuer(s).is_some_and(|issuer| {
                            n.description.tls_info.cert_issuer_public_key != issuer
                        }),
                        s.cluster()
                            .map(|c| c.cluster.tls_info.trust_root.clone())
                            .unwrap_or_default(),
                    )
                })
            })
            .await;
        let Some(((set, networks), period, managers, role, renew, trust_root)) = read else {
            tracing::warn!(node = %node_id, "node removed: its session ends");
            let _ = tx
                .send(Err(Status::permission_denied(
                    "node is not a member of this swarm (it was removed)",
                )))
                .await;
            return;
        };
        let now: BTreeMap<String, Assignment> = set
            .into_iter()
            .map(|a| (a.who.task_id.clone(), a))
            .collect();
        let changed: Vec<&Assignment> = now
            .iter()
            .filter(|(id, a)| sent.get(*id) != Some(*a))
            .map(|(_, a)| a)
            .collect();
        let removed: Vec<String> = sent
            .keys()
            .filter(|id| !now.contains_key(*id))
            .cloned()
            .collect();
        let meta = (
            period,
            managers.clone(),
            role.clone(),
            renew,
            trust_root.clone(),
        );
        let networks_changed = first || sent_networks.as_ref() != Some(&networks);
        if first
            || !changed.is_empty()
            || !removed.is_empty()
            || meta != last_meta
            || networks_changed
        {
            let tasks = if first {
                now.values().collect::<Vec<_>>()
            } else {
                changed
            };
            let tasks = match tasks
                .into_iter()
                .map(crate::wire::encode_assignment)
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(t) => t,
                Err(e) => {
                    // The session ends rather than send less than the set.
                    tracing::error!("encode the assignments: {e}");
                    return;
                }
            };
            let msg = SessionMessage {
                session_id: session_id.clone(),
                protocol: crate::wire::PROTOCOL,
                full: first,
                tasks,
                removed: if first { Vec::new() } else { removed },
                heartbeat_period_ms: period,
                managers,
                role,
                renew_certificate: renew,
                trust_root,
                node_networks: networks_changed.then(|| crate::wire::encode_networks(&networks)),
                log_subscriptions: Vec::new(),
            };
            if tx.send(Ok(msg)).await.is_err() {
                return;
            }
            first = false;
            last_meta = meta;
            sent = now;
            sent_networks = Some(networks);
        }
        tokio::select! {
            r = applied.changed() => if r.is_err() { return },
            () = tx.closed() => return,
            Some(sub) = logs.recv() => {
                // Log subscriptions only: no assignments, the rest as last sent.
                let mut subs = vec![sub];
                while let Ok(more) = logs.try_recv() {
                    subs.push(more);
                }
                let msg = SessionMessage {
                    session_id: session_id.clone(),
                    protocol: crate::wire::PROTOCOL,
                    heartbeat_period_ms: last_meta.0,
                    log_subscriptions: subs,
                    ..SessionMessage::default()
                };
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
            // Leadership and session checks even when nothing is written.
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// During a root rotation, the issuer key (`TLSInfo.CertIssuerPublicKey`) of the
/// certificates the new root issues; a node whose recorded issuer (written by the CA)
/// differs still has to renew.
pub(crate) fn rotation_issuer(s: &swarm_core::store::Store) -> Option<String> {
    let rotation = s.cluster()?.root_rotation.as_ref()?;
    let next = swarm_identity::RootCa::from_pem(&rotation.ca_cert, None).ok()?;
    Some(super::ca::tls_info("", &next).ok()?.cert_issuer_public_key)
}

async fn set_status(m: &Manager, node_id: &str, state: NodeState, message: &str, addr: &str) {
    let status = NodeStatus {
        state: Some(state),
        message: message.to_string(),
        addr: addr.to_string(),
    };
    let action = StoreAction::SetNodeStatus {
        id: node_id.to_string(),
        status,
    };
    if let Err(e) = m.propose(vec![action]).await {
        tracing::warn!(node = node_id, "set node status: {e}");
    }
}

/// On the leader: nodes without a live session go Down after the grace; nodes with one
/// are Ready. Runs on every manager, acts only while it leads.
pub async fn node_status_loop(m: Arc<Manager>) {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if !m.store.is_leader() {
            *m.dispatcher.leading_since.lock().expect("lock") = None;
            m.dispatcher.forget_all();
            continue;
        }
        let since = *m
            .dispatcher
            .leading_since
            .lock()
            .expect("lock")
            .get_or_insert_with(Instant::now);
        let (period, nodes) = m
            .store
            .read(|s| {
                (
                    heartbeat_period(s),
                    s.nodes()
                        .map(|n| (n.id().to_string(), n.status.clone()))
                        .collect::<Vec<_>>(),
                )
            })
            .await;
        let grace = period * GRACE_PERIODS;
        for (id, status) in nodes {
            let alive = m.dispatcher.alive(&id, grace);
            if alive && status.state != Some(NodeState::Ready) {
                set_status(&m, &id, NodeState::Ready, "", &status.addr).await;
            } else if !alive && since.elapsed() > grace && status.state != Some(NodeState::Down) {
                tracing::warn!(node = %id, "no heartbeat within {grace:?}: node down");
                set_status(&m, &id, NodeState::Down, "heartbeat failure", &status.addr).await;
            }
        }
    }
}
