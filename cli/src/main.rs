//! `swarm`: the command line. It speaks Docker Swarm's language to a manager's
//! Docker Engine API and prints what the docker CLI prints.
//!
//! ```text
//!   argv ──clap──> Command ──> commands (service/, node/, swarm/, secret/, image/, stack/)
//!                                 │  Client (client.rs): /_ping, /v1.xx/...
//!                                 └─ views: format/ (tabwriter, templates), progress
//! ```
#![forbid(unsafe_code)]

mod client;
mod container;
mod events;
mod format;
mod image;
mod logs;
mod natural;
mod network;
mod node;
mod secret;
mod service;
mod shlex;
mod stack;

mod swarm;
mod units;
mod usage;
mod volume;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::client::{Client, ConnectError, DaemonError, DEFAULT_HOST};

/// A self-sufficient runtime for containers, Docker Swarm mode without the Docker daemon.
#[derive(Debug, Parser)]
#[command(
    name = "swarm",
    version,
    about = "Docker Swarm mode, without the Docker daemon"
)]
pub struct Cli {
    /// Daemon socket to connect to
    #[arg(
        short = 'H',
        long = "host",
        env = "SWARM_HOST",
        global = true,
        value_name = "string"
    )]
    host: Option<String>,

    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// `swarm init`, `swarm join`, ...: the `swarm swarm` commands at the top level
    #[command(flatten)]
    Cluster(swarm::SwarmCommand),
    /// Manage Swarm
    #[command(subcommand)]
    Swarm(swarm::SwarmCommand),
    /// Manage the system
    #[command(subcommand)]
    System(swarm::SystemCommand),
    /// Display the swarm part of system-wide information
    Info(swarm::info::InfoArgs),
    /// Write a manager's swarm state to a file (ours; restore: swarmd --restore)
    Backup(swarm::backup::BackupArgs),
    /// Manage Swarm nodes
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Manage Swarm services
    #[command(subcommand)]
    Service(service::ServiceCommand),
    /// Manage this node's containers
    #[command(subcommand)]
    Container(container::ContainerCommand),
    /// List containers
    Ps(container::ls::LsArgs),
    /// Fetch the logs of a container
    Logs(container::logs::LogsArgs),
    /// Execute a command in a running container
    Exec(container::exec::ExecArgs),
    /// Display the running processes of a container
    Top(container::top::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(container::stats::StatsArgs),
    /// Manage images
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// List images
    Images(image::ls::LsArgs),
    /// Download an image from a registry
    Pull(image::pull::PullArgs),
    /// Upload an image to a registry
    Push(image::push::PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(image::tag::TagArgs),
    /// Remove one or more images
    Rmi(image::rm::RmArgs),
    /// Manage Swarm secrets
    #[command(subcommand)]
    Secret(secret::SecretCommand),
    /// Manage Swarm configs
    #[command(subcommand)]
    Config(secret::ConfigCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Manage Swarm stacks
    #[command(subcommand)]
    Stack(stack::StackCommand),
    /// Get real time events from the server
    Events(events::EventsArgs),
}

/// A command that ends with this exit code and says nothing more (`exec`'s process's).
#[derive(Debug)]
pub struct ExitStatus(pub i32);

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for ExitStatus {}

/// An error already worded for the user (Docker's client-side messages).
#[derive(Debug)]
pub struct UserError(pub String);

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

impl UserError {
    /// Docker's way of ending a command over several objects: every error, one per
    /// line, once all were tried; none is success.
    pub fn all(errors: Vec<String>) -> anyhow::Result<()> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(UserError(errors.join("\n")).into())
        }
    }
}

fn main() -> ExitCode {
    // clap parses; usage.rs words its errors and help as the docker CLI does.
    let cli = usage::parse_or_exit::<Cli>();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(ExitStatus(code)) = e.downcast_ref::<ExitStatus>() {
                return ExitCode::from(u8::try_from(*code).unwrap_or(1));
            }
            eprintln!("{}", user_message(&e));
            ExitCode::FAILURE
        }
    }
}

/// One line in Docker's words: daemon errors, connection errors, our own.
fn user_message(e: &anyhow::Error) -> String {
    if let Some(d) = e.downcast_ref::<DaemonError>() {
        return d.to_string();
    }
    if let Some(c) = e.downcast_ref::<ConnectError>() {
        return c.to_string();
    }
    if let Some(u) = e.downcast_ref::<UserError>() {
        return u.to_string();
    }
    format!("{e:#}")
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let host = cli.host.unwrap_or_else(|| DEFAULT_HOST.to_string());
    let client = Client::new(&host)?;
    match cli.command {
        Command::Cluster(c) | Command::Swarm(c) => swarm::run(&client, c).await,
        Command::Info(a) | Command::System(swarm::SystemCommand::Info(a)) => {
            swarm::info::run(&client, a).await
        }
        Command::Backup(a) => swarm::backup::run(&client, a).await,
        Command::Node(c) => node::run(&client, c).await,
        Command::Service(c) => service::run(&client, c).await,
        Command::Container(c) => container::run(&client, c).await,
        Command::Ps(a) => container::run(&client, container::ContainerCommand::Ls(a)).await,
        Command::Logs(a) => container::run(&client, container::ContainerCommand::Logs(a)).await,
        Command::Exec(a) => container::run(&client, container::ContainerCommand::Exec(a)).await,
        Command::Top(a) => container::run(&client, container::ContainerCommand::Top(a)).await,
        Command::Stats(a) => container::run(&client, container::ContainerCommand::Stats(a)).await,
        Command::Image(c) => image::run(&client, c).await,
        Command::Images(a) => image::run(&client, image::ImageCommand::Ls(a)).await,
        Command::Pull(a) => image::run(&client, image::ImageCommand::Pull(a)).await,
        Command::Push(a) => image::run(&client, image::ImageCommand::Push(a)).await,
        Command::Tag(a) => image::run(&client, image::ImageCommand::Tag(a)).await,
        Command::Rmi(a) => image::run(&client, image::ImageCommand::Rm(a)).await,
        Command::Secret(c) => secret::run_secret(&client, c).await,
        Command::Config(c) => secret::run_config(&client, c).await,
        Command::Network(c) => network::run(&client, c).await,
        Command::Volume(c) => volume::run(&client, c).await,
        Command::Stack(c) => stack::run(&client, c).await,
        Command::Events(a) => events::run(&client, a).await,
    }
}
