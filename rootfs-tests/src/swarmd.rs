//! A real `swarmd` for root suites. [`Swarmd`] is one daemon (its own data dir, socket,
//! cgroup parent, optionally its own network namespace) with the clients that drive it
//! (curl on the socket, the `swarm` CLI, the stock `docker` CLI); [`Node`] is the
//! single-host fixture: a temp dir, a real registry holding `busybox:1` and `busybox:2`,
//! and one `Swarmd`. The multi-host fixture (`crate::cluster`) holds several.
//!
//! Dropping a [`Swarmd`] kills swarmd, every container process in its cgroup parent and
//! every process still naming its dir (shims), unmounts what lives under its data dir
//! and removes its cgroups; the owner's temp dir goes after it.

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

/// Processes (not this one) whose command line names `dir` or a path below it: a swarmd
/// started with `--data-dir <dir>/data`, its shims.
pub fn processes_naming(dir: &Path) -> Vec<i32> {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    c.split(|&b| b == 0)
                        .any(|arg| String::from_utf8_lossy(arg).contains(&needle))
                })
                .unwrap_or(false)
        })
        .collect()
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
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            ok: o.status.success(),
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// How one swarmd is started: where it keeps its files and what it is told.
#[derive(Debug, Clone)]
pub struct SwarmdConfig {
    /// Holds `data/`, `swarm.sock`, `swarmd.log` and `docker-config/`; outlives the
    /// [`Swarmd`] (its owner removes it).
    pub dir: PathBuf,
    /// `--hostname`: the node's name in `node ls` and `service ps`.
    pub hostname: String,
    /// `--cgroup-parent`: one per swarmd, so its containers can be found and killed.
    pub cgroup: String,
    /// `--insecure-registry`.
    pub registry: String,
    /// The network namespace (a name under `/run/netns`) swarmd runs in; `None`: this one.
    pub netns: Option<String>,
    /// `--listen-addr` and `--advertise-addr` (`IP:2377`); `None`: swarmd's defaults.
    pub addr: Option<String>,
}

/// A running swarmd and the clients that drive it. Dropping it kills swarmd and every
/// process it started (container processes in its cgroup parent, shims), unmounts what
/// lives under its data dir and removes its cgroups.
pub struct Swarmd {
    child: Option<Child>,
    pub config: SwarmdConfig,
    pub data: PathBuf,
    pub socket: PathBuf,
    pub cgroup: String,
    registry: String,
    pub docker_config: PathBuf,
    /// More flags for swarmd (`--metrics-addr`), kept for restarts.
    pub extra_args: Vec<String>,
}

/// `swarm -H unix://<socket> ARGS`, with `input` on its standard input (else none), killed
/// after `limit` if it runs that long (a command that waits, such as `ca --rotate`).
/// Free of any `Swarmd`, for threads that write while the test changes the cluster.
pub fn swarm_at(
    socket: &Path,
    args: &[&str],
    input: Option<&str>,
    limit: Option<Duration>,
) -> Result<Run> {
    use std::io::Write;
    let mut child = Command::new(crate::workspace_bin("swarm"))
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .args(args)
        .env_remove("SWARM_HOST")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("run swarm")?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input.as_bytes())?;
    }
    if let Some(limit) = limit {
        let deadline = std::time::Instant::now() + limit;
        while child.try_wait()?.is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                anyhow::bail!("swarm {args:?} still running after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(child.wait_with_output()?.into())
}

/// A single-host swarmd with its own registry holding `busybox:1` and `busybox:2`; the
/// temp dir holds everything. Derefs to its [`Swarmd`].
pub struct Node {
    swarmd: Swarmd,
    pub registry: Registry,
    // Declared last: removed after the swarmd's Drop cleaned what lives in it.
    pub tmp: tempfile::TempDir,
}

impl std::ops::Deref for Node {
    type Target = Swarmd;
    fn deref(&self) -> &Swarmd {
        &self.swarmd
    }
}

impl std::ops::DerefMut for Node {
    fn deref_mut(&mut self) -> &mut Swarmd {
        &mut self.swarmd
    }
}

/// Push `busybox:1` and `busybox:2` (each with `/etc/swarm-version`) to `registry`,
/// building the layouts under `work`.
pub fn push_busybox(registry: &Registry, work: &Path) -> Result<()> {
    for v in ["1", "2"] {
        let dir = work.join(format!("layout{v}"));
        busybox_layout(&dir, v, v, default_config())?;
        registry.push(&dir, v, &format!("busybox:{v}"), ManifestKind::OciManifest)?;
    }
    Ok(())
}

impl Node {
    /// A registry with `busybox:1` and `busybox:2`, and a started swarmd (not yet a swarm
    /// manager).
    pub fn start(name: &str) -> Result<Node> {
        Node::start_with(name, &[])
    }

    /// [`Node::start`] with more flags for swarmd.
    pub fn start_with(name: &str, extra_args: &[&str]) -> Result<Node> {
        crate::require_root();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("swarm-{name}-"))
            .tempdir()?;
        let registry = Registry::start()?;
        push_busybox(&registry, tmp.path())?;
        let swarmd = Swarmd::start_with(
            SwarmdConfig {
                dir: tmp.path().to_path_buf(),
                hostname: "node-test".into(),
                cgroup: format!("swarm-{name}-{}", std::process::id()),
                registry: registry.host(),
                netns: None,
                addr: None,
            },
            extra_args.iter().map(|a| a.to_string()).collect(),
        )?;
        Ok(Node {
            swarmd,
            registry,
            tmp,
        })
    }
}

impl Swarmd {
    /// Start swarmd as `config` says and wait until its API answers.
    pub fn start(config: SwarmdConfig) -> Result<Swarmd> {
        Swarmd::start_with(config, Vec::new())
    }

    /// [`Swarmd::start`] with more flags for swarmd.
    pub fn start_with(config: SwarmdConfig, extra_args: Vec<String>) -> Result<Swarmd> {
        let docker_config = config.dir.join("docker-config");
        std::fs::create_dir_all(&docker_config)?;
        let mut swarmd = Swarmd {
            child: None,
            data: config.dir.join("data"),
            socket: config.dir.join("swarm.sock"),
            cgroup: config.cgroup.clone(),
            registry: config.registry.clone(),
            docker_config,
            config,
            extra_args,
        };
        std::fs::create_dir_all(&swarmd.data)?;
        swarmd.start_swarmd()?;
        Ok(swarmd)
    }

    /// A reference to `busybox:<tag>` in this swarmd's registry.
    pub fn image(&self, tag: &str) -> String {
        format!("{}/busybox:{tag}", self.registry)
    }

    /// (Re)start the swarmd process, after [`Swarmd::kill9`].
    pub fn start_swarmd(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.config.dir.join("swarmd.log"))?;
        // `nsenter --net` and not `ip netns exec`: the latter also makes a mount namespace,
        // and the containers' mounts must stay visible to a restarted swarmd (and to us).
        let mut cmd = match &self.config.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}"))
                    .arg("--")
                    .arg(crate::workspace_bin("swarmd"));
                c
            }
            None => Command::new(crate::workspace_bin("swarmd")),
        };
        cmd.arg("--data-dir")
            .arg(&self.data)
            .arg("--socket")
            .arg(&self.socket)
            .args(["--cgroup-parent", &self.cgroup])
            .args(["--insecure-registry", &self.registry])
            .args(["--hostname", &self.config.hostname])
            .args(&self.extra_args);
        // Each swarmd its own cluster port (tests run side by side): a free loopback port,
        // kept for restarts.
        if self.config.addr.is_none() {
            self.config.addr = Some(format!("127.0.0.1:{}", crate::registry::free_port()?));
        }
        if let Some(addr) = &self.config.addr {
            cmd.args(["--listen-addr", addr, "--advertise-addr", addr]);
        }
        // A stale socket from a killed swarmd must not answer the wait below.
        let _ = std::fs::remove_file(&self.socket);
        let child = cmd
            .env("RUST_LOG", "swarm_node=debug,info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        wait_for("the API", Duration::from_secs(20), || {
            Ok(self.call("GET", "/_ping", None).is_ok().then_some(()))
        })
        .with_context(|| format!("swarmd log:\n{}", self.log_tail()))
    }

    /// The swarmd process (nsenter execs it: same pid).
    pub fn swarmd_pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL swarmd (its containers and shims live on).
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// Stop swarmd as systemd does (SIGTERM) and wait for it to exit; its containers
    /// live on, as after a kill.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            )?;
            let deadline = Instant::now() + Duration::from_secs(30);
            while c.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    bail!("swarmd still running 30 s after SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// The tail of swarmd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.config.dir.join("swarmd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// `swarm -H unix://<socket> ARGS`.
    pub fn swarm(&self, args: &[&str]) -> Result<Run> {
        swarm_at(&self.socket, args, None, None)
    }

    /// `swarm ARGS` with `input` on its standard input (not a terminal).
    pub fn swarm_stdin(&self, args: &[&str], input: &str) -> Result<Run> {
        swarm_at(&self.socket, args, Some(input), None)
    }

    /// `swarm ARGS` that must succeed; its stdout.
    pub fn swarm_ok(&self, args: &[&str]) -> Result<String> {
        let r = self.swarm(args)?;
        ensure!(r.ok, "swarm {args:?} failed: {}{}", r.stdout, r.stderr);
        Ok(r.stdout)
    }

    /// The stock docker CLI pointed at our socket (no daemon involved).
    /// `program` with the docker CLI pointed at this swarmd (`DOCKER_HOST`, its own
    /// `DOCKER_CONFIG`, no context).
    pub fn docker_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_CONTEXT");
        cmd
    }

    pub fn docker(&self, args: &[&str]) -> Result<Run> {
        let out = self
            .docker_command("docker")
            .args(args)
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
        // Every mounted hierarchy, not a fixed list: libcontainer makes the parent in
        // each (cpuacct, net_cls, ... too), and a combined `cpu,cpuacct` shows up
        // under several names.
        let mut hierarchies: Vec<PathBuf> = std::fs::read_dir(base)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| std::fs::canonicalize(e.path()).ok())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        hierarchies.sort();
        hierarchies.dedup();
        hierarchies
            .into_iter()
            .map(|h| h.join(&self.cgroup))
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

impl RunningTask {
    /// Whether the task runs `image`, as given or pinned to a digest (`image@sha256:..`,
    /// as the CLIs pin it from the registry).
    pub fn runs(&self, image: &str) -> bool {
        self.image == image
            || self
                .image
                .strip_prefix(image)
                .is_some_and(|rest| rest.starts_with("@sha256:"))
    }
}

impl Drop for Swarmd {
    fn drop(&mut self) {
        let _ = self.kill9();
        // Leave nothing running: kill every container process of this node's cgroups,
        // then whatever else was started with this swarmd's dir on its command line.
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
        for pid in processes_naming(&self.config.dir) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
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
