//! The manager's store: tables of swarm, nodes, services and tasks, changed only by
//! proposing [`Action`]s, which are logged (fsync) before they are applied.
//!
//! Stand-in until `swarm-core`'s store and `swarm-raft` land: the log here is a local
//! append-only file, so every acknowledged write survives `kill -9`, and the entry shape
//! (a batch of actions with the proposer's timestamp) is the one Raft will carry.
//!
//! ```text
//!  <data>/manager/snapshot.json   the tables at some index (written at open)
//!  <data>/manager/wal.jsonl       one entry per line after that index
//! ```

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::model::{Node, Service, Swarm, Task};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    PutSwarm(Swarm),
    PutNode(Node),
    PutService(Service),
    DeleteService(String),
    PutTask(Task),
    DeleteTask(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    index: u64,
    /// The proposer's clock: every replica applies the same timestamps.
    now: DateTime<Utc>,
    actions: Vec<Action>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tables {
    pub index: u64,
    pub swarm: Option<Swarm>,
    pub nodes: BTreeMap<String, Node>,
    pub services: BTreeMap<String, Service>,
    pub tasks: BTreeMap<String, Task>,
}

impl Tables {
    fn apply(&mut self, e: &Entry) {
        self.index = e.index;
        let v = super::model::Version { index: e.index };
        for a in &e.actions {
            match a.clone() {
                Action::PutSwarm(mut s) => {
                    s.version = v;
                    self.swarm = Some(s);
                }
                Action::PutNode(mut n) => {
                    n.version = v;
                    self.nodes.insert(n.id.clone(), n);
                }
                Action::PutService(mut s) => {
                    s.version = v;
                    self.services.insert(s.id.clone(), s);
                }
                Action::DeleteService(id) => {
                    self.services.remove(&id);
                }
                Action::PutTask(mut t) => {
                    t.version = v;
                    self.tasks.insert(t.id.clone(), t);
                }
                Action::DeleteTask(id) => {
                    self.tasks.remove(&id);
                }
            }
        }
    }
}

pub struct Store {
    dir: PathBuf,
    tables: Mutex<Tables>,
    wal: Mutex<File>,
    applied: watch::Sender<u64>,
}

impl Store {
    /// Open (or create) the store in `dir`: snapshot, then the log replayed on top; a
    /// torn last line (killed mid-write, never acknowledged) is dropped.
    pub fn open(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(Error::io(format!("create {}", dir.display())))?;
        let snap_path = dir.join("snapshot.json");
        let mut tables: Tables = match std::fs::read(&snap_path) {
            Ok(b) => serde_json::from_slice(&b)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Tables::default(),
            Err(e) => return Err(Error::io(format!("read {}", snap_path.display()))(e)),
        };
        let wal_path = dir.join("wal.jsonl");
        if let Ok(f) = File::open(&wal_path) {
            for line in std::io::BufReader::new(f).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Entry>(&line) {
                    Ok(e) if e.index > tables.index => tables.apply(&e),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        // Compact: the replayed tables become the snapshot, the log starts empty.
        let tmp = dir.join("snapshot.json.tmp");
        {
            let mut f = File::create(&tmp).map_err(Error::io("write snapshot"))?;
            f.write_all(&serde_json::to_vec(&tables)?)
                .and_then(|_| f.sync_all())
                .map_err(Error::io("write snapshot"))?;
        }
        std::fs::rename(&tmp, &snap_path).map_err(Error::io("write snapshot"))?;
        let wal = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&wal_path)
            .map_err(Error::io(format!("open {}", wal_path.display())))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        let (applied, _) = watch::channel(tables.index);
        Ok(Store {
            dir: dir.to_path_buf(),
            tables: Mutex::new(tables),
            wal: Mutex::new(wal),
            applied,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Log (fsync) then apply a batch; returns its index. Empty batches are skipped.
    pub fn propose(&self, actions: Vec<Action>) -> Result<u64> {
        if actions.is_empty() {
            return Ok(self.read(|t| t.index));
        }
        let mut tables = self.tables.lock().expect("store lock");
        let entry = Entry {
            index: tables.index + 1,
            now: Utc::now(),
            actions,
        };
        let mut line = serde_json::to_vec(&entry)?;
        line.push(b'\n');
        {
            let mut wal = self.wal.lock().expect("wal lock");
            wal.write_all(&line)
                .and_then(|_| wal.sync_data())
                .map_err(Error::io("append to the store's log"))?;
        }
        tables.apply(&entry);
        let index = tables.index;
        drop(tables);
        self.applied.send_replace(index);
        Ok(index)
    }

    /// A consistent read of the tables.
    pub fn read<T>(&self, f: impl FnOnce(&Tables) -> T) -> T {
        f(&self.tables.lock().expect("store lock"))
    }

    /// Applied index, changing on every proposal.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manager::model::Version;

    fn service(id: &str) -> Service {
        Service {
            id: id.into(),
            version: Version::default(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            spec: serde_json::json!({"Name": id, "Unknown": {"kept": true}}),
            previous_spec: None,
            endpoint: serde_json::json!({}),
            update_status: None,
        }
    }

    #[test]
    fn writes_survive_reopen_and_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            assert_eq!(
                s.propose(vec![Action::PutService(service("a"))]).unwrap(),
                1
            );
            assert_eq!(
                s.propose(vec![Action::PutService(service("b"))]).unwrap(),
                2
            );
            s.propose(vec![Action::DeleteService("a".into())]).unwrap();
        }
        // A half-written entry, as a kill -9 mid-write leaves it.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("wal.jsonl"))
            .unwrap();
        f.write_all(b"{\"index\":4,\"now\":").unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.read(|t| {
            assert_eq!(t.index, 3);
            assert!(!t.services.contains_key("a"));
            assert_eq!(t.services["b"].version.index, 2);
            assert_eq!(t.services["b"].spec["Unknown"]["kept"], true);
        });
        assert_eq!(
            s.propose(vec![Action::PutService(service("c"))]).unwrap(),
            4
        );
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.read(|t| t.services.len()), 2);
    }
}
