//! The scheduler's picture of the cluster for one pass, built once from the view and
//! updated as tasks are placed.
//!
//! ```text
//! view.nodes()  ──sort by ID──> nodes[i]: NodeInfo (resources left, host ports, task count)
//! view.tasks()  ──holding resources on a node──> NodeInfo::add_task
//!               └─ by service ──> services[s].active_on: [node index per active task]
//! ```
//!
//! Services are numbered in the order first seen, nodes by ID, so a task group reads
//! its service's counts per node in one pass over that service's tasks (no map per
//! node).

use std::collections::HashMap;

use crate::model::Task;
use crate::orchestrator::ClusterView;
use crate::scheduler::node_info::{
    holds_resources, host_ports, is_active, reservations, HostPort, NodeInfo,
};

/// A service as the scheduler sees it.
#[derive(Debug, Clone, Default)]
struct ServiceInfo {
    /// The host-mode ports every task of the service publishes.
    host_ports: Vec<HostPort>,
    /// The node index of each active task of the service (one entry per task).
    active_on: Vec<u32>,
}

pub struct Cluster<'a> {
    view: &'a dyn ClusterView,
    /// Sorted by node ID, so a node's index orders ties.
    pub nodes: Vec<NodeInfo<'a>>,
    service_index: HashMap<&'a str, u32>,
    services: Vec<ServiceInfo>,
}

impl<'a> Cluster<'a> {
    /// The nodes of `view` with the tasks of `tasks` that hold resources on them.
    pub fn build(view: &'a dyn ClusterView, tasks: &[&'a Task]) -> Self {
        let mut nodes = view.nodes();
        nodes.sort_unstable_by(|a, b| a.id().cmp(b.id()));
        let node_index: HashMap<&str, u32> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id(), i as u32))
            .collect();
        let mut cluster = Cluster {
            view,
            nodes: nodes.into_iter().map(NodeInfo::new).collect(),
            service_index: HashMap::new(),
            services: Vec::new(),
        };
        for t in tasks.iter().filter(|t| holds_resources(t)) {
            let Some(&i) = node_index.get(t.node_id.as_str()) else {
                continue;
            };
            let s = cluster.service(&t.service_id);
            // What the agent reported it bound, else what the service publishes.
            let reported = host_ports(&t.status.port_status.ports);
            let service = &mut cluster.services[s as usize];
            let ports = if reported.is_empty() {
                &service.host_ports
            } else {
                &reported
            };
            let active = is_active(t);
            cluster.nodes[i as usize].add_task(reservations(t), ports, active);
            if active {
                service.active_on.push(i);
            }
        }
        cluster
    }

    /// The number of service `id`, numbering it if it is new.
    pub fn service(&mut self, id: &'a str) -> u32 {
        if let Some(&s) = self.service_index.get(id) {
            return s;
        }
        // The allocated endpoint when it was made for the current spec (the allocator
        // runs first, but its entry may not be applied yet after a spec update).
        let host_ports = self.view.service(id).map_or_else(Vec::new, |svc| {
            let asked = svc.spec.endpoint_spec.as_ref();
            let current = asked.is_none_or(|e| *e == svc.endpoint.spec);
            if svc.endpoint.ports.is_empty() || !current {
                asked.map_or_else(Vec::new, |e| host_ports(&e.ports))
            } else {
                host_ports(&svc.endpoint.ports)
            }
        });
        let s = self.services.len() as u32;
        self.services.push(ServiceInfo {
            host_ports,
            active_on: Vec::new(),
        });
        self.service_index.insert(id, s);
        s
    }

    pub fn host_ports(&self, service: u32) -> &[HostPort] {
        &self.services[service as usize].host_ports
    }

    /// The service's active tasks on each node, by node index.
    pub fn tasks_of_service_per_node(&self, service: u32) -> Vec<u32> {
        let mut counts = vec![0; self.nodes.len()];
        for &i in &self.services[service as usize].active_on {
            counts[i as usize] += 1;
        }
        counts
    }

    /// The service's active tasks on node `i`.
    pub fn tasks_of_service_on(&self, service: u32, i: u32) -> u32 {
        self.services[service as usize]
            .active_on
            .iter()
            .filter(|&&n| n == i)
            .count() as u32
    }

    /// Counts a pending task of `service` placed on node `i`.
    pub fn place(&mut self, i: u32, service: u32, reservation: (i64, i64)) {
        let s = &mut self.services[service as usize];
        self.nodes[i as usize].add_task(reservation, &s.host_ports, true);
        s.active_on.push(i);
    }
}
