//! The agent half of a node: takes the full set of tasks assigned to this node, runs one
//! [`controller`] per task over the container runtime, and reports their status.
//!
//! ```text
//!  dispatcher ──assign(full set)──▶ Agent ──spawn / desired state──▶ controller (per task)
//!                                     ▲                                   │
//!                                     └────── StatusReport (channel) ◀────┘
//! ```
//!
//! Level-triggered: every `assign` carries the whole set, so a missed message is
//! repaired by the next one. On start the agent lists the runtime's containers; the
//! first set decides their fate: a task still assigned adopts its container (running
//! ones are not restarted), the others are removed.

pub mod controller;
pub mod dns;
pub mod logs;
pub mod netmap;
pub mod network;
pub mod session;
pub mod spec;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use swarm_runtime::container::{ContainerRuntime, ContainerState};
use swarm_runtime::image::{ImageStore, RegistryOptions};
use tokio::sync::{mpsc, watch};

use self::controller::Ctx;
pub use self::spec::TaskIdentity;
use crate::error::Result;

/// What the manager wants of a task on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Desired {
    Running,
    Shutdown,
    Remove,
}

/// One task assigned to this node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub who: TaskIdentity,
    pub spec: std::sync::Arc<swarm_core::model::TaskSpec>,
    pub desired: Desired,
    /// The secrets and configs the task references.
    #[serde(default)]
    pub data: TaskData,
    /// The task's interfaces on overlay networks, in attachment order (eth0, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<netmap::TaskAttachment>,
}

/// The data of the secrets and configs a task references, by ID.
/// The dispatcher sends it with that task's assignment only, so a node gets only what
/// its tasks were granted; the agent keeps it in memory and hands it to the runtime,
/// which puts it on a tmpfs. `Debug` shows the IDs, never the data.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskData {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, Vec<u8>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for TaskData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskData")
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("configs", &self.configs.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The task states an agent reports (Docker's names, lowercase on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportedState {
    Accepted,
    Preparing,
    Ready,
    Starting,
    Running,
    Complete,
    Shutdown,
    Failed,
    Rejected,
}

impl ReportedState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportedState::Accepted => "accepted",
            ReportedState::Preparing => "preparing",
            ReportedState::Ready => "ready",
            ReportedState::Starting => "starting",
            ReportedState::Running => "running",
            ReportedState::Complete => "complete",
            ReportedState::Shutdown => "shutdown",
            ReportedState::Failed => "failed",
            ReportedState::Rejected => "rejected",
        }
    }
}

/// A task status update, as the dispatcher receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub task_id: String,
    pub state: ReportedState,
    pub message: String,
    pub err: Option<String>,
    pub exit_code: Option<i32>,
    /// The container's first process on the host (RUNNING).
    pub pid: Option<i32>,
    pub timestamp: DateTime<Utc>,
    /// A task that ended: its container's last lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<swarm_core::model::TailLine>,
}

struct Handle {
    desired: watch::Sender<Desired>,
    join: tokio::task::JoinHandle<()>,
    /// What the task runs (`docker ps` on the node shows its image and command).
    assignment: Assignment,
}

pub struct Agent {
    ctx: Arc<Ctx>,
    tasks: Mutex<HashMap<String, Handle>>,
    /// Containers found at start, until the first assignment set claims them.
    found: Mutex<Option<HashMap<String, ContainerState>>>,
}

impl Agent {
    /// List the runtime's containers for adoption; nothing runs or stops until the first
    /// [`Agent::assign`].
    pub async fn start(
        rt: Arc<dyn ContainerRuntime>,
        images: Arc<ImageStore>,
        registry: RegistryOptions,
        reports: mpsc::UnboundedSender<StatusReport>,
        net: Arc<network::NetworkManager>,
    ) -> Result<Agent> {
        let found = rt
            .list()
            .await?
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect::<HashMap<_, _>>();
        tracing::info!(containers = found.len(), "agent started");
        Ok(Agent {
            ctx: Arc::new(Ctx {
                rt,
                images,
                registry,
                reports,
                pulls: Mutex::default(),
                net,
                events: Arc::default(),
            }),
            tasks: Mutex::new(HashMap::new()),
            found: Mutex::new(Some(found)),
        })
    }

    /// This node's container events.
    pub fn events(&self) -> &Arc<crate::events::Feed> {
        &self.ctx.events
    }

    /// The whole set of tasks assigned to this node now.
    pub fn assign(&self, set: Vec<Assignment>) {
        let mut tasks = self.tasks.lock().expect("agent lock");
        let mut found = self.found.lock().expect("agent lock").take();
        tasks.retain(|_, h| !h.join.is_finished());
        let wanted: std::collections::HashSet<&str> =
            set.iter().map(|a| a.who.task_id.as_str()).collect();
        for (id, h) in tasks.iter() {
            if !wanted.contains(id.as_str()) {
                h.desired.send_if_modified(|d| replace(d, Desired::Remove));
            }
        }
        for a in &set {
            let id = &a.who.task_id;
            if let Some(h) = tasks.get(id) {
                h.desired.send_if_modified(|d| replace(d, a.desired));
                continue;
            }
            let adopted = found.as_mut().and_then(|f| f.remove(id));
            if adopted.is_none() && a.desired == Desired::Remove {
                // Nothing here to remove, but the manager deletes a task only once it
                // stopped: one it assigned that never started here (its service removed
                // before this agent saw it) would stay ASSIGNED for ever. A late or
                // backward report (the task already ended) is dropped by the store.
                self.ctx
                    .report(id, ReportedState::Shutdown, "shutdown", None);
                continue;
            }
            let (tx, rx) = watch::channel(a.desired);
            let join = tokio::spawn(controller::run(self.ctx.clone(), a.clone(), rx, adopted));
            tasks.insert(
                id.clone(),
                Handle {
                    desired: tx,
                    join,
                    assignment: a.clone(),
                },
            );
        }
        // The first set: task namespaces that no assigned task or found container
        // claims are leftovers of a crash.
        if let Some(f) = &found {
            let keep: std::collections::BTreeSet<String> = set
                .iter()
                .map(|a| a.who.task_id.clone())
                .chain(f.keys().cloned())
                .collect();
            let net = self.ctx.net.clone();
            tokio::spawn(async move { net.remove_strays(keep).await });
        }
        // Containers of tasks that are not ours any more.
        for (id, _) in found.into_iter().flatten() {
            let ctx = self.ctx.clone();
            tokio::spawn(async move { controller::remove_orphan(&ctx, &id).await });
        }
    }

    /// The dispatcher's view of this node's networks (before the assignments that use
    /// them).
    pub fn set_networks(&self, nn: netmap::NodeNetworks) {
        self.ctx.net.set_networks(nn);
    }

    /// Tasks with a live controller (for tests and `/info`).
    pub fn running_controllers(&self) -> usize {
        let tasks = self.tasks.lock().expect("agent lock");
        tasks.values().filter(|h| !h.join.is_finished()).count()
    }

    /// The assignment of a task this agent runs or ran (until its container goes).
    pub fn assignment(&self, task_id: &str) -> Option<Assignment> {
        let tasks = self.tasks.lock().expect("agent lock");
        tasks.get(task_id).map(|h| h.assignment.clone())
    }

    pub fn runtime(&self) -> &Arc<dyn ContainerRuntime> {
        &self.ctx.rt
    }
}

/// Desired states only move forward (RUNNING -> SHUTDOWN -> REMOVE).
fn replace(d: &mut Desired, new: Desired) -> bool {
    if new > *d {
        *d = new;
        true
    } else {
        false
    }
}
