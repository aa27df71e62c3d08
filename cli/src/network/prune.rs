//! `swarm network prune [-f] [--filter label=x]`: POST /networks/prune after Docker's
//! question, then Docker's list of what went.

use std::io::{BufRead, Write};

use anyhow::Result;
use clap::Args;

use crate::client::{filters, Client};

#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long, value_name = "filter")]
    pub filter: Vec<String>,
}

const WARNING: &str = "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ";

/// Docker's report: nothing when nothing went.
pub fn report(deleted: &[String]) -> String {
    if deleted.is_empty() {
        return String::new();
    }
    let mut out = "Deleted Networks:\n".to_string();
    for n in deleted {
        out.push_str(n);
        out.push('\n');
    }
    out
}

pub async fn run(client: &Client, a: PruneArgs) -> Result<()> {
    if !a.force {
        print!("{WARNING}");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Ok(());
        }
    }
    let mut path = "/networks/prune".to_string();
    if !a.filter.is_empty() {
        let pairs: Vec<(&str, &str)> = a
            .filter
            .iter()
            .map(|f| f.split_once('=').unwrap_or((f, "")))
            .collect();
        path = format!("{path}?filters={}", filters(&pairs));
    }
    let resp = client.post_json(&path, &serde_json::json!({})).await?;
    let deleted: Vec<String> = resp["NetworksDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    print!("{}", report(&deleted));
    Ok(())
}
