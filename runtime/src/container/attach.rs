//! Processes run in a running container with their stdio handed to the caller
//! (`docker exec`): plain pipes, or a pseudo-terminal whose master the caller holds.
//!
//! ```text
//!  caller ──spawn──▶ `exec --attach` helper (stdio: the process's pipes, or /dev/null)
//!    ▲  control socket (fd 3, SOCK_SEQPACKET): one message each
//!    │    {"pid":N}  (with the pty master as SCM_RIGHTS when tty)
//!    │    {"exit_code":N}  or  {"error":"..","exit_code":127}
//!    └───────────────────────────────────────────────────
//! ```

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{Error, Result};

/// The process's stdio as the caller gets it.
pub enum ExecIo {
    Pipes {
        /// None unless stdin was asked for; dropping it closes the process's stdin.
        stdin: Option<Box<dyn AsyncWrite + Send + Unpin>>,
        stdout: Box<dyn AsyncRead + Send + Unpin>,
        stderr: Box<dyn AsyncRead + Send + Unpin>,
    },
    Tty(Pty),
}

/// A started exec: its host PID, its stdio, and its exit code to come.
pub struct AttachedExec {
    pub pid: i32,
    pub io: ExecIo,
    pub exit: futures::future::BoxFuture<'static, Result<i32>>,
}

/// One message of the control socket, helper to caller.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ControlMessageBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Docker's exit code for an exec that could not start: 127 when the command is not
/// there, 126 when it is but cannot run (runc's and moby's convention).
pub fn start_failure_code(missing: bool) -> i32 {
    if missing {
        127
    } else {
        126
    }
}

/// Sends one message, with `fd` attached when given (blocking; the helper's side).
pub fn send(sock: RawFd, body: &ControlMessageBody, fd: Option<RawFd>) -> Result<()> {
    let bytes = serde_json::to_vec(body)?;
    let iov = [IoSlice::new(&bytes)];
    let fds: Vec<RawFd> = fd.into_iter().collect();
    let cmsgs: Vec<ControlMessage> = if fds.is_empty() {
        Vec::new()
    } else {
        vec![ControlMessage::ScmRights(&fds)]
    };
    sendmsg::<()>(sock, &iov, &cmsgs, MsgFlags::empty(), None)?;
    Ok(())
}

/// Receives one message and the fds that came with it; None at EOF (the helper is gone).
fn recv_now(sock: RawFd) -> std::io::Result<Option<(ControlMessageBody, Vec<OwnedFd>)>> {
    use std::os::fd::FromRawFd;
    let mut buf = vec![0u8; 64 << 10];
    let mut cmsg = nix::cmsg_space!([RawFd; 2]);
    let (n, fds) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            sock,
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
        )
        .map_err(std::io::Error::from)?;
        let mut fds = Vec::new();
        for c in msg.cmsgs().map_err(std::io::Error::from)? {
            if let ControlMessageOwned::ScmRights(r) = c {
                // SAFETY: SCM_RIGHTS just gave this process these fds; nobody else owns them.
                fds.extend(r.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        (msg.bytes, fds)
    };
    if n == 0 {
        return Ok(None);
    }
    let body = serde_json::from_slice(&buf[..n]).map_err(std::io::Error::other)?;
    Ok(Some((body, fds)))
}

/// The caller's end of the control socket.
pub struct Control {
    fd: AsyncFd<OwnedFd>,
}

impl Control {
    /// `sock` must be non-blocking.
    pub fn new(sock: OwnedFd) -> Result<Control> {
        Ok(Control {
            // SAFETY: the AsyncFd owns the fd, so it stays open and the same while registered.
            fd: unsafe { AsyncFd::register(sock) }
                .map_err(|e| Error::io("watch exec control socket")(e.into()))?,
        })
    }

    /// The next message; an error once the helper went away without one.
    pub async fn recv(&self) -> Result<(ControlMessageBody, Vec<OwnedFd>)> {
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(Error::io("wait for exec helper"))?;
            match guard.try_io(|fd| recv_now(fd.as_raw_fd())) {
                Ok(Ok(Some(m))) => return Ok(m),
                Ok(Ok(None)) => {
                    return Err(Error::Other("exec helper exited without a word".into()))
                }
                Ok(Err(e)) => return Err(Error::io("read exec helper")(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

/// A pseudo-terminal's master: the exec's input and output, and its window size.
#[derive(Clone)]
pub struct Pty {
    fd: Arc<AsyncFd<OwnedFd>>,
}

impl Pty {
    /// Takes the master (made non-blocking here).
    pub fn new(master: OwnedFd) -> Result<Pty> {
        let flags = nix::fcntl::fcntl(master.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(master.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))?;
        Ok(Pty {
            // SAFETY: the AsyncFd owns the fd, so it stays open and the same while registered.
            fd: Arc::new(
                unsafe { AsyncFd::register(master) }
                    .map_err(|e| Error::io("watch pty")(e.into()))?,
            ),
        })
    }

    /// `TIOCSWINSZ`: the terminal's rows and columns (the process gets SIGWINCH).
    pub fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which lives across the call.
        let r = unsafe { libc::ioctl(self.fd.get_ref().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        if r < 0 {
            return Err(Error::io("resize pty")(std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

impl AsyncRead for Pty {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| {
                nix::unistd::read(fd.as_raw_fd(), unfilled).map_err(std::io::Error::from)
            }) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // Every slave fd closed: the end of the output, not a failure.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for Pty {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| nix::unistd::write(fd, buf).map_err(std::io::Error::from)) {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages_round_trip_with_an_fd() {
        let (a, b) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::SeqPacket,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let (r, _w) = nix::unistd::pipe().unwrap();
        let started = ControlMessageBody {
            pid: Some(42),
            ..Default::default()
        };
        send(a.as_raw_fd(), &started, Some(r.as_raw_fd())).unwrap();
        let done = ControlMessageBody {
            exit_code: Some(3),
            ..Default::default()
        };
        send(a.as_raw_fd(), &done, None).unwrap();
        drop(a);
        let (m, fds) = recv_now(b.as_raw_fd()).unwrap().unwrap();
        assert_eq!((m, fds.len()), (started, 1));
        let (m, fds) = recv_now(b.as_raw_fd()).unwrap().unwrap();
        assert_eq!((m, fds.len()), (done, 0));
        assert!(recv_now(b.as_raw_fd()).unwrap().is_none());
    }

    #[test]
    fn start_failures_as_docker_counts_them() {
        assert_eq!(start_failure_code(true), 127);
        assert_eq!(start_failure_code(false), 126);
    }
}
