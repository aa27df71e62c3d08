//! `swarm service rollback SERVICE`: POST the current spec with `?rollback=previous`;
//! the manager swaps in PreviousSpec.

use anyhow::Result;
use clap::Args;

use super::wait::wait_for_service;
use super::{get_service, post_update};
use crate::client::Client;

#[derive(Debug, Clone, Args)]
pub struct RollbackArgs {
    /// Exit immediately instead of waiting for the service to converge
    #[arg(short = 'd', long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub detach: Option<bool>,
    /// Suppress progress output
    #[arg(short = 'q', long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub quiet: Option<bool>,
    /// SERVICE
    #[arg(value_name = "SERVICE")]
    pub service: String,
}

pub async fn run(client: &Client, a: RollbackArgs) -> Result<()> {
    let service = get_service(client, &a.service).await?;
    post_update(
        client,
        &service,
        &service["Spec"],
        "rollback=previous&",
        None,
    )
    .await?;
    println!("{}", a.service);
    if a.detach.unwrap_or(false) {
        return Ok(());
    }
    wait_for_service(client, &a.service, a.quiet.unwrap_or(false)).await
}
