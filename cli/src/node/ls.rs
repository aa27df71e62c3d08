//! `swarm node ls`: GET /nodes and GET /info (to mark the node we talk to with `*`).

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use super::{pretty, text};
use crate::client::{filters, Client};
use crate::format::table::{choose_format, default_header, render_list};
use crate::natural::natural_cmp;

/// The docker CLI's default: `{{.ID}} {{if .Self}}*{{else}} {{ end }}` is our `IDSelf`.
pub const DEFAULT_FORMAT: &str =
    "table {{.IDSelf}}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}\t{{.EngineVersion}}";

#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long, value_name = "string", help = crate::usage::LIST_FORMAT_HELP)]
    pub format: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
}

/// One node as the docker CLI's node context shows it.
pub fn node_row(n: &Value, self_id: &str) -> Value {
    let id = text(&n["ID"]);
    let is_self = id == self_id;
    let ms = &n["ManagerStatus"];
    let manager = if ms.is_object() {
        if ms["Leader"].as_bool().unwrap_or(false) {
            "Leader".to_string()
        } else {
            pretty(&text(&ms["Reachability"]))
        }
    } else {
        String::new()
    };
    json!({
        "ID": id,
        "IDSelf": format!("{id} {}", if is_self { "*" } else { " " }),
        "Self": is_self,
        "Hostname": text(&n["Description"]["Hostname"]),
        "Status": pretty(&text(&n["Status"]["State"])),
        "Availability": pretty(&text(&n["Spec"]["Availability"])),
        "ManagerStatus": manager,
        "EngineVersion": text(&n["Description"]["Engine"]["EngineVersion"]),
    })
}

/// Renders `node ls` for `nodes` (GET /nodes) seen from `self_id`.
pub fn render(nodes: &[Value], self_id: &str, format: Option<&str>, quiet: bool) -> Result<String> {
    let mut nodes: Vec<&Value> = nodes.iter().collect();
    nodes.sort_by(|a, b| {
        natural_cmp(
            a["Description"]["Hostname"].as_str().unwrap_or(""),
            b["Description"]["Hostname"].as_str().unwrap_or(""),
        )
    });
    let rows: Vec<Value> = nodes.iter().map(|n| node_row(n, self_id)).collect();
    let f = choose_format(format, quiet, DEFAULT_FORMAT);
    render_list(f, &rows, &|field| match field {
        "IDSelf" => "ID".into(),
        "Self" => String::new(),
        f => default_header(f),
    })
}

pub async fn run(client: &Client, a: LsArgs) -> Result<()> {
    let mut path = "/nodes".to_string();
    if !a.filter.is_empty() {
        let pairs: Vec<(&str, &str)> = a
            .filter
            .iter()
            .map(|f| f.split_once('=').unwrap_or((f, "")))
            .collect();
        path = format!("/nodes?filters={}", filters(&pairs));
    }
    let nodes = client.get_json(&path).await?;
    let info = client.get_json("/info").await?;
    let self_id = info["Swarm"]["NodeID"].as_str().unwrap_or_default();
    let nodes = nodes.as_array().cloned().unwrap_or_default();
    print!("{}", render(&nodes, self_id, a.format.as_deref(), a.quiet)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ls_like_docker() {
        let nodes: Vec<Value> =
            serde_json::from_str(include_str!("../../tests/fixtures/api_nodes.json")).unwrap();
        let out = render(&nodes, "z0zdzsttw6s52d3mjc6ya9h92", None, false).unwrap();
        assert_eq!(out, include_str!("../../tests/fixtures/node_ls.txt"));
        let q = render(&nodes, "z0zdzsttw6s52d3mjc6ya9h92", None, true).unwrap();
        assert_eq!(q, "z0zdzsttw6s52d3mjc6ya9h92\n");
        let f = render(&nodes, "x", Some("{{.Hostname}} {{.Status}}"), false).unwrap();
        assert_eq!(f, "vm Ready\n");
    }
}
