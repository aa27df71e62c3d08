//! The filters a node must pass to take a task, in swarmkit's order, each with the
//! words Docker uses when it fails on some nodes.
//!
//! Ready, Constraints and Platform depend on the node alone; Resources, HostPorts and
//! MaxReplicas only get stricter as tasks are placed on the node. So a node that fails
//! a filter for a task fails it for every later task of the same group: the placement
//! loop drops it for good and never looks at it again.

use crate::model::{NodeAvailability, NodeState, Platform, Task};
use crate::scheduler::constraint::{self, Constraint};
use crate::scheduler::node_info::{reservations, HostPort, NodeInfo};

/// One filter, set up for one task (or a group of tasks with the same placement).
#[derive(Debug, Clone)]
pub enum Filter {
    /// Node Ready and availability Active.
    Ready,
    /// CPU and memory reservations fit in what the node has left.
    Resources { nano_cpus: i64, memory_bytes: i64 },
    /// Every placement constraint holds.
    Constraints(Vec<Constraint>),
    /// The node's OS/architecture is one of the task's platforms.
    Platform(Vec<Platform>),
    /// None of the task's host-mode ports is held by a task already on the node.
    HostPorts(Vec<HostPort>),
    /// Fewer than `max` tasks of the service already on the node.
    MaxReplicas { max: u64 },
}

impl Filter {
    /// The filters that apply to `task`, whose service publishes `host_ports`, in
    /// order (a filter with nothing to check is left out, so it never appears in an
    /// explanation).
    pub fn for_task(task: &Task, host_ports: &[HostPort]) -> Vec<Filter> {
        let mut filters = vec![Filter::Ready];
        let (nano_cpus, memory_bytes) = reservations(task);
        if nano_cpus > 0 || memory_bytes > 0 {
            filters.push(Filter::Resources {
                nano_cpus,
                memory_bytes,
            });
        }
        if let Some(p) = &task.spec.placement {
            if !p.constraints.is_empty() {
                // Validated by the API; a task whose constraints do not parse is placed
                // as if it had none (swarmkit does the same).
                if let Ok(c) = constraint::parse_all(&p.constraints) {
                    filters.push(Filter::Constraints(c));
                }
            }
            if !p.platforms.is_empty() {
                filters.push(Filter::Platform(p.platforms.clone()));
            }
        }
        if !host_ports.is_empty() {
            filters.push(Filter::HostPorts(host_ports.to_vec()));
        }
        if let Some(max) = task.spec.placement.as_ref().map(|p| p.max_replicas) {
            if max > 0 {
                filters.push(Filter::MaxReplicas { max });
            }
        }
        filters
    }

    /// Whether node `n`, which runs `of_service` active tasks of the task's service,
    /// passes.
    pub fn check(&self, n: &NodeInfo<'_>, of_service: u32) -> bool {
        match self {
            Filter::Ready => {
                n.node.status.state == Some(NodeState::Ready)
                    && n.node
                        .spec
                        .availability
                        .as_ref()
                        .unwrap_or(&NodeAvailability::Active)
                        == &NodeAvailability::Active
            }
            Filter::Resources {
                nano_cpus,
                memory_bytes,
            } => *nano_cpus <= n.available_nano_cpus && *memory_bytes <= n.available_memory_bytes,
            Filter::Constraints(c) => constraint::node_matches(c, n.node),
            Filter::Platform(platforms) => {
                let node = &n.node.description.platform;
                platforms.iter().any(|p| platform_matches(p, node))
            }
            Filter::HostPorts(ports) => !ports.iter().any(|p| n.holds_port(p)),
            Filter::MaxReplicas { max } => u64::from(of_service) < *max,
        }
    }

    /// Docker's words for this filter failing on `nodes` nodes.
    pub fn explain(&self, nodes: usize) -> String {
        let (one, many) = match self {
            Filter::Ready => (
                "1 node not available for new tasks",
                "nodes not available for new tasks",
            ),
            Filter::Resources { .. } => (
                "insufficient resources on 1 node",
                "insufficient resources on",
            ),
            Filter::Constraints(_) => (
                "scheduling constraints not satisfied on 1 node",
                "scheduling constraints not satisfied on",
            ),
            Filter::Platform(_) => ("unsupported platform on 1 node", "unsupported platform on"),
            Filter::HostPorts(_) => (
                "host-mode port already in use on 1 node",
                "host-mode port already in use on",
            ),
            Filter::MaxReplicas { .. } => return "max replicas per node limit exceed".to_string(),
        };
        match (nodes, self) {
            (1, _) => one.to_string(),
            (n, Filter::Ready) => format!("{n} {many}"),
            (n, _) => format!("{many} {n} nodes"),
        }
    }
}

fn normalize_arch(a: &str) -> &str {
    match a {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// An empty field in the wanted platform matches anything.
pub(crate) fn platform_matches(want: &Platform, node: &Platform) -> bool {
    (want.architecture.is_empty()
        || normalize_arch(&want.architecture) == normalize_arch(&node.architecture))
        && (want.os.is_empty() || want.os == node.os)
}
