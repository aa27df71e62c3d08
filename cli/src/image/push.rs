//! `swarm image push NAME[:TAG]` (and `swarm push`): POST /images/{name}/push?tag=T with
//! the credentials of `~/.docker/config.json` in X-Registry-Auth; the progress as the
//! docker CLI prints it (`abc123: Pushed`, `1.0: digest: sha256:.. size: 527`).

use anyhow::Result;
use clap::Args;
use http::Method;

use super::progress::{full_name, print_stream, split_reference};
use crate::client::{query_escape, Client};
use crate::service::registry_auth;

#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG]
    #[arg(value_name = "NAME[:TAG]")]
    pub image: String,
}

pub async fn run(client: &Client, a: PushArgs) -> Result<()> {
    let (name, tag, _) = split_reference(&a.image);
    let tag = tag.unwrap_or_else(|| "latest".into());
    let path = format!("/images/{name}/push?tag={}", query_escape(&tag));
    let auth = registry_auth::encoded_for(&a.image)?;
    let resp = client
        .call_with_auth(Method::POST, &path, None, None, auth.as_deref())
        .await?;
    print_stream(resp.into_body(), a.quiet).await?;
    if a.quiet {
        println!("{}:{tag}", full_name(&name));
    }
    Ok(())
}
