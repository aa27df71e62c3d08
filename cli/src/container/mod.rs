//! `swarm container ls|inspect|logs|exec|top|stats` (and `swarm ps`, `swarm exec`, ...):
//! this node's containers, the tasks' ones, as the docker CLI's `container` commands
//! show them.

pub mod exec;
pub mod inspect;
pub mod logs;
pub mod ls;
pub mod stats;
pub mod top;

use anyhow::Result;
use clap::Subcommand;

use crate::client::Client;

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Display detailed information on one or more containers
    Inspect(inspect::InspectArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// List containers
    #[command(visible_aliases = ["list", "ps"])]
    Ls(ls::LsArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// Display the running processes of a container
    Top(top::TopArgs),
}

pub async fn run(client: &Client, c: ContainerCommand) -> Result<()> {
    match c {
        ContainerCommand::Exec(a) => exec::run(client, a).await,
        ContainerCommand::Inspect(a) => inspect::run(client, a).await,
        ContainerCommand::Stats(a) => stats::run(client, a).await,
        ContainerCommand::Top(a) => top::run(client, a).await,
        ContainerCommand::Logs(a) => logs::run(client, a).await,
        ContainerCommand::Ls(a) => ls::run(client, a).await,
    }
}
