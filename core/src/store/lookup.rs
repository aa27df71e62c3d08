//! Reads: by full ID, by unique name, and Docker's "ID, name or unique ID prefix" lookup
//! (`find_*`) with Docker's errors: `service x not found`, `service x is ambiguous (2
//! matches found)`.

use super::object::{ObjectKind, Stored};
use super::table::Table;
use super::Store;
use crate::error::{Error, Result};
use crate::model::{Config, Network, Node, Secret, Service, Swarm, Task};

impl Store {
    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.get(id)
    }

    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.get(id)
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
    }

    pub fn secret(&self, id: &str) -> Option<&Secret> {
        self.secrets.get(id)
    }

    pub fn config(&self, id: &str) -> Option<&Config> {
        self.configs.get(id)
    }

    pub fn network(&self, id: &str) -> Option<&Network> {
        self.networks.get(id)
    }

    /// By name, ignoring case (names are unique that way).
    pub fn network_by_name(&self, name: &str) -> Option<&Network> {
        self.networks.by_name(name)
    }

    /// All networks, in ID order.
    pub fn networks(&self) -> impl Iterator<Item = &Network> {
        self.networks.iter()
    }

    /// A network by full ID, name, or unique ID prefix (Docker's order).
    pub fn find_network(&self, input: &str) -> Result<&Network> {
        find(&self.networks, input, |name| {
            self.networks.by_name(name).into_iter().collect()
        })
    }

    /// The cluster object, once `swarm init` created it.
    pub fn cluster(&self) -> Option<&Swarm> {
        self.cluster.iter().next()
    }

    /// By name, ignoring case (names are unique that way).
    pub fn service_by_name(&self, name: &str) -> Option<&Service> {
        self.services.by_name(name)
    }

    pub fn secret_by_name(&self, name: &str) -> Option<&Secret> {
        self.secrets.by_name(name)
    }

    pub fn config_by_name(&self, name: &str) -> Option<&Config> {
        self.configs.by_name(name)
    }

    /// All services, in ID order.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.iter()
    }

    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.iter()
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter()
    }

    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.secrets.iter()
    }

    pub fn configs(&self) -> impl Iterator<Item = &Config> {
        self.configs.iter()
    }

    /// The tasks of a service (every state), in ID order. Uses the index.
    pub fn tasks_of_service<'a>(&'a self, service_id: &str) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks_by_service
            .get(service_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
    }

    /// The tasks assigned to a node (every state), in ID order. Uses the index.
    pub fn tasks_on_node<'a>(&'a self, node_id: &str) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks_by_node
            .get(node_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
    }

    /// A service by full ID, name, or unique ID prefix (Docker's order).
    pub fn find_service(&self, input: &str) -> Result<&Service> {
        find(&self.services, input, |name| {
            self.services.by_name(name).into_iter().collect()
        })
    }

    /// A task by full ID or unique ID prefix.
    pub fn find_task(&self, input: &str) -> Result<&Task> {
        find(&self.tasks, input, |_| Vec::new())
    }

    /// A node by full ID, name (`Spec.Name`, else hostname), or unique ID prefix. Two
    /// nodes may share a hostname: that is ambiguous.
    pub fn find_node(&self, input: &str) -> Result<&Node> {
        find(&self.nodes, input, |name| {
            self.nodes.iter().filter(|n| n.name() == name).collect()
        })
    }

    pub fn find_secret(&self, input: &str) -> Result<&Secret> {
        find(&self.secrets, input, |name| {
            self.secrets.by_name(name).into_iter().collect()
        })
    }

    pub fn find_config(&self, input: &str) -> Result<&Config> {
        find(&self.configs, input, |name| {
            self.configs.by_name(name).into_iter().collect()
        })
    }
}

/// Docker's lookup (daemon/cluster/helpers.go): the full ID; else the name; else a
/// unique ID prefix. More than one match is ambiguous, none is `<kind> x not found`.
fn find<'a, T: Stored>(
    table: &'a Table<T>,
    input: &str,
    by_name: impl FnOnce(&str) -> Vec<&'a T>,
) -> Result<&'a T> {
    let kind: ObjectKind = T::KIND;
    if input.is_empty() {
        return Err(Error::NotFound {
            kind,
            name: input.to_owned(),
        });
    }
    if let Some(row) = table.get(input) {
        return Ok(row);
    }
    let mut matches = by_name(input);
    if matches.is_empty() {
        matches = table.by_prefix(input);
    }
    match matches.len() {
        0 => Err(Error::NotFound {
            kind,
            name: input.to_owned(),
        }),
        1 => Ok(matches[0]),
        n => Err(Error::Ambiguous {
            kind,
            name: input.to_owned(),
            matches: n,
        }),
    }
}
