//! `Task`: one instance of a service in a slot (or on a node, for global services), its
//! desired state as the orchestrator sets it and its observed status as the agent reports.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::endpoint::PortConfig;
use super::meta::{Meta, Version};
use super::network::Network;
use super::serde_util::{is_default, null_as_default, rfc3339_nano, rfc3339_nano_opt};
use super::task_spec::TaskSpec;
use crate::state::TaskState;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Task {
    #[serde(flatten)]
    pub meta: Meta,
    #[serde(default, skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    /// Shared: a service's tasks carry the same spec (the store keeps one copy per
    /// service, see `Store::share_spec`), and a task never changes its spec.
    #[serde(default)]
    pub spec: Arc<TaskSpec>,
    #[serde(rename = "ServiceID", default, skip_serializing_if = "is_default")]
    pub service_id: String,
    /// Replicated services: 1..=replicas. Global services: 0 (the node is the slot).
    #[serde(default, skip_serializing_if = "is_default")]
    pub slot: u64,
    /// Empty until the scheduler assigns the task; never changes afterwards.
    #[serde(rename = "NodeID", default, skip_serializing_if = "is_default")]
    pub node_id: String,
    #[serde(default)]
    pub status: TaskStatus,
    #[serde(default)]
    pub desired_state: TaskState,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub networks_attachments: Vec<NetworkAttachment>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub generic_resources: Vec<Value>,
    /// The service's `JobStatus.JobIteration` this task was made for (jobs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_iteration: Option<Version>,
    /// The service's `SpecVersion` this task was made from (swarmkit's field, not in
    /// Docker's schema): a task is up to date when it equals the service's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_version: Option<Version>,
    /// When the task first reported RUNNING (not in Docker's schema; swarmkit's updater
    /// keeps it in memory): a rolling update counts a failure only within `Monitor` of
    /// it, and every manager, a new leader too, agrees on it from the log.
    #[serde(
        rename = "RunningSince",
        default,
        skip_serializing_if = "Option::is_none",
        with = "rfc3339_nano_opt"
    )]
    pub running_since: Option<DateTime<Utc>>,
}

impl Task {
    pub fn id(&self) -> &str {
        &self.meta.id
    }
}

/// What the agent last reported (or the manager decided, before assignment).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskStatus {
    #[serde(with = "rfc3339_nano", default)]
    pub timestamp: DateTime<Utc>,
    #[serde(default)]
    pub state: TaskState,
    /// Human-readable progress, e.g. `started`, `pending task scheduling`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub message: String,
    /// Why the task failed or is pending, e.g. `no suitable node (...)`; `service ps`'s
    /// ERROR column.
    #[serde(default, skip_serializing_if = "is_default")]
    pub err: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_status: Option<ContainerStatus>,
    #[serde(default)]
    pub port_status: PortStatus,
    /// The last lines the task's container wrote, sent by its node when the task ended
    /// (not in Docker's schema): `service logs` reads them once the node is gone
    /// (moby#37336). Bounded by the agent ([`LOG_TAIL_LINES`] lines of at most
    /// [`LOG_TAIL_LINE_BYTES`]).
    #[serde(
        rename = "SwarmLogTail",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub log_tail: Vec<TailLine>,
}

/// How many of a task's last log lines its status keeps.
pub const LOG_TAIL_LINES: usize = 20;
/// A longer kept line is cut there.
pub const LOG_TAIL_LINE_BYTES: usize = 1024;

/// One kept log line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TailLine {
    #[serde(with = "rfc3339_nano", default)]
    pub time: DateTime<Utc>,
    /// 1: stdout, 2: stderr.
    pub stream: u32,
    /// The line as written (lossy UTF-8), with its newline.
    pub line: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerStatus {
    #[serde(rename = "ContainerID", default, skip_serializing_if = "is_default")]
    pub container_id: String,
    #[serde(
        rename = "PID",
        alias = "Pid",
        default,
        skip_serializing_if = "is_default"
    )]
    pub pid: i64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub exit_code: i64,
}

/// Host-mode ports this task published on its node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortStatus {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<PortConfig>,
}

/// A network the task is attached to (the network object as the allocator saw it) and
/// the task's addresses on it, CIDR (`10.0.1.5/24`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkAttachment {
    #[serde(default, deserialize_with = "null_as_default")]
    pub network: Network,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub addresses: Vec<String>,
}
