//! Mutual TLS for the cluster port (rustls, aws-lc-rs).
//!
//! ```text
//!             ClusterTls (one per node)
//!   update(identity) ──► LiveCert ──► served as server cert (acceptor())
//!                          │      └─► presented as client cert (client())
//!   update / extra roots ──► trusted roots ──► verifies client certs (if given)
//!                                          └─► verifies managers we dial (SAN swarm-manager)
//! ```
//!
//! As swarmkit: the server accepts a client without a certificate (a joining node asks
//! for its first one over the same port; handlers then require a join token), and
//! verifies one that is presented against the cluster roots. Clients dial the name
//! `swarm-manager`, a SAN of every manager certificate. A joining node that knows no root
//! yet dials with [`ClientTls::FetchRoot`] and checks what it fetched against the join
//! token's digest ([`crate::JoinToken::verify_root`]).

mod client;
mod server;
mod verifier;

use std::sync::{Arc, RwLock};

use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SignatureScheme};
use tokio_rustls::TlsAcceptor;

pub use client::{connect, ClientTls};
pub use server::{peer_info, serve_incoming, PeerInfo, ServerStream};

use self::verifier::{Denied, NodeVerifier};
use crate::role::MANAGER_OU;
use crate::{pem, Error, NodeIdentity, Result};

/// The TLS server name clients verify: every manager certificate has it as a DNS SAN.
pub const SERVER_NAME: &str = MANAGER_OU;
const ALPN_H2: &[u8] = b"h2";

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// This node's certificate as rustls serves it; swapped in place on renewal so that new
/// handshakes (server and client side) use the new certificate without a restart.
#[derive(Debug)]
pub struct LiveCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl LiveCert {
    pub fn new(identity: &NodeIdentity) -> Result<LiveCert> {
        Ok(LiveCert {
            current: RwLock::new(certified_key(identity)?),
        })
    }

    pub fn update(&self, identity: &NodeIdentity) -> Result<()> {
        let key = certified_key(identity)?;
        *self.current.write().expect("cert lock poisoned") = key;
        Ok(())
    }

    fn get(&self) -> Arc<CertifiedKey> {
        self.current.read().expect("cert lock poisoned").clone()
    }
}

impl ResolvesServerCert for LiveCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

impl ResolvesClientCert for LiveCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn certified_key(identity: &NodeIdentity) -> Result<Arc<CertifiedKey>> {
    let chain = pem::certs(&identity.cert_pem)?;
    let key = pem::private_key(&identity.key_pem)?;
    Ok(Arc::new(CertifiedKey::from_der(chain, key, &provider())?))
}

/// A node's TLS state: its live certificate and the roots it trusts, from which the
/// server acceptor and client configurations are made.
pub struct ClusterTls {
    cert: Arc<LiveCert>,
    denied: Denied,
    state: RwLock<Configs>,
}

struct Configs {
    /// PEM bundles trusted besides the identity's own `ca_pem` (during a CA rotation).
    extra_roots: Vec<String>,
    ca_pem: String,
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

impl ClusterTls {
    pub fn new(identity: &NodeIdentity) -> Result<Arc<ClusterTls>> {
        let cert = Arc::new(LiveCert::new(identity)?);
        let denied = Denied::default();
        let state = Configs::build(&cert, &denied, identity.ca_pem.clone(), Vec::new())?;
        Ok(Arc::new(ClusterTls {
            cert,
            denied,
            state: RwLock::new(state),
        }))
    }

    /// Serves and presents `identity`'s certificate from the next handshake on; if its
    /// root bundle changed, trusts the new bundle from then on too.
    pub fn update(&self, identity: &NodeIdentity) -> Result<()> {
        let mut state = self.state.write().expect("tls lock poisoned");
        if state.ca_pem != identity.ca_pem {
            *state = Configs::build(
                &self.cert,
                &self.denied,
                identity.ca_pem.clone(),
                state.extra_roots.clone(),
            )?;
        }
        self.cert.update(identity)
    }

    /// Trusts these root bundles (PEM) as well as the identity's own, for a root rotation:
    /// nodes whose certificates come from the old or the new root are both accepted.
    pub fn set_extra_roots(&self, bundles: Vec<String>) -> Result<()> {
        let mut state = self.state.write().expect("tls lock poisoned");
        *state = Configs::build(&self.cert, &self.denied, state.ca_pem.clone(), bundles)?;
        Ok(())
    }

    /// Refuses, from the next handshake on, the certificates of these nodes (removed from
    /// the cluster), replacing the previous set. Connections already open stay open:
    /// the caller closes them.
    pub fn set_denied_nodes(&self, node_ids: impl IntoIterator<Item = String>) {
        *self.denied.write().expect("denied lock poisoned") = node_ids.into_iter().collect();
    }

    /// The acceptor for the next incoming connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.state.read().expect("tls lock poisoned").server.clone())
    }

    /// Client TLS that trusts the cluster roots and presents this node's live certificate.
    pub fn client(&self) -> ClientTls {
        ClientTls::Node(self.state.read().expect("tls lock poisoned").client.clone())
    }

    /// The live certificate (shared with the configurations made here).
    pub fn live_cert(&self) -> &Arc<LiveCert> {
        &self.cert
    }
}

impl Configs {
    fn build(
        cert: &Arc<LiveCert>,
        denied: &Denied,
        ca_pem: String,
        extra_roots: Vec<String>,
    ) -> Result<Configs> {
        let mut roots = RootCertStore::empty();
        for bundle in std::iter::once(&ca_pem).chain(&extra_roots) {
            for der in pem::certs(bundle).map_err(|e| Error::InvalidRootCa(e.to_string()))? {
                roots.add(der)?;
            }
        }
        let roots = Arc::new(roots);
        let provider = provider();

        let webpki = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| Error::Tls(rustls::Error::General(e.to_string())))?;
        let verifier = Arc::new(NodeVerifier {
            webpki,
            denied: denied.clone(),
        });
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(cert.clone());
        server.alpn_protocols = vec![ALPN_H2.to_vec()];
        // No session resumption: a resumed session carries the certificates of the first
        // handshake, so a renewed, promoted or demoted node would keep its old identity.
        // Cluster connections are long-lived; full handshakes cost little.
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        server.send_tls13_tickets = 0;

        let mut client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_cert_resolver(cert.clone());
        client.alpn_protocols = vec![ALPN_H2.to_vec()];
        client.resumption = rustls::client::Resumption::disabled();

        Ok(Configs {
            extra_roots,
            ca_pem,
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }
}
