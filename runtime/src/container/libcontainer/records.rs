//! The per-container records on disk, shared by the caller and the shim. Each is one
//! small JSON file in the container dir, written atomically (temp file, fsync, rename)
//! by exactly one writer, so any process (a restarted node too) can read them.
//!
//! ```text
//! meta.json     caller, at create   labels, stop signal, log options (never secrets)
//! state.json    shim, after create  container pid, shim pid + start time
//! started.json  start helper        when the container's process started
//! exit.json     shim, at exit       exit code, oom_killed, finished_at
//! shim.log      shim's stderr       diagnostics
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::container::{ExitStatus, LogOptions, Mount};
use crate::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub id: String,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub log: LogOptions,
    pub created_at: DateTime<Utc>,
    /// The spec's mounts; None in a record written before they were kept.
    #[serde(default)]
    pub mounts: Option<Vec<Mount>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimState {
    /// Host pid of the container's first process.
    pub pid: i32,
    pub shim_pid: i32,
    /// The shim's start time (clock ticks since boot, `/proc/<pid>/stat` field 22): a
    /// pid alone may have been reused by the time a restarted node looks.
    pub shim_start_time: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Started {
    pub started_at: DateTime<Utc>,
}

pub const META: &str = "meta.json";
pub const STATE: &str = "state.json";
pub const STARTED: &str = "started.json";
pub const EXIT: &str = "exit.json";
pub const SHIM_LOG: &str = "shim.log";

pub fn write<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(Error::path(&tmp))?;
    f.write_all(&serde_json::to_vec(value)?)
        .and_then(|()| f.sync_all())
        .map_err(Error::path(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(Error::path(&path))
}

/// `Ok(None)` when the record does not exist (yet).
pub fn read<T: DeserializeOwned>(dir: &Path, name: &str) -> Result<Option<T>> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::path(path)(e)),
    }
}

pub fn read_exit(dir: &Path) -> Result<Option<ExitStatus>> {
    read(dir, EXIT)
}

/// A process's start time in clock ticks since boot, or None when it is gone.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`, which may itself hold spaces and parens.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // field 3 (state) is fields[0]; field 22 (starttime) is fields[19]. A zombie still
    // has its stat but is as good as gone.
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}
