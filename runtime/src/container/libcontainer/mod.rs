//! The default backend: youki's libcontainer, driven from one single-threaded shim
//! process per container (see [`shim`]), never from the caller's threads.
//!
//! Everything the caller knows about a container is in its dir (see [`records`]), so a
//! restarted caller finds its containers, running or exited, and adopts them without
//! restarting anything. Waiting for an exit is waiting on the shim's pidfd, which works
//! for a process that is not our child.

pub mod cli;
pub mod init;
pub mod records;
pub mod shim;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;
use tokio::io::AsyncReadExt;

use self::records::{Meta, ShimState, Started};
use self::shim::{CreateReply, ExecReply, ExecRequest};
use super::attach::{self, AttachedExec, ControlMessageBody, ExecIo};
use super::{
    bundle, ContainerRuntime, ContainerSpec, ContainerState, ExecOutput, ExecSpec, ExitStatus,
    RuntimeConfig, Status,
};
use crate::{Error, Result};

/// How long create may take before we call the shim stuck.
const CREATE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a SIGKILLed container may take to be reported gone.
const KILL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct LibcontainerRuntime {
    cfg: RuntimeConfig,
}

impl LibcontainerRuntime {
    pub fn new(cfg: RuntimeConfig) -> Result<Self> {
        super::host::check()?;
        for d in [cfg.data_dir.join("containers"), lc_root(&cfg)] {
            std::fs::create_dir_all(&d).map_err(Error::path(&d))?;
        }
        Ok(LibcontainerRuntime { cfg })
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.cfg
    }

    /// What a crash of the node left that no container record explains, removed before
    /// the node lists its containers (only at start: a create in flight has no record
    /// yet): bundle dirs without `meta.json` (a create interrupted before it wrote one,
    /// a removal interrupted after; no shim ever ran for them), libcontainer state of a
    /// container without a bundle, cgroup dirs of containers that are not there.
    /// Returns the container IDs cleaned.
    pub fn remove_strays(&self) -> Vec<String> {
        let mut cleaned = Vec::new();
        let mut known = std::collections::HashSet::new();
        let containers = self.cfg.data_dir.join("containers");
        for e in std::fs::read_dir(&containers)
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = e.file_name().to_string_lossy().into_owned();
            if e.path().join(records::META).exists() {
                known.insert(id);
                continue;
            }
            match bundle::cleanup(&self.cfg, &id) {
                Ok(()) => cleaned.push(id),
                Err(err) => {
                    tracing::warn!(id, "remove a half-made or half-removed bundle: {err}");
                    known.insert(id);
                }
            }
        }
        for e in std::fs::read_dir(lc_root(&self.cfg))
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = e.file_name().to_string_lossy().into_owned();
            if !known.contains(&id) {
                if let Err(err) = std::fs::remove_dir_all(e.path()) {
                    tracing::warn!(id, "remove libcontainer state: {err}");
                }
                cleaned.push(id);
            }
        }
        for d in super::cgroup::remove_strays(&self.cfg, &known) {
            tracing::info!("removed stray cgroup {}", d.display());
        }
        cleaned.sort();
        cleaned.dedup();
        cleaned
    }

    fn dir(&self, id: &str) -> PathBuf {
        bundle::container_dir(&self.cfg, id)
    }

    fn target(&self, id: &str) -> Vec<String> {
        vec![
            "--bundle".into(),
            self.dir(id).to_string_lossy().into_owned(),
            "--root".into(),
            lc_root(&self.cfg).to_string_lossy().into_owned(),
            "--id".into(),
            id.into(),
        ]
    }

    fn helper(&self, sub: &str, id: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.cfg.shim_exe);
        cmd.arg(sub)
            .args(self.target(id))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(false);
        cmd
    }

    fn existing_dir(&self, id: &str) -> Result<PathBuf> {
        bundle::validate_id(id).map_err(|_| Error::NoSuchContainer(id.into()))?;
        let dir = self.dir(id);
        if dir.join(records::META).exists() {
            Ok(dir)
        } else {
            Err(Error::NoSuchContainer(id.into()))
        }
    }

    /// The container's first process while it runs.
    fn running_pid(&self, id: &str) -> Result<Option<i32>> {
        let dir = self.existing_dir(id)?;
        if records::read_exit(&dir)?.is_some() {
            return Ok(None);
        }
        Ok(records::read::<ShimState>(&dir, records::STATE)?
            .filter(shim_alive)
            .map(|s| s.pid))
    }

    fn signal(&self, id: &str, sig: Signal) -> Result<()> {
        if let Some(pid) = self.running_pid(id)? {
            match nix::sys::signal::kill(Pid::from_raw(pid), sig) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// SIGKILL the first process (which takes its pid namespace with it) and anything
    /// else still in the container's cgroup.
    /// What the shim's exec helper is asked to run in the running container `id`; an
    /// attached process has no timeout (its client ends it).
    fn exec_request(
        &self,
        id: &str,
        exec: &ExecSpec,
        attach: bool,
        tty: bool,
    ) -> Result<ExecRequest> {
        if self.read_state(id)?.status != Status::Running {
            return Err(Error::Other(format!("container {id} is not running")));
        }
        Ok(ExecRequest {
            args: exec.args.clone(),
            env: exec.env.clone(),
            user: exec.user.clone(),
            workdir: exec.workdir.clone(),
            timeout_ms: exec
                .timeout
                .filter(|_| !attach)
                .map(|t| t.as_millis() as u64),
            attach,
            tty,
        })
    }

    fn kill_all(&self, id: &str) -> Result<()> {
        self.signal(id, Signal::SIGKILL)?;
        for pid in super::cgroup::procs(&bundle::cgroups_path(&self.cfg, id)) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        Ok(())
    }

    fn read_state(&self, id: &str) -> Result<ContainerState> {
        let dir = self.existing_dir(id)?;
        let meta: Meta =
            records::read(&dir, records::META)?.ok_or_else(|| Error::NoSuchContainer(id.into()))?;
        let started: Option<Started> = records::read(&dir, records::STARTED)?;
        let shim: Option<ShimState> = records::read(&dir, records::STATE)?;
        let mut exit = records::read_exit(&dir)?;
        if exit.is_none() {
            // A shim that died without its exit record (killed): the container is gone
            // with it as far as we can tell; re-read in case it just wrote it.
            if let Some(s) = &shim {
                if !shim_alive(s) {
                    exit = records::read_exit(&dir)?.or(Some(ExitStatus {
                        code: 255,
                        oom_killed: false,
                        finished_at: chrono::Utc::now(),
                    }));
                }
            }
        }
        let status = match (&exit, &started) {
            (Some(_), _) => Status::Exited,
            (None, Some(_)) => Status::Running,
            (None, None) => Status::Created,
        };
        Ok(ContainerState {
            id: id.into(),
            status,
            pid: if exit.is_none() {
                shim.map(|s| s.pid)
            } else {
                None
            },
            started_at: started.map(|s| s.started_at),
            exit,
            labels: meta.labels,
            mounts: meta
                .mounts
                .unwrap_or_else(|| bundle::volume_mounts_in_config(&self.cfg, id)),
        })
    }

    /// Wait until the shim has exited (it writes exit.json, then deletes
    /// libcontainer's state), however long that takes.
    async fn wait_shim(&self, dir: &Path) -> Result<()> {
        let Some(s) = records::read::<ShimState>(dir, records::STATE)? else {
            return Ok(());
        };
        let Some(fd) = open_pidfd(s.shim_pid, s.shim_start_time) else {
            return Ok(());
        };
        // SAFETY: the AsyncFd owns the OwnedFd, so it stays open and the same for its
        // whole lifetime.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|e| Error::io("watch shim pidfd")(e.into()))?;
        let _ready = fd.readable().await.map_err(Error::io("wait for shim"))?;
        Ok(())
    }

    async fn create_inner(&self, spec: &ContainerSpec) -> Result<()> {
        let id = spec.id.clone();
        let dir = self.dir(&id);
        let meta = Meta {
            id: id.clone(),
            labels: spec.labels.clone(),
            stop_signal: spec.stop_signal.clone().or_else(|| {
                spec.image
                    .as_ref()
                    .and_then(|i| i.config.stop_signal.clone())
            }),
            log: spec.log.clone(),
            created_at: chrono::Utc::now(),
            mounts: Some(spec.mounts.clone()),
        };
        let shim_log = dir.join(records::SHIM_LOG);
        let log = std::fs::File::create(&shim_log).map_err(Error::path(&shim_log))?;
        records::write(&dir, records::META, &meta)?;

        let mut cmd = tokio::process::Command::new(&self.cfg.shim_exe);
        cmd.arg("shim")
            .args(self.target(&id))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(false);
        let mut child = cmd.spawn().map_err(Error::io(format!(
            "spawn shim {}",
            self.cfg.shim_exe.display()
        )))?;
        let mut stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        let read = tokio::time::timeout(CREATE_TIMEOUT, stdout.read_to_string(&mut line)).await;
        let _ = child.wait().await;
        match read {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(Error::io("read shim status")(e)),
            Err(_) => return Err(Error::Start(format!("container {id}: create timed out"))),
        }
        let reply: CreateReply = serde_json::from_str(line.trim()).map_err(|_| {
            let diag = std::fs::read_to_string(&shim_log).unwrap_or_default();
            Error::Start(format!(
                "container {id}: shim failed: {}",
                diag.lines().last().unwrap_or("no status")
            ))
        })?;
        match (reply.pid, reply.error) {
            (Some(_), _) => Ok(()),
            (None, e) => Err(Error::Start(e.unwrap_or_else(|| "create failed".into()))),
        }
    }

    /// Remove what a failed or finished container left: libcontainer state, cgroup
    /// dirs, mounts and the container dir.
    async fn purge(&self, id: &str) -> Result<()> {
        let lc = lc_root(&self.cfg).join(id);
        if lc.exists() {
            let out = self.helper("delete", id).output().await;
            if !lc.exists() {
                // deleted by the helper
            } else if let Ok(o) = out {
                tracing::warn!(
                    id,
                    "libcontainer delete: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                let _ = std::fs::remove_dir_all(&lc);
            }
        }
        remove_cgroup_dirs(&self.cfg, id);
        let cfg = self.cfg.clone();
        let id = id.to_string();
        tokio::task::spawn_blocking(move || bundle::cleanup(&cfg, &id))
            .await
            .map_err(|e| Error::Other(format!("cleanup task: {e}")))?
    }
}

fn lc_root(cfg: &RuntimeConfig) -> PathBuf {
    cfg.data_dir.join("libcontainer")
}

/// A pidfd for `pid` if it is still the process that started at `start_time`.
fn open_pidfd(pid: i32, start_time: u64) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the fd was just returned to us and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // Checked after opening: if the pid was reused before, the times differ; if after,
    // the pidfd still names the old (exited) process and reads as exited.
    (records::proc_start_time(pid) == Some(start_time)).then_some(fd)
}

fn shim_alive(s: &ShimState) -> bool {
    open_pidfd(s.shim_pid, s.shim_start_time).is_some_and(|fd| {
        let mut p = [libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(p.as_mut_ptr(), 1, 0) };
        n == 0
    })
}

fn remove_cgroup_dirs(cfg: &RuntimeConfig, id: &str) {
    for d in super::cgroup::dirs(&bundle::cgroups_path(cfg, id)) {
        if let Err(e) = std::fs::remove_dir(&d) {
            tracing::warn!(id, "remove cgroup {}: {e}", d.display());
        }
    }
}

/// `TERM`, `SIGTERM` or `15`.
pub fn parse_signal(s: &str) -> Result<Signal> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::InvalidSpec(format!("invalid signal: {s}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    Signal::from_str(&name).map_err(|_| Error::InvalidSpec(format!("invalid signal: {s}")))
}

#[async_trait::async_trait]
impl ContainerRuntime for LibcontainerRuntime {
    async fn create(&self, spec: &ContainerSpec) -> Result<ContainerState> {
        let cfg = self.cfg.clone();
        let spec2 = spec.clone();
        tokio::task::spawn_blocking(move || bundle::prepare(&cfg, &spec2))
            .await
            .map_err(|e| Error::Other(format!("prepare task: {e}")))??;
        if let Err(e) = self.create_inner(spec).await {
            // Debug aid: keep the bundle and shim.log of a failed create.
            if std::env::var_os("SWARM_RUNTIME_KEEP_FAILED").is_some() {
                return Err(e);
            }
            if let Err(c) = self.purge(&spec.id).await {
                tracing::warn!(id = %spec.id, "cleanup after failed create: {c}");
            }
            return Err(e);
        }
        self.read_state(&spec.id)
    }

    async fn start(&self, id: &str) -> Result<()> {
        let dir = self.existing_dir(id)?;
        if records::read::<Started>(&dir, records::STARTED)?.is_some() {
            return Ok(());
        }
        let out = self
            .helper("start", id)
            .output()
            .await
            .map_err(Error::io("run start helper"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(Error::Start(
                err.lines().last().unwrap_or("start failed").to_string(),
            ));
        }
        Ok(())
    }

    async fn wait(&self, id: &str) -> Result<ExitStatus> {
        let dir = self.existing_dir(id)?;
        if let Some(e) = records::read_exit(&dir)? {
            return Ok(e);
        }
        self.wait_shim(&dir).await?;
        match self.read_state(id)?.exit {
            Some(e) => Ok(e),
            None => Err(Error::Other(format!(
                "container {id}: shim exited without an exit record"
            ))),
        }
    }

    async fn stop(&self, id: &str, signal: Option<&str>, grace: Duration) -> Result<ExitStatus> {
        let dir = self.existing_dir(id)?;
        if let Some(e) = records::read_exit(&dir)? {
            return Ok(e);
        }
        let meta: Option<Meta> = records::read(&dir, records::META)?;
        let sig = match signal
            .map(str::to_string)
            .or(meta.and_then(|m| m.stop_signal))
        {
            Some(s) => parse_signal(&s)?,
            None => Signal::SIGTERM,
        };
        self.signal(id, sig)?;
        if let Ok(r) = tokio::time::timeout(grace, self.wait(id)).await {
            return r;
        }
        self.kill_all(id)?;
        tokio::time::timeout(KILL_TIMEOUT, self.wait(id))
            .await
            .map_err(|_| Error::Other(format!("container {id}: still running after SIGKILL")))?
    }

    async fn kill(&self, id: &str, signal: &str) -> Result<()> {
        let sig = parse_signal(signal)?;
        self.signal(id, sig)
    }

    async fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        bundle::validate_id(id).map_err(|_| Error::NoSuchContainer(id.into()))?;
        if !dir.exists() && !lc_root(&self.cfg).join(id).exists() {
            return Err(Error::NoSuchContainer(id.into()));
        }
        if dir.join(records::META).exists() && records::read_exit(&dir)?.is_none() {
            // Running or only created: Docker's `rm -f`.
            self.kill_all(id)?;
        }
        if dir.exists() {
            tokio::time::timeout(KILL_TIMEOUT, self.wait_shim(&dir))
                .await
                .map_err(|_| Error::Other(format!("container {id}: shim still running")))??;
        }
        self.purge(id).await
    }

    async fn exec(&self, id: &str, exec: &ExecSpec) -> Result<ExecOutput> {
        let req = self.exec_request(id, exec, false, false)?;
        let out = self
            .helper("exec", id)
            .arg("--request")
            .arg(serde_json::to_string(&req)?)
            .output()
            .await
            .map_err(Error::io("run exec helper"))?;
        let reply: ExecReply = serde_json::from_slice(&out.stdout).map_err(|_| {
            Error::Other(format!(
                "exec in {id}: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("no reply")
            ))
        })?;
        if let Some(e) = reply.error {
            return Err(Error::Start(e));
        }
        Ok(ExecOutput {
            exit_code: reply.exit_code,
            output: reply.output,
            timed_out: reply.timed_out,
        })
    }

    async fn exec_attached(
        &self,
        id: &str,
        exec: &ExecSpec,
        tty: bool,
        stdin: bool,
    ) -> Result<AttachedExec> {
        let req = self.exec_request(id, exec, true, tty)?;
        let (ours, theirs) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::SeqPacket,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC | nix::sys::socket::SockFlag::SOCK_NONBLOCK,
        )?;
        // The helper blocks on its end.
        nix::fcntl::fcntl(
            theirs.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
        )?;
        let mut cmd = self.helper("exec", id);
        cmd.arg("--request").arg(serde_json::to_string(&req)?);
        if tty {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        } else if stdin {
            cmd.stdin(Stdio::piped());
        }
        let fd = theirs.as_raw_fd();
        // SAFETY: between fork and exec only async-signal-safe calls: dup2 and fcntl.
        unsafe {
            cmd.pre_exec(move || {
                if fd == 3 {
                    nix::fcntl::fcntl(
                        3,
                        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
                    )?;
                } else {
                    nix::unistd::dup2(fd, 3)?;
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(Error::io(format!(
            "spawn exec helper {}",
            self.cfg.shim_exe.display()
        )))?;
        drop(theirs);
        let control = attach::Control::new(ours)?;
        let (started, mut fds) = control.recv().await?;
        if let Some(message) = started.error {
            let _ = child.wait().await;
            return Err(Error::ExecStart {
                message,
                exit_code: started.exit_code.unwrap_or(126),
            });
        }
        let pid = started
            .pid
            .ok_or_else(|| Error::Other(format!("exec in {id}: the helper sent no pid")))?;
        let io = if tty {
            let master = fds
                .pop()
                .ok_or_else(|| Error::Other(format!("exec in {id}: no pty master")))?;
            ExecIo::Tty(attach::Pty::new(master)?)
        } else {
            let stdin = child
                .stdin
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>);
            ExecIo::Pipes {
                stdin,
                stdout: Box::new(child.stdout.take().expect("piped")),
                stderr: Box::new(child.stderr.take().expect("piped")),
            }
        };
        let id = id.to_string();
        let exit = Box::pin(async move {
            let done = control.recv().await;
            let _ = child.wait().await;
            match done?.0 {
                ControlMessageBody {
                    exit_code: Some(code),
                    error: None,
                    ..
                } => Ok(code),
                other => Err(Error::Other(format!(
                    "exec in {id}: {}",
                    other.error.unwrap_or_else(|| "no exit code".into())
                ))),
            }
        });
        Ok(AttachedExec { pid, io, exit })
    }

    fn cgroup_path(&self, id: &str) -> String {
        bundle::cgroups_path(&self.cfg, id)
    }

    async fn state(&self, id: &str) -> Result<ContainerState> {
        self.read_state(id)
    }

    async fn list(&self) -> Result<Vec<ContainerState>> {
        let dir = self.cfg.data_dir.join("containers");
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::path(dir)(e)),
        };
        for entry in rd.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            match self.read_state(&id) {
                Ok(s) => out.push(s),
                Err(Error::NoSuchContainer(_)) => {} // being created or removed
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn log_path(&self, id: &str) -> PathBuf {
        bundle::log_path(&self.cfg, id)
    }
}
