//! swarmd end to end on one machine: the real binary, a real registry, real containers,
//! driven over its unix socket with HTTP (curl), as the docker CLI would.
//!
//! init -> 3-replica busybox httpd service -> kill a container's process (replaced in
//! its slot) -> scale 5 -> 1 -> kill -9 swarmd right after a write and restart (the write
//! is back from `<data>/raft`, same tasks, same PIDs) -> service rm (every container gone).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rootfs_tests::busybox::{busybox_layout, default_config};
use rootfs_tests::registry::{ManifestKind, Registry};
use serde_json::{json, Value};

struct Swarmd {
    child: Option<Child>,
    data: PathBuf,
    socket: PathBuf,
    cgroup: String,
    registry: String,
    cluster_addr: String,
}

impl Swarmd {
    fn start(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.join("swarmd.log"))?;
        let child = Command::new(rootfs_tests::workspace_bin("swarmd"))
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--socket")
            .arg(&self.socket)
            .args(["--cgroup-parent", &self.cgroup])
            .args(["--insecure-registry", &self.registry])
            .args(["--hostname", "node-test"])
            .args(["--listen-addr", &self.cluster_addr])
            .env("RUST_LOG", "swarm_node=debug,info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        wait_for("the API", Duration::from_secs(20), || {
            Ok(self.call("GET", "/_ping", None).is_ok().then_some(()))
        })
    }

    fn kill9(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// One HTTP call; returns (status, JSON body or null).
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
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

    fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let (code, v) = self.call(method, path, body)?;
        ensure!((200..300).contains(&code), "{method} {path}: {code} {v}");
        Ok(v)
    }

    fn tasks(&self, service: &str) -> Result<Vec<Value>> {
        let f = format!("{{\"service\":{{\"{service}\":true}}}}");
        let path = format!("/tasks?filters={}", urlencode(&f));
        Ok(self
            .ok("GET", &path, None)?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Tasks that should run and do: (slot, task id, pid).
    fn running(&self, service: &str) -> Result<Vec<(u64, String, i64)>> {
        let mut out: Vec<_> = self
            .tasks(service)?
            .into_iter()
            .filter(|t| t["DesiredState"] == "running" && t["Status"]["State"] == "running")
            .map(|t| {
                (
                    t["Slot"].as_u64().unwrap_or(0),
                    t["ID"].as_str().unwrap_or("").to_string(),
                    t["Status"]["ContainerStatus"]["PID"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn containers(&self) -> Vec<String> {
        std::fs::read_dir(self.data.join("containers"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Swarmd {
    fn drop(&mut self) {
        let _ = self.kill9();
        // Leave nothing running: kill every container process of this test's cgroup.
        for ctrl in ["pids", "memory", "cpu", "unified"] {
            let dir = Path::new("/sys/fs/cgroup").join(ctrl).join(&self.cgroup);
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    if let Ok(procs) = std::fs::read_to_string(e.path().join("cgroup.procs")) {
                        for pid in procs.lines().filter_map(|p| p.parse::<i32>().ok()) {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                        }
                    }
                    let _ = std::fs::remove_dir(e.path());
                }
            }
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Poll a condition until it holds or the deadline passes (no sleep-and-hope).
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
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

fn alive(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn replicated_service_lifecycle() -> Result<()> {
    rootfs_tests::require_root();
    let tmp = tempfile::Builder::new().prefix("swarm-node-").tempdir()?;
    let registry = Registry::start()?;
    let (_layout, _) = busybox_layout(&tmp.path().join("layout"), "1", "1", default_config())?;
    registry.push(
        &tmp.path().join("layout"),
        "1",
        "busybox:1",
        ManifestKind::OciManifest,
    )?;
    let mut d = Swarmd {
        child: None,
        data: tmp.path().join("data"),
        socket: tmp.path().join("swarm.sock"),
        cgroup: format!("swarm-node-test-{}", std::process::id()),
        registry: registry.host(),
        cluster_addr: format!("127.0.0.1:{}", rootfs_tests::registry::free_port()?),
    };
    std::fs::create_dir_all(&d.data)?;
    d.start()?;

    // Before init: Docker's 503.
    let (code, v) = d.call("GET", "/services", None)?;
    ensure!(code == 503, "before init: {code} {v}");
    ensure!(v["message"]
        .as_str()
        .unwrap_or("")
        .starts_with("This node is not a swarm manager"));

    let node_id = d.ok(
        "POST",
        "/swarm/init",
        Some(&json!({"ListenAddr": "0.0.0.0:2377"})),
    )?;
    let info = d.ok("GET", "/info", None)?;
    ensure!(info["Swarm"]["NodeID"] == node_id && info["Swarm"]["LocalNodeState"] == "active");

    let image = format!("{}/busybox:1", registry.host());
    let spec = json!({
        "Name": "web",
        "TaskTemplate": {"ContainerSpec": {"Image": image, "Command": ["httpd"], "Args": ["-f", "-p", "8080"]},
                         "RestartPolicy": {"Condition": "any", "Delay": 100_000_000}},
        "Mode": {"Replicated": {"Replicas": 3}}
    });
    let (code, created) = d.call("POST", "/services/create", Some(&spec))?;
    ensure!(code == 201, "create: {code} {created}");
    let (code, v) = d.call("POST", "/services/create", Some(&spec))?;
    ensure!(code == 409, "duplicate name: {code} {v}");
    let (code, v) = d.call(
        "POST",
        "/services/create",
        Some(&json!({"Name": "bad", "TaskTemplate": {"ContainerSpec": {}}})),
    )?;
    ensure!(code == 400, "invalid spec: {code} {v}");
    let (code, v) = d.call("GET", "/services/nosuch", None)?;
    ensure!(
        code == 404 && v["message"] == "service nosuch not found",
        "{code} {v}"
    );

    // 1. Three tasks running, their containers' processes alive.
    let three = wait_for("3 running tasks", Duration::from_secs(60), || {
        let r = d.running("web")?;
        Ok((r.len() == 3 && r.iter().all(|t| t.2 > 0)).then_some(r))
    })?;
    ensure!(three.iter().map(|t| t.0).collect::<Vec<_>>() == [1, 2, 3]);
    for (_, id, pid) in &three {
        ensure!(alive(*pid), "task {id}: pid {pid} not alive");
        ensure!(d.containers().contains(id), "no container dir for {id}");
    }
    let svc = d.ok("GET", "/services?status=true", None)?;
    ensure!(svc[0]["ServiceStatus"]["RunningTasks"] == 3, "{svc}");

    // 2. Kill one container's process: a new task in the same slot.
    let (slot, old_id, pid) = three[1].clone();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    wait_for("the replacement", Duration::from_secs(60), || {
        let r = d.running("web")?;
        Ok((r.len() == 3 && r.iter().any(|t| t.0 == slot && t.1 != old_id)).then_some(()))
    })?;
    let old = d
        .tasks("web")?
        .into_iter()
        .find(|t| t["ID"] == old_id.as_str())
        .context("old task kept as history")?;
    ensure!(old["Status"]["State"] == "failed", "{old}");
    ensure!(old["Status"]["Err"] == "task: non-zero exit (137)", "{old}");

    // 3. Scale 5 then 1.
    for n in [5u64, 1] {
        let s = d.ok("GET", "/services/web", None)?;
        let mut spec = s["Spec"].clone();
        spec["Mode"]["Replicated"]["Replicas"] = json!(n);
        let version = s["Version"]["Index"].as_u64().unwrap_or(0);
        d.ok(
            "POST",
            &format!("/services/web/update?version={version}"),
            Some(&spec),
        )?;
        wait_for(&format!("{n} running"), Duration::from_secs(60), || {
            let r = d.running("web")?;
            let live = d
                .tasks("web")?
                .into_iter()
                .filter(|t| t["DesiredState"] == "running")
                .count();
            Ok((r.len() == n as usize && live == n as usize).then_some(()))
        })?;
    }
    // Removed slots' containers are gone (only slot 1's task and slot 2's failed history remain).
    let one = wait_for(
        "scaled-down containers removed",
        Duration::from_secs(60),
        || {
            let r = d.running("web")?;
            let tasks: Vec<String> = d
                .tasks("web")?
                .iter()
                .map(|t| t["ID"].as_str().unwrap_or("").to_string())
                .collect();
            let extra: Vec<String> = d
                .containers()
                .into_iter()
                .filter(|c| !tasks.contains(c))
                .collect();
            Ok((extra.is_empty() && tasks.len() <= 2).then_some(r))
        },
    )?;

    // 5. kill -9 swarmd and restart: same task, same container process. A service created
    // just before the kill comes back from Raft's log under <data>/raft, the manager's only
    // state on disk.
    let (code, canary) = d.call(
        "POST",
        "/services/create",
        Some(
            &json!({"Name": "canary", "TaskTemplate": {"ContainerSpec": {"Image": image}},
                     "Mode": {"Replicated": {"Replicas": 0}}}),
        ),
    )?;
    ensure!(code == 201, "create canary: {code} {canary}");
    d.kill9()?;
    ensure!(alive(one[0].2), "container died with swarmd");
    let raft = d.data.join("raft");
    ensure!(
        raft.join("raft-log.redb").is_file(),
        "no raft log in {}",
        raft.display()
    );
    ensure!(
        !d.data.join("manager").exists(),
        "a second copy of the manager's state"
    );
    d.start()?;
    let back = d.ok("GET", "/services/canary", None)?;
    ensure!(back["ID"] == canary["ID"], "canary after restart: {back}");
    let after = wait_for("the service after restart", Duration::from_secs(30), || {
        let r = d.running("web")?;
        Ok((r.len() == 1).then_some(r))
    })?;
    ensure!(after == one, "before {one:?}, after {after:?}");
    ensure!(alive(one[0].2));

    // 6. service rm: every container gone.
    d.ok("DELETE", "/services/web", None)?;
    wait_for("every container removed", Duration::from_secs(60), || {
        Ok(
            (d.containers().is_empty() && d.tasks("web").map_or(true, |t| t.is_empty()))
                .then_some(()),
        )
    })?;
    ensure!(
        !alive(one[0].2),
        "container process still alive after service rm"
    );
    Ok(())
}
