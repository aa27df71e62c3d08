//! `swarm init` and `swarm info`: the cluster itself.

pub mod ca;
pub mod info;
pub mod init;
pub mod join;
pub mod unlock;
pub mod update;
