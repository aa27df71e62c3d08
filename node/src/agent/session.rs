//! The agent's side of the dispatcher: one session at a time with the leader, over the
//! cluster port's mutual TLS, the manager's own agent included.
//!
//! ```text
//!  loop: dial a manager (the leader it named, else the next known one)
//!        Session ─▶ first message: the full set ─▶ Agent::assign
//!                   increments ─▶ merged into the set ─▶ Agent::assign
//!                   log subscriptions ─▶ agent::logs::publish (PublishLogs)
//!        every period: Heartbeat
//!        reports (batched) ─▶ UpdateTaskStatus; kept and re-sent after a reconnect
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use swarm_identity::{ClusterTls, NodeIdentity, Role};
use tokio::sync::mpsc;

use super::{Agent, Assignment, StatusReport};
use crate::cluster::proto::ca_client::CaClient;
use crate::cluster::proto::dispatcher_client::DispatcherClient;
use crate::cluster::proto::{HeartbeatRequest, RenewRequest, SessionRequest, StatusRequest};
use crate::cluster::LEADER_KEY;

/// Where the agent finds managers, kept across restarts (`<data>/managers.json`).
pub struct Managers {
    path: PathBuf,
    addrs: Vec<String>,
}

impl Managers {
    pub fn load(path: PathBuf, seed: &[String]) -> Managers {
        let mut addrs: Vec<String> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let known = addrs.len();
        for a in seed {
            if !addrs.contains(a) {
                addrs.insert(0, a.clone());
            }
        }
        let m = Managers { path, addrs };
        if m.addrs.len() != known {
            m.save();
        }
        m
    }

    /// The managers known now.
    pub fn addrs(&self) -> &[String] {
        &self.addrs
    }

    fn set(&mut self, addrs: Vec<String>) {
        if addrs.is_empty() || addrs == self.addrs {
            return;
        }
        self.addrs = addrs;
        self.save();
    }

    fn save(&self) {
        if let Ok(b) = serde_json::to_vec(&self.addrs) {
            let tmp = self.path.with_extension("tmp");
            if std::fs::write(&tmp, b).is_ok() {
                let _ = std::fs::rename(&tmp, &self.path);
            }
        }
    }
}

pub struct Session {
    pub agent: Arc<Agent>,
    pub tls: Arc<ClusterTls>,
    /// This node's certificate, renewed through the CA past half its validity and saved
    /// through `sealing`; the live TLS switches to the new one without a restart.
    pub identity: NodeIdentity,
    pub sealing: Arc<crate::certs::Sealing>,
    /// Where a new role's identity goes (the daemon starts or stops the manager half).
    pub role_changes: mpsc::UnboundedSender<NodeIdentity>,
    pub managers: Managers,
    /// This node's description (Docker's NodeDescription) and cluster address.
    pub description: Vec<u8>,
    pub addr: String,
    /// When this session last renewed for a root rotation.
    pub rotation_renewed_at: Option<std::time::Instant>,
}

/// What a session message asks of the node's certificate.
enum Todo {
    Nothing,
    ChangeRole,
    RenewForRotation,
}

/// A rotation renewal the managers have not recorded yet is asked again after this.
const ROTATION_RETRY: Duration = Duration::from_secs(10);

/// How often the agent looks at its certificate's age.
const RENEWAL_CHECK: Duration = Duration::from_secs(60);

enum End {
    /// Try this manager next (a follower named the leader).
    Redirect(String),
    Failed(String),
}

impl Session {
    /// Runs until the process ends.
    pub async fn run(
        mut self,
        reports: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<StatusReport>>>,
    ) {
        // Held for the session's life; released when it is aborted (`swarm leave`).
        let mut reports = reports.lock().await;
        let mut pending: Vec<StatusReport> = Vec::new();
        let mut next: Option<String> = None;
        let mut i = 0usize;
        let mut backoff = Duration::from_millis(100);
        loop {
            let addr = match next.take() {
                Some(a) => a,
                None if self.managers.addrs.is_empty() => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                None => {
                    i += 1;
                    self.managers.addrs[i % self.managers.addrs.len()].clone()
                }
            };
            match self.once(&addr, &mut reports, &mut pending).await {
                End::Redirect(leader) => {
                    tracing::debug!(%addr, %leader, "dispatcher: redirected to the leader");
                    next = Some(leader);
                    continue;
                }
                End::Failed(e) => {
                    tracing::debug!(%addr, "dispatcher session ended: {e}");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    async fn once(
        &mut self,
        addr: &str,
        reports: &mut mpsc::UnboundedReceiver<StatusReport>,
        pending: &mut Vec<StatusReport>,
    ) -> End {
        let channel = match swarm_identity::connect(addr, self.tls.client()).await {
            Ok(c) => c,
            Err(e) => return End::Failed(e.to_string()),
        };
        let ca_channel = channel.clone();
        let mut client = DispatcherClient::new(channel);
        let req = SessionRequest {
            description: self.description.clone(),
            addr: self.addr.clone(),
            protocol: crate::wire::PROTOCOL,
        };
        let mut stream = match client.session(req).await {
            Ok(r) => r.into_inner(),
            Err(st) => return end_of(st),
        };
        let mut set: BTreeMap<String, Assignment> = BTreeMap::new();
        let first = match stream.message().await {
            Ok(Some(m)) => m,
            Ok(None) => return End::Failed("session closed".into()),
            Err(st) => return end_of(st),
        };
        let session_id = first.session_id.clone();
        tracing::info!(manager = addr, session = %session_id, "dispatcher session");
        let mut renew = tokio::time::interval(RENEWAL_CHECK);
        let mut period = Duration::from_millis(first.heartbeat_period_ms.max(100));
        let todo = match self.apply(&mut set, first) {
            Ok(todo) => todo,
            Err(e) => return unusable(addr, e),
        };
        self.follow(todo, &ca_channel).await;
        let mut beat = tokio::time::interval(period);
        beat.tick().await;
        loop {
            if !pending.is_empty() {
                let req = StatusRequest {
                    session_id: session_id.clone(),
                    statuses: pending.iter().map(crate::wire::encode_status).collect(),
                };
                match client.update_task_status(req).await {
                    Ok(_) => pending.clear(),
                    Err(st) => return end_of(st),
                }
            }
            tokio::select! {
                msg = stream.message() => match msg {
                    Ok(Some(mut m)) => {
                        if !m.log_subscriptions.is_empty() {
                            // A message with log subscriptions carries nothing else
                            // (`apply` checks the others' version).
                            if let Err(e) = crate::wire::check_protocol(m.protocol) {
                                return unusable(addr, e);
                            }
                            for sub in std::mem::take(&mut m.log_subscriptions) {
                                super::logs::publish(
                                    self.agent.runtime().clone(),
                                    client.clone(),
                                    session_id.clone(),
                                    sub,
                                );
                            }
                            continue;
                        }
                        let p = Duration::from_millis(m.heartbeat_period_ms.max(100));
                        if p != period {
                            period = p;
                            beat = tokio::time::interval(period);
                            beat.tick().await;
                        }
                        let todo = match self.apply(&mut set, m) {
                            Ok(todo) => todo,
                            Err(e) => return unusable(addr, e),
                        };
                        self.follow(todo, &ca_channel).await;
                    }
                    Ok(None) => return End::Failed("session closed".into()),
                    Err(st) => return end_of(st),
                },
                _ = renew.tick() => {
                    if self.identity.needs_renewal(std::time::SystemTime::now()) {
                        self.renew(&ca_channel).await;
                    }
                }
                _ = beat.tick() => {
                    let req = HeartbeatRequest { session_id: session_id.clone() };
                    if let Err(st) = client.heartbeat(req).await {
                        return end_of(st);
                    }
                }
                r = reports.recv() => {
                    let Some(r) = r else { return End::Failed("agent stopped".into()) };
                    pending.push(r);
                    // A short batch: reports that come together travel together.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    while let Ok(more) = reports.try_recv() {
                        pending.push(more);
                    }
                }
            }
        }
    }

    /// A new certificate for this node's key from the CA, for the role the store gives
    /// it; saved, then served and presented from the next handshake on.
    async fn renew(&mut self, channel: &tonic::transport::Channel) {
        let result = async {
            let key = self.identity.key()?;
            let mut ca = CaClient::new(channel.clone());
            let issued = ca
                .renew_node_certificate(RenewRequest {
                    csr_pem: key.csr_pem()?,
                })
                .await
                .map_err(|st| crate::error::Error::Other(st.message().to_string()))?
                .into_inner();
            let renewed = NodeIdentity::new(issued.cert_pem, key.key_pem(), issued.ca_pem)?;
            self.sealing.save_identity(&renewed)?;
            self.tls.update(&renewed)?;
            Ok::<_, crate::error::Error>(renewed)
        }
        .await;
        match result {
            Ok(renewed) => {
                tracing::info!(role = ?renewed.role, "node certificate renewed");
                self.identity = renewed;
            }
            Err(e) => tracing::warn!("renew the node certificate: {e}"),
        }
    }

    /// What a session message asks of this node's certificate besides its tasks.
    async fn follow(&mut self, todo: Todo, channel: &tonic::transport::Channel) {
        match todo {
            Todo::ChangeRole => self.change_role(channel).await,
            Todo::RenewForRotation => {
                tracing::info!("root CA rotation: renewing this node's certificate");
                self.rotation_renewed_at = Some(std::time::Instant::now());
                self.renew(channel).await;
            }
            Todo::Nothing => {}
        }
    }

    /// The root the managers trust now (a rotation finished): this node trusts it from
    /// the next handshake on, with the certificate it has (issued by the new root's key).
    fn adopt_trust_root(&mut self, root: &str) {
        let result = NodeIdentity::new(
            self.identity.cert_pem.clone(),
            self.identity.key_pem.clone(),
            root.to_string(),
        )
        .map_err(crate::error::Error::from)
        .and_then(|id| {
            self.sealing.save_identity(&id)?;
            self.tls.update(&id)?;
            Ok(id)
        });
        match result {
            Ok(id) => {
                tracing::info!("root CA rotated: this node trusts the new root");
                self.identity = id;
            }
            Err(e) => tracing::warn!("trust the new root CA: {e}"),
        }
    }

    /// Applies a session message; returns what the node's certificate needs: a renewal
    /// for another role (promotion, demotion) or for a root rotation. A message that
    /// does not decode whole changes nothing (the session ends with the error and the
    /// node's containers go on as they were).
    fn apply(
        &mut self,
        set: &mut BTreeMap<String, Assignment>,
        m: crate::cluster::proto::SessionMessage,
    ) -> Result<Todo, crate::wire::WireError> {
        crate::wire::check_protocol(m.protocol)?;
        // Everything decoded before anything is used.
        let list = crate::wire::decode_assignments(m.tasks)?;
        let networks = m
            .node_networks
            .map(crate::wire::decode_networks)
            .transpose()?;
        if !m.trust_root.is_empty() && m.trust_root != self.identity.ca_pem {
            self.adopt_trust_root(&m.trust_root);
        }
        let wanted = match m.role.as_str() {
            "manager" => Some(Role::Manager),
            "worker" => Some(Role::Worker),
            _ => None,
        };
        if let Some(n) = networks {
            self.agent.set_networks(n);
        }
        if m.full {
            set.clear();
        }
        for id in &m.removed {
            set.remove(id);
        }
        for a in list {
            set.insert(a.who.task_id.clone(), a);
        }
        self.managers.set(m.managers);
        self.agent.assign(set.values().cloned().collect());
        Ok(if wanted.is_some_and(|r| r != self.identity.role) {
            Todo::ChangeRole
        } else if m.renew_certificate
            && self
                .rotation_renewed_at
                .is_none_or(|at| at.elapsed() > ROTATION_RETRY)
        {
            Todo::RenewForRotation
        } else {
            Todo::Nothing
        })
    }

    /// The role changed: a certificate for the new role, then the daemon switches the
    /// manager half on or off.
    async fn change_role(&mut self, channel: &tonic::transport::Channel) {
        let before = self.identity.role;
        self.renew(channel).await;
        if self.identity.role != before {
            tracing::info!(role = ?self.identity.role, "node role changed");
            let _ = self.role_changes.send(self.identity.clone());
        }
    }
}

/// A message this node cannot use: the session ends, and what runs goes on.
fn unusable(addr: &str, e: crate::wire::WireError) -> End {
    tracing::error!(
        manager = addr,
        "unusable message from the dispatcher, session ended, containers kept: {e}"
    );
    End::Failed(e.to_string())
}

fn end_of(st: tonic::Status) -> End {
    if st.code() == tonic::Code::PermissionDenied {
        tracing::error!("the managers refuse this node: {}", st.message());
    }
    if let Some(leader) = st.metadata().get(LEADER_KEY).and_then(|v| v.to_str().ok()) {
        return End::Redirect(leader.to_string());
    }
    End::Failed(st.to_string())
}
