//! `swarm secret rm NAME...` / `swarm config rm`: DELETE each (the daemon resolves
//! names), print what was given, report every failure in the daemon's words.

use anyhow::Result;
use clap::Args;

use super::Kind;
use crate::client::{query_escape, Client};
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// NAME [NAME...]
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

pub async fn run(client: &Client, kind: Kind, a: RmArgs) -> Result<()> {
    let mut errors = Vec::new();
    for n in &a.names {
        match client
            .delete(&format!("{}/{}", kind.path(), query_escape(n)))
            .await
        {
            Ok(()) => println!("{n}"),
            Err(e) => errors.push(crate::user_message(&e)),
        }
    }
    UserError::all(errors)
}
