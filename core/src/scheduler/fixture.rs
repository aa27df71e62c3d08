//! Test fixtures: a plain in-memory `ClusterView` (no store, so a million tasks cost
//! only their memory) and builders for nodes, services and tasks.

use std::collections::BTreeMap;

use chrono::Duration;

use crate::model::{
    Node, PortConfig, PortProtocol, PublishMode, ResourceRequirements, Resources, Service, Swarm,
    Task,
};
use crate::orchestrator::testkit::{node, service, t0};
use crate::orchestrator::ClusterView;
use crate::state::TaskState;

#[derive(Debug, Clone, Default)]
pub struct View {
    pub nodes: Vec<Node>,
    pub tasks: Vec<Task>,
    pub services: BTreeMap<String, Service>,
}

impl ClusterView for View {
    fn service(&self, id: &str) -> Option<&Service> {
        self.services.get(id)
    }
    fn tasks_of_service(&self, service_id: &str) -> Vec<&Task> {
        self.tasks
            .iter()
            .filter(|t| t.service_id == service_id)
            .collect()
    }
    fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id() == id)
    }
    fn nodes(&self) -> Vec<&Node> {
        self.nodes.iter().collect()
    }
    fn tasks(&self) -> Vec<&Task> {
        self.tasks.iter().collect()
    }
    fn swarm(&self) -> Option<&Swarm> {
        None
    }
}

impl View {
    pub fn with_nodes(ids: &[&str]) -> View {
        View {
            nodes: ids.iter().map(|id| node(id)).collect(),
            ..View::default()
        }
    }

    pub fn node_mut(&mut self, id: &str) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id() == id).expect("node")
    }

    /// Adds a service (0 replicas: tasks are added by hand) and returns it to adjust.
    pub fn add_service(&mut self, id: &str) -> &mut Service {
        self.services
            .entry(id.to_string())
            .or_insert_with(|| service(id, id, 0))
    }

    /// `n` PENDING tasks of `service`, created after every task already there.
    pub fn add_pending(&mut self, service_id: &str, n: usize) {
        let spec = self.services[service_id].spec.task_template.clone();
        for _ in 0..n {
            let seq = self.tasks.len();
            let mut t = Task {
                service_id: service_id.to_string(),
                spec: spec.clone().into(),
                desired_state: TaskState::Running,
                ..Task::default()
            };
            t.meta.id = format!("{service_id}.{seq:07}");
            t.meta.created_at = t0() + Duration::milliseconds(seq as i64);
            t.status.state = TaskState::Pending;
            self.tasks.push(t);
        }
    }

    /// A task of `service_id` in `state` on `node_id`.
    pub fn add_on_node(&mut self, service_id: &str, node_id: &str, state: TaskState) {
        self.add_pending(service_id, 1);
        let t = self.tasks.last_mut().expect("added");
        t.node_id = node_id.to_string();
        t.status.state = state;
    }

    pub fn decisions_by_node(&self) -> BTreeMap<String, usize> {
        let mut by_node = BTreeMap::new();
        for d in super::schedule(self, t0()) {
            if let super::Decision::Assign { node_id, .. } = d {
                *by_node.entry(node_id).or_default() += 1;
            }
        }
        by_node
    }
}

pub fn reserve(nano_cpus: i64, memory_bytes: i64) -> Option<ResourceRequirements> {
    Some(ResourceRequirements {
        reservations: Some(Resources {
            nano_cpus,
            memory_bytes,
            ..Resources::default()
        }),
        ..ResourceRequirements::default()
    })
}

pub fn host_port(published: u32, protocol: PortProtocol) -> PortConfig {
    PortConfig {
        protocol: Some(protocol),
        target_port: 80,
        published_port: published,
        publish_mode: Some(PublishMode::Host),
        ..PortConfig::default()
    }
}
