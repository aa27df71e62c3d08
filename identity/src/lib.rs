//! The cluster's identity and TLS layer: who a node is, and how nodes prove it.
//!
//! ```text
//!  manager (swarm init)                          joining node (swarm join --token T addr)
//!  RootCa::generate(cluster_id)                  JoinToken::parse(T)
//!  JoinToken::generate(&root) ── T ─────────►    connect(addr, ClientTls::FetchRoot)
//!                                                 └ fetch root PEM, T.verify_root(pem)
//!  root.issue(csr, node_id, role, cluster, v) ◄── NodeKey::generate().csr_pem() + T
//!        └─ cert PEM ───────────────────────►    NodeIdentity::new(cert, key, root pem)
//!                                                 .save(dir)   (swarm-root-ca.crt,
//!                                                  swarm-node.crt, swarm-node.key)
//!  ClusterTls::new(&identity)                    ClusterTls::new(&identity)
//!  Server::builder()...serve_with_incoming(      connect(addr, tls.client())
//!      serve_incoming(listener, tls))             (mutual TLS, server name swarm-manager)
//!  handler: peer_info(&req).identity.role
//! ```
//!
//! API:
//! - [`RootCa`]: `generate(cluster_id)`, `from_pem(cert, Option<key>)`, `cert_pem()`,
//!   `key_pem()`, `digest()` (sha256 of the PEM bundle, as swarmkit), `issue(csr_pem,
//!   node_id, role, cluster_id, validity) -> cert PEM`.
//! - [`JoinToken`]: `generate(&RootCa)`, `parse(&str)` (`invalid join token`),
//!   `to_string()`, `ca_digest_matches(&RootCa)`, `verify_root(pem) -> RootCa` (joiner),
//!   `verify(&str)` (manager, constant time).
//! - [`NodeKey`]: `generate()`, `from_pem`, `key_pem()`, `csr_pem()`.
//! - [`NodeIdentity`]: `new(cert, key, ca)`, `save(dir)`, `load(dir)`, `exists(dir)`,
//!   `renew_at()`, `needs_renewal(now)`, `key()`.
//! - [`PeerIdentity::from_der`]: node ID, role, cluster ID of a peer certificate.
//! - [`tls`]: [`ClusterTls`] (`new`, `update`, `set_extra_roots`, `set_denied_nodes`,
//!   `acceptor`, `client`),
//!   [`serve_incoming`], [`PeerInfo`] / [`peer_info`], [`ClientTls`], [`connect`].
#![forbid(unsafe_code)]

mod ca;
mod error;
mod identity;
mod key;
mod peer;
mod pem;
mod random;
mod role;
pub mod tls;
mod token;
mod unlock;

pub use ca::{
    RootCa, CERT_BACKDATE, DEFAULT_NODE_CERT_VALIDITY, MIN_NODE_CERT_VALIDITY, ROOT_CA_VALIDITY,
    ROOT_CN,
};
pub use error::{Error, Result};
pub use identity::{
    NodeIdentity, NODE_CERT_FILE, NODE_KEY_FILE, NODE_KEY_FILE_LOCKED, RENEWAL_MARGIN, ROOT_CA_FILE,
};
pub use key::NodeKey;
pub use peer::PeerIdentity;
pub use role::{Role, CA_SAN, MANAGER_OU, WORKER_OU};
pub use tls::{connect, peer_info, serve_incoming, ClientTls, ClusterTls, PeerInfo, ServerStream};
pub use token::JoinToken;
pub use unlock::UnlockKey;
