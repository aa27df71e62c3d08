//! Forwarding a query that is not ours to the upstream resolvers, as libnetwork's
//! `forwardExtDNS` does: the query's bytes as the client sent them, over the client's
//! transport (a truncated UDP answer goes back as it is, and the client retries over TCP
//! to us, which then asks upstream over TCP), one upstream after another (at most three)
//! while they fail, time out, or answer SERVFAIL or REFUSED. The first other answer goes
//! back verbatim. `None` when none answered: the caller sends SERVFAIL.
//!
//! The sockets are made on the runtime's threads, so queries leave from the daemon's
//! namespace (where the host's resolv.conf nameservers, loopback ones included, are
//! reachable), not the container's.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::answer::Transport;

/// libnetwork's `maxExtDNS`: upstreams past the third are never asked.
pub const MAX_UPSTREAMS: usize = 3;
/// libnetwork's `extIOTimeout`, per upstream.
pub const TIMEOUT: Duration = Duration::from_secs(4);

/// The answer of the first upstream that gives a usable one.
pub async fn forward(
    upstreams: &[SocketAddr],
    query: &[u8],
    transport: Transport,
    timeout: Duration,
) -> Option<Vec<u8>> {
    let id = query_id(query)?;
    for upstream in upstreams.iter().take(MAX_UPSTREAMS) {
        let exchange = async {
            match transport {
                Transport::Udp => exchange_udp(*upstream, id, query).await,
                Transport::Tcp => exchange_tcp(*upstream, id, query).await,
            }
        };
        let resp = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                tracing::debug!(%upstream, "dns forward failed: {e}");
                continue;
            }
            Err(_) => {
                tracing::debug!(%upstream, "dns forward timed out");
                continue;
            }
        };
        // SERVFAIL and REFUSED may be passing states of one upstream: ask the next.
        match resp[3] & 0x0f {
            RCODE_SERVFAIL | RCODE_REFUSED => continue,
            _ => return Some(resp),
        }
    }
    None
}

const RCODE_SERVFAIL: u8 = 2;
const RCODE_REFUSED: u8 = 5;

/// The ID of a query message (its first two bytes), if it is long enough to be one.
fn query_id(msg: &[u8]) -> Option<u16> {
    (msg.len() >= 12).then(|| u16::from_be_bytes([msg[0], msg[1]]))
}

/// Whether `msg` is a response to the query with `id` (header only: the body goes back
/// to the client untouched).
fn is_response_to(msg: &[u8], id: u16) -> bool {
    query_id(msg) == Some(id) && msg[2] & 0x80 != 0
}

async fn exchange_udp(upstream: SocketAddr, id: u16, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let any: SocketAddr = if upstream.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    // A fresh socket (random source port) per query; connected, so only the upstream's
    // datagrams arrive.
    let sock = UdpSocket::bind(any).await?;
    sock.connect(upstream).await?;
    sock.send(query).await?;
    // Take oversized answers from upstreams that ignore the size the client asked for,
    // and pass them on as they are (libnetwork does the same).
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    loop {
        let n = sock.recv(&mut buf).await?;
        if is_response_to(&buf[..n], id) {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn exchange_tcp(upstream: SocketAddr, id: u16, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(upstream).await?;
    write_framed(&mut s, query).await?;
    loop {
        let msg = read_framed(&mut s).await?;
        if is_response_to(&msg, id) {
            return Ok(msg);
        }
    }
}

/// One DNS message over TCP: a two-byte length, then the message (RFC 1035 4.2.2).
pub async fn read_framed<S: AsyncReadExt + Unpin>(s: &mut S) -> std::io::Result<Vec<u8>> {
    let len = s.read_u16().await?;
    let mut msg = vec![0u8; usize::from(len)];
    s.read_exact(&mut msg).await?;
    Ok(msg)
}

pub async fn write_framed<S: AsyncWriteExt + Unpin>(s: &mut S, msg: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "dns message over 64 KiB")
    })?;
    let mut out = Vec::with_capacity(msg.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    s.write_all(&out).await
}
