//! The replicated state machine that Raft drives: the one trait a user of this crate implements.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A deterministic state machine replicated by Raft.
///
/// Every manager applies the same commands in the same order, so `apply` must depend only on
/// the state and the command (no clock, no randomness, no I/O).
///
/// A snapshot or a backup clones the state under the lock and serializes the clone
/// outside it, so applies and reads go on meanwhile: `clone` must be cheap (share rows,
/// as `swarm-core`'s store does with `Arc`s), not a deep copy.
pub trait StateMachine: Clone + Send + Sync + 'static {
    /// A log entry's payload (the core's: a batch of store actions).
    type Command: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static;
    /// The result of applying one command, handed back to the proposer.
    type Response: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static;

    /// Applies the committed command at log `index`.
    fn apply(&mut self, index: u64, cmd: &Self::Command) -> Self::Response;

    /// Serializes the whole applied state.
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the whole state with one produced by [`StateMachine::snapshot`].
    fn restore(&mut self, data: &[u8]) -> Result<(), String>;
}
