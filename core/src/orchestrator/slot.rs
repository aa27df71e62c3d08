//! Slots and the working set of one reconcile.
//!
//! A service's tasks are grouped by slot: for a replicated service (and a replicated
//! job) the `Slot` number 1..=replicas, for a global service (and a global job) the
//! node, as swarmkit's `SlotTuple`. The slot is the replica's identity, its tasks are
//! the replica's history (the live one last).
//! `Working` holds the service's tasks while the steps of a reconcile change them, so
//! each step sees the previous steps' decisions; at the end it becomes store actions.
//!
//! ```text
//! view.tasks_of_service ──> Working ──restart/scale/update/reap──> Working ──> [StoreAction]
//! ```

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::plan::StoreAction;
use super::task::{ids_digest, is_live, task_id};
use crate::model::Task;
use crate::state::TaskState;
use crate::store::{Object, ObjectKind};

/// A slot: a replica number, or (global modes, `Slot` 0) the node the task runs on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SlotKey {
    Replica(u64),
    Node(String),
}

impl SlotKey {
    pub fn of(task: &Task) -> SlotKey {
        if task.slot > 0 {
            SlotKey::Replica(task.slot)
        } else {
            SlotKey::Node(task.node_id.clone())
        }
    }
}

/// The service's tasks during one reconcile, with what changed. The view's tasks (and
/// their IDs) are borrowed, and copied only when a step changes one: a reconcile that
/// changes nothing (the usual pass over a large service) copies nothing.
#[derive(Debug, Clone, Default)]
pub struct Working<'a> {
    tasks: BTreeMap<Cow<'a, str>, Cow<'a, Task>>,
    /// Task IDs by slot, so that a slot's history is found without a scan.
    by_slot: BTreeMap<SlotKey, BTreeSet<Cow<'a, str>>>,
    original: BTreeMap<&'a str, &'a Task>,
    /// A digest of the view's task IDs: new IDs derive from it (and the number made).
    ids_digest: u128,
    created: Vec<String>,
    deleted: BTreeSet<String>,
}

impl<'a> Working<'a> {
    pub fn new(tasks: impl IntoIterator<Item = &'a Task>) -> Self {
        let mut ws = Working::default();
        for t in tasks {
            ws.original.insert(t.id(), t);
        }
        ws.ids_digest = ids_digest(ws.original.keys().copied());
        for (&id, &t) in &ws.original {
            ws.by_slot
                .entry(SlotKey::of(t))
                .or_default()
                .insert(Cow::Borrowed(id));
            ws.tasks.insert(Cow::Borrowed(id), Cow::Borrowed(t));
        }
        ws
    }

    /// Every slot that has a task (history included), ascending.
    pub fn slots(&self) -> BTreeSet<SlotKey> {
        self.by_slot.keys().cloned().collect()
    }

    /// The slot's tasks, oldest first (by creation time, then ID).
    pub fn slot(&self, slot: &SlotKey) -> Vec<&Task> {
        let mut v: Vec<&Task> = self
            .by_slot
            .get(slot)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id.as_ref()).map(|t| &**t))
            .collect();
        v.sort_by(|a, b| (a.meta.created_at, a.id()).cmp(&(b.meta.created_at, b.id())));
        v
    }

    /// The slot's live tasks (desired RUNNING or READY), oldest first.
    pub fn live(&self, slot: &SlotKey) -> Vec<&Task> {
        self.slot(slot).into_iter().filter(|t| is_live(t)).collect()
    }

    pub fn all(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values().map(|t| &**t)
    }

    pub fn get(&self, id: &str) -> Option<&Task> {
        self.tasks.get(id).map(|t| &**t)
    }

    /// Moves a task's desired state forward (never back).
    pub fn set_desired(&mut self, id: &str, state: TaskState) {
        if let Some(t) = self.tasks.get_mut(id) {
            if state > t.desired_state {
                t.to_mut().desired_state = state;
            }
        }
    }

    /// A fresh ID for a task in `slot`, distinct from every ID made in this reconcile.
    /// `service_version` (the service's `Version.Index`) changes with every write to the
    /// service, so a slot emptied and refilled at the same instant gets another ID.
    pub fn new_id(
        &self,
        service_id: &str,
        service_version: u64,
        slot: &SlotKey,
        now: DateTime<Utc>,
    ) -> String {
        let mut seq = self.created.len();
        loop {
            let id = task_id(service_id, service_version, slot, self.ids_digest, now, seq);
            if !self.tasks.contains_key(id.as_str()) && !self.deleted.contains(&id) {
                return id;
            }
            seq += 1;
        }
    }

    pub fn create(&mut self, task: Task) {
        let id = task.id().to_string();
        self.created.push(id.clone());
        self.by_slot
            .entry(SlotKey::of(&task))
            .or_default()
            .insert(Cow::Owned(id.clone()));
        self.tasks.insert(Cow::Owned(id), Cow::Owned(task));
    }

    pub fn delete(&mut self, id: &str) {
        let Some(t) = self.tasks.remove(id) else {
            return;
        };
        let slot = SlotKey::of(&t);
        if let Some(ids) = self.by_slot.get_mut(&slot) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_slot.remove(&slot);
            }
        }
        if self.original.contains_key(id) {
            self.deleted.insert(id.to_string());
        } else {
            self.created.retain(|c| c != id);
        }
    }

    /// The writes that turn the view into this working set: desired-state changes (by
    /// ID; the only change made to existing tasks), creations (in the order made),
    /// removals (by ID).
    pub fn into_actions(self) -> Vec<StoreAction> {
        let mut actions = Vec::new();
        for (id, t) in &self.tasks {
            let (Cow::Owned(t), Some(orig)) = (t, self.original.get(id.as_ref())) else {
                continue;
            };
            if orig.desired_state != t.desired_state {
                actions.push(StoreAction::SetTaskDesiredState {
                    id: id.to_string(),
                    desired_state: t.desired_state,
                });
            }
        }
        let mut tasks = self.tasks;
        for id in &self.created {
            if let Some(t) = tasks.remove(id.as_str()) {
                actions.push(StoreAction::Create(Object::Task(Box::new(t.into_owned()))));
            }
        }
        for id in &self.deleted {
            actions.push(StoreAction::Remove(ObjectKind::Task, id.clone()));
        }
        actions
    }
}
