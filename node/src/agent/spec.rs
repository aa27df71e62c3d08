//! The agent's translation of a task: `swarm-core`'s typed [`TaskSpec`] into the
//! runtime's [`ContainerSpec`]. Fields the runtime has no use for yet (networks) are
//! ignored here; the manager keeps them all.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use swarm_core::model::{self as core, Healthcheck, MountType, TaskSpec};
use swarm_runtime::container::{self, ContainerSpec, FileMount, MountKind, Resources};
use swarm_runtime::image::{HealthConfig, Image};

use super::TaskData;

/// The task's container spec (an empty one when the template has none: validation
/// refuses such a service, so it only shows up in hand-made stores).
pub fn container_of(spec: &TaskSpec) -> &core::ContainerSpec {
    static EMPTY: OnceLock<core::ContainerSpec> = OnceLock::new();
    spec.container_spec
        .as_ref()
        .unwrap_or_else(|| EMPTY.get_or_init(core::ContainerSpec::default))
}

/// A spec's health check as the runtime runs it (durations in nanoseconds).
pub fn health_config(h: &Healthcheck) -> HealthConfig {
    HealthConfig {
        test: h.test.clone(),
        interval: ns(h.interval),
        timeout: ns(h.timeout),
        start_period: ns(h.start_period),
        retries: u32::try_from(h.retries.max(0)).unwrap_or(u32::MAX),
    }
}

/// The health check a task's container runs: the spec's, with what it leaves out
/// (an empty test, zero durations or retries) taken from the image's, as dockerd
/// merges a container's config with its image's. `--no-healthcheck` is the spec's
/// `Test: ["NONE"]` and stays so; no check anywhere gives `None`.
pub fn effective_health(
    spec: Option<&Healthcheck>,
    image: Option<&HealthConfig>,
) -> Option<HealthConfig> {
    let Some(h) = spec else {
        return image.cloned();
    };
    let mut cfg = health_config(h);
    if let Some(img) = image {
        if cfg.test.is_empty() {
            cfg.test = img.test.clone();
        }
        if cfg.interval.is_zero() {
            cfg.interval = img.interval;
        }
        if cfg.timeout.is_zero() {
            cfg.timeout = img.timeout;
        }
        if cfg.start_period.is_zero() {
            cfg.start_period = img.start_period;
        }
        if cfg.retries == 0 {
            cfg.retries = img.retries;
        }
    }
    Some(cfg)
}

/// A ulimit value: Docker's -1 is "unlimited" (RLIM_INFINITY).
fn rlim(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Who a task is, for its container's labels and hostname.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskIdentity {
    pub task_id: String,
    pub service_id: String,
    pub service_name: String,
    pub node_id: String,
    pub slot: u64,
}

impl TaskIdentity {
    /// Docker's task (and container) name: `web.1.<task id>`.
    pub fn task_name(&self) -> String {
        if self.slot > 0 {
            format!("{}.{}.{}", self.service_name, self.slot, self.task_id)
        } else {
            format!("{}.{}.{}", self.service_name, self.node_id, self.task_id)
        }
    }
}

pub const LABEL_TASK_ID: &str = "com.docker.swarm.task.id";
pub const LABEL_SERVICE_ID: &str = "com.docker.swarm.service.id";
pub const LABEL_NODE_ID: &str = "com.docker.swarm.node.id";
/// The image ID (config digest) a task's container was made from: `image rm` refuses to
/// delete an image a container uses.
pub const LABEL_IMAGE_ID: &str = "swarm.image.id";

fn ns(n: i64) -> Duration {
    Duration::from_nanos(n.max(0) as u64)
}

/// A task container's labels: the spec's, and the `com.docker.swarm.*` ones Docker sets.
pub fn task_labels(who: &TaskIdentity, spec: &TaskSpec) -> BTreeMap<String, String> {
    let mut labels = container_of(spec).labels.clone();
    for (k, v) in [
        (LABEL_TASK_ID, who.task_id.clone()),
        (LABEL_SERVICE_ID, who.service_id.clone()),
        (LABEL_NODE_ID, who.node_id.clone()),
        ("com.docker.swarm.service.name", who.service_name.clone()),
        ("com.docker.swarm.task.name", who.task_name()),
        ("com.docker.swarm.task", String::new()),
    ] {
        labels.insert(k.into(), v);
    }
    labels
}

/// The runtime's container for a task: container ID = task ID.
pub fn container_spec(who: &TaskIdentity, spec: &TaskSpec, image: Image) -> ContainerSpec {
    let c = container_of(spec);
    let image_health = image.config.healthcheck.clone();
    let mut labels = task_labels(who, spec);
    labels.insert(LABEL_IMAGE_ID.into(), image.config_digest.clone());
    let limits = spec
        .resources
        .as_ref()
        .and_then(|r| r.limits.clone())
        .unwrap_or_default();
    let mounts = c
        .mounts
        .iter()
        .map(|m| container::Mount {
            kind: match m.kind {
                Some(MountType::Bind) => MountKind::Bind,
                Some(MountType::Tmpfs) => MountKind::Tmpfs,
                _ => MountKind::Volume,
            },
            source: m.source.clone(),
            target: m.target.clone(),
            read_only: m.read_only,
            tmpfs_size: m
                .tmpfs_options
                .as_ref()
                .map_or(0, |t| t.size_bytes.max(0) as u64),
        })
        .collect();
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    ContainerSpec {
        id: who.task_id.clone(),
        image: Some(image),
        // Docker's `Command` is the entrypoint, `Args` the cmd.
        entrypoint: (!c.command.is_empty()).then(|| c.command.clone()),
        args: c.args.clone(),
        env: c.env.clone(),
        user: nonempty(&c.user),
        workdir: nonempty(&c.dir),
        // Docker's default hostname for a task container is its short container ID.
        hostname: Some(nonempty(&c.hostname).unwrap_or_else(|| short(&who.task_id))),
        dns: c
            .dns_config
            .as_ref()
            .map(|d| container::DnsConfig {
                nameservers: d.nameservers.clone(),
                search: d.search.clone(),
                options: d.options.clone(),
            })
            .unwrap_or_default(),
        extra_hosts: c.hosts.clone(),
        labels,
        mounts,
        files: Vec::new(),
        resources: Resources {
            memory_bytes: limits.memory_bytes,
            nano_cpus: limits.nano_cpus,
            pids: limits.pids,
        },
        read_only: c.read_only,
        init: c.init.unwrap_or(false),
        cap_add: c.capability_add.clone(),
        cap_drop: c.capability_drop.clone(),
        sysctls: c.sysctls.clone(),
        ulimits: c
            .ulimits
            .iter()
            .map(|u| container::Ulimit {
                name: u.name.clone(),
                soft: rlim(u.soft),
                hard: rlim(u.hard),
            })
            .collect(),
        shm_size: 0,
        netns: None,
        stop_signal: nonempty(&c.stop_signal),
        stop_grace_period: c.stop_grace_period.map(ns),
        healthcheck: effective_health(c.healthcheck.as_ref(), image_health.as_ref()),
        log: Default::default(),
    }
}

/// Where Docker puts a secret whose target is a bare name.
pub const SECRETS_DIR: &str = "/run/secrets";

/// The task's secrets and configs as files for the runtime: a secret at
/// `/run/secrets/<target>` (an absolute target as is), a config at `/<target>`, with the
/// reference's owner and mode (moby's `getSecretTargetPath`/`getConfigTargetPath`). A
/// reference without its data (not sent by the manager) refuses the task.
pub fn task_files(spec: &TaskSpec, data: &TaskData) -> Result<Vec<FileMount>, String> {
    let c = container_of(spec);
    let mut out = Vec::new();
    let file = |target: String, data: &[u8], f: &core::FileTarget| -> FileMount {
        FileMount {
            target,
            data: data.to_vec(),
            uid: f.uid.parse().unwrap_or(0),
            gid: f.gid.parse().unwrap_or(0),
            mode: f.mode & 0o7777,
        }
    };
    for r in &c.secrets {
        let Some(f) = &r.file else { continue };
        let bytes = data
            .secrets
            .get(&r.secret_id)
            .ok_or_else(|| format!("secret {} not found", r.secret_name))?;
        let target = if f.name.starts_with('/') {
            f.name.clone()
        } else {
            format!("{SECRETS_DIR}/{}", f.name)
        };
        out.push(file(target, bytes, f));
    }
    for r in &c.configs {
        // A `Runtime` target (credential specs) is no file.
        let Some(f) = &r.file else { continue };
        let bytes = data
            .configs
            .get(&r.config_id)
            .ok_or_else(|| format!("config {} not found", r.config_name))?;
        let target = if f.name.starts_with('/') {
            f.name.clone()
        } else {
            format!("/{}", f.name)
        };
        out.push(file(target, bytes, f));
    }
    Ok(out)
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

/// Docker's default stop grace period.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// The task's prepared networking in its container spec: the namespace to join; on
/// overlays, the embedded resolver (Docker's 127.0.0.11, `ndots:0`) and its own name in
/// `/etc/hosts`.
pub fn with_network(spec: &mut ContainerSpec, p: &super::network::Prepared) {
    spec.netns = Some(p.netns.clone());
    if !p.on_networks {
        return;
    }
    spec.dns.nameservers = vec!["127.0.0.11".to_string()];
    if !spec.dns.options.iter().any(|o| o.starts_with("ndots:")) {
        spec.dns.options.push("ndots:0".to_string());
    }
    if let (Some(addr), Some(host)) = (p.addr, spec.hostname.clone()) {
        spec.extra_hosts.push(format!("{addr} {host}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_runtime::image::ImageConfig;

    fn image() -> Image {
        Image {
            reference: "r/busybox:1".into(),
            digest: "sha256:1".into(),
            config_digest: "sha256:2".into(),
            config: ImageConfig::default(),
            layers: vec![],
        }
    }

    #[test]
    fn docker_task_spec_becomes_a_container_spec() {
        let spec: TaskSpec = serde_json::from_value(serde_json::json!({
            "ContainerSpec": {
                "Image": "r/busybox:1",
                "Command": ["httpd"],
                "Args": ["-f", "-p", "8080"],
                "Env": ["A=1"],
                "User": "nobody",
                "Dir": "/tmp",
                "ReadOnly": true,
                "Init": true,
                "StopSignal": "SIGINT",
                "StopGracePeriod": 3_000_000_000i64,
                "CapabilityAdd": ["CAP_NET_ADMIN"],
                "Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024}}],
                "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1_000_000_000i64, "Retries": 2},
                "SomethingNew": {"kept": "by the manager, ignored here"}
            },
            "Resources": {"Limits": {"NanoCPUs": 500_000_000i64, "MemoryBytes": 67108864, "Pids": 20}}
        }))
        .unwrap();
        let who = TaskIdentity {
            task_id: "abcdefghijklmnopqrstuvwxy".into(),
            service_id: "svc".into(),
            service_name: "web".into(),
            node_id: "node".into(),
            slot: 2,
        };
        let c = container_spec(&who, &spec, image());
        assert_eq!(c.id, who.task_id);
        assert_eq!(c.entrypoint, Some(vec!["httpd".to_string()]));
        assert_eq!(c.args, ["-f", "-p", "8080"]);
        assert_eq!(c.user.as_deref(), Some("nobody"));
        assert_eq!(c.workdir.as_deref(), Some("/tmp"));
        assert_eq!(c.hostname.as_deref(), Some("abcdefghijkl"));
        assert!(c.read_only && c.init);
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(c.stop_grace_period, Some(Duration::from_secs(3)));
        assert_eq!(c.resources.nano_cpus, 500_000_000);
        assert_eq!(c.resources.memory_bytes, 64 << 20);
        assert_eq!(c.resources.pids, 20);
        assert_eq!(c.mounts[0].kind, MountKind::Tmpfs);
        assert_eq!(c.mounts[0].tmpfs_size, 1024);
        assert_eq!(
            c.healthcheck.as_ref().unwrap().interval,
            Duration::from_secs(1)
        );
        assert_eq!(c.labels[LABEL_TASK_ID], who.task_id);
        assert_eq!(c.labels[LABEL_SERVICE_ID], "svc");
        assert_eq!(c.labels[LABEL_NODE_ID], "node");
        assert_eq!(
            c.labels["com.docker.swarm.task.name"],
            format!("web.2.{}", who.task_id)
        );
    }

    fn task(container: serde_json::Value) -> TaskSpec {
        serde_json::from_value(serde_json::json!({ "ContainerSpec": container })).unwrap()
    }

    fn who() -> TaskIdentity {
        TaskIdentity {
            task_id: "t1".into(),
            service_id: "s".into(),
            service_name: "web".into(),
            node_id: "n".into(),
            slot: 1,
        }
    }

    fn image_with_health() -> Image {
        let mut img = image();
        img.config.healthcheck = Some(HealthConfig {
            test: vec!["CMD".into(), "probe".into()],
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            start_period: Duration::from_secs(1),
            retries: 4,
        });
        img
    }

    #[test]
    fn flag_options_reach_the_runtime() {
        // What `swarm service create --cap-add net_admin --sysctl ... --ulimit ...
        // --hostname h --container-label l=v --mount ... --read-only --init` sends.
        let spec = task(serde_json::json!({
            "Image": "img", "Hostname": "h", "Labels": {"l": "v"},
            "Env": ["A=1", "B=2"],
            "CapabilityAdd": ["CAP_NET_ADMIN"], "CapabilityDrop": ["CAP_MKNOD"],
            "Sysctls": {"net.core.somaxconn": "1024"},
            "Ulimits": [{"Name": "nofile", "Hard": 2048, "Soft": 1024}, {"Name": "core", "Hard": -1, "Soft": -1}],
            "Mounts": [
                {"Type": "bind", "Source": "/tmp", "Target": "/h", "ReadOnly": true},
                {"Type": "volume", "Source": "data", "Target": "/data"}
            ],
            "ReadOnly": true, "Init": true,
            "DNSConfig": {"Nameservers": ["8.8.8.8"], "Search": ["example.com"], "Options": ["ndots:2"]},
            "Hosts": ["10.0.0.1 db cache"]
        }));
        let c = container_spec(&who(), &spec, image());
        assert_eq!(c.hostname.as_deref(), Some("h"));
        assert_eq!(
            c.dns,
            container::DnsConfig {
                nameservers: vec!["8.8.8.8".into()],
                search: vec!["example.com".into()],
                options: vec!["ndots:2".into()],
            }
        );
        assert_eq!(c.extra_hosts, ["10.0.0.1 db cache"]);
        assert_eq!(c.labels["l"], "v");
        assert_eq!(c.env, ["A=1", "B=2"]);
        assert_eq!(c.cap_add, ["CAP_NET_ADMIN"]);
        assert_eq!(c.cap_drop, ["CAP_MKNOD"]);
        assert_eq!(c.sysctls["net.core.somaxconn"], "1024");
        assert_eq!(
            c.ulimits,
            [
                container::Ulimit {
                    name: "nofile".into(),
                    soft: 1024,
                    hard: 2048
                },
                container::Ulimit {
                    name: "core".into(),
                    soft: u64::MAX,
                    hard: u64::MAX
                },
            ]
        );
        assert_eq!(c.mounts[0].kind, MountKind::Bind);
        assert!(c.mounts[0].read_only);
        assert_eq!(
            (c.mounts[1].kind.clone(), c.mounts[1].source.as_str()),
            (MountKind::Volume, "data")
        );
        assert!(c.read_only && c.init);
        assert_eq!(c.stop_grace_period, None);
        assert!(c.healthcheck.is_none());
    }

    #[test]
    fn health_check_merges_with_the_image_like_dockerd() {
        // `--no-healthcheck`: disabled whatever the image says.
        let off = task(serde_json::json!({"Image": "img", "Healthcheck": {"Test": ["NONE"]}}));
        let c = container_spec(&who(), &off, image_with_health());
        assert_eq!(c.healthcheck.unwrap().test, ["NONE"]);
        // `--health-interval 2s` alone: the image's test, the flag's interval.
        let partial = task(
            serde_json::json!({"Image": "img", "Healthcheck": {"Interval": 2_000_000_000i64}}),
        );
        let h = container_spec(&who(), &partial, image_with_health())
            .healthcheck
            .unwrap();
        assert_eq!(h.test, ["CMD", "probe"]);
        assert_eq!(h.interval, Duration::from_secs(2));
        assert_eq!((h.timeout, h.retries), (Duration::from_secs(5), 4));
        // No flag: the image's check.
        let none = task(serde_json::json!({"Image": "img"}));
        let h = container_spec(&who(), &none, image_with_health())
            .healthcheck
            .unwrap();
        assert_eq!(h.interval, Duration::from_secs(30));
        // `--health-cmd` on an image without one.
        let cmd = task(
            serde_json::json!({"Image": "img", "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Retries": 2}}),
        );
        let h = container_spec(&who(), &cmd, image()).healthcheck.unwrap();
        assert_eq!((h.test.len(), h.retries), (2, 2));
    }

    #[test]
    fn secrets_and_configs_become_files() {
        let spec = task(serde_json::json!({
            "Image": "img",
            "Secrets": [
                {"SecretID": "s1", "SecretName": "db", "File": {"Name": "db", "UID": "1000", "GID": "50", "Mode": 0o400}},
                {"SecretID": "s1", "SecretName": "db", "File": {"Name": "/etc/abs", "UID": "0", "GID": "0", "Mode": 0o444}}
            ],
            "Configs": [
                {"ConfigID": "c1", "ConfigName": "app", "File": {"Name": "app.conf", "UID": "0", "GID": "0", "Mode": 0o444}},
                {"ConfigID": "c2", "ConfigName": "cred", "Runtime": {}}
            ]
        }));
        let mut data = TaskData::default();
        data.secrets.insert("s1".into(), b"pw".to_vec());
        let err = task_files(&spec, &data).unwrap_err();
        assert_eq!(err, "config app not found");
        data.configs.insert("c1".into(), b"a".to_vec());
        let files = task_files(&spec, &data).unwrap();
        let got: Vec<(&str, &[u8], u32, u32, u32)> = files
            .iter()
            .map(|f| (f.target.as_str(), f.data.as_slice(), f.uid, f.gid, f.mode))
            .collect();
        assert_eq!(
            got,
            [
                ("/run/secrets/db", &b"pw"[..], 1000, 50, 0o400),
                ("/etc/abs", &b"pw"[..], 0, 0, 0o444),
                ("/app.conf", &b"a"[..], 0, 0, 0o444),
            ]
        );
        // Debug never shows the data.
        assert!(!format!("{data:?}").contains("112, 119"));
    }
}
