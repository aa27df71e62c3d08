//! `Snapshot`: the whole store as one serde value, for Raft snapshots. Restoring rebuilds
//! the indexes and re-checks unique IDs and names.

use serde::{Deserialize, Serialize};

use super::object::{Object, Stored};
use super::table::Table;
use super::Store;
use crate::error::{Error, Result};
use crate::model::{Config, Network, Node, Secret, Service, Swarm, Task};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The Raft index of the last entry applied.
    pub index: u64,
    pub services: Vec<Service>,
    pub tasks: Vec<Task>,
    pub nodes: Vec<Node>,
    pub secrets: Vec<Secret>,
    pub configs: Vec<Config>,
    pub cluster: Option<Swarm>,
    /// Absent in snapshots made before networks existed.
    #[serde(default)]
    pub networks: Vec<Network>,
}

/// [`Snapshot`] borrowed from the store: the same fields, so the same JSON.
#[derive(Serialize)]
struct SnapshotView<'a> {
    index: u64,
    services: Vec<&'a Service>,
    tasks: Vec<&'a Task>,
    nodes: Vec<&'a Node>,
    secrets: Vec<&'a Secret>,
    configs: Vec<&'a Config>,
    cluster: Option<&'a Swarm>,
    networks: Vec<&'a Network>,
}

impl Store {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            index: self.applied_index,
            services: self.services.iter().cloned().collect(),
            tasks: self.tasks.iter().cloned().collect(),
            nodes: self.nodes.iter().cloned().collect(),
            secrets: self.secrets.iter().cloned().collect(),
            configs: self.configs.iter().cloned().collect(),
            cluster: self.cluster().cloned(),
            networks: self.networks.iter().cloned().collect(),
        }
    }

    /// A store holding exactly the snapshot's objects.
    pub fn restore(snapshot: Snapshot) -> Result<Store> {
        let mut store = Store {
            applied_index: snapshot.index,
            ..Store::default()
        };
        check_unique(&store.services, &snapshot.services)?;
        check_unique(&store.secrets, &snapshot.secrets)?;
        check_unique(&store.configs, &snapshot.configs)?;
        check_unique(&store.networks, &snapshot.networks)?;
        let objects = snapshot
            .services
            .into_iter()
            .map(|o| Object::Service(Box::new(o)))
            .chain(
                snapshot
                    .tasks
                    .into_iter()
                    .map(|o| Object::Task(Box::new(o))),
            )
            .chain(
                snapshot
                    .nodes
                    .into_iter()
                    .map(|o| Object::Node(Box::new(o))),
            )
            .chain(
                snapshot
                    .secrets
                    .into_iter()
                    .map(|o| Object::Secret(Box::new(o))),
            )
            .chain(
                snapshot
                    .configs
                    .into_iter()
                    .map(|o| Object::Config(Box::new(o))),
            )
            .chain(
                snapshot
                    .cluster
                    .into_iter()
                    .map(|o| Object::Cluster(Box::new(o))),
            )
            .chain(
                snapshot
                    .networks
                    .into_iter()
                    .map(|o| Object::Network(Box::new(o))),
            );
        for object in objects {
            let (kind, id) = (object.kind(), object.id().to_owned());
            if store.insert_object(object).is_some() {
                return Err(Error::Exists { kind, id });
            }
        }
        Ok(store)
    }

    /// The snapshot as JSON bytes.
    pub fn snapshot_json(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_snapshot_json(&mut out)
            .expect("the model always serializes into memory");
        out
    }

    /// Writes [`Store::snapshot_json`]'s bytes to `w` as they are made, from the store's
    /// own objects (a [`Snapshot`] of a million tasks would first copy every one).
    pub fn write_snapshot_json(&self, w: impl std::io::Write) -> serde_json::Result<()> {
        let view = SnapshotView {
            index: self.applied_index,
            services: self.services.iter().collect(),
            tasks: self.tasks.iter().collect(),
            nodes: self.nodes.iter().collect(),
            secrets: self.secrets.iter().collect(),
            configs: self.configs.iter().collect(),
            cluster: self.cluster(),
            networks: self.networks.iter().collect(),
        };
        serde_json::to_writer(w, &view)
    }

    /// A store from [`Store::snapshot_json`]'s bytes.
    pub fn restore_json(bytes: &[u8]) -> Result<Store> {
        let snapshot: Snapshot =
            serde_json::from_slice(bytes).map_err(|e| Error::Decode(e.to_string()))?;
        Store::restore(snapshot)
    }

    /// A store from [`Store::write_snapshot_json`]'s bytes, read as they come.
    pub fn read_snapshot_json(r: impl std::io::Read) -> Result<Store> {
        let snapshot: Snapshot = serde_json::from_reader(std::io::BufReader::new(r))
            .map_err(|e| Error::Decode(e.to_string()))?;
        Store::restore(snapshot)
    }
}

/// Unique names within one snapshot list (the empty table is only for its types).
fn check_unique<T: Stored>(_: &Table<T>, rows: &[T]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for row in rows {
        if let Some(name) = row.unique_name().filter(|n| !n.is_empty()) {
            if !seen.insert(name.to_lowercase()) {
                return Err(Error::NameConflict {
                    kind: T::KIND,
                    name: name.to_owned(),
                });
            }
        }
    }
    Ok(())
}
