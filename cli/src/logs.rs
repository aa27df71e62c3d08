//! What `service logs` and `container logs` share: the flags that choose the lines, the
//! query they become, and the daemon's multiplexed stream read frame by frame.
//!
//! ```text
//!   frames: [stream 1|2|3, 0, 0, 0, len u32 BE] payload   (3: the daemon's error)
//! ```

use std::io::Write;

use anyhow::Result;
use clap::Args;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::client::query_escape;
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct LogFlags {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all", value_name = "string")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for
    /// 42 minutes)
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
}

impl LogFlags {
    /// `stdout=1&stderr=1&tail=N[&follow=1][&timestamps=1][&since=T]`.
    pub fn query(&self) -> Result<String> {
        let mut q = format!("stdout=1&stderr=1&tail={}", query_escape(&self.tail));
        if self.follow {
            q += "&follow=1";
        }
        if self.timestamps {
            q += "&timestamps=1";
        }
        if let Some(since) = &self.since {
            q += "&since=";
            q += &query_escape(&crate::events::timestamp(since, chrono::Utc::now())?);
        }
        Ok(q)
    }
}

/// Splits a multiplexed stream into (stream, payload) frames; returns the bytes used.
pub fn demux(buf: &[u8]) -> (Vec<(u8, Vec<u8>)>, usize) {
    let mut frames = Vec::new();
    let mut at = 0;
    while buf.len() - at >= 8 {
        let len = u32::from_be_bytes([buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]]) as usize;
        if buf.len() - at - 8 < len {
            break;
        }
        frames.push((buf[at], buf[at + 8..at + 8 + len].to_vec()));
        at += 8 + len;
    }
    (frames, at)
}

/// A log stream's body, frame by frame (a TTY's raw body as stdout).
pub struct Frames {
    body: Incoming,
    tty: bool,
    buf: Vec<u8>,
}

impl Frames {
    pub fn new(body: Incoming, tty: bool) -> Frames {
        Frames {
            body,
            tty,
            buf: Vec::new(),
        }
    }

    /// The frames the next chunk completes; None at the end. The daemon's error in the
    /// stream (stdcopy's Systemerr) is an error, worded as the docker CLI words it.
    pub async fn next(&mut self) -> Result<Option<Vec<(u8, Vec<u8>)>>> {
        loop {
            let Some(frame) = self.body.frame().await else {
                return Ok(None);
            };
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            self.buf.extend_from_slice(&data);
            let frames = if self.tty {
                vec![(1u8, std::mem::take(&mut self.buf))]
            } else {
                let (frames, used) = demux(&self.buf);
                self.buf.drain(..used);
                frames
            };
            if let Some((_, text)) = frames.iter().find(|(stream, _)| *stream == 3) {
                let text = String::from_utf8_lossy(text);
                return Err(
                    UserError(format!("error from daemon in stream: {}", text.trim_end())).into(),
                );
            }
            return Ok(Some(frames));
        }
    }
}

/// Writes a frame's bytes where its stream goes: 2 to stderr, the rest to stdout.
pub fn write(stream: u8, bytes: &[u8]) {
    if stream == 2 {
        let _ = std::io::stderr().write_all(bytes);
    } else {
        let mut o = std::io::stdout();
        let _ = o.write_all(bytes);
        let _ = o.flush();
    }
}
