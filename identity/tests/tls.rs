//! Mutual TLS on 127.0.0.1: a tonic health service behind [`serve_incoming`], with an
//! interceptor that authorizes by the caller's role as a real handler would.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::ServerName;
use swarm_identity::{
    connect, peer_info, serve_incoming, ClientTls, ClusterTls, NodeIdentity, NodeKey, PeerInfo,
    Role, RootCa, DEFAULT_NODE_CERT_VALIDITY,
};
use tokio::net::{TcpListener, TcpStream};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::{Code, Request, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

fn identity(root: &RootCa, cluster: &str, node_id: &str, role: Role) -> NodeIdentity {
    let key = NodeKey::generate().unwrap();
    let cert = root
        .issue(
            &key.csr_pem().unwrap(),
            node_id,
            role,
            cluster,
            DEFAULT_NODE_CERT_VALIDITY,
        )
        .unwrap();
    NodeIdentity::new(cert, key.key_pem(), root.cert_pem().to_string()).unwrap()
}

/// A manager serving grpc.health.v1 over the cluster TLS; records every caller it sees.
struct Manager {
    addr: String,
    tls: Arc<ClusterTls>,
    seen: Arc<Mutex<Vec<PeerInfo>>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

async fn start_manager(identity: &NodeIdentity) -> Manager {
    let tls = ClusterTls::new(identity).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (_reporter, health) = tonic_health::server::health_reporter();
    let log = seen.clone();
    // Authorization by role, from the certificate: managers only; a caller without a
    // certificate is unauthenticated (on the real port it may only ask to join).
    let authorize = move |req: Request<()>| {
        let peer = peer_info(&req)
            .expect("connect info from serve_incoming")
            .clone();
        log.lock().unwrap().push(peer.clone());
        match peer.identity.map(|p| p.role) {
            Some(Role::Manager) => Ok(req),
            Some(Role::Worker) => Err(Status::permission_denied("workers may not call this")),
            None => Err(Status::unauthenticated("no client certificate")),
        }
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let incoming = serve_incoming(listener, tls.clone());
    tokio::spawn(async move {
        Server::builder()
            .add_service(InterceptedService::new(health, authorize))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Manager {
        addr,
        tls,
        seen,
        _shutdown: stop,
    }
}

async fn check(addr: &str, tls: ClientTls) -> Result<(), Status> {
    let channel = connect(addr, tls)
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map(drop)
}

/// The leaf certificate a server presents to a client of `tls`.
async fn served_cert(addr: &str, tls: &ClientTls) -> Vec<u8> {
    let ClientTls::Node(config) = tls else {
        panic!("node tls expected")
    };
    let tcp = TcpStream::connect(addr).await.unwrap();
    let conn = tokio_rustls::TlsConnector::from(config.clone())
        .connect(ServerName::try_from("swarm-manager").unwrap(), tcp)
        .await
        .unwrap();
    conn.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn leaf_der(identity: &NodeIdentity) -> Vec<u8> {
    let (_, p) = x509_parser::pem::parse_x509_pem(identity.cert_pem.as_bytes()).unwrap();
    p.contents
}

#[tokio::test]
async fn managers_and_workers_are_told_apart_by_their_certificates() {
    let root = RootCa::generate("cluster-a").unwrap();
    let m = start_manager(&identity(&root, "cluster-a", "m1", Role::Manager)).await;

    let m2 = ClusterTls::new(&identity(&root, "cluster-a", "m2", Role::Manager)).unwrap();
    check(&m.addr, m2.client()).await.unwrap();

    let w1 = ClusterTls::new(&identity(&root, "cluster-a", "w1", Role::Worker)).unwrap();
    let err = check(&m.addr, w1.client()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");

    let seen = m.seen.lock().unwrap().clone();
    let ids: Vec<_> = seen
        .iter()
        .map(|p| {
            let id = p.identity.as_ref().unwrap();
            (id.node_id.as_str(), id.role, id.cluster_id.as_str())
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("m2", Role::Manager, "cluster-a"),
            ("w1", Role::Worker, "cluster-a")
        ]
    );
    assert!(seen.iter().all(|p| p.remote_addr.ip().is_loopback()));
}

#[tokio::test]
async fn a_client_without_a_certificate_is_accepted_without_identity() {
    let root = RootCa::generate("cluster-a").unwrap();
    let m = start_manager(&identity(&root, "cluster-a", "m1", Role::Manager)).await;
    let err = check(&m.addr, ClientTls::FetchRoot).await.unwrap_err();
    // The call reached the service: TLS and HTTP/2 went through.
    assert_eq!(err.code(), Code::Unauthenticated, "{err}");
    let seen = m.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].identity.is_none());
}

#[tokio::test]
async fn a_certificate_from_another_cluster_is_refused_at_the_handshake() {
    let a = RootCa::generate("cluster-a").unwrap();
    let b = RootCa::generate("cluster-b").unwrap();
    let m = start_manager(&identity(&a, "cluster-a", "m1", Role::Manager)).await;

    // A node of cluster B that trusts A's root (so it would accept the server) but
    // presents B's certificate: the server refuses it.
    let intruder = ClusterTls::new(&identity(&b, "cluster-b", "x1", Role::Manager)).unwrap();
    intruder
        .set_extra_roots(vec![a.cert_pem().to_string()])
        .unwrap();
    assert!(check(&m.addr, intruder.client()).await.is_err());

    // A node of cluster B that trusts only B refuses A's manager.
    let other = ClusterTls::new(&identity(&b, "cluster-b", "x2", Role::Manager)).unwrap();
    assert!(check(&m.addr, other.client()).await.is_err());

    assert!(
        m.seen.lock().unwrap().is_empty(),
        "no call may reach a handler"
    );
    // The server is still fine for its own nodes.
    let m2 = ClusterTls::new(&identity(&a, "cluster-a", "m2", Role::Manager)).unwrap();
    check(&m.addr, m2.client()).await.unwrap();
}

#[tokio::test]
async fn clients_only_accept_managers() {
    // A worker's certificate has no swarm-manager SAN: dialing it fails name checks.
    let root = RootCa::generate("cluster-a").unwrap();
    let w = start_manager(&identity(&root, "cluster-a", "w1", Role::Worker)).await;
    let m2 = ClusterTls::new(&identity(&root, "cluster-a", "m2", Role::Manager)).unwrap();
    assert!(check(&w.addr, m2.client()).await.is_err());
    assert!(w.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_restart() {
    let root = RootCa::generate("cluster-a").unwrap();
    let first = identity(&root, "cluster-a", "m1", Role::Manager);
    let m = start_manager(&first).await;
    let client = ClusterTls::new(&identity(&root, "cluster-a", "m2", Role::Manager)).unwrap();
    let channel = connect(&m.addr, client.client()).await.unwrap();
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(
        served_cert(&m.addr, &client.client()).await,
        leaf_der(&first)
    );

    // Renewal with the same key (as a node does), then a promotion-style role change.
    let csr = first.key().unwrap().csr_pem().unwrap();
    let cert = root
        .issue(
            &csr,
            "m1",
            Role::Manager,
            "cluster-a",
            Duration::from_secs(7200),
        )
        .unwrap();
    let renewed = NodeIdentity::new(cert, first.key_pem.clone(), first.ca_pem.clone()).unwrap();
    assert_ne!(leaf_der(&renewed), leaf_der(&first));
    m.tls.update(&renewed).unwrap();

    assert_eq!(
        served_cert(&m.addr, &client.client()).await,
        leaf_der(&renewed)
    );
    // The channel opened before the renewal keeps working.
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_client_renews_its_own_certificate_live_too() {
    let root = RootCa::generate("cluster-a").unwrap();
    let m = start_manager(&identity(&root, "cluster-a", "m1", Role::Manager)).await;
    let node = ClusterTls::new(&identity(&root, "cluster-a", "n1", Role::Worker)).unwrap();
    let tls = node.client();
    assert_eq!(
        check(&m.addr, tls.clone()).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    // Promoted: the same ClientTls now presents the manager certificate.
    node.update(&identity(&root, "cluster-a", "n1", Role::Manager))
        .unwrap();
    check(&m.addr, tls).await.unwrap();
    let roles: Vec<_> = m
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|p| p.identity.as_ref().unwrap().role)
        .collect();
    assert_eq!(roles, [Role::Worker, Role::Manager]);
}

#[tokio::test]
async fn during_a_root_rotation_both_roots_are_trusted() {
    let old = RootCa::generate("cluster-a").unwrap();
    let new = RootCa::generate("cluster-a").unwrap();
    let m = start_manager(&identity(&old, "cluster-a", "m1", Role::Manager)).await;
    let renewed = ClusterTls::new(&identity(&new, "cluster-a", "m2", Role::Manager)).unwrap();
    renewed
        .set_extra_roots(vec![old.cert_pem().to_string()])
        .unwrap();
    assert!(check(&m.addr, renewed.client()).await.is_err());
    m.tls
        .set_extra_roots(vec![new.cert_pem().to_string()])
        .unwrap();
    check(&m.addr, renewed.client()).await.unwrap();
}

#[tokio::test]
async fn a_loaded_root_issues_certificates_a_verified_joiner_can_use() {
    // A root loaded from PEM (as a restarted manager does) issues certificates that
    // chain to the original root.
    let generated = RootCa::generate("cluster-a").unwrap();
    let root = RootCa::from_pem(generated.cert_pem(), generated.key_pem().as_deref()).unwrap();
    let m = start_manager(&identity(&root, "cluster-a", "m1", Role::Manager)).await;
    let token = swarm_identity::JoinToken::generate(&generated);

    // The CA service that serves the root PEM is node/'s; here the joiner only shows
    // that FetchRoot reaches the manager, and checks the PEM it would have received.
    let channel = connect(&m.addr, ClientTls::FetchRoot).await.unwrap();
    drop(channel);
    let trusted = token.verify_root(generated.cert_pem()).unwrap();
    let key = NodeKey::generate().unwrap();
    let cert = root
        .issue(
            &key.csr_pem().unwrap(),
            "w9",
            Role::Worker,
            "cluster-a",
            DEFAULT_NODE_CERT_VALIDITY,
        )
        .unwrap();
    let joined = NodeIdentity::new(cert, key.key_pem(), trusted.cert_pem().to_string()).unwrap();
    let tls = ClusterTls::new(&joined).unwrap();
    assert_eq!(
        check(&m.addr, tls.client()).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        m.seen.lock().unwrap()[0].identity.as_ref().unwrap().node_id,
        "w9"
    );
}

#[tokio::test]
async fn the_server_never_resumes_a_session() {
    // A resumed session would carry the first handshake's client certificate: a demoted
    // or renewed node would keep its old identity. Even a client that asks to resume
    // gets a full handshake.
    let root = RootCa::generate("cluster-a").unwrap();
    let m = start_manager(&identity(&root, "cluster-a", "m1", Role::Manager)).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.certs()[0].clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    for _ in 0..2 {
        let tcp = TcpStream::connect(&m.addr).await.unwrap();
        let mut conn = tokio_rustls::TlsConnector::from(config.clone())
            .connect(ServerName::try_from("swarm-manager").unwrap(), tcp)
            .await
            .unwrap();
        // Read whatever the server sends (tickets would come now), then hang up.
        let _ = tokio::time::timeout(
            Duration::from_millis(100),
            tokio::io::AsyncReadExt::read(&mut conn, &mut [0u8; 64]),
        )
        .await;
        assert_eq!(
            conn.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Full)
        );
    }
}

#[tokio::test]
async fn a_removed_nodes_certificate_is_refused_at_the_handshake() {
    let root = RootCa::generate("cluster-a").unwrap();
    let m = start_manager(&identity(&root, "cluster-a", "m1", Role::Manager)).await;
    let w1 = ClusterTls::new(&identity(&root, "cluster-a", "w1", Role::Worker)).unwrap();
    let w2 = ClusterTls::new(&identity(&root, "cluster-a", "w2", Role::Worker)).unwrap();
    assert_eq!(
        check(&m.addr, w1.client()).await.unwrap_err().code(),
        Code::PermissionDenied
    );

    m.tls.set_denied_nodes(["w1".to_string()]);
    let err = check(&m.addr, w1.client()).await.unwrap_err();
    assert_ne!(err.code(), Code::PermissionDenied, "{err}");
    // Other nodes, and joiners without a certificate, are unaffected.
    assert_eq!(
        check(&m.addr, w2.client()).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        check(&m.addr, ClientTls::FetchRoot)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let callers: Vec<_> = m
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|p| p.identity.as_ref().map(|i| i.node_id.clone()))
        .collect();
    assert_eq!(callers, [Some("w1".into()), Some("w2".into()), None]);

    m.tls.set_denied_nodes([]);
    assert_eq!(
        check(&m.addr, w1.client()).await.unwrap_err().code(),
        Code::PermissionDenied
    );
}

/// A node certificate issued during a rotation: from the new root's key, with the new
/// root cross-signed by the old one after it, so nodes that trust only the old root
/// accept it; after the rotation, nodes that trust only the new root accept it too.
#[tokio::test]
async fn a_cross_signed_chain_is_accepted_by_the_old_root_and_the_new_one() {
    let old = RootCa::generate("cluster-a").unwrap();
    let new = RootCa::generate("cluster-a").unwrap();
    let cross = old.cross_sign(&new).unwrap();
    let rotating = RootCa::from_pem(new.cert_pem(), new.key_pem().as_deref())
        .unwrap()
        .with_chain(&cross);
    // Issued by the new key, trusting the old root (as nodes do mid-rotation).
    let key = NodeKey::generate().unwrap();
    let cert = rotating
        .issue(
            &key.csr_pem().unwrap(),
            "m2",
            Role::Manager,
            "cluster-a",
            DEFAULT_NODE_CERT_VALIDITY,
        )
        .unwrap();
    assert_eq!(
        cert.matches("BEGIN CERTIFICATE").count(),
        2,
        "leaf and intermediate"
    );
    let mid = NodeIdentity::new(cert.clone(), key.key_pem(), old.cert_pem().to_string()).unwrap();

    // An old-root manager accepts the new certificate, and the other way round.
    let m_old = start_manager(&identity(&old, "cluster-a", "m1", Role::Manager)).await;
    check(&m_old.addr, ClusterTls::new(&mid).unwrap().client())
        .await
        .unwrap();
    let m_mid = start_manager(&mid).await;
    let old_client = ClusterTls::new(&identity(&old, "cluster-a", "w1", Role::Worker)).unwrap();
    assert_eq!(
        check(&m_mid.addr, old_client.client())
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied,
        "the handshake passed; the worker is refused by role only"
    );

    // After the rotation: trusting only the new root, the same certificate works, and a
    // certificate from the old root no longer does.
    let after = NodeIdentity::new(cert, key.key_pem(), new.cert_pem().to_string()).unwrap();
    let m_new = start_manager(&after).await;
    check(
        &m_new.addr,
        ClusterTls::new(&identity(&new, "cluster-a", "m3", Role::Manager))
            .unwrap()
            .client(),
    )
    .await
    .unwrap();
    check(&m_new.addr, ClusterTls::new(&mid).unwrap().client())
        .await
        .unwrap();
    assert!(check(
        &m_new.addr,
        ClusterTls::new(&identity(&old, "cluster-a", "m4", Role::Manager))
            .unwrap()
            .client()
    )
    .await
    .is_err());
}
