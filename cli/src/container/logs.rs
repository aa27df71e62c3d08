//! `swarm container logs [-f] [-n N] [-t] [--since T] CONTAINER`: GET
//! /containers/{id}/logs, stdout to stdout and stderr to stderr, as `docker logs`.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use http::Method;
use http_body_util::BodyExt;

use crate::client::{query_escape, Client};

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all", value_name = "string")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for
    /// 42 minutes)
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub async fn run(client: &Client, a: LogsArgs) -> Result<()> {
    let mut q = format!("stdout=1&stderr=1&tail={}", query_escape(&a.tail));
    if a.follow {
        q += "&follow=1";
    }
    if a.timestamps {
        q += "&timestamps=1";
    }
    if let Some(since) = &a.since {
        q += "&since=";
        q += &query_escape(&crate::events::timestamp(since, chrono::Utc::now())?);
    }
    let path = format!("/containers/{}/logs?{q}", query_escape(&a.container));
    let resp = client.call(Method::GET, &path, None, None).await?;
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        let (frames, used) = crate::service::logs::demux(&buf);
        buf.drain(..used);
        for (stream, payload) in frames {
            if stream == 2 {
                let _ = std::io::stderr().write_all(&payload);
            } else {
                let mut o = std::io::stdout();
                let _ = o.write_all(&payload);
                let _ = o.flush();
            }
        }
    }
    Ok(())
}
