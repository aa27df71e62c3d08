//! `swarm container ls|inspect|logs` (and `swarm ps`): this node's containers, the
//! tasks' ones, as the docker CLI's `container` commands show them.

pub mod inspect;
pub mod logs;
pub mod ls;

use anyhow::Result;
use clap::Subcommand;

use crate::client::Client;

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Display detailed information on one or more containers
    Inspect(inspect::InspectArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// List containers
    #[command(visible_aliases = ["list", "ps"])]
    Ls(ls::LsArgs),
}

pub async fn run(client: &Client, c: ContainerCommand) -> Result<()> {
    match c {
        ContainerCommand::Inspect(a) => inspect::run(client, a).await,
        ContainerCommand::Logs(a) => logs::run(client, a).await,
        ContainerCommand::Ls(a) => ls::run(client, a).await,
    }
}
