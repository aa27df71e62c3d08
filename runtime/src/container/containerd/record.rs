//! Our own record of one containerd-backed container, `<dir>/containerd.json`: what
//! containerd forgets once a task is deleted (exit code, OOM, times) and what a restarted
//! caller needs to adopt the container (log options, stop signal).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::container::{ExitStatus, LogOptions, Mount};
use crate::{Error, Result};

pub const FILE: &str = "containerd.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub labels: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub exit: Option<ExitStatus>,
    pub log: LogOptions,
    pub stop_signal: Option<String>,
    /// The spec's mounts; None in a record written before they were kept.
    #[serde(default)]
    pub mounts: Option<Vec<Mount>>,
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// The record in `dir`, or None when there is none (never created, or removed).
pub fn load(dir: &Path) -> Result<Option<Record>> {
    let p = path(dir);
    match std::fs::read(&p) {
        Ok(data) => Ok(Some(serde_json::from_slice(&data)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::path(p)(e)),
    }
}

/// Write the record atomically (temp file, fsync, rename): a caller killed mid-write
/// leaves the previous record, never half of one.
pub fn save(dir: &Path, rec: &Record) -> Result<()> {
    let p = path(dir);
    let tmp = dir.join(format!("{FILE}.tmp"));
    let data = serde_json::to_vec_pretty(rec)?;
    let mut f = std::fs::File::create(&tmp).map_err(Error::path(&tmp))?;
    f.write_all(&data).map_err(Error::path(&tmp))?;
    f.sync_all().map_err(Error::path(&tmp))?;
    std::fs::rename(&tmp, &p).map_err(Error::path(&p))
}
