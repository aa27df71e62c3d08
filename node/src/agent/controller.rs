//! One controller per assigned task: drives its container through Docker's task states
//! and reports every change.
//!
//! ```text
//!  ACCEPTED ─▶ PREPARING (pull) ─▶ READY ─▶ STARTING (create, start[, healthy]) ─▶ RUNNING
//!      │ pull/create error: REJECTED            │ start error: FAILED             │
//!      ▼                                        ▼                                 ▼
//!                     exit 0: COMPLETE · exit N: FAILED "task: non-zero exit (N)"
//!                     desired SHUTDOWN: stop with grace ─▶ SHUTDOWN
//!                     desired REMOVE (or unassigned): stop, remove the container, end
//! ```
//!
//! An adopted container (found by `runtime.list()` after a restart) enters at RUNNING,
//! or at its exit, without being restarted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use futures::future::{BoxFuture, FutureExt, Shared};
use swarm_runtime::container::health::{probe_args, Health, HealthMonitor};
use swarm_runtime::container::{ContainerRuntime, ContainerState, ExitStatus, Status};
use swarm_runtime::image::{Image, ImageStore, RegistryOptions};
use tokio::sync::{mpsc, watch};

use super::spec::{container_spec, task_files, DEFAULT_GRACE};
use super::{Assignment, Desired, ReportedState, StatusReport};
use crate::events::{Actor, Feed, Message};

/// What every controller of a node shares.
pub struct Ctx {
    pub rt: Arc<dyn ContainerRuntime>,
    pub images: Arc<ImageStore>,
    pub registry: RegistryOptions,
    pub reports: mpsc::UnboundedSender<StatusReport>,
    /// Pulls under way, by reference: tasks that need the same image at the same time
    /// share one attempt (50 replicas starting together make one registry round trip,
    /// not 50 name lookups and manifest requests).
    pub pulls: Mutex<HashMap<String, SharedPull>>,
    /// Task namespaces, overlays, VIPs, DNS.
    pub net: Arc<super::network::NetworkManager>,
    /// The node's container events (`GET /events`, scope local).
    pub events: Arc<Feed>,
}

type SharedPull = Shared<BoxFuture<'static, Result<Image, String>>>;

impl Ctx {
    pub(crate) fn report(
        &self,
        task: &str,
        state: ReportedState,
        message: &str,
        err: Option<String>,
    ) {
        self.report_full(task, state, message, err, None, None);
    }

    fn report_full(
        &self,
        task: &str,
        state: ReportedState,
        message: &str,
        err: Option<String>,
        exit_code: Option<i32>,
        pid: Option<i32>,
    ) {
        self.send(status(task, state, message, err, exit_code, pid));
    }

    /// A task that ended: its status with the container's last lines, which the
    /// managers keep for when this node is gone.
    async fn report_ended(
        &self,
        task: &str,
        state: ReportedState,
        message: &str,
        err: Option<String>,
        exit_code: Option<i32>,
    ) {
        let mut r = status(task, state, message, err, exit_code, None);
        r.log_tail = self.log_tail(task).await;
        self.send(r);
    }

    fn send(&self, r: StatusReport) {
        tracing::debug!(task = %r.task_id, state = ?r.state, message = %r.message, err = ?r.err, "task status");
        let _ = self.reports.send(r);
    }

    /// The container's last lines, each cut to the kept length.
    async fn log_tail(&self, task: &str) -> Vec<swarm_core::model::TailLine> {
        use futures::StreamExt;
        use swarm_core::model::{TailLine, LOG_TAIL_LINES, LOG_TAIL_LINE_BYTES};
        use swarm_runtime::container::logs::{read, LogStream, ReadOptions};
        let opts = ReadOptions {
            tail: Some(LOG_TAIL_LINES),
            ..ReadOptions::default()
        };
        read(self.rt.log_path(task), opts)
            .filter_map(|e| async move { e.ok() })
            .map(|e| {
                let mut line = e.line;
                if line.len() > LOG_TAIL_LINE_BYTES {
                    line.truncate(LOG_TAIL_LINE_BYTES);
                    line.push(b'\n');
                }
                TailLine {
                    time: e.time,
                    stream: if e.stream == LogStream::Stderr { 2 } else { 1 },
                    line: String::from_utf8_lossy(&line).into_owned(),
                }
            })
            .take(LOG_TAIL_LINES)
            .collect()
            .await
    }

    /// A container event as dockerd sends it for a task's container: its labels (the
    /// spec's and `com.docker.swarm.*`), `image` and `name`, plus `extra`.
    fn event(&self, a: &Assignment, action: &str, extra: &[(&str, String)]) {
        let who = &a.who;
        let mut attributes = super::spec::task_labels(who, &a.spec);
        let image = super::spec::container_of(&a.spec).image.clone();
        for (k, v) in [("image", image), ("name", who.task_name())]
            .into_iter()
            .chain(extra.iter().cloned())
        {
            attributes.insert(k.to_owned(), v);
        }
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        self.events.publish(vec![Message {
            kind: "container".into(),
            action: action.into(),
            actor: Actor {
                id: who.task_id.clone(),
                attributes,
            },
            scope: "local".into(),
            time: nanos.div_euclid(1_000_000_000),
            time_nano: nanos,
        }]);
    }

    /// A container stopped on purpose: Docker's `die` (with the exit code), then `stop`.
    fn stopped(&self, a: &Assignment, exit: &ExitStatus) {
        self.event(a, "die", &[("exitCode", exit.code.to_string())]);
        self.event(a, "stop", &[]);
    }

    /// Pull the image, or use the local one: an image loaded without a registry, or a
    /// registry that is down while the image is already here.
    async fn image(&self, reference: &str) -> Result<Image, String> {
        if reference.contains("@sha256:") {
            if let Ok(img) = self.images.get(reference) {
                return Ok(img);
            }
        }
        let pull = {
            let mut pulls = self.pulls.lock().expect("pulls lock");
            pulls
                .entry(reference.to_string())
                .or_insert_with(|| {
                    let (images, registry) = (self.images.clone(), self.registry.clone());
                    let reference = reference.to_string();
                    async move {
                        let pulled = images.pull(&reference, &registry).await;
                        crate::metrics::image_pull(pulled.is_ok());
                        match pulled {
                            Ok(img) => Ok(img),
                            Err(e) => images.get(&reference).map_err(|_| e.to_string()),
                        }
                    }
                    .boxed()
                    .shared()
                })
                .clone()
        };
        let result = pull.clone().await;
        // The first waiter to finish forgets the attempt, so a later task pulls afresh
        // (a new tag pushed meanwhile is seen, as with Docker).
        let mut pulls = self.pulls.lock().expect("pulls lock");
        if pulls.get(reference).is_some_and(|p| p.ptr_eq(&pull)) {
            pulls.remove(reference);
        }
        result
    }
}

/// Where a task's container stands once the start phase is over.
enum Phase {
    /// Running, with its health monitor when it has a check (probing for the whole life
    /// of the container, as Docker's).
    Running(Option<i32>, Option<HealthMonitor>),
    Exited(ExitStatus),
    /// Never got a container that ran (rejected, failed to start, shut down early).
    Done,
}

pub async fn run(
    ctx: Arc<Ctx>,
    a: Assignment,
    mut desired: watch::Receiver<Desired>,
    adopted: Option<ContainerState>,
) {
    let id = a.who.task_id.clone();
    let phase = match adopted {
        Some(st) => match (st.status, st.exit) {
            (Status::Running, _) => {
                tracing::info!(task = %id, pid = ?st.pid, "adopted running container");
                // Converge its networking again (a restart finds it all in place).
                if let Err(e) = ctx.net.prepare(&a).await {
                    tracing::warn!(task = %id, "networks of an adopted container: {e}");
                }
                // Its health check goes on where the previous agent left it.
                let monitor = health_config(&ctx, &a)
                    .await
                    .map(|cfg| HealthMonitor::spawn(ctx.rt.clone(), id.clone(), cfg));
                Phase::Running(st.pid, monitor)
            }
            (Status::Exited, Some(exit)) => Phase::Exited(exit),
            // Created but never started: the node died between create and start.
            _ => start(&ctx, &a, &mut desired, true).await,
        },
        None => start(&ctx, &a, &mut desired, false).await,
    };
    let phase = match phase {
        Phase::Running(pid, monitor) => {
            ctx.report_full(&id, ReportedState::Running, "started", None, None, pid);
            supervise(&ctx, &a, &mut desired, monitor).await
        }
        other => other,
    };
    if let Phase::Exited(exit) = phase {
        ctx.event(&a, "die", &[("exitCode", exit.code.to_string())]);
        report_exit(&ctx, &id, &exit).await;
    }
    // Terminal: its addresses go back to the allocator now (a task past RUNNING holds
    // none), so its interfaces must go now too, as Docker releases a stopped container's
    // endpoints: a new task given the same address on this node would otherwise share
    // it (and its MAC) with this one's leftover interface on the overlay's bridge.
    ctx.net.release(&id).await;
    // Keep the container (its logs, its exit) until the task goes away.
    while *desired.borrow_and_update() != Desired::Remove {
        if desired.changed().await.is_err() {
            break;
        }
    }
    if remove(&ctx, &id).await {
        ctx.event(&a, "destroy", &[]);
    }
}

async fn start(
    ctx: &Ctx,
    a: &Assignment,
    desired: &mut watch::Receiver<Desired>,
    created: bool,
) -> Phase {
    let id = &a.who.task_id;
    if *desired.borrow() != Desired::Running {
        ctx.report(id, ReportedState::Shutdown, "shutdown", None);
        return Phase::Done;
    }
    if !created {
        ctx.report(id, ReportedState::Accepted, "accepted", None);
        ctx.report(id, ReportedState::Preparing, "preparing", None);
        let image = match ctx.image(&super::spec::container_of(&a.spec).image).await {
            Ok(img) => img,
            Err(e) => {
                ctx.report(id, ReportedState::Rejected, "preparing", Some(e));
                return Phase::Done;
            }
        };
        let mut spec = container_spec(&a.who, &a.spec, image);
        spec.files = match task_files(&a.spec, &a.data) {
            Ok(files) => files,
            Err(e) => {
                ctx.report(id, ReportedState::Rejected, "preparing", Some(e));
                return Phase::Done;
            }
        };
        // Its namespace, interfaces, VIPs and resolver before the container exists.
        match ctx.net.prepare(a).await {
            Ok(p) => super::spec::with_network(&mut spec, &p),
            Err(e) => {
                ctx.report(id, ReportedState::Rejected, "preparing", Some(e));
                ctx.net.release(id).await;
                return Phase::Done;
            }
        }
        if let Err(e) = ctx.rt.create(&spec).await {
            ctx.report(
                id,
                ReportedState::Rejected,
                "preparing",
                Some(e.to_string()),
            );
            // A half-created container must not stay behind.
            let _ = ctx.rt.remove(id).await;
            return Phase::Done;
        }
        ctx.event(a, "create", &[]);
        ctx.report(id, ReportedState::Ready, "prepared", None);
    }
    if *desired.borrow() != Desired::Running {
        ctx.report(id, ReportedState::Shutdown, "shutdown", None);
        return Phase::Done;
    }
    ctx.report(id, ReportedState::Starting, "starting", None);
    if let Err(e) = ctx.rt.start(id).await {
        ctx.report(id, ReportedState::Failed, "starting", Some(e.to_string()));
        return Phase::Done;
    }
    ctx.event(a, "start", &[]);
    let st = ctx.rt.state(id).await.ok();
    let pid = st.as_ref().and_then(|s| s.pid);
    // With a health check, RUNNING waits for the first healthy probe (as Docker).
    let mut monitor = None;
    if let Some(cfg) = health_config(ctx, a).await {
        let m = monitor.insert(HealthMonitor::spawn(ctx.rt.clone(), id.clone(), cfg));
        let mut health = m.watch();
        loop {
            let h = health.borrow_and_update().status;
            match h {
                Health::Healthy => {
                    ctx.event(a, "health_status: healthy", &[]);
                    break;
                }
                Health::Unhealthy => return fail_unhealthy(ctx, a).await,
                Health::Starting => {}
            }
            tokio::select! {
                r = health.changed() => if r.is_err() { break },
                exit = ctx.rt.wait(id) => return match exit {
                    Ok(exit) => Phase::Exited(exit),
                    Err(e) => {
                        ctx.report(id, ReportedState::Failed, "failed", Some(e.to_string()));
                        Phase::Done
                    }
                },
                _ = until_not_running(desired) => {
                    return stop(ctx, a).await;
                }
            }
        }
    }
    Phase::Running(pid, monitor)
}

/// The health check failed `retries` times in a row: the container is stopped and the
/// task fails, so the orchestrator replaces it (and the VIP, the mesh and DNS, which
/// follow running tasks, leave it), as swarmkit does with an unhealthy container.
async fn fail_unhealthy(ctx: &Ctx, a: &Assignment) -> Phase {
    let id = &a.who.task_id;
    tracing::info!(task = %id, "container unhealthy: stopping it");
    ctx.event(a, "health_status: unhealthy", &[]);
    if let Ok(exit) = ctx.rt.stop(id, None, grace(a)).await {
        ctx.stopped(a, &exit);
    }
    ctx.report(
        id,
        ReportedState::Failed,
        "unhealthy",
        Some("unhealthy container".into()),
    );
    Phase::Done
}

async fn health_config(ctx: &Ctx, a: &Assignment) -> Option<swarm_runtime::image::HealthConfig> {
    let container = super::spec::container_of(&a.spec);
    // The spec's check completed from the image's, as the container was built with it.
    let image = ctx.images.get(&container.image).ok();
    let image_health = image.as_ref().and_then(|i| i.config.healthcheck.as_ref());
    let cfg = super::spec::effective_health(container.healthcheck.as_ref(), image_health)?;
    probe_args(&cfg).map(|_| cfg)
}

/// RUNNING until the container exits, the task is no longer wanted, or its health
/// check fails (probed for the whole life of the container, not only until healthy).
async fn supervise(
    ctx: &Ctx,
    a: &Assignment,
    desired: &mut watch::Receiver<Desired>,
    monitor: Option<HealthMonitor>,
) -> Phase {
    let id = &a.who.task_id;
    tokio::select! {
        exit = ctx.rt.wait(id) => match exit {
            Ok(exit) => Phase::Exited(exit),
            Err(e) => {
                ctx.report(id, ReportedState::Failed, "failed", Some(e.to_string()));
                Phase::Done
            }
        },
        _ = until_not_running(desired) => stop(ctx, a).await,
        _ = until_unhealthy(monitor.as_ref()) => fail_unhealthy(ctx, a).await,
    }
}

/// Resolves once the monitor reports unhealthy; never without a monitor.
async fn until_unhealthy(monitor: Option<&HealthMonitor>) {
    let Some(m) = monitor else {
        return std::future::pending().await;
    };
    let mut health = m.watch();
    loop {
        if health.borrow_and_update().status == Health::Unhealthy {
            return;
        }
        if health.changed().await.is_err() {
            // The monitor ended (the container is gone): the exit is seen elsewhere.
            return std::future::pending().await;
        }
    }
}

async fn stop(ctx: &Ctx, a: &Assignment) -> Phase {
    let id = &a.who.task_id;
    match ctx.rt.stop(id, None, grace(a)).await {
        Ok(exit) => {
            ctx.stopped(a, &exit);
            ctx.report_ended(
                id,
                ReportedState::Shutdown,
                "shutdown",
                None,
                Some(exit.code),
            )
            .await
        }
        Err(e) => ctx.report(id, ReportedState::Shutdown, "shutdown", Some(e.to_string())),
    }
    Phase::Done
}

/// A status report stamped now.
fn status(
    task: &str,
    state: ReportedState,
    message: &str,
    err: Option<String>,
    exit_code: Option<i32>,
    pid: Option<i32>,
) -> StatusReport {
    StatusReport {
        task_id: task.to_string(),
        state,
        message: message.to_string(),
        err,
        exit_code,
        pid,
        timestamp: Utc::now(),
        log_tail: Vec::new(),
    }
}

fn grace(a: &Assignment) -> std::time::Duration {
    super::spec::container_of(&a.spec)
        .stop_grace_period
        .map(|n| std::time::Duration::from_nanos(n.max(0) as u64))
        .unwrap_or(DEFAULT_GRACE)
}

async fn until_not_running(desired: &mut watch::Receiver<Desired>) {
    while *desired.borrow_and_update() == Desired::Running {
        if desired.changed().await.is_err() {
            // The agent dropped this task without a word: keep running (a restart
            // of the agent adopts it again).
            std::future::pending::<()>().await;
        }
    }
}

async fn report_exit(ctx: &Ctx, id: &str, exit: &ExitStatus) {
    if exit.code == 0 {
        ctx.report_ended(id, ReportedState::Complete, "finished", None, Some(0))
            .await;
    } else {
        let mut err = format!("task: non-zero exit ({})", exit.code);
        if exit.oom_killed {
            err.push_str(": OOM killed");
        }
        ctx.report_ended(
            id,
            ReportedState::Failed,
            "failed",
            Some(err),
            Some(exit.code),
        )
        .await;
    }
}

/// Stop and remove a container and release its networking; true when a container was
/// there and is gone.
async fn remove(ctx: &Ctx, id: &str) -> bool {
    // Stop first: remove refuses (or must kill) a running container.
    if let Ok(st) = ctx.rt.state(id).await {
        if st.status == Status::Running {
            let _ = ctx.rt.stop(id, None, DEFAULT_GRACE).await;
        }
    }
    let removed = match ctx.rt.remove(id).await {
        Ok(()) => {
            tracing::debug!(task = id, "container removed");
            true
        }
        Err(swarm_runtime::Error::NoSuchContainer(_)) => false,
        Err(e) => {
            tracing::warn!(task = id, "remove container: {e}");
            false
        }
    };
    ctx.net.release(id).await;
    removed
}

/// Remove a container no task claims any more (found at adoption).
pub async fn remove_orphan(ctx: &Ctx, id: &str) {
    tracing::info!(
        container = id,
        "removing container of a task no longer assigned"
    );
    remove(ctx, id).await;
}
