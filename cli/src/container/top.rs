//! `swarm container top CONTAINER [ps OPTIONS]` (and `swarm top`): GET
//! /containers/{id}/top?ps_args=, the node's `ps` table of the container's processes.

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use crate::client::{query_escape, Client};
use crate::format::tabwriter::tabwrite_min;

#[derive(Debug, Clone, Args)]
pub struct TopArgs {
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// [ps OPTIONS]
    #[arg(
        value_name = "ps OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub ps_args: Vec<String>,
}

/// The answer as `docker top` lays it out (its tabwriter's minimum width is 20):
/// titles, then one row a process.
pub fn table(top: &Value) -> String {
    let cells = |v: &Value| -> String {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|c| c.as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\t")
    };
    let mut text = cells(&top["Titles"]);
    text.push('\n');
    for p in top["Processes"].as_array().into_iter().flatten() {
        text.push_str(&cells(p));
        text.push('\n');
    }
    tabwrite_min(&text, 20)
}

pub async fn run(client: &Client, a: TopArgs) -> Result<()> {
    let mut path = format!("/containers/{}/top", query_escape(&a.container));
    if !a.ps_args.is_empty() {
        path += &format!("?ps_args={}", query_escape(&a.ps_args.join(" ")));
    }
    let top = client.get_json(&path).await?;
    print!("{}", table(&top));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_then_processes() {
        let top = serde_json::json!({
            "Titles": ["UID", "PID", "CMD"],
            "Processes": [["root", "4242", "sleep 1d"]],
        });
        let t = table(&top);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("UID") && lines[0].trim_end().ends_with("CMD"));
        assert_eq!(lines[1], format!("{:<20}{:<20}sleep 1d", "root", "4242"));
    }
}
