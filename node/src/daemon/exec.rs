//! `docker exec` on a node's containers: exec instances (`POST /containers/{id}/exec`),
//! started detached or on a hijacked connection (`POST /exec/{id}/start`), resized
//! (`POST /exec/{id}/resize`) and inspected (`GET /exec/{id}/json`), as dockerd keeps
//! them: in memory, per node.
//!
//! ```text
//!  client ══ hijacked conn ══▶ stdin ──▶ process (runtime::exec_attached: pipes or pty)
//!         ◀═ multiplexed/raw ══ stdout, stderr ◀──┘
//!  exit code ──▶ instance (ExitCode, Running) ──▶ then the connection closes, so the
//!  CLI's `GET /exec/{id}/json` right after the stream sees the code.
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use serde_json::{json, Value};
use swarm_runtime::container::attach::{AttachedExec, ExecIo, Pty};
use swarm_runtime::container::{ExecSpec, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::Node;
use crate::api::{mux_frame, ApiError, Hijacked, Reply};

/// The node's exec instances.
#[derive(Default)]
pub(super) struct Execs {
    by_id: Mutex<HashMap<String, Arc<Exec>>>,
}

/// One exec instance: what it runs and what became of it.
struct Exec {
    id: String,
    container_id: String,
    cmd: Vec<String>,
    env: Vec<String>,
    user: String,
    workdir: String,
    tty: bool,
    privileged: bool,
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    state: Mutex<ExecState>,
    /// None until the exit code is known.
    done: watch::Sender<Option<i32>>,
}

#[derive(Default)]
struct ExecState {
    started: bool,
    running: bool,
    pid: i32,
    exit_code: Option<i32>,
    pty: Option<Pty>,
    /// A size asked before the pty existed.
    size: Option<(u16, u16)>,
}

/// Docker's ExecConfig, as the CLI and docker-py send it.
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Docker's exec IDs: 64 hex digits, random.
fn new_exec_id() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)) {
        Ok(()) => hex::encode(bytes),
        // Never on a running Linux; still unique enough to name an instance.
        Err(_) => format!("{:0<64}", hex::encode(crate::ids::new_id())),
    }
}

/// What moby answers when an exec could not start, after the runtime's words.
fn start_failure(message: &str) -> String {
    format!("OCI runtime exec failed: exec failed: unable to start container process: {message}: unknown")
}

impl Exec {
    fn finish(&self, code: i32) {
        {
            let mut st = self.state.lock().expect("exec state");
            st.running = false;
            st.exit_code = Some(code);
            st.pty = None;
        }
        self.done.send_replace(Some(code));
    }

    /// Resolves once the exit code is recorded.
    async fn exited(&self) {
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }
}

impl Node {
    fn exec_instance(&self, id: &str) -> Result<Arc<Exec>, ApiError> {
        self.execs
            .by_id
            .lock()
            .expect("execs")
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("No such exec instance: {id}")))
    }

    /// `POST /containers/{id}/exec`: 201 `{"Id"}`; the container must be running.
    pub(super) async fn exec_create(&self, key: &str, config: Value) -> Result<Reply, ApiError> {
        let c = self.find_container(key).await?;
        if c.st.status != Status::Running {
            return Err(ApiError::Conflict(format!(
                "Container {} is not running",
                c.st.id
            )));
        }
        let cmd = strings(&config["Cmd"]);
        if cmd.is_empty() {
            return Err(ApiError::invalid("No exec command specified"));
        }
        let s = |k: &str| config[k].as_str().unwrap_or_default().to_string();
        let b = |k: &str| config[k].as_bool().unwrap_or(false);
        let exec = Arc::new(Exec {
            id: new_exec_id(),
            container_id: c.st.id.clone(),
            cmd,
            env: strings(&config["Env"]),
            user: s("User"),
            workdir: s("WorkingDir"),
            tty: b("Tty"),
            privileged: b("Privileged"),
            attach_stdin: b("AttachStdin"),
            attach_stdout: b("AttachStdout"),
            attach_stderr: b("AttachStderr"),
            state: Mutex::new(ExecState::default()),
            done: watch::channel(None).0,
        });
        let live: Vec<String> = self.containers().await?.into_iter().map(|c| c.id).collect();
        let mut all = self.execs.by_id.lock().expect("execs");
        // Instances go with their containers, as dockerd's do.
        all.retain(|_, e| live.contains(&e.container_id));
        all.insert(exec.id.clone(), exec.clone());
        Ok(Reply::Json(201, json!({ "Id": exec.id })))
    }

    /// `GET /exec/{id}/json`.
    pub(super) fn exec_inspect(&self, id: &str) -> Result<Reply, ApiError> {
        let e = self.exec_instance(id)?;
        let st = e.state.lock().expect("exec state");
        let (entrypoint, arguments) = e.cmd.split_first().expect("a command");
        Ok(Reply::Json(
            200,
            json!({
                "ID": e.id,
                "Running": st.running,
                "ExitCode": st.exit_code,
                "ProcessConfig": {
                    "tty": e.tty,
                    "entrypoint": entrypoint,
                    "arguments": arguments,
                    "privileged": e.privileged,
                    "user": e.user,
                },
                "OpenStdin": e.attach_stdin,
                "OpenStderr": e.attach_stderr,
                "OpenStdout": e.attach_stdout,
                "CanRemove": false,
                "ContainerID": e.container_id,
                "DetachKeys": "",
                "Pid": st.pid,
            }),
        ))
    }

    /// `POST /exec/{id}/resize?h=&w=`: the tty's size now, or once it exists.
    pub(super) fn exec_resize(&self, id: &str, rows: u16, cols: u16) -> Result<Reply, ApiError> {
        let e = self.exec_instance(id)?;
        let mut st = e.state.lock().expect("exec state");
        match &st.pty {
            Some(pty) => pty.resize(rows, cols).map_err(ApiError::internal)?,
            None => st.size = Some((rows, cols)),
        }
        Ok(Reply::Empty(200))
    }

    /// `POST /exec/{id}/start`: the process starts now; detached, its output goes
    /// nowhere; else it runs on the hijacked connection.
    pub(super) async fn exec_start(
        &self,
        id: &str,
        detach: bool,
        console_size: Option<(u16, u16)>,
    ) -> Result<Reply, ApiError> {
        let e = self.exec_instance(id)?;
        {
            let mut st = e.state.lock().expect("exec state");
            if st.running {
                return Err(ApiError::Conflict(format!(
                    "Error: Exec command {id} is already running"
                )));
            }
            if st.started {
                return Err(ApiError::Conflict(format!(
                    "Error: Exec command {id} has already run"
                )));
            }
            st.started = true;
            if console_size.is_some() {
                st.size = console_size;
            }
        }
        let state = self.rt.state(&e.container_id).await;
        if !state.is_ok_and(|s| s.status == Status::Running) {
            e.finish(126);
            return Err(ApiError::Conflict(format!(
                "Container {} is not running",
                e.container_id
            )));
        }
        let spec = ExecSpec {
            args: e.cmd.clone(),
            env: e.env.clone(),
            user: Some(e.user.clone()).filter(|u| !u.is_empty()),
            workdir: Some(e.workdir.clone()).filter(|w| !w.is_empty()),
            timeout: None,
        };
        let stdin = e.attach_stdin && !detach;
        let started = self
            .rt
            .exec_attached(&e.container_id, &spec, e.tty, stdin)
            .await;
        let AttachedExec { pid, io, exit } = match started {
            Ok(a) => a,
            Err(swarm_runtime::Error::ExecStart { message, exit_code }) => {
                e.finish(exit_code);
                let message = start_failure(&message);
                if detach {
                    return Err(ApiError::internal(message));
                }
                // dockerd says it on the stream, after the upgrade.
                let raw = e.tty;
                return Ok(Reply::Hijack {
                    raw,
                    session: Box::new(move |mut conn: Box<dyn Hijacked>| {
                        async move {
                            let line = format!("{message}\r\n");
                            let bytes = if raw {
                                bytes::Bytes::from(line)
                            } else {
                                mux_frame(1, line.as_bytes())
                            };
                            let _ = conn.write_all(&bytes).await;
                            let _ = conn.shutdown().await;
                        }
                        .boxed()
                    }),
                });
            }
            Err(err) => {
                e.finish(126);
                return Err(ApiError::internal(err));
            }
        };
        {
            let mut st = e.state.lock().expect("exec state");
            st.running = true;
            st.pid = pid;
            if let ExecIo::Tty(pty) = &io {
                if let Some((rows, cols)) = st.size {
                    if let Err(err) = pty.resize(rows, cols) {
                        tracing::debug!("exec {id}: resize: {err}");
                    }
                }
                st.pty = Some(pty.clone());
            }
        }
        let waiter = e.clone();
        tokio::spawn(async move {
            let code = match exit.await {
                Ok(c) => c,
                Err(err) => {
                    tracing::warn!(exec = %waiter.id, "exec: {err}");
                    -1
                }
            };
            waiter.finish(code);
        });
        if detach {
            tokio::spawn(discard(io));
            return Ok(Reply::Empty(200));
        }
        let raw = e.tty;
        Ok(Reply::Hijack {
            raw,
            session: Box::new(move |conn: Box<dyn Hijacked>| run_session(e, io, conn).boxed()),
        })
    }
}

/// Reads a detached exec's output to nowhere, so it never blocks on a full pipe.
async fn discard(io: ExecIo) {
    match io {
        ExecIo::Pipes { stdout, stderr, .. } => {
            let mut sink = tokio::io::sink();
            let (mut out, mut err) = (stdout, stderr);
            let mut sink2 = tokio::io::sink();
            let _ = tokio::join!(
                tokio::io::copy(&mut out, &mut sink),
                tokio::io::copy(&mut err, &mut sink2)
            );
        }
        ExecIo::Tty(mut pty) => {
            let _ = tokio::io::copy(&mut pty, &mut tokio::io::sink()).await;
        }
    }
}

/// The hijacked connection: the client's bytes to the process's stdin, its output back
/// (multiplexed frames, or raw for a tty); closed once the output ended and the exit
/// code is recorded. A client that went away leaves the process running, as Docker's.
async fn run_session(e: Arc<Exec>, io: ExecIo, conn: Box<dyn Hijacked>) {
    let (mut from_client, mut to_client) = tokio::io::split(conn);
    let input: tokio::task::JoinHandle<()>;
    match io {
        ExecIo::Pipes {
            stdin,
            stdout,
            stderr,
        } => {
            input = tokio::spawn(async move {
                if let Some(mut stdin) = stdin {
                    // The client's half-close is the process's EOF.
                    let _ = tokio::io::copy(&mut from_client, &mut stdin).await;
                    let _ = stdin.shutdown().await;
                }
            });
            let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
            tokio::spawn(frames(stdout, 1, tx.clone()));
            tokio::spawn(frames(stderr, 2, tx));
            let mut client_gone = false;
            while let Some(frame) = rx.recv().await {
                if to_client.write_all(&frame).await.is_err() {
                    client_gone = true;
                    break;
                }
            }
            if client_gone {
                // Nobody reads any more: `frames` reads on to the end, into nothing.
                drop(rx);
                input.abort();
                return;
            }
        }
        ExecIo::Tty(pty) => {
            let mut to_pty = pty.clone();
            input = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut from_client, &mut to_pty).await;
            });
            let mut from_pty = pty.clone();
            if tokio::io::copy(&mut from_pty, &mut to_client)
                .await
                .is_err()
            {
                input.abort();
                tokio::spawn(discard(ExecIo::Tty(pty)));
                return;
            }
        }
    }
    e.exited().await;
    input.abort();
    let _ = to_client.flush().await;
    let _ = to_client.shutdown().await;
}

/// One output stream as multiplexed frames, until its EOF.
async fn frames(
    mut r: Box<dyn AsyncRead + Send + Unpin>,
    stream: u8,
    tx: tokio::sync::mpsc::Sender<bytes::Bytes>,
) {
    let mut buf = vec![0u8; 32 << 10];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                // Once nobody listens, read on to the end so the process never blocks.
                let _ = tx.send(mux_frame(stream, &buf[..n])).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_ids_are_docker_shaped() {
        let a = new_exec_id();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_exec_id());
    }

    #[test]
    fn start_failures_in_mobys_words() {
        assert_eq!(
            start_failure("exec: \"nosuch\": executable file not found in $PATH"),
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH: unknown"
        );
    }
}
