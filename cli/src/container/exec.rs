//! `swarm container exec [-i] [-t] [-d] [-e] [-u] [-w] CONTAINER COMMAND [ARG...]` (and
//! `swarm exec`), as `docker exec` runs it:
//!
//! ```text
//!  POST /containers/{c}/exec ──▶ Id ──▶ POST /exec/{id}/start (Upgrade: tcp)
//!   stdin ──▶ hijacked connection ──▶ stdout/stderr (frames) or the terminal (raw)
//!  output ends ──▶ GET /exec/{id}/json ──▶ exit with its ExitCode
//! ```
//!
//! With `-t` and a terminal on stdin, the terminal goes raw for the session and its
//! size follows the window (`POST /exec/{id}/resize`).

use std::io::{IsTerminal, Read, Write};

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::{query_escape, Client};
use crate::logs::demux;
use crate::{ExitStatus, UserError};

#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Set environment variables
    #[arg(short, long, value_name = "list")]
    pub env: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Give extended privileges to the command (accepted, not used)
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long, value_name = "string")]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "string")]
    pub workdir: Option<String>,
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// COMMAND [ARG...]
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

/// The ExecConfig `docker exec` sends for these flags.
pub fn exec_config(a: &ExecArgs) -> Value {
    json!({
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": a.tty,
        "AttachStdin": a.interactive && !a.detach,
        "AttachStdout": !a.detach,
        "AttachStderr": !a.detach,
        "Detach": a.detach,
        "Env": a.env,
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": a.command,
    })
}

/// The terminal in raw mode until dropped.
struct RawTerminal(rustix::termios::Termios);

impl RawTerminal {
    fn enter() -> Result<RawTerminal> {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw)?;
        Ok(RawTerminal(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.0,
        );
    }
}

/// The terminal's rows and columns, when stdout is one.
fn window_size() -> Option<(u16, u16)> {
    let ws = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
    (ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

pub async fn run(client: &Client, a: ExecArgs) -> Result<()> {
    let stdin_tty = std::io::stdin().is_terminal();
    if a.interactive && a.tty && !stdin_tty {
        return Err(UserError("the input device is not a TTY".into()).into());
    }
    let created = client
        .post_json(
            &format!("/containers/{}/exec", query_escape(&a.container)),
            &exec_config(&a),
        )
        .await?;
    let id = created["Id"].as_str().unwrap_or_default().to_string();
    let start = format!("/exec/{id}/start");
    if a.detach {
        client
            .post_json(&start, &json!({"Detach": true, "Tty": a.tty}))
            .await?;
        return Ok(());
    }
    let size = if a.tty { window_size() } else { None };
    let mut body = json!({"Detach": false, "Tty": a.tty});
    if let Some((h, w)) = size {
        body["ConsoleSize"] = json!([h, w]);
    }
    let (raw, conn) = client.hijack(&start, &body).await?;
    let _terminal = if a.tty && stdin_tty {
        Some(RawTerminal::enter()?)
    } else {
        None
    };
    let resize = |(h, w): (u16, u16)| {
        let path = format!("/exec/{id}/resize?h={h}&w={w}");
        async move {
            let _ = client.post_json(&path, &Value::Null).await;
        }
    };
    if let Some(s) = size {
        resize(s).await;
    }
    let (mut from_daemon, mut to_daemon) = tokio::io::split(conn);

    // stdin on a thread of its own: a blocking read must not hold the runtime at exit.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
    if a.interactive {
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buf = vec![0u8; 32 << 10];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx.blocking_send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    } else {
        drop(tx);
    }
    let input = async {
        while let Some(chunk) = rx.recv().await {
            if to_daemon.write_all(&chunk).await.is_err() {
                return;
            }
        }
        // The process's EOF, as the docker CLI's CloseWrite.
        if a.interactive && !a.tty {
            let _ = to_daemon.shutdown().await;
        }
        std::future::pending::<()>().await
    };
    let output = async {
        let mut buf = vec![0u8; 32 << 10];
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let n = match from_daemon.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if raw {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&buf[..n]);
                let _ = out.flush();
                continue;
            }
            pending.extend_from_slice(&buf[..n]);
            let (frames, used) = demux(&pending);
            pending.drain(..used);
            for (stream, payload) in frames {
                crate::logs::write(stream, &payload);
            }
        }
    };
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?;
    let follow_window = async {
        while winch.recv().await.is_some() {
            if let Some(s) = window_size() {
                resize(s).await;
            }
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        () = output => {}
        () = input => {}
        () = follow_window, if a.tty && stdin_tty => {}
    }
    drop(_terminal);
    let inspect = client.get_json(&format!("/exec/{id}/json")).await?;
    match inspect["ExitCode"].as_i64().unwrap_or(0) {
        0 => Ok(()),
        code => Err(ExitStatus(code as i32).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ExecArgs,
    }

    #[test]
    fn exec_config_as_the_docker_cli_sends_it() {
        let t = T::parse_from([
            "x", "-i", "-e", "A=1", "-u", "nobody", "web.1.x", "sh", "-c", "ls -l",
        ]);
        let c = exec_config(&t.a);
        assert_eq!(c["Cmd"], json!(["sh", "-c", "ls -l"]));
        assert_eq!(c["AttachStdin"], true);
        assert_eq!(c["AttachStdout"], true);
        assert_eq!(c["Tty"], false);
        assert_eq!(c["Env"], json!(["A=1"]));
        assert_eq!(c["User"], "nobody");
        let d = T::parse_from(["x", "-d", "-i", "c", "top"]);
        let c = exec_config(&d.a);
        assert_eq!(
            (c["AttachStdin"].clone(), c["AttachStdout"].clone()),
            (json!(false), json!(false))
        );
    }
}
