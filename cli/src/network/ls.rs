//! `swarm network ls [-q] [--no-trunc] [--format] [-f]`: GET /networks with the filters,
//! sorted by name, in the docker CLI's table (`NETWORK ID`, 12-character IDs).

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use crate::client::{filters, Client};
use crate::format::table::{choose_format, default_header, labels_text, render_list};
use crate::natural::natural_cmp;

pub const NETWORK_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    /// Only display network IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Pretty-print networks using a Go template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
}

fn row(n: &Value, no_trunc: bool) -> Value {
    let id = n["Id"].as_str().unwrap_or_default();
    let id = if no_trunc {
        id
    } else {
        &id[..id.len().min(12)]
    };
    json!({
        "ID": id,
        "Name": n["Name"],
        "Driver": n["Driver"],
        "Scope": n["Scope"],
        "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
        "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
        "Labels": labels_text(&n["Labels"]),
        "CreatedAt": n["Created"],
    })
}

pub fn render(
    items: &[Value],
    format: Option<&str>,
    quiet: bool,
    no_trunc: bool,
) -> Result<String> {
    let mut items: Vec<&Value> = items.iter().collect();
    items.sort_by(|a, b| {
        natural_cmp(
            a["Name"].as_str().unwrap_or(""),
            b["Name"].as_str().unwrap_or(""),
        )
    });
    let rows: Vec<Value> = items.iter().map(|n| row(n, no_trunc)).collect();
    render_list(
        choose_format(format, quiet, NETWORK_FORMAT),
        &rows,
        &|f| match f {
            "ID" => "NETWORK ID".into(),
            "IPv6" => "IPV6".into(),
            f => default_header(f),
        },
    )
}

pub async fn run(client: &Client, a: LsArgs) -> Result<()> {
    let mut path = "/networks".to_string();
    if !a.filter.is_empty() {
        let pairs: Vec<(&str, &str)> = a
            .filter
            .iter()
            .map(|f| f.split_once('=').unwrap_or((f, "")))
            .collect();
        path = format!("{path}?filters={}", filters(&pairs));
    }
    let items = client.get_json(&path).await?;
    let items = items.as_array().cloned().unwrap_or_default();
    print!(
        "{}",
        render(&items, a.format.as_deref(), a.quiet, a.no_trunc)?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_like_docker() {
        let items: Vec<Value> = serde_json::from_value(json!([
            {"Id": "wf0jzdpv1dfsw7hdfc2ngchtk", "Name": "ingress", "Driver": "overlay", "Scope": "swarm"},
            {"Id": "k3n8yhr3oy9b8yrz0pxqzvq5a", "Name": "appnet", "Driver": "overlay", "Scope": "swarm"}
        ]))
        .unwrap();
        assert_eq!(
            render(&items, None, false, false).unwrap(),
            "NETWORK ID     NAME      DRIVER    SCOPE\n\
             k3n8yhr3oy9b   appnet    overlay   swarm\n\
             wf0jzdpv1dfs   ingress   overlay   swarm\n"
        );
        assert_eq!(
            render(&items, None, true, false).unwrap(),
            "k3n8yhr3oy9b\nwf0jzdpv1dfs\n"
        );
    }
}
