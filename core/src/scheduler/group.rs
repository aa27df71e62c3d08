//! Pending tasks in groups the filters cannot tell apart.
//!
//! Two tasks of the same service with the same `Resources` and `Placement` get the
//! same answer from every filter on every node (host ports come from the service), so
//! the pipeline runs once per node for the whole group, not once per task. swarmkit
//! groups by service and spec version; comparing the two fields that matter also
//! groups tasks that carry no spec version.

use std::collections::HashMap;

use crate::model::Task;

#[derive(Debug, Clone)]
pub struct TaskGroup<'a> {
    /// The service's number in `Cluster`.
    pub service: u32,
    /// Oldest first.
    pub tasks: Vec<&'a Task>,
}

impl<'a> TaskGroup<'a> {
    /// The task the group's filters are made from.
    pub fn first(&self) -> &'a Task {
        self.tasks[0]
    }
}

fn same_placement(a: &Task, b: &Task) -> bool {
    a.spec.resources == b.spec.resources && a.spec.placement == b.spec.placement
}

/// Groups `pending`; the oldest task (by creation, then ID) comes first in its group,
/// and groups come in the order of their oldest task, so a pass is deterministic.
pub fn group_pending<'a>(
    mut pending: Vec<&'a Task>,
    mut service_of: impl FnMut(&'a str) -> u32,
) -> Vec<TaskGroup<'a>> {
    pending.sort_unstable_by(|a, b| (a.meta.created_at, a.id()).cmp(&(b.meta.created_at, b.id())));
    let mut groups: Vec<TaskGroup<'a>> = Vec::new();
    let mut by_service: HashMap<u32, Vec<usize>> = HashMap::new();
    for t in pending {
        let service = service_of(&t.service_id);
        let candidates = by_service.entry(service).or_default();
        match candidates
            .iter()
            .find(|&&g| same_placement(groups[g].first(), t))
        {
            Some(&g) => groups[g].tasks.push(t),
            None => {
                candidates.push(groups.len());
                groups.push(TaskGroup {
                    service,
                    tasks: vec![t],
                });
            }
        }
    }
    groups
}
