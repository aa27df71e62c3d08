//! `swarm container ls` (and `swarm ps`): GET /containers/json, as `docker ps` shows it:
//! running containers (all with `-a`), newest first, filters passed to the node.

use anyhow::Result;
use chrono::{TimeZone, Utc};
use clap::Args;
use serde_json::{json, Value};

use crate::client::{filters, Client};
use crate::format::table::{choose_format, default_header, labels_text, render_list};
use crate::units::human::human_duration;

pub const FORMAT: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
    #[arg(long, value_name = "string", help = crate::usage::LIST_FORMAT_HELP)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
}

/// The image as `docker ps` shows it truncated: without its digest, in familiar form.
fn short_image(image: &str) -> String {
    let name = image.split_once('@').map_or(image, |(n, _)| n);
    name.strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name)
        .to_string()
}

/// The docker CLI's `Ellipsis`: at most `n` characters, the last one `…`.
fn ellipsis(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub fn rows(containers: &[Value], no_trunc: bool, now: chrono::DateTime<Utc>) -> Vec<Value> {
    containers
        .iter()
        .map(|c| {
            let id = c["Id"].as_str().unwrap_or_default();
            let command = c["Command"].as_str().unwrap_or_default();
            let created = Utc
                .timestamp_opt(c["Created"].as_i64().unwrap_or(0), 0)
                .single()
                .unwrap_or(now);
            let names: Vec<&str> = c["Names"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str())
                .map(|n| n.trim_start_matches('/'))
                .collect();
            json!({
                "ID": if no_trunc { id.to_string() } else { id.chars().take(12).collect() },
                "Image": match c["Image"].as_str() {
                    Some(i) if !no_trunc => Value::from(short_image(i)),
                    _ => c["Image"].clone(),
                },
                "Command": format!("{:?}", if no_trunc { command.to_string() } else { ellipsis(command, 20) }),
                "RunningFor": format!("{} ago", human_duration((now - created).to_std().unwrap_or_default())),
                "CreatedAt": created.format("%Y-%m-%d %H:%M:%S %z UTC").to_string(),
                "Status": c["Status"],
                "State": c["State"],
                "Ports": "",
                "Names": names.join(","),
                "Labels": labels_text(&c["Labels"]),
            })
        })
        .collect()
}

pub async fn run(client: &Client, a: LsArgs) -> Result<()> {
    let pairs: Vec<(&str, &str)> = a
        .filter
        .iter()
        .map(|f| f.split_once('=').unwrap_or((f, "")))
        .collect();
    let mut path = format!("/containers/json?all={}", if a.all { 1 } else { 0 });
    if !pairs.is_empty() {
        path += &format!("&filters={}", filters(&pairs));
    }
    let list = client.get_json(&path).await?;
    let list = list.as_array().cloned().unwrap_or_default();
    let out = render_list(
        choose_format(a.format.as_deref(), a.quiet, FORMAT),
        &rows(&list, a.no_trunc, Utc::now()),
        &|f| match f {
            "ID" => "CONTAINER ID".into(),
            "RunningFor" => "CREATED".into(),
            "CreatedAt" => "CREATED AT".into(),
            f => default_header(f),
        },
    )?;
    print!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_as_docker_ps_shows_them() {
        let now = Utc.timestamp_opt(1_000_000, 0).unwrap();
        let c = json!({"Id": "abcdefghijklmnopqrstuvwxy", "Names": ["/web.1.abcdefghijklmnopqrstuvwxy"],
            "Image": "busybox:1", "Command": "sh -c 'echo hi; sleep 1d'", "Created": 1_000_000 - 300,
            "Status": "Up 5 minutes", "State": "running", "Labels": {}});
        let r = &rows(&[c], false, now)[0];
        assert_eq!(r["ID"], "abcdefghijkl");
        assert_eq!(r["Command"], "\"sh -c 'echo hi; sle…\"");
        assert_eq!(r["RunningFor"], "5 minutes ago");
        assert_eq!(r["Names"], "web.1.abcdefghijklmnopqrstuvwxy");
        assert_eq!(
            short_image("127.0.0.1:5000/app:1@sha256:ab"),
            "127.0.0.1:5000/app:1"
        );
        assert_eq!(short_image("docker.io/library/nginx:1"), "nginx:1");
    }
}
