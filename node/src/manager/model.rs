//! The objects the manager stores, in Docker's JSON shape.
//!
//! Stand-in until `swarm-core`'s model lands: specs are kept as raw JSON (`Value`) so
//! they round-trip losslessly, which is what `service scale`/`update` need (they POST
//! back the whole spec they read).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    #[serde(rename = "Index")]
    pub index: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Swarm {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: Version,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub spec: Value,
    pub join_tokens: JoinTokens,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JoinTokens {
    pub worker: String,
    pub manager: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Node {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: Version,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub spec: Value,
    pub description: Value,
    pub status: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager_status: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Service {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: Version,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub spec: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_spec: Option<Value>,
    pub endpoint: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_status: Option<UpdateStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateStatus {
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    pub message: String,
}

impl Service {
    pub fn name(&self) -> &str {
        self.spec["Name"].as_str().unwrap_or("")
    }

    pub fn template(&self) -> &Value {
        &self.spec["TaskTemplate"]
    }

    /// Replicas of a replicated service; None for global.
    pub fn replicas(&self) -> Option<u64> {
        let mode = &self.spec["Mode"];
        if mode.get("Global").is_some() {
            return None;
        }
        Some(mode["Replicated"]["Replicas"].as_u64().unwrap_or(1))
    }

    pub fn labels(&self) -> std::collections::BTreeMap<String, String> {
        serde_json::from_value(self.spec["Labels"].clone()).unwrap_or_default()
    }
}

/// Docker's task states, in order: a task's observed state never moves backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    New,
    Pending,
    Assigned,
    Accepted,
    Preparing,
    Ready,
    Starting,
    Running,
    Complete,
    Shutdown,
    Failed,
    Rejected,
    Remove,
    Orphaned,
}

impl TaskState {
    pub fn is_terminal(self) -> bool {
        self >= TaskState::Complete
    }

    pub fn parse(s: &str) -> Option<TaskState> {
        serde_json::from_value(Value::String(s.to_ascii_lowercase())).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskStatus {
    pub timestamp: DateTime<Utc>,
    pub state: TaskState,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub err: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_status: Option<ContainerStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerStatus {
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    #[serde(rename = "PID")]
    pub pid: i64,
    pub exit_code: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Task {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: Version,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub labels: Value,
    pub spec: Value,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    pub slot: u64,
    #[serde(rename = "NodeID", default, skip_serializing_if = "String::is_empty")]
    pub node_id: String,
    pub status: TaskStatus,
    pub desired_state: TaskState,
    /// The service's spec version the task was made from (`_up-to-date`).
    #[serde(default)]
    pub spec_version: Version,
}
