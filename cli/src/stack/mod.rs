//! `swarm stack ...`: compose files deployed as a stack.

// Wired to the commands in the next commits.
#[allow(dead_code)]
pub mod compose;
