//! `GET /events`: Docker's event messages, the feeds that keep and broadcast them, and
//! the stream a client reads.
//!
//! ```text
//!  manager: StoreMachine::apply ─▶ manager::events::messages ─▶ Feed (scope swarm)
//!  agent:   a task's container created, started, died, destroyed ─▶ Feed (scope local)
//!  GET /events ◀── stream(): every feed's ring ∩ since/until in time order, then live
//! ```
//!
//! A manager serves both feeds, as dockerd on a manager sends its containers' events
//! and the cluster's; a worker only its own (`docker events` on a worker, the same).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::api::filters::Filters;
use crate::api::ApiError;

/// How many recent events a feed keeps for `since` (Docker keeps 256).
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

/// How many events a subscriber may fall behind before it misses some: a scale to
/// 1,000 tasks makes a few thousand container events within a second.
const LIVE: usize = 16384;

/// One source of events (a manager's store, a node's containers): the last [`RING`]
/// for `since`, and a broadcast of new ones.
#[derive(Debug)]
pub struct Feed {
    ring: Mutex<VecDeque<Arc<Message>>>,
    tx: broadcast::Sender<Arc<Message>>,
}

impl Default for Feed {
    fn default() -> Feed {
        Feed {
            ring: Mutex::new(VecDeque::with_capacity(RING)),
            tx: broadcast::channel(LIVE).0,
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
    feeds: &[&Feed],
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
    // Every feed's kept events in time order, then the live ones as they come.
    let mut kept = Vec::new();
    let mut receivers = Vec::new();
    for feed in feeds {
        let (k, rx) = feed.subscribe(q.since, q.until);
        kept.extend(k);
        receivers.push(rx);
    }
    kept.sort_by_key(|m| m.time_nano);
    let now = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let deadline = q.until.map(|u| {
        tokio::time::Instant::now() + Duration::from_nanos(u.saturating_sub(now).max(0) as u64)
    });
    let past = q.until.is_some_and(|u| u <= now);
    let filters = Arc::new(q.filters);
    let f = filters.clone();
    let replay = futures::stream::iter(kept.into_iter().filter(move |m| include(&f, m)));
    let live = futures::stream::select_all(receivers.into_iter().map(move |rx| {
        futures::stream::unfold(rx, move |mut rx| async move {
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
        .boxed()
    }))
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
    use super::*;

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
        let lines: Vec<_> = stream(&[&feed], q).unwrap().collect().await;
        assert_eq!(lines.len(), 1);
        let m: Message = serde_json::from_slice(lines[0].as_ref().unwrap()).unwrap();
        assert_eq!(m.actor.id, "b");
        // No since, no until: only what comes next.
        let mut s = stream(&[&feed], EventsQuery::default()).unwrap();
        feed.publish(vec![msg("node", "update", "c", "c", 40)]);
        let m: Message = serde_json::from_slice(&s.next().await.unwrap().unwrap()).unwrap();
        assert_eq!(m.actor.id, "c");
    }
}
