//! Fail at start, not per task (issue 15, item 9): swarmd started where its runtime
//! cannot run containers refuses to start with one line saying why. Here: `ip netns
//! exec`, which remounts /sys without a cgroup hierarchy (the way the multi-host
//! harness must not start swarmd); it used to start, join and reject every task.

use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use rootfs_tests::swarmd::wait_for;

/// A network namespace of this test, deleted when dropped.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

#[test]
fn swarmd_without_cgroups_refuses_to_start_with_one_line() -> Result<()> {
    let ns = Netns(format!("swpre{}", std::process::id()));
    let ok = Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()?
        .success();
    ensure!(ok, "ip netns add {}", ns.0);
    let tmp = tempfile::tempdir()?;
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(rootfs_tests::workspace_bin("swarmd"))
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .arg("--socket")
        .arg(tmp.path().join("swarm.sock"))
        .args(["--log-level", "error"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // It must end by itself, quickly.
    let status = match wait_for("swarmd to exit", Duration::from_secs(20), || {
        Ok(child.try_wait()?)
    }) {
        Ok(s) => s,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e.context("swarmd kept running without cgroups"));
        }
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().context("stderr")?, &mut stderr)?;
    ensure!(!status.success(), "swarmd exited 0: {stderr}");
    ensure!(
        stderr.trim().lines().count() == 1
            && stderr.starts_with("swarmd: ")
            && stderr.contains("no cgroup hierarchy is mounted under /sys/fs/cgroup")
            && stderr.contains("nsenter --net="),
        "stderr:\n{stderr}"
    );
    ensure!(
        !tmp.path().join("swarm.sock").exists(),
        "it served its socket before refusing"
    );
    Ok(())
}
