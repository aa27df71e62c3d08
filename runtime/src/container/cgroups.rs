//! The cgroup dirs of a node's containers: `<hierarchy>/<parent>/<id>` in every mounted
//! hierarchy (each v1 controller, hybrid's `unified`, or the one v2 tree), where
//! `<parent>` is the node's `--cgroup-parent`. libcontainer makes them (`mkdir -p`, the
//! parent too); removing a container removes its own. What a crash leaves (a dir whose
//! container has no record any more, the parent once the node has no container) goes
//! here, level-triggered: at start and at a clean stop.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::RuntimeConfig;

const ROOT: &str = "/sys/fs/cgroup";

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

fn procs(dir: &Path) -> Vec<i32> {
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
        for pid in procs(dir) {
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
        if has_children || !procs(&parent).is_empty() {
            continue;
        }
        if let Err(e) = std::fs::remove_dir(&parent) {
            tracing::debug!("remove cgroup parent {}: {e}", parent.display());
        }
    }
}
