//! `swarm service rm SERVICE...`: DELETE each, print its name, report every failure.

use anyhow::Result;
use clap::Args;

use crate::client::{query_escape, Client};
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// SERVICE [SERVICE...]
    #[arg(required = true, value_name = "SERVICE")]
    pub services: Vec<String>,
}

pub async fn run(client: &Client, a: RmArgs) -> Result<()> {
    let mut errors = Vec::new();
    for s in &a.services {
        match client
            .delete(&format!("/services/{}", query_escape(s)))
            .await
        {
            Ok(()) => println!("{s}"),
            Err(e) => errors.push(crate::user_message(&e)),
        }
    }
    UserError::all(errors)
}
