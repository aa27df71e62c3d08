//! The cluster port's incoming side: TCP accept, TLS handshake, and the peer's identity
//! handed to tonic as connect info.
//!
//! ```text
//! TcpListener ─accept─► handshake task (timeout) ─► ServerStream { PeerInfo } ─► tonic
//!                                └─ failed: logged, dropped (tonic never sees it)
//! ```
//! A gRPC handler reads the caller with [`peer_info`]`(&request)`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use super::ClusterTls;
use crate::PeerIdentity;

/// A handshake that takes longer than this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for tonic to take them.
const BACKLOG: usize = 64;

/// Who is on the other end of a connection, as tonic hands it to handlers.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub remote_addr: SocketAddr,
    /// `None` for a client that presented no certificate (a node about to join).
    pub identity: Option<PeerIdentity>,
}

/// The caller of a gRPC request served through [`serve_incoming`].
pub fn peer_info<T>(request: &tonic::Request<T>) -> Option<&PeerInfo> {
    request.extensions().get::<PeerInfo>()
}

/// A server-side TLS connection with its peer's identity.
pub struct ServerStream {
    inner: tokio_rustls::server::TlsStream<TcpStream>,
    info: PeerInfo,
}

impl ServerStream {
    pub fn peer(&self) -> &PeerInfo {
        &self.info
    }
}

impl Connected for ServerStream {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

impl AsyncRead for ServerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ServerStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Accepts TLS connections on `listener` for `tonic::transport::Server::serve_with_incoming`.
/// Each handshake runs in its own task, so a slow client holds up nobody; connections
/// whose handshake fails (a certificate from another CA, garbage) never reach tonic. The
/// accept loop stops when the returned stream is dropped.
pub fn serve_incoming(
    listener: TcpListener,
    tls: Arc<ClusterTls>,
) -> ReceiverStream<Result<ServerStream, io::Error>> {
    let (tx, rx) = mpsc::channel(BACKLOG);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            let (tcp, remote_addr) = match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and friends: back off a little instead of spinning.
                    tracing::warn!(error = %e, "cluster port: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = tls.acceptor();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => match peer_of(&stream, remote_addr) {
                        Ok(info) => {
                            let _ = tx
                                .send(Ok(ServerStream {
                                    inner: stream,
                                    info,
                                }))
                                .await;
                        }
                        Err(e) => {
                            tracing::warn!(%remote_addr, error = %e, "cluster port: refused a certificate without a node identity");
                        }
                    },
                    Ok(Err(e)) => {
                        tracing::debug!(%remote_addr, error = %e, "cluster port: TLS handshake failed");
                    }
                    Err(_) => {
                        tracing::debug!(%remote_addr, "cluster port: TLS handshake timed out");
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

fn peer_of(
    stream: &tokio_rustls::server::TlsStream<TcpStream>,
    remote_addr: SocketAddr,
) -> crate::Result<PeerInfo> {
    let identity = match stream.get_ref().1.peer_certificates() {
        Some([leaf, ..]) => Some(PeerIdentity::from_der(leaf)?),
        _ => None,
    };
    Ok(PeerInfo {
        remote_addr,
        identity,
    })
}
