//! `swarm service update [OPTIONS] SERVICE`: GET the service, change what the flags
//! name, POST the whole spec back with `?version=N`, print the name, wait unless `-d`.

use anyhow::Result;
use clap::Args;

use super::flags::{CommonFlags, UpdateFlags};
use super::spec::apply_update;
use super::wait::wait_for_service;
use super::{get_service, post_update};
use crate::client::Client;
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub update: UpdateFlags,
    #[command(flatten)]
    pub common: CommonFlags,
    /// SERVICE
    #[arg(value_name = "SERVICE")]
    pub service: String,
}

pub async fn run(client: &Client, a: UpdateArgs) -> Result<()> {
    let service = get_service(client, &a.service).await?;
    let rollback = a.update.rollback.unwrap_or(false);
    let mut spec = service["Spec"].clone();
    let query = if rollback {
        // Rollback can't be combined with other flags (detach and quiet aside).
        let mut probe = spec.clone();
        apply_update(&mut probe, &a.update, &a.common)?;
        if probe != spec {
            return Err(UserError("other flags may not be combined with --rollback".into()).into());
        }
        "rollback=previous&"
    } else {
        apply_update(&mut spec, &a.update, &a.common)?;
        "registryAuthFrom=spec&"
    };
    post_update(client, &service, &spec, query).await?;
    println!("{}", a.service);
    if a.common.detach() {
        return Ok(());
    }
    wait_for_service(client, &a.service, a.common.quiet()).await
}
