//! List filters, with Docker's semantics: values of one key are ORed, keys are ANDed,
//! label filters (`key` or `key=value`) must all match; `id` and `name` match prefixes
//! (as the daemon passes them to swarmkit as `IDPrefixes`/`NamePrefixes`). Resolving a
//! service *name* in a task filter to IDs is the API's job (`find_service`).

use std::collections::BTreeMap;

use super::Store;
use crate::model::{Config, ModeKind, Node, NodeRole, Secret, Service, Task};
use crate::state::TaskState;

/// `label=key` or `label=key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    pub key: String,
    pub value: Option<String>,
}

impl LabelFilter {
    pub fn parse(s: &str) -> Self {
        match s.split_once('=') {
            Some((k, v)) => LabelFilter {
                key: k.to_owned(),
                value: Some(v.to_owned()),
            },
            None => LabelFilter {
                key: s.to_owned(),
                value: None,
            },
        }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match (labels.get(&self.key), &self.value) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(have), Some(want)) => have == want,
        }
    }
}

fn all_labels(filters: &[LabelFilter], labels: &BTreeMap<String, String>) -> bool {
    filters.iter().all(|f| f.matches(labels))
}

fn any_prefix(prefixes: &[String], s: &str) -> bool {
    prefixes.is_empty() || prefixes.iter().any(|p| s.starts_with(p.as_str()))
}

fn any_eq<T: PartialEq>(wanted: &[T], have: &T) -> bool {
    wanted.is_empty() || wanted.contains(have)
}

#[derive(Debug, Clone, Default)]
pub struct ServiceFilter {
    /// ID prefixes.
    pub ids: Vec<String>,
    /// Name prefixes.
    pub names: Vec<String>,
    pub labels: Vec<LabelFilter>,
    pub modes: Vec<ModeKind>,
}

impl ServiceFilter {
    pub fn matches(&self, s: &Service) -> bool {
        any_prefix(&self.ids, &s.meta.id)
            && any_prefix(&self.names, &s.spec.name)
            && all_labels(&self.labels, &s.spec.labels)
            && (self.modes.is_empty()
                || s.spec
                    .mode
                    .kind_or_default()
                    .is_some_and(|m| self.modes.contains(&m)))
    }
}

#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// ID prefixes.
    pub ids: Vec<String>,
    /// Full service IDs.
    pub service_ids: Vec<String>,
    /// Full node IDs.
    pub node_ids: Vec<String>,
    pub desired_states: Vec<TaskState>,
    /// Observed states.
    pub states: Vec<TaskState>,
    /// On the task's own labels (the API matches `stack ps`'s label on the service).
    pub labels: Vec<LabelFilter>,
    pub slots: Vec<u64>,
}

impl TaskFilter {
    pub fn matches(&self, t: &Task) -> bool {
        any_prefix(&self.ids, &t.meta.id)
            && any_eq(&self.service_ids, &t.service_id)
            && any_eq(&self.node_ids, &t.node_id)
            && any_eq(&self.desired_states, &t.desired_state)
            && any_eq(&self.states, &t.status.state)
            && any_eq(&self.slots, &t.slot)
            && all_labels(&self.labels, &t.labels)
    }
}

#[derive(Debug, Clone, Default)]
pub struct NodeFilter {
    /// ID prefixes.
    pub ids: Vec<String>,
    /// Name prefixes (`Spec.Name`, else hostname).
    pub names: Vec<String>,
    pub roles: Vec<NodeRole>,
    /// `node.label`: the node's spec labels.
    pub node_labels: Vec<LabelFilter>,
    /// `label`: the engine's labels.
    pub engine_labels: Vec<LabelFilter>,
}

impl NodeFilter {
    pub fn matches(&self, n: &Node) -> bool {
        any_prefix(&self.ids, &n.meta.id)
            && any_prefix(&self.names, n.name())
            && (self.roles.is_empty()
                || n.spec.role.as_ref().is_some_and(|r| self.roles.contains(r)))
            && all_labels(&self.node_labels, &n.spec.labels)
            && all_labels(&self.engine_labels, &n.description.engine.labels)
    }
}

/// For secrets and configs.
#[derive(Debug, Clone, Default)]
pub struct SecretFilter {
    /// ID prefixes.
    pub ids: Vec<String>,
    /// Exact names (`names`, as `stack deploy` uses).
    pub names: Vec<String>,
    /// Name prefixes (`name`).
    pub name_prefixes: Vec<String>,
    pub labels: Vec<LabelFilter>,
}

impl SecretFilter {
    fn matches(&self, id: &str, name: &str, labels: &BTreeMap<String, String>) -> bool {
        any_prefix(&self.ids, id)
            && (self.names.is_empty() || self.names.iter().any(|n| n == name))
            && any_prefix(&self.name_prefixes, name)
            && all_labels(&self.labels, labels)
    }
}

impl Store {
    pub fn list_services(&self, f: &ServiceFilter) -> Vec<&Service> {
        self.services().filter(|s| f.matches(s)).collect()
    }

    /// Uses the service or node index when the filter names services or nodes.
    pub fn list_tasks(&self, f: &TaskFilter) -> Vec<&Task> {
        if !f.service_ids.is_empty() {
            let mut out: Vec<&Task> = f
                .service_ids
                .iter()
                .flat_map(|s| self.tasks_of_service(s))
                .filter(|t| f.matches(t))
                .collect();
            out.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
            out.dedup_by(|a, b| a.meta.id == b.meta.id);
            return out;
        }
        if !f.node_ids.is_empty() {
            let mut out: Vec<&Task> = f
                .node_ids
                .iter()
                .flat_map(|n| self.tasks_on_node(n))
                .filter(|t| f.matches(t))
                .collect();
            out.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
            out.dedup_by(|a, b| a.meta.id == b.meta.id);
            return out;
        }
        self.tasks().filter(|t| f.matches(t)).collect()
    }

    pub fn list_nodes(&self, f: &NodeFilter) -> Vec<&Node> {
        self.nodes().filter(|n| f.matches(n)).collect()
    }

    pub fn list_secrets(&self, f: &SecretFilter) -> Vec<&Secret> {
        self.secrets()
            .filter(|s| f.matches(&s.meta.id, &s.spec.name, &s.spec.labels))
            .collect()
    }

    pub fn list_configs(&self, f: &SecretFilter) -> Vec<&Config> {
        self.configs()
            .filter(|c| f.matches(&c.meta.id, &c.spec.name, &c.spec.labels))
            .collect()
    }
}
