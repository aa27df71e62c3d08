//! Control API handlers (swarmkit's controlapi): typed requests in, typed replies out,
//! every write proposed to the store. No HTTP here.
//!
//! Lookups, filters, validation and the store's rules (unique names, `Version.Index`
//! checks) are `swarm-core`'s; a refused write comes back from Raft as the core's error
//! and becomes Docker's status (400/404/409).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use swarm_core::model::{
    Config, ConfigSpec, Endpoint, Meta, ModeKind, Node, NodeRole, NodeSpec, NodeState,
    Reachability, Secret, SecretSpec, Service, ServiceSpec, ServiceStatus, SwarmSpec, Task,
    UpdateState, UpdateStatus, Version,
};
use swarm_core::orchestrator::task::is_dirty;
use swarm_core::store::{
    update_config, update_secret, LabelFilter, NodeFilter, Object, ObjectKind, SecretFilter,
    ServiceFilter, Store as CoreStore, StoreAction, TaskFilter,
};
use swarm_core::validate::{
    validate_config_spec, validate_node_spec, validate_secret_spec, validate_service_spec,
    validate_service_update,
};
use swarm_core::TaskState;

use super::Manager;
use crate::api::filters::{label_matches, Filters};
use crate::api::{mux_frame, ApiError, BlobKind, LogsOptions, Reply, Request};
use crate::cluster::proto::dispatcher_client::DispatcherClient;
use crate::cluster::proto::{LogBatch, LogSubscription};

type R = Result<Reply, ApiError>;

fn ok(v: impl serde::Serialize) -> R {
    Ok(Reply::Json(
        200,
        serde_json::to_value(v).map_err(ApiError::internal)?,
    ))
}

/// A request body as a model type, or 400.
fn decode<T: DeserializeOwned>(what: &str, v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::invalid(format!("invalid {what}: {e}")))
}

/// A node as the API shows it: a manager's `Leader` and `Reachability` are Raft's view
/// now (the leader this manager knows of; reachable while its node is Ready), not what
/// was stored when it joined.
fn live_manager_status(n: &Node, leader: Option<u64>) -> Node {
    let mut n = n.clone();
    let ready = n.status.state == Some(NodeState::Ready);
    if let Some(ms) = n.manager_status.as_mut() {
        ms.leader = leader == Some(super::store::raft_id(&n.meta.id));
        ms.reachability = Some(if ms.leader || ready {
            Reachability::Reachable
        } else {
            Reachability::Unreachable
        });
    }
    n
}

/// How a manager's demotion goes on once its node's spec says worker.
enum Demotion {
    /// Out of Raft already: its manager status goes with the spec update.
    Removed,
    /// The manager demoting itself while it leads: the spec update only. Its leader loop
    /// then takes it out of Raft, it steps down once that commits, and the next leader
    /// clears its manager status (see `loops::finish_demotions`).
    LeaderLeavesAfter,
}

/// A manager being demoted leaves the Raft membership first (refused if it is the last
/// manager, or if the managers left could not reach a quorum); its swarmd then sees the
/// worker role in its session, takes a worker certificate and stops its manager half.
/// The leader is demoted too: from another manager, it is asked to leave Raft (it steps
/// down) and the spec update reaches the next leader; on itself, see
/// [`Demotion::LeaderLeavesAfter`].
async fn demote_from_raft(m: &Manager, node: &Node) -> Result<Demotion, ApiError> {
    let managers = m
        .store
        .read(|s| {
            s.nodes()
                .filter(|n| n.spec.role == Some(NodeRole::Manager))
                .count()
        })
        .await;
    let refused = |e: &dyn std::fmt::Display| {
        ApiError::invalid(format!("rpc error: code = FailedPrecondition desc = {e}"))
    };
    if managers <= 1 {
        return Err(refused(
            &"attempting to demote the last manager of the swarm",
        ));
    }
    let raft_id = super::store::raft_id(&node.meta.id);
    if m.store.is_leader() && m.store.handle().id() == raft_id {
        m.store.check_removal(raft_id).map_err(|e| refused(&e))?;
        return Ok(Demotion::LeaderLeavesAfter);
    }
    m.store
        .remove_member(raft_id, false)
        .await
        .map_err(|e| refused(&e))?;
    Ok(Demotion::Removed)
}

/// Docker's refusal for a manager leaving without `--force`.
async fn manager_leave_warning(m: &Manager) -> String {
    let managers = m
        .store
        .read(|s| s.nodes().filter(|n| n.manager_status.is_some()).count())
        .await;
    if managers <= 1 {
        "You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message.".to_string()
    } else {
        let quorum = managers / 2 + 1;
        format!(
            "You are attempting to leave the swarm on a node that is participating as a manager. Removing this node leaves {} managers out of a potential quorum of {quorum}. The remaining managers may not be able to reach consensus. It is recommended to demote this node first. Use `--force` to suppress this message.",
            managers - 1
        )
    }
}

pub async fn handle(m: &Arc<Manager>, req: Request) -> R {
    match req {
        Request::SwarmInspect => {
            m.store
                .read(|s| match s.cluster() {
                    Some(c) => ok(c.public()),
                    None => Err(ApiError::NotManager),
                })
                .await
        }
        Request::SwarmUnlockKey => {
            m.store
                .read(|s| match s.cluster() {
                    Some(c) => ok(json!({"UnlockKey": c.unlock_key})),
                    None => Err(ApiError::NotManager),
                })
                .await
        }
        Request::SwarmUnlock(_) => Err(ApiError::Conflict("swarm is not locked".into())),
        Request::SwarmInit(_) | Request::SwarmJoin(_) => Err(ApiError::Unavailable(
            "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.".into(),
        )),
        Request::SwarmLeave { .. } => Err(ApiError::Unavailable(manager_leave_warning(m).await)),
        Request::SwarmUpdate {
            version,
            spec,
            rotate_worker_token,
            rotate_manager_token,
            rotate_unlock_key,
        } => {
            let spec: SwarmSpec = decode("swarm spec", spec)?;
            let mut swarm = m
                .store
                .read(|s| s.cluster().cloned())
                .await
                .ok_or(ApiError::NotManager)?;
            let root = swarm_identity::RootCa::from_pem(&swarm.cluster.tls_info.trust_root, None)
                .map_err(ApiError::internal)?;
            if rotate_worker_token {
                swarm.join_tokens.worker = swarm_identity::JoinToken::generate(&root).to_string();
            }
            if rotate_manager_token {
                swarm.join_tokens.manager = swarm_identity::JoinToken::generate(&root).to_string();
            }
            // Autolock on: a key (a new one on rotation); off: none. Every manager then
            // seals its keys under it (`loops::follow_unlock_key`).
            if !spec.encryption_config.auto_lock_managers {
                swarm.unlock_key.clear();
            } else if swarm.unlock_key.is_empty() || rotate_unlock_key {
                swarm.unlock_key = swarm_identity::UnlockKey::generate().to_string();
            }
            // `swarm ca --rotate`: a new root, cross-signed by the current one; nodes get
            // certificates from it and the leader finishes the rotation
            // (`loops::finish_root_rotation`) once every live node has one.
            if spec.ca_config.force_rotate != swarm.cluster.spec.ca_config.force_rotate {
                let next = swarm_identity::RootCa::generate(&swarm.cluster.meta.id)
                    .map_err(ApiError::internal)?;
                let current = swarm_identity::RootCa::from_pem(
                    &swarm.cluster.tls_info.trust_root,
                    Some(&swarm.root_ca_key),
                )
                .map_err(ApiError::internal)?;
                swarm.root_rotation = Some(swarm_core::model::RootRotation {
                    ca_cert: next.cert_pem().to_string(),
                    ca_key: next.key_pem().unwrap_or_default(),
                    cross_signed: current.cross_sign(&next).map_err(ApiError::internal)?,
                });
                swarm.cluster.root_rotation_in_progress = true;
            }
            swarm.cluster.meta.version = Version::new(version);
            swarm.cluster.spec = spec;
            m.propose(vec![StoreAction::Update(Object::Cluster(Box::new(swarm)))])
                .await?;
            Ok(Reply::Empty(200))
        }
        Request::NodeList { filters } => {
            filters.validate(&["id", "label", "membership", "name", "node.label", "role"])?;
            let f = node_filter(&filters);
            // Every node in the store was accepted (its join token checked).
            let accepted = filters.matches("membership", |v| v == "accepted");
            let leader = m.store.leader();
            m.store
                .read(|s| match (f, accepted) {
                    (Some(f), true) => ok(s
                        .list_nodes(&f)
                        .into_iter()
                        .map(|n| live_manager_status(n, leader))
                        .collect::<Vec<_>>()),
                    _ => ok(Vec::<()>::new()),
                })
                .await
        }
        Request::NodeInspect { id } => {
            let leader = m.store.leader();
            m.store
                .read(|s| ok(live_manager_status(s.find_node(&id)?, leader)))
                .await
        }
        Request::NodeUpdate { id, version, spec } => {
            let spec: NodeSpec = decode("node spec", spec)?;
            validate_node_spec(&spec)?;
            let mut node = m.store.read(|s| s.find_node(&id).cloned()).await?;
            let demote = node.spec.role == Some(NodeRole::Manager)
                && spec.role == Some(NodeRole::Worker);
            let demotion = if demote {
                Some(demote_from_raft(m, &node).await?)
            } else {
                None
            };
            if let Some(Demotion::Removed) = demotion {
                node.manager_status = None;
            }
            node.meta.version = Version::new(version);
            node.spec = spec;
            m.propose(vec![StoreAction::Update(Object::Node(Box::new(node)))])
                .await?;
            Ok(Reply::Empty(200))
        }
        Request::NodeRemove { id, force } => {
            let node = m.store.read(|s| s.find_node(&id).cloned()).await?;
            let nid = node.meta.id.clone();
            if node.spec.role == Some(NodeRole::Manager) || node.manager_status.is_some() {
                return Err(ApiError::invalid(format!(
                    "rpc error: code = FailedPrecondition desc = node {nid} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal"
                )));
            }
            if !force && node.status.state != Some(NodeState::Down) {
                return Err(ApiError::invalid(format!(
                    "rpc error: code = FailedPrecondition desc = node {nid} is not down and can't be removed"
                )));
            }
            // Its tasks are shut down and replaced by the orchestrators; its dispatcher
            // session ends and a reconnecting agent is refused.
            m.propose(vec![StoreAction::Remove(ObjectKind::Node, nid)])
                .await?;
            Ok(Reply::Empty(200))
        }
        Request::ServiceList { filters, status } => {
            filters.validate(&["id", "label", "mode", "name"])?;
            let f = service_filter(&filters);
            m.store
                .read(|s| {
                    let out: Vec<Service> = match &f {
                        Some(f) => s
                            .list_services(f)
                            .into_iter()
                            .map(|svc| with_status(s, svc, status))
                            .collect(),
                        None => Vec::new(),
                    };
                    ok(out)
                })
                .await
        }
        Request::ServiceInspect {
            id,
            insert_defaults,
        } => {
            let mut v = m.store.read(|s| ok(s.find_service(&id)?)).await?;
            if let (true, Reply::Json(_, v)) = (insert_defaults, &mut v) {
                swarm_core::model::insert_service_defaults(&mut v["Spec"]);
            }
            Ok(v)
        }
        Request::ServiceCreate { spec } => create_service(m, spec).await,
        Request::ServiceUpdate {
            id,
            version,
            rollback,
            spec,
        } => update_service(m, &id, version, rollback, spec).await,
        Request::ServiceRemove { id } => {
            // The service and, in the same entry, its tasks desired REMOVE (swarmkit
            // leaves that to the orchestrator's next pass): a network the stack made
            // can be removed right after its services, as `stack rm` does, without
            // "network is in use by task" from tasks nobody has told to stop yet.
            let actions = m
                .store
                .read(|s| {
                    let svc = s.find_service(&id)?;
                    let mut actions = vec![StoreAction::Remove(
                        ObjectKind::Service,
                        svc.id().to_string(),
                    )];
                    actions.extend(s.tasks_of_service(svc.id()).map(|t| {
                        StoreAction::SetTaskDesiredState {
                            id: t.id().to_string(),
                            desired_state: TaskState::Remove,
                        }
                    }));
                    Ok::<_, ApiError>(actions)
                })
                .await?;
            m.propose(actions).await?;
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
            m.store.read(|s| ok(list_tasks(s, &filters))).await
        }
        Request::TaskInspect { id } => m.store.read(|s| ok(s.find_task(&id)?)).await,
        Request::ServiceLogs { id, opts } => {
            let service = m
                .store
                .read(|s| s.find_service(&id).map(|svc| svc.id().to_string()))
                .await?;
            let sub = log_subscription(&opts, service, Vec::new());
            Ok(Reply::Stream(log_stream(m, sub, opts)))
        }
        Request::TaskLogs { id, opts } => {
            let task = m
                .store
                .read(|s| s.find_task(&id).map(|t| t.id().to_string()))
                .await?;
            let sub = log_subscription(&opts, String::new(), vec![task]);
            Ok(Reply::Stream(log_stream(m, sub, opts)))
        }
        Request::SecretList { kind, filters } => {
            filters.validate(&["id", "label", "name", "names"])?;
            let f = SecretFilter {
                ids: values(&filters, "id"),
                names: values(&filters, "names"),
                name_prefixes: values(&filters, "name"),
                labels: values(&filters, "label")
                    .iter()
                    .map(|l| LabelFilter::parse(l))
                    .collect(),
            };
            m.store
                .read(|s| match kind {
                    BlobKind::Secret => ok(s
                        .list_secrets(&f)
                        .into_iter()
                        .map(without_data)
                        .collect::<Vec<_>>()),
                    BlobKind::Config => ok(s.list_configs(&f)),
                })
                .await
        }
        Request::SecretInspect { kind, id } => {
            let not_found = |e| blob_error(kind, &id, e);
            m.store
                .read(|s| match kind {
                    BlobKind::Secret => ok(without_data(s.find_secret(&id).map_err(not_found)?)),
                    BlobKind::Config => ok(s.find_config(&id).map_err(not_found)?),
                })
                .await
        }
        Request::SecretCreate { kind, spec } => create_blob(m, kind, spec).await,
        Request::SecretUpdate {
            kind,
            id,
            version,
            spec,
        } => update_blob(m, kind, &id, version, spec).await,
        Request::SecretRemove { kind, id } => {
            let (object_kind, full) = m
                .store
                .read(|s| match kind {
                    BlobKind::Secret => s
                        .find_secret(&id)
                        .map(|x| (ObjectKind::Secret, x.id().to_string())),
                    BlobKind::Config => s
                        .find_config(&id)
                        .map(|x| (ObjectKind::Config, x.id().to_string())),
                })
                .await
                .map_err(|e| blob_error(kind, &id, e))?;
            // The store refuses it while a service references it (400, swarmkit's words).
            m.propose(vec![StoreAction::Remove(object_kind, full)])
                .await?;
            Ok(Reply::Empty(204))
        }
        Request::Network(req) => super::network::handle(m, req).await,
        Request::Ping
        | Request::Events { .. }
        | Request::Version
        | Request::Info
        | Request::ImageLoad { .. }
        | Request::ImageList { .. }
        | Request::ImageCreate { .. }
        | Request::ImageInspect { .. }
        | Request::ImageTag { .. }
        | Request::ImagePush { .. }
        | Request::ImageRemove { .. }
        | Request::Distribution { .. }
        | Request::SwarmBackup
        | Request::ContainerList { .. }
        | Request::ContainerInspect { .. }
        | Request::ContainerLogs { .. }
        | Request::Volume(_)
        | Request::ContainerTop { .. }
        | Request::ContainerStats { .. }
        | Request::ExecCreate { .. }
        | Request::ExecStart { .. }
        | Request::ExecResize { .. }
        | Request::ExecInspect { .. } => {
            Err(ApiError::internal("handled by the node"))
        }
    }
}

fn values(f: &Filters, key: &str) -> Vec<String> {
    f.get(key).map(<[String]>::to_vec).unwrap_or_default()
}

/// `None` when a value can match nothing (an unknown role).
fn node_filter(f: &Filters) -> Option<NodeFilter> {
    let roles = values(f, "role");
    let parsed: Vec<NodeRole> = roles
        .iter()
        .map(|r| NodeRole::parse(&r.to_ascii_lowercase()))
        .filter(NodeRole::is_known)
        .collect();
    if !roles.is_empty() && parsed.is_empty() {
        return None;
    }
    Some(NodeFilter {
        ids: values(f, "id"),
        names: values(f, "name"),
        roles: parsed,
        node_labels: values(f, "node.label")
            .iter()
            .map(|l| LabelFilter::parse(l))
            .collect(),
        engine_labels: values(f, "label")
            .iter()
            .map(|l| LabelFilter::parse(l))
            .collect(),
    })
}

/// `None` when a value can match nothing (an unknown mode).
fn service_filter(f: &Filters) -> Option<ServiceFilter> {
    let modes = values(f, "mode");
    let parsed: Vec<ModeKind> = modes
        .iter()
        .filter_map(|m| match m.to_ascii_lowercase().as_str() {
            "replicated" => Some(ModeKind::Replicated),
            "global" => Some(ModeKind::Global),
            "replicated-job" => Some(ModeKind::ReplicatedJob),
            "global-job" => Some(ModeKind::GlobalJob),
            _ => None,
        })
        .collect();
    if !modes.is_empty() && parsed.is_empty() {
        return None;
    }
    Some(ServiceFilter {
        ids: values(f, "id"),
        names: values(f, "name"),
        labels: values(f, "label")
            .iter()
            .map(|l| LabelFilter::parse(l))
            .collect(),
        modes: parsed,
    })
}

/// `GET /services?status=true`: running and desired task counts.
fn with_status(s: &CoreStore, svc: &Service, status: bool) -> Service {
    let mut out = svc.clone();
    if !status {
        return out;
    }
    let tasks: Vec<&Task> = s.tasks_of_service(svc.id()).collect();
    let running = tasks
        .iter()
        .filter(|t| t.status.state == TaskState::Running && t.desired_state == TaskState::Running)
        .count() as u64;
    let desired = match svc.spec.mode.kind_or_default() {
        Some(ModeKind::Replicated) => svc.spec.mode.replicas().unwrap_or(0),
        Some(ModeKind::Global) => s
            .nodes()
            .filter(|n| n.status.state == Some(NodeState::Ready))
            .count() as u64,
        _ => 0,
    };
    let completed = match svc.spec.mode.kind_or_default() {
        Some(k) if k.is_job() => tasks
            .iter()
            .filter(|t| t.status.state == TaskState::Complete)
            .count() as u64,
        _ => 0,
    };
    out.service_status = Some(ServiceStatus {
        running_tasks: running,
        desired_tasks: desired,
        completed_tasks: completed,
    });
    out
}

/// `GET /tasks`: the core's filter for what it indexes (IDs, services, nodes, desired
/// states), then what needs the service (its labels, task names, `_up-to-date`).
fn list_tasks(s: &CoreStore, f: &Filters) -> Vec<Task> {
    let mut tf = TaskFilter {
        ids: values(f, "id"),
        ..TaskFilter::default()
    };
    if let Some(keys) = f.get("service") {
        tf.service_ids = keys
            .iter()
            .filter_map(|k| s.find_service(k).ok().map(|x| x.id().to_string()))
            .collect();
        if tf.service_ids.is_empty() {
            return Vec::new();
        }
    }
    if let Some(keys) = f.get("node") {
        tf.node_ids = keys
            .iter()
            .map(|k| s.find_node(k).map_or(k.clone(), |n| n.id().to_string()))
            .collect();
    }
    if let Some(states) = f.get("desired-state") {
        tf.desired_states = states.iter().filter_map(|v| TaskState::parse(v)).collect();
        if tf.desired_states.is_empty() {
            return Vec::new();
        }
    }
    let up_to_date = f.bool("_up-to-date") == Some(true);
    s.list_tasks(&tf)
        .into_iter()
        .filter(|t| {
            let svc = s.service(&t.service_id);
            f.matches("label", |v| {
                svc.is_some_and(|x| label_matches(&x.spec.labels, v))
            }) && f.matches("name", |v| {
                svc.is_some_and(|x| format!("{}.{}", x.name(), t.slot).starts_with(v))
            }) && (!up_to_date || svc.is_some_and(|x| !is_dirty(x, t)))
        })
        .cloned()
        .collect()
}

/// A secret as the API shows it: never its data (swarmkit clears `Spec.Data`).
fn without_data(s: &Secret) -> Secret {
    let mut s = s.clone();
    s.spec.data.clear();
    s
}

/// The daemon's lookup errors for secrets and configs (moby's `getSecret`): `secret x
/// not found` (404), `secret x is ambiguous (2 matches found)` (400).
fn blob_error(kind: BlobKind, input: &str, e: swarm_core::Error) -> ApiError {
    if e.is_not_found() {
        ApiError::NotFound(format!("{} {input} not found", kind.as_str()))
    } else {
        ApiError::invalid(e)
    }
}

/// `POST /secrets/create`, `POST /configs/create`: validated, then the store refuses a
/// taken name when the entry is applied (`secret db already exists`, 409).
async fn create_blob(m: &Arc<Manager>, kind: BlobKind, spec: Value) -> R {
    let id = crate::ids::new_id();
    let (name, object) = match kind {
        BlobKind::Secret => {
            let spec: SecretSpec = decode("secret spec", spec)?;
            validate_secret_spec(&spec)?;
            let name = spec.name.clone();
            let o = Secret {
                meta: Meta::with_id(id.clone()),
                spec,
            };
            (name, Object::Secret(Box::new(o)))
        }
        BlobKind::Config => {
            let spec: ConfigSpec = decode("config spec", spec)?;
            validate_config_spec(&spec)?;
            let name = spec.name.clone();
            let o = Config {
                meta: Meta::with_id(id.clone()),
                spec,
            };
            (name, Object::Config(Box::new(o)))
        }
    };
    m.propose(vec![StoreAction::Create(object)])
        .await
        .map_err(|e| match e {
            ApiError::Conflict(_) => ApiError::Conflict(format!(
                "rpc error: code = AlreadyExists desc = {} {name} already exists",
                kind.as_str()
            )),
            e => e,
        })?;
    Ok(Reply::Json(201, json!({ "ID": id })))
}

/// `POST /secrets/{id}/update`, `POST /configs/{id}/update`: the stored object with the
/// new labels (anything else changed is refused); the version check is the store's.
async fn update_blob(m: &Arc<Manager>, kind: BlobKind, id: &str, version: u64, spec: Value) -> R {
    let not_found = |e| blob_error(kind, id, e);
    let object = m
        .store
        .read(|s| -> Result<Object, ApiError> {
            Ok(match kind {
                BlobKind::Secret => {
                    let spec: SecretSpec = decode("secret spec", spec)?;
                    let mut o = update_secret(s.find_secret(id).map_err(not_found)?, spec)?;
                    o.meta.version = Version::new(version);
                    Object::Secret(Box::new(o))
                }
                BlobKind::Config => {
                    let spec: ConfigSpec = decode("config spec", spec)?;
                    let mut o = update_config(s.find_config(id).map_err(not_found)?, spec)?;
                    o.meta.version = Version::new(version);
                    Object::Config(Box::new(o))
                }
            })
        })
        .await?;
    m.propose(vec![StoreAction::Update(object)]).await?;
    Ok(Reply::Empty(200))
}

/// `SpecVersion` for a spec written on top of version `base`: larger than any value
/// given before (each was at most the index of the write that set it, which is at most
/// `base`), so tasks made from an older spec never carry it.
fn next_spec_version(base: u64) -> Option<Version> {
    Some(Version::new(base + 1))
}

async fn create_service(m: &Arc<Manager>, spec: Value) -> R {
    if !spec.is_object() {
        return Err(ApiError::invalid("invalid service spec: not an object"));
    }
    let mut spec: ServiceSpec = decode("service spec", spec)?;
    let id = crate::ids::new_id();
    spec.fill_defaults();
    if spec.name.is_empty() {
        spec.name = m.store.read(|s| unused_service_name(s, &id)).await;
    }
    validate_service_spec(&spec)?;
    m.store
        .read(|s| super::network::resolve_service_networks(s, &mut spec))
        .await?;
    // For the error before proposing; the store checks again when the entry is
    // applied, so two creates racing for one port cannot both win.
    m.store
        .read(|s| swarm_core::store::check_port_conflicts(s, &spec, None))
        .await?;
    let base = m.store.read(|s| s.applied_index()).await;
    let service = Service {
        meta: Meta::with_id(id.clone()),
        endpoint: Endpoint {
            spec: spec.endpoint_spec.clone().unwrap_or_default(),
            ..Endpoint::default()
        },
        spec,
        spec_version: next_spec_version(base),
        ..Service::default()
    };
    // The store refuses a taken name (409) when the entry is applied: no check-then-write
    // race between two creates.
    m.propose(vec![StoreAction::Create(Object::Service(Box::new(
        service,
    )))])
    .await?;
    Ok(Reply::Json(201, json!({ "ID": id })))
}

/// A Docker-style random name (`keen_morse`) that no service has, seeded from the new
/// service's random ID; after a few taken ones, the name with the ID's first digits.
fn unused_service_name(s: &CoreStore, id: &str) -> String {
    let seed = id
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(131).wrapping_add(b as u64));
    (0..8u64)
        .map(|i| swarm_core::names::random_name(seed.wrapping_add(i.wrapping_mul(0x9e37_79b9))))
        .find(|n| s.find_service(n).is_err())
        .unwrap_or_else(|| format!("{}_{}", swarm_core::names::random_name(seed), &id[..4]))
}

/// `POST /services/{id}/update[?rollback=previous]`. As swarmkit: the old spec becomes
/// `PreviousSpec` and `UpdateStatus` is reset (a paused update resumes with the new
/// spec); a rollback swaps the two specs and starts `rollback_started`. Every spec
/// change gets a new `SpecVersion`. The version check is the store's.
async fn update_service(
    m: &Arc<Manager>,
    key: &str,
    version: u64,
    rollback: bool,
    spec: Value,
) -> R {
    let current = m.store.read(|s| s.find_service(key).cloned()).await?;
    let mut s = current.clone();
    let now = Utc::now();
    if rollback {
        let previous = s.previous_spec.take().ok_or_else(|| {
            ApiError::invalid(format!(
                "rpc error: code = FailedPrecondition desc = service {} does not have a previous spec",
                s.id()
            ))
        })?;
        s.previous_spec = Some(std::mem::replace(&mut s.spec, previous));
        s.update_status = Some(UpdateStatus {
            state: Some(UpdateState::RollbackStarted),
            started_at: Some(now),
            completed_at: None,
            message: "manually requested rollback".into(),
        });
    } else {
        let mut spec: ServiceSpec = decode("service spec", spec)?;
        spec.fill_defaults();
        validate_service_spec(&spec)?;
        m.store
            .read(|s| super::network::resolve_service_networks(s, &mut spec))
            .await?;
        validate_service_update(&current, &spec)?;
        if spec.endpoint_spec != current.spec.endpoint_spec {
            m.store
                .read(|st| swarm_core::store::check_port_conflicts(st, &spec, Some(current.id())))
                .await?;
        }
        s.previous_spec = Some(std::mem::replace(&mut s.spec, spec));
        s.update_status = None;
    }
    if rollback || s.spec != current.spec {
        s.spec_version = next_spec_version(current.meta.version.index);
    }
    if let Some(e) = &s.spec.endpoint_spec {
        s.endpoint.spec = e.clone();
    }
    s.meta.version = Version::new(version);
    m.propose(vec![StoreAction::Update(Object::Service(Box::new(s)))])
        .await?;
    Ok(Reply::Json(200, json!({ "Warnings": null })))
}

fn log_subscription(
    opts: &LogsOptions,
    service_id: String,
    task_ids: Vec<String>,
) -> LogSubscription {
    LogSubscription {
        id: String::new(),
        task_ids,
        follow: opts.follow,
        tail: opts
            .tail
            .map_or(-1, |t| i64::try_from(t).unwrap_or(i64::MAX)),
        since_nanos: opts.since.unwrap_or(0),
        service_id,
    }
}

/// The leader's log batches for `sub`: its own broker's, or through `SubscribeLogs`.
async fn open_logs(
    m: &Arc<Manager>,
    sub: LogSubscription,
) -> Result<futures::stream::BoxStream<'static, LogBatch>, String> {
    if m.store.is_leader() {
        let rx = super::logs::subscribe(m, sub).await;
        return Ok(tokio_stream::wrappers::ReceiverStream::new(rx).boxed());
    }
    let leader = m.store.leader_addr().ok_or_else(|| {
        ApiError::from(swarm_raft::ProposeError::NoLeader).body()["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    })?;
    let channel = swarm_identity::connect(&leader, m.tls.client())
        .await
        .map_err(|e| e.to_string())?;
    let mut client = DispatcherClient::new(channel);
    let stream = client
        .subscribe_logs(sub)
        .await
        .map_err(|st| st.message().to_string())?
        .into_inner();
    // The client (and its connection) lives as long as the stream is read: dropped
    // early, the connection could go with the stream's last frames.
    Ok(stream
        .take_while(move |b| {
            let _connection = &client;
            futures::future::ready(b.is_ok())
        })
        .filter_map(|b| futures::future::ready(b.ok()))
        .boxed())
}

/// Docker's service log stream, from every node that ran the tasks (`manager::logs`):
/// each line multiplexed, with the `details` prefix the CLI turns into
/// `web.1.xyz@node |`. What could not be read ends the stream as Docker's daemon ends it:
/// a system-error frame (`error from daemon in stream: Error grabbing logs: ...`).
fn log_stream(
    m: &Arc<Manager>,
    sub: LogSubscription,
    opts: LogsOptions,
) -> futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(64);
    let m = m.clone();
    tokio::spawn(async move {
        let mut batches = match open_logs(&m, sub).await {
            Ok(b) => b,
            Err(e) => {
                let frame = mux_frame(3, format!("Error grabbing logs: {e}\n").as_bytes());
                let _ = tx.send(Ok(frame)).await;
                return;
            }
        };
        // Each task's details prefix, looked up once.
        let mut prefixes: HashMap<String, String> = HashMap::new();
        let mut warnings = Vec::new();
        while let Some(batch) = batches.next().await {
            if !batch.warning.is_empty() {
                warnings.push(batch.warning);
            }
            for l in batch.lines {
                let wanted = match l.stream {
                    2 => opts.stderr,
                    _ => opts.stdout,
                };
                if !wanted {
                    continue;
                }
                if !prefixes.contains_key(&l.task_id) {
                    let id = l.task_id.clone();
                    let prefix = m
                        .store
                        .read(|s| {
                            s.task(&id).map(|t| {
                                format!(
                                    "com.docker.swarm.node.id={},com.docker.swarm.service.id={},com.docker.swarm.task.id={}",
                                    t.node_id, t.service_id, id
                                )
                            })
                        })
                        .await
                        .unwrap_or_else(|| format!("com.docker.swarm.task.id={id}"));
                    prefixes.insert(l.task_id.clone(), prefix);
                }
                let mut line = Vec::new();
                if opts.timestamps {
                    let time = chrono::DateTime::from_timestamp_nanos(l.time_nanos);
                    line.extend_from_slice(
                        time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
                            .as_bytes(),
                    );
                    line.push(b' ');
                }
                if opts.details {
                    line.extend_from_slice(prefixes[&l.task_id].as_bytes());
                    line.push(b' ');
                }
                line.extend_from_slice(&l.line);
                if tx.send(Ok(mux_frame(l.stream as u8, &line))).await.is_err() {
                    return;
                }
            }
        }
        if !warnings.is_empty() {
            let text = format!("Error grabbing logs: {}\n", warnings.join(", "));
            let _ = tx.send(Ok(mux_frame(3, text.as_bytes()))).await;
        }
    });
    tokio_stream_from(rx)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
) -> futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}
