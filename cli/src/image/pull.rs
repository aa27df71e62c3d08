//! `swarm image pull NAME[:TAG|@DIGEST]` (and `swarm pull`): POST /images/create with the
//! credentials of `~/.docker/config.json` in X-Registry-Auth, the progress as the docker
//! CLI prints it, then the image's full name.

use anyhow::Result;
use clap::Args;
use http::Method;

use super::progress::{full_name, print_stream, split_reference};
use crate::client::{query_escape, Client};
use crate::service::registry_auth;

#[derive(Debug, Clone, Args)]
pub struct PullArgs {
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// NAME[:TAG|@DIGEST]
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub image: String,
}

pub async fn run(client: &Client, a: PullArgs) -> Result<()> {
    let (name, tag, digest) = split_reference(&a.image);
    let tag = digest.clone().or(tag).unwrap_or_else(|| "latest".into());
    let path = format!(
        "/images/create?fromImage={}&tag={}",
        query_escape(&name),
        query_escape(&tag)
    );
    let auth = registry_auth::encoded_for(&a.image)?;
    let resp = client
        .call_with_auth(Method::POST, &path, None, None, auth.as_deref())
        .await?;
    print_stream(resp.into_body(), a.quiet).await?;
    let sep = if digest.is_some() { "@" } else { ":" };
    println!("{}{sep}{tag}", full_name(&name));
    Ok(())
}
