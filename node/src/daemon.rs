//! Startup and the node's side of the API: open the runtime and image store, start the
//! agent, reopen the manager if this node is one, serve the control API.
//!
//! `/_ping`, `/version`, `/info` and `/swarm/init` are answered by the node itself;
//! everything else needs the manager (503 before `swarm init`).

use std::sync::{Arc, Mutex, RwLock};

use serde_json::{json, Value};
use swarm_runtime::container::containerd::ContainerdRuntime;
use swarm_runtime::container::libcontainer::LibcontainerRuntime;
use swarm_runtime::container::{ContainerRuntime, RuntimeConfig, Status};
use swarm_runtime::image::{ImageStore, RegistryOptions};
use tokio::sync::mpsc;

use crate::agent::{Agent, StatusReport};
use crate::api::{self, ApiError, Reply, Request, API_VERSION, MIN_API_VERSION};
use crate::config::{Config, RuntimeKind};
use crate::error::{Error, Result};
use crate::manager::{self, Manager};

pub struct Node {
    cfg: Config,
    node_id: String,
    rt: Arc<dyn ContainerRuntime>,
    agent: Arc<Agent>,
    images: Arc<ImageStore>,
    manager: RwLock<Option<Arc<Manager>>>,
    /// The agent's reports, until the manager's status loop takes them.
    reports: Mutex<Option<mpsc::UnboundedReceiver<StatusReport>>>,
    init_lock: tokio::sync::Mutex<()>,
}

pub async fn run(cfg: Config) -> Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(Error::io(format!("create {}", cfg.data_dir.display())))?;
    let rt_cfg = RuntimeConfig {
        data_dir: cfg.data_dir.clone(),
        cgroup_parent: cfg.cgroup_parent.clone(),
        shim_exe: cfg.shim_exe.clone(),
    };
    let rt: Arc<dyn ContainerRuntime> = match cfg.runtime {
        RuntimeKind::Libcontainer => Arc::new(LibcontainerRuntime::new(rt_cfg)?),
        RuntimeKind::Containerd => {
            Arc::new(ContainerdRuntime::connect(rt_cfg, &cfg.containerd_socket, "swarm").await?)
        }
    };
    let images = Arc::new(ImageStore::open(cfg.data_dir.join("image"))?);
    let registry = RegistryOptions {
        insecure: cfg.insecure_registries.clone(),
        auth: None,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let agent = Arc::new(Agent::start(rt.clone(), images.clone(), registry, tx).await?);
    let node_id = node_id(&cfg)?;
    let node = Arc::new(Node {
        node_id: node_id.clone(),
        rt: rt.clone(),
        agent,
        images,
        manager: RwLock::new(None),
        reports: Mutex::new(Some(rx)),
        init_lock: tokio::sync::Mutex::new(()),
        cfg: cfg.clone(),
    });
    if let Some(m) = Manager::open(&cfg, &node_id, rt).await? {
        tracing::info!(node = %node_id, "manager reopened its raft log");
        node.start_manager(m);
    }
    tracing::info!(socket = %cfg.socket.display(), node = %node_id, "swarmd serving");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(Error::io("signal handler"))?;
    let r = tokio::select! {
        r = api::serve(&cfg.socket, node.clone()) => r,
        // Containers outlive swarmd (their shims are not its children): a restart adopts them.
        _ = term.recv() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    if let Some(m) = node.manager() {
        m.store.stop().await;
    }
    r
}

/// The node's ID, made once and kept in `<data>/node-id`.
fn node_id(cfg: &Config) -> Result<String> {
    let path = cfg.data_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        _ => {
            let id = crate::ids::new_id();
            std::fs::write(&path, &id).map_err(Error::io(format!("write {}", path.display())))?;
            Ok(id)
        }
    }
}

impl Node {
    fn start_manager(&self, m: Manager) {
        let m = Arc::new(m);
        *self.manager.write().expect("manager lock") = Some(m.clone());
        if let Some(rx) = self.reports.lock().expect("reports lock").take() {
            manager::loops::spawn(m, self.agent.clone(), rx);
        }
    }

    fn manager(&self) -> Option<Arc<Manager>> {
        self.manager.read().expect("manager lock").clone()
    }

    async fn info(&self) -> Value {
        let containers = self.rt.list().await.unwrap_or_default();
        let running = containers
            .iter()
            .filter(|c| c.status == Status::Running)
            .count();
        let swarm = match self.manager() {
            None => json!({
                "NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                "ControlAvailable": false, "Error": "", "RemoteManagers": null
            }),
            Some(m) => {
                m.store
                    .read(|t| {
                        let me = t.node(&self.node_id);
                        let addr = me.map_or("", |n| n.status.addr.as_str());
                        let mgr_addr = me
                            .and_then(|n| n.manager_status.as_ref())
                            .map_or("", |s| s.addr.as_str());
                        json!({
                            "NodeID": self.node_id,
                            "NodeAddr": addr,
                            "LocalNodeState": "active",
                            "ControlAvailable": true,
                            "Error": "",
                            "RemoteManagers": [{"NodeID": self.node_id, "Addr": mgr_addr}],
                            "Nodes": t.nodes().count(),
                            "Managers": t.nodes().filter(|n| n.manager_status.is_some()).count(),
                            "Cluster": t.cluster().map(|c| &c.cluster),
                        })
                    })
                    .await
            }
        };
        json!({
            "ID": self.node_id,
            "Containers": containers.len(),
            "ContainersRunning": running,
            "ContainersPaused": 0,
            "ContainersStopped": containers.len() - running,
            "Images": 0,
            "Driver": "overlay",
            "Name": self.cfg.hostname,
            "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "MemTotal": manager::mem_total(),
            "OperatingSystem": "linux",
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "KernelVersion": kernel_version(),
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "DockerRootDir": self.cfg.data_dir,
            "CgroupDriver": "cgroupfs",
            "Swarm": swarm,
        })
    }

    async fn swarm_init(&self, req: Value) -> Result<Reply, ApiError> {
        let _g = self.init_lock.lock().await;
        if self.manager().is_some() {
            return Err(ApiError::Unavailable(
                "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.".into(),
            ));
        }
        let rt = self.rt.clone();
        let m = Manager::init(&self.cfg, &self.node_id, rt, &req).await?;
        self.start_manager(m);
        Ok(Reply::Json(200, json!(self.node_id)))
    }
}

impl Node {
    /// `POST /images/load`: the archive into this node's store (images are per node, as
    /// with `docker load`). Answers Docker's JSON message with one line per image.
    async fn image_load(&self, archive: Vec<u8>) -> Result<Reply, ApiError> {
        let images = self.images.clone();
        let path = self
            .cfg
            .data_dir
            .join(format!("image-load-{}.tar", crate::ids::new_id()));
        let loaded = tokio::task::spawn_blocking(move || {
            let result = std::fs::write(&path, &archive)
                .map_err(|e| ApiError::internal(format!("write {}: {e}", path.display())))
                .and_then(|()| {
                    images
                        .load_oci_archive(&path)
                        .map_err(|e| ApiError::invalid(e.to_string()))
                });
            let _ = std::fs::remove_file(&path);
            result
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
        let stream: String = loaded
            .iter()
            .map(|i| format!("Loaded image: {}\n", i.reference))
            .collect();
        Ok(Reply::Json(200, json!({ "stream": stream })))
    }
}

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl api::Backend for Node {
    async fn handle(&self, req: Request) -> Result<Reply, ApiError> {
        match req {
            Request::Version => Ok(Reply::Json(
                200,
                json!({
                    "Platform": {"Name": "swarm"},
                    "Components": [{"Name": "swarmd", "Version": env!("CARGO_PKG_VERSION")}],
                    "Version": env!("CARGO_PKG_VERSION"),
                    "ApiVersion": API_VERSION,
                    "MinAPIVersion": MIN_API_VERSION,
                    "Os": "linux",
                    "Arch": std::env::consts::ARCH,
                    "KernelVersion": kernel_version(),
                    "GitCommit": "",
                    "GoVersion": "",
                }),
            )),
            Request::Info => Ok(Reply::Json(200, self.info().await)),
            Request::SwarmInit(body) => self.swarm_init(body).await,
            Request::ImageLoad { archive } => self.image_load(archive).await,
            other => match self.manager() {
                Some(m) => manager::control::handle(&m, other).await,
                None => Err(ApiError::NotManager),
            },
        }
    }

    fn swarm_state(&self) -> &'static str {
        if self.manager().is_some() {
            "active/manager"
        } else {
            "inactive"
        }
    }
}
