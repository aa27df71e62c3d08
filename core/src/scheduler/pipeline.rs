//! Runs a task group's filters over the nodes and explains why none fit.
//!
//! ```text
//! node ──Ready──Resources──Constraints──Platform──HostPorts──MaxReplicas──> fits
//!          │ the first failing filter counts the node against itself
//!          v
//! explain: "insufficient resources on 2 nodes; 1 node not available for new tasks"
//! ```
//! Filters are listed most failures first (ties in filter order).

use crate::scheduler::filter::Filter;
use crate::scheduler::node_info::NodeInfo;

#[derive(Debug, Clone)]
pub struct Pipeline {
    checklist: Vec<(Filter, usize)>,
}

impl Pipeline {
    pub fn new(filters: Vec<Filter>) -> Self {
        Pipeline {
            checklist: filters.into_iter().map(|f| (f, 0)).collect(),
        }
    }

    /// Whether the node, running `of_service` tasks of the service, passes every
    /// filter. Counts nothing.
    pub fn fits(&self, node: &NodeInfo<'_>, of_service: u32) -> bool {
        self.checklist
            .iter()
            .all(|(f, _)| f.check(node, of_service))
    }

    /// As `fits`, and a failure is counted against the first filter that refused.
    pub fn process(&mut self, node: &NodeInfo<'_>, of_service: u32) -> bool {
        for (filter, failures) in &mut self.checklist {
            if !filter.check(node, of_service) {
                *failures += 1;
                return false;
            }
        }
        true
    }

    /// `scheduling constraints not satisfied on 3 nodes; insufficient resources on 1 node`,
    /// or empty when no node was refused (there are no nodes).
    pub fn explain(&self) -> String {
        let mut failed: Vec<&(Filter, usize)> =
            self.checklist.iter().filter(|(_, n)| *n > 0).collect();
        failed.sort_by_key(|f| std::cmp::Reverse(f.1));
        failed
            .iter()
            .map(|(f, n)| f.explain(*n))
            .collect::<Vec<_>>()
            .join("; ")
    }
}
