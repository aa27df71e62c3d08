//! `swarm volume inspect [-f FORMAT] VOLUME...`: GET each; JSON as Docker indents it,
//! or a template; misses reported after what was found, as the docker CLI does.

use anyhow::Result;
use clap::Args;

use crate::client::{query_escape, Client};
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long, value_name = "string")]
    pub format: Option<String>,
    /// VOLUME [VOLUME...]
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

pub async fn run(client: &Client, a: InspectArgs) -> Result<()> {
    let mut raws = Vec::new();
    let mut errors = Vec::new();
    for name in &a.names {
        match client
            .get_raw(&format!("/volumes/{}", query_escape(name)))
            .await
        {
            Ok(r) => raws.push(r),
            Err(e) => errors.push(crate::user_message(&e)),
        }
    }
    crate::service::inspect::print_found(&raws, a.format.as_deref())?;
    UserError::all(errors)
}
