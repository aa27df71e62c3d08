//! Container logs in Docker's json-file format: one JSON object per line,
//! `{"log":"hello\n","stream":"stdout","time":"2026-11-22T05:15:45.123456789Z"}`.
//!
//! ```text
//!  container stdout/stderr ──▶ LogWriter (shim or copier; sync) ──▶ container.log
//!                                  splits lines, stamps, rotates      container.log.1 ...
//!  read(path, tail, follow) ◀── oldest file first, then follows the current one
//! ```
//!
//! The writer is synchronous on purpose: it runs inside the single-threaded shim.
//! Files are bounded by `LogOptions { max_size, max_files }`.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::LogOptions;

/// A line longer than this is written in pieces, as Docker does (16 KiB).
const MAX_LINE: usize = 16 * 1024;
/// How often a follower looks for new data once it reached the end of the file.
const FOLLOW_POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One log line as stored; `line` keeps its trailing newline when it had one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: LogStream,
    pub time: DateTime<Utc>,
    pub line: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Record {
    log: String,
    stream: LogStream,
    time: String,
}

/// Appends log lines to `path`, rotating to `path.1`, `path.2`, ... when it grows past
/// `max_size`.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    opts: LogOptions,
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    pub fn open(path: &Path, opts: &LogOptions) -> io::Result<LogWriter> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            opts: opts.clone(),
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Record `data` read from `stream`: complete lines are written at once, a trailing
    /// partial line waits for its end (or for `flush`).
    pub fn write(&mut self, stream: LogStream, data: &[u8]) -> io::Result<()> {
        let idx = stream as usize;
        let mut buf = std::mem::take(&mut self.partial[idx]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos + 1;
            self.emit(stream, &buf[start..end])?;
            start = end;
        }
        while buf.len() - start >= MAX_LINE {
            self.emit(stream, &buf[start..start + MAX_LINE])?;
            start += MAX_LINE;
        }
        buf.drain(..start);
        self.partial[idx] = buf;
        Ok(())
    }

    /// Write out any partial lines (the stream ended without a newline).
    pub fn flush(&mut self) -> io::Result<()> {
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            let buf = std::mem::take(&mut self.partial[stream as usize]);
            if !buf.is_empty() {
                self.emit(stream, &buf)?;
            }
        }
        self.file.flush()
    }

    fn emit(&mut self, stream: LogStream, line: &[u8]) -> io::Result<()> {
        let record = Record {
            log: String::from_utf8_lossy(line).into_owned(),
            stream,
            time: Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
        };
        let mut json = serde_json::to_vec(&record)?;
        json.push(b'\n');
        if self.opts.max_size > 0
            && self.size > 0
            && self.size + json.len() as u64 > self.opts.max_size
        {
            self.rotate()?;
        }
        self.file.write_all(&json)?;
        self.size += json.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.opts.max_files.max(1);
        if keep == 1 {
            self.file.set_len(0)?;
            self.file.seek(SeekFrom::Start(0))?;
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(rotated(&self.path, keep - 1));
        for n in (1..keep - 1).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, n + 1))?;
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// What to read: the last `tail` lines (all when None), then, with `follow`, new lines as
/// they come until `until` completes (typically the container's exit) and the file is
/// drained, or until the stream is dropped.
#[derive(Default)]
pub struct ReadOptions {
    pub tail: Option<usize>,
    pub follow: bool,
    pub until: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

/// Read a container's log: rotated files oldest first, then the current one.
pub fn read(
    path: PathBuf,
    opts: ReadOptions,
) -> impl futures::Stream<Item = io::Result<LogEntry>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        if let Err(e) = pump(&path, opts, &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

type Sender = tokio::sync::mpsc::Sender<io::Result<LogEntry>>;

async fn pump(path: &Path, opts: ReadOptions, tx: &Sender) -> io::Result<()> {
    // History: every rotated file, oldest first, then the current file up to its end.
    let mut history = Vec::new();
    let mut n = 1;
    while rotated(path, n).exists() {
        history.push(rotated(path, n));
        n += 1;
    }
    history.reverse();
    let mut entries = Vec::new();
    for file in &history {
        read_lines(&mut BufReader::new(File::open(file)?), &mut entries)?;
    }
    let mut current = match File::open(path) {
        Ok(f) => Some(BufReader::new(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if let Some(reader) = current.as_mut() {
        read_lines(reader, &mut entries)?;
    }
    let skip = opts.tail.map_or(0, |t| entries.len().saturating_sub(t));
    for entry in entries.into_iter().skip(skip) {
        if tx.send(Ok(entry)).await.is_err() {
            return Ok(());
        }
    }
    if !opts.follow {
        return Ok(());
    }

    let mut until = opts.until;
    let mut done = false;
    loop {
        // Reopen when the file was rotated or appeared.
        let ino = std::fs::metadata(path).ok().map(|m| m.ino());
        let open_ino = current
            .as_ref()
            .and_then(|r| r.get_ref().metadata().ok())
            .map(|m| m.ino());
        let mut batch = Vec::new();
        if let Some(reader) = current.as_mut() {
            read_lines(reader, &mut batch)?;
        }
        if ino.is_some() && ino != open_ino {
            current = File::open(path).ok().map(BufReader::new);
            if let Some(reader) = current.as_mut() {
                read_lines(reader, &mut batch)?;
            }
        }
        let drained = batch.is_empty();
        for entry in batch {
            if tx.send(Ok(entry)).await.is_err() {
                return Ok(());
            }
        }
        if done && drained {
            return Ok(());
        }
        match until.as_mut() {
            Some(fut) if drained => {
                tokio::select! {
                    _ = fut => { done = true; until = None; }
                    _ = tokio::time::sleep(FOLLOW_POLL) => {}
                    _ = tx.closed() => return Ok(()),
                }
            }
            _ if drained => {
                tokio::select! {
                    _ = tokio::time::sleep(FOLLOW_POLL) => {}
                    _ = tx.closed() => return Ok(()),
                }
            }
            _ => {}
        }
    }
}

/// Read complete records from the reader's position; a record still being written
/// (no newline yet) is left for the next call.
fn read_lines<R: BufRead + Seek>(reader: &mut R, out: &mut Vec<LogEntry>) -> io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') {
            reader.seek(SeekFrom::Current(-(n as i64)))?;
            return Ok(());
        }
        if let Some(entry) = parse(&line) {
            out.push(entry);
        }
    }
}

fn parse(line: &[u8]) -> Option<LogEntry> {
    let record: Record = serde_json::from_slice(line).ok()?;
    Some(LogEntry {
        stream: record.stream,
        time: DateTime::parse_from_rfc3339(&record.time)
            .ok()?
            .with_timezone(&Utc),
        line: record.log.into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn lines(entries: &[LogEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.line).into_owned())
            .collect()
    }

    #[test]
    fn splits_lines_and_keeps_partials_until_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(&path, &LogOptions::default()).unwrap();
        w.write(LogStream::Stdout, b"one\ntw").unwrap();
        w.write(LogStream::Stderr, b"err\n").unwrap();
        w.write(LogStream::Stdout, b"o\nthree").unwrap();
        w.flush().unwrap();
        let mut out = Vec::new();
        read_lines(&mut BufReader::new(File::open(&path).unwrap()), &mut out).unwrap();
        assert_eq!(lines(&out), ["one\n", "err\n", "two\n", "three"]);
        assert_eq!(out[1].stream, LogStream::Stderr);
        assert_eq!(out[2].stream, LogStream::Stdout);
    }

    #[test]
    fn long_lines_are_cut_at_16k() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(&path, &LogOptions::default()).unwrap();
        w.write(LogStream::Stdout, &vec![b'x'; MAX_LINE + 10])
            .unwrap();
        w.flush().unwrap();
        let mut out = Vec::new();
        read_lines(&mut BufReader::new(File::open(&path).unwrap()), &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].line.len(), MAX_LINE);
        assert_eq!(out[1].line.len(), 10);
    }

    #[tokio::test]
    async fn rotation_is_bounded_and_tail_reads_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let opts = LogOptions {
            max_size: 1000,
            max_files: 3,
        };
        let mut w = LogWriter::open(&path, &opts).unwrap();
        for i in 0..200 {
            w.write(LogStream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        w.flush().unwrap();
        assert!(rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists(), "only max_files files are kept");
        let total: u64 = [path.clone(), rotated(&path, 1), rotated(&path, 2)]
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        assert!(total <= 3000, "log files hold {total} bytes");

        let opts = ReadOptions {
            tail: Some(3),
            ..Default::default()
        };
        let got: Vec<_> = read(path, opts).map(|e| e.unwrap()).collect().await;
        assert_eq!(lines(&got), ["line 197\n", "line 198\n", "line 199\n"]);
    }

    #[tokio::test]
    async fn follow_sees_new_lines_and_ends_after_until() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(&path, &LogOptions::default()).unwrap();
        w.write(LogStream::Stdout, b"before\n").unwrap();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let opts = ReadOptions {
            tail: None,
            follow: true,
            until: Some(Box::pin(async move {
                let _ = done_rx.await;
            })),
        };
        let mut stream = Box::pin(read(path, opts));
        assert_eq!(stream.next().await.unwrap().unwrap().line, b"before\n");
        w.write(LogStream::Stderr, b"after\n").unwrap();
        let next = stream.next().await.unwrap().unwrap();
        assert_eq!(
            (next.line.as_slice(), next.stream),
            (&b"after\n"[..], LogStream::Stderr)
        );
        w.write(LogStream::Stdout, b"last\n").unwrap();
        done_tx.send(()).unwrap();
        let rest: Vec<_> = stream.map(|e| e.unwrap()).collect().await;
        assert_eq!(lines(&rest), ["last\n"]);
    }
}
