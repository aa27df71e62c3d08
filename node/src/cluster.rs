//! The cluster port (2377): gRPC over mutual TLS, served by managers only.
//!
//! ```text
//!  TCP ─TLS (swarm-identity)─▶ tonic ─┬─ Raft        managers' certificates only
//!                                     ├─ Ca          anyone: root CA; certificates for a join token
//!                                     └─ Dispatcher  any node of this cluster (agent sessions)
//! ```
//!
//! Every call is authorized by the certificate the peer presented: its role and cluster
//! are read from it (`swarm_identity::peer_info`). A node removed from the store is
//! refused by the dispatcher; a certificate of another cluster fails the handshake.

use std::sync::Arc;

use swarm_identity::{peer_info, serve_incoming, PeerIdentity, Role};
use swarm_raft::network::RaftService;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Status};

use crate::error::{Error, Result};
use crate::manager::Manager;

pub mod proto {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("swarm.cluster");
}

/// The gRPC metadata key a non-leader manager names the leader's address in.
pub const LEADER_KEY: &str = "swarm-leader";

/// The caller's identity, which must be a node of `cluster_id`.
pub fn caller<T>(req: &Request<T>, cluster_id: &str) -> Result<PeerIdentity, Status> {
    let id = peer_info(req)
        .and_then(|p| p.identity.clone())
        .ok_or_else(|| Status::unauthenticated("a node certificate is required"))?;
    if id.cluster_id != cluster_id {
        return Err(Status::permission_denied("certificate of another cluster"));
    }
    Ok(id)
}

/// Binds the cluster port; fails at once if the address is taken (as `docker swarm init`).
pub async fn bind(listen_addr: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen_addr)
        .await
        .map_err(|e| {
            // Go's words, as dockerd says them (`listen tcp 0.0.0.0:2377: bind: address
            // already in use`).
            let why = match e.kind() {
                std::io::ErrorKind::AddrInUse => "bind: address already in use".to_string(),
                std::io::ErrorKind::AddrNotAvailable => {
                    "bind: cannot assign requested address".to_string()
                }
                std::io::ErrorKind::PermissionDenied => "bind: permission denied".to_string(),
                _ => e.to_string(),
            };
            Error::Other(format!("listen tcp {listen_addr}: {why}"))
        })
}

/// Serves the cluster port on `listener` until the returned task is aborted (demotion)
/// or the process ends.
pub fn serve(listener: tokio::net::TcpListener, m: Arc<Manager>) -> tokio::task::JoinHandle<()> {
    let listen_addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let cluster_id = m.cluster_id.clone();
    let raft = InterceptedService::new(
        RaftService::new(m.store.handle()).into_server(),
        move |req: Request<()>| {
            let who = caller(&req, &cluster_id)?;
            if who.role != Role::Manager {
                tracing::warn!(node = %who.node_id, "refused a Raft call from a worker certificate");
                return Err(Status::permission_denied("Raft is for managers only"));
            }
            Ok(req)
        },
    );
    let ca = proto::ca_server::CaServer::new(crate::manager::ca::CaService {
        m: m.clone(),
        validity: std::sync::Mutex::new(swarm_identity::DEFAULT_NODE_CERT_VALIDITY),
    });
    let dispatcher = proto::dispatcher_server::DispatcherServer::new(
        crate::manager::dispatcher::DispatcherService { m: m.clone() },
    );
    let incoming = serve_incoming(listener, m.tls.clone());
    tracing::info!(addr = %listen_addr, "cluster port serving");
    tokio::spawn(async move {
        let r = tonic::transport::Server::builder()
            .add_service(raft)
            .add_service(ca)
            .add_service(dispatcher)
            .serve_with_incoming(incoming)
            .await;
        if let Err(e) = r {
            tracing::error!("cluster port: {e}");
        }
    })
}
