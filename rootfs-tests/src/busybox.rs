//! Busybox rootfs and images built deterministically from Debian's `busybox-static`:
//! the same inputs give the same digests on every machine.

use std::path::Path;

use anyhow::{Context, Result};

pub const BUSYBOX: &str = "/bin/busybox";

/// Fill `dest` with a busybox rootfs: `/bin/busybox`, one symlink per applet in `/bin`,
/// and the few files a container expects (`/etc/passwd`, `/etc/group`, `/tmp`).
pub fn rootfs(dest: &Path) -> Result<()> {
    let bin = dest.join("bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::copy(BUSYBOX, bin.join("busybox")).context("copy /bin/busybox (busybox-static)")?;
    let list = std::process::Command::new(BUSYBOX).arg("--list").output()?;
    anyhow::ensure!(list.status.success(), "busybox --list failed");
    for applet in String::from_utf8(list.stdout)?.lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet))?;
        }
    }
    for d in [
        "etc", "tmp", "proc", "sys", "dev", "root", "home/app", "usr/bin",
    ] {
        std::fs::create_dir_all(dest.join(d))?;
    }
    std::fs::write(
        dest.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    std::fs::write(
        dest.join("etc/group"),
        "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n",
    )?;
    Ok(())
}
