//! One node, one replicated service of busybox `sleep 1d`: time from `POST
//! /services/create` (N replicas) until all N tasks are running, and from the update to
//! 0 replicas until every container is gone (and every container process dead); then the
//! idle RSS of the daemons with N tasks running. Ours: the real `swarmd` (temp data dir,
//! socket, cgroup parent), image loaded into its store from an OCI archive. The peer:
//! Docker Swarm on this machine (single-node `docker swarm init`, image from `docker
//! import` of the same rootfs), only if the engine is not already in a swarm; Docker is
//! left as it was found (a guard removes the service, leaves the swarm, removes the image
//! and the networks the init made), also on failure.
//!
//! Both are driven the same way: the Engine API over the unix socket (curl), the same
//! service spec, polled every 20 ms with a deadline. Goal (issue 3): at least 3x faster
//! than Docker Swarm both ways.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

const POLL: Duration = Duration::from_millis(20);
const DEADLINE: Duration = Duration::from_secs(300);
pub(crate) const SERVICE: &str = "bench";

/// Figures of one contender.
#[derive(Default)]
struct Figures {
    up: Option<Duration>,
    down: Option<Duration>,
    /// KiB: the daemon(s), then the per-container shims summed.
    daemon_rss: Vec<(String, u64)>,
    shims_rss: (usize, u64),
    note: Option<String>,
}

pub fn run(replicas: usize, pinned: bool) -> Result<()> {
    ensure!(
        nix::unistd::geteuid().is_root(),
        "the services benchmark needs root"
    );
    let tmp = tempfile::Builder::new()
        .prefix("swarm-bench-services-")
        .tempdir()?;
    println!(
        "one node: service create --replicas {replicas} (busybox sleep 1d) until all running, \
         scale {replicas} -> 0 until every container is gone\n"
    );
    let ours = bench_ours(replicas, tmp.path(), pinned).context("swarmd")?;
    let peer = bench_docker(replicas, tmp.path()).unwrap_or_else(|e| Figures {
        note: Some(format!("{e:#}")),
        ..Default::default()
    });

    let show = |name: &str, f: &Figures, mine: Option<Duration>, pick: fn(&Figures) -> _| {
        let v: Option<Duration> = pick(f);
        crate::util::row(
            name,
            v.ok_or_else(|| f.note.clone().unwrap_or_else(|| "failed".into())),
            mine,
        )
    };
    show(
        &format!("swarm: create {replicas} -> running"),
        &ours,
        None,
        |f| f.up,
    );
    show(
        &format!("docker swarm: create {replicas} -> running"),
        &peer,
        ours.up,
        |f| f.up,
    );
    show(
        &format!("swarm: scale {replicas} -> 0, gone"),
        &ours,
        None,
        |f| f.down,
    );
    show(
        &format!("docker swarm: scale {replicas} -> 0, gone"),
        &peer,
        ours.down,
        |f| f.down,
    );
    println!("\nidle RSS with {replicas} tasks running:");
    for (who, f) in [("swarm", &ours), ("docker", &peer)] {
        if f.daemon_rss.is_empty() {
            println!("  {who:<8} n/a");
            continue;
        }
        let daemons: u64 = f.daemon_rss.iter().map(|d| d.1).sum();
        let parts: Vec<String> = f
            .daemon_rss
            .iter()
            .map(|(n, k)| format!("{n} {}", mib(*k)))
            .collect();
        println!(
            "  {who:<8} daemons {:>10} ({})   + {} shims {:>10}   total {}",
            mib(daemons),
            parts.join(", "),
            f.shims_rss.0,
            mib(f.shims_rss.1),
            mib(daemons + f.shims_rss.1)
        );
    }
    if let (Some(o), Some(_)) = (ours.daemon_rss.first(), peer.daemon_rss.first()) {
        let pd: u64 = peer.daemon_rss.iter().map(|d| d.1).sum();
        println!(
            "  daemons: dockerd+containerd / swarmd = {:.1}x; with shims: {:.1}x",
            pd as f64 / o.1 as f64,
            (pd + peer.shims_rss.1) as f64 / (o.1 + ours.shims_rss.1) as f64
        );
    }
    Ok(())
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

// --------------------------------------------------------------------------------------
// The API over a unix socket, with curl (as the node suite does).

pub(crate) struct Api {
    pub(crate) socket: PathBuf,
    pub(crate) prefix: &'static str,
}

impl Api {
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-w", "\n%{http_code}", "-X", method, "--unix-socket"])
            .arg(&self.socket)
            .arg(format!("http://localhost{}{path}", self.prefix));
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

    pub(crate) fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let (code, v) = self.call(method, path, body)?;
        ensure!((200..300).contains(&code), "{method} {path}: {code} {v}");
        Ok(v)
    }

    pub(crate) fn list(&self, path: &str, filters: &Value) -> Result<Vec<Value>> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let path = format!("{path}{sep}filters={}", urlencode(&filters.to_string()));
        Ok(self
            .ok("GET", &path, None)?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// PIDs of the service's tasks that should run and do (PID known).
    pub(crate) fn running(&self) -> Result<Vec<i64>> {
        Ok(self
            .list("/tasks", &json!({"service": {SERVICE: true}}))?
            .iter()
            .filter(|t| t["DesiredState"] == "running" && t["Status"]["State"] == "running")
            .map(|t| t["Status"]["ContainerStatus"]["PID"].as_i64().unwrap_or(0))
            .filter(|p| *p > 0)
            .collect())
    }

    pub(crate) fn create(&self, image: &str, replicas: usize) -> Result<()> {
        let spec = json!({
            "Name": SERVICE,
            "TaskTemplate": {"ContainerSpec": {
                "Image": image,
                "Command": ["sleep", "1d"],
                // `sleep` as PID 1 ignores SIGTERM: without this both sides would wait
                // the 10 s grace period on scale-down.
                "StopSignal": "SIGKILL"
            }},
            "Mode": {"Replicated": {"Replicas": replicas}}
        });
        let (code, v) = self.call("POST", "/services/create", Some(&spec))?;
        ensure!(code == 201, "service create: {code} {v}");
        Ok(())
    }

    pub(crate) fn scale(&self, replicas: usize) -> Result<()> {
        let s = self.ok("GET", &format!("/services/{SERVICE}"), None)?;
        let mut spec = s["Spec"].clone();
        spec["Mode"]["Replicated"]["Replicas"] = json!(replicas);
        let version = s["Version"]["Index"].as_u64().unwrap_or(0);
        self.ok(
            "POST",
            &format!("/services/{SERVICE}/update?version={version}"),
            Some(&spec),
        )?;
        Ok(())
    }
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) fn wait_for<T>(what: &str, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + DEADLINE;
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
        std::thread::sleep(POLL);
    }
}

fn alive(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The create and scale-down timings, the same for both contenders: `containers` counts
/// the service's containers as the contender keeps them; `idle` runs between the two,
/// with every task running (the RSS reading).
fn timings(
    api: &Api,
    image: &str,
    replicas: usize,
    containers: impl Fn() -> Result<usize>,
    idle: impl FnOnce() -> Result<()>,
    f: &mut Figures,
) -> Result<()> {
    let start = Instant::now();
    api.create(image, replicas)?;
    let pids = wait_for(&format!("{replicas} running tasks"), || {
        let r = api.running()?;
        Ok((r.len() == replicas).then_some(r))
    })?;
    f.up = Some(start.elapsed());
    idle()?;

    let start = Instant::now();
    api.scale(0)?;
    wait_for("every container gone", || {
        Ok((containers()? == 0 && !pids.iter().any(|p| alive(*p))).then_some(()))
    })?;
    f.down = Some(start.elapsed());
    Ok(())
}

/// VmRSS of a process in KiB (0 if gone).
/// Every process as (pid, comm, NUL-separated cmdline turned into spaces).
fn processes() -> Vec<(i32, String, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            Some((pid, comm.trim().to_string(), cmd))
        })
        .collect()
}

/// Let the daemons settle, then read the RSS figures.
fn settle() {
    std::thread::sleep(Duration::from_secs(3));
}

// --------------------------------------------------------------------------------------
// Ours.

pub(crate) struct Swarmd {
    child: Child,
    cgroup: String,
    /// Its data dir: what swarmd mounted there (network namespaces) is unmounted on drop.
    data: PathBuf,
}

impl Drop for Swarmd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(POLL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Leave nothing running: kill every process left in this run's cgroup.
        let mut roots: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        roots.push("/sys/fs/cgroup".into());
        for root in roots {
            let dir = root.join(&self.cgroup);
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten().filter(|e| e.path().is_dir()) {
                    if let Ok(procs) = std::fs::read_to_string(e.path().join("cgroup.procs")) {
                        for pid in procs.lines().filter_map(|p| p.parse::<i32>().ok()) {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                        }
                    }
                    std::thread::sleep(Duration::from_millis(50));
                    let _ = std::fs::remove_dir(e.path());
                }
            }
            let _ = std::fs::remove_dir(&dir);
        }
        // swarmd keeps its network namespaces (bind mounts) across restarts; a stopped
        // bench leaves none: an overlay's namespace would keep its VXLAN socket (VNI and
        // port 4789) in the host, and the next run's overlay, or Docker's, would fail.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| Path::new(m).starts_with(&self.data))
            .collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in under {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Our side, started: swarmd (its own data dir, socket and cgroup parent) with the
/// busybox image in its store, a single-node swarm.
pub(crate) struct Ours {
    pub(crate) guard: Swarmd,
    pub(crate) api: Api,
    /// The image reference to run: by tag, or by digest when pinned.
    pub(crate) image: String,
    pub(crate) data: PathBuf,
    pub(crate) pid: i32,
    pub(crate) swarmd: PathBuf,
}

pub(crate) fn start_ours(tmp: &Path, pinned: bool) -> Result<Ours> {
    start_ours_with(tmp, pinned, &[])
}

/// [`start_ours`] with more flags for swarmd (`--web-addr`).
pub(crate) fn start_ours_with(tmp: &Path, pinned: bool, extra: &[&str]) -> Result<Ours> {
    let data = tmp.join("swarmd");
    let socket = tmp.join("swarm.sock");
    std::fs::create_dir_all(&data)?;

    // The busybox image, loaded into swarmd's store from an OCI archive (no registry).
    let image = "bench/busybox:1";
    let layout_dir = tmp.join("layout");
    let (layout, built) = rootfs_tests::busybox::busybox_layout(
        &layout_dir,
        image,
        "1",
        rootfs_tests::busybox::default_config(),
    )?;
    let archive = tmp.join("busybox.tar");
    layout.write_tar(&archive, false)?;
    swarm_runtime::image::ImageStore::open(data.join("image"))?.load_oci_archive(&archive)?;

    // By tag, as Docker gets its imported image: each task first tries the registry
    // (docker.io here, unreachable) and falls back to the local image, on both sides.
    // Pinned by digest, the local image is used without asking a registry.
    let image = if pinned {
        format!("{image}@{}", built.manifest_digest)
    } else {
        image.to_string()
    };
    let swarmd = rootfs_tests::workspace_bin("swarmd");
    let log = std::fs::File::create(tmp.join("swarmd.log"))?;
    let cgroup = format!("swarm-bench-services-{}", std::process::id());
    let child = Command::new(&swarmd)
        .arg("--data-dir")
        .arg(&data)
        .arg("--socket")
        .arg(&socket)
        .args(["--cgroup-parent", &cgroup, "--hostname", "bench-node"])
        .args([
            "--listen-addr",
            &format!("127.0.0.1:{}", rootfs_tests::registry::free_port()?),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let pid = child.id() as i32;
    let guard = Swarmd {
        child,
        cgroup,
        data: data.clone(),
    };
    let api = Api {
        socket,
        prefix: "/v1.47",
    };
    wait_for("the API", || {
        Ok(api.call("GET", "/_ping", None).is_ok().then_some(()))
    })?;
    api.ok("POST", "/swarm/init", Some(&json!({})))?;
    Ok(Ours {
        guard,
        api,
        image,
        data,
        pid,
        swarmd,
    })
}

fn bench_ours(replicas: usize, tmp: &Path, pinned: bool) -> Result<Figures> {
    let Ours {
        guard,
        api,
        image,
        data,
        pid,
        swarmd,
    } = start_ours(tmp, pinned)?;
    let containers = || {
        Ok(std::fs::read_dir(data.join("containers"))
            .map(|d| d.count())
            .unwrap_or(0))
    };
    let mut f = Figures::default();
    let mut daemon_rss = Vec::new();
    let mut shims = (0, 0);
    let tag = data.to_string_lossy().into_owned();
    let idle = || {
        settle();
        daemon_rss.push(("swarmd".to_string(), crate::util::rss_kib(pid as u32)));
        // The libcontainer shims: this swarmd executable, one per container, started with
        // this run's data dir.
        for (p, _, cmd) in processes() {
            if p != pid && cmd.starts_with(&*swarmd.to_string_lossy()) && cmd.contains(&tag) {
                shims.0 += 1;
                shims.1 += crate::util::rss_kib(p as u32);
            }
        }
        Ok(())
    };
    let result = timings(&api, &image, replicas, containers, idle, &mut f);
    f.daemon_rss = daemon_rss;
    f.shims_rss = shims;
    if let Err(e) = result {
        let log = std::fs::read_to_string(tmp.join("swarmd.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        eprintln!(
            "swarmd log (last lines, newest first):\n{}",
            tail.join("\n")
        );
        return Err(e);
    }
    let _ = api.call("DELETE", &format!("/services/{SERVICE}"), None);
    drop(guard);
    Ok(f)
}

// --------------------------------------------------------------------------------------
// The peer: Docker Swarm.

pub(crate) const DOCKER_IMAGE: &str = "swarm-bench/busybox:latest";

/// Leaves Docker as found: what this run created, and only that, is removed on drop.
#[derive(Default)]
pub(crate) struct DockerGuard {
    image: bool,
    swarm: bool,
    networks_before: BTreeSet<String>,
    /// A stack to remove (with its containers) before leaving the swarm.
    pub(crate) stack: Option<String>,
}

pub(crate) fn docker(args: &[&str]) -> Result<String> {
    let out = Command::new("docker").args(args).output()?;
    ensure!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn networks() -> BTreeSet<String> {
    docker(&["network", "ls", "--format", "{{.Name}}"])
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

impl Drop for DockerGuard {
    fn drop(&mut self) {
        if self.swarm {
            let label = match &self.stack {
                Some(stack) => {
                    let _ = docker(&["stack", "rm", stack]);
                    format!("label=com.docker.stack.namespace={stack}")
                }
                None => {
                    let _ = docker(&["service", "rm", SERVICE]);
                    format!("label=com.docker.swarm.service.name={SERVICE}")
                }
            };
            // Wait for the containers to go before leaving.
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                let left = docker(&["ps", "-aq", "--filter", &label]).unwrap_or_default();
                if left.is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            if let Err(e) = docker(&["swarm", "leave", "--force"]) {
                eprintln!("cleanup: {e:#}");
            }
            // `swarm init` makes `ingress` (gone with the swarm) and `docker_gwbridge`
            // (kept): remove the networks that were not there before.
            for n in networks().difference(&self.networks_before) {
                if let Err(e) = docker(&["network", "rm", n]) {
                    eprintln!("cleanup: {e:#}");
                }
            }
        }
        if self.image {
            if let Err(e) = docker(&["rmi", DOCKER_IMAGE]) {
                eprintln!("cleanup: {e:#}");
            }
        }
    }
}

/// The peer, started: the busybox rootfs `docker import`ed, a single-node Docker swarm;
/// the guard leaves Docker as it was found.
pub(crate) fn start_docker(tmp: &Path) -> Result<(DockerGuard, Api)> {
    let state =
        docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).context("no Docker Engine")?;
    if state != "inactive" {
        bail!("the Docker Engine is already in a swarm ({state}); not touched");
    }
    ensure!(
        docker(&["image", "inspect", DOCKER_IMAGE]).is_err(),
        "{DOCKER_IMAGE} already exists; not touched"
    );
    let mut guard = DockerGuard {
        image: false,
        swarm: false,
        networks_before: networks(),
        stack: None,
    };

    // docker import of the same busybox rootfs.
    let rootfs = tmp.join("rootfs");
    rootfs_tests::busybox::rootfs(&rootfs)?;
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()?;
    guard.image = true;
    let status = Command::new("docker")
        .args(["import", "-", DOCKER_IMAGE])
        .stdin(tar.stdout.context("tar stdout")?)
        .stdout(Stdio::null())
        .status()?;
    ensure!(status.success(), "docker import failed");

    guard.swarm = true;
    docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"])?;

    let api = Api {
        socket: "/var/run/docker.sock".into(),
        prefix: "",
    };
    Ok((guard, api))
}

fn bench_docker(replicas: usize, tmp: &Path) -> Result<Figures> {
    let (guard, api) = start_docker(tmp)?;
    let label = format!("com.docker.swarm.service.name={SERVICE}");
    let ids = || -> Result<Vec<String>> {
        Ok(api
            .list("/containers/json?all=1", &json!({"label": [label]}))?
            .iter()
            .filter_map(|c| c["Id"].as_str().map(str::to_string))
            .collect())
    };
    let mut f = Figures::default();
    let mut daemon_rss = Vec::new();
    let mut shims = (0, 0);
    let idle = || {
        settle();
        for name in ["dockerd", "containerd"] {
            let pid = processes()
                .into_iter()
                .find(|p| p.1 == name)
                .with_context(|| format!("no {name} process"))?
                .0;
            daemon_rss.push((name.to_string(), crate::util::rss_kib(pid as u32)));
        }
        let ids = ids()?;
        for (p, comm, cmd) in processes() {
            if comm.starts_with("containerd-shim") && ids.iter().any(|id| cmd.contains(id)) {
                shims.0 += 1;
                shims.1 += crate::util::rss_kib(p as u32);
            }
        }
        Ok(())
    };
    let result = timings(
        &api,
        DOCKER_IMAGE,
        replicas,
        || Ok(ids()?.len()),
        idle,
        &mut f,
    );
    f.daemon_rss = daemon_rss;
    f.shims_rss = shims;
    result?;
    drop(guard);
    Ok(f)
}
