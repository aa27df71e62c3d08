//! Dialing a manager's cluster port: a tonic channel over our own TLS connector.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

use super::{provider, SERVER_NAME};
use crate::Result;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a client authenticates a manager, and itself.
#[derive(Clone)]
pub enum ClientTls {
    /// Trust the cluster roots, present our node certificate (from [`super::ClusterTls::client`]).
    Node(Arc<ClientConfig>),
    /// Trust nothing, present nothing: only to fetch the root CA, whose digest the caller
    /// then checks against the join token ([`crate::JoinToken::verify_root`]).
    FetchRoot,
}

impl ClientTls {
    /// Trust `ca_pem` (a root the caller verified against a join token), present no
    /// certificate: how a joining node asks for its first certificate without sending its
    /// token to anyone but a manager of that cluster.
    pub fn trust_root(ca_pem: &str) -> Result<ClientTls> {
        let mut roots = rustls::RootCertStore::empty();
        for der in
            crate::pem::certs(ca_pem).map_err(|e| crate::Error::InvalidRootCa(e.to_string()))?
        {
            roots.add(der)?;
        }
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![super::ALPN_H2.to_vec()];
        config.resumption = rustls::client::Resumption::disabled();
        Ok(ClientTls::Node(Arc::new(config)))
    }

    fn config(&self) -> Result<Arc<ClientConfig>> {
        match self {
            ClientTls::Node(config) => Ok(config.clone()),
            ClientTls::FetchRoot => {
                let provider = provider();
                let mut config = ClientConfig::builder_with_provider(provider.clone())
                    .with_safe_default_protocol_versions()?
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyServer { provider }))
                    .with_no_client_auth();
                config.alpn_protocols = vec![super::ALPN_H2.to_vec()];
                config.resumption = rustls::client::Resumption::disabled();
                Ok(Arc::new(config))
            }
        }
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientTls::Node(_) => "ClientTls::Node",
            ClientTls::FetchRoot => "ClientTls::FetchRoot",
        })
    }
}

/// Connects to a manager at `addr` (`host:port`) and returns a gRPC channel over TLS.
/// The channel redials through the same TLS settings when the connection drops.
pub async fn connect(addr: &str, tls: ClientTls) -> Result<Channel> {
    let config = tls.config()?;
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    let addr = addr.to_string();
    let connector = tower::service_fn(move |_: Uri| {
        let config = config.clone();
        let addr = addr.clone();
        async move {
            let tcp = TcpStream::connect(&addr).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from(SERVER_NAME).expect("a valid DNS name");
            let tls = TlsConnector::from(config).connect(name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    });
    Ok(endpoint.connect_with_connector(connector).await?)
}

/// Accepts any server certificate but still checks the handshake signatures, so the
/// session is at least bound to the key of the certificate shown.
#[derive(Debug)]
struct AnyServer {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
