//! Places one task group: the filters once per node, a decision tree of the nodes
//! that fit, then one task per pick.
//!
//! ```text
//! group (K tasks) ──Filter::for_task──> pipeline
//! nodes ──pipeline.fits──> Tree (spread levels; heap of fitting nodes per leaf)
//!       ──Tree::fill(K)──> placed[0..k] ──> Assign{tasks[j], node of placed[j]}
//!                          k < K ──> every node through pipeline.process ──> explanation
//! ```

use crate::model::{Node, Task};
use crate::scheduler::cluster::Cluster;
use crate::scheduler::filter::Filter;
use crate::scheduler::group::TaskGroup;
use crate::scheduler::node_info::reservations;
use crate::scheduler::pipeline::Pipeline;
use crate::scheduler::spread::{self, Placer, Rank, Tree};
use crate::scheduler::Decision;

/// The group's view of the nodes while it is placed.
struct GroupPlacer<'c, 'p, 'a> {
    cluster: &'c mut Cluster<'a>,
    pipeline: &'p Pipeline,
    service: u32,
    reservation: (i64, i64),
    /// The service's active tasks per node, placements of this group included.
    of_service: Vec<u32>,
    /// The node of each task placed, in order.
    placed: Vec<u32>,
}

impl Placer for GroupPlacer<'_, '_, '_> {
    fn node_count(&self) -> u32 {
        self.cluster.nodes.len() as u32
    }
    fn node(&self, i: u32) -> &Node {
        self.cluster.nodes[i as usize].node
    }
    fn tasks_of_service(&self, i: u32) -> u32 {
        self.of_service[i as usize]
    }
    fn fits(&self, i: u32) -> bool {
        self.pipeline
            .fits(&self.cluster.nodes[i as usize], self.of_service[i as usize])
    }
    fn rank(&self, i: u32) -> Rank {
        (
            self.of_service[i as usize],
            self.cluster.nodes[i as usize].active_tasks,
            i,
        )
    }
    fn place(&mut self, i: u32) -> bool {
        self.cluster.place(i, self.service, self.reservation);
        self.of_service[i as usize] += 1;
        self.placed.push(i);
        self.fits(i)
    }
}

/// A task made for its node (global modes, PENDING with its node set): assigned there if
/// the node passes the task's filters as the pass stands (resources and ports of what was
/// placed before it too), else it stays PENDING and says why, as swarmkit's scheduler
/// confirms pre-assigned tasks. A task whose node is gone is left to the orchestrator.
pub fn confirm_preassigned<'a>(cluster: &mut Cluster<'a>, task: &'a Task, out: &mut Vec<Decision>) {
    let Ok(i) = cluster
        .nodes
        .binary_search_by(|n| n.node.id().cmp(task.node_id.as_str()))
    else {
        return;
    };
    let service = cluster.service(&task.service_id);
    let mut pipeline = Pipeline::new(Filter::for_task(task, cluster.host_ports(service)));
    let of_service = cluster.tasks_of_service_on(service, i as u32);
    if pipeline.process(&cluster.nodes[i], of_service) {
        cluster.place(i as u32, service, reservations(task));
        out.push(Decision::Assign {
            task_id: task.id().to_string(),
            node_id: task.node_id.clone(),
        });
    } else {
        out.push(Decision::NoSuitableNode {
            task_id: task.id().to_string(),
            explanation: format!("no suitable node ({})", pipeline.explain()),
        });
    }
}

/// Decides every task of `group`, counting what it places in `cluster`.
pub fn place_group(cluster: &mut Cluster<'_>, group: &TaskGroup<'_>, out: &mut Vec<Decision>) {
    let first = group.first();
    let filters = Filter::for_task(first, cluster.host_ports(group.service));
    let mut pipeline = Pipeline::new(filters);
    let levels = first
        .spec
        .placement
        .as_ref()
        .map(|p| spread::descriptors(&p.preferences))
        .unwrap_or_default();
    let of_service = cluster.tasks_of_service_per_node(group.service);
    let mut placer = GroupPlacer {
        cluster,
        pipeline: &pipeline,
        service: group.service,
        reservation: reservations(first),
        of_service,
        placed: Vec::with_capacity(group.tasks.len()),
    };
    let mut tree = Tree::build(&levels, &placer);
    tree.fill(group.tasks.len() as u64, &mut placer);
    let GroupPlacer {
        cluster,
        of_service,
        placed,
        ..
    } = placer;

    for (task, &i) in group.tasks.iter().zip(&placed) {
        out.push(Decision::Assign {
            task_id: task.id().to_string(),
            node_id: cluster.nodes[i as usize].node.id().to_string(),
        });
    }
    if placed.len() == group.tasks.len() {
        return;
    }
    // Every node refuses the next task; say why, as the state is now.
    for (n, &count) in cluster.nodes.iter().zip(&of_service) {
        pipeline.process(n, count);
    }
    let why = pipeline.explain();
    let explanation = if why.is_empty() {
        "no suitable node".to_string()
    } else {
        format!("no suitable node ({why})")
    };
    for task in &group.tasks[placed.len()..] {
        out.push(Decision::NoSuitableNode {
            task_id: task.id().to_string(),
            explanation: explanation.clone(),
        });
    }
}
