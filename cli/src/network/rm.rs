//! `swarm network rm NAME...`: DELETE each (the daemon resolves names and refuses one in
//! use), print what was given, report every failure in the daemon's words.

use anyhow::Result;
use clap::Args;

use crate::client::{query_escape, Client};
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// NETWORK [NETWORK...]
    #[arg(required = true, value_name = "NETWORK")]
    pub names: Vec<String>,
}

pub async fn run(client: &Client, a: RmArgs) -> Result<()> {
    let mut errors = Vec::new();
    for n in &a.names {
        match client
            .delete(&format!("/networks/{}", query_escape(n)))
            .await
        {
            Ok(()) => println!("{n}"),
            Err(e) => errors.push(crate::user_message(&e)),
        }
    }
    UserError::all(errors)
}
