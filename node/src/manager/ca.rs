//! The CA on the cluster port: the root for anyone, a certificate for a join token.
//!
//! ```text
//!  joiner ── GetRootCaCertificate (no client cert) ──▶ root PEM ── digest checked against the token
//!         ── IssueNodeCertificate(CSR, token) over TLS trusting that root ──▶
//!              token matches the worker or manager token (constant time) ─▶ role
//!              node created in the store (Unknown until its session) ─▶ certificate
//!  node   ── RenewNodeCertificate(CSR) with its certificate ──▶ the role the store gives it
//! ```

use std::sync::Arc;

use swarm_core::model::{
    ManagerStatus, Meta, Node, NodeAvailability, NodeDescription, NodeRole, NodeSpec, NodeState,
    NodeStatus, Reachability,
};
use swarm_core::store::{Object, StoreAction};
use swarm_identity::{JoinToken, Role, RootCa, DEFAULT_NODE_CERT_VALIDITY};
use tonic::{Request, Response, Status};

use super::dispatcher::manager_addrs;
use super::Manager;
use crate::cluster::caller;
use crate::cluster::proto::ca_server::Ca;
use crate::cluster::proto::{Empty, IssueRequest, IssueResponse, RenewRequest, RootCa as RootPem};

/// Docker's answer to a wrong token.
pub const INVALID_TOKEN: &str = "A valid join token is necessary to join this cluster";

pub struct CaService {
    pub m: Arc<Manager>,
    /// The swarm's `CAConfig.NodeCertExpiry`, as last read with the root.
    pub validity: std::sync::Mutex<std::time::Duration>,
}

impl CaService {
    /// The signing root, from the store (every manager has it, sealed in Raft).
    async fn root(&self) -> Result<(RootCa, String, String), Status> {
        let (cert, key, tokens, expiry) = self
            .m
            .store
            .read(|s| {
                s.cluster().map(|c| {
                    (
                        c.cluster.tls_info.trust_root.clone(),
                        c.root_ca_key.clone(),
                        (c.join_tokens.worker.clone(), c.join_tokens.manager.clone()),
                        c.cluster.spec.ca_config.node_cert_expiry,
                    )
                })
            })
            .await
            .ok_or_else(|| Status::unavailable("the swarm is not initialized yet"))?;
        let root = RootCa::from_pem(&cert, Some(&key))
            .map_err(|e| Status::internal(format!("root CA: {e}")))?;
        *self.validity.lock().expect("validity lock") = if expiry > 0 {
            std::time::Duration::from_nanos(expiry as u64)
        } else {
            DEFAULT_NODE_CERT_VALIDITY
        };
        Ok((root, tokens.0, tokens.1))
    }

    fn issue(&self, root: &RootCa, csr: &str, node_id: &str, role: Role) -> Result<String, Status> {
        root.issue(
            csr,
            node_id,
            role,
            &self.m.cluster_id,
            *self.validity.lock().expect("validity lock"),
        )
        .map_err(|e| Status::invalid_argument(e.to_string()))
    }
}

fn role_name(role: Role) -> String {
    match role {
        Role::Manager => "manager",
        Role::Worker => "worker",
    }
    .to_string()
}

#[tonic::async_trait]
impl Ca for CaService {
    async fn get_root_ca_certificate(
        &self,
        _req: Request<Empty>,
    ) -> Result<Response<RootPem>, Status> {
        let (root, _, _) = self.root().await?;
        Ok(Response::new(RootPem {
            cert_pem: root.cert_pem().to_string(),
        }))
    }

    async fn issue_node_certificate(
        &self,
        req: Request<IssueRequest>,
    ) -> Result<Response<IssueResponse>, Status> {
        let remote = swarm_identity::peer_info(&req).map(|p| p.remote_addr.ip().to_string());
        let r = req.into_inner();
        let (root, worker, manager) = self.root().await?;
        let verify = |stored: &str| JoinToken::parse(stored).is_ok_and(|t| t.verify(&r.token));
        let role = if verify(&manager) {
            Role::Manager
        } else if verify(&worker) {
            Role::Worker
        } else {
            tracing::warn!(addr = ?remote, "refused a join: wrong token");
            return Err(Status::invalid_argument(INVALID_TOKEN));
        };
        if r.node_id.is_empty() || r.node_id.len() > 64 {
            return Err(Status::invalid_argument("invalid node ID"));
        }
        let description: NodeDescription = if r.description.is_empty() {
            NodeDescription::default()
        } else {
            serde_json::from_slice(&r.description)
                .map_err(|e| Status::invalid_argument(format!("node description: {e}")))?
        };
        let availability = match r.availability.as_str() {
            "" | "active" => NodeAvailability::Active,
            "pause" => NodeAvailability::Pause,
            "drain" => NodeAvailability::Drain,
            other => {
                return Err(Status::invalid_argument(format!(
                    "invalid availability {other:?}"
                )))
            }
        };
        let cert = self.issue(&root, &r.csr_pem, &r.node_id, role)?;
        let addr_ip = r
            .addr
            .rsplit_once(':')
            .map_or(r.addr.as_str(), |(h, _)| h)
            .to_string();
        let node = Node {
            meta: Meta::with_id(r.node_id.clone()),
            spec: NodeSpec {
                role: Some(match role {
                    Role::Manager => NodeRole::Manager,
                    Role::Worker => NodeRole::Worker,
                }),
                availability: Some(availability),
                ..NodeSpec::default()
            },
            description,
            status: NodeStatus {
                state: Some(NodeState::Unknown),
                message: String::new(),
                addr: remote.unwrap_or(addr_ip),
            },
            manager_status: (role == Role::Manager).then(|| ManagerStatus {
                leader: false,
                reachability: Some(Reachability::Unknown),
                addr: r.addr.clone(),
            }),
        };
        let exists = self.m.store.read(|s| s.node(&r.node_id).cloned()).await;
        let action = match exists {
            Some(old) => {
                let mut node = node;
                node.meta = old.meta;
                StoreAction::Update(Object::Node(Box::new(node)))
            }
            None => StoreAction::Create(Object::Node(Box::new(node))),
        };
        self.m
            .propose(vec![action])
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        tracing::info!(node = %r.node_id, role = %role_name(role), "node joined");
        let managers = self.m.store.read(manager_addrs).await;
        Ok(Response::new(IssueResponse {
            node_id: r.node_id,
            cert_pem: cert,
            ca_pem: root.cert_pem().to_string(),
            role: role_name(role),
            managers,
        }))
    }

    async fn renew_node_certificate(
        &self,
        req: Request<RenewRequest>,
    ) -> Result<Response<IssueResponse>, Status> {
        let who = caller(&req, &self.m.cluster_id)?;
        let (root, _, _) = self.root().await?;
        let role = self
            .m
            .store
            .read(|s| s.node(&who.node_id).map(super::held_role))
            .await
            .ok_or_else(|| Status::permission_denied("node is not a member of this swarm"))?;
        let role = match role {
            NodeRole::Manager => Role::Manager,
            _ => Role::Worker,
        };
        let cert = self.issue(&root, &req.into_inner().csr_pem, &who.node_id, role)?;
        let managers = self.m.store.read(manager_addrs).await;
        Ok(Response::new(IssueResponse {
            node_id: who.node_id,
            cert_pem: cert,
            ca_pem: root.cert_pem().to_string(),
            role: role_name(role),
            managers,
        }))
    }
}
