//! `swarm swarm init` (or `swarm init`) and `swarm info`: the cluster itself.

pub mod backup;
pub mod ca;
pub mod info;
pub mod init;
pub mod join;
pub mod unlock;
pub mod update;

use anyhow::Result;
use clap::Subcommand;

use crate::client::Client;

/// `swarm swarm ...`, and the same commands at the top level (`swarm init`).
#[derive(Debug, Subcommand)]
pub enum SwarmCommand {
    /// Display and rotate the root CA
    Ca(ca::CaArgs),
    /// Initialize a swarm
    Init(init::InitArgs),
    /// Join a swarm as a node and/or manager
    Join(join::JoinArgs),
    /// Manage join tokens
    #[command(name = "join-token")]
    JoinToken(join::JoinTokenArgs),
    /// Leave the swarm
    Leave(join::LeaveArgs),
    /// Unlock swarm
    Unlock(unlock::UnlockArgs),
    /// Manage the unlock key
    #[command(name = "unlock-key")]
    UnlockKey(unlock::UnlockKeyArgs),
    /// Update the swarm
    Update(update::UpdateArgs),
}

/// `swarm system ...`: `info`, as `docker system info`.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Display system-wide information
    Info(info::InfoArgs),
}

pub async fn run(client: &Client, c: SwarmCommand) -> Result<()> {
    match c {
        SwarmCommand::Ca(a) => ca::run(client, a).await,
        SwarmCommand::Init(a) => init::run(client, a).await,
        SwarmCommand::Join(a) => join::join(client, a).await,
        SwarmCommand::JoinToken(a) => join::join_token(client, a).await,
        SwarmCommand::Leave(a) => join::leave(client, a).await,
        SwarmCommand::Unlock(a) => unlock::unlock(client, a).await,
        SwarmCommand::UnlockKey(a) => unlock::unlock_key_cmd(client, a).await,
        SwarmCommand::Update(a) => update::run(client, a).await,
    }
}
