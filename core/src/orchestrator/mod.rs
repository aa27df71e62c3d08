//! Orchestrators: turn what the user asked for (a service's spec) into tasks, one per
//! slot, and keep them there — restarting ended tasks, rolling updates forward and back.
//!
//! ```text
//!   ClusterView (services, tasks, nodes, swarm)   now
//!            |                                     |
//!            v                                     v
//!   replicated::reconcile(view, service_id, now) -----> Plan { actions, requeue_after }
//!     1. restart   ended tasks / tasks on Down or drained nodes   (restart.rs)
//!     2. start     delayed replacements whose delay has passed     (restart.rs)
//!     3. scale     fill free slots 1..=replicas, remove the highest (replicated.rs)
//!     4. update    replace out-of-date slots, batch by batch        (update.rs)
//!     5. reap      task history beyond the retention limit          (history.rs)
//! ```
//!
//! Every function here is pure: the same view and `now` give the same plan. Nothing
//! sleeps; a timer (restart delay, update delay, monitor window) is a `requeue_after`
//! in the plan, and the caller runs `reconcile` again then, or on any change to the
//! service, its tasks or the nodes, whichever comes first.

pub mod history;
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

pub use plan::{Plan, StoreAction};
pub use replicated::reconcile;
pub use view::ClusterView;
