//! What the scheduler knows of a node while it places tasks: the node, how many tasks
//! it runs, what is left of its resources, and the host-mode ports its tasks hold.
//!
//! ```text
//! node.Description.Resources − Σ reservations of its tasks (PENDING..=RUNNING) = available
//! ```
//!
//! Counts per service are not kept here but in `Cluster` (one list per service), so a
//! node costs no map and a task group reads its service's counts in one pass.

use crate::model::{Node, NodeRole, PortConfig, PortProtocol, PublishMode, Task};
use crate::scheduler::constraint::NodeAttributes;
use crate::state::TaskState;

/// A published port bound on the node itself (`mode=host`), which only one task per
/// node can hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub protocol: PortProtocol,
    pub port: u32,
}

/// The host-mode ports among `ports`: those published with `mode=host` and a port
/// number (a host port of 0 is picked by the node and never conflicts).
pub fn host_ports(ports: &[PortConfig]) -> Vec<HostPort> {
    ports
        .iter()
        .filter(|p| p.publish_mode_or_default() == PublishMode::Host && p.published_port != 0)
        .map(|p| HostPort {
            protocol: p.protocol_or_default(),
            port: p.published_port,
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct NodeInfo<'a> {
    pub node: &'a Node,
    /// Tasks on the node that run or will: desired state COMPLETE or earlier.
    pub active_tasks: u32,
    pub available_nano_cpus: i64,
    pub available_memory_bytes: i64,
    pub used_host_ports: Vec<HostPort>,
}

/// A task holds resources on its node from assignment until it ends (swarmkit counts
/// PENDING..=RUNNING; a task with a node is at least ASSIGNED).
pub fn holds_resources(task: &Task) -> bool {
    !task.node_id.is_empty()
        && task.status.state >= TaskState::Pending
        && task.status.state <= TaskState::Running
}

/// A task the node counts when it ranks (swarmkit's `ActiveTasksCount`).
pub fn is_active(task: &Task) -> bool {
    task.desired_state <= TaskState::Complete
}

/// `(nano_cpus, memory_bytes)` a task reserves.
pub fn reservations(task: &Task) -> (i64, i64) {
    task.spec
        .resources
        .as_ref()
        .and_then(|r| r.reservations.as_ref())
        .map(|r| (r.nano_cpus, r.memory_bytes))
        .unwrap_or((0, 0))
}

impl<'a> NodeInfo<'a> {
    pub fn new(node: &'a Node) -> Self {
        NodeInfo {
            node,
            active_tasks: 0,
            available_nano_cpus: node.description.resources.nano_cpus,
            available_memory_bytes: node.description.resources.memory_bytes,
            used_host_ports: Vec::new(),
        }
    }

    /// Counts a task placed on this node: its reservations, its host ports, and (if
    /// `active`) one more task.
    pub fn add_task(&mut self, (cpu, mem): (i64, i64), ports: &[HostPort], active: bool) {
        self.available_nano_cpus -= cpu;
        self.available_memory_bytes -= mem;
        self.used_host_ports.extend_from_slice(ports);
        if active {
            self.active_tasks += 1;
        }
    }

    pub fn holds_port(&self, port: &HostPort) -> bool {
        self.used_host_ports.contains(port)
    }
}

impl NodeAttributes for Node {
    fn id(&self) -> &str {
        &self.meta.id
    }
    fn hostname(&self) -> &str {
        &self.description.hostname
    }
    fn addr(&self) -> &str {
        &self.status.addr
    }
    fn role(&self) -> &str {
        self.spec
            .role
            .as_ref()
            .map_or(NodeRole::Worker.as_str(), |r| r.as_str())
    }
    fn os(&self) -> &str {
        &self.description.platform.os
    }
    fn arch(&self) -> &str {
        &self.description.platform.architecture
    }
    fn node_label(&self, name: &str) -> Option<&str> {
        self.spec.labels.get(name).map(String::as_str)
    }
    fn engine_label(&self, name: &str) -> Option<&str> {
        self.description.engine.labels.get(name).map(String::as_str)
    }
}
