//! `swarm image inspect [-f FORMAT] IMAGE...`: GET /images/{name}/json for each; JSON as
//! Docker indents it, or a template; `Error: No such image: x` for a miss.

use anyhow::Result;
use clap::Args;

use crate::client::{Client, DaemonError};
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long, value_name = "string")]
    pub format: Option<String>,
    /// IMAGE [IMAGE...]
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

pub async fn run(client: &Client, a: InspectArgs) -> Result<()> {
    let mut raws = Vec::new();
    let mut errors = Vec::new();
    for name in &a.images {
        match client.get_raw(&format!("/images/{name}/json")).await {
            Ok(r) => raws.push(r),
            Err(e) => match e.downcast_ref::<DaemonError>() {
                Some(d) if d.is_not_found() => errors.push(format!("Error: No such image: {name}")),
                _ => errors.push(crate::user_message(&e)),
            },
        }
    }
    crate::service::inspect::print_found(&raws, a.format.as_deref())?;
    UserError::all(errors)
}
