//! The manager half: the store, the control API's handlers and the leader's loops.
//!
//! ```text
//!  control (API handlers) ──propose──▶ store (Raft: log, commit, apply) ──applied index──▶ loops
//!                                          ▲                                            │ reconcile,
//!                                          └──────────── propose plans ◀────────────────┘ schedule,
//!                                                                        dispatch to the agent
//! ```
//!
//! The store is `swarm-raft` over `swarm-core`'s store: Raft's log and snapshots under
//! `<data>/raft` are the manager's only state on disk. The loops run `swarm-core`'s
//! orchestrator and scheduler and propose what they decide.

pub mod backup;
pub mod ca;
pub mod control;
pub mod dispatcher;
pub mod events;
pub mod logs;
pub mod loops;
pub mod network;
pub mod node_networks;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use swarm_raft::RaftConfig;
use swarm_runtime::container::ContainerRuntime;

use swarm_core::model::{
    ClusterInfo, EngineDescription, JoinTokens, ManagerStatus, Meta, Node, NodeAvailability,
    NodeDescription, NodeRole, NodeSpec, NodeState, NodeStatus, Platform, Reachability, Resources,
    Swarm, SwarmSpec,
};
use swarm_core::store::{Object, StoreAction};

use swarm_identity::{ClusterTls, NodeIdentity};

use self::store::{Applied, Store};
use crate::api::ApiError;
use crate::certs;
use crate::config::Config;
use crate::error::Result;

pub struct Manager {
    pub store: Store,
    pub node_id: String,
    /// The cluster's ID (the organization of every node certificate).
    pub cluster_id: String,
    pub runtime: Arc<dyn ContainerRuntime>,
    /// This node's TLS on the cluster port (its certificate, the cluster's roots).
    pub tls: Arc<ClusterTls>,
    /// The agents' sessions with this manager (served while it leads).
    pub dispatcher: dispatcher::Dispatcher,
    /// Log subscriptions served through the agents' sessions (while it leads).
    pub log_broker: logs::LogBroker,
    /// Set once this manager half stops (demotion, leave): its loops end.
    stopped: tokio::sync::watch::Sender<bool>,
    /// This node's keys on disk, sealed under the swarm's unlock key while autolock is on.
    pub sealing: Arc<certs::Sealing>,
}

impl Manager {
    /// The manager of a node that was initialized before: reopens Raft under `<data>/raft`
    /// (the store is rebuilt from its snapshot and log). `None` if this node never
    /// finished `swarm init`.
    pub async fn open(
        cfg: &Config,
        node_id: &str,
        runtime: Arc<dyn ContainerRuntime>,
        identity: &NodeIdentity,
        tls: Arc<ClusterTls>,
        sealing: Arc<certs::Sealing>,
    ) -> Result<Option<Manager>> {
        let dir = raft_dir(&cfg.data_dir);
        // A force-new-cluster that a crash interrupted between its renames.
        swarm_raft::finish_swap(&dir).map_err(swarm_raft::RaftError::from)?;
        if !dir.exists() {
            return Ok(None);
        }
        let addr = cluster_addr(&cfg.advertise_addr);
        let store = open_store(cfg, node_id, &addr, &tls, &sealing).await?;
        Ok(Some(Manager::new(
            store,
            node_id,
            &identity.cluster_id,
            runtime,
            tls,
            sealing,
        )))
    }

    /// A manager that joins an existing cluster: its Raft starts empty and is filled by
    /// the leader once [`Manager::join_raft`] (after the cluster port serves it).
    pub async fn open_joining(
        cfg: &Config,
        node_id: &str,
        runtime: Arc<dyn ContainerRuntime>,
        identity: &NodeIdentity,
        tls: Arc<ClusterTls>,
        advertise: &str,
        sealing: Arc<certs::Sealing>,
    ) -> Result<Manager> {
        let store = open_store(cfg, node_id, advertise, &tls, &sealing).await?;
        Ok(Manager::new(
            store,
            node_id,
            &identity.cluster_id,
            runtime,
            tls,
            sealing,
        ))
    }

    pub async fn join_raft(&self, remote: &str) -> Result<()> {
        self.store.join(remote).await
    }

    fn new(
        store: Store,
        node_id: &str,
        cluster_id: &str,
        runtime: Arc<dyn ContainerRuntime>,
        tls: Arc<ClusterTls>,
        sealing: Arc<certs::Sealing>,
    ) -> Manager {
        Manager {
            sealing,
            store,
            node_id: node_id.to_string(),
            cluster_id: cluster_id.to_string(),
            runtime,
            tls,
            dispatcher: dispatcher::Dispatcher::default(),
            log_broker: logs::LogBroker::default(),
            stopped: tokio::sync::watch::channel(false).0,
        }
    }

    /// Stops the manager half for good (demotion, leave): its loops end and Raft stops.
    pub async fn stop(&self) {
        self.stopped.send_replace(true);
        self.store.stop().await;
    }

    /// Resolves once [`Manager::stop`] was called.
    pub async fn stopped(&self) {
        let mut rx = self.stopped.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// `swarm init`: a new cluster with this node as its only manager and leader.
    pub async fn init(
        cfg: &Config,
        node_id: &str,
        runtime: Arc<dyn ContainerRuntime>,
        req: &Value,
        sealing: Arc<certs::Sealing>,
    ) -> Result<Manager, ApiError> {
        let mut spec = json!({
            "Name": "default",
            "Labels": {},
            "Orchestration": {"TaskHistoryRetentionLimit": 5},
            "Raft": {"SnapshotInterval": 10000, "KeepOldSnapshots": 0,
                     "LogEntriesForSlowFollowers": 500, "ElectionTick": 10, "HeartbeatTick": 1},
            "Dispatcher": {"HeartbeatPeriod": 5_000_000_000u64},
            "CAConfig": {"NodeCertExpiry": 7_776_000_000_000_000u64},
            "TaskDefaults": {},
            "EncryptionConfig": {"AutoLockManagers": false}
        });
        if let Some(Value::Object(given)) = req.get("Spec") {
            for (k, v) in given {
                if !v.is_null() && v != &json!({}) {
                    spec[k] = v.clone();
                }
            }
        }
        let advertise = req["AdvertiseAddr"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| cfg.advertise_addr.clone());
        let advertise = cluster_addr(&advertise);
        let addr = advertise
            .rsplit_once(':')
            .map_or(advertise.clone(), |(h, _)| h.to_string());
        let spec: SwarmSpec = serde_json::from_value(spec)
            .map_err(|e| ApiError::invalid(format!("invalid swarm spec: {e}")))?;
        let unlock_key = spec
            .encryption_config
            .auto_lock_managers
            .then(swarm_identity::UnlockKey::generate);
        let pools = network::init_addr_pools(req)?;
        let cluster_id = crate::ids::new_id();
        let new = certs::new_cluster(&cluster_id, node_id).map_err(ApiError::internal)?;
        let tls_info = ca::tls_info(new.root.cert_pem(), &new.root).map_err(ApiError::internal)?;
        let swarm = Swarm {
            cluster: ClusterInfo {
                meta: Meta::with_id(cluster_id.clone()),
                tls_info: tls_info.clone(),
                spec,
                root_rotation_in_progress: false,
                default_addr_pool: pools.default_addr_pool,
                subnet_size: pools.subnet_size,
                data_path_port: pools.data_path_port,
            },
            join_tokens: JoinTokens {
                worker: new.worker_token.clone(),
                manager: new.manager_token.clone(),
            },
            root_ca_key: new.root.key_pem().unwrap_or_default(),
            root_rotation: None,
            unlock_key: unlock_key
                .as_ref()
                .map(|k| k.to_string())
                .unwrap_or_default(),
        };
        let node = Node {
            meta: Meta::with_id(node_id),
            spec: NodeSpec {
                role: Some(NodeRole::Manager),
                availability: Some(NodeAvailability::Active),
                ..NodeSpec::default()
            },
            description: {
                let mut d = NodeDescription {
                    tls_info,
                    ..node_description(&cfg.hostname)
                };
                if let Some(dp) = network::data_path_addr(req)? {
                    d.extra.insert("DataPathAddr".into(), json!(dp));
                }
                d
            },
            status: NodeStatus {
                state: Some(NodeState::Ready),
                message: String::new(),
                addr,
            },
            manager_status: Some(ManagerStatus {
                leader: true,
                reachability: Some(Reachability::Reachable),
                addr: advertise.clone(),
            }),
            // The allocator gives the ingress address.
            attachments: Vec::new(),
        };
        // The identity first: a manager's Raft is opened with its certificate's TLS.
        // Autolock from the start: the keys are sealed before they first reach the disk.
        sealing
            .set_key(unlock_key.clone())
            .map_err(ApiError::internal)?;
        sealing
            .save_identity(&new.identity)
            .map_err(ApiError::internal)?;
        let tls = ClusterTls::new(&new.identity).map_err(ApiError::internal)?;
        let store = open_store(cfg, node_id, &advertise, &tls, &sealing)
            .await
            .map_err(ApiError::internal)?;
        let first = async {
            store.initialize().await.map_err(ApiError::internal)?;
            store
                .propose(vec![
                    StoreAction::Create(Object::Cluster(Box::new(swarm))),
                    StoreAction::Create(Object::Node(Box::new(node))),
                    network::ingress_network(),
                ])
                .await?;
            Ok::<_, ApiError>(())
        };
        if let Err(e) = first.await {
            // Close the files so that a retried init can open them again.
            if let Err(e) = store.shutdown().await {
                tracing::warn!("close raft after a failed init: {e}");
            }
            return Err(e);
        }
        Ok(Manager::new(
            store,
            node_id,
            &cluster_id,
            runtime,
            tls,
            sealing,
        ))
    }

    /// `swarm init --force-new-cluster` on a running manager (also one whose quorum is
    /// gone): this manager half stops, its Raft restarts as the only member of a new
    /// cluster that keeps the whole store (services, tasks, nodes, secrets, configs,
    /// networks, the cluster's ID, CA and tokens), and the returned manager half leads it.
    /// In the store this node is the leader and the other managers are no longer
    /// reachable (their nodes stay, shown Down once their heartbeats are overdue, until
    /// demoted or removed). The old Raft directory is kept beside the new one.
    pub async fn force_new_cluster(&self, cfg: &Config) -> Result<Manager, ApiError> {
        self.stopped.send_replace(true);
        let dir = raft_dir(&cfg.data_dir);
        let addr = self.store.addr();
        let forced = self
            .store
            .force_new_cluster(&dir)
            .await
            .map_err(ApiError::internal)?;
        tracing::warn!(
            last_index = forced.last_index,
            uncommitted = forced.uncommitted,
            backup = %forced.backup.display(),
            "forced a new cluster: this manager alone, with the whole state"
        );
        let store = open_store(cfg, &self.node_id, &addr, &self.tls, &self.sealing)
            .await
            .map_err(ApiError::internal)?;
        if let Err(e) = store.initialize().await {
            if let Err(e) = store.shutdown().await {
                tracing::warn!("close raft after a failed force-new-cluster: {e}");
            }
            return Err(ApiError::internal(e));
        }
        let managers: Vec<Node> = store
            .read(|s| {
                s.nodes()
                    .filter(|n| n.manager_status.is_some())
                    .cloned()
                    .collect()
            })
            .await;
        let updates = managers
            .into_iter()
            .filter_map(|mut n| {
                let me = n.meta.id == self.node_id;
                let ms = n.manager_status.as_mut()?;
                ms.leader = me;
                ms.reachability = Some(if me {
                    Reachability::Reachable
                } else {
                    Reachability::Unreachable
                });
                Some(StoreAction::Update(Object::Node(Box::new(n))))
            })
            .collect();
        store.propose(updates).await?;
        Ok(Manager::new(
            store,
            &self.node_id,
            &self.cluster_id,
            self.runtime.clone(),
            self.tls.clone(),
            self.sealing.clone(),
        ))
    }

    /// Proposes a batch; the store's refusal (a stale version, a taken name) is an
    /// `ApiError` with Docker's status.
    pub async fn propose(&self, actions: Vec<StoreAction>) -> Result<Applied, ApiError> {
        Ok(self.store.propose(actions).await?)
    }
}

pub(crate) fn raft_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("raft")
}

async fn open_store(
    cfg: &Config,
    node_id: &str,
    addr: &str,
    tls: &Arc<ClusterTls>,
    sealing: &certs::Sealing,
) -> Result<Store> {
    let config = RaftConfig {
        data_key: Some(sealing.data_key()?),
        ..RaftConfig::default()
    };
    Store::open(
        &raft_dir(&cfg.data_dir),
        store::raft_id(node_id),
        addr.to_string(),
        config,
        certs::connector(tls.clone()),
    )
    .await
}

/// The role a node holds, as its session and its certificates give it: a manager from
/// its promotion (the spec says manager) until its demotion is through (out of Raft, its
/// manager status cleared), so that a demoted leader keeps its manager half until the
/// next leader took over.
pub fn held_role(n: &Node) -> NodeRole {
    if n.spec.role == Some(NodeRole::Manager) || n.manager_status.is_some() {
        NodeRole::Manager
    } else {
        NodeRole::Worker
    }
}

/// A cluster address with Docker's default port when none is given.
pub fn cluster_addr(addr: &str) -> String {
    if addr.contains(':') {
        addr.to_string()
    } else {
        format!("{addr}:2377")
    }
}

/// This machine as Docker describes a node: hostname, platform, capacity.
pub fn node_description(hostname: &str) -> NodeDescription {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    NodeDescription {
        hostname: hostname.to_string(),
        platform: Platform {
            architecture: std::env::consts::ARCH.to_string(),
            os: "linux".to_string(),
            ..Platform::default()
        },
        resources: Resources {
            nano_cpus: cpus * 1_000_000_000,
            memory_bytes: mem_total(),
            ..Resources::default()
        },
        engine: EngineDescription {
            engine_version: env!("CARGO_PKG_VERSION").to_string(),
            ..EngineDescription::default()
        },
        ..NodeDescription::default()
    }
}

pub fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<i64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
