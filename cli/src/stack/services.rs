//! `swarm stack services STACK`: the stack's services in `service ls`'s table.

use anyhow::Result;
use clap::Args;

use super::{stack_filter, validate_name};
use crate::client::Client;
use crate::service::ps::parse_filters;

#[derive(Debug, Clone, Args)]
pub struct ServicesArgs {
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long, value_name = "string", help = crate::usage::LIST_FORMAT_HELP)]
    pub format: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
    /// STACK
    #[arg(value_name = "STACK")]
    pub stack: String,
}

pub async fn run(client: &Client, a: ServicesArgs) -> Result<()> {
    validate_name(&a.stack)?;
    let user = parse_filters(&a.filter)?;
    let status = if a.quiet { "" } else { "&status=true" };
    let services = client
        .get_json(&format!(
            "/services?filters={}{status}",
            stack_filter(&a.stack, &user)
        ))
        .await?;
    let services = services.as_array().cloned().unwrap_or_default();
    if services.is_empty() {
        eprintln!("Nothing found in stack: {}", a.stack);
        return Ok(());
    }
    print!(
        "{}",
        crate::service::ls::render(&services, a.format.as_deref(), a.quiet)?
    );
    Ok(())
}
