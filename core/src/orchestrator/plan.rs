//! A plan: the store writes a reconcile decided, and when to look again.

use std::time::Duration;

pub use crate::store::StoreAction;

/// What `reconcile` decided: writes, in a deterministic order (the service first, then
/// desired-state changes by task ID, creations in the order made, removals by ID),
/// proposed as one Raft entry; and the time after
/// which the same view would give a different plan (a restart delay ending, an update
/// batch's delay, a monitor window closing). `None`: nothing to wait for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub actions: Vec<StoreAction>,
    pub requeue_after: Option<Duration>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.requeue_after.is_none()
    }

    /// Keeps the earliest wake-up.
    pub fn requeue(&mut self, after: Duration) {
        self.requeue_after = Some(match self.requeue_after {
            Some(d) => d.min(after),
            None => after,
        });
    }
}
