//! The leader's loops.
//!
//! ```text
//!   applied index changed ─┐                  per service
//!   requeue_after elapsed ─┴─▶ core::orchestrator::reconcile ─▶ propose (one entry each)
//!                              core::allocator::allocate ─▶ propose
//!                              core::scheduler::schedule + decisions_to_actions ─▶ propose
//!                                                  (entries of at most ENTRY_ACTIONS)
//! ```
//!
//! Entries go to Raft `IN_FLIGHT` at a time (`store::propose_each`).
//!
//! Assignments reach agents, and their reports come back, through the dispatcher
//! ([`super::dispatcher`]), the manager's own agent included.
//!
//! Level-triggered: each pass reads the whole store, so a restarted manager needs no
//! memory of what it did before. Time is read once per pass and handed to the core; the
//! only timer is the earliest `requeue_after` the plans asked for.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use swarm_core::model::{ContainerStatus, Node, NodeRole, NodeState, TaskStatus};
use swarm_core::orchestrator::reconcile;
use swarm_core::scheduler::{decisions_to_actions, schedule};
use swarm_core::store::{Object, Store as CoreStore, StoreAction};
use swarm_core::TaskState;

use super::store::{entries_of, propose_each};
use super::Manager;
use crate::agent::{Assignment, Desired, ReportedState, StatusReport, TaskData, TaskIdentity};

/// After a write Raft refused (no leader yet, stopping), look again this much later.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Run the loops until the manager stops (or the process ends).
pub fn spawn(m: Arc<Manager>) {
    until_stopped(&m, leader_loop(m.clone()));
    until_stopped(&m, super::dispatcher::node_status_loop(m.clone()));
    until_stopped(&m, follow_unlock_key(m.clone()));
}

/// Runs `run` until it ends or the manager stops (dropping it, and the manager it holds).
fn until_stopped(m: &Arc<Manager>, run: impl Future<Output = ()> + Send + 'static) {
    let m = m.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = run => {}
            () = m.stopped() => tracing::debug!("manager stopped: its loop ends"),
        }
    });
}

async fn leader_loop(m: Arc<Manager>) {
    let mut applied = m.store.subscribe();
    loop {
        applied.borrow_and_update();
        // Only the leader orchestrates; a follower's store follows the leader's plans.
        let wake = if m.store.is_leader() {
            orchestrate(&m).await
        } else {
            None
        };
        match wake {
            Some(after) => tokio::select! {
                r = applied.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(after) => {}
            },
            None => {
                if applied.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

/// On every manager: its keys on disk follow the swarm's unlock key (sealed under it
/// while autolock is on, plain once it is off, sealed again on rotation).
async fn follow_unlock_key(m: Arc<Manager>) {
    let mut applied = m.store.subscribe();
    loop {
        applied.borrow_and_update();
        let key = m
            .store
            .read(|s| s.cluster().map(|c| c.unlock_key.clone()))
            .await;
        if let Some(key) = key {
            let key = (!key.is_empty())
                .then(|| swarm_identity::UnlockKey::parse(&key))
                .transpose();
            match key.map(|k| m.sealing.set_key(k)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("seal this manager's keys: {e}"),
                Err(e) => tracing::error!("the swarm's unlock key: {e}"),
            }
        }
        if applied.changed().await.is_err() {
            return;
        }
    }
}

/// One pass: finish demotions, reconcile every service (and the tasks of removed ones),
/// then schedule. Returns when to look again if nothing changes before.
async fn orchestrate(m: &Manager) -> Option<Duration> {
    let now = Utc::now();
    let mut wake: Option<Duration> = None;
    let mut earliest = |d: Duration| wake = Some(wake.map_or(d, |w| w.min(d)));
    if let Some(after) = finish_demotions(m).await {
        earliest(after);
    }
    if let Err(e) = finish_root_rotation(m).await {
        tracing::warn!("finish the root CA rotation: {e}");
        earliest(RETRY_AFTER);
    }
    let plans = m
        .store
        .read(|s| {
            service_ids(s)
                .into_iter()
                .map(|id| reconcile(s, &id, now))
                .collect::<Vec<_>>()
        })
        .await;
    // One entry per service: a plan the store refuses (the API changed the service in
    // between) does not hold up the others; the next pass decides again.
    let mut entries = Vec::with_capacity(plans.len());
    for plan in plans {
        if let Some(after) = plan.requeue_after {
            earliest(after);
        }
        entries.push(plan.actions);
    }
    for res in propose_each(entries, |actions| m.propose(actions)).await {
        if let Err(e) = res {
            tracing::warn!("propose the orchestrator's plan: {e}");
            earliest(RETRY_AFTER);
        }
    }
    if let Some(after) = allocate(m).await {
        earliest(after);
    }
    let now = Utc::now();
    let actions = m
        .store
        .read(|s| decisions_to_actions(s, &schedule(s, now), now))
        .await;
    // Assignments are independent: entries of at most ENTRY_ACTIONS.
    for res in propose_each(entries_of(actions), |actions| m.propose(actions)).await {
        if let Err(e) = res {
            tracing::warn!("propose the scheduler's decisions: {e}");
            earliest(RETRY_AFTER);
        }
    }
    wake
}

/// The allocator's pass (docs/network-model.md): networks get subnets and VNIs, services
/// VIPs, NEW tasks their addresses (and PENDING). Runs after the orchestrators' plans are
/// applied and before scheduling; `propose_each` waits for the entries, so the next pass
/// reads a store with them applied (never two passes over one view).
async fn allocate(m: &Manager) -> Option<Duration> {
    let now = Utc::now();
    let allocation = m
        .store
        .read(|s| swarm_core::allocator::allocate(s, now))
        .await;
    for f in &allocation.failures {
        tracing::warn!(kind = ?f.kind, id = %f.id, "allocate: {}", f.error);
    }
    let mut retry = None;
    for res in propose_each(entries_of(allocation.actions), |a| m.propose(a)).await {
        if let Err(e) = res {
            tracing::warn!("propose the allocator's decisions: {e}");
            retry = Some(RETRY_AFTER);
        }
    }
    retry
}

/// Demotions the store asks for that Raft has not finished (swarmkit's role manager): a
/// node whose spec says worker while it still holds a manager's place. Still a voter: it
/// is removed from Raft (this leader too, which steps down once that commits; the next
/// leader finishes). No longer a voter: its manager status is cleared, and its session
/// then gives it the worker role.
async fn finish_demotions(m: &Manager) -> Option<Duration> {
    let pending: Vec<Node> = m
        .store
        .read(|s| {
            s.nodes()
                .filter(|n| n.spec.role == Some(NodeRole::Worker) && n.manager_status.is_some())
                .cloned()
                .collect()
        })
        .await;
    let mut retry = None;
    for mut node in pending {
        let raft_id = super::store::raft_id(&node.meta.id);
        let done = if m.store.voters().contains(&raft_id) {
            tracing::info!(node = %node.meta.id, "demoted manager leaves Raft");
            m.store
                .remove_member(raft_id, false)
                .await
                .map_err(|e| e.to_string())
        } else {
            node.manager_status = None;
            m.propose(vec![StoreAction::Update(Object::Node(Box::new(node)))])
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        if let Err(e) = done {
            tracing::warn!("finish a demotion: {e}");
            retry = Some(RETRY_AFTER);
        }
    }
    retry
}

/// A root rotation is over once every node that is not Down holds a certificate from
/// the new root (the CA records the issuer of each one it issues): the new root becomes
/// the one every node trusts (their sessions say so), its key signs from then on, and
/// the join tokens are made anew for its digest, as swarmkit's CA reconciler does.
async fn finish_root_rotation(m: &Manager) -> Result<(), String> {
    let done = m
        .store
        .read(|s| {
            let issuer = super::dispatcher::rotation_issuer(s)?;
            let waiting = s.nodes().any(|n| {
                n.status.state != Some(NodeState::Down)
                    && n.description.tls_info.cert_issuer_public_key != issuer
            });
            (!waiting).then(|| s.cluster().cloned()).flatten()
        })
        .await;
    let Some(mut swarm) = done else {
        return Ok(());
    };
    let Some(rotation) = swarm.root_rotation.take() else {
        return Ok(());
    };
    let root = swarm_identity::RootCa::from_pem(&rotation.ca_cert, Some(&rotation.ca_key))
        .map_err(|e| e.to_string())?;
    swarm.cluster.tls_info =
        super::ca::tls_info(root.cert_pem(), &root).map_err(|e| e.to_string())?;
    swarm.root_ca_key = rotation.ca_key;
    swarm.cluster.root_rotation_in_progress = false;
    swarm.join_tokens.worker = swarm_identity::JoinToken::generate(&root).to_string();
    swarm.join_tokens.manager = swarm_identity::JoinToken::generate(&root).to_string();
    m.propose(vec![StoreAction::Update(Object::Cluster(Box::new(swarm)))])
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("root CA rotation finished: every node has a certificate from the new root");
    Ok(())
}

/// Services to reconcile: those stored, and those only their tasks still name (removed
/// services, whose tasks must go).
fn service_ids(s: &CoreStore) -> BTreeSet<String> {
    s.services()
        .map(|x| x.id().to_string())
        .chain(s.tasks().map(|t| t.service_id.clone()))
        .filter(|id| !id.is_empty())
        .collect()
}

/// The tasks this node runs, as the agent sees them. A task desired READY (a
/// replacement waiting for its restart delay or for the old task to stop) is not handed
/// over until it is desired RUNNING.
pub(crate) fn assignments(s: &CoreStore, node_id: &str) -> Vec<Assignment> {
    s.tasks_on_node(node_id)
        .filter(|x| x.status.state >= TaskState::Assigned && x.desired_state >= TaskState::Running)
        .map(|x| Assignment {
            who: TaskIdentity {
                task_id: x.id().to_string(),
                service_id: x.service_id.clone(),
                service_name: s
                    .service(&x.service_id)
                    .map(|svc| svc.name().to_string())
                    .unwrap_or_default(),
                node_id: x.node_id.clone(),
                slot: x.slot,
            },
            spec: x.spec.clone(),
            desired: match x.desired_state {
                TaskState::Running => Desired::Running,
                TaskState::Remove => Desired::Remove,
                _ => Desired::Shutdown,
            },
            data: task_data(s, x),
            networks: super::node_networks::task_attachments(x),
        })
        .collect()
}

/// The secrets and configs a task references, only while it should run (a task being
/// stopped or removed needs none).
fn task_data(s: &CoreStore, t: &swarm_core::model::Task) -> TaskData {
    let mut out = TaskData::default();
    let Some(c) = t.spec.container_spec.as_ref() else {
        return out;
    };
    if t.desired_state != TaskState::Running {
        return out;
    }
    for r in &c.secrets {
        if let Some(data) = s.secret(&r.secret_id).and_then(|x| decoded(&x.spec.data)) {
            out.secrets.insert(r.secret_id.clone(), data);
        }
    }
    for r in &c.configs {
        if let Some(data) = s.config(&r.config_id).and_then(|x| decoded(&x.spec.data)) {
            out.configs.insert(r.config_id.clone(), data);
        }
    }
    out
}

/// A secret's or config's data as stored (base64; checked when it was created). Data
/// that does not decode is left out, and the task's node refuses the task for it.
fn decoded(b64: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

fn task_state(r: ReportedState) -> TaskState {
    match r {
        ReportedState::Accepted => TaskState::Accepted,
        ReportedState::Preparing => TaskState::Preparing,
        ReportedState::Ready => TaskState::Ready,
        ReportedState::Starting => TaskState::Starting,
        ReportedState::Running => TaskState::Running,
        ReportedState::Complete => TaskState::Complete,
        ReportedState::Shutdown => TaskState::Shutdown,
        ReportedState::Failed => TaskState::Failed,
        ReportedState::Rejected => TaskState::Rejected,
    }
}

/// The status updates for a batch of reports: one `SetTaskStatus` per report, in order
/// (the store drops any that would move a task backwards, and those of tasks gone). The
/// container's status carries over from earlier reports (the PID stays known until the
/// exit code arrives).
pub(crate) fn status_actions(s: &CoreStore, reports: Vec<StatusReport>) -> Vec<StoreAction> {
    let mut last: BTreeMap<String, Option<ContainerStatus>> = BTreeMap::new();
    let mut actions = Vec::with_capacity(reports.len());
    for r in reports {
        let Some(task) = s.task(&r.task_id) else {
            continue;
        };
        let prev = last
            .entry(r.task_id.clone())
            .or_insert_with(|| task.status.container_status.clone());
        let mut cs = prev.clone().unwrap_or_else(|| ContainerStatus {
            container_id: r.task_id.clone(),
            ..ContainerStatus::default()
        });
        if let Some(pid) = r.pid {
            cs.pid = i64::from(pid);
        }
        if let Some(code) = r.exit_code {
            cs.exit_code = i64::from(code);
            cs.pid = 0;
        }
        let state = task_state(r.state);
        let cs = (state >= TaskState::Starting).then_some(cs);
        *prev = cs.clone();
        actions.push(StoreAction::SetTaskStatus {
            id: r.task_id,
            status: TaskStatus {
                timestamp: r.timestamp,
                state,
                message: r.message,
                err: r.err.unwrap_or_default(),
                container_status: cs,
                port_status: task.status.port_status.clone(),
                // A later status without lines (a shutdown after the exit) keeps them.
                log_tail: if r.log_tail.is_empty() {
                    task.status.log_tail.clone()
                } else {
                    r.log_tail
                },
            },
        });
    }
    actions
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use swarm_core::model::Task;
    use swarm_core::store::Object;

    use super::*;

    fn report(state: ReportedState, pid: Option<i32>, exit: Option<i32>) -> StatusReport {
        StatusReport {
            task_id: "t1".into(),
            state,
            message: state.as_str().into(),
            err: None,
            exit_code: exit,
            pid,
            timestamp: DateTime::<Utc>::default(),
            log_tail: Vec::new(),
        }
    }

    #[test]
    fn an_ended_tasks_last_lines_are_kept_through_later_statuses() {
        let mut s = store_with_task();
        let line = swarm_core::model::TailLine {
            time: DateTime::<Utc>::default(),
            stream: 1,
            line: "bye\n".into(),
        };
        let failed = StatusReport {
            log_tail: vec![line.clone()],
            ..report(ReportedState::Failed, None, Some(3))
        };
        let actions = status_actions(&s, vec![failed]);
        s.apply(&actions, 2, Utc::now()).unwrap();
        assert_eq!(
            s.task("t1").unwrap().status.log_tail,
            std::slice::from_ref(&line)
        );
        // A later status without lines keeps them.
        let actions = status_actions(&s, vec![report(ReportedState::Rejected, None, None)]);
        let StoreAction::SetTaskStatus { status, .. } = &actions[0] else {
            panic!("{actions:?}")
        };
        assert_eq!(status.log_tail, [line]);
    }

    fn store_with_task() -> CoreStore {
        let mut s = CoreStore::new();
        let mut t = Task {
            service_id: "s1".into(),
            node_id: "n1".into(),
            slot: 1,
            desired_state: TaskState::Running,
            ..Task::default()
        };
        t.meta.id = "t1".into();
        t.status.state = TaskState::Assigned;
        s.apply(
            &[StoreAction::Create(Object::Task(Box::new(t)))],
            1,
            Utc::now(),
        )
        .unwrap();
        s
    }

    #[test]
    fn reports_become_forward_only_status_updates_keeping_the_pid() {
        let mut s = store_with_task();
        let actions = status_actions(
            &s,
            vec![
                report(ReportedState::Starting, None, None),
                report(ReportedState::Running, Some(42), None),
                report(ReportedState::Preparing, None, None),
            ],
        );
        assert_eq!(actions.len(), 3);
        s.apply(&actions, 2, Utc::now()).unwrap();
        let t = s.task("t1").unwrap();
        assert_eq!(t.status.state, TaskState::Running, "late report dropped");
        assert_eq!(t.status.container_status.as_ref().unwrap().pid, 42);
        assert_eq!(
            t.status.container_status.as_ref().unwrap().container_id,
            "t1"
        );

        let actions = status_actions(&s, vec![report(ReportedState::Failed, None, Some(137))]);
        s.apply(&actions, 3, Utc::now()).unwrap();
        let cs = s
            .task("t1")
            .unwrap()
            .status
            .container_status
            .clone()
            .unwrap();
        assert_eq!((cs.pid, cs.exit_code), (0, 137));
    }

    #[test]
    fn assignments_skip_tasks_waiting_to_start() {
        let mut s = store_with_task();
        assert_eq!(assignments(&s, "n1").len(), 1);
        assert!(assignments(&s, "n2").is_empty());
        s.apply(
            &[StoreAction::SetTaskDesiredState {
                id: "t1".into(),
                desired_state: TaskState::Remove,
            }],
            2,
            Utc::now(),
        )
        .unwrap();
        assert_eq!(assignments(&s, "n1")[0].desired, Desired::Remove);
    }

    #[test]
    fn only_the_tasks_that_reference_a_secret_carry_its_data() {
        let mut s = CoreStore::new();
        let secret: swarm_core::model::Secret = serde_json::from_value(serde_json::json!({
            "ID": "x1", "Spec": {"Name": "db", "Data": "cHc="}
        }))
        .unwrap();
        let config: swarm_core::model::Config = serde_json::from_value(serde_json::json!({
            "ID": "c1", "Spec": {"Name": "app", "Data": "YQ=="}
        }))
        .unwrap();
        let task = |id: &str, node: &str, refs: bool| {
            let mut spec = serde_json::json!({"ContainerSpec": {"Image": "busybox"}});
            if refs {
                spec["ContainerSpec"]["Secrets"] = serde_json::json!([{"SecretID": "x1",
                    "SecretName": "db", "File": {"Name": "db", "UID": "0", "GID": "0", "Mode": 292}}]);
                spec["ContainerSpec"]["Configs"] = serde_json::json!([{"ConfigID": "c1",
                    "ConfigName": "app", "File": {"Name": "/app", "UID": "0", "GID": "0", "Mode": 292}}]);
            }
            let mut t = Task {
                service_id: "s1".into(),
                node_id: node.into(),
                slot: 1,
                desired_state: TaskState::Running,
                spec: serde_json::from_value(spec).unwrap(),
                ..Task::default()
            };
            t.meta.id = id.into();
            t.status.state = TaskState::Assigned;
            StoreAction::Create(Object::Task(Box::new(t)))
        };
        s.apply(
            &[
                StoreAction::Create(Object::Secret(Box::new(secret))),
                StoreAction::Create(Object::Config(Box::new(config))),
                task("t1", "n1", true),
                task("t2", "n2", false),
            ],
            1,
            Utc::now(),
        )
        .unwrap();
        let a = assignments(&s, "n1");
        assert_eq!(
            a[0].data.secrets.get("x1").map(Vec::as_slice),
            Some(&b"pw"[..])
        );
        assert_eq!(
            a[0].data.configs.get("c1").map(Vec::as_slice),
            Some(&b"a"[..])
        );
        // n2's task references nothing: n2 gets no data.
        assert_eq!(assignments(&s, "n2")[0].data, TaskData::default());
        // A task being shut down needs its data no more.
        s.apply(
            &[StoreAction::SetTaskDesiredState {
                id: "t1".into(),
                desired_state: TaskState::Shutdown,
            }],
            2,
            Utc::now(),
        )
        .unwrap();
        assert_eq!(assignments(&s, "n1")[0].data, TaskData::default());
    }
}
