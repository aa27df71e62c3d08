//! The store: every object of the cluster in memory, the Raft state machine.
//!
//! ```text
//! Raft entry (index, time, [StoreAction]) ──> Store::apply ──> [Event] ──> leader loops
//!                                                │
//!            tables: services tasks nodes secrets configs cluster networks
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
mod network;
mod object;
mod ports;
mod secret;
mod snapshot;
mod table;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

pub use action::StoreAction;
pub use apply::task_status;
pub use event::Event;
pub use filter::{LabelFilter, NodeFilter, SecretFilter, ServiceFilter, TaskFilter};
pub use network::{network_subnets, publishes_ingress, spec_networks};
pub use object::{Object, ObjectKind, Stored};
pub use ports::check_port_conflicts;
pub use secret::{update_config, update_secret};
pub use snapshot::Snapshot;
use table::Table;

use crate::model::{Config, Network, Node, Secret, Service, Swarm, Task, TaskSpec};

#[derive(Debug, Clone, Default)]
pub struct Store {
    services: Table<Service>,
    tasks: Table<Task>,
    nodes: Table<Node>,
    secrets: Table<Secret>,
    configs: Table<Config>,
    cluster: Table<Swarm>,
    networks: Table<Network>,
    tasks_by_service: HashMap<String, BTreeSet<String>>,
    tasks_by_node: HashMap<String, BTreeSet<String>>,
    /// The spec the tasks of each service share (by service ID; see `share_spec`).
    task_specs: HashMap<String, Arc<TaskSpec>>,
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
            Object::Service(o) => self.services.insert(o).map(Object::Service),
            Object::Task(mut o) => {
                self.share_spec(&mut o);
                index_add(&mut self.tasks_by_service, &o.service_id, &o.meta.id);
                index_add(&mut self.tasks_by_node, &o.node_id, &o.meta.id);
                let old = self.tasks.insert(o)?;
                let new = self.tasks.get(&old.meta.id).expect("just inserted");
                let id = &old.meta.id;
                if old.service_id != new.service_id {
                    index_remove(&mut self.tasks_by_service, &old.service_id, id);
                }
                if old.node_id != new.node_id {
                    index_remove(&mut self.tasks_by_node, &old.node_id, id);
                }
                Some(Object::Task(old))
            }
            Object::Node(o) => self.nodes.insert(o).map(Object::Node),
            Object::Secret(o) => self.secrets.insert(o).map(Object::Secret),
            Object::Config(o) => self.configs.insert(o).map(Object::Config),
            Object::Cluster(o) => self.cluster.insert(o).map(Object::Cluster),
            Object::Network(o) => self.networks.insert(o).map(Object::Network),
        }
    }

    /// Makes `task` hold its service's one shared copy of its spec when they are equal
    /// (tasks decoded from the log or a snapshot each arrive with their own copy).
    fn share_spec(&mut self, task: &mut Task) {
        match self.task_specs.get(&task.service_id) {
            Some(shared) if Arc::ptr_eq(shared, &task.spec) => {}
            Some(shared) if **shared == *task.spec => task.spec = shared.clone(),
            _ => {
                self.task_specs
                    .insert(task.service_id.clone(), task.spec.clone());
            }
        }
    }

    fn remove_object(&mut self, kind: ObjectKind, id: &str) -> Option<Object> {
        match kind {
            ObjectKind::Service => {
                self.task_specs.remove(id);
                self.services.remove(id).map(Object::Service)
            }
            ObjectKind::Task => {
                let old = self.tasks.remove(id)?;
                index_remove(&mut self.tasks_by_service, &old.service_id, id);
                index_remove(&mut self.tasks_by_node, &old.node_id, id);
                Some(Object::Task(old))
            }
            ObjectKind::Node => self.nodes.remove(id).map(Object::Node),
            ObjectKind::Secret => self.secrets.remove(id).map(Object::Secret),
            ObjectKind::Config => self.configs.remove(id).map(Object::Config),
            ObjectKind::Cluster => self.cluster.remove(id).map(Object::Cluster),
            ObjectKind::Network => self.networks.remove(id).map(Object::Network),
        }
    }
}

fn index_add(index: &mut HashMap<String, BTreeSet<String>>, key: &str, id: &str) {
    if key.is_empty() {
        return;
    }
    match index.get_mut(key) {
        Some(ids) if ids.contains(id) => {}
        Some(ids) => {
            ids.insert(id.to_owned());
        }
        None => {
            index.insert(key.to_owned(), BTreeSet::from([id.to_owned()]));
        }
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
#[cfg(test)]
mod tests_network;
