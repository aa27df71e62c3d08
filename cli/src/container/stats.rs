//! `swarm container stats [-a] [--no-stream] [--format] [CONTAINER...]` (and `swarm
//! stats`): GET /containers/{id}/stats?stream=false per container, worked out as the
//! docker CLI does (CPU % from the two samples, memory without the inactive page
//! cache, network and block I/O summed). Without `--no-stream` the table is drawn
//! again after every round (each answer spans one second on the node).

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use crate::client::{query_escape, Client};
use crate::format::table::{choose_format, render_list};
use crate::image::ls::human_size;
use crate::units::size::bytes_size;
use crate::UserError;

pub const FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    #[arg(long, value_name = "string", help = crate::usage::LIST_FORMAT_HELP)]
    pub format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

fn u(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// The docker CLI's `calculateCPUPercentUnix`.
pub fn cpu_percent(s: &Value) -> f64 {
    let cpu = &s["cpu_stats"];
    let pre = &s["precpu_stats"];
    let cpu_delta = u(&cpu["cpu_usage"]["total_usage"]) - u(&pre["cpu_usage"]["total_usage"]);
    let system_delta = u(&cpu["system_cpu_usage"]) - u(&pre["system_cpu_usage"]);
    let mut cpus = u(&cpu["online_cpus"]);
    if cpus == 0.0 {
        cpus = cpu["cpu_usage"]["percpu_usage"]
            .as_array()
            .map_or(0, Vec::len) as f64;
    }
    if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * cpus * 100.0
    } else {
        0.0
    }
}

/// The docker CLI's `calculateMemUsageUnixNoCache`: usage less the inactive file cache.
pub fn memory_used(s: &Value) -> f64 {
    let m = &s["memory_stats"];
    let usage = u(&m["usage"]);
    for key in ["total_inactive_file", "inactive_file"] {
        if let Some(v) = m["stats"][key].as_f64() {
            if v < usage {
                return usage - v;
            }
        }
    }
    usage
}

/// One row of the table from one stats object.
pub fn row(s: &Value, no_trunc: bool) -> Value {
    let id = s["id"].as_str().unwrap_or_default();
    let used = memory_used(s);
    let limit = u(&s["memory_stats"]["limit"]);
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in s["networks"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        rx += u(&n["rx_bytes"]);
        tx += u(&n["tx_bytes"]);
    }
    let (mut read, mut write) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => read += u(&e["value"]),
            Some("write") => write += u(&e["value"]),
            _ => {}
        }
    }
    json!({
        "ID": if no_trunc { id.to_string() } else { id.chars().take(12).collect() },
        "Container": id,
        "Name": s["name"].as_str().unwrap_or_default().trim_start_matches('/'),
        "CPUPerc": format!("{:.2}%", cpu_percent(s)),
        "MemUsage": format!("{} / {}", bytes_size(used), bytes_size(limit)),
        "MemPerc": format!("{:.2}%", if limit > 0.0 { used / limit * 100.0 } else { 0.0 }),
        "NetIO": format!("{} / {}", human_size(rx), human_size(tx)),
        "BlockIO": format!("{} / {}", human_size(read), human_size(write)),
        "PIDs": s["pids_stats"]["current"].as_u64().unwrap_or(0).to_string(),
    })
}

fn header(f: &str) -> String {
    match f {
        "ID" => "CONTAINER ID",
        "Container" => "CONTAINER",
        "Name" => "NAME",
        "CPUPerc" => "CPU %",
        "MemUsage" => "MEM USAGE / LIMIT",
        "MemPerc" => "MEM %",
        "NetIO" => "NET I/O",
        "BlockIO" => "BLOCK I/O",
        "PIDs" => "PIDS",
        other => return other.to_uppercase(),
    }
    .to_string()
}

pub async fn run(client: &Client, a: StatsArgs) -> Result<()> {
    let named = !a.containers.is_empty();
    loop {
        let targets: Vec<String> = if named {
            a.containers.clone()
        } else {
            let list = client
                .get_json(&format!("/containers/json?all={}", u8::from(a.all)))
                .await?;
            list.as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["Id"].as_str().map(str::to_string))
                .collect()
        };
        let answers = futures_join(client, &targets).await;
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for r in answers {
            match r {
                Ok(s) => rows.push(row(&s, a.no_trunc)),
                Err(e) => errors.push(crate::user_message(&e)),
            }
        }
        if named && !errors.is_empty() {
            return Err(UserError(errors.join("\n")).into());
        }
        let out = render_list(
            choose_format(a.format.as_deref(), false, FORMAT),
            &rows,
            &header,
        )?;
        if a.no_stream {
            print!("{out}");
            return Ok(());
        }
        // Redraw in place, as the docker CLI does on a terminal.
        print!("\x1b[2J\x1b[H{out}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
}

/// One `stream=false` answer per container, asked together.
async fn futures_join(client: &Client, ids: &[String]) -> Vec<Result<Value>> {
    futures::future::join_all(ids.iter().map(|id| {
        let path = format!("/containers/{}/stats?stream=false", query_escape(id));
        async move { client.get_json(&path).await }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_as_docker_stats_shows_it() {
        let s = json!({
            "id": "abcdefghijklmnopqrstuvwxy",
            "name": "/web.1.abcdefghijklmnopqrstuvwxy",
            "cpu_stats": {"cpu_usage": {"total_usage": 3_000_000u64}, "system_cpu_usage": 200_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000u64}, "system_cpu_usage": 100_000_000u64},
            "memory_stats": {"usage": 4_194_304u64, "limit": 67_108_864u64, "stats": {"total_inactive_file": 1_048_576u64}},
            "networks": {"eth0": {"rx_bytes": 1200, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}, {"op": "Write", "value": 0}]},
            "pids_stats": {"current": 1},
        });
        let r = row(&s, false);
        assert_eq!(r["ID"], "abcdefghijkl");
        assert_eq!(r["Name"], "web.1.abcdefghijklmnopqrstuvwxy");
        assert_eq!(r["CPUPerc"], "4.00%");
        assert_eq!(r["MemUsage"], "3MiB / 64MiB");
        assert_eq!(r["MemPerc"], "4.69%");
        assert_eq!(r["NetIO"], "1.2kB / 0B");
        assert_eq!(r["BlockIO"], "4.1kB / 0B");
        assert_eq!(r["PIDs"], "1");
    }

    #[test]
    fn no_precpu_is_zero_percent() {
        let s = json!({"cpu_stats": {"cpu_usage": {"total_usage": 5}, "system_cpu_usage": 10, "online_cpus": 1},
            "precpu_stats": {"cpu_usage": {"total_usage": 5}}});
        assert_eq!(cpu_percent(&s), 0.0);
    }
}
