//! The containerd backend: a host's containerd (1.6+) over gRPC on its unix socket, runc
//! underneath. Images and rootfs are ours: containerd's content store and snapshotters
//! are not used; the container's spec points at the overlay rootfs [`bundle`] mounted.
//!
//! ```text
//!  create: bundle::prepare ─▶ Containers.Create(spec Any, root.path absolute)
//!          mkfifo stdout/stderr + copier threads ─▶ Tasks.Create(no rootfs mounts)
//!          watcher: Tasks.Wait (issued before Start) ─▶ OOM counter ─▶ record ─▶ Tasks.Delete
//!  start:  Tasks.Start
//!  remove: Tasks.Delete, Containers.Delete, bundle::cleanup
//! ```
//!
//! What containerd forgets once a task is deleted (exit code, OOM, times) lives in our
//! record in the container dir ([`record`]). A restarted caller ([`ContainerdRuntime::connect`])
//! lists the containers carrying our owner label and adopts them: it reopens the FIFOs
//! of live tasks and watches them; a task that exited meanwhile still holds its exit
//! status in containerd until we delete it, so no exit code is lost.

mod exec;
mod fifo;
mod record;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::version_client::VersionClient;
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest,
    DeleteProcessRequest, DeleteTaskRequest, ExecProcessRequest, GetContainerRequest, GetRequest,
    KillRequest, ListContainersRequest, StartRequest, WaitRequest, WaitResponse,
};
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{self, Code, Request};
use containerd_client::types::v1::{Process, Status as TaskStatus};
use prost_types::Any;
use tokio::sync::watch;

use self::fifo::Copier;
use self::record::Record;
use super::bundle;
use super::logs::{LogStream, LogWriter};
use super::{
    ContainerRuntime, ContainerSpec, ContainerState, ExecOutput, ExecSpec, ExitStatus,
    RuntimeConfig, Status,
};
use crate::{Error, Result};

const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
const RUNC_V2: &str = "io.containerd.runc.v2";
/// Marks the containers of one node (its data dir): several nodes may share a
/// containerd namespace and must never adopt each other's containers.
const OWNER_LABEL: &str = "io.swarm.runtime.data-dir";
/// How long copiers may take to drain a process's output after it exited.
const DRAIN: Duration = Duration::from_secs(2);
/// How long a SIGKILLed task may take to be reported gone.
const KILL_WAIT: Duration = Duration::from_secs(30);
const SIGKILL: u32 = libc::SIGKILL as u32;

/// [`ContainerRuntime`] over containerd. Dropping it stops watching (as if the caller
/// died): containers keep running and the next [`ContainerdRuntime::connect`] adopts them.
pub struct ContainerdRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: RuntimeConfig,
    namespace: String,
    channel: Channel,
    /// Containers whose task we watch.
    tracked: Mutex<HashMap<String, Tracked>>,
    /// Serializes read-modify-write of records.
    record_lock: Mutex<()>,
    exec_seq: AtomicU64,
}

struct Tracked {
    exit: watch::Receiver<Option<ExitStatus>>,
    watcher: tokio::task::JoinHandle<()>,
    stop_copier: Option<Arc<AtomicBool>>,
}

impl Tracked {
    fn stop(&self) {
        self.watcher.abort();
        if let Some(stop) = &self.stop_copier {
            stop.store(true, Ordering::SeqCst);
        }
    }
}

/// containerd's version string (`v1.6.20`): proves the socket answers.
pub async fn version(socket: &Path) -> Result<String> {
    let channel = connect_channel(socket).await?;
    let v = VersionClient::new(channel)
        .version(Request::new(()))
        .await
        .map_err(|s| rpc_error("", "version", s))?;
    Ok(v.into_inner().version)
}

async fn connect_channel(socket: &Path) -> Result<Channel> {
    containerd_client::connect(socket)
        .await
        .map_err(|e| Error::Containerd(format!("connect {}: {e}", socket.display())))
}

impl ContainerdRuntime {
    /// Connect to containerd at `socket`, in containerd namespace `namespace`, and adopt
    /// this node's containers found there.
    pub async fn connect(cfg: RuntimeConfig, socket: &Path, namespace: &str) -> Result<Self> {
        let ns_ok = namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            && namespace.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !ns_ok {
            return Err(Error::InvalidSpec(format!(
                "invalid containerd namespace: {namespace:?}"
            )));
        }
        let channel = connect_channel(socket).await?;
        VersionClient::new(channel.clone())
            .version(Request::new(()))
            .await
            .map_err(|s| rpc_error("", "version", s))?;
        let inner = Arc::new(Inner {
            cfg,
            namespace: namespace.to_string(),
            channel,
            tracked: Mutex::new(HashMap::new()),
            record_lock: Mutex::new(()),
            exec_seq: AtomicU64::new(0),
        });
        for c in inner.list_ours().await? {
            if let Err(e) = inner.adopt(&c.id).await {
                tracing::warn!(id = %c.id, "adopt container: {e}");
            }
        }
        Ok(ContainerdRuntime { inner })
    }
}

impl Drop for ContainerdRuntime {
    fn drop(&mut self) {
        let tracked = std::mem::take(&mut *lock(&self.inner.tracked));
        for t in tracked.values() {
            t.stop();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    /// Every call carries the namespace header; containerd rejects calls without one.
    fn req<T>(&self, msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        if let Ok(v) = self.namespace.parse() {
            req.metadata_mut().insert("containerd-namespace", v);
        }
        req
    }

    fn tasks(&self) -> TasksClient<Channel> {
        TasksClient::new(self.channel.clone())
    }

    fn containers(&self) -> ContainersClient<Channel> {
        ContainersClient::new(self.channel.clone())
    }

    fn dir(&self, id: &str) -> PathBuf {
        bundle::container_dir(&self.cfg, id)
    }

    fn is_ours(&self, c: &Container) -> bool {
        c.labels.get(OWNER_LABEL).map(String::as_str) == self.cfg.data_dir.to_str()
    }

    async fn get_container(&self, id: &str) -> Result<Option<Container>> {
        let req = self.req(GetContainerRequest { id: id.into() });
        match self.containers().get(req).await {
            Ok(r) => Ok(r.into_inner().container.filter(|c| self.is_ours(c))),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(rpc_error(id, "get container", s)),
        }
    }

    async fn list_ours(&self) -> Result<Vec<Container>> {
        let req = self.req(ListContainersRequest { filters: vec![] });
        let list = self
            .containers()
            .list(req)
            .await
            .map_err(|s| rpc_error("", "list containers", s))?;
        let mut ours: Vec<Container> = list
            .into_inner()
            .containers
            .into_iter()
            .filter(|c| self.is_ours(c))
            .collect();
        ours.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(ours)
    }

    async fn get_task(&self, id: &str) -> Result<Option<Process>> {
        let req = self.req(GetRequest {
            container_id: id.into(),
            exec_id: String::new(),
        });
        match self.tasks().get(req).await {
            Ok(r) => Ok(r.into_inner().process),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(rpc_error(id, "get task", s)),
        }
    }

    async fn kill_task(&self, id: &str, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        let req = self.req(KillRequest {
            container_id: id.into(),
            exec_id: exec_id.into(),
            signal,
            all,
        });
        self.tasks()
            .kill(req)
            .await
            .map(|_| ())
            .map_err(|s| match s.code() {
                Code::NotFound => Error::Other(format!(
                    "cannot kill container {id}: container is not running"
                )),
                _ => rpc_error(id, "kill task", s),
            })
    }

    /// Delete the task (its shim goes away, runc removes the cgroup). Gone already is fine.
    async fn delete_task(&self, id: &str) -> Result<()> {
        let req = self.req(DeleteTaskRequest {
            container_id: id.into(),
        });
        match self.tasks().delete(req).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(rpc_error(id, "delete task", s)),
        }
    }

    fn update_record(&self, id: &str, f: impl FnOnce(&mut Record)) -> Result<()> {
        let _g = lock(&self.record_lock);
        let dir = self.dir(id);
        let mut rec = record::load(&dir)?.ok_or_else(|| Error::NoSuchContainer(id.into()))?;
        f(&mut rec);
        record::save(&dir, &rec)
    }

    fn load_record(&self, id: &str) -> Result<Option<Record>> {
        let _g = lock(&self.record_lock);
        record::load(&self.dir(id))
    }

    /// Copy the task's stdout/stderr FIFOs into the container log.
    fn log_copier(&self, id: &str, rec: &Record) -> Result<Copier> {
        let dir = self.dir(id);
        let log_path = bundle::log_path(&self.cfg, id);
        let mut writer = LogWriter::open(&log_path, &rec.log).map_err(Error::path(&log_path))?;
        let paths = [dir.join("stdout.fifo"), dir.join("stderr.fifo")];
        for p in &paths {
            fifo::make(p)?;
        }
        let streams = [LogStream::Stdout, LogStream::Stderr];
        let mut open = streams.len();
        let id = id.to_string();
        Copier::spawn(&paths, move |i, data| {
            let res = match data {
                Some(d) => writer.write(streams[i], d),
                // Once both streams ended, write out what is left of partial lines.
                None => {
                    open -= 1;
                    if open == 0 {
                        writer.flush()
                    } else {
                        Ok(())
                    }
                }
            };
            if let Err(e) = res {
                tracing::warn!(%id, "write container log: {e}");
            }
        })
    }

    /// Watch the task of `id` (already created in containerd) until it exits.
    fn track(self: &Arc<Self>, id: &str, copier: Option<Copier>) {
        let (tx, rx) = watch::channel(None);
        let stop_copier = copier.as_ref().map(Copier::stop_flag);
        let watcher = tokio::spawn(self.clone().watch_exit(id.to_string(), copier, tx));
        let old = lock(&self.tracked).insert(
            id.to_string(),
            Tracked {
                exit: rx,
                watcher,
                stop_copier,
            },
        );
        if let Some(old) = old {
            old.stop();
        }
    }

    /// Adopt a container found in containerd: watch its task, reopening its FIFOs when
    /// the task still runs. Already watched or without a task: nothing to do.
    async fn adopt(self: &Arc<Self>, id: &str) -> Result<()> {
        if lock(&self.tracked).contains_key(id) {
            return Ok(());
        }
        let Some(task) = self.get_task(id).await? else {
            return Ok(());
        };
        let copier = match TaskStatus::try_from(task.status) {
            Ok(TaskStatus::Stopped) => None,
            _ => {
                let rec = self
                    .load_record(id)?
                    .ok_or_else(|| Error::Containerd(format!("container {id}: no record")))?;
                Some(self.log_copier(id, &rec)?)
            }
        };
        self.track(id, copier);
        Ok(())
    }

    /// The task's life after create: Wait (sent before Start, so a process that exits
    /// at once is not missed), read the OOM counter while the cgroup still exists, let
    /// the copiers drain, record the exit, delete the task.
    async fn watch_exit(
        self: Arc<Self>,
        id: String,
        copier: Option<Copier>,
        tx: watch::Sender<Option<ExitStatus>>,
    ) {
        let waited = loop {
            let req = self.req(WaitRequest {
                container_id: id.clone(),
                exec_id: String::new(),
            });
            match self.tasks().wait(req).await {
                Ok(r) => break Some(r.into_inner()),
                Err(s) if s.code() == Code::NotFound => break None,
                Err(s) => {
                    // containerd restarting: its shims keep the task; ask again.
                    tracing::warn!(%id, "wait for task: {}", s.message());
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let oom_killed = oom_killed(&self.cfg, &id);
        if let Some(c) = copier {
            c.finish(DRAIN).await;
        }
        let recorded = self.load_record(&id).ok().flatten().and_then(|r| r.exit);
        let exit = match (recorded, waited) {
            (Some(e), _) => e,
            (
                None,
                Some(WaitResponse {
                    exit_status,
                    exited_at,
                }),
            ) => ExitStatus {
                code: exit_status as i32,
                oom_killed,
                finished_at: timestamp(exited_at),
            },
            (None, None) => {
                tracing::warn!(%id, "task vanished without an exit status");
                ExitStatus {
                    code: 255,
                    oom_killed,
                    finished_at: Utc::now(),
                }
            }
        };
        if let Err(e) = self.update_record(&id, |r| {
            r.exit.get_or_insert(exit.clone());
        }) {
            tracing::warn!(%id, "record exit: {e}");
        }
        if let Err(e) = self.delete_task(&id).await {
            tracing::warn!(%id, "{e}");
        }
        let _ = tx.send(Some(exit));
    }

    fn exit_rx(&self, id: &str) -> Option<watch::Receiver<Option<ExitStatus>>> {
        lock(&self.tracked).get(id).map(|t| t.exit.clone())
    }

    async fn state_of(&self, c: &Container) -> Result<ContainerState> {
        let id = c.id.as_str();
        let mut labels: BTreeMap<String, String> = c.labels.clone().into_iter().collect();
        labels.remove(OWNER_LABEL);
        let rec = self.load_record(id)?;
        let started_at = rec.as_ref().and_then(|r| r.started_at);
        let mounts = match rec.as_ref().and_then(|r| r.mounts.clone()) {
            Some(m) => m,
            None => bundle::volume_mounts_in_config(&self.cfg, id),
        };
        let mut state = ContainerState {
            id: id.to_string(),
            status: Status::Created,
            pid: None,
            started_at,
            exit: None,
            labels,
            mounts,
        };
        if let Some(exit) = rec.and_then(|r| r.exit) {
            state.status = Status::Exited;
            state.exit = Some(exit);
            return Ok(state);
        }
        let Some(task) = self.get_task(id).await? else {
            // The watcher records the exit before it deletes the task: look again.
            if let Some(exit) = self.load_record(id)?.and_then(|r| r.exit) {
                state.status = Status::Exited;
                state.exit = Some(exit);
            }
            return Ok(state);
        };
        match TaskStatus::try_from(task.status) {
            Ok(TaskStatus::Created) => state.pid = Some(task.pid as i32),
            Ok(TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing) => {
                state.status = Status::Running;
                state.pid = Some(task.pid as i32);
            }
            Ok(TaskStatus::Stopped) => {
                state.status = Status::Exited;
                state.exit = Some(ExitStatus {
                    code: task.exit_status as i32,
                    oom_killed: oom_killed(&self.cfg, id),
                    finished_at: timestamp(task.exited_at),
                });
            }
            _ => {}
        }
        Ok(state)
    }

    async fn must_get(&self, id: &str) -> Result<Container> {
        self.get_container(id)
            .await?
            .ok_or_else(|| Error::NoSuchContainer(id.into()))
    }

    /// Create the containerd container and its task for a prepared bundle.
    async fn create_in_containerd(
        self: &Arc<Self>,
        spec: &ContainerSpec,
        b: &bundle::Bundle,
    ) -> Result<()> {
        let id = spec.id.as_str();
        // containerd's shim runs runc in its own bundle dir: the root must be absolute.
        let mut oci = serde_json::to_value(&b.spec)?;
        oci["root"]["path"] = serde_json::json!(b.rootfs);
        let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        labels.insert(
            OWNER_LABEL.into(),
            self.cfg.data_dir.to_string_lossy().into_owned(),
        );
        let container = Container {
            id: id.into(),
            labels,
            image: spec
                .image
                .as_ref()
                .map(|i| i.reference.clone())
                .unwrap_or_default(),
            runtime: Some(Runtime {
                name: RUNC_V2.into(),
                options: None,
            }),
            spec: Some(Any {
                type_url: SPEC_TYPE_URL.into(),
                value: serde_json::to_vec(&oci)?,
            }),
            ..Default::default()
        };
        let req = self.req(CreateContainerRequest {
            container: Some(container),
        });
        self.containers()
            .create(req)
            .await
            .map_err(|s| rpc_error(id, "create container", s))?;

        let rec = Record {
            id: id.into(),
            labels: spec.labels.clone(),
            created_at: Utc::now(),
            started_at: None,
            exit: None,
            log: spec.log.clone(),
            stop_signal: spec.stop_signal.clone().or_else(|| {
                spec.image
                    .as_ref()
                    .and_then(|i| i.config.stop_signal.clone())
            }),
            mounts: Some(spec.mounts.clone()),
        };
        record::save(&b.dir, &rec)?;
        let copier = self.log_copier(id, &rec)?;
        let req = self.req(CreateTaskRequest {
            container_id: id.into(),
            stdout: path_str(&b.dir.join("stdout.fifo")),
            stderr: path_str(&b.dir.join("stderr.fifo")),
            ..Default::default()
        });
        if let Err(s) = self.tasks().create(req).await {
            copier.stop();
            return Err(rpc_error(id, "create task", s));
        }
        self.track(id, Some(copier));
        Ok(())
    }

    /// Forget `id` in containerd: task (killed first if it has not exited: Docker's
    /// `rm -f`) and container.
    async fn remove_from_containerd(self: &Arc<Self>, id: &str) -> Result<()> {
        if let Some(task) = self.get_task(id).await? {
            if TaskStatus::try_from(task.status) != Ok(TaskStatus::Stopped) {
                self.adopt(id).await?;
                let _ = self.kill_task(id, "", SIGKILL, true).await;
                if let Some(mut rx) = self.exit_rx(id) {
                    let _ = tokio::time::timeout(KILL_WAIT, rx.wait_for(Option::is_some)).await;
                }
            }
            self.delete_task(id).await?;
        }
        if let Some(t) = lock(&self.tracked).remove(id) {
            t.stop();
        }
        let req = self.req(DeleteContainerRequest { id: id.into() });
        match self.containers().delete(req).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(rpc_error(id, "delete container", s)),
        }
    }

    async fn wait_exit(&self, id: &str, limit: Option<Duration>) -> Result<Option<ExitStatus>> {
        let Some(mut rx) = self.exit_rx(id) else {
            return Ok(None);
        };
        let wait = async {
            match rx.wait_for(Option::is_some).await {
                Ok(e) => Ok(e.clone()),
                Err(_) => Err(Error::Containerd(format!(
                    "container {id}: stopped watching its task"
                ))),
            }
        };
        match limit {
            None => wait.await,
            Some(d) => match tokio::time::timeout(d, wait).await {
                Ok(r) => r,
                Err(_) => Ok(None),
            },
        }
    }
}

#[async_trait::async_trait]
impl ContainerRuntime for ContainerdRuntime {
    async fn create(&self, spec: &ContainerSpec) -> Result<ContainerState> {
        bundle::validate_id(&spec.id)?;
        let inner = &self.inner;
        if inner.get_container(&spec.id).await?.is_some() {
            return Err(Error::ContainerExists(spec.id.clone()));
        }
        let (cfg, s) = (inner.cfg.clone(), spec.clone());
        let b = tokio::task::spawn_blocking(move || bundle::prepare(&cfg, &s))
            .await
            .map_err(|e| Error::Other(format!("prepare bundle: {e}")))??;
        if let Err(e) = inner.create_in_containerd(spec, &b).await {
            if let Err(c) = inner.remove_from_containerd(&spec.id).await {
                tracing::warn!(id = %spec.id, "undo create: {c}");
            }
            if let Err(c) = bundle::cleanup(&inner.cfg, &spec.id) {
                tracing::warn!(id = %spec.id, "undo create: {c}");
            }
            return Err(e);
        }
        self.state(&spec.id).await
    }

    async fn start(&self, id: &str) -> Result<()> {
        let inner = &self.inner;
        inner.must_get(id).await?;
        inner.adopt(id).await?;
        let req = inner.req(StartRequest {
            container_id: id.into(),
            exec_id: String::new(),
        });
        inner
            .tasks()
            .start(req)
            .await
            .map_err(|s| rpc_error(id, "start task", s))?;
        inner.update_record(id, |r| r.started_at = Some(Utc::now()))
    }

    async fn wait(&self, id: &str) -> Result<ExitStatus> {
        let inner = &self.inner;
        let c = inner.must_get(id).await?;
        inner.adopt(id).await?;
        if let Some(exit) = inner.wait_exit(id, None).await? {
            return Ok(exit);
        }
        // Not watched: no task. Exited (recorded) or never got one.
        inner
            .state_of(&c)
            .await?
            .exit
            .ok_or_else(|| Error::Containerd(format!("container {id} has no task to wait for")))
    }

    async fn stop(&self, id: &str, signal: Option<&str>, grace: Duration) -> Result<ExitStatus> {
        let inner = &self.inner;
        let c = inner.must_get(id).await?;
        inner.adopt(id).await?;
        let state = inner.state_of(&c).await?;
        if let Some(exit) = state.exit {
            return Ok(exit);
        }
        let signal = match signal {
            Some(s) => s.to_string(),
            None => inner
                .load_record(id)?
                .and_then(|r| r.stop_signal)
                .unwrap_or_else(|| "SIGTERM".into()),
        };
        let signo = parse_signal(&signal)?;
        if signo != SIGKILL {
            // Gone in between is fine: the wait below returns at once.
            let _ = inner.kill_task(id, "", signo, false).await;
            if let Some(exit) = inner.wait_exit(id, Some(grace)).await? {
                return Ok(exit);
            }
        }
        let _ = inner.kill_task(id, "", SIGKILL, true).await;
        inner
            .wait_exit(id, Some(KILL_WAIT))
            .await?
            .ok_or_else(|| Error::Containerd(format!("container {id} did not exit after SIGKILL")))
    }

    async fn kill(&self, id: &str, signal: &str) -> Result<()> {
        let signo = parse_signal(signal)?;
        self.inner.must_get(id).await?;
        self.inner.kill_task(id, "", signo, false).await
    }

    async fn remove(&self, id: &str) -> Result<()> {
        bundle::validate_id(id)?;
        let inner = &self.inner;
        let known = inner.get_container(id).await?.is_some();
        if !known && !inner.dir(id).exists() {
            return Err(Error::NoSuchContainer(id.into()));
        }
        if known {
            inner.remove_from_containerd(id).await?;
        }
        let cfg = inner.cfg.clone();
        let id = id.to_string();
        tokio::task::spawn_blocking(move || bundle::cleanup(&cfg, &id))
            .await
            .map_err(|e| Error::Other(format!("cleanup bundle: {e}")))?
    }

    async fn exec(&self, id: &str, spec: &ExecSpec) -> Result<ExecOutput> {
        let inner = &self.inner;
        let c = inner.must_get(id).await?;
        let running = inner.get_task(id).await?.is_some_and(|t| {
            matches!(
                TaskStatus::try_from(t.status),
                Ok(TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing)
            )
        });
        if !running {
            return Err(Error::Other(format!("container {id} is not running")));
        }
        let container_spec: serde_json::Value = match &c.spec {
            Some(any) => serde_json::from_slice(&any.value)?,
            None => return Err(Error::Containerd(format!("container {id} has no spec"))),
        };
        let rootfs = PathBuf::from(container_spec["root"]["path"].as_str().unwrap_or_default());
        let process = exec::process_spec(&container_spec, &rootfs, spec)?;

        let exec_id = format!(
            "exec-{}-{}",
            std::process::id(),
            inner.exec_seq.fetch_add(1, Ordering::SeqCst)
        );
        let dir = inner.dir(id);
        let capture = exec::Capture::default();
        let fifos = [
            dir.join(format!("{exec_id}.stdout")),
            dir.join(format!("{exec_id}.stderr")),
        ];
        let remove_fifos = || {
            for f in &fifos {
                let _ = std::fs::remove_file(f);
            }
        };
        for f in &fifos {
            fifo::make(f)?;
        }
        let sink = capture.clone();
        let copier = match Copier::spawn(&fifos, move |_, data| {
            if let Some(d) = data {
                sink.push(d);
            }
        }) {
            Ok(c) => c,
            Err(e) => {
                remove_fifos();
                return Err(e);
            }
        };
        let req = inner.req(ExecProcessRequest {
            container_id: id.into(),
            stdout: path_str(&fifos[0]),
            stderr: path_str(&fifos[1]),
            spec: Some(Any {
                type_url: PROCESS_TYPE_URL.into(),
                value: serde_json::to_vec(&process)?,
            }),
            exec_id: exec_id.clone(),
            ..Default::default()
        });
        if let Err(s) = inner.tasks().exec(req).await {
            copier.stop();
            remove_fifos();
            return Err(rpc_error(id, "exec", s));
        }
        // Wait is sent before Start so a fast process is not missed.
        let mut tasks = inner.tasks();
        let wait_req = inner.req(WaitRequest {
            container_id: id.into(),
            exec_id: exec_id.clone(),
        });
        let mut wait = tokio::spawn(async move { tasks.wait(wait_req).await });
        tokio::task::yield_now().await;
        let start_req = inner.req(StartRequest {
            container_id: id.into(),
            exec_id: exec_id.clone(),
        });
        let started = inner.tasks().start(start_req).await;
        let result = match started {
            Err(s) => Err(rpc_error(id, "exec", s)),
            Ok(_) => {
                let waited = match spec.timeout {
                    Some(t) => tokio::time::timeout(t, &mut wait).await.ok(),
                    None => Some((&mut wait).await),
                };
                let timed_out = waited.is_none();
                let waited = match waited {
                    Some(w) => w,
                    None => {
                        let _ = inner.kill_task(id, &exec_id, SIGKILL, false).await;
                        match tokio::time::timeout(KILL_WAIT, &mut wait).await {
                            Ok(w) => w,
                            Err(_) => {
                                wait.abort();
                                Ok(Err(tonic::Status::deadline_exceeded("exec kill")))
                            }
                        }
                    }
                };
                match waited {
                    Ok(Ok(r)) => Ok((r.into_inner().exit_status as i32, timed_out)),
                    Ok(Err(s)) if timed_out => {
                        tracing::warn!(%id, "exec wait after kill: {}", s.message());
                        Ok((-1, true))
                    }
                    Ok(Err(s)) => Err(rpc_error(id, "exec wait", s)),
                    Err(e) => Err(Error::Other(format!("exec wait: {e}"))),
                }
            }
        };
        if result.is_err() {
            wait.abort();
            copier.stop();
        } else {
            copier.finish(DRAIN).await;
        }
        let req = inner.req(DeleteProcessRequest {
            container_id: id.into(),
            exec_id,
        });
        if let Err(s) = inner.tasks().delete_process(req).await {
            if s.code() != Code::NotFound {
                tracing::warn!(%id, "delete exec process: {}", s.message());
            }
        }
        remove_fifos();
        let (exit_code, timed_out) = result?;
        Ok(ExecOutput {
            exit_code,
            output: capture.take(),
            timed_out,
        })
    }

    async fn state(&self, id: &str) -> Result<ContainerState> {
        let c = self.inner.must_get(id).await?;
        self.inner.state_of(&c).await
    }

    async fn list(&self) -> Result<Vec<ContainerState>> {
        let mut out = Vec::new();
        for c in self.inner.list_ours().await? {
            match self.inner.state_of(&c).await {
                Ok(s) => out.push(s),
                // Removed meanwhile.
                Err(Error::NoSuchContainer(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Not yet with containerd: its exec takes FIFOs for stdin and a console, which
    /// this backend does not wire to a caller.
    async fn exec_attached(
        &self,
        id: &str,
        _exec: &ExecSpec,
        _tty: bool,
        _stdin: bool,
    ) -> Result<super::attach::AttachedExec> {
        self.inner.must_get(id).await?;
        Err(Error::Other(
            "exec with attached streams is not supported with the containerd runtime (use --runtime libcontainer)".into(),
        ))
    }

    fn cgroup_path(&self, id: &str) -> String {
        bundle::cgroups_path(&self.inner.cfg, id)
    }

    fn log_path(&self, id: &str) -> PathBuf {
        bundle::log_path(&self.inner.cfg, id)
    }
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn timestamp(ts: Option<prost_types::Timestamp>) -> DateTime<Utc> {
    ts.and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .unwrap_or_else(Utc::now)
}

/// `SIGTERM`, `TERM`, `term` or `15`.
pub fn parse_signal(s: &str) -> Result<u32> {
    let bad = || Error::InvalidSpec(format!("invalid signal: {s}"));
    if let Ok(n) = s.parse::<u32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    nix::sys::signal::Signal::from_str(&name)
        .map(|sig| sig as u32)
        .map_err(|_| bad())
}

/// Whether the kernel OOM-killed a process of the container: the `oom_kill` counter of
/// its memory cgroup (v1 `memory.oom_control`, v2 `memory.events`). Read before the
/// task is deleted, while the cgroup still exists.
fn oom_killed(cfg: &RuntimeConfig, id: &str) -> bool {
    let rel = bundle::cgroups_path(cfg, id);
    let rel = rel.trim_start_matches('/');
    let candidates = [
        Path::new("/sys/fs/cgroup/memory")
            .join(rel)
            .join("memory.oom_control"),
        Path::new("/sys/fs/cgroup").join(rel).join("memory.events"),
    ];
    candidates.iter().any(|p| {
        std::fs::read_to_string(p).is_ok_and(|text| {
            text.lines().any(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
            })
        })
    })
}

/// Map a gRPC status: not found and already exists to our variants, a process that
/// could not start to Docker's words (`exec: "foo": executable file not found in $PATH`).
fn rpc_error(id: &str, what: &str, s: tonic::Status) -> Error {
    let msg = s.message();
    match s.code() {
        Code::NotFound if !id.is_empty() => Error::NoSuchContainer(id.into()),
        Code::AlreadyExists if !id.is_empty() => Error::ContainerExists(id.into()),
        _ => match msg.find("exec: ") {
            Some(at) => Error::Start(msg[at..].trim_end_matches(": unknown").to_string()),
            None if id.is_empty() => Error::Containerd(format!("{what}: {msg}")),
            None => Error::Containerd(format!("{what} {id}: {msg}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("term").unwrap(), 15);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn runc_exec_errors_read_as_docker_says() {
        let s = tonic::Status::unknown(
            "failed to create shim task: OCI runtime create failed: runc create failed: \
             unable to start container process: exec: \"foo\": executable file not found \
             in $PATH: unknown",
        );
        match rpc_error("c1", "create task", s) {
            Error::Start(m) => assert_eq!(m, "exec: \"foo\": executable file not found in $PATH"),
            e => panic!("unexpected {e:?}"),
        }
        let s = tonic::Status::not_found("container \"c1\" in namespace \"x\": not found");
        assert!(matches!(
            rpc_error("c1", "get", s),
            Error::NoSuchContainer(_)
        ));
    }
}
