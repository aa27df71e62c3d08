//! `swarm volume rm [-f] VOLUME...`: DELETE each (the daemon refuses one a container
//! mounts), print what was removed, report every failure in the daemon's words.

use anyhow::Result;
use clap::Args;

use crate::client::{query_escape, Client};
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short, long)]
    pub force: bool,
    /// VOLUME [VOLUME...]
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

pub async fn run(client: &Client, a: RmArgs) -> Result<()> {
    let mut errors = Vec::new();
    for n in &a.names {
        let mut path = format!("/volumes/{}", query_escape(n));
        if a.force {
            path.push_str("?force=1");
        }
        match client.delete(&path).await {
            Ok(()) => println!("{n}"),
            Err(e) => errors.push(crate::user_message(&e)),
        }
    }
    UserError::all(errors)
}
