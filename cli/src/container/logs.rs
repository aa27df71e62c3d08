//! `swarm container logs [-f] [-n N] [-t] [--since T] CONTAINER`: GET
//! /containers/{id}/logs, stdout to stdout and stderr to stderr, as `docker logs`.

use anyhow::Result;
use clap::Args;
use http::Method;

use crate::client::{query_escape, Client};
use crate::logs::{write, Frames, LogFlags};

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub log: LogFlags,
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub async fn run(client: &Client, a: LogsArgs) -> Result<()> {
    let path = format!(
        "/containers/{}/logs?{}",
        query_escape(&a.container),
        a.log.query()?
    );
    let resp = client.call(Method::GET, &path, None, None).await?;
    let mut frames = Frames::new(resp.into_body(), false);
    while let Some(batch) = frames.next().await? {
        for (stream, payload) in batch {
            write(stream, &payload);
        }
    }
    Ok(())
}
