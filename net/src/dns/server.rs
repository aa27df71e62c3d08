//! The node's resolver and one server per container.
//!
//! ```text
//!  agent ── set_records / set_network_names ──▶ Resolver (Arc: table snapshot, upstreams)
//!                                                   │ shared by every server
//!  container netns: 127.0.0.11:53 udp+tcp ──▶ one task per container ──▶ answer() ──▶ reply
//!   (sockets made there, served here)              │ not ours
//!                                                  └─▶ task per forward (host netns) ──▶ upstream
//! ```
//!
//! A socket belongs to the namespace it was created in, so `serve_in` creates both on a
//! thread that `setns`es into the container's namespace and hands them to tokio; the task
//! serving them runs on the daemon's runtime like any other. Dropping the [`Handle`] ends
//! the task and closes the sockets.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hickory_proto::op::Message;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinSet;

use super::answer::{self, Reply, Transport};
use super::forward::{self, read_framed, write_framed};
use super::records::{NameRecord, Table};
use super::scope::Scope;
use crate::error::{Error, Result};
use crate::netlink::Netlink;
use crate::netns;

/// Where Docker's embedded DNS server listens inside every container.
pub const ADDR: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    Ipv4Addr::new(127, 0, 0, 11),
    53,
));

/// libnetwork's `maxConcurrent`: forwarded queries in flight per container.
const MAX_IN_FLIGHT: usize = 1024;
/// How long a TCP client may stay idle between queries.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// The largest UDP query we read (queries are small; EDNS answers are not).
const UDP_QUERY_MAX: usize = 4096;

/// The node's embedded DNS: the record table and the upstreams, shared by every
/// container's server. Cheap to clone.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

struct Inner {
    /// What the agent gave, kept to rebuild the table when either half changes.
    given: Mutex<Given>,
    /// The snapshot every query reads.
    table: RwLock<Arc<Table>>,
    upstreams: Vec<SocketAddr>,
    timeout: Duration,
}

#[derive(Default)]
struct Given {
    records: Vec<NameRecord>,
    network_names: HashMap<String, String>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("names", &self.table().len())
            .field("upstreams", &self.inner.upstreams)
            .finish()
    }
}

impl Resolver {
    /// A resolver forwarding what is not ours to `upstreams` (see
    /// [`super::ResolvConf::upstreams`]): the first three are used, and our own address
    /// is left out (libnetwork's `filterExtServers`).
    pub fn new(upstreams: Vec<SocketAddr>) -> Self {
        Self::with_timeout(upstreams, forward::TIMEOUT)
    }

    /// [`Resolver::new`] with another per-upstream timeout (libnetwork: 4 s).
    pub fn with_timeout(upstreams: Vec<SocketAddr>, timeout: Duration) -> Self {
        let upstreams = upstreams
            .into_iter()
            .filter(|u| *u != ADDR)
            .take(forward::MAX_UPSTREAMS)
            .collect();
        Self {
            inner: Arc::new(Inner {
                given: Mutex::default(),
                table: RwLock::default(),
                upstreams,
                timeout,
            }),
        }
    }

    /// Replace every record. Queries already being answered finish on the old table.
    pub fn set_records(&self, records: Vec<NameRecord>) {
        let mut given = self.inner.given.lock().unwrap_or_else(|p| p.into_inner());
        given.records = records;
        self.publish(&given);
    }

    /// Replace the network ID → name map (for `<name>.<network>` and PTR answers).
    pub fn set_network_names(&self, names: HashMap<String, String>) {
        let mut given = self.inner.given.lock().unwrap_or_else(|p| p.into_inner());
        given.network_names = names;
        self.publish(&given);
    }

    /// Index what was given and swap it in (under the `given` lock, so two setters
    /// publish in the order they took it).
    fn publish(&self, given: &Given) {
        let table = Arc::new(Table::new(&given.records, &given.network_names));
        *self.inner.table.write().unwrap_or_else(|p| p.into_inner()) = table;
    }

    /// The current table (a snapshot).
    pub fn table(&self) -> Arc<Table> {
        self.inner
            .table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.inner.upstreams
    }

    /// Serve 127.0.0.11:53 (UDP and TCP) inside the network namespace at `netns` for a
    /// container on `networks` (IDs, in priority order). Brings `lo` up there. Must be
    /// called within a tokio runtime, which then runs the server.
    pub fn serve_in(&self, netns: &Path, networks: Vec<String>) -> Result<Handle> {
        self.serve(Some(netns), ADDR, Scope::new(networks))
    }

    /// The general form: serve `scope` on `listen` inside `netns` (`None`: the caller's
    /// own namespace, for tests and benchmarks that need no root; port 0 picks one, see
    /// [`Handle::addr`]).
    pub fn serve(&self, netns: Option<&Path>, listen: SocketAddr, scope: Scope) -> Result<Handle> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| Error::Invalid {
            what: "dns server runtime",
            value: "serve called outside a tokio runtime".into(),
        })?;
        if let Some(ns) = netns {
            Netlink::open(Some(ns))?.set_up_by_name("lo")?;
        }
        let (udp, tcp) = netns::run_in(netns, || -> std::io::Result<_> {
            let udp = std::net::UdpSocket::bind(listen)?;
            // The same port for TCP (port 0 picked one for UDP).
            let tcp = std::net::TcpListener::bind(udp.local_addr()?)?;
            udp.set_nonblocking(true)?;
            tcp.set_nonblocking(true)?;
            Ok((udp, tcp))
        })??;
        let addr = udp.local_addr()?;
        let _in_rt = rt.enter();
        let udp = Arc::new(UdpSocket::from_std(udp)?);
        let tcp = TcpListener::from_std(tcp)?;
        let (stop, stopped) = oneshot::channel();
        let server = Server {
            resolver: self.clone(),
            scope: Arc::new(scope),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        };
        let task = rt.spawn(server.run(udp, tcp, stopped));
        Ok(Handle {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A container's running server. Dropping it stops the server (the sockets close as soon
/// as the runtime gets to it); [`Handle::stop`] waits until they are closed.
#[derive(Debug)]
pub struct Handle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Handle {
    /// The address served (UDP and TCP), inside the container's namespace.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop serving and wait until both sockets are closed.
    pub async fn stop(mut self) {
        self.stop.take();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Dropping the sender wakes the server, which ends its tasks and closes its
        // sockets. (No abort: the task closes the sockets itself, in order.)
        self.stop.take();
    }
}

/// One container's server.
struct Server {
    resolver: Resolver,
    scope: Arc<Scope>,
    in_flight: Arc<Semaphore>,
}

impl Server {
    async fn run(self, udp: Arc<UdpSocket>, tcp: TcpListener, mut stopped: oneshot::Receiver<()>) {
        let me = Arc::new(self);
        // Forwards and TCP connections: ended with the server.
        let mut tasks = JoinSet::new();
        let mut buf = vec![0u8; UDP_QUERY_MAX];
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                got = udp.recv_from(&mut buf) => match got {
                    Ok((n, from)) => me.clone().on_udp(&buf[..n], from, &udp, &mut tasks).await,
                    Err(e) => tracing::debug!("dns udp receive: {e}"),
                },
                got = tcp.accept() => match got {
                    Ok((stream, _)) => {
                        tasks.spawn(me.clone().on_tcp(stream));
                    }
                    Err(e) => tracing::debug!("dns tcp accept: {e}"),
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        tasks.shutdown().await;
    }

    /// Answer one datagram: at once from the table, or from a task that forwards.
    async fn on_udp(
        self: Arc<Self>,
        bytes: &[u8],
        from: SocketAddr,
        udp: &Arc<UdpSocket>,
        tasks: &mut JoinSet<()>,
    ) {
        let Ok(query) = Message::from_vec(bytes) else {
            return;
        };
        match self.answer(&query) {
            Reply::Local(resp) => {
                if let Some(out) = answer::encode(resp, &query, Transport::Udp) {
                    let _ = udp.send_to(&out, from).await;
                }
            }
            Reply::Forward => {
                let bytes = bytes.to_vec();
                let udp = udp.clone();
                tasks.spawn(async move {
                    let out = self.forward(&query, &bytes, Transport::Udp).await;
                    if let Some(out) = out {
                        let _ = udp.send_to(&out, from).await;
                    }
                });
            }
            Reply::Drop => {}
        }
    }

    /// Serve one TCP connection: queries in turn until the client closes or idles.
    async fn on_tcp(self: Arc<Self>, mut stream: TcpStream) {
        while let Ok(Ok(bytes)) = tokio::time::timeout(TCP_IDLE, read_framed(&mut stream)).await {
            let Ok(query) = Message::from_vec(&bytes) else {
                return;
            };
            let out = match self.answer(&query) {
                Reply::Local(resp) => answer::encode(resp, &query, Transport::Tcp),
                Reply::Forward => self.forward(&query, &bytes, Transport::Tcp).await,
                Reply::Drop => continue,
            };
            let Some(out) = out else { return };
            if write_framed(&mut stream, &out).await.is_err() {
                return;
            }
        }
    }

    fn answer(&self, query: &Message) -> Reply {
        let table = self.resolver.table();
        answer::answer(&table, &self.scope, query, &mut rand::rng())
    }

    /// The upstream's answer, or SERVFAIL (none answered) or REFUSED (too many in flight).
    async fn forward(
        &self,
        query: &Message,
        bytes: &[u8],
        transport: Transport,
    ) -> Option<Vec<u8>> {
        let timeout = self.resolver.inner.timeout;
        let permit = tokio::time::timeout(timeout, self.in_flight.clone().acquire_owned()).await;
        let Ok(Ok(_permit)) = permit else {
            return answer::encode(answer::refused(query), query, transport);
        };
        let upstreams = match &self.scope.upstreams {
            Some(own) => own.as_slice(),
            None => self.resolver.upstreams(),
        };
        match forward::forward(upstreams, bytes, transport, timeout).await {
            Some(resp) => Some(resp),
            None => answer::encode(answer::servfail(query), query, transport),
        }
    }
}
