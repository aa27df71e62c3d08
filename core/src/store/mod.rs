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
//!
//! Every map in it is persistent (`imbl`) and every row an `Arc`, so `clone()` is O(1)
//! and the clone shares all of it: the Raft state machine publishes such a copy after each
//! applied batch for readers and snapshots, and goes on writing its own.

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

use std::sync::Arc;

pub use action::StoreAction;
pub use apply::task_status;
pub use event::Event;
pub use filter::{LabelFilter, NodeFilter, SecretFilter, ServiceFilter, TaskFilter};
use imbl::{HashMap, OrdSet};
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
    tasks_by_service: HashMap<String, OrdSet<String>>,
    tasks_by_node: HashMap<String, OrdSet<String>>,
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
    fn insert_object(&mut self, object: Object) -> Option<Row> {
        self.insert_row(Row::from(object))
    }

    /// [`Store::insert_object`] for a row already shared (an undone change's old row).
    fn insert_row(&mut self, row: Row) -> Option<Row> {
        match row {
            Row::Service(o) => self.services.insert(o).map(Row::Service),
            Row::Task(mut o) => {
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
                Some(Row::Task(old))
            }
            Row::Node(o) => self.nodes.insert(o).map(Row::Node),
            Row::Secret(o) => self.secrets.insert(o).map(Row::Secret),
            Row::Config(o) => self.configs.insert(o).map(Row::Config),
            Row::Cluster(o) => self.cluster.insert(o).map(Row::Cluster),
            Row::Network(o) => self.networks.insert(o).map(Row::Network),
        }
    }

    /// Makes `task` hold its service's one shared copy of its spec when they are equal
    /// (tasks decoded from the log or a snapshot each arrive with their own copy).
    fn share_spec(&mut self, task: &mut Arc<Task>) {
        match self.task_specs.get(&task.service_id) {
            Some(shared) if Arc::ptr_eq(shared, &task.spec) => {}
            Some(shared) if **shared == *task.spec => Arc::make_mut(task).spec = shared.clone(),
            _ => {
                self.task_specs
                    .insert(task.service_id.clone(), task.spec.clone());
            }
        }
    }

    fn remove_object(&mut self, kind: ObjectKind, id: &str) -> Option<Row> {
        match kind {
            ObjectKind::Service => {
                self.task_specs.remove(id);
                self.services.remove(id).map(Row::Service)
            }
            ObjectKind::Task => {
                let old = self.tasks.remove(id)?;
                index_remove(&mut self.tasks_by_service, &old.service_id, id);
                index_remove(&mut self.tasks_by_node, &old.node_id, id);
                Some(Row::Task(old))
            }
            ObjectKind::Node => self.nodes.remove(id).map(Row::Node),
            ObjectKind::Secret => self.secrets.remove(id).map(Row::Secret),
            ObjectKind::Config => self.configs.remove(id).map(Row::Config),
            ObjectKind::Cluster => self.cluster.remove(id).map(Row::Cluster),
            ObjectKind::Network => self.networks.remove(id).map(Row::Network),
        }
    }
}

/// A stored row, possibly shared with published copies of the store.
enum Row {
    Service(Arc<Service>),
    Task(Arc<Task>),
    Node(Arc<Node>),
    Secret(Arc<Secret>),
    Config(Arc<Config>),
    Cluster(Arc<Swarm>),
    Network(Arc<Network>),
}

impl From<Object> for Row {
    fn from(object: Object) -> Row {
        match object {
            Object::Service(o) => Row::Service(Arc::from(o)),
            Object::Task(o) => Row::Task(Arc::from(o)),
            Object::Node(o) => Row::Node(Arc::from(o)),
            Object::Secret(o) => Row::Secret(Arc::from(o)),
            Object::Config(o) => Row::Config(Arc::from(o)),
            Object::Cluster(o) => Row::Cluster(Arc::from(o)),
            Object::Network(o) => Row::Network(Arc::from(o)),
        }
    }
}

impl Row {
    fn kind(&self) -> ObjectKind {
        match self {
            Row::Service(_) => ObjectKind::Service,
            Row::Task(_) => ObjectKind::Task,
            Row::Node(_) => ObjectKind::Node,
            Row::Secret(_) => ObjectKind::Secret,
            Row::Config(_) => ObjectKind::Config,
            Row::Cluster(_) => ObjectKind::Cluster,
            Row::Network(_) => ObjectKind::Network,
        }
    }

    fn id(&self) -> &str {
        match self {
            Row::Service(o) => &o.meta().id,
            Row::Task(o) => &o.meta().id,
            Row::Node(o) => &o.meta().id,
            Row::Secret(o) => &o.meta().id,
            Row::Config(o) => &o.meta().id,
            Row::Cluster(o) => &o.meta().id,
            Row::Network(o) => &o.meta().id,
        }
    }

    /// The row as an object of its own: copied while a published store still holds it.
    fn into_object(self) -> Object {
        fn own<T: Clone>(row: Arc<T>) -> Box<T> {
            Box::new(Arc::unwrap_or_clone(row))
        }
        match self {
            Row::Service(o) => Object::Service(own(o)),
            Row::Task(o) => Object::Task(own(o)),
            Row::Node(o) => Object::Node(own(o)),
            Row::Secret(o) => Object::Secret(own(o)),
            Row::Config(o) => Object::Config(own(o)),
            Row::Cluster(o) => Object::Cluster(own(o)),
            Row::Network(o) => Object::Network(own(o)),
        }
    }
}

fn index_add(index: &mut HashMap<String, OrdSet<String>>, key: &str, id: &str) {
    if key.is_empty() {
        return;
    }
    match index.get_mut(key) {
        Some(ids) if ids.contains(id) => {}
        Some(ids) => {
            ids.insert(id.to_owned());
        }
        None => {
            index.insert(key.to_owned(), OrdSet::unit(id.to_owned()));
        }
    }
}

fn index_remove(index: &mut HashMap<String, OrdSet<String>>, key: &str, id: &str) {
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
