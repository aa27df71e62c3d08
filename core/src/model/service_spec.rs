//! `ServiceSpec`: what a user asks for (name, labels, task template, mode, update and
//! rollback policy, endpoint). Stored losslessly: fields we do not model are kept in
//! `extra` and written back, so a GET-modify-POST by any client drops nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::endpoint::EndpointSpec;
use super::serde_util::{go_float, is_default, null_as_default, string_enum};
use super::task_spec::{NetworkAttachmentConfig, TaskSpec};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceSpec {
    #[serde(default, skip_serializing_if = "is_default")]
    pub name: String,
    /// Always written (Go's `Annotations.Labels` has no `omitempty`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub task_template: TaskSpec,
    #[serde(default)]
    pub mode: ServiceMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_config: Option<UpdateConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_config: Option<UpdateConfig>,
    /// Deprecated since API 1.44 in favour of `TaskTemplate.Networks`; still accepted.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub networks: Vec<NetworkAttachmentConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_spec: Option<EndpointSpec>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ServiceSpec {
    /// What Docker's daemon writes into every spec it stores (create and update alike:
    /// its conversion to swarmkit's types and back fills them): a replicated service
    /// without `Replicas` (or with no mode at all) has 1, a replicated job without
    /// `MaxConcurrent` has 1 and without `TotalCompletions` as many as `MaxConcurrent`,
    /// `Runtime` is `container` and the container's `Isolation` is `default`. Clients
    /// rely on them: the docker CLI refuses a replicated mode without a count
    /// (`unrecognized service mode`).
    pub fn fill_defaults(&mut self) {
        let mode = &mut self.mode;
        if mode.kind_or_default() == Some(ModeKind::Replicated) {
            mode.replicated
                .get_or_insert_with(ReplicatedService::default)
                .replicas
                .get_or_insert(1);
        }
        if let Some(job) = mode.replicated_job.as_mut() {
            let max = *job.max_concurrent.get_or_insert(1);
            job.total_completions.get_or_insert(max);
        }
        let task = &mut self.task_template;
        if task.runtime.is_empty() {
            task.runtime = "container".into();
        }
        if let Some(c) = task.container_spec.as_mut() {
            c.extra
                .entry("Isolation")
                .or_insert_with(|| Value::String("default".into()));
        }
    }
}

/// swarmkit's `defaults.InterpolateService`, on the JSON the API shows: what `GET
/// /services/{id}?insertDefaults=true` (`service inspect --pretty`) fills in where the
/// stored spec leaves a part out. Whole parts only, as swarmkit: a `RestartPolicy` that
/// is there is shown as it is.
pub fn insert_service_defaults(spec: &mut Value) {
    fn part<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
        v.as_object_mut()?
            .entry(key)
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
    }
    fn default(obj: &mut Map<String, Value>, key: &str, value: Value) {
        if obj.get(key).is_none_or(Value::is_null) {
            obj.insert(key.into(), value);
        }
    }
    let update = serde_json::json!({
        "Parallelism": 1, "FailureAction": "pause", "Monitor": 5_000_000_000u64,
        "MaxFailureRatio": 0, "Order": "stop-first",
    });
    let Some(top) = spec.as_object_mut() else {
        return;
    };
    default(top, "UpdateConfig", update.clone());
    default(top, "RollbackConfig", update);
    let Some(task) = part(spec, "TaskTemplate") else {
        return;
    };
    if let Some(c) = task.get_mut("ContainerSpec").and_then(Value::as_object_mut) {
        default(c, "StopGracePeriod", Value::from(10_000_000_000u64));
        default(c, "DNSConfig", Value::Object(Map::new()));
    }
    default(task, "Resources", Value::Object(Map::new()));
    default(
        task,
        "RestartPolicy",
        serde_json::json!({"Condition": "any", "Delay": 5_000_000_000u64, "MaxAttempts": 0}),
    );
    default(task, "Placement", Value::Object(Map::new()));
}

/// `Mode`: exactly one of the four should be set (validation checks). docker-py sends
/// the first two in lower case (`{"replicated": {...}}`, `{"global": {}}`), hence the
/// aliases.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceMode {
    #[serde(alias = "replicated", default, skip_serializing_if = "Option::is_none")]
    pub replicated: Option<ReplicatedService>,
    #[serde(alias = "global", default, skip_serializing_if = "Option::is_none")]
    pub global: Option<GlobalService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicated_job: Option<ReplicatedJob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_job: Option<GlobalJob>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Which of the four modes a spec asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModeKind {
    Replicated,
    Global,
    ReplicatedJob,
    GlobalJob,
}

impl ModeKind {
    /// The spelling of Docker's `mode` filter and of `service ls`'s MODE column.
    pub fn as_str(self) -> &'static str {
        match self {
            ModeKind::Replicated => "replicated",
            ModeKind::Global => "global",
            ModeKind::ReplicatedJob => "replicated job",
            ModeKind::GlobalJob => "global job",
        }
    }

    pub fn is_job(self) -> bool {
        matches!(self, ModeKind::ReplicatedJob | ModeKind::GlobalJob)
    }
}

impl ServiceMode {
    /// A replicated mode with `replicas`.
    pub fn replicated(replicas: u64) -> Self {
        ServiceMode {
            replicated: Some(ReplicatedService {
                replicas: Some(replicas),
                extra: Map::new(),
            }),
            ..ServiceMode::default()
        }
    }

    /// The global mode.
    pub fn global() -> Self {
        ServiceMode {
            global: Some(GlobalService::default()),
            ..ServiceMode::default()
        }
    }

    /// The mode set, when exactly one is; `None` for none or several. An empty `Mode`
    /// means replicated with one replica (Docker's default), see [`ServiceMode::kind_or_default`].
    pub fn kind(&self) -> Option<ModeKind> {
        let set = [
            (self.replicated.is_some(), ModeKind::Replicated),
            (self.global.is_some(), ModeKind::Global),
            (self.replicated_job.is_some(), ModeKind::ReplicatedJob),
            (self.global_job.is_some(), ModeKind::GlobalJob),
        ];
        let mut kinds = set.iter().filter(|(on, _)| *on).map(|(_, k)| *k);
        match (kinds.next(), kinds.next()) {
            (Some(k), None) => Some(k),
            _ => None,
        }
    }

    /// The mode, treating "none set" as replicated (Docker's default).
    pub fn kind_or_default(&self) -> Option<ModeKind> {
        if self.replicated.is_none()
            && self.global.is_none()
            && self.replicated_job.is_none()
            && self.global_job.is_none()
        {
            return Some(ModeKind::Replicated);
        }
        self.kind()
    }

    /// The replica count of a replicated service (`Replicas` absent means 1).
    pub fn replicas(&self) -> Option<u64> {
        match self.kind_or_default()? {
            ModeKind::Replicated => Some(
                self.replicated
                    .as_ref()
                    .and_then(|r| r.replicas)
                    .unwrap_or(1),
            ),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicatedService {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GlobalService {
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicatedJob {
    /// Tasks run at once; absent means 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u64>,
    /// Successful completions wanted; absent means `MaxConcurrent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_completions: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GlobalJob {
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

string_enum! {
    /// `UpdateConfig.FailureAction`.
    pub enum FailureAction {
        Pause => "pause",
        Continue => "continue",
        Rollback => "rollback",
    }
}

string_enum! {
    /// `UpdateConfig.Order`.
    pub enum UpdateOrder {
        StopFirst => "stop-first",
        StartFirst => "start-first",
    }
}

/// `UpdateConfig` and `RollbackConfig`. Durations are nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateConfig {
    /// Tasks updated at once; 0 means all at once.
    #[serde(default)]
    pub parallelism: u64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub delay: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_action: Option<FailureAction>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub monitor: i64,
    /// Go's float32; kept as f64 so values like 0.2 survive the round trip exactly.
    #[serde(default, serialize_with = "go_float")]
    pub max_failure_ratio: f64,
    /// Always written in Go (no `omitempty`); `None` only when a client left it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<UpdateOrder>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
