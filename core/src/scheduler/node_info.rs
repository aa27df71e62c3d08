//! What the scheduler knows of a node while it places tasks: the node, its tasks that
//! hold resources, and what is left.
//!
//! ```text
//! node.Description.Resources − Σ reservations of its tasks (PENDING..=RUNNING) = available
//! ```

use std::collections::BTreeMap;

use crate::model::{Node, NodeRole, Task};
use crate::scheduler::constraint::NodeAttributes;
use crate::state::TaskState;

#[derive(Debug, Clone)]
pub struct NodeInfo<'a> {
    pub node: &'a Node,
    /// Tasks on the node that run or will: desired state COMPLETE or earlier.
    pub active_tasks: usize,
    pub active_by_service: BTreeMap<String, usize>,
    pub available_nano_cpus: i64,
    pub available_memory_bytes: i64,
}

/// A task holds resources on its node from assignment until it ends (swarmkit counts
/// PENDING..=RUNNING; a task with a node is at least ASSIGNED).
pub fn holds_resources(task: &Task) -> bool {
    !task.node_id.is_empty()
        && task.status.state >= TaskState::Pending
        && task.status.state <= TaskState::Running
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
            active_by_service: BTreeMap::new(),
            available_nano_cpus: node.description.resources.nano_cpus,
            available_memory_bytes: node.description.resources.memory_bytes,
        }
    }

    /// Counts a task placed on this node.
    pub fn add_task(&mut self, task: &Task) {
        let (cpu, mem) = reservations(task);
        self.available_nano_cpus -= cpu;
        self.available_memory_bytes -= mem;
        if task.desired_state <= TaskState::Complete {
            self.active_tasks += 1;
            *self
                .active_by_service
                .entry(task.service_id.clone())
                .or_default() += 1;
        }
    }

    pub fn active_of_service(&self, service_id: &str) -> usize {
        self.active_by_service.get(service_id).copied().unwrap_or(0)
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
