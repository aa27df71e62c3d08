//! Which nodes may hold a service's tasks: swarmkit's `isValidNode` for global modes,
//! and its constraint enforcer (a node whose labels changed loses the tasks whose
//! constraints it no longer meets).
//!
//! ```text
//!                 exists, not Down, not drained, constraints + platform hold ──> may keep
//!   may keep  +   Ready and Active (not paused)                             ──> may start
//! ```
//!
//! Constraints are matched by the scheduler's constraint module, so the two never
//! disagree about a node.

use crate::model::{Node, NodeAvailability, NodeState, TaskSpec};
use crate::scheduler::constraint;
use crate::scheduler::filter::platform_matches;

/// Whether the task spec's placement (constraints and platforms) allows the node. A
/// constraint that does not parse (refused by the API) is ignored, as the scheduler does.
pub fn fits(spec: &TaskSpec, node: &Node) -> bool {
    let Some(p) = &spec.placement else {
        return true;
    };
    let constraints_hold = match constraint::parse_all(&p.constraints) {
        Ok(c) => constraint::node_matches(&c, node),
        Err(_) => true,
    };
    let platform_ok = p.platforms.is_empty()
        || p.platforms
            .iter()
            .any(|want| platform_matches(want, &node.description.platform));
    constraints_hold && platform_ok
}

/// Whether a task of `spec` may stay (or be restarted) on the node.
pub fn may_keep(spec: &TaskSpec, node: Option<&Node>) -> bool {
    let Some(n) = node else {
        return false;
    };
    n.status.state != Some(NodeState::Down)
        && n.spec.availability != Some(NodeAvailability::Drain)
        && fits(spec, n)
}

/// Whether a new task of `spec` may be made on the node (global modes).
pub fn may_start(spec: &TaskSpec, node: &Node) -> bool {
    may_keep(spec, Some(node))
        && node.status.state == Some(NodeState::Ready)
        && node
            .spec
            .availability
            .as_ref()
            .is_none_or(|a| *a == NodeAvailability::Active)
}
