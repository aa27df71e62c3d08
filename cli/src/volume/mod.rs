//! `swarm volume create|ls|inspect|rm|prune`: the docker CLI's volume commands over
//! `/volumes` (the answering node's local volumes).

pub mod create;
pub mod inspect;
pub mod ls;
pub mod prune;
pub mod rm;

use anyhow::Result;
use clap::Subcommand;

use crate::client::Client;

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create(create::CreateArgs),
    /// Display detailed information on one or more volumes
    Inspect(inspect::InspectArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(ls::LsArgs),
    /// Remove unused local volumes
    Prune(prune::PruneArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(rm::RmArgs),
}

pub async fn run(client: &Client, c: VolumeCommand) -> Result<()> {
    match c {
        VolumeCommand::Create(a) => create::run(client, a).await,
        VolumeCommand::Inspect(a) => inspect::run(client, a).await,
        VolumeCommand::Ls(a) => ls::run(client, a).await,
        VolumeCommand::Prune(a) => prune::run(client, a).await,
        VolumeCommand::Rm(a) => rm::run(client, a).await,
    }
}
