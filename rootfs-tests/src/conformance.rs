//! The container runtime conformance suite: the same checks run against every backend
//! (`tests/conformance_<backend>.rs`). Each check takes a [`Ctx`]: the runtime under test,
//! its config (a temp data dir, a cgroup parent of its own) and a busybox image built
//! locally, so nothing depends on a registry. Checks wait on conditions with deadlines,
//! and [`run`] removes every container a check made, also when it fails.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use futures::StreamExt;
use swarm_runtime::container::health::{Health, HealthMonitor};
use swarm_runtime::container::logs::{self, LogStream, ReadOptions};
use swarm_runtime::container::{
    ContainerRuntime, ContainerSpec, FileMount, Mount, MountKind, Resources, RuntimeConfig, Status,
};
use swarm_runtime::image::{HealthConfig, Image, ImageConfig};

/// Makes a fresh runtime over the same config: what a restarted node does.
pub type Reopen = Arc<dyn Fn() -> Arc<dyn ContainerRuntime> + Send + Sync>;
/// A command that creates and starts the container described by the JSON spec file,
/// prints its pid on one line, then blocks until killed: a node process to `kill -9`.
pub type Creator = Arc<dyn Fn(&Path) -> std::process::Command + Send + Sync>;

pub struct Ctx {
    pub rt: Arc<dyn ContainerRuntime>,
    pub cfg: RuntimeConfig,
    /// Busybox, one layer, a plain config (PATH and one env var).
    pub image: Image,
    pub reopen: Reopen,
    pub creator: Creator,
    /// Scratch space for the checks (bind sources, spec files).
    pub scratch: PathBuf,
    ids: Mutex<Vec<String>>,
    _tmp: tempfile::TempDir,
}

impl Ctx {
    /// `make(cfg)` builds the backend under test over `cfg`.
    pub fn new(
        name: &str,
        shim_exe: PathBuf,
        make: impl Fn(&RuntimeConfig) -> Arc<dyn ContainerRuntime> + Send + Sync + 'static,
        creator: Creator,
    ) -> Result<Ctx> {
        crate::require_root();
        let tmp = tempfile::Builder::new().prefix("swarm-conf-").tempdir()?;
        let layer = tmp.path().join("layer");
        crate::busybox::rootfs(&layer)?;
        let scratch = tmp.path().join("scratch");
        std::fs::create_dir(&scratch)?;
        let cfg = RuntimeConfig {
            data_dir: tmp.path().join("data"),
            cgroup_parent: format!("swarm-conf-{}-{name}", std::process::id()),
            shim_exe,
        };
        let image = Image {
            reference: "conformance/busybox:1".into(),
            digest: "sha256:0".into(),
            config_digest: "sha256:0".into(),
            config: ImageConfig {
                cmd: vec!["sh".into()],
                env: vec![
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                    "FROM_IMAGE=image".into(),
                ],
                ..Default::default()
            },
            layers: vec![layer],
        };
        let make = Arc::new(make);
        let rt = make(&cfg);
        let cfg2 = cfg.clone();
        let reopen: Reopen = Arc::new(move || make(&cfg2));
        Ok(Ctx {
            rt,
            cfg,
            image,
            reopen,
            creator,
            scratch,
            ids: Mutex::new(Vec::new()),
            _tmp: tmp,
        })
    }

    /// A container spec with a fresh id (remembered for cleanup) running `sh -c script`.
    pub fn spec(&self, name: &str, script: &str) -> ContainerSpec {
        let id = format!("{name}-{}", self.ids.lock().unwrap().len());
        self.ids.lock().unwrap().push(id.clone());
        ContainerSpec {
            id,
            image: Some(self.image.clone()),
            args: vec!["sh".into(), "-c".into(), script.into()],
            ..Default::default()
        }
    }

    /// Create, start, wait; returns the exit code and the log text.
    pub async fn run_to_exit(&self, spec: &ContainerSpec) -> Result<(i32, String)> {
        self.rt.create(spec).await?;
        self.rt.start(&spec.id).await?;
        let exit = tokio::time::timeout(Duration::from_secs(60), self.rt.wait(&spec.id))
            .await
            .context("container did not exit within 60 s")??;
        Ok((exit.code, self.log_text(&spec.id).await?))
    }

    /// The whole log so far, stdout and stderr interleaved.
    pub async fn log_text(&self, id: &str) -> Result<String> {
        let entries: Vec<_> = logs::read(self.rt.log_path(id), ReadOptions::default())
            .collect()
            .await;
        let mut s = String::new();
        for e in entries {
            s.push_str(&String::from_utf8_lossy(&e?.line));
        }
        Ok(s)
    }

    /// Remove every container made through [`Ctx::spec`] and this run's cgroup parent.
    pub async fn cleanup(&self) {
        let ids = self.ids.lock().unwrap().clone();
        for id in ids {
            match self.rt.remove(&id).await {
                Ok(()) | Err(swarm_runtime::Error::NoSuchContainer(_)) => {}
                Err(e) => eprintln!("cleanup: remove {id}: {e}"),
            }
        }
        for d in cgroup_roots() {
            let _ = std::fs::remove_dir(d.join(&self.cfg.cgroup_parent));
        }
    }
}

/// Run one check, then clean up whatever it left, whether it passed or not.
pub async fn run<'a, F, Fut>(ctx: &'a Ctx, check: F) -> Result<()>
where
    F: FnOnce(&'a Ctx) -> Fut,
    Fut: Future<Output = Result<()>> + 'a,
{
    let r = check(ctx).await;
    ctx.cleanup().await;
    r
}

/// Every cgroup hierarchy root: the v2 root, or each v1 controller and the hybrid
/// `unified`.
fn cgroup_roots() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

async fn until<F: FnMut() -> Fut, Fut: Future<Output = bool>>(
    what: &str,
    timeout: Duration,
    mut cond: F,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut wait = Duration::from_millis(10);
    loop {
        if cond().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(200));
    }
}

// ---- the checks ----

pub async fn exit_codes(ctx: &Ctx) -> Result<()> {
    let (code, _) = ctx.run_to_exit(&ctx.spec("exit", "exit 7")).await?;
    ensure!(code == 7, "exit 7 reported as {code}");
    let (code, _) = ctx.run_to_exit(&ctx.spec("exit", "true")).await?;
    ensure!(code == 0, "true reported as {code}");
    // Killed from outside (a PID 1 cannot SIGKILL itself): 128 + 9.
    let s = ctx.spec("exit", "exec sleep 1000");
    ctx.rt.create(&s).await?;
    ctx.rt.start(&s.id).await?;
    ctx.rt.kill(&s.id, "KILL").await?;
    let code = tokio::time::timeout(Duration::from_secs(30), ctx.rt.wait(&s.id))
        .await??
        .code;
    ensure!(code == 137, "SIGKILL reported as {code}, want 137");
    let s = ctx.spec("exit", "exit 3");
    ctx.run_to_exit(&s).await?;
    let st = ctx.rt.state(&s.id).await?;
    ensure!(st.status == Status::Exited && st.exit.map(|e| e.code) == Some(3));
    Ok(())
}

const SHOW: &str =
    "echo \"env=$FROM_IMAGE,$FROM_SPEC uid=$(id -u) gid=$(id -g) pwd=$(pwd) home=$HOME\"";

pub async fn env_user_workdir_from_image(ctx: &Ctx) -> Result<()> {
    let mut spec = ctx.spec("imgcfg", SHOW);
    let img = spec.image.as_mut().unwrap();
    img.config.user = "app".into();
    img.config.working_dir = "/home/app/work".into();
    img.config.env.push("FROM_SPEC=image-too".into());
    let (code, log) = ctx.run_to_exit(&spec).await?;
    ensure!(code == 0, "exit {code}: {log}");
    ensure!(
        log.trim() == "env=image,image-too uid=1000 gid=1000 pwd=/home/app/work home=/home/app",
        "got {log:?}"
    );
    Ok(())
}

pub async fn env_user_workdir_overrides(ctx: &Ctx) -> Result<()> {
    let mut spec = ctx.spec("override", SHOW);
    let img = spec.image.as_mut().unwrap();
    img.config.user = "app".into();
    img.config.working_dir = "/home/app".into();
    img.config.env.push("FROM_SPEC=image".into());
    spec.env = vec!["FROM_SPEC=spec".into()];
    spec.user = Some("nobody:app".into());
    spec.workdir = Some("/tmp".into());
    let (code, log) = ctx.run_to_exit(&spec).await?;
    ensure!(code == 0, "exit {code}: {log}");
    ensure!(
        log.trim() == "env=image,spec uid=65534 gid=1000 pwd=/tmp home=/nonexistent",
        "got {log:?}"
    );
    // Numeric ids need no passwd entry.
    let mut spec = ctx.spec("override", "echo $(id -u):$(id -g)");
    spec.user = Some("4242:4343".into());
    let (_, log) = ctx.run_to_exit(&spec).await?;
    ensure!(log.trim() == "4242:4343", "got {log:?}");
    Ok(())
}

pub async fn memory_limit_oom(ctx: &Ctx) -> Result<()> {
    // `tail` keeps the current line in memory, and /dev/zero has no newline.
    let mut spec = ctx.spec("oom", "tail /dev/zero");
    spec.resources = Resources {
        memory_bytes: 32 << 20,
        ..Default::default()
    };
    ctx.rt.create(&spec).await?;
    ctx.rt.start(&spec.id).await?;
    let exit = tokio::time::timeout(Duration::from_secs(60), ctx.rt.wait(&spec.id)).await??;
    ensure!(exit.code == 137, "exit code {} (want 137)", exit.code);
    ensure!(exit.oom_killed, "not reported oom_killed: {exit:?}");
    // The same limit without a hog: not OOM-killed.
    let mut spec = ctx.spec("oom", "exit 0");
    spec.resources.memory_bytes = 32 << 20;
    ctx.run_to_exit(&spec).await?;
    ensure!(!ctx.rt.wait(&spec.id).await?.oom_killed);
    Ok(())
}

pub async fn pids_limit(ctx: &Ctx) -> Result<()> {
    let mut spec = ctx.spec(
        "pids",
        "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; \
         for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done 2>&1; echo done",
    );
    spec.resources.pids = 8;
    let (_, log) = ctx.run_to_exit(&spec).await?;
    ensure!(log.lines().next() == Some("8"), "pids.max not 8: {log:?}");
    ensure!(
        log.contains("can't fork"),
        "forks past the limit succeeded: {log:?}"
    );
    Ok(())
}

pub async fn cpu_quota(ctx: &Ctx) -> Result<()> {
    let mut spec = ctx.spec(
        "cpu",
        "cat /sys/fs/cgroup/cpu.max 2>/dev/null || \
         echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)",
    );
    spec.resources.nano_cpus = 500_000_000;
    let (code, log) = ctx.run_to_exit(&spec).await?;
    ensure!(
        code == 0 && log.trim() == "50000 100000",
        "cpu quota: {log:?}"
    );
    Ok(())
}

pub async fn read_only_rootfs(ctx: &Ctx) -> Result<()> {
    let mut spec = ctx.spec(
        "ro",
        "touch /x 2>/dev/null && echo rootfs-writable; touch /dev/shm/x && echo shm-ok",
    );
    spec.read_only = true;
    let (_, log) = ctx.run_to_exit(&spec).await?;
    ensure!(log.trim() == "shm-ok", "got {log:?}");
    let (_, log) = ctx
        .run_to_exit(&ctx.spec("rw", "touch /x && echo ok"))
        .await?;
    ensure!(log.trim() == "ok", "rw rootfs: {log:?}");
    Ok(())
}

/// `--hostname`, `--dns*`, `--host`: the container's /etc/hostname, /etc/hosts and
/// /etc/resolv.conf as Docker writes them, writable as Docker mounts them; without DNS
/// options, the host's resolv.conf less its localhost nameservers.
pub async fn etc_files(ctx: &Ctx) -> Result<()> {
    let script = "hostname; cat /etc/hostname; echo ---; cat /etc/hosts; echo ---; \
                  cat /etc/resolv.conf; echo ---; echo '# added' >> /etc/hosts && echo hosts-rw";
    let mut spec = ctx.spec("etc", script);
    spec.hostname = Some("web-1".into());
    spec.dns = swarm_runtime::container::DnsConfig {
        nameservers: vec!["10.9.8.7".into(), "10.9.8.6".into()],
        search: vec!["svc.example".into()],
        options: vec!["ndots:2".into(), "timeout:1".into()],
    };
    spec.extra_hosts = vec!["10.0.0.5 db database".into()];
    let (code, log) = ctx.run_to_exit(&spec).await?;
    ensure!(code == 0, "exit {code}: {log}");
    let want = "web-1\nweb-1\n---\n\
        127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
        fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
        ff02::2\tip6-allrouters\n10.0.0.5\tdb\n10.0.0.5\tdatabase\n---\n\
        search svc.example\nnameserver 10.9.8.7\nnameserver 10.9.8.6\n\
        options ndots:2 timeout:1\n---\nhosts-rw\n";
    ensure!(log == want, "got {log:?}\nwant {want:?}");

    // No DNS options: the host's file, its localhost nameservers dropped.
    let (code, log) = ctx
        .run_to_exit(&ctx.spec("etc", "cat /etc/resolv.conf"))
        .await?;
    ensure!(code == 0, "exit {code}: {log}");
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let kept: Vec<&str> = host
        .lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            !(w.next() == Some("nameserver")
                && w.next()
                    .is_some_and(|ip| ip.starts_with("127.") || ip == "::1"))
        })
        .collect();
    for line in kept {
        ensure!(
            log.lines().any(|l| l == line),
            "{line:?} missing from {log:?}"
        );
    }
    ensure!(
        !log.contains("nameserver 127."),
        "a localhost nameserver in {log:?}"
    );
    ensure!(log.contains("nameserver "), "no nameserver in {log:?}");
    Ok(())
}

pub async fn mounts(ctx: &Ctx) -> Result<()> {
    let src = ctx.scratch.join("bind-src");
    std::fs::create_dir_all(&src)?;
    std::fs::write(src.join("hello"), "from-host\n")?;
    let vol = format!("vol{}", std::process::id());
    let mk = |kind, source: &str, target: &str, ro, size| Mount {
        kind,
        source: source.into(),
        target: target.into(),
        read_only: ro,
        tmpfs_size: size,
    };
    let mut spec = ctx.spec(
        "mounts",
        "cat /bind/hello; touch /bind/x 2>/dev/null && echo bind-writable; \
         echo data > /vol/file; grep ' /scratch ' /proc/mounts | cut -d' ' -f3,4",
    );
    spec.mounts = vec![
        mk(MountKind::Bind, src.to_str().unwrap(), "/bind", true, 0),
        mk(MountKind::Volume, &vol, "/vol", false, 0),
        mk(MountKind::Tmpfs, "", "/scratch", false, 1 << 20),
    ];
    let (code, log) = ctx.run_to_exit(&spec).await?;
    ensure!(code == 0, "exit {code}: {log}");
    let lines: Vec<&str> = log.lines().collect();
    ensure!(lines.first() == Some(&"from-host"), "bind: {log:?}");
    ensure!(
        !log.contains("bind-writable"),
        "read-only bind was writable"
    );
    ensure!(
        lines
            .get(1)
            .is_some_and(|l| l.starts_with("tmpfs ") && l.contains("size=1024k")),
        "tmpfs: {log:?}"
    );
    // The volume outlives the container and is shared with the next one.
    let mut spec = ctx.spec("mounts", "cat /vol/file");
    spec.mounts = vec![mk(MountKind::Volume, &vol, "/vol", true, 0)];
    let (_, log) = ctx.run_to_exit(&spec).await?;
    ensure!(log.trim() == "data", "volume content: {log:?}");
    let on_host = ctx
        .cfg
        .data_dir
        .join("volumes")
        .join(&vol)
        .join("_data/file");
    ensure!(on_host.exists(), "{} missing", on_host.display());
    // A missing bind source is refused with Docker's words.
    let mut spec = ctx.spec("mounts", "true");
    spec.mounts = vec![mk(MountKind::Bind, "/nonexistent-swarm", "/x", false, 0)];
    let err = ctx
        .rt
        .create(&spec)
        .await
        .err()
        .context("bad bind accepted")?;
    ensure!(
        err.to_string().contains(
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-swarm"
        ),
        "got {err}"
    );
    Ok(())
}

/// Every regular file under `dir` that contains `needle`, not descending into tmpfs
/// mounts, nor into overlay mounts (their upper dirs are searched directly).
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let skip: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            let fstype = f.get(sep + 1)?;
            (*fstype == "tmpfs" || *fstype == "overlay").then(|| PathBuf::from(f[4]))
        })
        .collect();
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if !skip.contains(&p) {
                    stack.push(p);
                }
            } else if ft.is_file() {
                if let Ok(data) = std::fs::read(&p) {
                    if data.windows(needle.len()).any(|w| w == needle) {
                        found.push(p);
                    }
                }
            }
        }
    }
    found
}

pub async fn secret_in_memory_only(ctx: &Ctx) -> Result<()> {
    let secret = format!("s3cr3t-{}-{}", std::process::id(), chrono_nanos());
    let mut spec = ctx.spec(
        "secret",
        "sha256sum < /run/secrets/db | cut -d' ' -f1; stat -c '%u %g %a' /run/secrets/db; \
         (echo x > /run/secrets/db) 2>/dev/null && echo writable; \
         while [ ! -f /tmp/done ]; do sleep 0.05; done",
    );
    spec.files = vec![FileMount {
        target: "/run/secrets/db".into(),
        data: secret.as_bytes().to_vec(),
        uid: 1000,
        gid: 1000,
        mode: 0o440,
    }];
    // The log is on disk: the container shows a digest of the secret, never the secret.
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes()));
    ctx.rt.create(&spec).await?;
    ctx.rt.start(&spec.id).await?;
    let id = spec.id.clone();
    until("secret output", Duration::from_secs(20), || async {
        ctx.log_text(&id)
            .await
            .map(|l| l.lines().count() >= 2)
            .unwrap_or(false)
    })
    .await?;
    let log = ctx.log_text(&id).await?;
    ensure!(
        log.lines().take(2).collect::<Vec<_>>() == [digest.as_str(), "1000 1000 440"],
        "secret in container: {log:?}"
    );
    ensure!(!log.contains("writable"), "secret was writable");
    // While it runs: on no disk path under the data dir, and present on a tmpfs there.
    let on_disk = files_containing(&ctx.cfg.data_dir, secret.as_bytes());
    ensure!(on_disk.is_empty(), "secret written to disk: {on_disk:?}");
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let data_dir = ctx.cfg.data_dir.to_string_lossy().into_owned();
    let in_tmpfs = info.lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-").unwrap_or(0);
        f.get(sep + 1) == Some(&"tmpfs")
            && f[4].starts_with(&data_dir)
            && !files_containing_shallow(Path::new(f[4]), secret.as_bytes()).is_empty()
    });
    ensure!(in_tmpfs, "secret not found on a tmpfs under the data dir");
    ctx.rt.exec(&id, &exec(&["touch", "/tmp/done"])).await?;
    tokio::time::timeout(Duration::from_secs(20), ctx.rt.wait(&id)).await??;
    Ok(())
}

fn files_containing_shallow(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|d| d.windows(needle.len()).any(|w| w == needle))
            {
                found.push(p);
            }
        }
    }
    found
}

fn chrono_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn exec(args: &[&str]) -> swarm_runtime::container::ExecSpec {
    swarm_runtime::container::ExecSpec {
        args: args.iter().map(|s| s.to_string()).collect(),
        timeout: Some(Duration::from_secs(10)),
        ..Default::default()
    }
}

pub async fn logs_follow(ctx: &Ctx) -> Result<()> {
    let spec = ctx.spec(
        "logs",
        "for i in 1 2 3; do echo line$i; sleep 0.1; done; echo oops >&2; printf partial",
    );
    ctx.rt.create(&spec).await?;
    // Follow from before the start: everything arrives, then the stream ends at exit.
    let rt = ctx.rt.clone();
    let id = spec.id.clone();
    let stream = logs::read(
        ctx.rt.log_path(&spec.id),
        ReadOptions {
            tail: None,
            follow: true,
            until: Some(Box::pin(async move {
                let _ = rt.wait(&id).await;
            })),
        },
    );
    ctx.rt.start(&spec.id).await?;
    let entries: Vec<_> = tokio::time::timeout(Duration::from_secs(30), stream.collect::<Vec<_>>())
        .await
        .context("follow did not end after the container exited")?;
    let got: Vec<(LogStream, String)> = entries
        .into_iter()
        .map(|e| e.map(|e| (e.stream, String::from_utf8_lossy(&e.line).into_owned())))
        .collect::<std::io::Result<_>>()?;
    let want = vec![
        (LogStream::Stdout, "line1\n".to_string()),
        (LogStream::Stdout, "line2\n".into()),
        (LogStream::Stdout, "line3\n".into()),
        (LogStream::Stderr, "oops\n".into()),
        (LogStream::Stdout, "partial".into()),
    ];
    ensure!(got == want, "followed {got:?}");
    Ok(())
}

pub async fn health_unhealthy(ctx: &Ctx) -> Result<()> {
    let spec = ctx.spec("health", "touch /tmp/healthy; sleep 1000");
    ctx.rt.create(&spec).await?;
    ctx.rt.start(&spec.id).await?;
    let mon = HealthMonitor::spawn(
        ctx.rt.clone(),
        spec.id.clone(),
        HealthConfig {
            test: vec!["CMD-SHELL".into(), "cat /tmp/healthy".into()],
            interval: Duration::from_millis(200),
            timeout: Duration::from_secs(5),
            start_period: Duration::ZERO,
            retries: 2,
        },
    );
    let mut rx = mon.watch();
    tokio::time::timeout(
        Duration::from_secs(30),
        rx.wait_for(|s| s.status == Health::Healthy),
    )
    .await
    .context("never healthy")??;
    ctx.rt
        .exec(&spec.id, &exec(&["rm", "/tmp/healthy"]))
        .await?;
    let st = tokio::time::timeout(
        Duration::from_secs(30),
        rx.wait_for(|s| s.status == Health::Unhealthy),
    )
    .await
    .context("never unhealthy")??
    .clone();
    ensure!(st.failing_streak >= 2, "{st:?}");
    let last = st.log.back().context("no probe log")?;
    ensure!(
        last.exit_code == 1 && last.output.contains("No such file"),
        "{last:?}"
    );
    Ok(())
}

pub async fn exec_in_container(ctx: &Ctx) -> Result<()> {
    let spec = ctx.spec("exec", "sleep 1000");
    ctx.rt.create(&spec).await?;
    ctx.rt.start(&spec.id).await?;
    let mut e = exec(&["sh", "-c", "echo $FROM_IMAGE $X $(id -u) $(pwd); exit 4"]);
    e.env = vec!["X=y".into()];
    e.user = Some("app".into());
    e.workdir = Some("/tmp".into());
    let out = ctx.rt.exec(&spec.id, &e).await?;
    ensure!(out.exit_code == 4, "{out:?}");
    ensure!(
        String::from_utf8_lossy(&out.output) == "image y 1000 /tmp\n",
        "{out:?}"
    );
    // Output is capped, a slow probe times out.
    let out = ctx
        .rt
        .exec(&spec.id, &exec(&["sh", "-c", "head -c 100000 /dev/zero"]))
        .await?;
    ensure!(
        out.output.len() == 4096,
        "output not capped: {}",
        out.output.len()
    );
    let mut slow = exec(&["sleep", "100"]);
    slow.timeout = Some(Duration::from_millis(300));
    let t = Instant::now();
    let out = ctx.rt.exec(&spec.id, &slow).await?;
    ensure!(
        out.timed_out && t.elapsed() < Duration::from_secs(10),
        "{out:?}"
    );
    let err = ctx
        .rt
        .exec(&spec.id, &exec(&["nosuchcmd"]))
        .await
        .err()
        .context("exec of a missing command")?;
    ensure!(
        err.to_string()
            .contains("executable file not found in $PATH"),
        "{err}"
    );
    Ok(())
}

pub async fn stop_grace_then_kill(ctx: &Ctx) -> Result<()> {
    // PID 1 without a handler ignores SIGTERM: killed after the grace period.
    let stubborn = ctx.spec("stop", "exec sleep 1000");
    ctx.rt.create(&stubborn).await?;
    ctx.rt.start(&stubborn.id).await?;
    let t = Instant::now();
    let exit = ctx
        .rt
        .stop(&stubborn.id, None, Duration::from_secs(1))
        .await?;
    let took = t.elapsed();
    ensure!(exit.code == 137, "stubborn exit {}", exit.code);
    ensure!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(15),
        "took {took:?}"
    );
    // One that honours SIGTERM exits early with its own code.
    let polite = ctx.spec(
        "stop",
        "trap 'exit 42' TERM; echo ready; while true; do sleep 0.05; done",
    );
    ctx.rt.create(&polite).await?;
    ctx.rt.start(&polite.id).await?;
    // Until the trap is set, SIGTERM to a PID 1 is ignored.
    until("trap set", Duration::from_secs(20), || async {
        ctx.log_text(&polite.id)
            .await
            .is_ok_and(|l| l.contains("ready"))
    })
    .await?;
    let t = Instant::now();
    let exit = ctx
        .rt
        .stop(&polite.id, None, Duration::from_secs(30))
        .await?;
    ensure!(exit.code == 42, "polite exit {}", exit.code);
    ensure!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    Ok(())
}

pub async fn adoption_after_caller_killed(ctx: &Ctx) -> Result<()> {
    let ctl = ctx.scratch.join("adopt-ctl");
    std::fs::create_dir_all(&ctl)?;
    let mut spec = ctx.spec(
        "adopt",
        "echo up; while [ ! -f /ctl/go ]; do sleep 0.05; done; exit 5",
    );
    spec.mounts = vec![Mount {
        kind: MountKind::Bind,
        source: ctl.to_string_lossy().into_owned(),
        target: "/ctl".into(),
        read_only: true,
        tmpfs_size: 0,
    }];
    let spec_file = ctx.scratch.join(format!("{}.json", spec.id));
    std::fs::write(&spec_file, serde_json::to_vec(&spec)?)?;
    let mut cmd = (ctx.creator)(&spec_file);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("spawn creator")?;
    let mut line = String::new();
    {
        use std::io::BufRead;
        let out = child.stdout.take().unwrap();
        let mut r = std::io::BufReader::new(out);
        let read = tokio::task::spawn_blocking(move || r.read_line(&mut line).map(|_| line));
        line = tokio::time::timeout(Duration::from_secs(60), read).await???;
    }
    let pid: i32 = line
        .trim()
        .parse()
        .with_context(|| format!("creator said {line:?}"))?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    child.wait()?;

    let rt = (ctx.reopen)();
    let list = rt.list().await?;
    let st = list
        .iter()
        .find(|s| s.id == spec.id)
        .with_context(|| format!("{} not listed after restart: {list:?}", spec.id))?;
    ensure!(st.status == Status::Running, "{st:?}");
    ensure!(st.pid == Some(pid), "pid {:?}, creator said {pid}", st.pid);
    ensure!(
        std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok(),
        "container process gone"
    );
    std::fs::write(ctl.join("go"), "")?;
    let exit = tokio::time::timeout(Duration::from_secs(30), rt.wait(&spec.id)).await??;
    ensure!(exit.code == 5, "adopted exit {}", exit.code);
    // Another fresh runtime still reads the exit code.
    let again = (ctx.reopen)().state(&spec.id).await?;
    ensure!(again.status == Status::Exited && again.exit.map(|e| e.code) == Some(5));
    ensure!(ctx.log_text(&spec.id).await?.contains("up"));
    Ok(())
}

pub async fn init_reaper(ctx: &Ctx) -> Result<()> {
    let mut spec = ctx.spec(
        "init",
        "tr '\\0' ' ' < /proc/1/cmdline; echo; (sleep 0.1 &); sleep 0.5; \
         ps -o stat,comm | grep -c '^Z' ; exit 3",
    );
    spec.init = true;
    let (code, log) = ctx.run_to_exit(&spec).await?;
    let lines: Vec<&str> = log.lines().collect();
    ensure!(code == 3, "exit {code}: {log}");
    ensure!(
        lines
            .first()
            .is_some_and(|l| l.contains("init") && !l.starts_with("sh ")),
        "PID 1 is not the reaper: {log:?}"
    );
    ensure!(lines.get(1) == Some(&"0"), "zombies left: {log:?}");
    // Without --init the command is PID 1.
    let (_, log) = ctx
        .run_to_exit(&ctx.spec("init", "tr '\\0' ' ' < /proc/1/cmdline; true"))
        .await?;
    ensure!(log.starts_with("sh -c"), "{log:?}");
    Ok(())
}

fn cap_eff(log: &str) -> Result<u64> {
    let hex = log
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .context("no CapEff")?;
    Ok(u64::from_str_radix(hex.trim(), 16)?)
}

pub async fn capabilities(ctx: &Ctx) -> Result<()> {
    const CHOWN: u64 = 1 << 0;
    const NET_ADMIN: u64 = 1 << 12;
    const NET_RAW: u64 = 1 << 13;
    const SYS_ADMIN: u64 = 1 << 21;
    let (_, log) = ctx
        .run_to_exit(&ctx.spec("caps", "grep CapEff /proc/self/status"))
        .await?;
    let caps = cap_eff(&log)?;
    ensure!(caps.count_ones() == 14, "default set: {caps:#x}");
    ensure!(caps & CHOWN != 0 && caps & NET_RAW != 0 && caps & SYS_ADMIN == 0);
    let mut spec = ctx.spec("caps", "grep CapEff /proc/self/status");
    spec.cap_add = vec!["NET_ADMIN".into()];
    spec.cap_drop = vec!["CAP_NET_RAW".into()];
    let (_, log) = ctx.run_to_exit(&spec).await?;
    let caps = cap_eff(&log)?;
    ensure!(
        caps & NET_ADMIN != 0 && caps & NET_RAW == 0 && caps & CHOWN != 0,
        "{caps:#x}"
    );
    let mut spec = ctx.spec("caps", "grep CapEff /proc/self/status");
    spec.cap_drop = vec!["ALL".into()];
    spec.cap_add = vec!["chown".into()];
    let (_, log) = ctx.run_to_exit(&spec).await?;
    ensure!(cap_eff(&log)? == CHOWN, "drop ALL + add chown: {log:?}");
    Ok(())
}

pub async fn bad_input_errors(ctx: &Ctx) -> Result<()> {
    let mut spec = ctx.spec("bad", "");
    spec.args = vec!["nosuchcmd".into()];
    let err = ctx
        .rt
        .create(&spec)
        .await
        .err()
        .context("missing executable accepted")?;
    let msg = err.to_string();
    ensure!(
        msg.contains("exec: \"nosuchcmd\": executable file not found in $PATH"),
        "got {msg}"
    );
    ensure!(!msg.contains('\n'), "not one line: {msg:?}");
    ensure!(
        !bundle_dir(ctx, &spec.id).exists(),
        "failed create left its dir"
    );

    let mut spec = ctx.spec("bad", "true");
    spec.user = Some("foo".into());
    let err = ctx
        .rt
        .create(&spec)
        .await
        .err()
        .context("invalid user accepted")?;
    ensure!(
        err.to_string()
            .contains("unable to find user foo: no matching entries in passwd file"),
        "got {err}"
    );
    ensure!(
        !bundle_dir(ctx, &spec.id).exists(),
        "failed create left its dir"
    );
    let listed = ctx.rt.list().await?;
    ensure!(
        listed.iter().all(|s| !s.id.starts_with("bad-")),
        "{listed:?}"
    );
    Ok(())
}

fn bundle_dir(ctx: &Ctx, id: &str) -> PathBuf {
    ctx.cfg.data_dir.join("containers").join(id)
}

pub async fn remove_leaves_nothing(ctx: &Ctx) -> Result<()> {
    let mut spec = ctx.spec("rm", "sleep 1000");
    spec.resources.memory_bytes = 64 << 20;
    spec.files = vec![FileMount {
        target: "/run/secrets/x".into(),
        data: b"x".to_vec(),
        uid: 0,
        gid: 0,
        mode: 0o400,
    }];
    ctx.rt.create(&spec).await?;
    ctx.rt.start(&spec.id).await?;
    let exit = ctx
        .rt
        .stop(&spec.id, Some("KILL"), Duration::from_secs(5))
        .await?;
    ensure!(exit.code == 137);
    ctx.rt.remove(&spec.id).await?;
    let id = &spec.id;
    let cgroups: Vec<PathBuf> = cgroup_roots()
        .into_iter()
        .map(|r| r.join(&ctx.cfg.cgroup_parent).join(id))
        .filter(|p| p.exists())
        .collect();
    ensure!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let dir = bundle_dir(ctx, id).to_string_lossy().into_owned();
    let left: Vec<&str> = info.lines().filter(|l| l.contains(&dir)).collect();
    ensure!(left.is_empty(), "mounts left: {left:?}");
    ensure!(!bundle_dir(ctx, id).exists(), "container dir left");
    ensure!(ctx.rt.state(id).await.is_err(), "state still known");
    ensure!(ctx.rt.list().await?.iter().all(|s| &s.id != id));
    // A created-but-never-started container is removable too.
    let spec = ctx.spec("rm", "true");
    ctx.rt.create(&spec).await?;
    ensure!(ctx.rt.state(&spec.id).await?.status == Status::Created);
    ctx.rt.remove(&spec.id).await?;
    ensure!(
        !bundle_dir(ctx, &spec.id).exists(),
        "created container dir left"
    );
    Ok(())
}

/// One `#[tokio::test]` per conformance check, for a backend: `setup(name).await` gives
/// `(Ctx, guard)`, the guard living as long as the check (a private containerd, say).
/// The list of checks lives here, once, so every backend runs all of them.
#[macro_export]
macro_rules! conformance_suite {
    ($setup:path) => {
        $crate::conformance_suite!(@checks $setup;
            exit_codes,
            env_user_workdir_from_image,
            env_user_workdir_overrides,
            memory_limit_oom,
            pids_limit,
            cpu_quota,
            read_only_rootfs,
            etc_files,
            mounts,
            secret_in_memory_only,
            logs_follow,
            health_unhealthy,
            exec_in_container,
            stop_grace_then_kill,
            adoption_after_caller_killed,
            init_reaper,
            capabilities,
            bad_input_errors,
            remove_leaves_nothing,
        );
    };
    (@checks $setup:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (ctx, _guard) = $setup(stringify!($name)).await;
            $crate::conformance::run(&ctx, $crate::conformance::$name)
                .await
                .unwrap();
        }
    )*};
}
