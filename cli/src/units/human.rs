//! go-units' `HumanDuration` (`swarm_core::human`), which `service ps` prints lowercased
//! as `Running 5 seconds ago`, and `docker service inspect --pretty` as `6 seconds ago`.

pub use swarm_core::human::{human_duration, since};
