//! The FIFOs containerd's runc shim writes a process's stdout/stderr into, and the
//! thread that copies them out (into the container log, or an exec's capture buffer).
//!
//! ```text
//!  container ──pipes──▶ shim ──write ends──▶ <dir>/stdout.fifo ─┐
//!                                            <dir>/stderr.fifo ─┴─▶ one copier thread ──▶ sink
//! ```
//!
//! One thread polls both read ends, so lines keep the order in which they reached us
//! (two threads would race each other). Read ends are opened `O_NONBLOCK` (opening never
//! waits for the shim) and polled: Linux reports `POLLHUP` on a FIFO only once a writer
//! that came after our open has gone, so "no writer yet" and "writer finished" are told
//! apart without blocking. A FIFO whose writer went away before we opened (a task that
//! exited while the caller was down) never reports anything: the copier then ends when
//! told to stop.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use tokio::sync::oneshot;

use crate::{Error, Result};

/// How often a copier with nothing to read looks at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Make a FIFO at `path` (keeping one left by an earlier run: the shim may hold it).
pub fn make(path: &Path) -> Result<()> {
    match nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600)) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(Error::path(path)(e.into())),
    }
}

/// Open the read end without waiting for a writer.
fn open_read(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(Error::path(path))
}

/// The copier of one process's streams: stop it, or wait until it saw every end.
pub struct Copier {
    stop: Arc<AtomicBool>,
    done: oneshot::Receiver<()>,
}

impl Copier {
    /// Copy everything written to the FIFOs at `paths` into `sink(stream index, data)`
    /// until their writers close them (or [`Copier::stop`]); `sink(i, None)` marks the
    /// end of stream `i`. `sink` runs on the copier's own thread.
    pub fn spawn(
        paths: &[PathBuf],
        mut sink: impl FnMut(usize, Option<&[u8]>) + Send + 'static,
    ) -> Result<Copier> {
        let files = paths
            .iter()
            .map(|p| open_read(p))
            .collect::<Result<Vec<_>>>()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, done) = oneshot::channel();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("ctrd-fifo".into())
            .spawn(move || {
                copy(files, &flag, &mut sink);
                let _ = tx.send(());
            })
            .map_err(Error::io("spawn fifo copier"))?;
        Ok(Copier { stop, done })
    }

    /// Wait up to `deadline` for every stream to end, then stop the copier (it drains
    /// what is buffered first).
    pub async fn finish(self, deadline: Duration) {
        if tokio::time::timeout(deadline, self.done).await.is_err() {
            self.stop.store(true, Ordering::SeqCst);
        }
    }

    /// The flag [`Copier::stop`] sets, for whoever must stop it later.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Stop now (after draining what is already buffered).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn copy(files: Vec<File>, stop: &AtomicBool, sink: &mut impl FnMut(usize, Option<&[u8]>)) {
    let mut buf = vec![0u8; 32 << 10];
    let mut open: Vec<(usize, File)> = files.into_iter().enumerate().collect();
    while !open.is_empty() {
        let timeout = PollTimeout::try_from(STOP_POLL).unwrap_or(PollTimeout::NONE);
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd> = open
                .iter()
                .map(|(_, f)| PollFd::new(f.as_fd(), PollFlags::POLLIN))
                .collect();
            match nix::poll::poll(&mut fds, timeout) {
                Ok(_) => fds.iter().map(|p| p.any().unwrap_or(false)).collect(),
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!("poll fifos: {e}");
                    vec![true; open.len()]
                }
            }
        };
        let stopping = stop.load(Ordering::SeqCst);
        let mut ended = Vec::new();
        for (k, (stream, file)) in open.iter_mut().enumerate() {
            if !ready[k] && !stopping {
                continue;
            }
            // Readable or hung up: drain until EAGAIN (writer still there) or EOF.
            let eof = loop {
                match file.read(&mut buf) {
                    // Without a readiness report, 0 only means "no writer now".
                    Ok(0) => break ready[k] || stopping,
                    Ok(n) => sink(*stream, Some(&buf[..n])),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break stopping,
                    Err(e) => {
                        tracing::warn!("read fifo: {e}");
                        break true;
                    }
                }
            };
            if eof {
                ended.push(k);
            }
        }
        for k in ended.into_iter().rev() {
            let (stream, _) = open.remove(k);
            sink(stream, None);
        }
    }
}
