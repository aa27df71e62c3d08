//! `swarm image load`.

pub mod load;

use anyhow::Result;
use clap::Subcommand;

use crate::client::Client;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Load an image from a tar archive (OCI layout or docker save) into the node's store
    Load(load::LoadArgs),
}

pub async fn run(client: &Client, c: ImageCommand) -> Result<()> {
    match c {
        ImageCommand::Load(a) => load::run(client, a).await,
    }
}
