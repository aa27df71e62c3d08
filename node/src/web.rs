//! `swarmd --web-addr HOST:PORT`: the live web view (issue 16), served by every manager.
//!
//! ```text
//!  browser ── GET /            ─▶ web/page.html (inline CSS and JS, no build step)
//!          ── GET /api/state   ─▶ control::handle(NodeList, ServiceList, TaskList)
//!                                   ─▶ view(): the few fields the page draws (View)
//!          ── GET /api/stream  ─▶ text/event-stream:
//!                                   `change`  the Raft applied index moved (tasks too)
//!                                   `docker`  one swarm-scope event, as `/events` sends it
//! ```
//!
//! Why a change stream beside Docker's events: swarm-scope events name services, nodes,
//! networks, secrets and configs, never tasks (see `manager/events.rs`), so a scale or a
//! task going from preparing to running makes no event. Every change of any object is
//! one applied Raft entry, so the applied index is a complete and cheap "something
//! changed" signal: the page re-reads `/api/state` on it (coalesced here to one per
//! [`CHANGE_GAP`], debounced again in the page). No polling, nothing missed.
//!
//! Read-only: GET only, and `/api/state` goes through the same handlers as the API's
//! `GET /nodes`, `/services`, `/tasks`. On loopback (the default) only `Host` headers
//! naming loopback are answered, so a web page elsewhere cannot read it through DNS
//! rebinding. A node without a manager half answers 503.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use swarm_core::model::{Node, Service};
use swarm_core::model::{NodeRole, Task};
use swarm_core::TaskState;
use tokio::sync::broadcast;

use crate::api::filters::Filters;
use crate::api::{ApiError, Reply, Request};
use crate::error::{Error, Result};
use crate::manager::Manager;
use crate::metrics::ManagerSource;

/// The page: one HTML file, its CSS and JS inline.
const PAGE: &str = include_str!("web/page.html");

/// At most one `change` per this long: a scale to 1,000 tasks applies hundreds of entries
/// a second; the page needs to hear of them, not each.
pub const CHANGE_GAP: Duration = Duration::from_millis(100);

/// A comment line this often keeps proxies and the browser from timing the stream out.
const KEEPALIVE: Duration = Duration::from_secs(15);

const NOT_A_MANAGER: &str =
    "this node is not a swarm manager: the web view is served by managers\n";

/// What the page draws: a consistent-enough snapshot (three reads of the applied store).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    /// The manager's clock, so the page's ages do not depend on the browser's.
    pub now: DateTime<Utc>,
    /// The node serving the page.
    pub manager: String,
    pub nodes: Vec<NodeView>,
    pub services: Vec<ServiceView>,
    /// The tasks worth drawing (see [`shown`]).
    pub tasks: Vec<TaskView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeView {
    pub id: String,
    pub hostname: String,
    pub role: String,
    pub leader: bool,
    pub state: String,
    pub availability: String,
    pub addr: String,
    pub nano_cpus: i64,
    pub memory_bytes: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceView {
    pub id: String,
    pub name: String,
    pub mode: String,
    pub image: String,
    pub desired: u64,
    pub running: u64,
    pub update_state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskView {
    pub id: String,
    pub service_id: String,
    pub service: String,
    /// 0 for a global service's task: the node is its slot.
    pub slot: u64,
    /// Empty until scheduled.
    pub node_id: String,
    pub image: String,
    pub state: &'static str,
    pub desired_state: &'static str,
    pub err: String,
    pub created_at: DateTime<Utc>,
    /// When the task reached its current state.
    pub since: DateTime<Utc>,
    pub health: Option<&'static str>,
}

/// The visualizer's rule: a task that ended and is not meant to run again (replaced,
/// scaled away, drained, a finished job) is history, not drawn.
pub fn shown(t: &Task) -> bool {
    !(t.status.state.is_terminal() && t.desired_state > TaskState::Running)
}

/// Health as far as the manager knows it: the agent reports a task with a healthcheck
/// RUNNING only once healthy (STARTING until then), and fails it as unhealthy. `None`
/// when the task has no healthcheck of its own (the image's is not known here).
pub fn health(t: &Task) -> Option<&'static str> {
    let check = t.spec.container_spec.as_ref()?.healthcheck.as_ref()?;
    if check.test.first().is_some_and(|x| x == "NONE") {
        return None;
    }
    match t.status.state {
        TaskState::Starting => Some("starting"),
        TaskState::Running => Some("healthy"),
        TaskState::Failed if t.status.err.contains("unhealthy") => Some("unhealthy"),
        _ => None,
    }
}

/// `registry:5000/library/busybox:1@sha256:..` -> `busybox:1`: what fits on a card.
pub fn short_image(image: &str) -> &str {
    let no_digest = image.split_once('@').map_or(image, |(i, _)| i);
    no_digest.rsplit('/').next().unwrap_or(no_digest)
}

/// The view of what the API's list handlers returned.
pub fn view(
    manager: &str,
    nodes: Vec<Node>,
    services: Vec<Service>,
    tasks: Vec<Task>,
    now: DateTime<Utc>,
) -> View {
    let nodes = nodes
        .into_iter()
        .map(|n| NodeView {
            hostname: n.name().to_owned(),
            role: n
                .spec
                .role
                .as_ref()
                .map_or(NodeRole::Worker.as_str(), |r| r.as_str())
                .to_owned(),
            leader: n.manager_status.as_ref().is_some_and(|m| m.leader),
            state: n
                .status
                .state
                .as_ref()
                .map_or("unknown", |s| s.as_str())
                .to_owned(),
            availability: n
                .spec
                .availability
                .as_ref()
                .map_or("active", |a| a.as_str())
                .to_owned(),
            addr: n.status.addr.clone(),
            nano_cpus: n.description.resources.nano_cpus,
            memory_bytes: n.description.resources.memory_bytes,
            id: n.meta.id,
        })
        .collect();
    let services: Vec<ServiceView> = services
        .into_iter()
        .map(|s| {
            let status = s.service_status.unwrap_or_default();
            ServiceView {
                mode: s
                    .spec
                    .mode
                    .kind_or_default()
                    .map_or("unknown", |k| k.as_str())
                    .to_owned(),
                image: s
                    .spec
                    .task_template
                    .container_spec
                    .as_ref()
                    .map(|c| short_image(&c.image).to_owned())
                    .unwrap_or_default(),
                desired: status.desired_tasks,
                running: status.running_tasks,
                update_state: s
                    .update_status
                    .as_ref()
                    .and_then(|u| u.state.as_ref())
                    .map(|x| x.as_str().to_owned()),
                name: s.spec.name,
                id: s.meta.id,
            }
        })
        .collect();
    let name_of = |id: &str| {
        services
            .iter()
            .find(|s| s.id == id)
            .map_or_else(String::new, |s| s.name.clone())
    };
    let mut names = std::collections::HashMap::new();
    let tasks = tasks
        .into_iter()
        .filter(shown)
        .map(|t| TaskView {
            service: names
                .entry(t.service_id.clone())
                .or_insert_with(|| name_of(&t.service_id))
                .clone(),
            slot: t.slot,
            node_id: t.node_id.clone(),
            image: t
                .spec
                .container_spec
                .as_ref()
                .map(|c| short_image(&c.image).to_owned())
                .unwrap_or_default(),
            state: t.status.state.as_str(),
            desired_state: t.desired_state.as_str(),
            err: t.status.err.clone(),
            created_at: t.meta.created_at,
            since: t.status.timestamp,
            health: health(&t),
            service_id: t.service_id,
            id: t.meta.id,
        })
        .collect();
    View {
        now,
        manager: manager.to_owned(),
        nodes,
        services,
        tasks,
    }
}

/// One list handler's JSON, back as the model's type.
async fn list<T: serde::de::DeserializeOwned>(
    m: &Arc<Manager>,
    req: Request,
) -> Result<T, ApiError> {
    match crate::manager::control::handle(m, req).await? {
        Reply::Json(_, v) => serde_json::from_value(v).map_err(ApiError::internal),
        _ => Err(ApiError::internal("a list handler answered with no JSON")),
    }
}

/// `/api/state`: what `GET /nodes`, `GET /services?status=true` and `GET /tasks` answer.
pub async fn load(m: &Arc<Manager>) -> Result<View, ApiError> {
    let nodes = list(
        m,
        Request::NodeList {
            filters: Filters::default(),
        },
    )
    .await?;
    let services = list(
        m,
        Request::ServiceList {
            filters: Filters::default(),
            status: true,
        },
    )
    .await?;
    let tasks = list(
        m,
        Request::TaskList {
            filters: Filters::default(),
        },
    )
    .await?;
    Ok(view(&m.node_id, nodes, services, tasks, Utc::now()))
}

/// `--web-addr`: parsed as `--metrics-addr` is (a bare port is loopback only).
pub fn listen_addr(v: &str) -> Result<SocketAddr> {
    crate::metrics::listen_addr(v)
        .map_err(|_| Error::Other(format!("invalid --web-addr {v:?}: want HOST:PORT")))
}

/// A `Host` header naming loopback (`localhost`, `127.0.0.1:8088`, `[::1]:8088`).
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(h, _)| h)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[derive(Clone)]
struct Web {
    source: ManagerSource,
    loopback: bool,
}

/// Why a request gets no view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// A `Host` that is not loopback while listening on loopback.
    NotLoopback,
    /// This node has no manager half (a worker, or not in a swarm yet).
    NotAManager,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Refusal::NotLoopback => (
                StatusCode::FORBIDDEN,
                "the web view listens on loopback: open it as localhost or 127.0.0.1\n",
            ),
            Refusal::NotAManager => (StatusCode::SERVICE_UNAVAILABLE, NOT_A_MANAGER),
        };
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

impl Web {
    /// This node's manager, or why not.
    fn manager(&self, headers: &HeaderMap) -> Result<Arc<Manager>, Refusal> {
        if self.loopback {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            if !is_loopback_host(host) {
                return Err(Refusal::NotLoopback);
            }
        }
        (self.source)().ok_or(Refusal::NotAManager)
    }
}

/// Headers on every answer: nothing cached, nothing loaded from elsewhere.
fn secured(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'",
        ),
    );
    r
}

async fn page(
    axum::extract::State(web): axum::extract::State<Web>,
    headers: HeaderMap,
) -> Response {
    secured(match web.manager(&headers) {
        Ok(_) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response(),
        Err(r) => r.into_response(),
    })
}

async fn state(
    axum::extract::State(web): axum::extract::State<Web>,
    headers: HeaderMap,
) -> Response {
    let m = match web.manager(&headers) {
        Ok(m) => m,
        Err(r) => return secured(r.into_response()),
    };
    secured(match load(&m).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => {
            tracing::warn!("web view: {e}");
            (
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{e}\n"),
            )
                .into_response()
        }
    })
}

async fn stream(
    axum::extract::State(web): axum::extract::State<Web>,
    headers: HeaderMap,
) -> Response {
    let m = match web.manager(&headers) {
        Ok(m) => m,
        Err(r) => return secured(r.into_response()),
    };
    let mut r = Response::new(Body::from_stream(changes(m)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    secured(r)
}

/// What one `/api/stream` follows; it ends when the manager half stops (a demotion), and
/// the page reconnects to whatever this node is then.
struct Follow {
    applied: tokio::sync::watch::Receiver<u64>,
    events: broadcast::Receiver<Arc<crate::events::Message>>,
    stopped: Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    first: bool,
}

fn change(index: u64) -> Bytes {
    Bytes::from(format!("event: change\ndata: {index}\n\n"))
}

/// The event stream of one page: `change` on the applied index (at once, then at most
/// one per [`CHANGE_GAP`]), `docker` for each swarm event, a comment every [`KEEPALIVE`].
fn changes(m: Arc<Manager>) -> impl futures::Stream<Item = std::io::Result<Bytes>> {
    let (_, events) = m.store.feed().subscribe(None, None);
    let follow = Follow {
        applied: m.store.subscribe(),
        events,
        first: true,
        stopped: Box::pin(async move { m.stopped().await }),
    };
    futures::stream::unfold(follow, |mut f| async move {
        if f.first {
            f.first = false;
            let i = *f.applied.borrow_and_update();
            return Some((Ok(change(i)), f));
        }
        let out = tokio::select! {
            _ = &mut f.stopped => return None,
            r = f.applied.changed() => {
                r.ok()?;
                // Whatever else applies meanwhile goes into this one change.
                tokio::time::sleep(CHANGE_GAP).await;
                change(*f.applied.borrow_and_update())
            }
            r = f.events.recv() => match r {
                Ok(msg) => {
                    let json = serde_json::to_string(&*msg).unwrap_or_default();
                    Bytes::from(format!("event: docker\ndata: {json}\n\n"))
                }
                // Events missed: the state is re-read all the same.
                Err(broadcast::error::RecvError::Lagged(_)) => change(*f.applied.borrow()),
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            _ = tokio::time::sleep(KEEPALIVE) => Bytes::from_static(b": keepalive\n\n"),
        };
        Some((Ok(out), f))
    })
}

/// Serves the web view on `addr` until the future is dropped.
pub async fn serve(addr: SocketAddr, source: ManagerSource) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(Error::io(format!("listen for the web view on {addr}")))?;
    let web = Web {
        source,
        loopback: addr.ip().is_loopback(),
    };
    let app = axum::Router::new()
        .route("/", axum::routing::get(page))
        .route("/api/state", axum::routing::get(state))
        .route("/api/stream", axum::routing::get(stream))
        .with_state(web);
    tracing::info!(%addr, "web view serving");
    axum::serve(listener, app)
        .await
        .map_err(Error::io("serve the web view"))
}

#[cfg(test)]
mod tests {
    use swarm_core::model::{
        ContainerSpec, Healthcheck, ManagerStatus, NodeAvailability, NodeState, ServiceMode,
        TaskSpec,
    };

    use super::*;

    fn task(id: &str, svc: &str, state: TaskState, desired: TaskState) -> Task {
        let mut t = Task::default();
        t.meta.id = id.into();
        t.service_id = svc.into();
        t.node_id = "n1".into();
        t.slot = 1;
        t.status.state = state;
        t.desired_state = desired;
        t.spec = Arc::new(TaskSpec {
            container_spec: Some(ContainerSpec {
                image: "127.0.0.1:5000/busybox:1@sha256:abc".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        t
    }

    #[test]
    fn history_is_not_drawn() {
        use TaskState::*;
        assert!(shown(&task("a", "s", Running, Running)));
        assert!(shown(&task("a", "s", Pending, Running)));
        // Stopping: still drawn until it stopped.
        assert!(shown(&task("a", "s", Running, Shutdown)));
        // Failed and about to restart: drawn.
        assert!(shown(&task("a", "s", Failed, Running)));
        assert!(!shown(&task("a", "s", Shutdown, Shutdown)));
        assert!(!shown(&task("a", "s", Failed, Shutdown)));
        assert!(!shown(&task("a", "s", Complete, Complete)));
        assert!(!shown(&task("a", "s", Rejected, Remove)));
    }

    #[test]
    fn images_are_shortened() {
        assert_eq!(
            short_image("127.0.0.1:5000/busybox:1@sha256:ab"),
            "busybox:1"
        );
        assert_eq!(short_image("nginx"), "nginx");
        assert_eq!(short_image("docker.io/library/redis:7"), "redis:7");
    }

    #[test]
    fn health_only_with_a_healthcheck() {
        use TaskState::*;
        let mut t = task("a", "s", Running, Running);
        assert_eq!(health(&t), None);
        let mut spec = (*t.spec).clone();
        spec.container_spec.as_mut().unwrap().healthcheck = Some(Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            ..Default::default()
        });
        t.spec = Arc::new(spec);
        assert_eq!(health(&t), Some("healthy"));
        t.status.state = Starting;
        assert_eq!(health(&t), Some("starting"));
        t.status.state = Failed;
        t.status.err = "unhealthy container".into();
        assert_eq!(health(&t), Some("unhealthy"));
    }

    #[test]
    fn the_view_names_what_the_page_draws() {
        let mut n = Node::default();
        n.meta.id = "n1".into();
        n.description.hostname = "host-1".into();
        n.description.resources.nano_cpus = 2_000_000_000;
        n.spec.role = Some(NodeRole::Manager);
        n.spec.availability = Some(NodeAvailability::Drain);
        n.status.state = Some(NodeState::Ready);
        n.manager_status = Some(ManagerStatus {
            leader: true,
            ..Default::default()
        });
        let mut s = Service::default();
        s.meta.id = "s1".into();
        s.spec.name = "web".into();
        s.spec.mode = ServiceMode::default();
        let tasks = vec![
            task("t1", "s1", TaskState::Running, TaskState::Running),
            task("t0", "s1", TaskState::Shutdown, TaskState::Shutdown),
        ];
        let v = view("n1", vec![n], vec![s], tasks, Utc::now());
        assert_eq!(v.nodes.len(), 1);
        let node = &v.nodes[0];
        assert_eq!(
            (node.hostname.as_str(), node.role.as_str(), node.leader),
            ("host-1", "manager", true)
        );
        assert_eq!(
            (node.state.as_str(), node.availability.as_str()),
            ("ready", "drain")
        );
        assert_eq!(node.nano_cpus, 2_000_000_000);
        assert_eq!(v.tasks.len(), 1, "the shut down task is history");
        let t = &v.tasks[0];
        assert_eq!(
            (t.id.as_str(), t.service.as_str(), t.slot, t.state),
            ("t1", "web", 1, "running")
        );
        assert_eq!(t.image, "busybox:1");
    }

    #[test]
    fn only_loopback_hosts_on_loopback() {
        for h in [
            "localhost",
            "localhost:8088",
            "127.0.0.1:8088",
            "[::1]:8088",
            "[::1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["", "evil.example:8088", "10.0.0.1:8088", "localhost.evil:1"] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn the_page_is_self_contained() {
        // No external assets: it works offline and under the CSP above.
        for needle in ["src=\"http", "href=\"http", "@import", "url(http"] {
            assert!(!PAGE.contains(needle), "{needle}");
        }
        assert!(PAGE.contains("aria-live=\"polite\""));
    }
}
