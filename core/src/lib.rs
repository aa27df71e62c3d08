//! swarm-core: the pure part of swarm. No async runtime, no network, no OS calls: every
//! function here is a function of the store's view and the time it is given.
#![forbid(unsafe_code)]

pub mod allocator;
pub mod error;
pub mod human;
pub mod id;
pub mod model;
pub mod names;
pub mod orchestrator;
pub mod scheduler;
#[cfg(test)]
mod sim;
pub mod state;
pub mod store;
pub mod validate;

pub use error::{Error, ErrorKind, Result};
pub use state::{can_transition, TaskState};
