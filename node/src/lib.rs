//! swarm-node: `swarmd`, the daemon on every machine of a swarm.
//!
//! ```text
//!   unix socket ──HTTP──▶ api (parse into api::Request) ──▶ manager::control (handlers)
//!                                                               │ propose
//!                                                               ▼
//!                           manager::store (Raft state machine) ─▶ leader loops
//!                                                               │ assignments
//!                                                               ▼
//!   runtime (containers) ◀── agent::controller (one per task) ◀── agent (this node)
//!                                │ task status reports ─────────▶ dispatcher
//! ```

#![forbid(unsafe_code)]

pub mod addr;
pub mod agent;
pub mod api;
pub mod certs;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod error;
pub mod events;
pub mod ids;
pub mod manager;
pub mod metrics;
pub mod web;
pub mod wire;
