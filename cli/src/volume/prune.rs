//! `swarm volume prune [-a] [-f] [--filter label=x]`: POST /volumes/prune after
//! Docker's question (anonymous volumes only, unless `--all`), then Docker's report:
//! the removed names and the space they took.

use std::io::{BufRead, Write};

use anyhow::Result;
use clap::Args;

use crate::client::{filters, Client};
use crate::image::ls::human_size_precision;

#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

const WARNING: &str = "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] ";
const WARNING_ALL: &str = "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] ";

/// Docker's report: the names (when any went), a blank line, the space.
pub fn report(deleted: &[String], space: u64) -> String {
    let mut out = String::new();
    if !deleted.is_empty() {
        out.push_str("Deleted Volumes:\n");
        for n in deleted {
            out.push_str(n);
            out.push('\n');
        }
        out.push('\n');
    }
    out + &format!(
        "Total reclaimed space: {}\n",
        human_size_precision(space as f64, 4)
    )
}

pub async fn run(client: &Client, a: PruneArgs) -> Result<()> {
    if !a.force {
        print!("{}", if a.all { WARNING_ALL } else { WARNING });
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Ok(());
        }
    }
    let mut pairs: Vec<(&str, &str)> = a
        .filter
        .iter()
        .map(|f| f.split_once('=').unwrap_or((f, "")))
        .collect();
    if a.all {
        pairs.push(("all", "true"));
    }
    let mut path = "/volumes/prune".to_string();
    if !pairs.is_empty() {
        path = format!("{path}?filters={}", filters(&pairs));
    }
    let resp = client.post_json(&path, &serde_json::json!({})).await?;
    let deleted: Vec<String> = resp["VolumesDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let space = resp["SpaceReclaimed"].as_u64().unwrap_or(0);
    print!("{}", report(&deleted, space));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_like_docker() {
        assert_eq!(report(&[], 0), "Total reclaimed space: 0B\n");
        assert_eq!(
            report(&["a".into(), "b".into()], 12_300),
            "Deleted Volumes:\na\nb\n\nTotal reclaimed space: 12.3kB\n"
        );
    }
}
