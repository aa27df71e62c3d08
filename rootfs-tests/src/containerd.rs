//! A private containerd for tests: its own config, root, state and sockets under a temp
//! dir, the CRI plugin off. Never the system's (nor the one Docker runs). Dropping it
//! kills its containers, shims and daemon and removes everything it made.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub const CONTAINERD: &str = "/usr/bin/containerd";
/// Where containerd's runc shim keeps runc's state: `<root>/<namespace>/<id>`.
const RUNC_ROOT: &str = "/run/containerd/runc";
/// How long containerd may take to answer on its socket.
const READY: Duration = Duration::from_secs(30);

pub struct Containerd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub socket: PathBuf,
}

impl Containerd {
    /// Start containerd and wait until its gRPC socket answers a version call.
    pub async fn start() -> Result<Containerd> {
        // Short path: unix socket paths are limited to 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("ctrd")
            .tempdir_in("/tmp")
            .context("temp dir")?;
        let d = dir.path();
        let socket = d.join("containerd.sock");
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[debug]
  address = "{debug}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = socket.display(),
            debug = d.join("debug.sock").display(),
            opt = d.join("opt").display(),
        );
        let config_path = d.join("config.toml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(d.join("containerd.log"))?;
        let child = Command::new(CONTAINERD)
            .arg("--config")
            .arg(&config_path)
            // The runc shim finds runc (/usr/sbin) on PATH.
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start containerd (Debian package containerd)")?;
        let mut c = Containerd {
            dir,
            child: Some(child),
            socket,
        };
        let deadline = Instant::now() + READY;
        loop {
            if let Some(status) = c.child.as_mut().and_then(|ch| ch.try_wait().ok().flatten()) {
                bail!("containerd exited ({status}):\n{}", c.log_tail());
            }
            if c.socket.exists()
                && swarm_runtime::container::containerd::version(&c.socket)
                    .await
                    .is_ok()
            {
                return Ok(c);
            }
            if Instant::now() > deadline {
                bail!(
                    "containerd did not answer on {} within {READY:?}:\n{}",
                    c.socket.display(),
                    c.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines containerd logged, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir().join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Kill this containerd (not its shims): containers keep running, as when the host's
    /// containerd restarts.
    pub fn kill_daemon(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Pids of the runc shims serving this containerd (their `-address` is our socket).
    fn shims(&self) -> Vec<i32> {
        let sock = self.socket.to_string_lossy().into_owned();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            let is_ours = args
                .windows(2)
                .any(|w| w[0] == b"-address" && w[1] == sock.as_bytes());
            if is_ours {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        // Containers first (killing a pid namespace's init ends it), then their shims.
        let tasks = self.dir().join("state/io.containerd.runtime.v2.task");
        for ns in std::fs::read_dir(&tasks).into_iter().flatten().flatten() {
            for task in std::fs::read_dir(ns.path()).into_iter().flatten().flatten() {
                let pid = std::fs::read_to_string(task.path().join("init.pid")).unwrap_or_default();
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
        for pid in self.shims() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        // runc keeps its state per namespace under a root shared by every containerd on
        // the machine: remove what our killed tasks left there.
        for ns in std::fs::read_dir(&tasks).into_iter().flatten().flatten() {
            let runc_ns = Path::new(RUNC_ROOT).join(ns.file_name());
            for task in std::fs::read_dir(ns.path()).into_iter().flatten().flatten() {
                let _ = std::fs::remove_dir_all(runc_ns.join(task.file_name()));
            }
            let _ = std::fs::remove_dir(&runc_ns);
        }
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Anything containerd left mounted under its dirs.
        let prefix = self.dir().to_string_lossy().into_owned();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}
