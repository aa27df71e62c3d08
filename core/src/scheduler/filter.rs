//! The filters a node must pass to take a task, in swarmkit's order, each with the
//! words Docker uses when it fails on some nodes.

use crate::model::{NodeAvailability, NodeState, Platform, Task};
use crate::scheduler::constraint::{self, Constraint};
use crate::scheduler::node_info::{reservations, NodeInfo};

/// One filter, set up for one task.
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
    /// Fewer than `max` tasks of the service already on the node.
    MaxReplicas { service_id: String, max: u64 },
}

impl Filter {
    /// The filters that apply to `task`, in order (a filter with nothing to check is
    /// left out, so it never appears in an explanation).
    pub fn for_task(task: &Task) -> Vec<Filter> {
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
            if p.max_replicas > 0 {
                filters.push(Filter::MaxReplicas {
                    service_id: task.service_id.clone(),
                    max: p.max_replicas,
                });
            }
        }
        filters
    }

    pub fn check(&self, n: &NodeInfo<'_>) -> bool {
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
            Filter::MaxReplicas { service_id, max } => {
                (n.active_of_service(service_id) as u64) < *max
            }
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
fn platform_matches(want: &Platform, node: &Platform) -> bool {
    (want.architecture.is_empty()
        || normalize_arch(&want.architecture) == normalize_arch(&node.architecture))
        && (want.os.is_empty() || want.os == node.os)
}
