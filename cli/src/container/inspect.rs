//! `swarm container inspect [-f FORMAT] CONTAINER...`: GET /containers/{id}/json for
//! each; `Error: No such container: x` for a miss.

use anyhow::Result;
use clap::Args;

use crate::client::{Client, DaemonError};
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long, value_name = "string")]
    pub format: Option<String>,
    /// CONTAINER [CONTAINER...]
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub async fn run(client: &Client, a: InspectArgs) -> Result<()> {
    let mut raws = Vec::new();
    let mut errors = Vec::new();
    for name in &a.containers {
        let path = format!("/containers/{}/json", crate::client::query_escape(name));
        match client.get_raw(&path).await {
            Ok(r) => raws.push(r),
            Err(e) => match e.downcast_ref::<DaemonError>() {
                Some(d) if d.is_not_found() => {
                    errors.push(format!("Error: No such container: {name}"))
                }
                _ => errors.push(crate::user_message(&e)),
            },
        }
    }
    crate::service::inspect::print_found(&raws, a.format.as_deref())?;
    UserError::all(errors)
}
