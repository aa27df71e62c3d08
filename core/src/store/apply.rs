//! `Store::apply`: a batch of actions at one Raft index, all or nothing.
//!
//! ```text
//! actions ──> apply_one (check, stamp Version/UpdatedAt, write, push Undo) ──> Events
//!                 │ error
//!                 └──> roll the Undo log back in reverse; the store is as before
//! ```
//!
//! Rules: IDs and unique names are unique; `Update` carries the stored `Version.Index`
//! (else `update out of sequence`); a task's observed state never moves backwards; a
//! task never changes node once assigned, nor service; a service's secret and config
//! references name stored ones, and one still referenced is not removed; a service's
//! published ports do not collide with another's (`ports.rs`).

use chrono::{DateTime, Utc};

use super::action::StoreAction;
use super::event::Event;
use super::object::{Object, ObjectKind, Stored};
use super::ports::check_port_conflicts;
use super::table::Table;
use super::{index_add, index_remove, Store};
use crate::error::{Error, Result};
use crate::model::{Node, PublishMode, Task, TaskStatus, Version};
use crate::state::TaskState;

/// How to undo one applied action; also what the batch's events are made from.
enum Undo {
    Created(ObjectKind, String),
    Updated(Object),
    Removed(Object),
}

impl Store {
    /// Applies `actions` as one batch at Raft `index`, `now` being the entry's time.
    /// Every written object gets `Version.Index = index` and `UpdatedAt = now` (and
    /// `CreatedAt = now` when created). On error nothing is changed.
    pub fn apply(
        &mut self,
        actions: &[StoreAction],
        index: u64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Event>> {
        let mut undo = Vec::with_capacity(actions.len());
        let mut result = Ok(());
        for action in actions {
            result = self.apply_one(action, index, now, &mut undo);
            if result.is_err() {
                break;
            }
        }
        // The entry is applied either way (as a no-op when it failed).
        self.applied_index = self.applied_index.max(index);
        if let Err(e) = result {
            for u in undo.into_iter().rev() {
                match u {
                    Undo::Created(kind, id) => {
                        self.remove_object(kind, &id);
                    }
                    Undo::Updated(old) | Undo::Removed(old) => {
                        self.insert_object(old);
                    }
                }
            }
            return Err(e);
        }
        Ok(undo
            .into_iter()
            .map(|u| match u {
                Undo::Created(kind, id) => Event::Created { kind, id },
                Undo::Updated(old) => Event::Updated {
                    kind: old.kind(),
                    id: old.id().to_owned(),
                },
                Undo::Removed(object) => Event::Removed { object },
            })
            .collect())
    }

    fn apply_one(
        &mut self,
        action: &StoreAction,
        index: u64,
        now: DateTime<Utc>,
        undo: &mut Vec<Undo>,
    ) -> Result<()> {
        match action {
            StoreAction::Create(object) => {
                let mut object = object.clone();
                self.check_create(&object)?;
                let meta = object_meta_mut(&mut object);
                meta.version = Version::new(index);
                meta.created_at = now;
                meta.updated_at = now;
                let (kind, id) = (object.kind(), object.id().to_owned());
                self.insert_object(object);
                undo.push(Undo::Created(kind, id));
            }
            StoreAction::Update(object) => {
                let mut object = object.clone();
                let created_at = self.check_update(&object)?;
                let meta = object_meta_mut(&mut object);
                meta.version = Version::new(index);
                meta.created_at = created_at;
                meta.updated_at = now;
                let old = self.insert_object(object).expect("checked to exist");
                undo.push(Undo::Updated(old));
            }
            StoreAction::Remove(kind, id) => {
                self.check_not_in_use(*kind, id)?;
                let old = self
                    .remove_object(*kind, id)
                    .ok_or_else(|| Error::NotFound {
                        kind: *kind,
                        name: id.clone(),
                    })?;
                undo.push(Undo::Removed(old));
            }
            StoreAction::SetTaskStatus { id, status } => {
                self.change_task(id, index, now, undo, |task| {
                    if status.state < task.status.state {
                        return Ok(false);
                    }
                    if status.state == TaskState::Running && task.running_since.is_none() {
                        task.running_since = Some(status.timestamp);
                    }
                    task.status = status.clone();
                    Ok(true)
                })?;
            }
            StoreAction::AssignTask {
                id,
                node_id,
                status,
            } => {
                self.change_task(id, index, now, undo, |task| {
                    if status.state < task.status.state {
                        return Ok(false);
                    }
                    check_node_change(task, node_id)?;
                    task.node_id = node_id.clone();
                    task.status = status.clone();
                    Ok(true)
                })?;
            }
            StoreAction::SetTaskDesiredState { id, desired_state } => {
                self.change_task(id, index, now, undo, |task| {
                    if *desired_state <= task.desired_state {
                        return Ok(false);
                    }
                    task.desired_state = *desired_state;
                    Ok(true)
                })?;
            }
            StoreAction::AllocateTask {
                id,
                networks_attachments,
                status,
            } => {
                self.change_task(id, index, now, undo, |task| {
                    let attach = task.networks_attachments.is_empty();
                    let forward = status.state > task.status.state;
                    if attach {
                        task.networks_attachments = networks_attachments.clone();
                    }
                    if forward {
                        task.status = status.clone();
                    }
                    Ok(attach || forward)
                })?;
            }
            StoreAction::SetServiceVirtualIps { id, virtual_ips } => {
                let Some(old) = self.services.get(id) else {
                    return Ok(());
                };
                if old.endpoint.virtual_ips == *virtual_ips {
                    return Ok(());
                }
                let mut service = old.clone();
                service.endpoint.virtual_ips = virtual_ips.clone();
                service.meta.version = Version::new(index);
                service.meta.updated_at = now;
                let old = self
                    .insert_object(Object::Service(Box::new(service)))
                    .expect("exists");
                undo.push(Undo::Updated(old));
            }
            StoreAction::SetServiceEndpointPorts { id, spec, ports } => {
                let Some(old) = self.services.get(id) else {
                    return Ok(());
                };
                if old.endpoint.spec == *spec && old.endpoint.ports == *ports {
                    return Ok(());
                }
                let taken = ports.iter().any(|p| {
                    p.published_port != 0
                        && p.publish_mode_or_default() == PublishMode::Ingress
                        && self.ingress_port_held(&p.protocol_or_default(), p.published_port, id)
                });
                if taken {
                    return Ok(());
                }
                let mut service = old.clone();
                service.endpoint.spec = spec.clone();
                service.endpoint.ports = ports.clone();
                service.meta.version = Version::new(index);
                service.meta.updated_at = now;
                let old = self
                    .insert_object(Object::Service(Box::new(service)))
                    .expect("exists");
                undo.push(Undo::Updated(old));
            }
            StoreAction::SetNodeAttachments { id, attachments } => {
                self.change_node(id, index, now, undo, |node| {
                    if node.attachments == *attachments {
                        return false;
                    }
                    node.attachments = attachments.clone();
                    true
                });
            }
            StoreAction::SetNodeTlsInfo { id, tls_info } => {
                self.change_node(id, index, now, undo, |node| {
                    if node.description.tls_info == *tls_info {
                        return false;
                    }
                    node.description.tls_info = tls_info.clone();
                    true
                });
            }
            StoreAction::SetNodeStatus { id, status } => {
                self.change_node(id, index, now, undo, |node| {
                    if node.status == *status {
                        return false;
                    }
                    node.status = status.clone();
                    true
                });
            }
        }
        Ok(())
    }

    /// Applies `change` to the stored task `id` if it exists and `change` says it
    /// changed something.
    fn change_task(
        &mut self,
        id: &str,
        index: u64,
        now: DateTime<Utc>,
        undo: &mut Vec<Undo>,
        change: impl FnOnce(&mut Task) -> Result<bool>,
    ) -> Result<()> {
        // In place: the task keeps its row; only a node change moves it in an index.
        let Some(stored) = self.tasks.get_mut(id) else {
            return Ok(());
        };
        let mut task = stored.clone();
        if !change(&mut task)? {
            return Ok(());
        }
        task.meta.version = Version::new(index);
        task.meta.updated_at = now;
        let old = std::mem::replace(stored, task);
        if old.node_id != stored.node_id {
            let new_node = stored.node_id.clone();
            index_remove(&mut self.tasks_by_node, &old.node_id, id);
            index_add(&mut self.tasks_by_node, &new_node, id);
        }
        undo.push(Undo::Updated(Object::Task(Box::new(old))));
        Ok(())
    }

    /// Applies `change` to the stored node `id` if it exists and `change` says it changed
    /// something (the unversioned node writes: the dispatcher's status, the CA's record).
    fn change_node(
        &mut self,
        id: &str,
        index: u64,
        now: DateTime<Utc>,
        undo: &mut Vec<Undo>,
        change: impl FnOnce(&mut Node) -> bool,
    ) {
        let Some(old) = self.nodes.get(id) else {
            return;
        };
        let mut node = old.clone();
        if !change(&mut node) {
            return;
        }
        node.meta.version = Version::new(index);
        node.meta.updated_at = now;
        let old = self
            .insert_object(Object::Node(Box::new(node)))
            .expect("exists");
        undo.push(Undo::Updated(old));
    }

    fn check_create(&self, object: &Object) -> Result<()> {
        let kind = object.kind();
        let id = object.id();
        if id.is_empty() {
            return Err(Error::MissingId { kind });
        }
        let exists = |found: bool| -> Result<()> {
            if found {
                Err(Error::Exists {
                    kind,
                    id: id.to_owned(),
                })
            } else {
                Ok(())
            }
        };
        match object {
            Object::Service(o) => {
                exists(self.services.get(id).is_some())?;
                check_name(&self.services, o)?;
                self.check_service_refs(&o.spec)?;
                check_port_conflicts(self, &o.spec, Some(id))
            }
            Object::Task(_) => exists(self.tasks.get(id).is_some()),
            Object::Node(_) => exists(self.nodes.get(id).is_some()),
            Object::Secret(o) => {
                exists(self.secrets.get(id).is_some())?;
                check_name(&self.secrets, o)
            }
            Object::Config(o) => {
                exists(self.configs.get(id).is_some())?;
                check_name(&self.configs, o)
            }
            // One cluster object per store.
            Object::Cluster(_) => exists(self.cluster.len() > 0),
            Object::Network(o) => {
                exists(self.networks.get(id).is_some())?;
                check_name(&self.networks, o)?;
                self.check_network_subnets(o)
            }
        }
    }

    /// Checks an update against the stored object; returns the stored `CreatedAt`.
    fn check_update(&self, object: &Object) -> Result<DateTime<Utc>> {
        let kind = object.kind();
        let id = object.id();
        let not_found = || Error::NotFound {
            kind,
            name: id.to_owned(),
        };
        let stored_meta = match object {
            Object::Service(o) => {
                check_name(&self.services, o)?;
                let stored = self.services.get(id);
                if let Some(old) = stored {
                    self.check_changed_refs(&old.spec, &o.spec)?;
                    // As swarmkit: only a changed endpoint is checked, so a service
                    // that holds a port keeps being updatable.
                    if old.spec.endpoint_spec != o.spec.endpoint_spec {
                        check_port_conflicts(self, &o.spec, Some(id))?;
                    }
                }
                stored.map(|s| s.meta.clone())
            }
            Object::Task(new) => {
                let old = self.tasks.get(id).ok_or_else(not_found)?;
                check_task_update(old, new)?;
                Some(old.meta.clone())
            }
            Object::Node(_) => self.nodes.get(id).map(|s| s.meta.clone()),
            Object::Secret(o) => {
                check_name(&self.secrets, o)?;
                self.secrets.get(id).map(|s| s.meta.clone())
            }
            Object::Config(o) => {
                check_name(&self.configs, o)?;
                self.configs.get(id).map(|s| s.meta.clone())
            }
            Object::Cluster(_) => self.cluster.get(id).map(|s| s.cluster.meta.clone()),
            Object::Network(o) => {
                check_name(&self.networks, o)?;
                self.check_network_subnets(o)?;
                self.networks.get(id).map(|s| s.meta.clone())
            }
        }
        .ok_or_else(not_found)?;
        if stored_meta.version != object.meta().version {
            return Err(Error::OutOfSequence);
        }
        Ok(stored_meta.created_at)
    }
}

fn object_meta_mut(object: &mut Object) -> &mut crate::model::Meta {
    match object {
        Object::Service(o) => o.meta_mut(),
        Object::Task(o) => o.meta_mut(),
        Object::Node(o) => o.meta_mut(),
        Object::Secret(o) => o.meta_mut(),
        Object::Config(o) => o.meta_mut(),
        Object::Cluster(o) => o.meta_mut(),
        Object::Network(o) => o.meta_mut(),
    }
}

/// A unique name may only be held by the object itself.
fn check_name<T: Stored>(table: &Table<T>, object: &T) -> Result<()> {
    let Some(name) = object.unique_name().filter(|n| !n.is_empty()) else {
        return Ok(());
    };
    match table.name_owner(name) {
        Some(owner) if owner != object.meta().id => Err(Error::NameConflict {
            kind: T::KIND,
            name: name.to_owned(),
        }),
        _ => Ok(()),
    }
}

fn check_task_update(old: &Task, new: &Task) -> Result<()> {
    if new.status.state < old.status.state {
        return Err(Error::TaskStateBackwards {
            id: old.meta.id.clone(),
            from: old.status.state,
            to: new.status.state,
        });
    }
    check_node_change(old, &new.node_id)?;
    if new.service_id != old.service_id {
        return Err(Error::TaskImmutable {
            id: old.meta.id.clone(),
            field: "service",
            from: old.service_id.clone(),
            to: new.service_id.clone(),
        });
    }
    Ok(())
}

/// Once assigned, a task stays on its node.
fn check_node_change(old: &Task, node_id: &str) -> Result<()> {
    if !old.node_id.is_empty() && old.node_id != node_id {
        return Err(Error::TaskImmutable {
            id: old.meta.id.clone(),
            field: "node",
            from: old.node_id.clone(),
            to: node_id.to_owned(),
        });
    }
    Ok(())
}

/// A status at `state` with `message`, stamped `now` (a helper for callers building
/// `SetTaskStatus`/`AssignTask`).
pub fn task_status(state: TaskState, message: impl Into<String>, now: DateTime<Utc>) -> TaskStatus {
    TaskStatus {
        timestamp: now,
        state,
        message: message.into(),
        ..TaskStatus::default()
    }
}
