//! The calling side: openraft's `RaftNetworkFactory` over gRPC, and the [`LeaderClient`]
//! calls (forward, join, leave) over the same cached channels.
//!
//! One channel per peer address, made by the caller's [`Connect`] on first use and dropped
//! when a call finds the peer unavailable, so the next call connects again. Every call is
//! bounded by openraft's hard TTL (or the caller's timeout).

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

use super::proto::{JoinRequest, LeaveRequest, Payload, Reply};
use super::{RaftClient, APPEND_BUDGET_BYTES, MAX_MESSAGE_SIZE};
use crate::machine::StateMachine;
use crate::network::{BoxFuture, Forwarded, LeaderClient, LeaderError};
use crate::types::TypeConfig;

/// What a connector may fail with (a TLS connector brings its own errors).
pub type ConnectError = Box<dyn std::error::Error + Send + Sync>;

/// Opens a channel to a manager's cluster address: the daemon's is mutual TLS, tests use
/// [`PlainTcp`]. A closure `Fn(String) -> impl Future<Output = Result<Channel, _>>` is one.
pub trait Connect: Send + Sync + 'static {
    fn connect(
        &self,
        addr: &str,
    ) -> Pin<Box<dyn Future<Output = Result<Channel, ConnectError>> + Send + 'static>>;
}

impl<F, Fut> Connect for F
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Channel, ConnectError>> + Send + 'static,
{
    fn connect(
        &self,
        addr: &str,
    ) -> Pin<Box<dyn Future<Output = Result<Channel, ConnectError>> + Send + 'static>> {
        Box::pin(self(addr.to_string()))
    }
}

/// Plain HTTP/2 over TCP, no TLS: for tests and benchmarks on one machine.
#[derive(Debug, Clone, Copy)]
pub struct PlainTcp {
    pub connect_timeout: Duration,
}

impl Default for PlainTcp {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
        }
    }
}

impl Connect for PlainTcp {
    fn connect(
        &self,
        addr: &str,
    ) -> Pin<Box<dyn Future<Output = Result<Channel, ConnectError>> + Send + 'static>> {
        let uri = format!("http://{addr}");
        let timeout = self.connect_timeout;
        Box::pin(async move {
            let channel = Endpoint::from_shared(uri)?
                .connect_timeout(timeout)
                .tcp_nodelay(true)
                .connect()
                .await?;
            Ok(channel)
        })
    }
}

/// What every peer connection of one node shares.
struct Pool {
    from: u64,
    connector: Box<dyn Connect>,
    channels: Mutex<HashMap<String, Channel>>,
    /// When each peer last answered a call.
    contact: Mutex<HashMap<u64, Instant>>,
    /// Per peer, how many bytes of entries one AppendEntries carries.
    budgets: Mutex<HashMap<u64, AppendBudget>>,
}

/// The bytes of entries one AppendEntries to a peer carries, adapted to how long calls
/// take: openraft cuts every call off after one heartbeat interval and sends the same
/// batch again, so a batch that cannot make it in time (a loaded machine, a slow disk on
/// the follower) would be resent for ever. A call that did not finish (cut off: its
/// future dropped before it could say so, or timed out) halves the next one; a call
/// that finished doubles it again, up to [`APPEND_BUDGET_BYTES`]. At least one entry
/// always goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AppendBudget {
    bytes: usize,
    in_flight: bool,
}

/// The smallest budget: a few small entries, or one large one.
const MIN_APPEND_BUDGET_BYTES: usize = 16 * 1024;

impl Default for AppendBudget {
    fn default() -> Self {
        AppendBudget {
            bytes: APPEND_BUDGET_BYTES,
            in_flight: false,
        }
    }
}

impl AppendBudget {
    /// A call starts: the budget it may use (halved when the last one never finished).
    fn begin(&mut self) -> usize {
        if self.in_flight {
            self.shrink();
        }
        self.in_flight = true;
        self.bytes
    }

    /// The call ended: answered in time, or not.
    fn end(&mut self, in_time: bool) {
        self.in_flight = false;
        if in_time {
            self.bytes = (self.bytes * 2).min(APPEND_BUDGET_BYTES);
        } else {
            self.shrink();
        }
    }

    fn shrink(&mut self) {
        self.bytes = (self.bytes / 2).max(MIN_APPEND_BUDGET_BYTES);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pool {
    async fn channel(&self, addr: &str) -> Result<Channel, ConnectError> {
        if let Some(c) = lock(&self.channels).get(addr) {
            return Ok(c.clone());
        }
        let channel = self.connector.connect(addr).await?;
        lock(&self.channels).insert(addr.to_string(), channel.clone());
        Ok(channel)
    }

    fn forget(&self, addr: &str) {
        lock(&self.channels).remove(addr);
    }

    fn answered(&self, id: u64) {
        lock(&self.contact).insert(id, Instant::now());
    }
}

/// How a call failed before the callee answered.
enum CallError {
    Unreachable(String),
    Timeout(Duration),
    Network(String),
}

#[derive(Clone, Copy)]
enum Method {
    AppendEntries,
    Vote,
    InstallSnapshot,
    Forward,
}

enum Body {
    Payload(Method, Vec<u8>),
    Join(JoinRequest),
    Leave(LeaveRequest),
}

impl Pool {
    /// One unary call to `addr`, bounded by `ttl`; a reply (ok or the callee's error) or why
    /// there was none.
    async fn call(&self, addr: &str, body: Body, ttl: Duration) -> Result<Reply, CallError> {
        let attempt = async {
            let channel = self
                .channel(addr)
                .await
                .map_err(|e| CallError::Unreachable(format!("connect {addr}: {e}")))?;
            let mut client = RaftClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE);
            let res = match body {
                Body::Payload(method, json) => {
                    let req = Payload { json };
                    match method {
                        Method::AppendEntries => client.append_entries(req).await,
                        Method::Vote => client.vote(req).await,
                        Method::InstallSnapshot => client.install_snapshot(req).await,
                        Method::Forward => client.forward(req).await,
                    }
                }
                Body::Join(req) => client.join(req).await,
                Body::Leave(req) => client.leave(req).await,
            };
            res.map(|r| r.into_inner()).map_err(|status| {
                let why = format!("{addr}: {}: {}", status.code(), status.message());
                match status.code() {
                    // Connection refused or reset, server gone: connect again next time.
                    Code::Unavailable => {
                        self.forget(addr);
                        CallError::Unreachable(why)
                    }
                    Code::Unknown if is_transport(&status) => {
                        self.forget(addr);
                        CallError::Unreachable(why)
                    }
                    Code::DeadlineExceeded | Code::Cancelled => CallError::Timeout(ttl),
                    _ => CallError::Network(why),
                }
            })
        };
        match tokio::time::timeout(ttl, attempt).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout(ttl)),
        }
    }
}

/// A status made by the client's transport rather than sent by the server.
fn is_transport(status: &tonic::Status) -> bool {
    std::error::Error::source(status).is_some()
}

/// The Raft network of one node over gRPC; clones share channels and contact times, so a
/// clone serves as the node's [`LeaderClient`] too.
pub struct GrpcNetwork<S> {
    pool: Arc<Pool>,
    _sm: PhantomData<fn() -> S>,
}

impl<S> Clone for GrpcNetwork<S> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            _sm: PhantomData,
        }
    }
}

impl<S: StateMachine> GrpcNetwork<S> {
    /// The network of node `from`, connecting through `connector`.
    pub fn new(from: u64, connector: impl Connect) -> Self {
        Self {
            pool: Arc::new(Pool {
                from,
                connector: Box::new(connector),
                channels: Mutex::new(HashMap::new()),
                contact: Mutex::new(HashMap::new()),
                budgets: Mutex::new(HashMap::new()),
            }),
            _sm: PhantomData,
        }
    }

    /// Over plain TCP (tests).
    pub fn plain(from: u64) -> Self {
        Self::new(from, PlainTcp::default())
    }

    /// Calls the leader at `addr` with `body`, and decodes its answer.
    async fn leader_call<T: DeserializeOwned>(
        &self,
        addr: &str,
        body: Body,
        timeout: Duration,
    ) -> Result<T, LeaderError> {
        let reply = self
            .pool
            .call(addr, body, timeout)
            .await
            .map_err(|e| match e {
                CallError::Unreachable(why) | CallError::Network(why) => {
                    LeaderError::Unreachable(why)
                }
                CallError::Timeout(t) => LeaderError::Timeout(t),
            })?;
        if !reply.err.is_empty() {
            return Err(serde_json::from_slice(&reply.err).map_err(|e| {
                LeaderError::Unreachable(format!("{addr}: undecodable error reply: {e}"))
            })?);
        }
        serde_json::from_slice(&reply.ok)
            .map_err(|e| LeaderError::Unreachable(format!("{addr}: undecodable reply: {e}")))
    }
}

impl<S: StateMachine> RaftNetworkFactory<TypeConfig<S>> for GrpcNetwork<S> {
    type Network = GrpcPeer<S>;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> GrpcPeer<S> {
        GrpcPeer {
            pool: self.pool.clone(),
            target,
            addr: node.addr.clone(),
            _sm: PhantomData,
        }
    }
}

impl<S: StateMachine> LeaderClient<S> for GrpcNetwork<S> {
    fn forward(
        &self,
        leader_addr: String,
        cmd: Arc<S::Command>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Forwarded<S::Response>, LeaderError>> {
        Box::pin(async move {
            let json = serde_json::to_vec(&cmd)
                .map_err(|e| LeaderError::Refused(format!("encode command: {e}")))?;
            self.leader_call(&leader_addr, Body::Payload(Method::Forward, json), timeout)
                .await
        })
    }

    fn join(
        &self,
        leader_addr: String,
        id: u64,
        addr: String,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<(), LeaderError>> {
        Box::pin(async move {
            let body = Body::Join(JoinRequest { id, addr });
            self.leader_call(&leader_addr, body, timeout).await
        })
    }

    fn leave(
        &self,
        leader_addr: String,
        id: u64,
        force: bool,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<(), LeaderError>> {
        Box::pin(async move {
            let body = Body::Leave(LeaveRequest { id, force });
            self.leader_call(&leader_addr, body, timeout).await
        })
    }

    fn last_contact(&self, id: u64) -> Option<Instant> {
        lock(&self.pool.contact).get(&id).copied()
    }
}

/// One peer as openraft sees it.
pub struct GrpcPeer<S> {
    pool: Arc<Pool>,
    target: u64,
    addr: String,
    _sm: PhantomData<fn() -> S>,
}

impl<S: StateMachine> GrpcPeer<S> {
    async fn send<Req, Resp, E>(
        &self,
        method: Method,
        action: RPCTypes,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, BasicNode, RaftError<u64, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let network =
            |why: String| RPCError::Network(NetworkError::new(&std::io::Error::other(why)));
        let json = serde_json::to_vec(req).map_err(|e| network(format!("encode {action}: {e}")))?;
        let ttl = option.hard_ttl();
        let reply = self
            .pool
            .call(&self.addr, Body::Payload(method, json), ttl)
            .await
            .map_err(|e| match e {
                CallError::Unreachable(why) => RPCError::Unreachable(
                    openraft::error::Unreachable::new(&std::io::Error::other(why)),
                ),
                CallError::Timeout(timeout) => RPCError::Timeout(Timeout {
                    action,
                    id: self.pool.from,
                    target: self.target,
                    timeout,
                }),
                CallError::Network(why) => network(why),
            })?;
        self.pool.answered(self.target);
        if !reply.err.is_empty() {
            let e: RaftError<u64, E> = serde_json::from_slice(&reply.err)
                .map_err(|e| network(format!("decode {action} error: {e}")))?;
            return Err(RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                BasicNode::new(self.addr.clone()),
                e,
            )));
        }
        serde_json::from_slice(&reply.ok).map_err(|e| network(format!("decode {action}: {e}")))
    }
}

impl<S: StateMachine> RaftNetwork<TypeConfig<S>> for GrpcPeer<S> {
    /// Sends the entries that fit [`APPEND_BUDGET_BYTES`]; when that is not all of them, a
    /// success is openraft's `PartialSuccess` up to the last one sent.
    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig<S>>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        // Counted before anything is encoded, and the count stops at the budget: the
        // call must finish within one heartbeat, and encoding the whole request first (8 MiB
        // in grpc_cluster's large-entries test) alone took longer than that in a debug build.
        let budget = lock(&self.pool.budgets)
            .entry(self.target)
            .or_default()
            .begin();
        let fit = fitting(&rpc.entries, budget);
        let cut = fit < rpc.entries.len();
        rpc.entries.truncate(fit);
        let last_sent = rpc.entries.last().map(|e| e.log_id);
        let resp = self
            .send(
                Method::AppendEntries,
                RPCTypes::AppendEntries,
                &rpc,
                &option,
            )
            .await;
        let in_time = !matches!(resp, Err(RPCError::Timeout(_)));
        lock(&self.pool.budgets)
            .entry(self.target)
            .or_default()
            .end(in_time);
        let resp = resp?;
        Ok(match resp {
            AppendEntriesResponse::Success if cut => {
                AppendEntriesResponse::PartialSuccess(last_sent)
            }
            other => other,
        })
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig<S>>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        self.send(
            Method::InstallSnapshot,
            RPCTypes::InstallSnapshot,
            &rpc,
            &option,
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.send(Method::Vote, RPCTypes::Vote, &rpc, &option).await
    }
}

/// How many of `items`, from the first, fit in `budget` bytes of JSON (at least one).
fn fitting<T: Serialize>(items: &[T], budget: usize) -> usize {
    /// Counts what JSON would be written, without keeping it.
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    for (i, item) in items.iter().enumerate() {
        // An item that does not serialize fails the whole request's encoding anyway.
        let _ = serde_json::to_writer(&mut count, item);
        if count.0 > budget {
            return i.max(1);
        }
    }
    items.len()
}

#[cfg(test)]
mod tests {
    use super::{fitting, AppendBudget, APPEND_BUDGET_BYTES, MIN_APPEND_BUDGET_BYTES};

    #[test]
    fn a_call_cut_off_halves_the_next_batch_and_calls_in_time_grow_it_back() {
        let mut b = AppendBudget::default();
        assert_eq!(b.begin(), APPEND_BUDGET_BYTES);
        // openraft dropped the call at its timeout: `end` never ran.
        assert_eq!(b.begin(), APPEND_BUDGET_BYTES / 2);
        b.end(false); // and this one timed out
        assert_eq!(b.begin(), APPEND_BUDGET_BYTES / 4);
        b.end(true);
        assert_eq!(b.begin(), APPEND_BUDGET_BYTES / 2);
        b.end(true);
        assert_eq!(b.begin(), APPEND_BUDGET_BYTES);
        b.end(true);
        assert_eq!(b.begin(), APPEND_BUDGET_BYTES, "never above the maximum");
        for _ in 0..40 {
            b.end(false);
            b.begin();
        }
        assert_eq!(b.bytes, MIN_APPEND_BUDGET_BYTES, "never below the minimum");
    }

    #[test]
    fn entries_are_cut_to_the_budget_but_never_to_none() {
        let items = vec!["x".repeat(8); 10]; // 10 bytes of JSON each
        assert_eq!(fitting(&items, 1000), 10);
        assert_eq!(fitting(&items, 30), 3);
        assert_eq!(fitting(&items, 29), 2);
        assert_eq!(fitting(&items, 5), 1, "one too large is still sent");
        assert_eq!(fitting::<String>(&[], 5), 0);
    }
}
