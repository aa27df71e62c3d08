//! `swarm image tag SOURCE TARGET` (and `swarm tag`): POST /images/{source}/tag.

use anyhow::Result;
use clap::Args;
use http::Method;

use super::progress::split_reference;
use crate::client::{query_escape, Client};

#[derive(Debug, Clone, Args)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    /// TARGET_IMAGE[:TAG]
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

pub async fn run(client: &Client, a: TagArgs) -> Result<()> {
    let (repo, tag, _) = split_reference(&a.target);
    let path = format!(
        "/images/{}/tag?repo={}&tag={}",
        a.source,
        query_escape(&repo),
        query_escape(&tag.unwrap_or_else(|| "latest".into()))
    );
    client.call(Method::POST, &path, None, None).await?;
    Ok(())
}
