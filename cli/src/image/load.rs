//! `swarm image load FILE`: POST /images/load with the archive as the body, then print
//! the `stream` lines of the JSON answer (`Loaded image: busybox:1`), as `docker load`.

use anyhow::{Context, Result};
use clap::Args;
use http::Method;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::client::Client;
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long, value_name = "string")]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
    /// FILE (the same as --input)
    #[arg(value_name = "FILE")]
    pub file: Option<String>,
}

/// The text `docker load` prints for the answer's JSON messages.
pub fn render_messages(body: &str) -> Result<String> {
    let mut out = String::new();
    let stream = serde_json::Deserializer::from_str(body).into_iter::<Value>();
    for msg in stream {
        let msg = msg.context("decoding the load answer")?;
        if let Some(e) = msg["errorDetail"]["message"]
            .as_str()
            .or(msg["error"].as_str())
        {
            return Err(UserError(e.to_string()).into());
        }
        if let Some(s) = msg["stream"].as_str() {
            out += s;
        } else if let Some(s) = msg["status"].as_str() {
            out += s;
            out.push('\n');
        }
    }
    Ok(out)
}

pub async fn run(client: &Client, a: LoadArgs) -> Result<()> {
    let data = match a.input.as_ref().or(a.file.as_ref()) {
        Some(path) => std::fs::read(path).map_err(|e| UserError(format!("open {path}: {e}")))?,
        None => {
            use std::io::{IsTerminal, Read};
            if std::io::stdin().is_terminal() {
                return Err(
                    UserError("requested load from stdin, but stdin is empty".into()).into(),
                );
            }
            let mut v = Vec::new();
            std::io::stdin().read_to_end(&mut v)?;
            v
        }
    };
    let q = if a.quiet { "?quiet=1" } else { "?quiet=0" };
    let resp = client
        .call(
            Method::POST,
            &format!("/images/load{q}"),
            Some(data),
            Some("application/x-tar"),
        )
        .await?;
    let body = resp.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&body);
    let out = render_messages(&text)?;
    if !a.quiet {
        print!("{out}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_messages() {
        let body = "{\"stream\":\"Loaded image: busybox:1\\n\"}\r\n";
        assert_eq!(render_messages(body).unwrap(), "Loaded image: busybox:1\n");
        assert!(render_messages(
            "{\"errorDetail\":{\"message\":\"bad archive\"},\"error\":\"bad archive\"}"
        )
        .is_err());
    }
}
