//! `ContainerSpec`: the container a task runs (image, command, environment, user,
//! mounts, health check, secrets and configs, capabilities, limits). Lossless.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::mount::Mount;
use super::serde_util::{is_default, null_as_default};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSpec {
    /// `name:tag`, `name@digest` or `name:tag@digest`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub image: String,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// Replaces the image's entrypoint.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub command: Vec<String>,
    /// Replaces the image's cmd.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub hostname: String,
    /// `KEY=value` entries.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub dir: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub user: String,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub stop_signal: String,
    #[serde(
        rename = "TTY",
        alias = "Tty",
        default,
        skip_serializing_if = "is_default"
    )]
    pub tty: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub open_stdin: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub read_only: bool,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mounts: Vec<Mount>,
    /// Nanoseconds between the stop signal and SIGKILL; `None` means 10 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// `IP host [aliases...]` lines for /etc/hosts.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub hosts: Vec<String>,
    #[serde(
        rename = "DNSConfig",
        alias = "DnsConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dns_config: Option<DnsConfig>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub secrets: Vec<SecretReference>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub configs: Vec<ConfigReference>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub sysctls: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub capability_add: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub capability_drop: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ulimits: Vec<Ulimit>,
    /// Privileges, Isolation, OomScoreAdj and anything newer: kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Healthcheck` (Docker's `HealthConfig`). `Test` is `["NONE"]`, `["CMD", args...]` or
/// `["CMD-SHELL", command]`; durations are nanoseconds, 0 meaning "inherit".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub retries: i64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub start_interval: i64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `DNSConfig {Nameservers, Search, Options}` for the task's resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DnsConfig {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub nameservers: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub search: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Where a secret or config appears in the container: `/run/secrets/<Name>` (secrets)
/// or `Name` as a path (configs), with owner and mode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FileTarget {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "UID", alias = "Uid", default)]
    pub uid: String,
    #[serde(rename = "GID", alias = "Gid", default)]
    pub gid: String,
    /// Unix permission bits (Go's `os.FileMode`), e.g. 292 for 0444.
    #[serde(default)]
    pub mode: u32,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A secret given to the container. Go writes `File` even when nil, so `None` is `null`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretReference {
    #[serde(default)]
    pub file: Option<FileTarget>,
    #[serde(rename = "SecretID", alias = "SecretId", default)]
    pub secret_id: String,
    #[serde(default)]
    pub secret_name: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A config given to the container (`Runtime` targets are kept in `extra`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileTarget>,
    #[serde(rename = "ConfigID", alias = "ConfigId", default)]
    pub config_id: String,
    #[serde(default)]
    pub config_name: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{"Name": "nofile", "Soft": 1024, "Hard": 2048}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub hard: i64,
    #[serde(default)]
    pub soft: i64,
}
