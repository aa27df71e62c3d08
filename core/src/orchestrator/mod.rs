//! Orchestrators: turn what the user asked for (a service's spec) into tasks, one per
//! slot, and keep them there — restarting ended tasks, rolling updates forward and back.
//!
//! ```text
//!   ClusterView (services, tasks, nodes, swarm)   now
//!            |                                     |
//!            v                                     v
//!   reconcile(view, service_id, now) ──by mode──> Plan { actions, requeue_after }
//!     service gone     ──> every task desired REMOVE, stopped ones deleted
//!     replicated       ──> replicated.rs: slots 1..=replicas
//!     global           ──> global.rs: one slot per eligible node
//!     replicated-job,  ──> job.rs: run to completion, an iteration per spec change
//!     global-job
//!   each one, over its slots (slot.rs):
//!     1. restart   ended tasks / tasks on Down or drained nodes   (restart.rs)
//!     2. fill      free slots (scale, new nodes, job progress)
//!     3. update    replace out-of-date slots, batch by batch        (update.rs; not jobs)
//!     4. start     delayed replacements whose delay has passed     (restart.rs)
//!     5. reap      task history beyond the retention limit          (history.rs)
//! ```
//!
//! Every function here is pure: the same view and `now` give the same plan. Nothing
//! sleeps; a timer (restart delay, update delay, monitor window) is a `requeue_after`
//! in the plan, and the caller runs `reconcile` again then, or on any change to the
//! service, its tasks or the nodes, whichever comes first.

pub mod eligible;
pub mod global;
pub mod history;
pub mod job;
pub mod plan;
pub mod replicated;
pub mod restart;
pub mod slot;
pub mod task;
pub mod update;
pub mod view;

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_global;
#[cfg(test)]
mod tests_job;

use chrono::{DateTime, Utc};

use crate::model::ModeKind;
pub use plan::{Plan, StoreAction};
pub use view::ClusterView;

/// Decides the writes that bring `service_id`'s tasks to what its spec asks for at
/// `now`, whatever its mode. A spec with several modes (refused by the API) gives an
/// empty plan.
pub fn reconcile(view: &dyn ClusterView, service_id: &str, now: DateTime<Utc>) -> Plan {
    let Some(service) = view.service(service_id) else {
        return replicated::remove_service_tasks(view, service_id);
    };
    match service.spec.mode.kind_or_default() {
        Some(ModeKind::Replicated) => replicated::reconcile(view, service, now),
        Some(ModeKind::Global) => global::reconcile(view, service, now),
        Some(ModeKind::ReplicatedJob) | Some(ModeKind::GlobalJob) => {
            job::reconcile(view, service, now)
        }
        None => Plan::default(),
    }
}
