//! A real `swarmd` for root suites: temp data dir, its own socket and cgroup parent, a
//! real registry holding `busybox:1` and `busybox:2`, and the clients that drive it (curl
//! on the socket, the `swarm` CLI, the stock `docker` CLI). Dropping a [`Node`] kills
//! swarmd and every container process in its cgroup parent, unmounts what it mounted and
//! removes its cgroups; the temp dir goes with it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use crate::busybox::{busybox_layout, default_config};
use crate::registry::{ManifestKind, Registry};

/// Poll a condition until it holds or the deadline passes (no sleep-and-hope).
pub fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + limit;
    let mut last_err = None;
    loop {
        match f() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what} (last error: {last_err:?})");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn alive(pid: i64) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The output of a CLI run, with both streams as text.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A running swarmd with its registry and images; the temp dir holds everything.
pub struct Node {
    child: Option<Child>,
    pub data: PathBuf,
    pub socket: PathBuf,
    pub cgroup: String,
    pub registry: Registry,
    docker_config: PathBuf,
    // Declared last: removed after the Drop above cleaned what lives in it.
    pub tmp: tempfile::TempDir,
}

impl Node {
    /// A registry with `busybox:1` and `busybox:2` (each with `/etc/swarm-version`), and a
    /// started swarmd (not yet a swarm manager).
    pub fn start(name: &str) -> Result<Node> {
        crate::require_root();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("swarm-{name}-"))
            .tempdir()?;
        let registry = Registry::start()?;
        for v in ["1", "2"] {
            let dir = tmp.path().join(format!("layout{v}"));
            busybox_layout(&dir, v, v, default_config())?;
            registry.push(&dir, v, &format!("busybox:{v}"), ManifestKind::OciManifest)?;
        }
        let docker_config = tmp.path().join("docker-config");
        std::fs::create_dir_all(&docker_config)?;
        let mut node = Node {
            child: None,
            data: tmp.path().join("data"),
            socket: tmp.path().join("swarm.sock"),
            cgroup: format!("swarm-{name}-{}", std::process::id()),
            registry,
            docker_config,
            tmp,
        };
        std::fs::create_dir_all(&node.data)?;
        node.start_swarmd()?;
        Ok(node)
    }

    pub fn image(&self, tag: &str) -> String {
        format!("{}/busybox:{tag}", self.registry.host())
    }

    pub fn start_swarmd(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.tmp.path().join("swarmd.log"))?;
        let child = Command::new(crate::workspace_bin("swarmd"))
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--socket")
            .arg(&self.socket)
            .args(["--cgroup-parent", &self.cgroup])
            .args(["--insecure-registry", &self.registry.host()])
            .args(["--hostname", "node-test"])
            .env("RUST_LOG", "swarm_node=debug,info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        wait_for("the API", Duration::from_secs(20), || {
            Ok(self.call("GET", "/_ping", None).is_ok().then_some(()))
        })
    }

    pub fn swarmd_pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// The tail of swarmd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.tmp.path().join("swarmd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// `swarm -H unix://<socket> ARGS`.
    pub fn swarm(&self, args: &[&str]) -> Result<Run> {
        let out = Command::new(crate::workspace_bin("swarm"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .env_remove("SWARM_HOST")
            .stdin(Stdio::null())
            .output()
            .context("run swarm")?;
        Ok(out.into())
    }

    /// `swarm ARGS` that must succeed; its stdout.
    pub fn swarm_ok(&self, args: &[&str]) -> Result<String> {
        let r = self.swarm(args)?;
        ensure!(r.ok, "swarm {args:?} failed: {}{}", r.stdout, r.stderr);
        Ok(r.stdout)
    }

    /// The stock docker CLI pointed at our socket (no daemon involved).
    pub fn docker(&self, args: &[&str]) -> Result<Run> {
        let out = Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null())
            .output()
            .context("run docker")?;
        Ok(out.into())
    }

    pub fn docker_ok(&self, args: &[&str]) -> Result<String> {
        let r = self.docker(args)?;
        ensure!(r.ok, "docker {args:?} failed: {}{}", r.stdout, r.stderr);
        Ok(r.stdout)
    }

    /// One HTTP call on the socket; returns (status, JSON body or null).
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-w", "\n%{http_code}", "-X", method, "--unix-socket"])
            .arg(&self.socket)
            .arg(format!("http://localhost/v1.47{path}"));
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "-d", &b.to_string()]);
        }
        let out = cmd.output()?;
        ensure!(
            out.status.success(),
            "curl {method} {path}: {:?}",
            out.status
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, code) = text.rsplit_once('\n').context("curl output")?;
        let v = serde_json::from_str(body).unwrap_or(Value::Null);
        Ok((code.trim().parse()?, v))
    }

    pub fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let (code, v) = self.call(method, path, body)?;
        ensure!((200..300).contains(&code), "{method} {path}: {code} {v}");
        Ok(v)
    }

    pub fn services(&self) -> Result<Vec<Value>> {
        Ok(self
            .ok("GET", "/services", None)?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    pub fn tasks(&self, service: &str) -> Result<Vec<Value>> {
        let f = format!("{{\"service\":{{\"{service}\":true}}}}");
        let path = format!("/tasks?filters={}", urlencode(&f));
        Ok(self
            .ok("GET", &path, None)?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Every task in the store.
    pub fn all_tasks(&self) -> Result<Vec<Value>> {
        Ok(self
            .ok("GET", "/tasks", None)?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Tasks that should run and do, by slot.
    pub fn running(&self, service: &str) -> Result<Vec<RunningTask>> {
        let mut out: Vec<_> = self
            .tasks(service)?
            .into_iter()
            .filter(|t| t["DesiredState"] == "running" && t["Status"]["State"] == "running")
            .map(|t| RunningTask {
                slot: t["Slot"].as_u64().unwrap_or(0),
                id: t["ID"].as_str().unwrap_or("").to_string(),
                pid: t["Status"]["ContainerStatus"]["PID"].as_i64().unwrap_or(0),
                image: t["Spec"]["ContainerSpec"]["Image"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Wait until exactly `n` tasks of `service` run (and no other task should), each
    /// with a live process.
    pub fn wait_running(&self, service: &str, n: usize) -> Result<Vec<RunningTask>> {
        wait_for(
            &format!("{n} running tasks of {service}"),
            Duration::from_secs(90),
            || {
                let r = self.running(service)?;
                let live = self
                    .tasks(service)?
                    .into_iter()
                    .filter(|t| t["DesiredState"] == "running")
                    .count();
                Ok((r.len() == n && live == n && r.iter().all(|t| alive(t.pid))).then_some(r))
            },
        )
        .with_context(|| format!("swarmd log:\n{}", self.log_tail()))
    }

    /// Container bundle dirs under `<data>/containers`.
    pub fn containers(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.data.join("containers"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The cgroup directories of this node's parent (one per container), over every
    /// hierarchy (cgroup v1 controllers, hybrid's unified, or pure v2).
    pub fn cgroup_roots(&self) -> Vec<PathBuf> {
        let base = Path::new("/sys/fs/cgroup");
        if base.join("cgroup.controllers").exists() {
            return vec![base.join(&self.cgroup)];
        }
        [
            "pids", "memory", "cpu", "cpuset", "blkio", "devices", "freezer", "unified",
        ]
        .iter()
        .map(|c| base.join(c).join(&self.cgroup))
        .collect()
    }

    /// Container cgroup dirs that exist, as "hierarchy/id".
    pub fn container_cgroups(&self) -> Vec<(PathBuf, String)> {
        let mut out = vec![];
        for root in self.cgroup_roots() {
            if let Ok(entries) = std::fs::read_dir(&root) {
                for e in entries.flatten() {
                    if e.path().is_dir() {
                        out.push((root.clone(), e.file_name().to_string_lossy().into_owned()));
                    }
                }
            }
        }
        out
    }

    /// The pids cgroup dir of container `id` (the unified one on pure v2).
    pub fn pids_cgroup(&self, id: &str) -> PathBuf {
        let base = Path::new("/sys/fs/cgroup");
        if base.join("cgroup.controllers").exists() {
            base.join(&self.cgroup).join(id)
        } else {
            base.join("pids").join(&self.cgroup).join(id)
        }
    }

    /// Mount points under this node's data dir.
    pub fn mounts(&self) -> Vec<String> {
        let data = self.data.to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&data))
            .collect()
    }

    /// Every trace of container `id` still on the machine: its bundle dir, cgroups, mounts.
    pub fn traces_of(&self, id: &str) -> Vec<String> {
        let mut out = vec![];
        let dir = self.data.join("containers").join(id);
        if dir.exists() {
            out.push(format!("dir {}", dir.display()));
        }
        for (root, c) in self.container_cgroups() {
            if c == id {
                out.push(format!("cgroup {}/{c}", root.display()));
            }
        }
        for m in self.mounts() {
            if m.contains(id) {
                out.push(format!("mount {m}"));
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RunningTask {
    pub slot: u64,
    pub id: String,
    pub pid: i64,
    pub image: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.kill9();
        // Leave nothing running: kill every container process of this node's cgroups.
        for root in self.cgroup_roots() {
            if let Ok(entries) = std::fs::read_dir(&root) {
                for e in entries.flatten() {
                    if let Ok(procs) = std::fs::read_to_string(e.path().join("cgroup.procs")) {
                        for pid in procs.lines().filter_map(|p| p.parse::<i32>().ok()) {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                        }
                    }
                }
            }
        }
        // Unmount what lives under the data dir, deepest first.
        let mut mounts = self.mounts();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        for root in self.cgroup_roots() {
            if let Ok(entries) = std::fs::read_dir(&root) {
                for e in entries.flatten().filter(|e| e.path().is_dir()) {
                    // A killed process leaves its cgroup a moment later.
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while std::fs::remove_dir(e.path()).is_err()
                        && e.path().exists()
                        && Instant::now() < deadline
                    {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
            let _ = std::fs::remove_dir(&root);
        }
    }
}
