//! The manager half: the store, the control API's handlers and the leader's loops.
//!
//! ```text
//!  control (API handlers) ──propose──▶ store (Raft: log, commit, apply) ──applied index──▶ loops
//!                                          ▲                                            │ reconcile,
//!                                          └──────────── propose plans ◀────────────────┘ schedule,
//!                                                                        dispatch to the agent
//! ```
//!
//! The store is `swarm-raft` over node-local tables: Raft's log and snapshots under
//! `<data>/raft` are the manager's only state on disk. `model`, `store`'s tables and
//! `orchestrator` are stand-ins for `swarm-core` with the same contracts (a batch of
//! actions per entry; `reconcile(view, now) -> Plan`), to be replaced by that crate.

pub mod control;
pub mod loops;
pub mod model;
pub mod orchestrator;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use serde_json::{json, Value};
use swarm_raft::RaftConfig;
use swarm_runtime::container::ContainerRuntime;

use self::model::{JoinTokens, Node, Swarm, Version};
use self::store::{Action, Store};
use crate::api::ApiError;
use crate::config::Config;
use crate::error::Result;

pub struct Manager {
    pub store: Store,
    pub node_id: String,
    pub runtime: Arc<dyn ContainerRuntime>,
    /// Serializes check-then-write handlers (name conflicts, version checks).
    pub write_lock: tokio::sync::Mutex<()>,
}

impl Manager {
    /// The manager of a node that was initialized before: reopens Raft under `<data>/raft`
    /// (the tables are rebuilt from its snapshot and log). `None` if this node never
    /// finished `swarm init`.
    pub async fn open(
        cfg: &Config,
        node_id: &str,
        runtime: Arc<dyn ContainerRuntime>,
    ) -> Result<Option<Manager>> {
        let dir = raft_dir(&cfg.data_dir);
        if !dir.exists() {
            return Ok(None);
        }
        let store = open_store(cfg, node_id, &cfg.advertise_addr).await?;
        if store.read(|t| t.swarm.is_none()).await {
            // `swarm init` died before its first write: the next init starts over.
            store.shutdown().await?;
            return Ok(None);
        }
        Ok(Some(Manager::new(store, node_id, runtime)))
    }

    fn new(store: Store, node_id: &str, runtime: Arc<dyn ContainerRuntime>) -> Manager {
        Manager {
            store,
            node_id: node_id.to_string(),
            runtime,
            write_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// `swarm init`: a new cluster with this node as its only manager and leader.
    pub async fn init(
        cfg: &Config,
        node_id: &str,
        runtime: Arc<dyn ContainerRuntime>,
        req: &Value,
    ) -> Result<Manager, ApiError> {
        let now = Utc::now();
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
        let advertise = if advertise.contains(':') {
            advertise
        } else {
            format!("{advertise}:2377")
        };
        let addr = advertise
            .rsplit_once(':')
            .map_or(advertise.clone(), |(h, _)| h.to_string());
        let cluster_id = crate::ids::new_id();
        let swarm = Swarm {
            id: cluster_id,
            version: Version::default(),
            created_at: now,
            updated_at: now,
            spec,
            join_tokens: JoinTokens {
                worker: join_token(),
                manager: join_token(),
            },
            rest: [
                ("RootRotationInProgress".to_string(), json!(false)),
                ("DefaultAddrPool".to_string(), json!(["10.0.0.0/8"])),
                ("SubnetSize".to_string(), json!(24)),
                ("DataPathPort".to_string(), json!(4789)),
                ("TLSInfo".to_string(), json!({})),
            ]
            .into_iter()
            .collect(),
        };
        let node = Node {
            id: node_id.to_string(),
            version: Version::default(),
            created_at: now,
            updated_at: now,
            spec: json!({"Labels": {}, "Role": "manager", "Availability": "active"}),
            description: node_description(&cfg.hostname),
            status: json!({"State": "ready", "Addr": addr}),
            manager_status: Some(json!({
                "Leader": true, "Reachability": "reachable", "Addr": advertise
            })),
        };
        let store = open_store(cfg, node_id, &advertise)
            .await
            .map_err(ApiError::internal)?;
        let first = async {
            store.initialize().await.map_err(ApiError::internal)?;
            store
                .propose(vec![Action::PutSwarm(swarm), Action::PutNode(node)])
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
        Ok(Manager::new(store, node_id, runtime))
    }

    pub async fn propose(&self, actions: Vec<Action>) -> Result<u64, ApiError> {
        Ok(self.store.propose(actions).await?)
    }
}

fn raft_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("raft")
}

async fn open_store(cfg: &Config, node_id: &str, addr: &str) -> Result<Store> {
    Store::open(
        &raft_dir(&cfg.data_dir),
        store::raft_id(node_id),
        addr.to_string(),
        RaftConfig::default(),
    )
    .await
}

/// `SWMTKN-1-<secret>-<secret>`: the form of Docker's tokens. Placeholders: the CA that
/// gives them meaning comes with the cluster issue.
fn join_token() -> String {
    let a = crate::ids::new_id() + &crate::ids::new_id();
    format!("SWMTKN-1-{}-{}", &a[..50], crate::ids::new_id())
}

/// This machine as Docker describes a node: hostname, platform, capacity.
pub fn node_description(hostname: &str) -> Value {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    json!({
        "Hostname": hostname,
        "Platform": {"Architecture": std::env::consts::ARCH, "OS": "linux"},
        "Resources": {"NanoCPUs": cpus * 1_000_000_000, "MemoryBytes": mem_total()},
        "Engine": {"EngineVersion": env!("CARGO_PKG_VERSION"), "Plugins": []},
        "TLSInfo": {}
    })
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
