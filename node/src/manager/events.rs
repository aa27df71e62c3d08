//! `GET /events` in swarm scope: Docker's cluster events made from what the Raft store
//! applied, on every manager alike (the feed and the stream: `crate::events`).
//!
//! ```text
//!  StoreMachine::apply ──(old objects, core Events)──▶ messages() ──▶ Feed::publish
//! ```
//!
//! The attributes are moby's (`daemon/events.go`, `generateClusterEvent`): every event
//! names its object (`name`); a service update adds `image.old/new`,
//! `replicas.old/new` and `updatestate.old/new` when they changed, a node update
//! `availability`, `role`, `state`, `leader` and `reachability` pairs. Tasks make no
//! event: swarmkit's watch that moby listens to covers nodes, services, networks,
//! secrets and configs only (container events are the local engine's).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use swarm_core::model::{Node, Service};
use swarm_core::store::{Event, Object, ObjectKind, Store as CoreStore, StoreAction};

use crate::events::{Actor, Message};

/// The objects a batch is about to change, as they were: what `old` attributes come from.
/// Only services and nodes have any.
pub fn olds(store: &CoreStore, actions: &[StoreAction]) -> HashMap<String, Object> {
    let mut out = HashMap::new();
    for a in actions {
        let id = match a {
            StoreAction::Update(Object::Service(s)) => s.meta.id.as_str(),
            StoreAction::Update(Object::Node(n)) => n.meta.id.as_str(),
            StoreAction::SetServiceVirtualIps { id, .. }
            | StoreAction::SetNodeStatus { id, .. }
            | StoreAction::SetNodeTlsInfo { id, .. } => id.as_str(),
            _ => continue,
        };
        if out.contains_key(id) {
            continue;
        }
        if let Some(s) = store.service(id) {
            out.insert(id.to_owned(), Object::Service(Box::new(s.clone())));
        } else if let Some(n) = store.node(id) {
            out.insert(id.to_owned(), Object::Node(Box::new(n.clone())));
        }
    }
    out
}

/// Docker's messages for one applied batch. `store` is after the batch, `old` from
/// [`olds`] before it, `now` the batch's time (a remove's time: the removed object has
/// no later timestamp).
pub fn messages(
    store: &CoreStore,
    events: &[Event],
    old: &HashMap<String, Object>,
    now: DateTime<Utc>,
) -> Vec<Message> {
    let mut out = Vec::new();
    for e in events {
        let (action, object) = match e {
            Event::Created { kind, id } => ("create", current(store, *kind, id)),
            Event::Updated { kind, id } => ("update", current(store, *kind, id)),
            Event::Removed { object } => ("remove", Some(object.clone())),
        };
        let Some(object) = object else { continue };
        let prior = if action == "update" {
            old.get(object.id())
        } else {
            None
        };
        let (kind, name, meta_time, mut attributes) = match &object {
            Object::Service(s) => (
                "service",
                s.spec.name.clone(),
                (s.meta.created_at, s.meta.updated_at),
                match prior {
                    Some(Object::Service(o)) => service_changes(o, s),
                    _ => BTreeMap::new(),
                },
            ),
            Object::Node(n) => (
                "node",
                if n.spec.name.is_empty() {
                    n.description.hostname.clone()
                } else {
                    n.spec.name.clone()
                },
                (n.meta.created_at, n.meta.updated_at),
                match prior {
                    Some(Object::Node(o)) => node_changes(o, n),
                    _ => BTreeMap::new(),
                },
            ),
            Object::Secret(s) => (
                "secret",
                s.spec.name.clone(),
                (s.meta.created_at, s.meta.updated_at),
                BTreeMap::new(),
            ),
            Object::Config(c) => (
                "config",
                c.spec.name.clone(),
                (c.meta.created_at, c.meta.updated_at),
                BTreeMap::new(),
            ),
            Object::Network(n) => (
                "network",
                n.spec.name.clone(),
                (n.meta.created_at, n.meta.updated_at),
                BTreeMap::new(),
            ),
            Object::Task(_) | Object::Cluster(_) => continue,
        };
        attributes.insert("name".into(), name);
        let time = match action {
            "create" => meta_time.0,
            "update" => meta_time.1,
            _ => now,
        };
        let nanos = time.timestamp_nanos_opt().unwrap_or_default();
        out.push(Message {
            kind: kind.into(),
            action: action.into(),
            actor: Actor {
                id: object.id().to_owned(),
                attributes,
            },
            scope: "swarm".into(),
            time: nanos.div_euclid(1_000_000_000),
            time_nano: nanos,
        });
    }
    out
}

fn current(store: &CoreStore, kind: ObjectKind, id: &str) -> Option<Object> {
    Some(match kind {
        ObjectKind::Service => Object::Service(Box::new(store.service(id)?.clone())),
        ObjectKind::Node => Object::Node(Box::new(store.node(id)?.clone())),
        ObjectKind::Secret => Object::Secret(Box::new(store.secret(id)?.clone())),
        ObjectKind::Config => Object::Config(Box::new(store.config(id)?.clone())),
        ObjectKind::Network => Object::Network(Box::new(store.network(id)?.clone())),
        ObjectKind::Task | ObjectKind::Cluster => return None,
    })
}

fn pair(out: &mut BTreeMap<String, String>, key: &str, old: String, new: String) {
    if old != new {
        out.insert(format!("{key}.old"), old);
        out.insert(format!("{key}.new"), new);
    }
}

/// moby's `logServiceEvent`: image, replicas (replicated mode), update state.
fn service_changes(old: &Service, new: &Service) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let image = |s: &Service| {
        s.spec
            .task_template
            .container_spec
            .as_ref()
            .map(|c| c.image.clone())
            .unwrap_or_default()
    };
    pair(&mut out, "image", image(old), image(new));
    let replicas = |s: &Service| {
        s.spec
            .mode
            .replicated
            .as_ref()
            .map(|r| r.replicas.unwrap_or(1))
    };
    if let (Some(o), Some(n)) = (replicas(old), replicas(new)) {
        pair(&mut out, "replicas", o.to_string(), n.to_string());
    }
    let state = |s: &Service| {
        s.update_status.as_ref().map(|u| {
            u.state
                .as_ref()
                .map_or("unknown", |s| s.as_str())
                .to_owned()
        })
    };
    match (state(old), state(new)) {
        (None, Some(n)) => {
            out.insert("updatestate.new".into(), n);
        }
        (Some(o), Some(n)) => pair(&mut out, "updatestate", o, n),
        _ => {}
    }
    out
}

/// moby's `logNodeEvent`: availability, role, state; leader and reachability of a
/// manager that stays one.
fn node_changes(old: &Node, new: &Node) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let availability = |n: &Node| {
        n.spec
            .availability
            .as_ref()
            .map_or("active", |a| a.as_str())
            .to_owned()
    };
    pair(
        &mut out,
        "availability",
        availability(old),
        availability(new),
    );
    let role = |n: &Node| {
        n.spec
            .role
            .as_ref()
            .map_or("worker", |r| r.as_str())
            .to_owned()
    };
    pair(&mut out, "role", role(old), role(new));
    let state = |n: &Node| {
        n.status
            .state
            .as_ref()
            .map_or("unknown", |s| s.as_str())
            .to_owned()
    };
    pair(&mut out, "state", state(old), state(new));
    if let (Some(o), Some(n)) = (&old.manager_status, &new.manager_status) {
        pair(
            &mut out,
            "leader",
            o.leader.to_string(),
            n.leader.to_string(),
        );
        let r = |m: &swarm_core::model::ManagerStatus| {
            m.reachability
                .as_ref()
                .map_or("unknown", |r| r.as_str())
                .to_owned()
        };
        pair(&mut out, "reachability", r(o), r(n));
    }
    out
}

#[cfg(test)]
mod tests {
    use swarm_core::model::{
        ContainerSpec, NodeAvailability, NodeState, NodeStatus, Secret, ServiceMode,
    };

    use super::*;

    fn service(id: &str, image: &str, replicas: u64) -> Service {
        let mut s = Service::default();
        s.meta.id = id.into();
        s.spec.name = "web".into();
        s.spec.mode = ServiceMode::replicated(replicas);
        s.spec.task_template.container_spec = Some(ContainerSpec {
            image: image.into(),
            ..ContainerSpec::default()
        });
        s
    }

    fn node(id: &str) -> Node {
        let mut n = Node::default();
        n.meta.id = id.into();
        n.description.hostname = "host1".into();
        n
    }

    /// Applies `actions` to `store` and returns Docker's messages for them.
    fn apply(store: &mut CoreStore, actions: Vec<StoreAction>, index: u64) -> Vec<Message> {
        let old = olds(store, &actions);
        let now = Utc::now();
        let events = store.apply(&actions, index, now).unwrap();
        messages(store, &events, &old, now)
    }

    #[test]
    fn service_create_update_remove_carry_dockers_attributes() {
        let mut store = CoreStore::default();
        let m = apply(
            &mut store,
            vec![StoreAction::Create(Object::Service(Box::new(service(
                "s1",
                "busybox:1",
                1,
            ))))],
            1,
        );
        assert_eq!(m.len(), 1);
        assert_eq!(
            (m[0].kind.as_str(), m[0].action.as_str()),
            ("service", "create")
        );
        assert_eq!(m[0].actor.id, "s1");
        assert_eq!(
            m[0].actor.attributes,
            BTreeMap::from([("name".into(), "web".into())])
        );
        assert_eq!(m[0].scope, "swarm");
        assert_eq!(m[0].time, m[0].time_nano / 1_000_000_000);

        let mut updated = store.service("s1").unwrap().clone();
        updated.spec.mode = ServiceMode::replicated(3);
        updated
            .spec
            .task_template
            .container_spec
            .as_mut()
            .unwrap()
            .image = "busybox:2".into();
        let m = apply(
            &mut store,
            vec![StoreAction::Update(Object::Service(Box::new(updated)))],
            2,
        );
        let want: BTreeMap<String, String> = [
            ("name", "web"),
            ("image.old", "busybox:1"),
            ("image.new", "busybox:2"),
            ("replicas.old", "1"),
            ("replicas.new", "3"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        assert_eq!(m[0].action, "update");
        assert_eq!(m[0].actor.attributes, want);

        let m = apply(
            &mut store,
            vec![StoreAction::Remove(ObjectKind::Service, "s1".into())],
            3,
        );
        assert_eq!(m[0].action, "remove");
        assert_eq!(m[0].actor.attributes["name"], "web");
    }

    #[test]
    fn node_changes_name_state_and_availability() {
        let mut store = CoreStore::default();
        apply(
            &mut store,
            vec![StoreAction::Create(Object::Node(Box::new(node("n1"))))],
            1,
        );
        let m = apply(
            &mut store,
            vec![StoreAction::SetNodeStatus {
                id: "n1".into(),
                status: NodeStatus {
                    state: Some(NodeState::Ready),
                    ..NodeStatus::default()
                },
            }],
            2,
        );
        assert_eq!(m[0].actor.attributes["name"], "host1");
        assert_eq!(m[0].actor.attributes["state.old"], "unknown");
        assert_eq!(m[0].actor.attributes["state.new"], "ready");
        let mut n = store.node("n1").unwrap().clone();
        n.spec.availability = Some(NodeAvailability::Drain);
        n.spec.labels.insert("zone".into(), "a".into());
        let m = apply(
            &mut store,
            vec![StoreAction::Update(Object::Node(Box::new(n)))],
            3,
        );
        assert_eq!(m[0].actor.attributes["availability.new"], "drain");
        assert!(!m[0].actor.attributes.contains_key("state.new"));
    }

    #[test]
    fn tasks_make_no_event_and_secrets_are_named() {
        let mut store = CoreStore::default();
        let mut s = Secret::default();
        s.meta.id = "x1".into();
        s.spec.name = "db".into();
        let m = apply(
            &mut store,
            vec![StoreAction::Create(Object::Secret(Box::new(s)))],
            1,
        );
        assert_eq!(
            (m[0].kind.as_str(), m[0].actor.attributes["name"].as_str()),
            ("secret", "db")
        );
    }
}
