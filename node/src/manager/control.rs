//! Control API handlers (swarmkit's controlapi): typed requests in, typed replies out,
//! every write proposed to the store. No HTTP here.

use std::sync::Arc;

use chrono::Utc;
use futures::StreamExt;
use serde_json::{json, Value};
use swarm_runtime::container::logs;

use super::model::{Node, Service, Task, TaskState, UpdateStatus, Version};
use super::store::{Action, Tables};
use super::Manager;
use crate::api::filters::{label_matches, Filters};
use crate::api::{mux_frame, ApiError, LogsOptions, Reply, Request};

type R = Result<Reply, ApiError>;

fn ok(v: impl serde::Serialize) -> R {
    Ok(Reply::Json(
        200,
        serde_json::to_value(v).map_err(ApiError::internal)?,
    ))
}

pub async fn handle(m: &Arc<Manager>, req: Request) -> R {
    match req {
        Request::SwarmInspect => {
            m.store
                .read(|t| match &t.swarm {
                    Some(s) => ok(s),
                    None => Err(ApiError::NotManager),
                })
                .await
        }
        Request::SwarmInit(_) => Err(ApiError::Unavailable(
            "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.".into(),
        )),
        Request::SwarmLeave { .. } => Err(ApiError::Unavailable(
            "leaving the swarm is not supported yet".into(),
        )),
        Request::NodeList { filters } => {
            filters.validate(&["id", "label", "membership", "name", "node.label", "role"])?;
            m.store.read(|t| {
                let nodes: Vec<&Node> = t
                    .nodes
                    .values()
                    .filter(|n| {
                        filters.matches("id", |v| n.id.starts_with(v))
                            && filters.matches("name", |v| n.description["Hostname"] == v)
                            && filters.matches("role", |v| n.spec["Role"] == v)
                    })
                    .collect();
                ok(nodes)
            })
            .await
        }
        Request::NodeInspect { id } => m.store.read(|t| ok(find_node(t, &id)?)).await,
        Request::NodeUpdate { id, version, spec } => {
            let node = m.store.read(|t| find_node(t, &id).cloned()).await?;
            if node.version.index != version {
                return Err(out_of_sequence());
            }
            let mut node = node;
            node.spec = spec;
            node.updated_at = Utc::now();
            m.propose(vec![Action::PutNode(node)]).await?;
            Ok(Reply::Empty(200))
        }
        Request::NodeRemove { .. } => Err(ApiError::invalid(
            "rpc error: code = FailedPrecondition desc = node is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal",
        )),
        Request::ServiceList { filters, status } => {
            filters.validate(&["id", "label", "mode", "name"])?;
            m.store.read(|t| {
                let out: Vec<Value> = t
                    .services
                    .values()
                    .filter(|s| service_matches(s, &filters))
                    .map(|s| service_json(t, s, status))
                    .collect();
                ok(out)
            })
            .await
        }
        Request::ServiceInspect { id } => m
            .store
            .read(|t| find_service(t, &id).map(|s| service_json(t, s, false)))
            .await
            .and_then(ok),
        Request::ServiceCreate { spec } => create_service(m, spec).await,
        Request::ServiceUpdate {
            id,
            version,
            rollback,
            spec,
        } => update_service(m, &id, version, rollback, spec).await,
        Request::ServiceRemove { id } => {
            let s = m.store.read(|t| find_service(t, &id).cloned()).await?;
            m.propose(vec![Action::DeleteService(s.id)]).await?;
            Ok(Reply::Empty(200))
        }
        Request::TaskList { filters } => {
            filters.validate(&[
                "_up-to-date",
                "desired-state",
                "id",
                "label",
                "name",
                "node",
                "service",
            ])?;
            m.store.read(|t| ok(list_tasks(t, &filters))).await
        }
        Request::TaskInspect { id } => m.store.read(|t| ok(find_task(t, &id)?)).await,
        Request::ServiceLogs { id, opts } => {
            let (service, tasks) = m.store.read(|t| {
                let s = find_service(t, &id)?;
                let tasks: Vec<Task> = t
                    .tasks
                    .values()
                    .filter(|x| x.service_id == s.id)
                    .cloned()
                    .collect();
                Ok::<_, ApiError>((s.clone(), tasks))
            })
            .await?;
            let _ = service;
            Ok(Reply::Stream(log_stream(m, tasks, opts)))
        }
        Request::TaskLogs { id, opts } => {
            let task = m.store.read(|t| find_task(t, &id).cloned()).await?;
            Ok(Reply::Stream(log_stream(m, vec![task], opts)))
        }
        Request::Distribution { name } => Err(ApiError::NotFound(format!(
            "distribution inspect is not supported yet: {name}"
        ))),
        Request::Ping | Request::Version | Request::Info => {
            Err(ApiError::internal("handled by the node"))
        }
    }
}

fn out_of_sequence() -> ApiError {
    ApiError::Conflict("rpc error: code = Unknown desc = update out of sequence".into())
}

/// By ID, then exact name, then unique ID prefix (Docker's lookup order).
pub fn find_service<'a>(t: &'a Tables, key: &str) -> Result<&'a Service, ApiError> {
    if let Some(s) = t.services.get(key) {
        return Ok(s);
    }
    if let Some(s) = t.services.values().find(|s| s.name() == key) {
        return Ok(s);
    }
    let mut by_prefix = t.services.values().filter(|s| s.id.starts_with(key));
    match (by_prefix.next(), by_prefix.next()) {
        (Some(s), None) if !key.is_empty() => Ok(s),
        (Some(_), Some(_)) => Err(ApiError::NotFound(format!(
            "service {key} is ambiguous (2 matches found)"
        ))),
        _ => Err(ApiError::NotFound(format!("no such service: {key}"))),
    }
}

pub fn find_node<'a>(t: &'a Tables, key: &str) -> Result<&'a Node, ApiError> {
    if let Some(n) = t.nodes.get(key) {
        return Ok(n);
    }
    let mut it = t
        .nodes
        .values()
        .filter(|n| n.description["Hostname"] == key || (!key.is_empty() && n.id.starts_with(key)));
    match (it.next(), it.next()) {
        (Some(n), None) => Ok(n),
        (Some(_), Some(_)) => Err(ApiError::NotFound(format!(
            "node {key} is ambiguous (2 matches found)"
        ))),
        _ => Err(ApiError::NotFound(format!("node {key} not found"))),
    }
}

pub fn find_task<'a>(t: &'a Tables, key: &str) -> Result<&'a Task, ApiError> {
    if let Some(x) = t.tasks.get(key) {
        return Ok(x);
    }
    let mut it = t
        .tasks
        .values()
        .filter(|x| !key.is_empty() && x.id.starts_with(key));
    match (it.next(), it.next()) {
        (Some(x), None) => Ok(x),
        _ => Err(ApiError::NotFound(format!("no such task: {key}"))),
    }
}

fn service_matches(s: &Service, f: &Filters) -> bool {
    f.matches("id", |v| s.id.starts_with(v))
        && f.matches("name", |v| s.name().starts_with(v))
        && f.matches("label", |v| label_matches(&s.labels(), v))
        && f.matches("mode", |v| match v {
            "global" => s.replicas().is_none(),
            _ => s.replicas().is_some(),
        })
}

fn service_json(t: &Tables, s: &Service, status: bool) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    if status {
        let running = t
            .tasks
            .values()
            .filter(|x| {
                x.service_id == s.id
                    && x.status.state == TaskState::Running
                    && x.desired_state == TaskState::Running
            })
            .count();
        let desired = match s.replicas() {
            Some(n) => n as usize,
            None => t
                .nodes
                .values()
                .filter(|n| n.status["State"] == "ready")
                .count(),
        };
        v["ServiceStatus"] = json!({
            "RunningTasks": running,
            "DesiredTasks": desired,
            "CompletedTasks": 0,
        });
    }
    v
}

fn list_tasks(t: &Tables, f: &Filters) -> Vec<Task> {
    let services: Vec<&Service> = match f.get("service") {
        Some(keys) => keys
            .iter()
            .filter_map(|k| find_service(t, k).ok())
            .collect(),
        None => Vec::new(),
    };
    t.tasks
        .values()
        .filter(|x| {
            let svc = t.services.get(&x.service_id);
            (f.get("service").is_none() || services.iter().any(|s| s.id == x.service_id))
                && f.matches("id", |v| x.id.starts_with(v))
                && f.matches("node", |v| {
                    x.node_id == v || find_node(t, v).is_ok_and(|n| n.id == x.node_id)
                })
                && f.matches("desired-state", |v| {
                    TaskState::parse(v).is_some_and(|d| x.desired_state == d)
                })
                && f.matches("label", |v| {
                    svc.is_some_and(|s| label_matches(&s.labels(), v))
                })
                && f.matches("name", |v| {
                    svc.is_some_and(|s| format!("{}.{}", s.name(), x.slot).starts_with(v))
                })
                && match f.bool("_up-to-date") {
                    Some(true) => svc.is_some_and(|s| x.spec == *s.template()),
                    _ => true,
                }
        })
        .cloned()
        .collect()
}

/// A spec the orchestrator can run, or 400 with Docker's wording.
fn validate_spec(spec: &Value) -> Result<(), ApiError> {
    if !spec.is_object() {
        return Err(ApiError::invalid("invalid service spec: not an object"));
    }
    let image = &spec["TaskTemplate"]["ContainerSpec"]["Image"];
    if image.as_str().is_none_or(str::is_empty) {
        return Err(ApiError::invalid(
            "rpc error: code = InvalidArgument desc = ContainerSpec: image reference must be provided",
        ));
    }
    let mode = &spec["Mode"];
    if mode.get("Replicated").is_some() && mode.get("Global").is_some() {
        return Err(ApiError::invalid(
            "rpc error: code = InvalidArgument desc = service spec: mode must be one of replicated or global",
        ));
    }
    if let Some(r) = mode["Replicated"].get("Replicas") {
        if !r.is_u64() {
            return Err(ApiError::invalid(
                "rpc error: code = InvalidArgument desc = Replicas must be a non-negative integer",
            ));
        }
    }
    if let Some(name) = spec["Name"].as_str() {
        let ok = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && name.as_bytes()[0].is_ascii_alphanumeric();
        if !ok {
            return Err(ApiError::invalid(format!(
                "rpc error: code = InvalidArgument desc = name must be valid as a DNS name component: {name:?}"
            )));
        }
    }
    Ok(())
}

fn name_conflict(t: &Tables, name: &str, except: &str) -> Result<(), ApiError> {
    if t.services
        .values()
        .any(|s| s.name() == name && s.id != except)
    {
        return Err(ApiError::Conflict(format!(
            "rpc error: code = AlreadyExists desc = name conflicts with an existing object: service {name} already exists"
        )));
    }
    Ok(())
}

async fn create_service(m: &Arc<Manager>, mut spec: Value) -> R {
    let id = crate::ids::new_id();
    if spec
        .get("Name")
        .is_none_or(|n| n.as_str().is_none_or(str::is_empty))
        && spec.is_object()
    {
        spec["Name"] = json!(format!("svc-{}", &id[..8]));
    }
    validate_spec(&spec)?;
    if spec["Mode"].get("Replicated").is_none() && spec["Mode"].get("Global").is_none() {
        spec["Mode"] = json!({"Replicated": {"Replicas": 1}});
    }
    let name = spec["Name"].as_str().unwrap_or_default().to_string();
    let now = Utc::now();
    let s = Service {
        id: id.clone(),
        version: Version::default(),
        created_at: now,
        updated_at: now,
        spec,
        previous_spec: None,
        endpoint: json!({"Spec": {}}),
        update_status: None,
    };
    // The name check and the write under one lock: two creates cannot both win.
    let _g = m.write_lock.lock().await;
    m.store.read(|t| name_conflict(t, &name, "")).await?;
    m.propose(vec![Action::PutService(s)]).await?;
    Ok(Reply::Json(201, json!({ "ID": id })))
}

async fn update_service(
    m: &Arc<Manager>,
    key: &str,
    version: u64,
    rollback: bool,
    spec: Value,
) -> R {
    let _g = m.write_lock.lock().await;
    let mut s = m.store.read(|t| find_service(t, key).cloned()).await?;
    if s.version.index != version {
        return Err(out_of_sequence());
    }
    let now = Utc::now();
    let new_spec = if rollback {
        s.previous_spec.clone().ok_or_else(|| {
            ApiError::invalid(format!(
                "rpc error: code = FailedPrecondition desc = service {} does not have a previous spec",
                s.id
            ))
        })?
    } else {
        spec
    };
    validate_spec(&new_spec)?;
    let name = new_spec["Name"].as_str().unwrap_or_default().to_string();
    if name != s.name() {
        return Err(ApiError::invalid(
            "rpc error: code = Unimplemented desc = renaming services is not supported",
        ));
    }
    m.store.read(|t| name_conflict(t, &name, &s.id)).await?;
    let template_changed = new_spec["TaskTemplate"] != s.spec["TaskTemplate"];
    s.previous_spec = Some(std::mem::replace(&mut s.spec, new_spec));
    s.updated_at = now;
    if rollback {
        s.update_status = Some(UpdateStatus {
            state: "rollback_started".into(),
            started_at: Some(now),
            completed_at: None,
            message: "manually requested rollback".into(),
        });
    } else if template_changed {
        s.update_status = Some(UpdateStatus {
            state: "updating".into(),
            started_at: Some(now),
            completed_at: None,
            message: "update in progress".into(),
        });
    }
    m.propose(vec![Action::PutService(s)]).await?;
    Ok(Reply::Json(200, json!({ "Warnings": null })))
}

/// Docker's service log stream: each task's json-file log, multiplexed, with the
/// `details` prefix the CLI turns into `web.1.xyz@node |`.
fn log_stream(
    m: &Arc<Manager>,
    tasks: Vec<Task>,
    opts: LogsOptions,
) -> futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(64);
    let rt = m.runtime.clone();
    tokio::spawn(async move {
        let mut streams = Vec::new();
        for t in tasks {
            let path = rt.log_path(&t.id);
            if !path.exists() {
                continue;
            }
            let prefix = format!(
                "com.docker.swarm.node.id={},com.docker.swarm.service.id={},com.docker.swarm.task.id={}",
                t.node_id, t.service_id, t.id
            );
            let read = logs::read(
                path,
                logs::ReadOptions {
                    tail: opts.tail,
                    follow: opts.follow,
                    until: None,
                },
            );
            streams.push(read.map(move |e| (prefix.clone(), e)).boxed());
        }
        let mut all = futures::stream::select_all(streams);
        while let Some((prefix, entry)) = all.next().await {
            let Ok(e) = entry else { continue };
            let (stream, wanted) = match e.stream {
                logs::LogStream::Stdout => (1u8, opts.stdout),
                logs::LogStream::Stderr => (2u8, opts.stderr),
            };
            if !wanted {
                continue;
            }
            let mut line = Vec::new();
            if opts.timestamps {
                line.extend_from_slice(
                    e.time
                        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
                        .as_bytes(),
                );
                line.push(b' ');
            }
            if opts.details {
                line.extend_from_slice(prefix.as_bytes());
                line.push(b' ');
            }
            line.extend_from_slice(&e.line);
            if tx.send(Ok(mux_frame(stream, &line))).await.is_err() {
                break;
            }
        }
    });
    tokio_stream_from(rx)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
) -> futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}
