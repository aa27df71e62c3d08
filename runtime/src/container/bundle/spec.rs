//! The OCI runtime spec (`config.json`) for a container, with Docker's defaults:
//! process args and env by Docker's rules, the default capability set with
//! `--cap-add/--cap-drop`, masked and read-only paths, the standard mounts, namespaces,
//! an explicit cgroups path and the cgroup limits.

use std::collections::BTreeMap;

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use super::rootfs::ExecUser;
use crate::container::{ContainerSpec, Ulimit};
use crate::image::ImageConfig;
use crate::{Error, Result};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the kernel knows (what `ALL` means), in bit order.
pub const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's masked paths (`/proc/kcore`, ...): bind-mounted over with /dev/null or an
/// empty read-only tmpfs.
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// `CAP_X` from `x`, `X` or `CAP_X`.
fn normalize_cap(name: &str) -> String {
    let up = name.to_ascii_uppercase();
    if up == "ALL" || up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// Docker's capability rules: every capability minus the dropped ones when `ALL` is
/// added; only the added ones when `ALL` is dropped; else the default set minus the
/// dropped plus the added.
pub fn capabilities(add: &[String], drop: &[String]) -> Result<Vec<String>> {
    let add: Vec<String> = add.iter().map(|c| normalize_cap(c)).collect();
    let drop: Vec<String> = drop.iter().map(|c| normalize_cap(c)).collect();
    for c in add.iter().chain(&drop) {
        if c != "ALL" && !ALL_CAPS.contains(&c.as_str()) {
            return Err(Error::InvalidSpec(format!("unknown capability: \"{c}\"")));
        }
    }
    // moby's TweakCapabilities.
    let caps: Vec<String> = if add.iter().any(|c| c == "ALL") {
        ALL_CAPS
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    } else if drop.iter().any(|c| c == "ALL") {
        add.clone()
    } else {
        let mut caps: Vec<String> = DEFAULT_CAPS
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c))
            .collect();
        for c in add {
            if !caps.contains(&c) {
                caps.push(c);
            }
        }
        caps
    };
    Ok(caps)
}

/// Docker's rules for the process args: `--entrypoint` replaces the image's Entrypoint
/// and clears its Cmd; args replace Cmd.
pub fn process_args(spec: &ContainerSpec, image: &ImageConfig) -> Result<Vec<String>> {
    let (entrypoint, cmd) = match &spec.entrypoint {
        Some(ep) => (ep.clone(), spec.args.clone()),
        None if !spec.args.is_empty() => (image.entrypoint.clone(), spec.args.clone()),
        None => (image.entrypoint.clone(), image.cmd.clone()),
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        return Err(Error::InvalidSpec("no command specified".into()));
    }
    Ok(argv)
}

/// Docker's env: `PATH` default and `HOSTNAME` first, then the image's Env, then the
/// spec's, later keys overriding earlier ones in place; `HOME` from passwd when unset.
pub fn process_env(
    spec: &ContainerSpec,
    image: &ImageConfig,
    hostname: &str,
    home: &str,
) -> Vec<String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |kv: &str| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match env.iter_mut().find(|(ek, _)| ek == k) {
            Some(e) => e.1 = v.to_string(),
            None => env.push((k.to_string(), v.to_string())),
        }
    };
    set(&format!("HOSTNAME={hostname}"));
    image.env.iter().chain(&spec.env).for_each(|kv| set(kv));
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.insert(0, ("PATH".into(), DEFAULT_PATH.into()));
    }
    if !env.iter().any(|(k, _)| k == "HOME") {
        env.push(("HOME".into(), home.to_string()));
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn rlimit(u: &Ulimit) -> Result<Value> {
    let name = u.name.to_ascii_uppercase();
    const KNOWN: [&str; 16] = [
        "AS",
        "CORE",
        "CPU",
        "DATA",
        "FSIZE",
        "LOCKS",
        "MEMLOCK",
        "MSGQUEUE",
        "NICE",
        "NOFILE",
        "NPROC",
        "RSS",
        "RTPRIO",
        "RTTIME",
        "SIGPENDING",
        "STACK",
    ];
    if !KNOWN.contains(&name.as_str()) {
        return Err(Error::InvalidSpec(format!(
            "invalid ulimit type: {}",
            u.name
        )));
    }
    Ok(json!({"type": format!("RLIMIT_{name}"), "soft": u.soft, "hard": u.hard}))
}

/// Whether a swap limit means anything here: with no swap active, setting one only
/// risks a missing cgroup file.
fn swap_active() -> bool {
    std::fs::read_to_string("/proc/swaps")
        .map(|s| s.lines().count() > 1)
        .unwrap_or(false)
}

/// What [`build`] needs besides the [`ContainerSpec`]: everything resolved against the
/// rootfs already.
pub struct Resolved<'a> {
    pub cgroups_path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub user: &'a ExecUser,
    pub cwd: String,
    pub hostname: String,
    /// Mounts after the standard ones, in order, as OCI JSON objects.
    pub mounts: Vec<Value>,
}

pub fn build(spec: &ContainerSpec, r: Resolved<'_>) -> Result<Spec> {
    let caps = capabilities(&spec.cap_add, &spec.cap_drop)?;
    // No default rlimits: the container inherits the node's, as Docker's inherit dockerd's.
    let rlimits = spec
        .ulimits
        .iter()
        .map(rlimit)
        .collect::<Result<Vec<_>>>()?;
    let shm = if spec.shm_size == 0 {
        64 << 20
    } else {
        spec.shm_size
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["ro", "nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
    ];
    mounts.extend(r.mounts);

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    namespaces.push(match &spec.netns {
        Some(p) => json!({"type": "network", "path": p}),
        None => json!({"type": "network"}),
    });

    let mut resources = json!({
        // Docker's device policy: deny everything, libcgroups adds the default allow list.
        "devices": [{"allow": false, "access": "rwm"}],
    });
    let res = &spec.resources;
    if res.memory_bytes > 0 {
        let mut mem = json!({"limit": res.memory_bytes});
        if swap_active() {
            // swap = limit: no swap on top, so the OOM killer acts at the limit.
            mem["swap"] = json!(res.memory_bytes);
        }
        resources["memory"] = mem;
    }
    if res.nano_cpus > 0 {
        let period: i64 = 100_000;
        resources["cpu"] =
            json!({"period": period, "quota": res.nano_cpus * period / 1_000_000_000});
    }
    if res.pids > 0 {
        resources["pids"] = json!({"limit": res.pids});
    }

    let sysctl: BTreeMap<&String, &String> = spec.sysctls.iter().collect();
    let doc = json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": spec.read_only},
        "hostname": r.hostname,
        "process": {
            "terminal": false,
            "user": {"uid": r.user.uid, "gid": r.user.gid, "additionalGids": r.user.additional_gids},
            "args": r.args,
            "env": r.env,
            "cwd": r.cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": rlimits,
            "noNewPrivileges": false,
        },
        "mounts": mounts,
        "linux": {
            "cgroupsPath": r.cgroups_path,
            "namespaces": namespaces,
            "resources": resources,
            "sysctl": sysctl,
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
    });
    serde_json::from_value(doc).map_err(|e| Error::InvalidSpec(format!("oci spec: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn docker_arg_rules() {
        let image = ImageConfig {
            entrypoint: s(&["/ep"]),
            cmd: s(&["a", "b"]),
            ..Default::default()
        };
        let mut spec = ContainerSpec::default();
        assert_eq!(process_args(&spec, &image).unwrap(), s(&["/ep", "a", "b"]));
        spec.args = s(&["c"]);
        assert_eq!(process_args(&spec, &image).unwrap(), s(&["/ep", "c"]));
        spec.entrypoint = Some(s(&["/other"]));
        assert_eq!(process_args(&spec, &image).unwrap(), s(&["/other", "c"]));
        spec.args.clear();
        assert_eq!(process_args(&spec, &image).unwrap(), s(&["/other"]));
        spec.entrypoint = Some(vec![]);
        assert!(process_args(&spec, &image).is_err());
    }

    #[test]
    fn env_overrides_by_key() {
        let image = ImageConfig {
            env: s(&["A=1", "B=2"]),
            ..Default::default()
        };
        let spec = ContainerSpec {
            env: s(&["B=3", "C=4"]),
            ..Default::default()
        };
        assert_eq!(
            process_env(&spec, &image, "h", "/root"),
            s(&[
                &format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=h",
                "A=1",
                "B=3",
                "C=4",
                "HOME=/root"
            ])
        );
    }

    #[test]
    fn capability_rules() {
        let caps = capabilities(&s(&["net_admin"]), &s(&["CHOWN"])).unwrap();
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(caps.len(), 14);
        assert_eq!(
            capabilities(&[], &s(&["ALL"])).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            capabilities(&s(&["kill"]), &s(&["ALL"])).unwrap(),
            s(&["CAP_KILL"])
        );
        assert_eq!(capabilities(&s(&["ALL"]), &[]).unwrap().len(), 41);
        assert!(capabilities(&s(&["bogus"]), &[]).is_err());
    }
}
