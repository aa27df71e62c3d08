//! The processes that call libcontainer, each single-threaded and short of the caller's
//! state: libcontainer forks with a raw `clone3` and runs Rust in the child, `chdir`s the
//! whole process and leaves it non-dumpable, so it never runs inside the caller.
//!
//! ```text
//! caller ──spawn──▶ `shim` ──fork──▶ shim (setsid; outlives the caller)
//!   ▲   stdout pipe: one status line      │ libcontainer create (init waits for start)
//!   └─────────────── {"pid":N} / {"error":..} ┘ state.json, then poll loop:
//!                                            container stdout/stderr pipes ─▶ LogWriter
//!                                            pidfd(init) ─▶ waitpid, exit.json, delete
//! caller ──spawn──▶ `start`  libcontainer start (notify socket), started.json
//! caller ──spawn──▶ `exec`   libcontainer tenant: one process, output capped, timeout
//! caller ──spawn──▶ `exec` (attach) tenant on the helper's stdio or a pty; fd 3 reports
//! ```

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::records::{self, Meta, ShimState, Started};
use crate::container::bundle;
use crate::container::logs::{LogStream, LogWriter};
use crate::container::ExitStatus;
use crate::{Error, Result};

/// Docker keeps this much of a health probe's output.
pub const EXEC_OUTPUT_CAP: usize = 4096;

/// Where a container's files are, as the shim helpers are told on their command line.
#[derive(Debug, Clone)]
pub struct Target {
    /// The bundle: `<data>/containers/<id>`.
    pub bundle: PathBuf,
    /// libcontainer's state root (`<data>/libcontainer`).
    pub root: PathBuf,
    pub id: String,
}

/// The one line the shim writes to the caller once the container is created.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateReply {
    pub pid: Option<i32>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExecRequest {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub timeout_ms: Option<u64>,
    /// `docker exec`: the process gets the helper's stdio (or a pty when `tty`) and the
    /// helper reports on its control socket, fd 3 (see [`crate::container::attach`]).
    #[serde(default)]
    pub attach: bool,
    #[serde(default)]
    pub tty: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExecReply {
    pub exit_code: i32,
    pub output: Vec<u8>,
    pub timed_out: bool,
    pub error: Option<String>,
}

/// Runs the workload as libcontainer's default executor does, after giving back the
/// signal dispositions Rust changed in the shim (SIGPIPE ignored).
#[derive(Clone)]
struct SwarmExecutor;

impl Executor for SwarmExecutor {
    fn exec(&self, spec: &oci_spec::runtime::Spec) -> std::result::Result<(), ExecutorError> {
        // SAFETY: restoring default dispositions installs no handler; this process is
        // about to exec.
        unsafe {
            let _ = nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            );
        }
        let _ = nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&nix::sys::signal::SigSet::empty()),
            None,
        );
        DefaultExecutor {}.exec(spec)
    }

    fn validate(
        &self,
        spec: &oci_spec::runtime::Spec,
    ) -> std::result::Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}

/// An error and its causes on one line, as libcontainer nests them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

fn lc_err(e: libcontainer::error::LibcontainerError) -> Error {
    Error::Start(chain(&e))
}

fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the fd was just returned to us and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pipe() -> Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    Ok((File::from(r), File::from(w)))
}

fn builder(t: &Target) -> Result<ContainerBuilder> {
    std::fs::create_dir_all(&t.root).map_err(Error::path(&t.root))?;
    ContainerBuilder::new(t.id.clone(), SyscallType::default())
        .with_executor(SwarmExecutor)
        .with_root_path(&t.root)
        .map_err(lc_err)
}

/// `shim`: fork away from the caller, create the container, report, then babysit it
/// until it exits. Returns the process exit code.
pub fn shim_main(t: &Target) -> i32 {
    // The caller reaps this first process at once; the forked shim is nobody's child
    // but init's (or a subreaper's), so killing the caller leaves it alone.
    // SAFETY: the shim is single-threaded at this point (no runtime, no threads).
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => return 0,
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            report(&CreateReply {
                pid: None,
                error: Some(format!("fork shim: {e}")),
            });
            return 1;
        }
    }
    let _ = nix::unistd::setsid();
    match create_and_babysit(t) {
        Ok(()) => 0,
        Err(e) => {
            // Only reaches the caller when the failure came before the report; else it
            // goes to shim.log.
            eprintln!("shim {}: {e}", t.id);
            report(&CreateReply {
                pid: None,
                error: Some(e.to_string()),
            });
            1
        }
    }
}

/// Write the status line to the caller (stdout), then point stdout at /dev/null so the
/// caller sees EOF. Later calls write nothing.
fn report(reply: &CreateReply) {
    let mut out = std::io::stdout();
    let line = serde_json::to_string(reply).unwrap_or_default();
    // EPIPE when the caller is gone: nothing to do about it.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    if let Ok(null) = File::options().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
    }
}

fn create_and_babysit(t: &Target) -> Result<()> {
    let meta: Meta = records::read(&t.bundle, records::META)?
        .ok_or_else(|| Error::NoSuchContainer(t.id.clone()))?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let devnull = File::open("/dev/null").map_err(Error::path("/dev/null"))?;
    let container = builder(t)?
        .with_stdin(devnull)
        .with_stdout(out_w)
        .with_stderr(err_w)
        .validate_id()
        .map_err(lc_err)?
        .as_init(&t.bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(lc_err)?;
    let pid = container
        .pid()
        .ok_or_else(|| Error::Start("container has no pid after create".into()))?
        .as_raw();
    let pidfd = pidfd_open(pid).map_err(Error::io("pidfd_open container"))?;
    let me = std::process::id() as i32;
    records::write(
        &t.bundle,
        records::STATE,
        &ShimState {
            pid,
            shim_pid: me,
            shim_start_time: records::proc_start_time(me).unwrap_or(0),
        },
    )?;
    report(&CreateReply {
        pid: Some(pid),
        error: None,
    });

    let mut log = LogWriter::open(&bundle::log_path_in(&t.bundle), &meta.log)
        .map_err(Error::io("open container log"))?;
    let status = pump_until_exit(pid, &pidfd, out_r, err_r, &mut log)?;
    if let Err(e) = log.flush() {
        eprintln!("shim {}: flush log: {e}", t.id);
    }
    let code = match status {
        WaitStatus::Exited(_, c) => c,
        WaitStatus::Signaled(_, s, _) => 128 + s as i32,
        _ => 255,
    };
    let oom_killed = oom_kills(&t.bundle).unwrap_or(0) > 0;
    records::write(
        &t.bundle,
        records::EXIT,
        &ExitStatus {
            code,
            oom_killed,
            finished_at: chrono::Utc::now(),
        },
    )?;
    // Removes libcontainer's state and the container's cgroup.
    match Container::load(t.root.join(&t.id)) {
        Ok(mut c) => {
            if let Err(e) = c.delete(true) {
                eprintln!("shim {}: delete: {}", t.id, chain(&e));
            }
        }
        Err(e) => eprintln!("shim {}: load for delete: {}", t.id, chain(&e)),
    }
    Ok(())
}

/// Copy the container's output into the log until its first process exits and both
/// pipes are drained; returns how it exited.
fn pump_until_exit(
    pid: i32,
    pidfd: &OwnedFd,
    out: File,
    err: File,
    log: &mut LogWriter,
) -> Result<WaitStatus> {
    let mut streams: Vec<(File, LogStream)> =
        vec![(out, LogStream::Stdout), (err, LogStream::Stderr)];
    let mut status = None;
    let mut drain_deadline: Option<Instant> = None;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        if streams.is_empty() && status.is_some() {
            break;
        }
        let timeout = match drain_deadline {
            // Whatever still holds a pipe after PID 1 exited (nothing should, in a pid
            // namespace) gets a moment, not forever.
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                PollTimeout::try_from(left.as_millis().min(10_000) as i32)
                    .unwrap_or(PollTimeout::ZERO)
            }
            None => PollTimeout::NONE,
        };
        let ready: Vec<(bool, bool)>;
        let pid_ready;
        {
            let mut fds: Vec<PollFd> = streams
                .iter()
                .map(|(f, _)| PollFd::new(f.as_fd(), PollFlags::POLLIN))
                .collect();
            if status.is_none() {
                fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let rev = |p: &PollFd| p.revents().unwrap_or(PollFlags::empty());
            ready = fds[..streams.len()]
                .iter()
                .map(|p| {
                    let r = rev(p);
                    (
                        r.contains(PollFlags::POLLIN),
                        r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR),
                    )
                })
                .collect();
            pid_ready = status.is_none() && !rev(&fds[streams.len()]).is_empty();
        }
        let mut closed = Vec::new();
        for (i, (readable, hup)) in ready.into_iter().enumerate() {
            if !readable && !hup {
                continue;
            }
            let (file, stream) = &mut streams[i];
            match file.read(&mut buf) {
                Ok(0) => closed.push(i),
                Ok(n) => {
                    if let Err(e) = log.write(*stream, &buf[..n]) {
                        eprintln!("shim: write log: {e}");
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => closed.push(i),
            }
        }
        for i in closed.into_iter().rev() {
            streams.remove(i);
        }
        if pid_ready {
            let s = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::__WALL))?;
            status = Some(s);
            drain_deadline = Some(Instant::now() + Duration::from_secs(2));
        }
    }
    Ok(status.expect("exited"))
}

/// The container cgroup's OOM kill count: v2 `memory.events`, v1 `memory.oom_control`.
fn oom_kills(bundle_dir: &Path) -> Option<u64> {
    let spec = oci_spec::runtime::Spec::load(bundle_dir.join("config.json")).ok()?;
    let cg = spec.linux().as_ref()?.cgroups_path().clone()?;
    let rel = cg.strip_prefix("/").unwrap_or(&cg).to_path_buf();
    let (file, key) = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        (
            Path::new("/sys/fs/cgroup").join(&rel).join("memory.events"),
            "oom_kill",
        )
    } else {
        (
            Path::new("/sys/fs/cgroup/memory")
                .join(&rel)
                .join("memory.oom_control"),
            "oom_kill",
        )
    };
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
}

/// `start`: tell libcontainer's waiting init to exec the process.
pub fn start_main(t: &Target) -> Result<()> {
    let mut c = Container::load(t.root.join(&t.id)).map_err(lc_err)?;
    c.start().map_err(lc_err)?;
    records::write(
        &t.bundle,
        records::STARTED,
        &Started {
            started_at: chrono::Utc::now(),
        },
    )
}

/// `delete`: remove libcontainer's state and cgroup of a container whose shim is gone,
/// killing whatever is left in it.
pub fn delete_main(t: &Target) -> Result<()> {
    let mut c = Container::load(t.root.join(&t.id)).map_err(lc_err)?;
    c.delete(true).map_err(lc_err)
}

/// `exec`: run one process in the running container, capture its output (capped) and
/// exit code, kill it at the timeout.
pub fn exec_main(t: &Target, req: &ExecRequest) -> ExecReply {
    match exec_inner(t, req) {
        Ok(r) => r,
        Err(e) => ExecReply {
            exit_code: -1,
            error: Some(e.to_string()),
            ..Default::default()
        },
    }
}

/// What an exec runs, resolved against the container's config and rootfs.
struct Prepared {
    env: HashMap<String, String>,
    cwd: String,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    /// The container's own process (capabilities, no_new_privileges).
    process: oci_spec::runtime::Process,
}

fn prepare(t: &Target, req: &ExecRequest) -> Result<Prepared> {
    if req.args.is_empty() {
        return Err(Error::InvalidSpec("exec: no command".into()));
    }
    let spec = oci_spec::runtime::Spec::load(t.bundle.join("config.json"))
        .map_err(|e| Error::Other(format!("load config.json: {e}")))?;
    let process = spec.process().clone().unwrap_or_default();
    let rootfs = t.bundle.join("rootfs");
    // The container's env, then the exec's, overriding by key.
    let mut env: HashMap<String, String> = HashMap::new();
    for kv in process
        .env()
        .clone()
        .unwrap_or_default()
        .iter()
        .chain(&req.env)
    {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        env.insert(k.to_string(), v.to_string());
    }
    let cwd = req
        .workdir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| process.cwd().to_string_lossy().into_owned());
    let path_env = env
        .get("PATH")
        .cloned()
        .unwrap_or_else(|| bundle::DEFAULT_PATH.into());
    if let Err(e) = bundle::check_executable(&rootfs, &req.args[0], &path_env, &cwd) {
        return Err(Error::ExecStart {
            message: e.message,
            exit_code: crate::container::attach::start_failure_code(e.missing),
        });
    }
    let (uid, gid, groups) = match req.user.as_deref().filter(|u| !u.is_empty()) {
        Some(u) => {
            let u = bundle::lookup_user(&rootfs, u)?;
            (u.uid, u.gid, u.additional_gids)
        }
        None => (
            process.user().uid(),
            process.user().gid(),
            process.user().additional_gids().clone().unwrap_or_default(),
        ),
    };
    Ok(Prepared {
        env,
        cwd,
        uid,
        gid,
        groups,
        process,
    })
}

fn exec_inner(t: &Target, req: &ExecRequest) -> Result<ExecReply> {
    let Prepared {
        env,
        cwd,
        uid,
        gid,
        groups,
        ..
    } = prepare(t, req)?;
    let (out_r, out_w) = pipe()?;
    let out_w2 = out_w.try_clone().map_err(Error::io("dup exec pipe"))?;
    let devnull = File::open("/dev/null").map_err(Error::path("/dev/null"))?;
    let pid = builder(t)?
        .with_stdin(devnull)
        .with_stdout(out_w)
        .with_stderr(out_w2)
        .validate_id()
        .map_err(lc_err)?
        .as_tenant()
        .with_env(env)
        .with_cwd(Some(cwd))
        .with_container_args(req.args.clone())
        .with_user(Some(uid))
        .with_group(Some(gid))
        .with_additional_gids(groups)
        .with_detach(true)
        .build()
        .map_err(lc_err)?
        .as_raw();
    let pidfd = pidfd_open(pid).map_err(Error::io("pidfd_open exec"))?;
    let deadline = req
        .timeout_ms
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    let mut output = Vec::new();
    let mut pipe_open = Some(out_r);
    let mut buf = [0u8; 8192];
    let mut timed_out = false;
    let status = loop {
        let timeout = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    timed_out = true;
                    let _ = nix::sys::signal::kill(
                        Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    break waitpid(Pid::from_raw(pid), Some(WaitPidFlag::__WALL))?;
                }
                PollTimeout::try_from(left.as_millis().min(60_000) as i32)
                    .unwrap_or(PollTimeout::ZERO)
            }
            None => PollTimeout::NONE,
        };
        let (pipe_ready, pid_ready) = {
            let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            if let Some(p) = &pipe_open {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let rev = |p: &PollFd| p.revents().unwrap_or(PollFlags::empty());
            (
                fds.get(1).is_some_and(|p| !rev(p).is_empty()),
                !rev(&fds[0]).is_empty(),
            )
        };
        if pipe_ready {
            if let Some(p) = pipe_open.as_mut() {
                match p.read(&mut buf) {
                    Ok(0) | Err(_) => pipe_open = None,
                    Ok(n) => {
                        let room = EXEC_OUTPUT_CAP.saturating_sub(output.len());
                        output.extend_from_slice(&buf[..n.min(room)]);
                    }
                }
            }
        }
        if pid_ready && !pipe_ready {
            break waitpid(Pid::from_raw(pid), Some(WaitPidFlag::__WALL))?;
        }
    };
    // What the process wrote just before exiting.
    if let Some(mut p) = pipe_open {
        let _ = nix::fcntl::fcntl(
            p.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK),
        );
        while let Ok(n) = p.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = EXEC_OUTPUT_CAP.saturating_sub(output.len());
            output.extend_from_slice(&buf[..n.min(room)]);
        }
    }
    let exit_code = match status {
        WaitStatus::Exited(_, c) => c,
        WaitStatus::Signaled(_, s, _) => 128 + s as i32,
        _ => -1,
    };
    Ok(ExecReply {
        exit_code,
        output,
        timed_out,
        error: None,
    })
}

/// `exec` with `attach`: run one process in the running container on this helper's
/// stdio (pipes the caller made), or on a pty made inside the container whose master
/// goes to the caller; report its PID, then its exit code, on the control socket (fd 3).
/// Returns the helper's exit code.
pub fn exec_attached_main(t: &Target, req: &ExecRequest) -> i32 {
    use crate::container::attach::{self, ControlMessageBody};
    use std::os::fd::FromRawFd;
    // SAFETY: the caller put the control socket at fd 3 for this process alone.
    let control = unsafe { OwnedFd::from_raw_fd(3) };
    let ctl = control.as_raw_fd();
    let (body, code) = match exec_attached(t, req, ctl) {
        Ok(code) => (
            ControlMessageBody {
                exit_code: Some(code),
                ..Default::default()
            },
            0,
        ),
        Err(e) => (
            ControlMessageBody {
                exit_code: Some(match &e {
                    Error::ExecStart { exit_code, .. } => *exit_code,
                    _ => 126,
                }),
                error: Some(e.to_string()),
                ..Default::default()
            },
            1,
        ),
    };
    if let Err(e) = attach::send(ctl, &body, None) {
        eprintln!("exec {}: report: {e}", t.id);
        return 1;
    }
    code
}

/// Starts the process, reports its PID (and the pty master), waits for its exit code.
fn exec_attached(t: &Target, req: &ExecRequest, ctl: i32) -> Result<i32> {
    use crate::container::attach::{self, ControlMessageBody};
    use std::os::unix::net::UnixListener;
    let p = prepare(t, req)?;
    let state_dir = t.root.join(&t.id);
    let me = std::process::id();
    let dup = |fd: i32| -> Result<OwnedFd> {
        Ok(nix::unistd::dup(fd).map(|fd| {
            // SAFETY: dup just returned this fd; nobody else owns it.
            unsafe { OwnedFd::from_raw_fd(fd) }
        })?)
    };
    let mut builder = builder(t)?;
    // A tty: libcontainer's init makes the pty in the container's devpts and sends the
    // master over this socket (named relative to the state dir: socket paths are short).
    let mut console = None;
    let mut process_file = None;
    if req.tty {
        let name = format!("exec-tty-{me}.sock");
        let prev = std::env::current_dir().map_err(Error::io("cwd"))?;
        std::env::set_current_dir(&state_dir).map_err(Error::path(&state_dir))?;
        let listener = UnixListener::bind(&name);
        let _ = std::env::set_current_dir(prev);
        let listener = listener.map_err(Error::io("bind console socket"))?;
        console = Some((state_dir.join(&name), listener));
        // The tenant's terminal flag comes only from a process.json.
        let user = oci_spec::runtime::UserBuilder::default()
            .uid(p.uid)
            .gid(p.gid)
            .additional_gids(p.groups.clone())
            .build()
            .map_err(|e| Error::Other(format!("exec user: {e}")))?;
        let mut process = oci_spec::runtime::ProcessBuilder::default()
            .terminal(true)
            .args(req.args.clone())
            .env(
                p.env
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>(),
            )
            .cwd(p.cwd.clone())
            .user(user);
        if let Some(caps) = p.process.capabilities() {
            process = process.capabilities(caps.clone());
        }
        if let Some(nnp) = p.process.no_new_privileges() {
            process = process.no_new_privileges(nnp);
        }
        let process = process
            .build()
            .map_err(|e| Error::Other(format!("exec process: {e}")))?;
        let path = state_dir.join(format!("exec-{me}.json"));
        std::fs::write(&path, serde_json::to_vec(&process)?).map_err(Error::path(&path))?;
        process_file = Some(path);
    } else {
        builder = builder
            .with_stdin(dup(0)?)
            .with_stdout(dup(1)?)
            .with_stderr(dup(2)?);
    }
    let console_path = console.as_ref().map(|(p, _)| p.clone());
    let tenant = builder
        .with_console_socket(console_path.as_ref())
        .validate_id()
        .map_err(lc_err)?
        .as_tenant()
        .with_detach(true);
    let tenant = match &process_file {
        Some(f) => tenant.with_process(Some(f)),
        None => tenant
            .with_env(p.env)
            .with_cwd(Some(p.cwd))
            .with_container_args(req.args.clone())
            .with_user(Some(p.uid))
            .with_group(Some(p.gid))
            .with_additional_gids(p.groups),
    };
    let built = tenant.build();
    if let Some(f) = &process_file {
        let _ = std::fs::remove_file(f);
    }
    if let Some((path, _)) = &console {
        let _ = std::fs::remove_file(path);
    }
    let pid = built.map_err(lc_err)?.as_raw();
    let master = match console {
        Some((_, listener)) => Some(receive_master(&listener)?),
        None => None,
    };
    attach::send(
        ctl,
        &ControlMessageBody {
            pid: Some(pid),
            ..Default::default()
        },
        master.as_ref().map(|m| m.as_raw_fd()),
    )?;
    drop(master);
    // The pipes are the process's now: the caller sees their end when it closes them.
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        for fd in 0..=2 {
            let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
        }
    }
    let status = loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::__WALL)) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r?,
        }
    };
    Ok(match status {
        WaitStatus::Exited(_, c) => c,
        WaitStatus::Signaled(_, s, _) => 128 + s as i32,
        _ => 255,
    })
}

/// The pty master that the exec's init sent on the console socket.
fn receive_master(listener: &std::os::unix::net::UnixListener) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::io::IoSliceMut;
    use std::os::fd::FromRawFd;
    let (conn, _) = listener
        .accept()
        .map_err(Error::io("accept console socket"))?;
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: SCM_RIGHTS just gave this process the fd; nobody else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::Start("no pty master on the console socket".into()))
}
