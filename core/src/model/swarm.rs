//! The cluster object: `Swarm` (= `ClusterInfo` + `JoinTokens`) and its `Spec`
//! (orchestration, Raft, dispatcher, CA, encryption, task defaults). One per store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::driver::Driver;
use super::meta::Meta;
use super::node::TlsInfo;
use super::serde_util::{is_default, null_as_default};

/// `GET /swarm`'s answer and the store's cluster object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Swarm {
    #[serde(flatten)]
    pub cluster: ClusterInfo,
    #[serde(default)]
    pub join_tokens: JoinTokens,
    /// The root CA's private key (PEM), replicated to every manager through Raft (sealed
    /// at rest). Never in an API answer: the control API clears it ([`Swarm::public`]).
    #[serde(
        rename = "RootCAKey",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub root_ca_key: String,
    /// The managers' unlock key (`SWMKEY-1-...`) while autolock is on; each manager
    /// seals its keys on disk under it. Only `GET /swarm/unlockkey` shows it.
    #[serde(
        rename = "UnlockKey",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub unlock_key: String,
    /// A root CA rotation under way (`swarm ca --rotate`): the new root, its key and the
    /// new root cross-signed by the old one. Only in the store.
    #[serde(
        rename = "RootRotation",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub root_rotation: Option<RootRotation>,
}

/// The new root of a rotation: nodes get certificates from its key, chained through
/// `cross_signed` to the old root, until every node has one; then it is the root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootRotation {
    #[serde(rename = "CACert")]
    pub ca_cert: String,
    #[serde(rename = "CAKey")]
    pub ca_key: String,
    #[serde(rename = "CrossSignedCACert")]
    pub cross_signed: String,
}

impl Swarm {
    pub fn id(&self) -> &str {
        &self.cluster.meta.id
    }

    /// What `GET /swarm` shows: everything but the CA's key and the unlock key.
    pub fn public(&self) -> Swarm {
        Swarm {
            root_ca_key: String::new(),
            unlock_key: String::new(),
            root_rotation: None,
            ..self.clone()
        }
    }
}

/// `Info.Swarm.Cluster`: the swarm without its join tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterInfo {
    #[serde(flatten)]
    pub meta: Meta,
    #[serde(default)]
    pub spec: SwarmSpec,
    #[serde(rename = "TLSInfo", alias = "TlsInfo", default)]
    pub tls_info: TlsInfo,
    #[serde(default)]
    pub root_rotation_in_progress: bool,
    #[serde(default)]
    pub default_addr_pool: Vec<String>,
    #[serde(default)]
    pub subnet_size: u32,
    #[serde(default)]
    pub data_path_port: u32,
}

/// Docker's defaults for the address pool settings (`swarm init` without flags).
pub const DEFAULT_ADDR_POOL: &str = "10.0.0.0/8";
pub const DEFAULT_SUBNET_SIZE: u32 = 24;
pub const DEFAULT_DATA_PATH_PORT: u32 = 4789;

impl ClusterInfo {
    /// `DefaultAddrPool`, Docker's `["10.0.0.0/8"]` when empty.
    pub fn addr_pools(&self) -> Vec<String> {
        if self.default_addr_pool.is_empty() {
            vec![DEFAULT_ADDR_POOL.to_owned()]
        } else {
            self.default_addr_pool.clone()
        }
    }

    /// `SubnetSize`, 24 when unset.
    pub fn subnet_size_or_default(&self) -> u32 {
        if self.subnet_size == 0 {
            DEFAULT_SUBNET_SIZE
        } else {
            self.subnet_size
        }
    }

    /// `DataPathPort` (the VXLAN UDP port), 4789 when unset.
    pub fn data_path_port_or_default(&self) -> u32 {
        if self.data_path_port == 0 {
            DEFAULT_DATA_PATH_PORT
        } else {
            self.data_path_port
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JoinTokens {
    #[serde(default)]
    pub worker: String,
    #[serde(default)]
    pub manager: String,
}

/// `POST /swarm/update`'s body. Lossless.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmSpec {
    #[serde(default, skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub orchestration: OrchestrationConfig,
    #[serde(default)]
    pub raft: RaftConfig,
    #[serde(default)]
    pub dispatcher: DispatcherConfig,
    #[serde(rename = "CAConfig", alias = "CaConfig", default)]
    pub ca_config: CaConfig,
    #[serde(default)]
    pub task_defaults: TaskDefaults,
    #[serde(default)]
    pub encryption_config: EncryptionConfig,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrchestrationConfig {
    /// Old tasks kept per slot (or per node); negative keeps them all. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_history_retention_limit: Option<i64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RaftConfig {
    #[serde(default, skip_serializing_if = "is_default")]
    pub snapshot_interval: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_old_snapshots: Option<u64>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub log_entries_for_slow_followers: u64,
    #[serde(default)]
    pub election_tick: i64,
    #[serde(default)]
    pub heartbeat_tick: i64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DispatcherConfig {
    /// Nanoseconds between an agent's heartbeats. Default 5 s.
    #[serde(default, skip_serializing_if = "is_default")]
    pub heartbeat_period: i64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CaConfig {
    /// Nanoseconds a node certificate is valid. Default 90 days.
    #[serde(default, skip_serializing_if = "is_default")]
    pub node_cert_expiry: i64,
    #[serde(
        rename = "ExternalCAs",
        alias = "ExternalCas",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub external_cas: Vec<Value>,
    #[serde(rename = "SigningCACert", default, skip_serializing_if = "is_default")]
    pub signing_ca_cert: String,
    #[serde(rename = "SigningCAKey", default, skip_serializing_if = "is_default")]
    pub signing_ca_key: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub force_rotate: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskDefaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_driver: Option<Driver>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptionConfig {
    #[serde(default)]
    pub auto_lock_managers: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
