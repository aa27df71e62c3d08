//! A container's cgroup as both backends lay it out (`/<cgroup parent>/<id>`): its
//! directories in every mounted hierarchy, the processes in it (`docker top`) and its
//! counters (`docker stats`), read from cgroup v1 controllers or cgroup v2 files.
//!
//! ```text
//!  v1: /sys/fs/cgroup/{cpuacct,memory,pids,blkio}/<rel>/...   (also "hybrid" hosts)
//!  v2: /sys/fs/cgroup/<rel>/{cpu.stat,memory.current,...}      (cgroup.controllers at the root)
//! ```
//!
//! The parsers are plain functions over file text, so they are tested without cgroups.
//!
//! What a crash leaves (a dir whose container has no record any more, the node's
//! `--cgroup-parent` dir once it has no container) goes here too, level-triggered: at
//! start ([`remove_strays`]) and at a clean stop ([`remove_parent_if_empty`]).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::RuntimeConfig;

const ROOT: &str = "/sys/fs/cgroup";

/// The cgroup dir in every mounted hierarchy (v1 controllers, the hybrid `unified` v2,
/// or the v2 root); `rel` as [`ContainerRuntime::cgroup_path`] gives it.
///
/// [`ContainerRuntime::cgroup_path`]: super::ContainerRuntime::cgroup_path
pub fn dirs(rel: &str) -> Vec<PathBuf> {
    let rel = rel.trim_start_matches('/');
    hierarchies()
        .into_iter()
        .map(|h| h.join(rel))
        .filter(|p| p.is_dir())
        .collect()
}

/// Every process in the cgroup, sorted.
pub fn procs(rel: &str) -> Vec<i32> {
    let mut pids: Vec<i32> = dirs(rel)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Every mounted hierarchy: the v2 root, or each dir under `/sys/fs/cgroup` (a combined
/// `cpu,cpuacct` named by its symlinks too counts once).
pub fn hierarchies() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| std::fs::canonicalize(e.path()).ok())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}

/// The node's parent dir in every hierarchy where it exists.
pub fn parent_dirs(cfg: &RuntimeConfig) -> Vec<PathBuf> {
    let parent = cfg.cgroup_parent.trim_matches('/');
    hierarchies()
        .into_iter()
        .map(|h| h.join(parent))
        .filter(|p| p.is_dir())
        .collect()
}

fn dir_procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// rmdir a cgroup dir, killing what still runs in it, waiting a moment for killed
/// processes to leave it (a cgroup with members cannot be removed).
fn remove(dir: &Path) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for pid in dir_procs(dir) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// At start: the container dirs under the parent whose container is not in `known`
/// (a crash between a container's removal and its cgroup's, or during a create), with
/// anything still running in them. Returns what went.
pub fn remove_strays(cfg: &RuntimeConfig, known: &HashSet<String>) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for parent in parent_dirs(cfg) {
        let Ok(rd) = std::fs::read_dir(&parent) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !e.path().is_dir() || known.contains(&name) {
                continue;
            }
            // Nested dirs first (a container's own sub-cgroups).
            let mut dirs = vec![e.path()];
            let mut i = 0;
            while i < dirs.len() {
                if let Ok(sub) = std::fs::read_dir(&dirs[i]) {
                    dirs.extend(sub.flatten().map(|s| s.path()).filter(|p| p.is_dir()));
                }
                i += 1;
            }
            for d in dirs.iter().rev() {
                match remove(d) {
                    Ok(()) => removed.push(d.clone()),
                    Err(err) => tracing::warn!("remove stray cgroup {}: {err}", d.display()),
                }
            }
        }
    }
    removed
}

/// At a clean stop: the parent dirs, where no container is left in them (a dir with
/// children or members refuses the rmdir, and stays).
pub fn remove_parent_if_empty(cfg: &RuntimeConfig) {
    for parent in parent_dirs(cfg) {
        let has_children = std::fs::read_dir(&parent)
            .map(|rd| rd.flatten().any(|e| e.path().is_dir()))
            .unwrap_or(true);
        if has_children || !dir_procs(&parent).is_empty() {
            continue;
        }
        if let Err(e) = std::fs::remove_dir(&parent) {
            tracing::debug!("remove cgroup parent {}: {e}", parent.display());
        }
    }
}

/// A pure cgroup v2 host (no v1 controllers).
fn is_v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// One block device counter (`blkio.throttle.io_service_bytes` / `io.stat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    /// `Read`, `Write`, ... as Docker names the ops.
    pub op: String,
    pub value: u64,
}

/// What `docker stats` shows of a container, as the kernel counts it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupStats {
    /// Whether these came from cgroup v2 (Docker's memory stats keys differ).
    pub v2: bool,
    /// CPU time of every process in it, nanoseconds.
    pub cpu_usage_ns: u64,
    /// Per-CPU times (v1 `cpuacct.usage_percpu`; empty on v2, as Docker's).
    pub percpu_ns: Vec<u64>,
    pub cpu_user_ns: u64,
    pub cpu_system_ns: u64,
    pub memory_usage: u64,
    pub memory_max_usage: u64,
    /// None: no limit.
    pub memory_limit: Option<u64>,
    pub memory_stat: BTreeMap<String, u64>,
    pub pids_current: u64,
    /// None: no limit.
    pub pids_limit: Option<u64>,
    pub io_service_bytes: Vec<BlkioEntry>,
}

/// Reads the cgroup's counters; a file that is missing reads as zero.
pub fn stats(rel: &str) -> CgroupStats {
    let rel = rel.trim_start_matches('/');
    let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    if is_v2() {
        let d = Path::new(ROOT).join(rel);
        let cpu = flat_keyed(&read(d.join("cpu.stat")));
        let usec = |k: &str| cpu.get(k).copied().unwrap_or(0) * 1000;
        return CgroupStats {
            v2: true,
            cpu_usage_ns: usec("usage_usec"),
            percpu_ns: Vec::new(),
            cpu_user_ns: usec("user_usec"),
            cpu_system_ns: usec("system_usec"),
            memory_usage: number(&read(d.join("memory.current"))),
            memory_max_usage: 0,
            memory_limit: limit(&read(d.join("memory.max"))),
            memory_stat: flat_keyed(&read(d.join("memory.stat"))),
            pids_current: number(&read(d.join("pids.current"))),
            pids_limit: limit(&read(d.join("pids.max"))),
            io_service_bytes: io_stat(&read(d.join("io.stat"))),
        };
    }
    let v1 =
        |controller: &str, file: &str| read(Path::new(ROOT).join(controller).join(rel).join(file));
    let cpuacct = flat_keyed(&v1("cpuacct", "cpuacct.stat"));
    // USER_HZ ticks; Docker reports them in nanoseconds.
    let ticks = |k: &str| cpuacct.get(k).copied().unwrap_or(0) * 10_000_000;
    CgroupStats {
        v2: false,
        cpu_usage_ns: number(&v1("cpuacct", "cpuacct.usage")),
        percpu_ns: v1("cpuacct", "cpuacct.usage_percpu")
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect(),
        cpu_user_ns: ticks("user"),
        cpu_system_ns: ticks("system"),
        memory_usage: number(&v1("memory", "memory.usage_in_bytes")),
        memory_max_usage: number(&v1("memory", "memory.max_usage_in_bytes")),
        memory_limit: v1_memory_limit(&v1("memory", "memory.limit_in_bytes")),
        memory_stat: flat_keyed(&v1("memory", "memory.stat")),
        pids_current: number(&v1("pids", "pids.current")),
        pids_limit: limit(&v1("pids", "pids.max")),
        io_service_bytes: blkio(&v1("blkio", "blkio.throttle.io_service_bytes")),
    }
}

/// `key value` lines (`memory.stat`, `cpu.stat`, `cpuacct.stat`).
pub fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// One number; empty or garbage reads as 0.
pub fn number(text: &str) -> u64 {
    text.trim().parse().unwrap_or(0)
}

/// `max` (or nothing) is no limit.
pub fn limit(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// v1 writes "no limit" as the largest page-aligned i64.
pub fn v1_memory_limit(text: &str) -> Option<u64> {
    limit(text).filter(|&n| n < (1 << 62))
}

/// v1 `blkio.throttle.io_service_bytes`: `8:0 Read 4096` lines and a `Total` line.
pub fn blkio(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (major, minor) = it.next()?.split_once(':')?;
            let op = it.next()?.to_string();
            let value = it.next()?.parse().ok()?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op,
                value,
            })
        })
        .collect()
}

/// v2 `io.stat`: `8:0 rbytes=4096 wbytes=0 rios=1 ...`, as Docker turns it into
/// `Read`/`Write` entries of `io_service_bytes_recursive`.
pub fn io_stat(text: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((major, minor)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in it {
            let op = match kv.split_once('=') {
                Some(("rbytes", v)) => ("Read", v),
                Some(("wbytes", v)) => ("Write", v),
                _ => continue,
            };
            if let Ok(value) = op.1.parse() {
                out.push(BlkioEntry {
                    major,
                    minor,
                    op: op.0.into(),
                    value,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_files() {
        let m = flat_keyed("cache 4096\nrss 8192\ntotal_inactive_file 12\nbroken\n");
        assert_eq!(m.get("rss"), Some(&8192));
        assert_eq!(m.get("total_inactive_file"), Some(&12));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn limits() {
        assert_eq!(limit("max\n"), None);
        assert_eq!(limit("100\n"), Some(100));
        assert_eq!(v1_memory_limit("9223372036854771712\n"), None);
        assert_eq!(v1_memory_limit("33554432\n"), Some(32 << 20));
        assert_eq!(number(""), 0);
    }

    #[test]
    fn blkio_v1_and_v2() {
        let v1 = blkio("8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\nTotal 4608\n");
        assert_eq!(v1.len(), 3);
        assert_eq!(
            v1[1],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Write".into(),
                value: 512
            }
        );
        let v2 = io_stat("254:0 rbytes=4096 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(
            v2.iter()
                .map(|e| (e.op.as_str(), e.value))
                .collect::<Vec<_>>(),
            vec![("Read", 4096), ("Write", 1024)]
        );
    }
}
