//! `Service`: a stored service — its spec, the previous spec (for rollback), the
//! allocated endpoint, the rolling update's status, and (computed on list) task counts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::endpoint::Endpoint;
use super::meta::{Meta, Version};
use super::serde_util::{is_default, rfc3339_nano, rfc3339_nano_opt, string_enum};
use super::service_spec::ServiceSpec;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Service {
    #[serde(flatten)]
    pub meta: Meta,
    #[serde(default)]
    pub spec: ServiceSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_spec: Option<ServiceSpec>,
    #[serde(default)]
    pub endpoint: Endpoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_status: Option<UpdateStatus>,
    /// Filled by the API on `GET /services?status=true`; not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_status: Option<ServiceStatus>,
    /// Present on job-mode services only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<JobStatus>,
    /// The Raft index at which `Spec` last changed (swarmkit's `SpecVersion`); tasks
    /// made from that spec carry the same value, which is how `_up-to-date` is decided.
    /// Not part of Docker's JSON schema; clients ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_version: Option<Version>,
}

impl Service {
    pub fn id(&self) -> &str {
        &self.meta.id
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

string_enum! {
    /// `UpdateStatus.State`.
    pub enum UpdateState {
        Updating => "updating",
        Paused => "paused",
        Completed => "completed",
        RollbackStarted => "rollback_started",
        RollbackPaused => "rollback_paused",
        RollbackCompleted => "rollback_completed",
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<UpdateState>,
    #[serde(
        with = "rfc3339_nano_opt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(
        with = "rfc3339_nano_opt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub message: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceStatus {
    #[serde(default)]
    pub running_tasks: u64,
    #[serde(default)]
    pub desired_tasks: u64,
    #[serde(default)]
    pub completed_tasks: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobStatus {
    /// Bumped on every execution of the job (each spec update); tasks carry it.
    #[serde(default)]
    pub job_iteration: Version,
    #[serde(with = "rfc3339_nano", default)]
    pub last_execution: DateTime<Utc>,
}
