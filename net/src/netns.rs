//! Named network namespaces (an nsfs file bind-mounted on a path, as `ip netns add` makes
//! them) and running code inside one.
//!
//! `setns` moves only the calling thread, so every excursion into a namespace happens on a
//! scoped thread of its own that ends with the excursion: the caller's threads never move.
//! A netlink socket made on such a thread stays bound to that namespace after the thread
//! is gone, which is how `netlink::Netlink::open` talks to other namespaces. nix wraps
//! `setns`, `unshare` and `mount` safely, so the crate needs no `unsafe`.

use std::fs::File;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{statfs, NSFS_MAGIC};

use crate::error::{Error, Result};

/// Whether `path` is a mounted network namespace (and not a leftover empty file).
pub fn is_netns(path: &Path) -> bool {
    statfs(path).is_ok_and(|s| s.filesystem_type() == NSFS_MAGIC)
}

/// Make a new network namespace pinned at `path`; a namespace already there is kept.
/// A stale empty file (a crash between create and mount) is reused.
pub fn create(path: &Path) -> Result<()> {
    if is_netns(path) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    File::create(path)?;
    let pinned = std::thread::scope(|s| {
        s.spawn(|| -> Result<()> {
            let err = |what, source| Error::Netns {
                path: path.to_owned(),
                what,
                source,
            };
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| err("unshare", e))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| err("bind mount", e))
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    });
    if pinned.is_err() {
        let _ = std::fs::remove_file(path);
    }
    pinned?;
    // A fresh namespace has its loopback down; everything expects it up.
    crate::netlink::Netlink::open(Some(path))?.set_up_by_name("lo")
}

/// Unpin and delete the namespace at `path`. Absent or half-made is fine. The kernel frees
/// the namespace (and the links in it) once nothing else holds it.
pub fn remove(path: &Path) -> Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
        Err(source) => {
            return Err(Error::Netns {
                path: path.to_owned(),
                what: "unmount",
                source,
            })
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Run `f` inside the namespace at `path` (`None`: the caller's own) on a thread of its
/// own, and return what it returns.
pub fn run_in<T: Send>(path: Option<&Path>, f: impl FnOnce() -> T + Send) -> Result<T> {
    let Some(path) = path else {
        return Ok(f());
    };
    let ns = File::open(path)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|source| Error::Netns {
                path: path.to_owned(),
                what: "setns",
                source,
            })?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Start `f` on a new thread inside the namespace at `path` (servers in tests, long
/// excursions); the thread stays there until `f` returns.
pub fn spawn_in<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<T>> {
    let ns = File::open(path)?;
    let owned = path.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let entered = setns(&ns, CloneFlags::CLONE_NEWNET);
        let ok = entered.is_ok();
        let _ = tx.send(entered);
        assert!(ok, "setns {}", owned.display());
        f()
    });
    match rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(source)) => Err(Error::Netns {
            path: path.to_owned(),
            what: "setns",
            source,
        }),
        Err(_) => Err(Error::Invalid {
            what: "namespace thread",
            value: path.display().to_string(),
        }),
    }
}

/// A short name for a namespace in messages: its path, or "host".
pub(crate) fn label(path: Option<&Path>) -> String {
    path.map_or_else(|| "host".to_owned(), |p| p.display().to_string())
}
