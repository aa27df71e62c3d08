//! The read-only view the orchestrators and the scheduler decide from. The store
//! implements it; tests use a small in-memory `testkit::MemView`.

use crate::model::{Node, Service, Swarm, Task};

/// What reconcile and schedule may read. Iteration order does not matter: every
/// caller sorts what it needs, so plans do not depend on a table's order.
pub trait ClusterView {
    fn service(&self, id: &str) -> Option<&Service>;
    /// Every task whose `ServiceID` is `service_id`, history included.
    fn tasks_of_service(&self, service_id: &str) -> Vec<&Task>;
    fn node(&self, id: &str) -> Option<&Node>;
    fn nodes(&self) -> Vec<&Node>;
    /// Every task in the store.
    fn tasks(&self) -> Vec<&Task>;
    /// The cluster object (for `TaskHistoryRetentionLimit`), if the swarm exists.
    fn swarm(&self) -> Option<&Swarm>;
}

impl ClusterView for crate::store::Store {
    fn service(&self, id: &str) -> Option<&Service> {
        crate::store::Store::service(self, id)
    }
    fn tasks_of_service(&self, service_id: &str) -> Vec<&Task> {
        crate::store::Store::tasks_of_service(self, service_id).collect()
    }
    fn node(&self, id: &str) -> Option<&Node> {
        crate::store::Store::node(self, id)
    }
    fn nodes(&self) -> Vec<&Node> {
        crate::store::Store::nodes(self).collect()
    }
    fn tasks(&self) -> Vec<&Task> {
        crate::store::Store::tasks(self).collect()
    }
    fn swarm(&self) -> Option<&Swarm> {
        self.cluster()
    }
}
