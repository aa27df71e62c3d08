//! `GET /events` in swarm scope: Docker's cluster events made from what the Raft store
//! applied, on every manager alike.
//!
//! ```text
//!  StoreMachine::apply ──(old objects, core Events)──▶ messages() ──▶ Feed::publish
//!                                                                      │ ring (since)
//!  GET /events ◀── stream(): replay ring ∩ since/until, then live ◀────┘ broadcast
//! ```
//!
//! The attributes are moby's (`daemon/events.go`, `generateClusterEvent`): every event
//! names its object (`name`); a service update adds `image.old/new`,
//! `replicas.old/new` and `updatestate.old/new` when they changed, a node update
//! `availability`, `role`, `state`, `leader` and `reachability` pairs. Tasks make no
//! event: swarmkit's watch that moby listens to covers nodes, services, networks,
//! secrets and configs only (container events are the local engine's).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use swarm_core::model::{Node, Service};
use swarm_core::store::{Event, Object, ObjectKind, Store as CoreStore, StoreAction};
use tokio::sync::broadcast;

use crate::api::filters::Filters;
use crate::api::ApiError;

/// How many recent events a manager keeps for `since` (Docker keeps 256).
pub const RING: usize = 1024;

/// One event as Docker's API writes it (`api/types/events.Message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

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

/// A manager's events: the last [`RING`] for `since`, and a broadcast of new ones.
#[derive(Debug)]
pub struct Feed {
    ring: Mutex<VecDeque<Arc<Message>>>,
    tx: broadcast::Sender<Arc<Message>>,
}

impl Default for Feed {
    fn default() -> Feed {
        Feed {
            ring: Mutex::new(VecDeque::with_capacity(RING)),
            tx: broadcast::channel(4096).0,
        }
    }
}

impl Feed {
    pub fn publish(&self, messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        let mut ring = self.ring.lock().expect("feed lock");
        for m in messages {
            let m = Arc::new(m);
            if ring.len() == RING {
                ring.pop_front();
            }
            ring.push_back(m.clone());
            // No subscriber is no error.
            let _ = self.tx.send(m);
        }
    }

    /// The kept events in `[since, until]` (none when both are unset, as Docker), and a
    /// receiver of every later one: taken under one lock, so nothing falls between.
    pub fn subscribe(
        &self,
        since: Option<i64>,
        until: Option<i64>,
    ) -> (Vec<Arc<Message>>, broadcast::Receiver<Arc<Message>>) {
        let ring = self.ring.lock().expect("feed lock");
        let rx = self.tx.subscribe();
        if since.is_none() && until.is_none() {
            return (Vec::new(), rx);
        }
        let kept = ring
            .iter()
            .filter(|m| since.is_none_or(|s| m.time_nano >= s))
            .filter(|m| until.is_none_or(|u| m.time_nano <= u))
            .cloned()
            .collect();
        (kept, rx)
    }

    /// How many subscribers listen now.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// `?since=`/`?until=` as Docker's API takes them: Unix seconds with an optional
/// fraction (`1733580000.123456789`); the CLIs turn durations and dates into that.
pub fn parse_time(v: &str) -> Result<i64, String> {
    let bad = || format!("invalid timestamp: {v:?}");
    let (sec, frac) = v.split_once('.').unwrap_or((v, ""));
    let sec: i64 = sec.parse().map_err(|_| bad())?;
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    Ok(sec * 1_000_000_000 + nanos)
}

/// moby's `daemon/events.Filter.Include`: every key given must match.
pub fn include(f: &Filters, m: &Message) -> bool {
    let attr = |k: &str| m.actor.attributes.get(k).map_or("", String::as_str);
    let exact = |key: &str, v: &str| f.matches(key, |x| x == v);
    // A filter named for a type matches that type's ID or name, as a prefix.
    let fuzzy = |key: &str| {
        f.matches(key, |x| {
            m.actor.id.starts_with(x) || attr("name").starts_with(x)
        })
    };
    exact("event", &m.action)
        && exact("type", &m.kind)
        && exact("scope", &m.scope)
        && [
            "daemon", "container", "plugin", "volume", "network", "node", "service", "secret",
            "config",
        ]
        .iter()
        .all(|k| fuzzy(k))
        // `image` is exact, on the ID or the `image` attribute (none in swarm events).
        && f.matches("image", |x| x == m.actor.id || x == attr("image"))
        // Every `label` must be there (moby's `MatchKVList`), not any one.
        && f.get("label").is_none_or(|labels| {
            labels.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => m.actor.attributes.get(k).is_some_and(|x| x == v),
                None => m.actor.attributes.contains_key(l.as_str()),
            })
        })
}

/// What `GET /events` asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventsQuery {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub filters: Filters,
}

/// The body of `GET /events`: one JSON object per line, the kept ones first, then live
/// ones until `until` (right after the kept ones when `until` has passed).
pub fn stream(
    feed: &Feed,
    q: EventsQuery,
) -> Result<BoxStream<'static, std::io::Result<Bytes>>, ApiError> {
    use futures::StreamExt;
    if let (Some(s), Some(u)) = (q.since, q.until) {
        if u < s {
            return Err(ApiError::invalid(
                "`since` time cannot be after `until` time",
            ));
        }
    }
    let (kept, rx) = feed.subscribe(q.since, q.until);
    let now = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let deadline = q.until.map(|u| {
        tokio::time::Instant::now() + Duration::from_nanos(u.saturating_sub(now).max(0) as u64)
    });
    let past = q.until.is_some_and(|u| u <= now);
    let filters = Arc::new(q.filters);
    let f = filters.clone();
    let replay = futures::stream::iter(kept.into_iter().filter(move |m| include(&f, m)));
    let live = futures::stream::unfold(rx, move |mut rx| async move {
        if past {
            return None;
        }
        loop {
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                    Ok(r) => r,
                    Err(_) => return None,
                },
                None => rx.recv().await,
            };
            match next {
                Ok(m) => return Some((m, rx)),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("events: a slow subscriber missed {n} events");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .filter(move |m| futures::future::ready(include(&filters, m)));
    Ok(replay
        .chain(live)
        .map(|m| {
            let mut line = serde_json::to_vec(&*m).expect("a message serializes");
            line.push(b'\n');
            Ok(Bytes::from(line))
        })
        .boxed())
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

    fn msg(kind: &str, action: &str, id: &str, name: &str, t: i64) -> Message {
        Message {
            kind: kind.into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes: BTreeMap::from([("name".into(), name.into())]),
            },
            scope: "swarm".into(),
            time: t / 1_000_000_000,
            time_nano: t,
        }
    }

    #[test]
    fn filters_follow_mobys() {
        let f = |j: &str| Filters::parse(j).unwrap();
        let web = msg("service", "create", "abc123", "web", 1);
        let n = msg("node", "update", "nd1", "host1", 1);
        assert!(include(&f(r#"{"scope":{"swarm":true}}"#), &web));
        assert!(!include(&f(r#"{"scope":{"local":true}}"#), &web));
        assert!(include(&f(r#"{"type":{"service":true}}"#), &web));
        assert!(!include(&f(r#"{"type":{"service":true}}"#), &n));
        assert!(include(&f(r#"{"service":{"web":true}}"#), &web));
        assert!(include(&f(r#"{"service":{"abc":true}}"#), &web));
        assert!(!include(&f(r#"{"service":{"web":true}}"#), &n));
        assert!(include(
            &f(r#"{"event":{"create":true,"remove":true}}"#),
            &web
        ));
        assert!(!include(&f(r#"{"event":{"update":true}}"#), &web));
        assert!(include(&f(r#"{"label":{"name=web":true}}"#), &web));
        assert!(!include(&f(r#"{"label":{"zone":true}}"#), &web));
        assert!(!include(
            &f(r#"{"label":{"name=web":true,"zone":true}}"#),
            &web
        ));
        assert!(!include(&f(r#"{"image":{"web":true}}"#), &web));
    }

    #[test]
    fn timestamps_as_docker_sends_them() {
        assert_eq!(parse_time("12").unwrap(), 12_000_000_000);
        assert_eq!(parse_time("12.5").unwrap(), 12_500_000_000);
        assert_eq!(parse_time("12.000000001").unwrap(), 12_000_000_001);
        assert!(parse_time("x").is_err());
        assert!(parse_time("1.0000000001").is_err());
    }

    #[tokio::test]
    async fn since_replays_the_ring_and_until_ends_the_stream() {
        use futures::StreamExt;
        let feed = Feed::default();
        feed.publish(vec![
            msg("service", "create", "a", "a", 10),
            msg("secret", "create", "b", "b", 20),
        ]);
        let q = EventsQuery {
            since: Some(15),
            until: Some(30),
            ..EventsQuery::default()
        };
        let lines: Vec<_> = stream(&feed, q).unwrap().collect().await;
        assert_eq!(lines.len(), 1);
        let m: Message = serde_json::from_slice(lines[0].as_ref().unwrap()).unwrap();
        assert_eq!(m.actor.id, "b");
        // No since, no until: only what comes next.
        let mut s = stream(&feed, EventsQuery::default()).unwrap();
        feed.publish(vec![msg("node", "update", "c", "c", 40)]);
        let m: Message = serde_json::from_slice(&s.next().await.unwrap().unwrap()).unwrap();
        assert_eq!(m.actor.id, "c");
    }
}
