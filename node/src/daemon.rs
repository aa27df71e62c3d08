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
use swarm_runtime::volume::Volumes;
use tokio::sync::mpsc;

use swarm_identity::{ClientTls, ClusterTls, JoinToken, NodeIdentity, NodeKey, Role};

use crate::agent::session::{Managers, Session};
use crate::agent::{Agent, StatusReport};
use crate::api::{self, ApiError, Reply, Request, API_VERSION, MIN_API_VERSION};
use crate::certs;
use crate::cluster::{self, proto::ca_client::CaClient};
use crate::config::{Config, RuntimeKind};
use crate::error::{Error, Result};
use crate::manager::{self, Manager};

mod containers;
mod exec;
mod images;
mod stats;
mod top;
mod volumes;

const LOCKED: &str = "Swarm is encrypted and needs to be unlocked before it can be used. Please use \"docker swarm unlock\" to unlock it.";
const ALREADY_IN_SWARM: &str = "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.";
/// moby's `errSwarmNotManager`: `swarm init --force-new-cluster` on a worker.
const NOT_A_SWARM_MANAGER: &str = "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.";

pub struct Node {
    cfg: Config,
    /// This node's ID (`<data>/node-id`); a new one after `swarm leave`, as Docker gives.
    node_id: RwLock<String>,
    rt: Arc<dyn ContainerRuntime>,
    agent: Arc<Agent>,
    images: Arc<ImageStore>,
    /// Named volumes (`<data>/volumes`); its lock orders container creates and removals.
    volumes: Arc<Volumes>,
    manager: RwLock<Option<Arc<Manager>>>,
    /// This node's certificate once it initialized or joined a swarm.
    identity: RwLock<Option<NodeIdentity>>,
    /// Its keys on disk, sealed while autolock is on; locked until `swarm unlock`.
    sealing: Arc<certs::Sealing>,
    /// The agent's reports, which the dispatcher session drains while it runs.
    reports: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<StatusReport>>>,
    session: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The cluster port's server task while this node manages.
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// This node, for tasks that outlive a request (role changes).
    me: std::sync::OnceLock<std::sync::Weak<Node>>,
    init_lock: tokio::sync::Mutex<()>,
    /// `docker exec` instances on this node's containers.
    execs: exec::Execs,
}

pub async fn run(cfg: Config) -> Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(Error::io(format!("create {}", cfg.data_dir.display())))?;
    manager::backup::remove_stale(&cfg.data_dir);
    let rt_cfg = RuntimeConfig {
        data_dir: cfg.data_dir.clone(),
        cgroup_parent: cfg.cgroup_parent.clone(),
        shim_exe: cfg.shim_exe.clone(),
    };
    let rt: Arc<dyn ContainerRuntime> = match cfg.runtime {
        RuntimeKind::Libcontainer => {
            let lc = LibcontainerRuntime::new(rt_cfg.clone())?;
            let cleaned = lc.remove_strays();
            if !cleaned.is_empty() {
                tracing::info!(?cleaned, "removed what a crash left of containers");
            }
            Arc::new(lc)
        }
        RuntimeKind::Containerd => Arc::new(
            ContainerdRuntime::connect(rt_cfg.clone(), &cfg.containerd_socket, "swarm").await?,
        ),
    };
    // Every create that mounts a volume goes through the volumes' lock (volumes.rs).
    let volumes = Arc::new(Volumes::new(&cfg.data_dir));
    volumes.clean_interrupted();
    let rt = volumes.guard(rt);
    let images = Arc::new(ImageStore::open(cfg.data_dir.join("image"))?);
    let registry = RegistryOptions {
        insecure: cfg.insecure_registries.clone(),
        auth: None,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let net = crate::agent::network::NetworkManager::new(
        &cfg.data_dir.join("net"),
        crate::agent::network::host_resolvers(),
    );
    let agent = Arc::new(Agent::start(rt.clone(), images.clone(), registry, tx, net).await?);
    let node_id = node_id(&cfg)?;
    let node = Arc::new(Node {
        node_id: RwLock::new(node_id.clone()),
        rt: rt.clone(),
        agent,
        images,
        volumes,
        manager: RwLock::new(None),
        identity: RwLock::new(None),
        sealing: certs::Sealing::new(&cfg.data_dir),
        reports: Arc::new(tokio::sync::Mutex::new(rx)),
        session: Mutex::new(None),
        server: Mutex::new(None),
        me: std::sync::OnceLock::new(),
        init_lock: tokio::sync::Mutex::new(()),
        execs: exec::Execs::default(),
        cfg: cfg.clone(),
    });
    let _ = node.me.set(Arc::downgrade(&node));
    if node.sealing.locked() {
        tracing::warn!("this manager's keys are sealed (autolock): locked until `swarm unlock`");
    } else {
        node.resume().await?;
    }
    // `/metrics` and the web view read this node's manager half while it has one.
    let source = || -> crate::metrics::ManagerSource {
        let weak = Arc::downgrade(&node);
        Arc::new(move || weak.upgrade().and_then(|n| n.manager()))
    };
    if let Some(addr) = &cfg.metrics_addr {
        let serving = crate::metrics::serve(crate::metrics::listen_addr(addr)?, source());
        tokio::spawn(async move {
            if let Err(e) = serving.await {
                tracing::error!("metrics: {e}");
            }
        });
    }
    if let Some(addr) = &cfg.web_addr {
        let serving = crate::web::serve(crate::web::listen_addr(addr)?, source());
        tokio::spawn(async move {
            if let Err(e) = serving.await {
                tracing::error!("web view: {e}");
            }
        });
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
        m.stop().await;
    }
    // A node with no container left leaves no cgroup parent behind either.
    swarm_runtime::container::cgroup::remove_parent_if_empty(&rt_cfg);
    r
}

/// Binds the cluster port that a server task just let go of: its abort drops the
/// listener when the task is next polled, so the first bind may still find it taken.
async fn bind_again(listen_addr: &str) -> Result<tokio::net::TcpListener> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match cluster::bind(listen_addr).await {
            Ok(l) => return Ok(l),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

/// The node's ID, made once and kept in `<data>/node-id` (until it leaves its swarm).
fn node_id(cfg: &Config) -> Result<String> {
    let path = cfg.data_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        _ => fresh_node_id(cfg),
    }
}

/// A new ID for this node, kept in `<data>/node-id`.
fn fresh_node_id(cfg: &Config) -> Result<String> {
    let path = cfg.data_dir.join("node-id");
    let id = crate::ids::new_id();
    std::fs::write(&path, &id).map_err(Error::io(format!("write {}", path.display())))?;
    Ok(id)
}

/// Where this node's cluster port listens and what it tells others, as given at init or
/// join (`<data>/cluster-addrs.json`), so a restart serves the same port.
#[derive(serde::Serialize, serde::Deserialize)]
struct ClusterAddrs {
    listen: String,
    advertise: String,
}

impl ClusterAddrs {
    fn path(data_dir: &std::path::Path) -> std::path::PathBuf {
        data_dir.join("cluster-addrs.json")
    }

    fn load(data_dir: &std::path::Path) -> Option<ClusterAddrs> {
        serde_json::from_slice(&std::fs::read(Self::path(data_dir)).ok()?).ok()
    }

    /// As given at init or join, else swarmd's flags.
    fn load_or_flags(cfg: &Config) -> ClusterAddrs {
        Self::load(&cfg.data_dir).unwrap_or_else(|| ClusterAddrs {
            listen: cfg.listen_addr.clone(),
            advertise: cfg.advertise_addr.clone(),
        })
    }

    fn save(&self, data_dir: &std::path::Path) -> Result<()> {
        let path = Self::path(data_dir);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(self)?)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(Error::io(format!("write {}", path.display())))
    }
}

impl Node {
    /// This node's ID now.
    fn node_id(&self) -> String {
        self.node_id.read().expect("node id lock").clone()
    }

    /// A node that was in a swarm before this start (or was locked until now): its
    /// manager half reopens its Raft log, its agent's session starts again.
    async fn resume(&self) -> Result<()> {
        let Some(identity) = self.sealing.load_identity()? else {
            return Ok(());
        };
        let tls = ClusterTls::new(&identity)?;
        let addrs = ClusterAddrs::load_or_flags(&self.cfg);
        if identity.role == Role::Manager {
            if let Some(m) = Manager::open(
                &self.cfg,
                &self.node_id(),
                self.rt.clone(),
                &identity,
                tls.clone(),
                self.sealing.clone(),
            )
            .await?
            {
                tracing::info!(node = %self.node_id(), "manager reopened its raft log");
                let listener = cluster::bind(&addrs.listen).await?;
                self.start_manager(m, listener);
            }
        }
        self.start_session(identity, tls, &addrs.advertise, &[]);
        Ok(())
    }

    /// `POST /swarm/unlock`: the key must open this manager's sealed keys; then the node
    /// starts as it would have.
    async fn swarm_unlock(&self, body: Value) -> Result<Reply, ApiError> {
        let _g = self.init_lock.lock().await;
        if !self.sealing.locked() {
            return Err(ApiError::Conflict("swarm is not locked".into()));
        }
        let key = swarm_identity::UnlockKey::parse(body["UnlockKey"].as_str().unwrap_or_default())
            .map_err(ApiError::invalid)?;
        if let Err(e) = self.sealing.unlock(key) {
            tracing::warn!("unlock refused: {e}");
            return Err(ApiError::Unauthorized(e.to_string()));
        }
        tracing::info!("unlocked");
        self.resume().await.map_err(ApiError::internal)?;
        Ok(Reply::Empty(200))
    }

    fn start_manager(&self, m: Manager, listener: tokio::net::TcpListener) {
        let m = Arc::new(m);
        *self.manager.write().expect("manager lock") = Some(m.clone());
        let server = cluster::serve(listener, m.clone());
        if let Some(old) = self.server.lock().expect("server lock").replace(server) {
            old.abort();
        }
        manager::loops::spawn(m);
    }

    /// The agent's dispatcher session, for as long as the process lives.
    fn start_session(
        &self,
        identity: NodeIdentity,
        tls: Arc<ClusterTls>,
        advertise: &str,
        seed: &[String],
    ) {
        let mut seed = seed.to_vec();
        if identity.role == Role::Manager {
            seed.insert(0, advertise.to_string());
        }
        *self.identity.write().expect("identity lock") = Some(identity.clone());
        let (role_tx, mut role_rx) = mpsc::unbounded_channel::<NodeIdentity>();
        let me = self.me.get().cloned().unwrap_or_default();
        let switch_tls = tls.clone();
        tokio::spawn(async move {
            while let Some(identity) = role_rx.recv().await {
                let Some(node) = me.upgrade() else { return };
                if let Err(e) = node.switch_role(identity, switch_tls.clone()).await {
                    tracing::error!("role change: {e}");
                }
            }
        });
        let session = Session {
            agent: self.agent.clone(),
            role_changes: role_tx,
            tls,
            identity,
            sealing: self.sealing.clone(),
            managers: Managers::load(self.cfg.data_dir.join("managers.json"), &seed),
            description: serde_json::to_vec(&manager::node_description(&self.cfg.hostname))
                .unwrap_or_default(),
            addr: advertise.to_string(),
            rotation_renewed_at: None,
        };
        let join = tokio::spawn(session.run(self.reports.clone()));
        if let Some(old) = self.session.lock().expect("session lock").replace(join) {
            old.abort();
        }
    }

    /// Promotion: open an empty Raft, serve the cluster port, join Raft through a
    /// manager, publish this node's manager address. Demotion (the leader already took
    /// this node out of Raft): stop serving, stop Raft, forget its files.
    async fn switch_role(&self, identity: NodeIdentity, tls: Arc<ClusterTls>) -> Result<()> {
        *self.identity.write().expect("identity lock") = Some(identity.clone());
        let addrs = ClusterAddrs::load_or_flags(&self.cfg);
        match (identity.role, self.manager()) {
            (Role::Manager, None) => {
                let listener = cluster::bind(&addrs.listen).await?;
                let m = Manager::open_joining(
                    &self.cfg,
                    &self.node_id(),
                    self.rt.clone(),
                    &identity,
                    tls,
                    &addrs.advertise,
                    self.sealing.clone(),
                )
                .await?;
                self.start_manager(m, listener);
                let m = self
                    .manager()
                    .ok_or_else(|| Error::Other("manager gone".into()))?;
                let managers: Vec<String> =
                    Managers::load(self.cfg.data_dir.join("managers.json"), &[])
                        .addrs()
                        .to_vec();
                let mut joined = Err(Error::Other("no manager to join through".into()));
                for remote in managers.iter().filter(|a| **a != addrs.advertise) {
                    joined = m.join_raft(remote).await;
                    if joined.is_ok() {
                        break;
                    }
                }
                joined?;
                // This store catches up with the leader's log first: until it has this
                // node, or while a status update races ours, try again.
                for _ in 0..100 {
                    let node = m.store.read(|s| s.node(&self.node_id()).cloned()).await;
                    let Some(mut node) = node else {
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        continue;
                    };
                    node.manager_status = Some(swarm_core::model::ManagerStatus {
                        leader: false,
                        reachability: Some(swarm_core::model::Reachability::Reachable),
                        addr: addrs.advertise.clone(),
                    });
                    let update = swarm_core::store::StoreAction::Update(
                        swarm_core::store::Object::Node(Box::new(node)),
                    );
                    match m.propose(vec![update]).await {
                        Ok(_) => break,
                        Err(e) => {
                            tracing::debug!("publish this manager's address: {e}");
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        }
                    }
                }
                tracing::info!("promoted: this node manages");
            }
            (Role::Worker, Some(m)) => {
                if let Some(server) = self.server.lock().expect("server lock").take() {
                    server.abort();
                }
                *self.manager.write().expect("manager lock") = None;
                m.stop().await;
                let _ = std::fs::remove_dir_all(self.cfg.data_dir.join("raft"));
                // Autolock is for managers: a worker's key is plain again.
                self.sealing.set_key(None)?;
                self.sealing.remove_data_key();
                tracing::info!("demoted: the manager half stopped");
            }
            _ => {}
        }
        Ok(())
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
        let worker = self.identity.read().expect("identity lock").is_some();
        let swarm = match self.manager() {
            None if self.sealing.locked() => json!({
                "NodeID": self.node_id(), "NodeAddr": "", "LocalNodeState": "locked",
                "ControlAvailable": false, "Error": "", "RemoteManagers": null
            }),
            None if worker => {
                let managers: Vec<String> =
                    Managers::load(self.cfg.data_dir.join("managers.json"), &[])
                        .addrs()
                        .to_vec();
                let addr = ClusterAddrs::load(&self.cfg.data_dir)
                    .map(|a| {
                        a.advertise
                            .rsplit_once(':')
                            .map_or(a.advertise.clone(), |(h, _)| h.to_string())
                    })
                    .unwrap_or_default();
                json!({
                    "NodeID": self.node_id(), "NodeAddr": addr, "LocalNodeState": "active",
                    "ControlAvailable": false, "Error": "",
                    "RemoteManagers": managers.iter().map(|a| json!({"NodeID": "", "Addr": a})).collect::<Vec<_>>(),
                })
            }
            None => json!({
                "NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                "ControlAvailable": false, "Error": "", "RemoteManagers": null
            }),
            Some(m) => {
                m.store
                    .read(|t| {
                        let me = t.node(&self.node_id());
                        let addr = me.map_or("", |n| n.status.addr.as_str());
                        let mgr_addr = me
                            .and_then(|n| n.manager_status.as_ref())
                            .map_or("", |s| s.addr.as_str());
                        json!({
                            "NodeID": self.node_id(),
                            "NodeAddr": addr,
                            "LocalNodeState": "active",
                            "ControlAvailable": true,
                            "Error": "",
                            "RemoteManagers": [{"NodeID": self.node_id(), "Addr": mgr_addr}],
                            "Nodes": t.nodes().count(),
                            "Managers": t.nodes().filter(|n| n.manager_status.is_some()).count(),
                            "Cluster": t.cluster().map(|c| &c.cluster),
                        })
                    })
                    .await
            }
        };
        json!({
            "ID": self.node_id(),
            "Containers": containers.len(),
            "ContainersRunning": running,
            "ContainersPaused": 0,
            "ContainersStopped": containers.len() - running,
            "Images": self.images.images().map_or(0, |i| i.len()),
            "Driver": "overlay",
            "Name": self.cfg.hostname,
            "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "MemTotal": manager::mem_total(),
            "OperatingSystem": operating_system(),
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "KernelVersion": kernel_version(),
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "DockerRootDir": self.cfg.data_dir,
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() { "2" } else { "1" },
            "SystemTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "Swarm": swarm,
        })
    }

    async fn swarm_init(&self, req: Value) -> Result<Reply, ApiError> {
        let _g = self.init_lock.lock().await;
        let force = req["ForceNewCluster"].as_bool().unwrap_or(false);
        if let Some(m) = self.manager() {
            if force {
                return self.force_new_cluster(m).await;
            }
            return Err(ApiError::Unavailable(ALREADY_IN_SWARM.into()));
        }
        if self.identity.read().expect("identity lock").is_some() {
            // As dockerd: a worker cannot force a cluster (moby's Cluster.Init).
            let why = if force {
                NOT_A_SWARM_MANAGER
            } else {
                ALREADY_IN_SWARM
            };
            return Err(ApiError::Unavailable(why.into()));
        }
        let addrs = self.cluster_addrs(&req, None)?;
        let listener = cluster::bind(&addrs.listen)
            .await
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        let mut req = req;
        req["AdvertiseAddr"] = json!(addrs.advertise);
        let rt = self.rt.clone();
        let m = Manager::init(&self.cfg, &self.node_id(), rt, &req, self.sealing.clone()).await?;
        addrs.save(&self.cfg.data_dir).map_err(ApiError::internal)?;
        let identity = self
            .sealing
            .load_identity()
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::internal("the new identity is missing"))?;
        let tls = m.tls.clone();
        self.start_manager(m, listener);
        self.start_session(identity, tls, &addrs.advertise, &[]);
        Ok(Reply::Json(200, json!(self.node_id())))
    }

    /// `swarm init --force-new-cluster` on this manager: its manager half stops and starts
    /// again as the only member of a new Raft cluster with the whole state, serving the
    /// same cluster port (see [`Manager::force_new_cluster`]). The agent's session goes
    /// on (it reconnects). Docker keeps the addresses it had; so do we (the request's
    /// addresses and spec are not applied).
    async fn force_new_cluster(&self, m: Arc<Manager>) -> Result<Reply, ApiError> {
        let addrs = ClusterAddrs::load_or_flags(&self.cfg);
        if let Some(server) = self.server.lock().expect("server lock").take() {
            server.abort();
        }
        *self.manager.write().expect("manager lock") = None;
        let forced = m.force_new_cluster(&self.cfg).await;
        drop(m);
        let new = match forced {
            Ok(new) => new,
            Err(e) => {
                tracing::error!("force new cluster: {e}");
                // Back to what is on disk (the old cluster, or the new one if the
                // failure came after the swap), rather than no manager at all.
                if let Err(e) = self.reopen_manager(&addrs).await {
                    tracing::error!("reopen the manager after a failed force-new-cluster: {e}");
                }
                return Err(e);
            }
        };
        let listener = bind_again(&addrs.listen)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        self.start_manager(new, listener);
        tracing::info!(node = %self.node_id(), "forced a new cluster: this node is its only manager");
        Ok(Reply::Json(200, json!(self.node_id())))
    }

    async fn reopen_manager(&self, addrs: &ClusterAddrs) -> Result<()> {
        let identity = self
            .identity
            .read()
            .expect("identity lock")
            .clone()
            .ok_or_else(|| Error::Other("no identity".into()))?;
        let tls = ClusterTls::new(&identity)?;
        let opened = Manager::open(
            &self.cfg,
            &self.node_id(),
            self.rt.clone(),
            &identity,
            tls,
            self.sealing.clone(),
        )
        .await?;
        if let Some(m) = opened {
            let listener = bind_again(&addrs.listen).await?;
            self.start_manager(m, listener);
        }
        Ok(())
    }

    /// The cluster port's listen and advertise addresses of an init or join request:
    /// the request's, else swarmd's flags. Docker's CLI always sends its default
    /// `0.0.0.0:2377`; that one yields to `swarmd --listen-addr`.
    /// On a join (`remote` given), a system with no single address advertises the
    /// address it reaches the remote manager from, as dockerd lets the manager see it.
    fn cluster_addrs(&self, req: &Value, remote: Option<&str>) -> Result<ClusterAddrs, ApiError> {
        let given = |k: &str| {
            req[k]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let listen = given("ListenAddr")
            .filter(|l| l != "0.0.0.0:2377")
            .map(|l| manager::cluster_addr(&l))
            .unwrap_or_else(|| self.cfg.listen_addr.clone());
        let advertise = given("AdvertiseAddr").unwrap_or_else(|| {
            if self.cfg.advertise_addr == self.cfg.listen_addr {
                listen.clone()
            } else {
                self.cfg.advertise_addr.clone()
            }
        });
        // An interface name, or the unspecified listen address: an address of this host.
        let port = listen.rsplit_once(':').map_or("2377", |(_, p)| p);
        let advertise =
            match crate::addr::resolve_advertise(&advertise, port, &crate::addr::system_addrs()) {
                Ok(a) => a,
                Err(e) => match remote.and_then(|r| crate::addr::source_towards(r, port)) {
                    Some(a) => a,
                    None => return Err(ApiError::invalid(e)),
                },
            };
        Ok(ClusterAddrs { listen, advertise })
    }

    /// `POST /swarm/leave` on a worker: end the session, remove every task's container,
    /// forget the identity. The managers see the node Down; `node rm` removes it.
    /// `POST /swarm/leave?force=true` on a manager: out of the Raft membership when others
    /// remain (forced, as Docker's --force), then the manager half stops and its state is
    /// erased, and the node leaves as a worker does. The last manager erases the swarm.
    async fn manager_leave(&self, m: Arc<Manager>) -> Result<Reply, ApiError> {
        let others = m
            .store
            .read(|s| {
                s.nodes()
                    .filter(|n| n.manager_status.is_some() && n.meta.id != self.node_id())
                    .count()
            })
            .await;
        if others > 0 {
            let raft_id = manager::store::raft_id(&self.node_id());
            if let Err(e) = m.store.remove_member(raft_id, true).await {
                tracing::warn!("leave the Raft membership: {e}");
            }
            let _ = m
                .propose(vec![swarm_core::store::StoreAction::Remove(
                    swarm_core::store::ObjectKind::Node,
                    self.node_id(),
                )])
                .await;
        }
        if let Some(server) = self.server.lock().expect("server lock").take() {
            server.abort();
        }
        *self.manager.write().expect("manager lock") = None;
        m.stop().await;
        let _ = std::fs::remove_dir_all(self.cfg.data_dir.join("raft"));
        self.worker_leave(true).await
    }

    async fn worker_leave(&self, _force: bool) -> Result<Reply, ApiError> {
        let _g = self.init_lock.lock().await;
        if self
            .identity
            .write()
            .expect("identity lock")
            .take()
            .is_none()
        {
            return Err(ApiError::Unavailable(
                "This node is not part of a swarm".into(),
            ));
        }
        if let Some(s) = self.session.lock().expect("session lock").take() {
            s.abort();
        }
        self.agent.assign(Vec::new());
        let data = &self.cfg.data_dir;
        for f in ["managers.json", "cluster-addrs.json"] {
            let _ = std::fs::remove_file(data.join(f));
        }
        let _ = std::fs::remove_dir_all(certs::dir(data));
        // The next init or join makes a new node, with a new ID, as Docker's does.
        match fresh_node_id(&self.cfg) {
            Ok(id) => *self.node_id.write().expect("node id lock") = id,
            Err(e) => tracing::warn!("a new node ID after leaving: {e}"),
        }
        tracing::info!("left the swarm");
        Ok(Reply::Empty(200))
    }

    /// `POST /swarm/join`: check the manager's CA against the token (no trust on first
    /// use), trade the token for a certificate, then run as a worker or a manager.
    async fn swarm_join(&self, req: Value) -> Result<Reply, ApiError> {
        let _g = self.init_lock.lock().await;
        if self.manager().is_some() || self.identity.read().expect("identity lock").is_some() {
            return Err(ApiError::Unavailable(ALREADY_IN_SWARM.into()));
        }
        let token = req["JoinToken"].as_str().unwrap_or_default().to_string();
        let parsed = JoinToken::parse(&token).map_err(|e| ApiError::invalid(e.to_string()))?;
        let remote = req["RemoteAddrs"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|v| v.as_str())
            .map(manager::cluster_addr)
            .ok_or_else(|| ApiError::invalid("at least 1 RemoteAddr is required to join"))?;
        let addrs = self.cluster_addrs(&req, Some(&remote))?;
        let fail = |e: String| ApiError::invalid(e);
        // 1. The root, fetched over TLS that trusts nothing, checked against the token.
        let ch = swarm_identity::connect(&remote, ClientTls::FetchRoot)
            .await
            .map_err(|e| fail(format!("could not connect to {remote}: {e}")))?;
        let pem = CaClient::new(ch)
            .get_root_ca_certificate(cluster::proto::Empty {})
            .await
            .map_err(|st| fail(st.message().to_string()))?
            .into_inner()
            .cert_pem;
        parsed.verify_root(&pem).map_err(|e| fail(e.to_string()))?;
        // 2. A certificate for the token, asked of a manager that root vouches for.
        let tls = ClientTls::trust_root(&pem).map_err(|e| fail(e.to_string()))?;
        let ch = swarm_identity::connect(&remote, tls)
            .await
            .map_err(|e| fail(format!("could not connect to {remote}: {e}")))?;
        let key = NodeKey::generate().map_err(ApiError::internal)?;
        let issued = CaClient::new(ch)
            .issue_node_certificate(cluster::proto::IssueRequest {
                csr_pem: key.csr_pem().map_err(ApiError::internal)?,
                token,
                node_id: self.node_id(),
                addr: addrs.advertise.clone(),
                description: serde_json::to_vec(&manager::node_description(&self.cfg.hostname))
                    .unwrap_or_default(),
                availability: req["Availability"].as_str().unwrap_or_default().to_string(),
            })
            .await
            .map_err(|st| fail(st.message().to_string()))?
            .into_inner();
        let identity = NodeIdentity::new(issued.cert_pem, key.key_pem(), issued.ca_pem)
            .map_err(ApiError::internal)?;
        self.sealing
            .save_identity(&identity)
            .map_err(ApiError::internal)?;
        addrs.save(&self.cfg.data_dir).map_err(ApiError::internal)?;
        let tls = ClusterTls::new(&identity).map_err(ApiError::internal)?;
        if identity.role == Role::Manager {
            let listener = cluster::bind(&addrs.listen)
                .await
                .map_err(|e| ApiError::invalid(e.to_string()))?;
            let m = Manager::open_joining(
                &self.cfg,
                &self.node_id(),
                self.rt.clone(),
                &identity,
                tls.clone(),
                &addrs.advertise,
                self.sealing.clone(),
            )
            .await
            .map_err(ApiError::internal)?;
            let m = {
                self.start_manager(m, listener);
                self.manager().expect("just started")
            };
            m.join_raft(&remote).await.map_err(ApiError::internal)?;
        }
        let mut seed = issued.managers;
        seed.push(remote);
        self.start_session(identity, tls, &addrs.advertise, &seed);
        Ok(Reply::Empty(200))
    }
}

impl Node {
    /// `GET /swarm/backup`: this manager's state at one applied index plus its identity
    /// (see `manager::backup`). A worker answers moby's not-a-manager words.
    async fn backup(&self) -> Result<Reply, ApiError> {
        let Some(m) = self.manager() else {
            if self.identity.read().expect("identity lock").is_some() {
                return Err(ApiError::Unavailable(NOT_A_SWARM_MANAGER.into()));
            }
            return Err(ApiError::NotManager);
        };
        let tar = manager::backup::backup(&m, &self.cfg.data_dir, &self.node_id())
            .await
            .map_err(ApiError::internal)?;
        Ok(Reply::Tar(tar))
    }

    /// `GET /distribution/{name}/json`: the registry's descriptor and platforms, asked
    /// by this node (as dockerd does; the docker CLI pins the service's image to the
    /// digest, or warns and goes on unpinned when this fails).
    async fn distribution(&self, name: &str) -> Result<Reply, ApiError> {
        let opts = swarm_runtime::image::RegistryOptions {
            insecure: self.cfg.insecure_registries.clone(),
            auth: None,
        };
        let d = self
            .images
            .distribution(name, &opts)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let platforms: Vec<Value> = d
            .platforms
            .iter()
            .map(|p| {
                let mut v = json!({"architecture": p.architecture, "os": p.os});
                if let Some(variant) = &p.variant {
                    v["variant"] = json!(variant);
                }
                v
            })
            .collect();
        Ok(Reply::Json(
            200,
            json!({
                "Descriptor": {"mediaType": d.media_type, "digest": d.digest, "size": d.size},
                "Platforms": platforms,
            }),
        ))
    }

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
            .map(|i| {
                // `docker load` prints the familiar name (`busybox:1`).
                let r = &i.reference;
                let name = r
                    .strip_prefix("docker.io/library/")
                    .or_else(|| r.strip_prefix("docker.io/"))
                    .unwrap_or(r);
                format!("Loaded image: {name}\n")
            })
            .collect();
        Ok(Reply::Json(200, json!({ "stream": stream })))
    }
}

/// The host's distribution as dockerd names it: `PRETTY_NAME` of `/etc/os-release`.
fn operating_system() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "linux".into())
}

/// The architecture in Go's words (`GOARCH`), as dockerd's `/version` says it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
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
                    "Arch": go_arch(),
                    "KernelVersion": kernel_version(),
                    "GitCommit": "",
                    "GoVersion": "",
                }),
            )),
            Request::Info => Ok(Reply::Json(200, self.info().await)),
            Request::SwarmUnlock(body) => self.swarm_unlock(body).await,
            _ if self.sealing.locked() => Err(ApiError::Unavailable(LOCKED.into())),
            Request::SwarmInit(body) => self.swarm_init(body).await,
            Request::SwarmJoin(body) => self.swarm_join(body).await,
            Request::SwarmLeave { force } if self.manager().is_none() => {
                self.worker_leave(force).await
            }
            Request::SwarmLeave { force: true } => match self.manager() {
                Some(m) => self.manager_leave(m).await,
                None => self.worker_leave(true).await,
            },
            Request::ImageLoad { archive } => self.image_load(archive).await,
            Request::ImageList { filters, all } => self.image_list(&filters, all),
            Request::ImageInspect { name } => self.image_inspect(&name),
            Request::ImageTag { name, repo, tag } => self.image_tag(&name, &repo, &tag),
            Request::ImageRemove { name, force } => self.image_remove(&name, force).await,
            Request::ImageCreate {
                from_image,
                tag,
                registry_auth,
            } => self.image_pull(&from_image, &tag, registry_auth).await,
            Request::ImagePush {
                name,
                tag,
                registry_auth,
            } => self.image_push(&name, &tag, registry_auth).await,
            Request::Distribution { name } => self.distribution(&name).await,
            Request::SwarmBackup => self.backup().await,
            Request::ContainerList { filters, all } => self.container_list(&filters, all).await,
            Request::ContainerInspect { id } => self.container_inspect(&id).await,
            Request::ContainerLogs { id, opts } => self.container_logs(&id, opts).await,
            Request::Volume(v) => self.volume(v).await,
            Request::ContainerTop { id, ps_args } => self.container_top(&id, &ps_args).await,
            Request::ContainerStats {
                id,
                stream,
                one_shot,
            } => self.container_stats(&id, stream, one_shot).await,
            Request::ExecCreate { id, config } => self.exec_create(&id, config).await,
            Request::ExecStart {
                id,
                detach,
                console_size,
            } => self.exec_start(&id, detach, console_size).await,
            Request::ExecResize { id, rows, cols } => self.exec_resize(&id, rows, cols),
            Request::ExecInspect { id } => self.exec_inspect(&id),
            Request::Events {
                since,
                until,
                filters,
            } => {
                // A manager's own containers' and the cluster's events, as dockerd on a
                // manager; a worker's containers' only.
                let manager = self.manager();
                let mut feeds = vec![self.agent.events().as_ref()];
                if let Some(m) = &manager {
                    feeds.push(m.store.feed().as_ref());
                }
                let q = crate::events::EventsQuery {
                    since,
                    until,
                    filters,
                };
                Ok(Reply::JsonLines(crate::events::stream(&feeds, q)?))
            }
            other => match self.manager() {
                Some(m) => manager::control::handle(&m, other).await,
                None => Err(ApiError::NotManager),
            },
        }
    }

    fn swarm_state(&self) -> &'static str {
        if self.sealing.locked() {
            "locked"
        } else if self.manager().is_some() {
            "active/manager"
        } else if self.identity.read().expect("identity lock").is_some() {
            "active/worker"
        } else {
            "inactive"
        }
    }
}
