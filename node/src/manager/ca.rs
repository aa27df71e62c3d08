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
    NodeStatus, Reachability, TlsInfo,
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

/// The roots as the store has them: the one nodes trust (served to joiners), and the one
/// that signs (the same, or during a rotation the new root with its cross-signed
/// certificate after each leaf).
struct Roots {
    trust: RootCa,
    signer: RootCa,
    worker_token: String,
    manager_token: String,
}

/// What a node's `Description.TLSInfo` says of a certificate `signer` issued: base64 of
/// the issuer's subject and public key (DER), as Docker's JSON shows them.
pub fn tls_info(trust_pem: &str, signer: &RootCa) -> Result<TlsInfo, swarm_identity::Error> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(TlsInfo {
        trust_root: trust_pem.to_string(),
        cert_issuer_subject: b64.encode(signer.subject_der()?),
        cert_issuer_public_key: b64.encode(signer.public_key_der()?),
    })
}

impl CaService {
    /// The roots, from the store (every manager has them, sealed in Raft).
    async fn roots(&self) -> Result<Roots, Status> {
        let (cert, key, rotation, tokens, expiry) = self
            .m
            .store
            .read(|s| {
                s.cluster().map(|c| {
                    (
                        c.cluster.tls_info.trust_root.clone(),
                        c.root_ca_key.clone(),
                        c.root_rotation.clone(),
                        (c.join_tokens.worker.clone(), c.join_tokens.manager.clone()),
                        c.cluster.spec.ca_config.node_cert_expiry,
                    )
                })
            })
            .await
            .ok_or_else(|| Status::unavailable("the swarm is not initialized yet"))?;
        let bad = |e: swarm_identity::Error| Status::internal(format!("root CA: {e}"));
        let trust = RootCa::from_pem(&cert, Some(&key)).map_err(bad)?;
        let signer = match rotation {
            Some(r) => RootCa::from_pem(&r.ca_cert, Some(&r.ca_key))
                .map_err(bad)?
                .with_chain(&r.cross_signed),
            None => RootCa::from_pem(&cert, Some(&key)).map_err(bad)?,
        };
        *self.validity.lock().expect("validity lock") = if expiry > 0 {
            std::time::Duration::from_nanos(expiry as u64)
        } else {
            DEFAULT_NODE_CERT_VALIDITY
        };
        Ok(Roots {
            trust,
            signer,
            worker_token: tokens.0,
            manager_token: tokens.1,
        })
    }

    fn issue(
        &self,
        roots: &Roots,
        csr: &str,
        node_id: &str,
        role: Role,
    ) -> Result<(String, TlsInfo), Status> {
        let cert = roots
            .signer
            .issue(
                csr,
                node_id,
                role,
                &self.m.cluster_id,
                *self.validity.lock().expect("validity lock"),
            )
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let info = tls_info(roots.trust.cert_pem(), &roots.signer)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok((cert, info))
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
        let roots = self.roots().await?;
        Ok(Response::new(RootPem {
            cert_pem: roots.trust.cert_pem().to_string(),
        }))
    }

    async fn issue_node_certificate(
        &self,
        req: Request<IssueRequest>,
    ) -> Result<Response<IssueResponse>, Status> {
        let remote = swarm_identity::peer_info(&req).map(|p| p.remote_addr.ip().to_string());
        let r = req.into_inner();
        let roots = self.roots().await?;
        let verify = |stored: &str| JoinToken::parse(stored).is_ok_and(|t| t.verify(&r.token));
        let role = if verify(&roots.manager_token) {
            Role::Manager
        } else if verify(&roots.worker_token) {
            Role::Worker
        } else {
            tracing::warn!(addr = ?remote, "refused a join: wrong token");
            return Err(Status::invalid_argument(INVALID_TOKEN));
        };
        if r.node_id.is_empty() || r.node_id.len() > 64 {
            return Err(Status::invalid_argument("invalid node ID"));
        }
        let mut description: NodeDescription = if r.description.is_empty() {
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
        let (cert, tls_info) = self.issue(&roots, &r.csr_pem, &r.node_id, role)?;
        description.tls_info = tls_info;
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
            // The allocator gives the ingress address.
            attachments: Vec::new(),
        };
        let exists = self.m.store.read(|s| s.node(&r.node_id).cloned()).await;
        let action = match exists {
            Some(old) => {
                let mut node = node;
                node.meta = old.meta;
                // A rejoining node keeps its ingress address.
                node.attachments = old.attachments;
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
            ca_pem: roots.trust.cert_pem().to_string(),
            role: role_name(role),
            managers,
        }))
    }

    async fn renew_node_certificate(
        &self,
        req: Request<RenewRequest>,
    ) -> Result<Response<IssueResponse>, Status> {
        let who = caller(&req, &self.m.cluster_id)?;
        let roots = self.roots().await?;
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
        let (cert, tls_info) = self.issue(&roots, &req.into_inner().csr_pem, &who.node_id, role)?;
        // The record a root rotation waits on: which root this node's certificate is from.
        self.m
            .propose(vec![StoreAction::SetNodeTlsInfo {
                id: who.node_id.clone(),
                tls_info,
            }])
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let managers = self.m.store.read(manager_addrs).await;
        Ok(Response::new(IssueResponse {
            node_id: who.node_id,
            cert_pem: cert,
            ca_pem: roots.trust.cert_pem().to_string(),
            role: role_name(role),
            managers,
        }))
    }
}
