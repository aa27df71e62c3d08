//! `swarm volume ls [-q] [--format] [-f]`: GET /volumes with the filters, sorted by
//! name, in the docker CLI's table (`DRIVER    VOLUME NAME`).

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use crate::client::{filters, Client};
use crate::format::table::{choose_format, default_header, labels_text, render_list};
use crate::natural::natural_cmp;

pub const VOLUME_FORMAT: &str = "table {{.Driver}}\t{{.Name}}";

#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
}

/// The docker CLI's `volumeContext` fields (cluster volumes' are `N/A`).
fn row(v: &Value) -> Value {
    json!({
        "Name": v["Name"],
        "Driver": v["Driver"],
        "Scope": v["Scope"],
        "Mountpoint": v["Mountpoint"],
        "Labels": labels_text(&v["Labels"]),
        "Links": "N/A",
        "Size": "N/A",
        "Group": "N/A",
        "Availability": "N/A",
        "Status": "N/A",
    })
}

pub fn render(items: &[Value], format: Option<&str>, quiet: bool) -> Result<String> {
    let mut items: Vec<&Value> = items.iter().collect();
    items.sort_by(|a, b| {
        natural_cmp(
            a["Name"].as_str().unwrap_or(""),
            b["Name"].as_str().unwrap_or(""),
        )
    });
    let rows: Vec<Value> = items.iter().map(|v| row(v)).collect();
    let format = if quiet {
        "{{.Name}}"
    } else {
        choose_format(format, false, VOLUME_FORMAT)
    };
    render_list(format, &rows, &|f| match f {
        "Name" => "VOLUME NAME".into(),
        f => default_header(f),
    })
}

pub async fn run(client: &Client, a: LsArgs) -> Result<()> {
    let mut path = "/volumes".to_string();
    if !a.filter.is_empty() {
        let pairs: Vec<(&str, &str)> = a
            .filter
            .iter()
            .map(|f| f.split_once('=').unwrap_or((f, "")))
            .collect();
        path = format!("{path}?filters={}", filters(&pairs));
    }
    let answer = client.get_json(&path).await?;
    let items = answer["Volumes"].as_array().cloned().unwrap_or_default();
    print!("{}", render(&items, a.format.as_deref(), a.quiet)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_like_docker() {
        let items: Vec<Value> = serde_json::from_value(json!([
            {"Name": "v10", "Driver": "local", "Scope": "local", "Labels": null},
            {"Name": "v2", "Driver": "local", "Scope": "local", "Labels": {"a": "b"}}
        ]))
        .unwrap();
        assert_eq!(
            render(&items, None, false).unwrap(),
            "DRIVER    VOLUME NAME\nlocal     v2\nlocal     v10\n"
        );
        assert_eq!(render(&items, None, true).unwrap(), "v2\nv10\n");
        assert_eq!(
            render(&items, Some("{{.Name}} {{.Labels}} {{.Size}}"), false).unwrap(),
            "v2 a=b N/A\nv10  N/A\n"
        );
    }
}
