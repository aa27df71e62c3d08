//! The store: every object of the cluster in memory, the Raft state machine.
//!
//! ```text
//! Raft entry (index, time, [StoreAction]) ──> Store::apply ──> [Event] ──> leader loops
//!                                                │
//!            tables: services tasks nodes secrets configs cluster
//!            indexes: unique names, tasks by service, tasks by node
//! ```
//!
//! Reads are plain borrows (`store.service(id)`, `find_service("web")`, `list_tasks(&f)`);
//! writes only through [`Store::apply`], so every manager applying the same log holds the
//! same store. `snapshot()`/`restore()` serialize it whole for Raft snapshots.

mod action;
mod apply;
mod event;
mod filter;
mod lookup;
mod object;
mod secret;
mod snapshot;
mod table;

use std::collections::{BTreeSet, HashMap};

pub use action::StoreAction;
pub use apply::task_status;
pub use event::Event;
pub use filter::{LabelFilter, NodeFilter, SecretFilter, ServiceFilter, TaskFilter};
pub use object::{Object, ObjectKind, Stored};
pub use secret::{update_config, update_secret};
pub use snapshot::Snapshot;
use table::Table;

use crate::model::{Config, Node, Secret, Service, Swarm, Task};

#[derive(Debug, Clone, Default)]
pub struct Store {
    services: Table<Service>,
    tasks: Table<Task>,
    nodes: Table<Node>,
    secrets: Table<Secret>,
    configs: Table<Config>,
    cluster: Table<Swarm>,
    tasks_by_service: HashMap<String, BTreeSet<String>>,
    tasks_by_node: HashMap<String, BTreeSet<String>>,
    applied_index: u64,
}

impl Store {
    pub fn new() -> Self {
        Store::default()
    }

    /// The Raft index of the last entry applied.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Writes an object, keeping the indexes; returns the one it replaced.
    fn insert_object(&mut self, object: Object) -> Option<Object> {
        match object {
            Object::Service(o) => self
                .services
                .insert(*o)
                .map(|o| Object::Service(Box::new(o))),
            Object::Task(o) => {
                let id = o.meta.id.clone();
                index_add(&mut self.tasks_by_service, &o.service_id, &id);
                index_add(&mut self.tasks_by_node, &o.node_id, &id);
                let old = self.tasks.insert(*o);
                if let Some(old) = &old {
                    let new = self.tasks.get(&id).expect("just inserted");
                    if old.service_id != new.service_id {
                        index_remove(&mut self.tasks_by_service, &old.service_id, &id);
                    }
                    if old.node_id != new.node_id {
                        index_remove(&mut self.tasks_by_node, &old.node_id, &id);
                    }
                }
                old.map(|o| Object::Task(Box::new(o)))
            }
            Object::Node(o) => self.nodes.insert(*o).map(|o| Object::Node(Box::new(o))),
            Object::Secret(o) => self.secrets.insert(*o).map(|o| Object::Secret(Box::new(o))),
            Object::Config(o) => self.configs.insert(*o).map(|o| Object::Config(Box::new(o))),
            Object::Cluster(o) => self
                .cluster
                .insert(*o)
                .map(|o| Object::Cluster(Box::new(o))),
        }
    }

    fn remove_object(&mut self, kind: ObjectKind, id: &str) -> Option<Object> {
        match kind {
            ObjectKind::Service => self
                .services
                .remove(id)
                .map(|o| Object::Service(Box::new(o))),
            ObjectKind::Task => {
                let old = self.tasks.remove(id)?;
                index_remove(&mut self.tasks_by_service, &old.service_id, id);
                index_remove(&mut self.tasks_by_node, &old.node_id, id);
                Some(Object::Task(Box::new(old)))
            }
            ObjectKind::Node => self.nodes.remove(id).map(|o| Object::Node(Box::new(o))),
            ObjectKind::Secret => self.secrets.remove(id).map(|o| Object::Secret(Box::new(o))),
            ObjectKind::Config => self.configs.remove(id).map(|o| Object::Config(Box::new(o))),
            ObjectKind::Cluster => self
                .cluster
                .remove(id)
                .map(|o| Object::Cluster(Box::new(o))),
        }
    }
}

fn index_add(index: &mut HashMap<String, BTreeSet<String>>, key: &str, id: &str) {
    if !key.is_empty() {
        index
            .entry(key.to_owned())
            .or_default()
            .insert(id.to_owned());
    }
}

fn index_remove(index: &mut HashMap<String, BTreeSet<String>>, key: &str, id: &str) {
    if let Some(ids) = index.get_mut(key) {
        ids.remove(id);
        if ids.is_empty() {
            index.remove(key);
        }
    }
}

#[cfg(test)]
mod tests;
