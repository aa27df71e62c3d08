//! The dispatcher protocol (issue 15, item 1): a message an agent cannot use ends its
//! session and never touches what runs. On netns hosts (`rootfs_tests::cluster`): h0
//! inits, h1 joins as a worker and runs both tasks of a service. h0's swarmd is killed,
//! and a fake dispatcher takes h0's cluster address with h0's own certificate (so h1
//! trusts it) and answers each of h1's sessions with one unusable message: the empty
//! full set a manager of the JSON era sends (protocol 0: without the version check it
//! would remove every container), a protocol from the future, a task spec that is not a
//! TaskSpec, an unknown desired state, networks with an address that does not parse.
//! h1 ends each session (it dials again, and its log names the reason), and its two
//! containers run on with the PIDs they had. When h0 comes back, the same tasks run, never
//! restarted.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use rootfs_tests::cluster::Cluster;
use rootfs_tests::swarmd::{alive, wait_for};
use swarm_node::cluster::proto::dispatcher_server::{Dispatcher, DispatcherServer};
use swarm_node::cluster::proto::{
    self, Empty, HeartbeatRequest, HeartbeatResponse, LogBatch, LogSubscription, SessionMessage,
    SessionRequest, StatusRequest,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Serves one queued message per session, then refuses sessions.
struct Fake {
    queue: Mutex<VecDeque<SessionMessage>>,
    /// Sessions asked for, and the protocol each agent said it speaks.
    sessions: Arc<Mutex<Vec<u32>>>,
    /// Keeps each session's stream open: the agent is the one that ends it.
    open: Mutex<Vec<mpsc::Sender<Result<SessionMessage, Status>>>>,
}

#[tonic::async_trait]
impl Dispatcher for Fake {
    type SessionStream = ReceiverStream<Result<SessionMessage, Status>>;
    type SubscribeLogsStream = ReceiverStream<Result<LogBatch, Status>>;

    async fn session(
        &self,
        req: Request<SessionRequest>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        self.sessions.lock().unwrap().push(req.get_ref().protocol);
        let Some(msg) = self.queue.lock().unwrap().pop_front() else {
            return Err(Status::unavailable("the fake dispatcher has nothing more"));
        };
        let (tx, rx) = mpsc::channel(1);
        tx.send(Ok(msg)).await.expect("the receiver is here");
        self.open.lock().unwrap().push(tx);
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn heartbeat(
        &self,
        _: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        Ok(Response::new(HeartbeatResponse { period_ms: 5000 }))
    }

    async fn update_task_status(
        &self,
        _: Request<StatusRequest>,
    ) -> Result<Response<Empty>, Status> {
        Ok(Response::new(Empty {}))
    }

    async fn publish_logs(
        &self,
        _: Request<tonic::Streaming<LogBatch>>,
    ) -> Result<Response<Empty>, Status> {
        Ok(Response::new(Empty {}))
    }

    async fn subscribe_logs(
        &self,
        _: Request<LogSubscription>,
    ) -> Result<Response<Self::SubscribeLogsStream>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

/// What h1 is sent, one per session, with the reason its log must name.
fn unusable(task: &str, node: &str, manager: &str) -> Vec<(SessionMessage, &'static str)> {
    let base = SessionMessage {
        session_id: "fake".into(),
        protocol: swarm_node::wire::PROTOCOL,
        full: true,
        heartbeat_period_ms: 5000,
        managers: vec![manager.to_string()],
        role: "worker".into(),
        ..SessionMessage::default()
    };
    let spec = serde_json::to_vec(&serde_json::json!({
        "ContainerSpec": {"Image": "busybox", "Args": ["sleep", "1d"]}
    }))
    .expect("json");
    let task = |desired: i32, spec: &[u8]| proto::Assignment {
        task_id: task.to_string(),
        service_id: "s".into(),
        service_name: "keep".into(),
        node_id: node.to_string(),
        slot: 1,
        desired,
        spec: spec.to_vec(),
        ..proto::Assignment::default()
    };
    let running = proto::DesiredState::Running as i32;
    vec![
        (
            SessionMessage {
                protocol: 0,
                ..base.clone()
            },
            "the dispatcher speaks protocol 0",
        ),
        (
            SessionMessage {
                protocol: swarm_node::wire::PROTOCOL + 1,
                ..base.clone()
            },
            "the dispatcher speaks protocol 2",
        ),
        (
            SessionMessage {
                tasks: vec![task(running, b"{not json")],
                ..base.clone()
            },
            "spec: ",
        ),
        (
            SessionMessage {
                tasks: vec![task(running, &spec), task(17, &spec)],
                ..base.clone()
            },
            "unknown desired state 17",
        ),
        (
            SessionMessage {
                node_networks: Some(proto::NodeNetworks {
                    local_underlay: "10.0.0.300".into(),
                    ..proto::NodeNetworks::default()
                }),
                ..base
            },
            "not an IPv4 address: \"10.0.0.300\"",
        ),
    ]
}

#[test]
fn an_unusable_dispatcher_message_never_touches_what_runs() -> Result<()> {
    let mut c = Cluster::new(2)?;
    let h0 = c.host(0);
    h0.swarm_ok(&["swarm", "init", "--advertise-addr", &h0.addr()])?;
    c.join_workers()?;
    c.host(0).swarm_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "keep",
        "--replicas",
        "2",
        "--constraint",
        "node.role==worker",
        &c.image("1"),
        "sleep",
        "1d",
    ])?;
    let before = c.host(0).wait_running("keep", 2)?;
    let pids: Vec<i64> = before.iter().map(|t| t.pid).collect();
    ensure!(pids.iter().all(|&p| p > 0 && alive(p)), "pids {pids:?}");
    let h1_id = c.host(1).ok("GET", "/info", None)?["Swarm"]["NodeID"]
        .as_str()
        .context("h1's node ID")?
        .to_string();

    // h0 goes; a fake dispatcher takes its address, with its certificate.
    let manager = c.host(0).addr();
    let identity = swarm_identity::NodeIdentity::load(&c.host(0).data.join("certificates"))?;
    c.kill9(0)?;
    let listener = c
        .host(0)
        .in_netns(|| std::net::TcpListener::bind(&manager))?
        .with_context(|| format!("bind {manager} in h0's namespace"))?;
    listener.set_nonblocking(true)?;
    let cases = unusable(&before[0].id, &h1_id, &manager);
    let sessions = Arc::new(Mutex::new(Vec::new()));
    let fake = Fake {
        queue: Mutex::new(cases.iter().map(|(m, _)| m.clone()).collect()),
        sessions: sessions.clone(),
        open: Mutex::default(),
    };
    let rt = tokio::runtime::Runtime::new()?;
    let tls = swarm_identity::ClusterTls::new(&identity)?;
    let server = rt.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        tonic::transport::Server::builder()
            .add_service(DispatcherServer::new(fake))
            .serve_with_incoming(swarm_identity::serve_incoming(listener, tls))
            .await
    });

    // Every message was taken and refused: h1 came back for one more session.
    wait_for(
        "h1 to have ended every fake session",
        Duration::from_secs(60),
        || Ok((sessions.lock().unwrap().len() > cases.len()).then_some(())),
    )
    .with_context(|| c.host(1).log_tail())?;
    let spoken = sessions.lock().unwrap().clone();
    ensure!(
        spoken.iter().all(|&p| p == swarm_node::wire::PROTOCOL),
        "h1 said it speaks {spoken:?}"
    );
    let log = std::fs::read_to_string(c.host(1).config.dir.join("swarmd.log"))?;
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("unusable message from the dispatcher"))
        .collect();
    for (_, why) in &cases {
        ensure!(
            refusals.iter().any(|l| l.contains(why)),
            "no refusal naming {why:?} in h1's log:\n{}",
            refusals.join("\n")
        );
    }
    ensure!(
        refusals.len() >= cases.len(),
        "{} refusals for {} messages",
        refusals.len(),
        cases.len()
    );
    // Both containers still run, the same processes.
    for &p in &pids {
        ensure!(
            alive(p),
            "task process {p} is gone:\n{}",
            c.host(1).log_tail()
        );
    }
    let listed = c.host(1).ok("GET", "/containers/json", None)?;
    let running = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter(|x| x["State"] == "running")
        .count();
    ensure!(running == 2, "h1 runs {running} containers: {listed}");

    // The real manager again: the same tasks, never restarted.
    server.abort();
    drop(rt);
    c.restart(0)?;
    let after = c.host(0).wait_running("keep", 2)?;
    ensure!(
        after.iter().map(|t| t.pid).collect::<Vec<_>>() == pids,
        "tasks restarted: {before:?} -> {after:?}"
    );
    ensure!(
        after.iter().map(|t| &t.id).eq(before.iter().map(|t| &t.id)),
        "tasks replaced: {before:?} -> {after:?}"
    );
    Ok(())
}
