//! Tasks as the orchestrators see them: making a new one for a slot, telling whether
//! one is out of date with its service, and whether its node can still run it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::slot::SlotKey;
use crate::model::{ModeKind, Node, NodeAvailability, NodeState, Service, Task, TaskStatus};
use crate::state::TaskState;
use crate::store::{publishes_ingress, spec_networks};

/// Docker's `pending task scheduling`: the status a task waits in for a node.
pub const PENDING_MESSAGE: &str = "pending task scheduling";
/// Docker's message for a task just made (NEW, waiting for the allocator).
pub const NEW_MESSAGE: &str = "created";

/// A new task for `slot` of `service`, made from its current task template. A task
/// on networks starts NEW, for the allocator (`crate::allocator`). A
/// replica waits in PENDING for the scheduler to pick a node; a task for a node (global
/// modes) is made PENDING on its node, and the scheduler confirms that it fits there, as
/// swarmkit's global orchestrator and scheduler do. `desired` is
/// RUNNING, or READY for a replacement that must wait (restart delay, stop-first
/// update) before it starts. A job's task carries the job's iteration.
pub fn new_task(
    service: &Service,
    slot: &SlotKey,
    id: String,
    desired: TaskState,
    now: DateTime<Utc>,
) -> Task {
    let (number, node_id) = match slot {
        SlotKey::Replica(n) => (*n, String::new()),
        SlotKey::Node(node) => (0, node.clone()),
    };
    // A task on networks (also `ingress`, when the service publishes a port through
    // the routing mesh) waits in NEW for the allocator's addresses (which moves it to
    // PENDING); one without skips that step.
    let (state, message) =
        if spec_networks(&service.spec).is_empty() && !publishes_ingress(&service.spec) {
            (TaskState::Pending, PENDING_MESSAGE)
        } else {
            (TaskState::New, NEW_MESSAGE)
        };
    let name = match slot {
        SlotKey::Replica(n) => format!("{}.{n}", service.spec.name),
        SlotKey::Node(node) => format!("{}.{node}", service.spec.name),
    };
    let is_job = service
        .spec
        .mode
        .kind_or_default()
        .is_some_and(ModeKind::is_job);
    let mut task = Task {
        name,
        spec: Arc::new(service.spec.task_template.clone()),
        service_id: service.id().to_string(),
        slot: number,
        node_id,
        status: TaskStatus {
            timestamp: now,
            state,
            message: message.to_string(),
            ..TaskStatus::default()
        },
        desired_state: desired,
        spec_version: service.spec_version,
        job_iteration: if is_job {
            service.job_status.as_ref().map(|j| j.job_iteration)
        } else {
            None
        },
        ..Task::default()
    };
    task.meta.id = id;
    task.meta.created_at = now;
    task.meta.updated_at = now;
    task
}

/// A task ID: 25 characters of base 36, as Docker's, derived from what makes the task
/// unique (service and its version, slot, a digest of the service's task IDs, the time, its
/// place in the plan) so
/// that `reconcile` stays a pure function and a replayed plan has the same IDs.
pub fn task_id(
    service_id: &str,
    service_version: u64,
    slot: &SlotKey,
    ids_digest: u128,
    now: DateTime<Utc>,
    seq: usize,
) -> String {
    let mut h = Fnv128::new();
    h.write(service_id.as_bytes());
    h.write(&service_version.to_le_bytes());
    match slot {
        SlotKey::Replica(n) => h.write(&n.to_le_bytes()),
        SlotKey::Node(id) => h.write(id.as_bytes()),
    }
    h.write(&ids_digest.to_le_bytes());
    h.write(&now.timestamp_nanos_opt().unwrap_or_default().to_le_bytes());
    h.write(&(seq as u64).to_le_bytes());
    let mut n = h.finish();
    let mut out = [b'0'; 25];
    for c in out.iter_mut().rev() {
        *c = b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The digest of a service's task IDs that new task IDs derive from (once per reconcile:
/// hashing every ID for every new task made creating N tasks cost N^2).
pub fn ids_digest<'a>(ids: impl IntoIterator<Item = &'a str>) -> u128 {
    let mut h = Fnv128::new();
    for id in ids {
        h.write(id.as_bytes());
        h.write(&[0]);
    }
    h.finish()
}

/// FNV-1a, 128 bits: stable across Rust versions (IDs end up in the Raft log).
struct Fnv128(u128);

impl Fnv128 {
    fn new() -> Self {
        Fnv128(0x6c62272e07bb014262b821756295c58d)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u128::from(*b);
            self.0 = self.0.wrapping_mul(0x0000000001000000000000000000013B);
        }
    }
    fn finish(&self) -> u128 {
        self.0
    }
}

/// Whether a task was made from a different spec than the service's current one (an
/// image change, `--force`, ...). Compared by value: `SpecVersion` only short-cuts the
/// equal case.
pub fn is_dirty(service: &Service, task: &Task) -> bool {
    if task.spec_version.is_some() && task.spec_version == service.spec_version {
        return false;
    }
    *task.spec != service.spec.task_template
}

/// A node that cannot keep its tasks: gone, Down, or drained (swarmkit's `InvalidNode`).
pub fn node_invalid(node: Option<&Node>) -> bool {
    match node {
        None => true,
        Some(n) => {
            n.status.state == Some(NodeState::Down)
                || n.spec.availability == Some(NodeAvailability::Drain)
        }
    }
}

/// A node whose tasks are gone for sure: deleted or Down. A drained node still stops
/// its tasks cleanly, so a replacement waits for that.
pub fn node_lost(node: Option<&Node>) -> bool {
    match node {
        None => true,
        Some(n) => n.status.state == Some(NodeState::Down),
    }
}

/// Desired state RUNNING or earlier (READY: waiting to start): the task holds its slot.
pub fn is_live(task: &Task) -> bool {
    task.desired_state <= TaskState::Running
}

/// Model durations are Go's `time.Duration`, nanoseconds; negative reads as zero.
pub fn nanos(d: i64) -> Duration {
    Duration::from_nanos(d.max(0) as u64)
}

/// `now - then`, zero if `then` is in the future.
pub fn elapsed(now: DateTime<Utc>, then: DateTime<Utc>) -> Duration {
    (now - then).to_std().unwrap_or_default()
}

/// `then + d`.
pub fn add(then: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    then + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Time left until `at`, or `None` if it has come.
pub fn until(now: DateTime<Utc>, at: DateTime<Utc>) -> Option<Duration> {
    (at > now).then(|| (at - now).to_std().unwrap_or_default())
}
