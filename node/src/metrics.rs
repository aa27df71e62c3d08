//! `swarmd --metrics-addr HOST:PORT`: `/metrics` for Prometheus (OpenMetrics text, the
//! `prometheus-client` crate), like dockerd's `--metrics-addr`.
//!
//! ```text
//!  scrape ──▶ render: swarm gauges computed from the store now (nodes, tasks, replicas),
//!                     Raft's metrics, dispatcher sessions
//!                   + process counters kept as things happen (API latency by route,
//!                     image pulls, leader changes)
//! ```
//!
//! What the store holds is never counted twice: the gauges are read from it on every
//! scrape. Only what the store does not record (latencies, pulls, elections) is kept here,
//! in process-wide families. Names follow swarmkit's where it has one
//! (`swarm_manager_nodes`, `swarm_manager_tasks_total`, `swarm_node_manager`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use swarm_core::model::NodeState;
use swarm_core::state::TaskState;
use swarm_core::store::Store as CoreStore;

use crate::error::{Error, Result};
use crate::manager::Manager;

type Labels = Vec<(String, String)>;

/// What happens in this process that no store records.
struct Process {
    api: Family<Labels, Histogram, fn() -> Histogram>,
    image_pulls: Family<Labels, Counter>,
    leader_changes: Counter,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

static PROCESS: LazyLock<Process> = LazyLock::new(|| Process {
    api: Family::new_with_constructor(latency_histogram),
    image_pulls: Family::default(),
    leader_changes: Counter::default(),
});

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One API request answered (until its reply starts: a stream's length is not latency).
pub fn api_request(method: &str, path: &str, took: Duration) {
    let route = route(method, path);
    PROCESS
        .api
        .get_or_create(&labels(&[("route", &route)]))
        .observe(took.as_secs_f64());
}

/// One image pull by the agent, `ok` or failed.
pub fn image_pull(ok: bool) {
    let result = if ok { "success" } else { "failure" };
    PROCESS
        .image_pulls
        .get_or_create(&labels(&[("result", result)]))
        .inc();
}

/// This manager saw a new leader (itself or another).
pub fn leader_changed() {
    PROCESS.leader_changes.inc();
}

/// `GET /v1.47/services/abc/update` -> `POST /services/{id}/update`: one label per
/// route, whatever the IDs, so the label set stays small.
pub fn route(method: &str, path: &str) -> String {
    const RESOURCES: &[&str] = &[
        "nodes", "services", "tasks", "secrets", "configs", "networks", "volumes",
    ];
    const TOP: &[&str] = &[
        "_ping",
        "version",
        "info",
        "swarm",
        "events",
        "images",
        "distribution",
    ];
    const VERBS: &[&str] = &[
        "create",
        "update",
        "logs",
        "init",
        "join",
        "leave",
        "unlock",
        "unlockkey",
        "load",
        "json",
        "prune",
    ];
    let path = match path.strip_prefix("/v").and_then(|r| r.split_once('/')) {
        Some((v, rest)) if v.split('.').all(|p| p.parse::<u32>().is_ok()) => rest,
        _ => path.trim_start_matches('/'),
    };
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let first = segs.first().copied().unwrap_or("");
    let route = if first == "distribution" {
        "/distribution/{name}/json".to_string()
    } else if RESOURCES.contains(&first) || TOP.contains(&first) {
        let mut out = String::new();
        for (i, s) in segs.iter().enumerate() {
            out.push('/');
            if i == 0 || VERBS.contains(s) {
                out.push_str(s);
            } else {
                out.push_str("{id}");
            }
        }
        out
    } else {
        "other".to_string()
    };
    format!("{} {route}", method.to_ascii_uppercase())
}

/// The swarm as the store says it is now.
#[derive(Debug, Default, PartialEq)]
pub struct Counts {
    /// Every node state, zero included (as swarmkit publishes them).
    pub nodes_by_state: BTreeMap<String, i64>,
    pub nodes_by_availability: BTreeMap<String, i64>,
    /// Every task state, zero included.
    pub tasks_by_state: BTreeMap<String, i64>,
    /// (service name, state) -> tasks.
    pub service_tasks: BTreeMap<(String, String), i64>,
    /// service name -> (desired, running).
    pub replicas: BTreeMap<String, (i64, i64)>,
    pub services: i64,
    pub secrets: i64,
    pub configs: i64,
    pub networks: i64,
}

/// Counts what the store holds. A service's desired replicas: its replica count
/// (replicated) or its tasks meant to run (global, jobs); running: its tasks running and
/// meant to.
pub fn counts(s: &CoreStore) -> Counts {
    let mut c = Counts::default();
    for st in NodeState::KNOWN {
        c.nodes_by_state.insert(st.to_string(), 0);
    }
    for n in s.nodes() {
        let state = n.status.state.as_ref().map_or("unknown", |x| x.as_str());
        *c.nodes_by_state.entry(state.to_owned()).or_default() += 1;
        let a = n
            .spec
            .availability
            .as_ref()
            .map_or("active", |x| x.as_str());
        *c.nodes_by_availability.entry(a.to_owned()).or_default() += 1;
    }
    for st in TaskState::ALL {
        c.tasks_by_state.insert(st.as_str().to_owned(), 0);
    }
    let mut names = BTreeMap::new();
    for svc in s.services() {
        c.services += 1;
        names.insert(svc.meta.id.as_str(), svc.spec.name.as_str());
        let desired = svc
            .spec
            .mode
            .replicated
            .as_ref()
            .map(|r| r.replicas.unwrap_or(1) as i64);
        c.replicas
            .insert(svc.spec.name.clone(), (desired.unwrap_or(-1), 0));
    }
    for t in s.tasks() {
        let state = t.status.state.as_str();
        *c.tasks_by_state.entry(state.to_owned()).or_default() += 1;
        let Some(name) = names.get(t.service_id.as_str()) else {
            continue;
        };
        *c.service_tasks
            .entry((name.to_string(), state.to_owned()))
            .or_default() += 1;
        let r = c
            .replicas
            .get_mut(*name)
            .expect("every service has an entry");
        if t.desired_state == TaskState::Running && t.status.state == TaskState::Running {
            r.1 += 1;
        }
    }
    // Global services and jobs: desired is what is meant to run.
    let mut meant: BTreeMap<&str, i64> = BTreeMap::new();
    for t in s.tasks() {
        if t.desired_state == TaskState::Running {
            if let Some(name) = names.get(t.service_id.as_str()) {
                *meant.entry(name).or_default() += 1;
            }
        }
    }
    for (name, r) in c.replicas.iter_mut() {
        if r.0 < 0 {
            r.0 = meant.get(name.as_str()).copied().unwrap_or(0);
        }
    }
    c.secrets = s.secrets().count() as i64;
    c.configs = s.configs().count() as i64;
    c.networks = s.networks().count() as i64;
    c
}

fn gauge_family(reg: &mut Registry, name: &str, help: &str, rows: Vec<(Labels, i64)>) {
    let f = Family::<Labels, Gauge>::default();
    for (l, v) in rows {
        f.get_or_create(&l).set(v);
    }
    reg.register(name, help, f);
}

fn gauge(reg: &mut Registry, name: &str, help: &str, v: i64) {
    let g = Gauge::<i64>::default();
    g.set(v);
    reg.register(name, help, g);
}

/// Where the scrape finds this node's manager half (none on a worker).
pub type ManagerSource = Arc<dyn Fn() -> Option<Arc<Manager>> + Send + Sync>;

/// The text of one scrape.
pub async fn render(manager: Option<Arc<Manager>>) -> String {
    let mut reg = Registry::default();
    let p = &*PROCESS;
    reg.register(
        "swarm_api_request_duration_seconds",
        "Control API requests by route, until the reply starts",
        p.api.clone(),
    );
    reg.register(
        "swarm_image_pulls",
        "Image pulls by this node's agent",
        p.image_pulls.clone(),
    );
    reg.register(
        "swarm_raft_leader_changes",
        "Leaders this manager has seen elected",
        p.leader_changes.clone(),
    );
    gauge(
        &mut reg,
        "swarm_node_manager",
        "Whether this node is a manager",
        i64::from(manager.is_some()),
    );
    let Some(m) = manager else {
        return text(&reg);
    };
    let c = m.store.read(counts).await;
    let raft = m.store.metrics();
    let sessions = m.dispatcher.session_count() as i64;
    let row = |k: &str, v: &str| labels(&[(k, v)]);
    gauge_family(
        &mut reg,
        "swarm_manager_nodes",
        "The number of nodes by state",
        c.nodes_by_state
            .iter()
            .map(|(k, v)| (row("state", k), *v))
            .collect(),
    );
    gauge_family(
        &mut reg,
        "swarm_manager_nodes_by_availability",
        "The number of nodes by availability",
        c.nodes_by_availability
            .iter()
            .map(|(k, v)| (row("availability", k), *v))
            .collect(),
    );
    gauge_family(
        &mut reg,
        "swarm_manager_tasks_total",
        "The number of tasks in the store by state",
        c.tasks_by_state
            .iter()
            .map(|(k, v)| (row("state", k), *v))
            .collect(),
    );
    gauge_family(
        &mut reg,
        "swarm_service_tasks",
        "The number of tasks by service and state",
        c.service_tasks
            .iter()
            .map(|((s, st), v)| (labels(&[("service", s), ("state", st)]), *v))
            .collect(),
    );
    gauge_family(
        &mut reg,
        "swarm_service_replicas_desired",
        "Tasks each service asks for",
        c.replicas
            .iter()
            .map(|(s, (d, _))| (row("service", s), *d))
            .collect(),
    );
    gauge_family(
        &mut reg,
        "swarm_service_replicas_running",
        "Tasks of each service running and meant to",
        c.replicas
            .iter()
            .map(|(s, (_, r))| (row("service", s), *r))
            .collect(),
    );
    gauge(
        &mut reg,
        "swarm_manager_services_total",
        "The number of services",
        c.services,
    );
    gauge(
        &mut reg,
        "swarm_manager_secrets_total",
        "The number of secrets",
        c.secrets,
    );
    gauge(
        &mut reg,
        "swarm_manager_configs_total",
        "The number of configs",
        c.configs,
    );
    gauge(
        &mut reg,
        "swarm_manager_networks_total",
        "The number of networks",
        c.networks,
    );
    gauge(
        &mut reg,
        "swarm_manager_leader",
        "Whether this manager is the leader",
        i64::from(m.store.is_leader()),
    );
    gauge(
        &mut reg,
        "swarm_dispatcher_sessions",
        "Agent sessions this manager's dispatcher holds",
        sessions,
    );
    gauge(
        &mut reg,
        "swarm_raft_term",
        "Raft's current term",
        raft.current_term as i64,
    );
    gauge(
        &mut reg,
        "swarm_raft_last_log_index",
        "Index of the last entry in this manager's Raft log",
        raft.last_log_index.unwrap_or(0) as i64,
    );
    gauge(
        &mut reg,
        "swarm_raft_applied_index",
        "Index of the last entry applied to the store",
        raft.last_applied.map_or(0, |l| l.index) as i64,
    );
    gauge(
        &mut reg,
        "swarm_raft_snapshot_index",
        "Index of the last entry in the latest snapshot",
        raft.snapshot.map_or(0, |l| l.index) as i64,
    );
    text(&reg)
}

fn text(reg: &Registry) -> String {
    let mut out = String::new();
    encode(&mut out, reg).expect("encoding into a String");
    out
}

/// `--metrics-addr`: a bare port (`:9323`, `9323`) listens on loopback only.
pub fn listen_addr(v: &str) -> Result<SocketAddr> {
    let v = v.trim();
    let full = if let Some(port) = v.strip_prefix(':') {
        format!("127.0.0.1:{port}")
    } else if v.parse::<u16>().is_ok() {
        format!("127.0.0.1:{v}")
    } else {
        v.to_string()
    };
    full.parse()
        .map_err(|_| Error::Other(format!("invalid --metrics-addr {v:?}: want HOST:PORT")))
}

/// Serves `/metrics` on `addr` until the future is dropped.
pub async fn serve(addr: SocketAddr, source: ManagerSource) -> Result<()> {
    use axum::http::header;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(Error::io(format!("listen for metrics on {addr}")))?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let source = source.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    render(source()).await,
                )
            }
        }),
    );
    tracing::info!(%addr, "metrics serving");
    axum::serve(listener, app)
        .await
        .map_err(Error::io("serve metrics"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_hide_ids() {
        assert_eq!(route("get", "/v1.47/services/abc"), "GET /services/{id}");
        assert_eq!(
            route("POST", "/v1.47/services/abc/update"),
            "POST /services/{id}/update"
        );
        assert_eq!(route("POST", "/services/create"), "POST /services/create");
        assert_eq!(route("GET", "/v1.47/events"), "GET /events");
        assert_eq!(
            route("GET", "/v1.47/distribution/127.0.0.1:5000/busybox:1/json"),
            "GET /distribution/{name}/json"
        );
        assert_eq!(route("GET", "/v1.47/nope/x"), "GET other");
        assert_eq!(route("DELETE", "/v1.47/volumes/v1"), "DELETE /volumes/{id}");
        assert_eq!(route("POST", "/volumes/prune"), "POST /volumes/prune");
    }

    #[test]
    fn bare_ports_stay_on_loopback() {
        assert_eq!(listen_addr(":9323").unwrap().to_string(), "127.0.0.1:9323");
        assert_eq!(listen_addr("9323").unwrap().to_string(), "127.0.0.1:9323");
        assert_eq!(listen_addr("0.0.0.0:1").unwrap().to_string(), "0.0.0.0:1");
        assert!(listen_addr("nope").is_err());
    }

    #[test]
    fn counts_come_from_the_store() {
        use swarm_core::model::{Node, NodeAvailability, Service, ServiceMode, Task};
        use swarm_core::store::{Object, StoreAction};
        let mut n = Node::default();
        n.meta.id = "n1".into();
        n.status.state = Some(NodeState::Ready);
        n.spec.availability = Some(NodeAvailability::Drain);
        let mut svc = Service::default();
        svc.meta.id = "s1".into();
        svc.spec.name = "web".into();
        svc.spec.mode = ServiceMode::replicated(3);
        let task = |id: &str, state: TaskState| {
            let mut t = Task::default();
            t.meta.id = id.into();
            t.service_id = "s1".into();
            t.desired_state = TaskState::Running;
            t.status.state = state;
            StoreAction::Create(Object::Task(Box::new(t)))
        };
        let mut store = CoreStore::default();
        store
            .apply(
                &[
                    StoreAction::Create(Object::Node(Box::new(n))),
                    StoreAction::Create(Object::Service(Box::new(svc))),
                    task("t1", TaskState::Running),
                    task("t2", TaskState::Running),
                    task("t3", TaskState::Pending),
                ],
                1,
                chrono::Utc::now(),
            )
            .unwrap();
        let c = counts(&store);
        assert_eq!(c.nodes_by_state["ready"], 1);
        assert_eq!(c.nodes_by_state["down"], 0);
        assert_eq!(c.nodes_by_availability["drain"], 1);
        assert_eq!(c.tasks_by_state["running"], 2);
        assert_eq!(c.tasks_by_state["failed"], 0);
        assert_eq!(c.service_tasks[&("web".into(), "pending".into())], 1);
        assert_eq!(c.replicas["web"], (3, 2));
        assert_eq!(c.services, 1);
    }

    #[tokio::test]
    async fn a_worker_scrape_has_the_process_metrics() {
        api_request("GET", "/v1.47/services", Duration::from_millis(3));
        image_pull(true);
        let t = render(None).await;
        assert!(t.contains("swarm_node_manager 0"), "{t}");
        assert!(
            t.contains("swarm_image_pulls_total{result=\"success\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("swarm_api_request_duration_seconds_count{route=\"GET /services\"} 1"),
            "{t}"
        );
        assert!(t.ends_with("# EOF\n"), "{t}");
    }
}
