//! `swarm network create|ls|inspect|rm|prune`: the docker CLI's network commands over
//! `/networks` (swarm-scoped overlay networks only).

pub mod create;
pub mod inspect;
pub mod ls;
pub mod prune;
pub mod rm;

use anyhow::Result;
use clap::Subcommand;

use crate::client::Client;

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network
    Create(create::CreateArgs),
    /// Display detailed information on one or more networks
    Inspect(inspect::InspectArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(ls::LsArgs),
    /// Remove all unused networks
    Prune(prune::PruneArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(rm::RmArgs),
}

pub async fn run(client: &Client, c: NetworkCommand) -> Result<()> {
    match c {
        NetworkCommand::Create(a) => create::run(client, a).await,
        NetworkCommand::Inspect(a) => inspect::run(client, a).await,
        NetworkCommand::Ls(a) => ls::run(client, a).await,
        NetworkCommand::Prune(a) => prune::run(client, a).await,
        NetworkCommand::Rm(a) => rm::run(client, a).await,
    }
}
