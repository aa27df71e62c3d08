//! `TaskSpec`: the template each task of a service is made from (container, resources,
//! restart policy, placement, networks, log driver). Lossless like every spec.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::container_spec::ContainerSpec;
use super::driver::Driver;
use super::platform::Platform;
use super::serde_util::{is_default, null_as_default, string_enum};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_spec: Option<ContainerSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub networks: Vec<NetworkAttachmentConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_driver: Option<Driver>,
    /// A counter: bumping it redeploys every task (`service update --force`). Always
    /// written, as Go does.
    #[serde(default)]
    pub force_update: u64,
    /// `container` (the default), `plugin` or `attachment`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub runtime: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Resources {Limits, Reservations}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceRequirements {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<Resources>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Limits {NanoCPUs, MemoryBytes, Pids}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Limit {
    #[serde(
        rename = "NanoCPUs",
        alias = "NanoCpus",
        default,
        skip_serializing_if = "is_default"
    )]
    pub nano_cpus: i64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub memory_bytes: i64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub pids: i64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Reservations` of a task, and a node's `Description.Resources`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resources {
    #[serde(
        rename = "NanoCPUs",
        alias = "NanoCpus",
        default,
        skip_serializing_if = "is_default"
    )]
    pub nano_cpus: i64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub memory_bytes: i64,
    /// Kept as sent; not scheduled on yet.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub generic_resources: Vec<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

string_enum! {
    /// `RestartPolicy.Condition`.
    pub enum RestartCondition {
        None => "none",
        OnFailure => "on-failure",
        Any => "any",
    }
}

/// `RestartPolicy`. Durations are nanoseconds; `None` means Swarm's default (any, 5 s,
/// unlimited attempts, no window).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<RestartCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<i64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Placement {Constraints, Preferences, MaxReplicas, Platforms}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Placement {
    /// `node.labels.zone==a`, `node.role!=manager`, ...
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub constraints: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub preferences: Vec<PlacementPreference>,
    /// Tasks of the service per node; 0 means no limit.
    #[serde(default, skip_serializing_if = "is_default")]
    pub max_replicas: u64,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub platforms: Vec<Platform>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{"Spread": {"SpreadDescriptor": "node.labels.zone"}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlacementPreference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<SpreadOver>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SpreadOver {
    #[serde(default)]
    pub spread_descriptor: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A network the task attaches to: `Target` is a network ID or NAME (the API resolves
/// names, `stack deploy` sends names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkAttachmentConfig {
    #[serde(default, skip_serializing_if = "is_default")]
    pub target: String,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub aliases: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
