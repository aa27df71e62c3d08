//! `swarm image ls|inspect|pull|push|tag|rm|load`: this node's images, as the docker
//! CLI's `image` commands (and their top-level aliases `images`, `pull`, `push`, `tag`,
//! `rmi`) show them. `progress.rs` prints pull and push streams.

pub mod inspect;
pub mod load;
pub mod ls;
pub mod progress;
pub mod pull;
pub mod push;
pub mod rm;
pub mod tag;

use anyhow::Result;
use clap::Subcommand;

use crate::client::Client;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Display detailed information on one or more images
    Inspect(inspect::InspectArgs),
    /// Load an image from a tar archive (OCI layout or docker save) into the node's store
    Load(load::LoadArgs),
    /// List images
    #[command(visible_alias = "list")]
    Ls(ls::LsArgs),
    /// Download an image from a registry
    Pull(pull::PullArgs),
    /// Upload an image to a registry
    Push(push::PushArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(rm::RmArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(tag::TagArgs),
}

pub async fn run(client: &Client, c: ImageCommand) -> Result<()> {
    match c {
        ImageCommand::Inspect(a) => inspect::run(client, a).await,
        ImageCommand::Load(a) => load::run(client, a).await,
        ImageCommand::Ls(a) => ls::run(client, a).await,
        ImageCommand::Pull(a) => pull::run(client, a).await,
        ImageCommand::Push(a) => push::run(client, a).await,
        ImageCommand::Rm(a) => rm::run(client, a).await,
        ImageCommand::Tag(a) => tag::run(client, a).await,
    }
}
