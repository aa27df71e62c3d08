//! Test fixtures: a simulated cluster over the real store, a fake agent and a clock
//! that only moves when told to.
//!
//! ```text
//! Sim { store, index, now } ── reconcile / schedule ──> plan ──apply──> store
//!        └─ agent(): ASSIGNED.. -> RUNNING when desired RUNNING; running -> SHUTDOWN when not
//! ```

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::plan::Plan;
use super::reconcile;
use crate::model::{
    ContainerSpec, GlobalJob, Node, NodeAvailability, NodeRole, NodeSpec, NodeState, NodeStatus,
    Platform, ReplicatedJob, Resources, Service, ServiceMode, ServiceSpec, Task, TaskSpec,
    UpdateState, UpdateStatus,
};
use crate::scheduler::{decisions_to_actions, schedule, Decision};
use crate::state::TaskState;
use crate::store::{task_status, Object, Store, StoreAction};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn node(id: &str) -> Node {
    let mut n = Node {
        spec: NodeSpec {
            role: Some(NodeRole::Worker),
            availability: Some(NodeAvailability::Active),
            ..NodeSpec::default()
        },
        status: NodeStatus {
            state: Some(NodeState::Ready),
            addr: "10.0.0.1".into(),
            ..NodeStatus::default()
        },
        ..Node::default()
    };
    n.meta.id = id.into();
    n.description.hostname = format!("host-{id}");
    n.description.platform = Platform {
        architecture: "x86_64".into(),
        os: "linux".into(),
        ..Platform::default()
    };
    n.description.resources = Resources {
        nano_cpus: 4_000_000_000,
        memory_bytes: 8 << 30,
        ..Resources::default()
    };
    n
}

pub fn template(image: &str) -> TaskSpec {
    TaskSpec {
        container_spec: Some(ContainerSpec {
            image: image.into(),
            ..ContainerSpec::default()
        }),
        ..TaskSpec::default()
    }
}

pub fn service(id: &str, name: &str, replicas: u64) -> Service {
    let mut s = Service {
        spec: ServiceSpec {
            name: name.into(),
            task_template: template("busybox:1"),
            mode: ServiceMode::replicated(replicas),
            ..ServiceSpec::default()
        },
        ..Service::default()
    };
    s.meta.id = id.into();
    s
}

/// A global service.
pub fn global_service(id: &str, name: &str) -> Service {
    let mut s = service(id, name, 0);
    s.spec.mode = ServiceMode::global();
    s
}

/// A replicated job: `max` at once, `total` completions.
pub fn replicated_job(id: &str, name: &str, max: u64, total: u64) -> Service {
    let mut s = service(id, name, 0);
    s.spec.mode = ServiceMode {
        replicated_job: Some(ReplicatedJob {
            max_concurrent: Some(max),
            total_completions: Some(total),
            ..ReplicatedJob::default()
        }),
        ..ServiceMode::default()
    };
    s
}

/// A global job.
pub fn global_job(id: &str, name: &str) -> Service {
    let mut s = service(id, name, 0);
    s.spec.mode = ServiceMode {
        global_job: Some(GlobalJob::default()),
        ..ServiceMode::default()
    };
    s
}

pub struct Sim {
    pub store: Store,
    pub index: u64,
    pub now: DateTime<Utc>,
}

impl Sim {
    pub fn new() -> Self {
        Sim {
            store: Store::new(),
            index: 0,
            now: t0(),
        }
    }

    pub fn apply(&mut self, actions: &[StoreAction]) {
        if actions.is_empty() {
            return;
        }
        self.index += 1;
        self.store
            .apply(actions, self.index, self.now)
            .unwrap_or_else(|e| panic!("apply {actions:#?}: {e}"));
    }

    pub fn add_node(&mut self, n: Node) {
        self.apply(&[StoreAction::Create(Object::Node(Box::new(n)))]);
    }

    pub fn add_service(&mut self, s: Service) {
        self.apply(&[StoreAction::Create(Object::Service(Box::new(s)))]);
    }

    pub fn service(&self, id: &str) -> Service {
        self.store.service(id).expect("service").clone()
    }

    /// As the API's `service update`: the old spec kept for rollback, the status reset.
    pub fn update_service(&mut self, id: &str, change: impl FnOnce(&mut ServiceSpec)) {
        let mut s = self.service(id);
        s.previous_spec = Some(s.spec.clone());
        change(&mut s.spec);
        s.update_status = None;
        s.spec_version = None;
        self.apply(&[StoreAction::Update(Object::Service(Box::new(s)))]);
    }

    /// Changes a node as `node update` (or its heartbeat) would.
    pub fn change_node(&mut self, id: &str, change: impl FnOnce(&mut Node)) {
        let mut n = self.store.node(id).expect("node").clone();
        change(&mut n);
        self.apply(&[StoreAction::Update(Object::Node(Box::new(n)))]);
    }

    /// As the API's `service scale`: the replicas changed, nothing else.
    pub fn scale(&mut self, id: &str, replicas: u64) {
        let mut s = self.service(id);
        s.spec.mode = ServiceMode::replicated(replicas);
        self.apply(&[StoreAction::Update(Object::Service(Box::new(s)))]);
    }

    /// As the API's `service rollback`: Spec and PreviousSpec swapped.
    pub fn rollback_service(&mut self, id: &str) {
        let mut s = self.service(id);
        let prev = s.previous_spec.take().expect("previous spec");
        s.previous_spec = Some(std::mem::replace(&mut s.spec, prev));
        s.spec_version = None;
        s.update_status = Some(UpdateStatus {
            state: Some(UpdateState::RollbackStarted),
            started_at: Some(self.now),
            completed_at: None,
            message: "manually requested rollback".into(),
        });
        self.apply(&[StoreAction::Update(Object::Service(Box::new(s)))]);
    }

    pub fn reconcile(&mut self, id: &str) -> Plan {
        let plan = reconcile(&self.store, id, self.now);
        self.apply(&plan.actions);
        plan
    }

    pub fn schedule(&mut self) -> Vec<Decision> {
        let d = schedule(&self.store, self.now);
        let actions = decisions_to_actions(&self.store, &d, self.now);
        self.apply(&actions);
        d
    }

    /// An agent report.
    pub fn report(&mut self, task: &str, state: TaskState, message: &str) {
        let status = task_status(state, message, self.now);
        self.apply(&[StoreAction::SetTaskStatus {
            id: task.into(),
            status,
        }]);
    }

    /// Every agent, one step: start what should run, stop what should not.
    pub fn agent(&mut self) {
        let mut reports = Vec::new();
        for t in self.store.tasks() {
            let on_node = !t.node_id.is_empty() && t.status.state >= TaskState::Assigned;
            let node_up = self
                .store
                .node(&t.node_id)
                .is_some_and(|n| n.status.state == Some(NodeState::Ready));
            if !on_node || !node_up || t.status.state.is_terminal() {
                continue;
            }
            if t.desired_state == TaskState::Running && t.status.state < TaskState::Running {
                reports.push((t.id().to_string(), TaskState::Running, "started"));
            } else if t.desired_state == TaskState::Ready && t.status.state < TaskState::Ready {
                reports.push((t.id().to_string(), TaskState::Ready, "prepared"));
            } else if t.desired_state > TaskState::Running {
                reports.push((t.id().to_string(), TaskState::Shutdown, "shutdown"));
            }
        }
        for (id, state, msg) in reports {
            self.report(&id, state, msg);
        }
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += chrono::Duration::from_std(d).unwrap();
    }

    /// The service's tasks by slot, then creation.
    pub fn tasks(&self, service: &str) -> Vec<Task> {
        let mut v: Vec<Task> = self.store.tasks_of_service(service).cloned().collect();
        v.sort_by(|a, b| {
            (a.slot, a.meta.created_at, a.id()).cmp(&(b.slot, b.meta.created_at, b.id()))
        });
        v
    }

    /// `(slot, desired, observed, image)` of every task, for compact assertions.
    pub fn table(&self, service: &str) -> Vec<(u64, TaskState, TaskState, String)> {
        self.tasks(service)
            .iter()
            .map(|t| {
                let image = t
                    .spec
                    .container_spec
                    .as_ref()
                    .map(|c| c.image.clone())
                    .unwrap_or_default();
                (t.slot, t.desired_state, t.status.state, image)
            })
            .collect()
    }

    /// Tasks desired RUNNING and observed RUNNING.
    pub fn running(&self, service: &str) -> usize {
        self.tasks(service)
            .iter()
            .filter(|t| {
                t.desired_state == TaskState::Running && t.status.state == TaskState::Running
            })
            .count()
    }

    /// reconcile + schedule + agent until nothing changes (or `rounds` run out).
    pub fn settle(&mut self, id: &str, rounds: usize) {
        for _ in 0..rounds {
            let before = self.index;
            self.reconcile(id);
            self.schedule();
            self.agent();
            if self.index == before {
                return;
            }
        }
    }
}
