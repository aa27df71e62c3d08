//! `swarm secret|config create|ls|inspect|rm`: the two named-blob commands, one code
//! path with a [`Kind`] (the docker CLI's `secret/` and `config/` differ only in the
//! table's DRIVER column, the pretty template, and configs showing their data).

pub mod create;
pub mod inspect;
pub mod ls;
pub mod rm;

use anyhow::Result;
use clap::Subcommand;

use crate::client::Client;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Secret,
    Config,
}

impl Kind {
    /// The API path: `/secrets`, `/configs`.
    pub fn path(self) -> &'static str {
        match self {
            Kind::Secret => "/secrets",
            Kind::Config => "/configs",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Create a secret from a file or STDIN as content
    Create(create::CreateArgs),
    /// Display detailed information on one or more secrets
    Inspect(inspect::InspectArgs),
    /// List secrets
    #[command(visible_alias = "list")]
    Ls(ls::LsArgs),
    /// Remove one or more secrets
    #[command(visible_alias = "remove")]
    Rm(rm::RmArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Create a config from a file or STDIN
    Create(create::ConfigCreateArgs),
    /// Display detailed information on one or more configs
    Inspect(inspect::InspectArgs),
    /// List configs
    #[command(visible_alias = "list")]
    Ls(ls::LsArgs),
    /// Remove one or more configs
    #[command(visible_alias = "remove")]
    Rm(rm::RmArgs),
}

pub async fn run_secret(client: &Client, c: SecretCommand) -> Result<()> {
    match c {
        SecretCommand::Create(a) => create::run(client, Kind::Secret, a).await,
        SecretCommand::Inspect(a) => inspect::run(client, Kind::Secret, a).await,
        SecretCommand::Ls(a) => ls::run(client, Kind::Secret, a).await,
        SecretCommand::Rm(a) => rm::run(client, Kind::Secret, a).await,
    }
}

pub async fn run_config(client: &Client, c: ConfigCommand) -> Result<()> {
    match c {
        ConfigCommand::Create(a) => create::run(client, Kind::Config, a.into()).await,
        ConfigCommand::Inspect(a) => inspect::run(client, Kind::Config, a).await,
        ConfigCommand::Ls(a) => ls::run(client, Kind::Config, a).await,
        ConfigCommand::Rm(a) => rm::run(client, Kind::Config, a).await,
    }
}
