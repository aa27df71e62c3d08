//! Containers: one interface, two backends.
//!
//! The caller (the agent's task controller) hands a [`ContainerSpec`]: the image already
//! pulled, plus Docker's container options. [`bundle`] turns it into an OCI bundle
//! (overlay rootfs, mounts, secret tmpfs, config.json) that either backend runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::image::{HealthConfig, Image};
use crate::Result;

/// Where a node keeps its containers and which cgroup parent it uses. Several nodes on
/// one machine differ in both, so they never collide.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The node's data dir (`/var/lib/swarm`); containers live in `<data>/containers/<id>`,
    /// named volumes in `<data>/volumes/<name>/_data`.
    pub data_dir: PathBuf,
    /// cgroup parent for every container of this node, e.g. `swarm` or `swarm-node1`.
    pub cgroup_parent: String,
    /// The executable re-run as `<shim_exe> shim ...` (libcontainer backend): swarmd
    /// itself in production, `swarm-runtime` in tests.
    pub shim_exe: PathBuf,
}

/// Everything needed to run one container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Container ID: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, unique on the node.
    pub id: String,
    pub image: Option<Image>,
    /// `--entrypoint`; `Some(vec![])` clears the image's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Command args; replace the image's Cmd when non-empty (Docker's rules).
    pub args: Vec<String>,
    /// `KEY=VALUE`, appended to (and overriding) the image's Env.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub hostname: Option<String>,
    /// `--dns`, `--dns-search`, `--dns-option`: the container's resolv.conf.
    pub dns: DnsConfig,
    /// `--host`: extra `/etc/hosts` entries, `IP host [aliases...]` (the task spec's
    /// `Hosts`).
    pub extra_hosts: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub mounts: Vec<Mount>,
    /// Files kept in memory only (secrets, configs): tmpfs, never on disk.
    pub files: Vec<FileMount>,
    pub resources: Resources,
    pub read_only: bool,
    pub init: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub sysctls: BTreeMap<String, String>,
    pub ulimits: Vec<Ulimit>,
    /// Size of `/dev/shm` in bytes; 0 means Docker's 64 MiB.
    pub shm_size: u64,
    /// An existing network namespace to join (`/run/netns/x`); None: a new empty one.
    pub netns: Option<PathBuf>,
    pub stop_signal: Option<String>,
    pub stop_grace_period: Option<Duration>,
    /// None: the image's health check; `Some(test: ["NONE"])` disables it.
    pub healthcheck: Option<HealthConfig>,
    pub log: LogOptions,
}

/// The DNS options of a container; empty: the host's resolv.conf (see
/// [`bundle`]'s `etc` module for Docker's rule).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DnsConfig {
    pub nameservers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mount {
    pub kind: MountKind,
    /// Host path (bind) or volume name (volume); unused for tmpfs.
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// tmpfs size in bytes (0: unlimited, as Docker).
    pub tmpfs_size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileMount {
    /// Absolute path in the container, e.g. `/run/secrets/db_password`.
    pub target: String,
    #[serde(with = "serde_bytes_b64")]
    pub data: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Resources {
    /// Memory limit in bytes (0: none).
    pub memory_bytes: i64,
    /// CPU limit in units of 1e-9 CPUs, as Docker's NanoCPUs (`--limit-cpu 0.5` = 5e8).
    pub nano_cpus: i64,
    /// Max number of processes (0: none).
    pub pids: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ulimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogOptions {
    /// Rotate the log file when it passes this many bytes.
    pub max_size: u64,
    /// Keep this many files (the current one included).
    pub max_files: u32,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            max_size: 10 << 20,
            max_files: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Exited,
}

/// How a container ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code; 128 + signal when killed by a signal, as Docker reports it.
    pub code: i32,
    pub oom_killed: bool,
    pub finished_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    pub status: Status,
    /// Host PID of the container's first process while it runs.
    pub pid: Option<i32>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub exit: Option<ExitStatus>,
    pub labels: BTreeMap<String, String>,
    /// The spec's mounts (binds, volumes, tmpfs): which volumes the container uses.
    pub mounts: Vec<Mount>,
}

/// A process to run inside a running container (health checks, `exec`).
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub exit_code: i32,
    /// stdout and stderr interleaved, capped (Docker keeps 4 KiB of a health probe's output).
    pub output: Vec<u8>,
    pub timed_out: bool,
}

/// The runtime interface both backends implement.
#[async_trait::async_trait]
pub trait ContainerRuntime: Send + Sync {
    /// Prepare the bundle and create the container; it does not run yet.
    async fn create(&self, spec: &ContainerSpec) -> Result<ContainerState>;
    /// Start a created container.
    async fn start(&self, id: &str) -> Result<()>;
    /// Wait until the container has exited and return how.
    async fn wait(&self, id: &str) -> Result<ExitStatus>;
    /// Send `signal` (the spec's stop signal when None, else SIGTERM), wait up to
    /// `grace`, then SIGKILL. Returns how it ended.
    async fn stop(&self, id: &str, signal: Option<&str>, grace: Duration) -> Result<ExitStatus>;
    /// Send a signal to the container's first process.
    async fn kill(&self, id: &str, signal: &str) -> Result<()>;
    /// Remove a stopped container and every trace of it: cgroup, mounts, rootfs, state.
    async fn remove(&self, id: &str) -> Result<()>;
    async fn exec(&self, id: &str, exec: &ExecSpec) -> Result<ExecOutput>;
    /// Run a process in the running container with its stdio handed to the caller
    /// (`docker exec`): pipes, or a pseudo-terminal when `tty`; with `stdin` the caller
    /// writes its input (else it reads /dev/null). `exec.timeout` is not used.
    async fn exec_attached(
        &self,
        id: &str,
        exec: &ExecSpec,
        tty: bool,
        stdin: bool,
    ) -> Result<attach::AttachedExec>;
    /// The container's cgroup, relative to the hierarchies' roots (`/<parent>/<id>`).
    fn cgroup_path(&self, id: &str) -> String;
    async fn state(&self, id: &str) -> Result<ContainerState>;
    /// Every container this node's runtime knows, running or exited: what a restarted
    /// node adopts.
    async fn list(&self) -> Result<Vec<ContainerState>>;
    /// The container's log file (see [`logs`]).
    fn log_path(&self, id: &str) -> PathBuf;
}

mod serde_bytes_b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}

pub mod attach;
pub mod bundle;
pub mod cgroup;
pub mod containerd;
pub mod health;
pub mod host;
pub mod libcontainer;
pub mod logs;
