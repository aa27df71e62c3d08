//! The simulated cluster: the real store, a clock that moves only when told, and fake
//! agents that drive tasks as swarmd's agent would, steered by knobs.
//!
//! ```text
//! World { store, index, now }
//!   step():  reconcile every service ──apply──> schedule + decisions_to_actions ──apply──>
//!            agents (ASSIGNED -> RUNNING, job tasks -> COMPLETE/FAILED, desired
//!            SHUTDOWN -> SHUTDOWN) ──apply──> wake-up = min(requeue_after)
//! ```
//!
//! Agents of Down nodes do nothing (their reports never arrive). A leader change is a
//! new `World` restored from a snapshot of the store: nothing else survives it.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::rng::Rng;
use crate::model::{ModeKind, Node, NodeState, Service, Version};
use crate::orchestrator::reconcile;
use crate::scheduler::{decisions_to_actions, schedule};
use crate::state::TaskState;
use crate::store::{task_status, Object, ObjectKind, Store, StoreAction};

/// How the fake agents behave.
#[derive(Debug, Clone, Copy)]
pub struct Knobs {
    /// How long a job's task runs before it exits.
    pub job_run_for: Duration,
    /// Percent of job tasks that exit non-zero.
    pub job_failure_percent: u64,
}

pub struct World {
    pub store: Store,
    pub index: u64,
    pub now: DateTime<Utc>,
    /// When the orchestrator asked to look again (the earliest `requeue_after`).
    pub wake: Option<DateTime<Utc>>,
}

impl World {
    pub fn new(now: DateTime<Utc>) -> Self {
        World {
            store: Store::new(),
            index: 0,
            now,
            wake: None,
        }
    }

    /// A new leader: the store as replicated through Raft, and nothing else.
    pub fn leader_change(&self) -> World {
        let store = Store::restore(self.store.snapshot()).expect("restore the snapshot");
        World {
            store,
            index: self.index,
            now: self.now,
            wake: None,
        }
    }

    /// Applies one Raft entry. The store refusing an entry is a bug in whoever made it.
    pub fn apply(&mut self, actions: Vec<StoreAction>) -> Result<bool, String> {
        if actions.is_empty() {
            return Ok(false);
        }
        self.index += 1;
        self.store
            .apply(&actions, self.index, self.now)
            .map_err(|e| format!("store refused {actions:?}: {e}"))?;
        Ok(true)
    }

    pub fn update(&mut self, object: Object) -> Result<bool, String> {
        self.apply(vec![StoreAction::Update(object)])
    }

    pub fn node(&self, id: &str) -> Node {
        self.store.node(id).expect("node").clone()
    }

    pub fn service(&self, id: &str) -> Service {
        self.store.service(id).expect("service").clone()
    }

    pub fn service_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.store.services().map(|s| s.id().to_string()).collect();
        ids.sort();
        ids
    }

    /// The leader's loop, once: every service reconciled (one entry each), then the
    /// scheduler. Returns whether anything was written.
    pub fn orchestrate(&mut self) -> Result<bool, String> {
        let mut wrote = false;
        self.wake = None;
        let mut ids = self.service_ids();
        ids.extend(self.store.tasks().map(|t| t.service_id.clone()));
        ids.sort();
        ids.dedup();
        for id in ids {
            let plan = reconcile(&self.store, &id, self.now);
            if let Some(after) = plan.requeue_after {
                let at = self.now + chrono::Duration::from_std(after).expect("duration");
                self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
            }
            wrote |= self.apply(plan.actions)?;
        }
        let decisions = schedule(&self.store, self.now);
        let actions = decisions_to_actions(&self.store, &decisions, self.now);
        wrote |= self.apply(actions)?;
        Ok(wrote)
    }

    /// Every agent of a Ready node, once. Job tasks end after `job_run_for`, some of
    /// them failing (when `knobs` allow, drawn from `rng`).
    pub fn agents(&mut self, knobs: Knobs, rng: &mut Rng) -> Result<bool, String> {
        let mut reports = Vec::new();
        let mut tasks: Vec<_> = self.store.tasks().collect();
        tasks.sort_by(|a, b| a.id().cmp(b.id()));
        for t in tasks {
            let node_up = self
                .store
                .node(&t.node_id)
                .is_some_and(|n| n.status.state == Some(NodeState::Ready));
            if !node_up || t.status.state < TaskState::Assigned || t.status.state.is_terminal() {
                continue;
            }
            let job = self
                .store
                .service(&t.service_id)
                .and_then(|s| s.spec.mode.kind_or_default())
                .is_some_and(ModeKind::is_job);
            let (state, msg) = if t.desired_state > TaskState::Running {
                (TaskState::Shutdown, "shutdown")
            } else if t.desired_state == TaskState::Running && t.status.state < TaskState::Running {
                (TaskState::Running, "started")
            } else if t.desired_state == TaskState::Ready && t.status.state < TaskState::Ready {
                (TaskState::Ready, "prepared")
            } else if job
                && t.status.state == TaskState::Running
                && self.now - t.status.timestamp
                    >= chrono::Duration::from_std(knobs.job_run_for).expect("duration")
            {
                if rng.chance(knobs.job_failure_percent) {
                    (TaskState::Failed, "task: non-zero exit (1)")
                } else {
                    (TaskState::Complete, "finished")
                }
            } else {
                continue;
            };
            reports.push(StoreAction::SetTaskStatus {
                id: t.id().to_string(),
                status: task_status(state, msg, self.now),
            });
        }
        // One entry per report, as a dispatcher batch of one.
        let mut wrote = false;
        for r in reports {
            wrote |= self.apply(vec![r])?;
        }
        Ok(wrote)
    }

    /// A container dies (`message` says why: a crash, a failed health check).
    pub fn fail_task(&mut self, id: &str, message: &str) -> Result<bool, String> {
        self.apply(vec![StoreAction::SetTaskStatus {
            id: id.to_string(),
            status: task_status(TaskState::Failed, message, self.now),
        }])
    }

    /// As the API's `service update`: the old spec kept for rollback, the status reset,
    /// a new `SpecVersion`.
    pub fn update_service(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut crate::model::ServiceSpec),
    ) -> Result<bool, String> {
        let mut s = self.service(id);
        let before = s.spec.clone();
        change(&mut s.spec);
        s.previous_spec = Some(before.clone());
        s.update_status = None;
        if s.spec != before {
            s.spec_version = Some(Version::new(s.meta.version.index + 1));
        }
        self.update(Object::Service(Box::new(s)))
    }

    /// As the API's `service rollback`.
    pub fn rollback_service(&mut self, id: &str) -> Result<bool, String> {
        let mut s = self.service(id);
        let Some(previous) = s.previous_spec.take() else {
            return Ok(false);
        };
        s.previous_spec = Some(std::mem::replace(&mut s.spec, previous));
        s.update_status = Some(crate::model::UpdateStatus {
            state: Some(crate::model::UpdateState::RollbackStarted),
            started_at: Some(self.now),
            completed_at: None,
            message: "manually requested rollback".into(),
        });
        s.spec_version = Some(Version::new(s.meta.version.index + 1));
        self.update(Object::Service(Box::new(s)))
    }

    pub fn remove_node(&mut self, id: &str) -> Result<bool, String> {
        self.apply(vec![StoreAction::Remove(ObjectKind::Node, id.to_string())])
    }
}
