//! What the host must give the libcontainer backend, checked once when the runtime
//! starts: a node that cannot run containers refuses to start with one line saying why,
//! instead of joining a swarm and rejecting every task it is given with the same error.
//!
//! - A cgroup hierarchy mounted under `/sys/fs/cgroup` (v2, v1 or hybrid). `ip netns
//!   exec` remounts `/sys` for the namespace and leaves none: swarmd started that way
//!   sees an empty `/sys/fs/cgroup`.
//! - overlayfs (every container's rootfs is an overlay of the image's layers): in
//!   `/proc/filesystems`, or a module the kernel can load.

use std::path::Path;

use crate::{Error, Result};

/// The cgroup filesystems mounted at or under `/sys/fs/cgroup`, from a
/// `/proc/self/mountinfo` text.
fn cgroup_mounts(mountinfo: &str) -> usize {
    mountinfo
        .lines()
        .filter(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let Some(dash) = fields.iter().position(|f| *f == "-") else {
                return false;
            };
            let mount_point = fields.get(4).copied().unwrap_or("");
            let fstype = fields.get(dash + 1).copied().unwrap_or("");
            (fstype == "cgroup" || fstype == "cgroup2")
                && Path::new(mount_point).starts_with("/sys/fs/cgroup")
        })
        .count()
}

fn has_overlay(filesystems: &str, release: &str) -> bool {
    filesystems
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
        || [
            "overlay.ko",
            "overlay.ko.xz",
            "overlay.ko.zst",
            "overlay.ko.gz",
        ]
        .iter()
        .any(|f| Path::new(&format!("/lib/modules/{release}/kernel/fs/overlayfs/{f}")).exists())
}

/// Refuses a host the libcontainer backend cannot run containers on.
pub fn check() -> Result<()> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::Other(format!("read /proc/self/mountinfo: {e}")))?;
    if cgroup_mounts(&mountinfo) == 0 {
        return Err(Error::Other(
            "cannot run containers: no cgroup hierarchy is mounted under /sys/fs/cgroup \
             (`ip netns exec` remounts /sys without one: enter only the network namespace, \
             with `nsenter --net=/run/netns/NAME`)"
                .into(),
        ));
    }
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    if !has_overlay(&filesystems, &release) {
        return Err(Error::Other(
            "cannot run containers: the kernel has no overlay filesystem (not in \
             /proc/filesystems, no overlay module): `modprobe overlay`"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_mounts_under_sys_fs_cgroup_only() {
        let hybrid = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                      35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup_mounts(hybrid), 2);
        let v2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(cgroup_mounts(v2), 1);
        // `ip netns exec`: a fresh sysfs, nothing below it.
        let netns = "300 299 0:60 / /sys rw,relatime - sysfs none rw\n\
                     301 299 0:61 / /tmp/x rw - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup_mounts(netns), 0);
    }

    #[test]
    fn overlay_from_proc_filesystems() {
        assert!(has_overlay("nodev\tsysfs\nnodev\toverlay\n", "none"));
        assert!(!has_overlay("nodev\tsysfs\n\text4\n", "no-such-release"));
    }
}
