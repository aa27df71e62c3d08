//! `swarm service create [OPTIONS] IMAGE [COMMAND] [ARG...]`: POST /services/create,
//! print the new ID, then wait for convergence unless `-d`.

use anyhow::Result;
use clap::Args;

use super::flags::{CommonFlags, CreateFlags};
use super::spec::build_spec;
use super::wait::wait_for_service;
use crate::client::Client;

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub create: CreateFlags,
    #[command(flatten)]
    pub common: CommonFlags,
    /// IMAGE [COMMAND] [ARG...]: everything after the image belongs to the command
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "IMAGE [COMMAND] [ARG...]")]
    pub image_and_args: Vec<String>,
}

impl CreateArgs {
    /// The spec this invocation sends.
    pub fn spec(&self) -> Result<serde_json::Value> {
        let (image, args) = self
            .image_and_args
            .split_first()
            .expect("clap requires IMAGE");
        build_spec(image, args, &self.create, &self.common)
    }
}

pub async fn run(client: &Client, a: CreateArgs) -> Result<()> {
    let spec = a.spec()?;
    let resp = client.post_json("/services/create", &spec).await?;
    for w in resp["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("{w}");
        }
    }
    let id = resp["ID"].as_str().unwrap_or_default().to_string();
    println!("{id}");
    if a.common.detach() {
        return Ok(());
    }
    wait_for_service(client, &id, a.common.quiet()).await
}
