//! `scripts/install-swarm`, the install step of the Vagrant VMs, run for real into a
//! staging dir (`--destdir`: the same script, minus `systemctl`): the binaries land in
//! `<prefix>/bin`, the unit is written, and the unit's `ExecStart` line starts a swarmd
//! that answers on its socket (so the unit cannot drift from swarmd's flags).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use rootfs_tests::registry::free_port;
use rootfs_tests::swarmd::{processes_naming, wait_for};

#[test]
fn install_swarm_stages_binaries_and_a_unit_whose_exec_start_runs() -> Result<()> {
    rootfs_tests::require_root();
    let tmp = tempfile::Builder::new()
        .prefix("install-swarm-")
        .tempdir()?;
    let stage = tmp.path().join("stage");
    let bin_dir = rootfs_tests::workspace_bin("swarmd")
        .parent()
        .context("bin dir")?
        .to_path_buf();
    rootfs_tests::workspace_bin("swarm");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-swarm");
    let data = tmp.path().join("data");
    let socket = tmp.path().join("swarm.sock");
    let listen = format!("127.0.0.1:{}", free_port()?);
    let out = Command::new(&script)
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--destdir")
        .arg(&stage)
        .arg("--data-dir")
        .arg(&data)
        .arg("--socket")
        .arg(&socket)
        .args(["--listen-addr", &listen, "--advertise-addr", &listen])
        .args(["--hostname", "installed", "--runtime", "libcontainer"])
        .output()?;
    ensure!(
        out.status.success(),
        "install-swarm: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for b in ["swarmd", "swarm"] {
        let p = stage.join("usr/local/bin").join(b);
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&p)?.permissions());
        ensure!(mode & 0o111 != 0, "{} not executable", p.display());
        ensure!(
            std::fs::read(&p)? == std::fs::read(bin_dir.join(b))?,
            "{b} differs"
        );
    }
    let unit = std::fs::read_to_string(stage.join("etc/systemd/system/swarmd.service"))?;
    for line in [
        "KillMode=process",
        "WantedBy=multi-user.target",
        "Restart=always",
    ] {
        ensure!(unit.lines().any(|l| l == line), "no {line} in:\n{unit}");
    }
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .context("no ExecStart")?;
    let mut words = exec.split_whitespace();
    ensure!(words.next() == Some("/usr/local/bin/swarmd"), "{exec}");

    // The unit's command line, with the staged binary.
    let mut child = Command::new(stage.join("usr/local/bin/swarmd"))
        .args(words)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("swarmd.log"))?)
        .spawn()?;
    let ping = wait_for("the installed swarmd", Duration::from_secs(20), || {
        let out = Command::new(stage.join("usr/local/bin/swarm"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args(["info"])
            .output()?;
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned()))
    });
    let _ = child.kill();
    let _ = child.wait();
    let info = ping.with_context(|| {
        std::fs::read_to_string(tmp.path().join("swarmd.log")).unwrap_or_default()
    })?;
    ensure!(info.contains("Swarm: inactive"), "{info}");
    ensure!(processes_naming(tmp.path()).is_empty());
    Ok(())
}
