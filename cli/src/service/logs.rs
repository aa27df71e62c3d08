//! `swarm service logs [-f] [--tail N] [--since T] SERVICE|TASK`: the multiplexed log
//! stream of every task on every node, each line prefixed `web.1.0qvfv6reshj0@node    | `
//! as the docker CLI does. What the manager could not read (a node down) ends the stream
//! with a system-error frame, printed as the docker CLI prints it (`error from daemon in
//! stream: Error grabbing logs: warning: incomplete log stream. ...`), exit status 1.
//!
//! ```text
//!   GET /services/{id}/logs?details=1&follow=1&stderr=1&stdout=1&tail=all
//!   frames: [stream 1|2, 0, 0, 0, len u32 BE] payload
//!   payload: "com.docker.swarm.node.id=N,com.docker.swarm.service.id=S,com.docker.swarm.task.id=T msg"
//! ```

use std::collections::HashMap;

use anyhow::Result;
use clap::Args;
use http::Method;
use serde_json::Value;

use super::{get_service, truncate_id};
use crate::client::{query_escape, Client};
use crate::logs::{write, Frames, LogFlags};
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub log: LogFlags,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Do not include task IDs in output
    #[arg(long = "no-task-ids")]
    pub no_task_ids: bool,
    /// Do not neatly format logs
    #[arg(long)]
    pub raw: bool,
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Do not map IDs to Names in output
    #[arg(long = "no-resolve")]
    pub no_resolve: bool,
    /// SERVICE
    #[arg(value_name = "SERVICE")]
    pub service: String,
}

/// The log context of one line: (node, service, task) IDs, the message after them.
pub fn parse_line(line: &str, timestamps: bool) -> Option<(String, [String; 3], String)> {
    let (ts, rest) = if timestamps {
        let (t, r) = line.split_once(' ')?;
        (format!("{t} "), r)
    } else {
        (String::new(), line)
    };
    let (details, msg) = rest.split_once(' ').unwrap_or((rest, ""));
    let mut ids: [String; 3] = Default::default();
    for kv in details.split(',') {
        let (k, v) = kv.split_once('=')?;
        match k {
            "com.docker.swarm.node.id" => ids[0] = v.to_string(),
            "com.docker.swarm.service.id" => ids[1] = v.to_string(),
            "com.docker.swarm.task.id" => ids[2] = v.to_string(),
            _ => {}
        }
    }
    Some((ts, ids, msg.to_string()))
}

/// `web.1.0qvfv6reshj0@vm` plus the padding that aligns slots of different widths.
pub fn prefix(
    service: &str,
    slot: u64,
    task_id: &str,
    node: &str,
    max_slot_digits: usize,
    a: &LogsArgs,
) -> String {
    let mut name = format!("{service}.{slot}");
    if !a.no_task_ids {
        name += ".";
        name += &if a.no_trunc {
            task_id.to_string()
        } else {
            truncate_id(task_id)
        };
    }
    let pad = max_slot_digits.saturating_sub(slot.to_string().len());
    format!("{name}@{node}{}", " ".repeat(pad))
}

/// What `service logs X` reads: a service, else a task (docker/cli's order), as the
/// service (for its TTY and replica count) and the logs path.
async fn resolve_target(client: &Client, target: &str) -> Result<(Value, String)> {
    let escaped = query_escape(target);
    match get_service(client, target).await {
        Ok(service) => return Ok((service, format!("/services/{escaped}/logs"))),
        Err(e) if !super::is_not_found(&e) => return Err(e),
        Err(_) => {}
    }
    match client.get_json(&format!("/tasks/{escaped}")).await {
        Ok(task) => {
            let sid = task["ServiceID"].as_str().unwrap_or_default().to_string();
            let service = get_service(client, &sid).await?;
            Ok((service, format!("/tasks/{escaped}/logs")))
        }
        Err(e) if super::is_not_found(&e) => {
            Err(UserError(format!("no such task or service: {target}")).into())
        }
        Err(e) => Err(e),
    }
}

pub async fn run(client: &Client, a: LogsArgs) -> Result<()> {
    let (service, path) = resolve_target(client, &a.service).await?;
    let tty = service["Spec"]["TaskTemplate"]["ContainerSpec"]["TTY"]
        .as_bool()
        .unwrap_or(false);
    let replicas = service["Spec"]["Mode"]["Replicated"]["Replicas"]
        .as_u64()
        .unwrap_or(1);
    let max_digits = replicas.to_string().len();
    let q = format!("details=1&{}", a.log.query()?);
    let resp = client
        .call(Method::GET, &format!("{path}?{q}"), None, None)
        .await?;
    let mut frames = Frames::new(resp.into_body(), tty);
    let mut names: HashMap<[String; 3], String> = HashMap::new();
    while let Some(batch) = frames.next().await? {
        for (stream, payload) in batch {
            let text = String::from_utf8_lossy(&payload).to_string();
            for line in text.split_inclusive('\n') {
                let out = match parse_line(line, a.log.timestamps) {
                    Some((ts, ids, msg)) if !a.raw => {
                        if !names.contains_key(&ids) {
                            let p = resolve(client, &ids, max_digits, &a).await;
                            names.insert(ids.clone(), p);
                        }
                        format!("{ts}{}    | {msg}", names[&ids])
                    }
                    Some((ts, _, msg)) => format!("{ts}{msg}"),
                    None => line.to_string(),
                };
                write(stream, out.as_bytes());
            }
        }
    }
    Ok(())
}

async fn resolve(client: &Client, ids: &[String; 3], max_digits: usize, a: &LogsArgs) -> String {
    let slot = match client.get_json(&format!("/tasks/{}", ids[2])).await {
        Ok(t) => t["Slot"].as_u64().unwrap_or(0),
        Err(_) => 0,
    };
    if a.no_resolve {
        return prefix(&ids[1], slot, &ids[2], &ids[0], max_digits, a);
    }
    let node = match client.get_json(&format!("/nodes/{}", ids[0])).await {
        Ok(n) => n["Description"]["Hostname"]
            .as_str()
            .unwrap_or(&ids[0])
            .to_string(),
        Err(_) => ids[0].clone(),
    };
    let service = match client.get_json(&format!("/services/{}", ids[1])).await {
        Ok(s) => s["Spec"]["Name"].as_str().unwrap_or(&ids[1]).to_string(),
        Err(_) => ids[1].clone(),
    };
    prefix(&service, slot, &ids[2], &node, max_digits, a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::demux;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: LogsArgs,
    }

    #[test]
    fn frames_lines_and_prefix_like_docker() {
        let line = b"com.docker.swarm.node.id=z0zdzsttw6s52d3mjc6ya9h92,com.docker.swarm.service.id=lv63s0fjsbozirw7b3ykgpz9r,com.docker.swarm.task.id=206ceen0zatem9j1szq9jnudr hello 966a4df9a963\n";
        let mut buf = vec![1, 0, 0, 0];
        buf.extend_from_slice(&(line.len() as u32).to_be_bytes());
        buf.extend_from_slice(line);
        buf.extend_from_slice(&[2, 0, 0]); // a partial next header stays
        let (frames, used) = demux(&buf);
        assert_eq!(frames.len(), 1);
        assert_eq!(used, 8 + line.len());
        let (_, ids, msg) = parse_line(std::str::from_utf8(&frames[0].1).unwrap(), false).unwrap();
        assert_eq!(ids[2], "206ceen0zatem9j1szq9jnudr");
        let a = T::parse_from(["t", "lg"]).a;
        let p = prefix("lg", 2, &ids[2], "vm", 1, &a);
        let expected = include_str!("../../tests/fixtures/logs_lg.txt")
            .lines()
            .next()
            .unwrap()
            .to_string();
        assert_eq!(format!("{p}    | {msg}"), expected + "\n");
    }
}
