//! `swarm backup` and `swarmd --restore`: a manager's swarm state in one tar archive.
//!
//! ```text
//!  GET /swarm/backup ──► Raft's applied state at one index, as a Raft directory of its
//!                        own (swarm-raft's `backup`: sealed with this manager's data key)
//!                      + this node's identity: node-id, cluster-addrs.json, managers.json,
//!                        certificates/ (copied as they are: sealed under the unlock key
//!                        while autolock is on)
//!                      ──► tar: swarm-backup.json first, then the files
//!
//!  swarmd --restore FILE ──► the files into a data dir that holds no swarm state yet;
//!                            swarmd starts on them as after a restart (locked if the
//!                            keys are sealed); `swarm init --force-new-cluster` then
//!                            makes it the only manager.
//! ```
//!
//! Nothing in the archive is plain that is not plain on disk: the store (with the root
//! CA key, tokens, secrets, the unlock key) is in Raft's sealed records, and the data key
//! that opens them is either `certificates/raft-dek` (autolock off, as on disk) or inside
//! `swarm-node.key.locked` (autolock on).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use swarm_identity::{NODE_KEY_FILE, NODE_KEY_FILE_LOCKED};

use crate::certs;
use crate::error::{Error, Result};
use crate::manager::{raft_dir, Manager};

/// The archive's first entry: what it is and what it holds.
pub const MANIFEST: &str = "swarm-backup.json";
const FORMAT: u32 = 1;
/// The data dir's files that make this node's swarm state (besides `certificates/` and
/// `raft/`); a restore refuses a data dir that holds any of them.
const NODE_FILES: [&str; 3] = ["node-id", "cluster-addrs.json", "managers.json"];

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Manifest {
    pub format: u32,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// The Raft index whose applied state the archive holds.
    pub index: u64,
    pub term: u64,
    /// The node's keys are sealed under the unlock key: `swarm unlock` after the restore.
    pub autolock: bool,
    pub created_at: String,
}

/// A file of the archive: its path in the data dir, its bytes, its mode.
struct File {
    path: PathBuf,
    data: Vec<u8>,
    mode: u32,
}

fn read_file(data_dir: &Path, rel: &Path) -> Result<Option<File>> {
    use std::os::unix::fs::PermissionsExt;
    let path = data_dir.join(rel);
    match std::fs::read(&path) {
        Ok(data) => {
            let mode = std::fs::metadata(&path)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0o600);
            Ok(Some(File {
                path: rel.to_path_buf(),
                data,
                mode,
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("read {}", path.display()))(e)),
    }
}

/// Every file directly under `data_dir/rel`, in name order.
fn read_dir(data_dir: &Path, rel: &str) -> Result<Vec<File>> {
    let dir = data_dir.join(rel);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .map_err(Error::io(format!("read {}", dir.display())))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name())
        .collect();
    names.sort();
    let mut files = Vec::new();
    for name in names {
        if let Some(f) = read_file(data_dir, &Path::new(rel).join(name))? {
            files.push(f);
        }
    }
    Ok(files)
}

/// This node's certificates and keys as one consistent set. A reseal (autolock on, off,
/// a rotated key) swaps `swarm-node.key` + `raft-dek` for `swarm-node.key.locked` or back
/// while we read: read again until the set is whole. With the sealed bundle there, the
/// plain files are left out (they are on their way out).
fn read_certificates(data_dir: &Path) -> Result<(Vec<File>, bool)> {
    for _ in 0..10 {
        let files = read_dir(data_dir, "certificates")?;
        let has = |n: &str| files.iter().any(|f| f.path.file_name() == Some(n.as_ref()));
        if has(NODE_KEY_FILE_LOCKED) {
            let sealed = files
                .into_iter()
                .filter(|f| {
                    let n = f.path.file_name().unwrap_or_default();
                    n != NODE_KEY_FILE && n != certs::DEK_FILE
                })
                .collect();
            return Ok((sealed, true));
        }
        if has(NODE_KEY_FILE) && has(certs::DEK_FILE) {
            return Ok((files, false));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(Error::Other(
        "this node's keys are being resealed; try the backup again".into(),
    ))
}

/// The work directory of a backup (its Raft copy), under the data dir.
const WORK_PREFIX: &str = "backup-";

/// Removes the work directories a swarmd killed during a backup left (at startup).
pub fn remove_stale(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    for e in entries.flatten() {
        let stale = e.file_name().to_string_lossy().starts_with(WORK_PREFIX)
            && e.file_type().is_ok_and(|t| t.is_dir());
        if stale {
            tracing::info!(dir = %e.path().display(), "removing an unfinished backup");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// `GET /swarm/backup`: the archive of this manager's state, taken while it runs.
pub async fn backup(m: &Manager, data_dir: &Path, node_id: &str) -> Result<Vec<u8>> {
    let work = data_dir.join(format!("{WORK_PREFIX}{}", crate::ids::new_id()));
    std::fs::create_dir_all(&work).map_err(Error::io(format!("create {}", work.display())))?;
    let result = async {
        let raft = m.store.backup(&raft_dir(&work)).await?;
        let data_dir = data_dir.to_path_buf();
        let work = work.clone();
        let node_id = node_id.to_string();
        tokio::task::spawn_blocking(move || {
            let (certificates, autolock) = read_certificates(&data_dir)?;
            let manifest = Manifest {
                format: FORMAT,
                node_id,
                index: raft.index,
                term: raft.term,
                autolock,
                created_at: chrono::Utc::now().to_rfc3339(),
            };
            let mut files = vec![File {
                path: MANIFEST.into(),
                data: serde_json::to_vec_pretty(&manifest)?,
                mode: 0o600,
            }];
            for name in NODE_FILES {
                files.extend(read_file(&data_dir, Path::new(name))?);
            }
            files.extend(certificates);
            files.extend(read_dir(&work, "raft")?);
            archive(&files)
        })
        .await
        .map_err(|e| Error::Other(format!("backup task: {e}")))?
    }
    .await;
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn archive(files: &[File]) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for f in files {
        if let Some(parent) = f.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if dirs.insert(parent.to_path_buf()) {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o700);
                h.set_size(0);
                tar.append_data(&mut h, parent, std::io::empty())
                    .map_err(Error::io("write the backup archive"))?;
            }
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(f.data.len() as u64);
        h.set_mode(f.mode);
        h.set_mtime(0);
        tar.append_data(&mut h, &f.path, f.data.as_slice())
            .map_err(Error::io("write the backup archive"))?;
    }
    tar.into_inner()
        .map_err(Error::io("write the backup archive"))
}

/// `swarmd --restore FILE`: lays the archive's state into `data_dir`, which must hold no
/// swarm state yet (no node ID, certificates or Raft directory). Returns its manifest.
pub fn restore(file: &Path, data_dir: &Path) -> Result<Manifest> {
    for name in NODE_FILES.iter().chain(&["certificates", "raft"]) {
        if data_dir.join(name).exists() {
            return Err(Error::Other(format!(
                "{} already holds swarm state ({name}); restore into a new, empty data dir",
                data_dir.display()
            )));
        }
    }
    let mut bytes = Vec::new();
    let open = Error::io(format!("read {}", file.display()));
    if file == Path::new("-") {
        std::io::stdin().read_to_end(&mut bytes).map_err(open)?;
    } else {
        std::fs::File::open(file)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(open)?;
    }
    let not_a_backup = || Error::Other(format!("{} is not a swarm backup", file.display()));
    let mut tar = tar::Archive::new(bytes.as_slice());
    let mut entries = tar.entries().map_err(|_| not_a_backup())?;
    let manifest: Manifest = {
        let mut first = entries
            .next()
            .ok_or_else(not_a_backup)?
            .map_err(|_| not_a_backup())?;
        if first.path().ok().as_deref() != Some(Path::new(MANIFEST)) {
            return Err(not_a_backup());
        }
        let mut json = Vec::new();
        first.read_to_end(&mut json).map_err(|_| not_a_backup())?;
        serde_json::from_slice(&json).map_err(|_| not_a_backup())?
    };
    if manifest.format != FORMAT {
        return Err(Error::Other(format!(
            "{}: backup format {} is not known to this swarmd (it reads {FORMAT})",
            file.display(),
            manifest.format
        )));
    }
    std::fs::create_dir_all(data_dir)
        .map_err(Error::io(format!("create {}", data_dir.display())))?;
    for entry in entries {
        let mut entry = entry.map_err(|_| not_a_backup())?;
        // unpack_in refuses paths that leave the data dir (`..`, absolute).
        if !entry
            .unpack_in(data_dir)
            .map_err(Error::io(format!("restore into {}", data_dir.display())))?
        {
            return Err(not_a_backup());
        }
    }
    // Durable before swarmd reads it.
    for dir in [
        data_dir.to_path_buf(),
        raft_dir(data_dir),
        certs::dir(data_dir),
    ] {
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT,
            node_id: "n1".into(),
            index: 7,
            term: 2,
            autolock: false,
            created_at: "2026-12-07T00:00:00Z".into(),
        }
    }

    fn write_archive(path: &Path, files: &[(&str, &[u8])]) {
        let mut all = vec![File {
            path: MANIFEST.into(),
            data: serde_json::to_vec(&manifest()).unwrap(),
            mode: 0o600,
        }];
        all.extend(files.iter().map(|(p, d)| File {
            path: p.into(),
            data: d.to_vec(),
            mode: 0o600,
        }));
        std::fs::write(path, archive(&all).unwrap()).unwrap();
    }

    #[test]
    fn restores_into_an_empty_data_dir_and_refuses_one_in_use() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("b.tar");
        write_archive(
            &file,
            &[
                ("node-id", b"n1"),
                ("certificates/swarm-node.key.locked", b"sealed"),
                ("raft/raft-log.redb", b"log"),
            ],
        );
        let data = tmp.path().join("data");
        assert_eq!(restore(&file, &data).unwrap(), manifest());
        assert_eq!(std::fs::read(data.join("node-id")).unwrap(), b"n1");
        assert_eq!(
            std::fs::read(data.join("certificates/swarm-node.key.locked")).unwrap(),
            b"sealed"
        );
        let e = restore(&file, &data).unwrap_err().to_string();
        assert!(e.contains("already holds swarm state (node-id)"), "{e}");
    }

    #[test]
    fn stale_work_dirs_are_removed_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("backup-abc/raft")).unwrap();
        std::fs::create_dir_all(tmp.path().join("raft")).unwrap();
        std::fs::write(tmp.path().join("backup-file"), b"x").unwrap();
        remove_stale(tmp.path());
        assert!(!tmp.path().join("backup-abc").exists());
        assert!(tmp.path().join("raft").exists() && tmp.path().join("backup-file").exists());
    }

    #[test]
    fn refuses_what_is_not_a_backup() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("x.tar");
        std::fs::write(&file, b"hello").unwrap();
        let e = restore(&file, &tmp.path().join("d"))
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("is not a swarm backup"), "{e}");
    }
}
