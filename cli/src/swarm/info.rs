//! `swarm info`: the `Swarm:` section of `docker info`, from GET /info.

use std::time::Duration;

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use crate::client::Client;
use crate::format::template::Template;
use crate::units::human::human_duration;

#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

fn human_ns(v: &Value) -> String {
    human_duration(Duration::from_nanos(v.as_u64().unwrap_or(0)))
}

/// Renders Docker's `prettyPrintSwarmInfo` for `info` (the GET /info answer).
pub fn render_swarm_info(info: &Value) -> String {
    let sw = &info["Swarm"];
    let state = s(&sw["LocalNodeState"]);
    let mut o = format!(" Swarm: {state}\n");
    if state == "inactive" || state == "locked" || state.is_empty() {
        return o;
    }
    o += &format!("  NodeID: {}\n", s(&sw["NodeID"]));
    if let Some(e) = sw["Error"].as_str().filter(|e| !e.is_empty()) {
        o += &format!("  Error: {e}\n");
    }
    let manager = sw["ControlAvailable"].as_bool().unwrap_or(false);
    o += &format!("  Is Manager: {manager}\n");
    if manager {
        let c = &sw["Cluster"];
        let spec = &c["Spec"];
        o += &format!("  ClusterID: {}\n", s(&c["ID"]));
        o += &format!("  Managers: {}\n", s(&sw["Managers"]));
        o += &format!("  Nodes: {}\n", s(&sw["Nodes"]));
        if let Some(pools) = c["DefaultAddrPool"].as_array().filter(|p| !p.is_empty()) {
            let pools: Vec<String> = pools.iter().map(s).collect();
            o += &format!("  Default Address Pool: {}  \n", pools.join("  "));
            o += &format!("  SubnetSize: {}\n", s(&c["SubnetSize"]));
        }
        if c["DataPathPort"].as_u64().unwrap_or(0) > 0 {
            o += &format!("  Data Path Port: {}\n", s(&c["DataPathPort"]));
        }
        o += "  Orchestration:\n";
        let limit = spec["Orchestration"]["TaskHistoryRetentionLimit"]
            .as_i64()
            .unwrap_or(0);
        o += &format!("   Task History Retention Limit: {limit}\n");
        let raft = &spec["Raft"];
        o += "  Raft:\n";
        o += &format!(
            "   Snapshot Interval: {}\n",
            raft["SnapshotInterval"].as_u64().unwrap_or(0)
        );
        if let Some(k) = raft["KeepOldSnapshots"].as_u64() {
            o += &format!("   Number of Old Snapshots to Retain: {k}\n");
        }
        o += &format!(
            "   Heartbeat Tick: {}\n",
            raft["HeartbeatTick"].as_i64().unwrap_or(0)
        );
        o += &format!(
            "   Election Tick: {}\n",
            raft["ElectionTick"].as_i64().unwrap_or(0)
        );
        o += "  Dispatcher:\n";
        o += &format!(
            "   Heartbeat Period: {}\n",
            human_ns(&spec["Dispatcher"]["HeartbeatPeriod"])
        );
        o += "  CA Configuration:\n";
        o += &format!(
            "   Expiry Duration: {}\n",
            human_ns(&spec["CAConfig"]["NodeCertExpiry"])
        );
        o += &format!(
            "   Force Rotate: {}\n",
            spec["CAConfig"]["ForceRotate"].as_u64().unwrap_or(0)
        );
        if let Some(ext) = spec["CAConfig"]["ExternalCAs"]
            .as_array()
            .filter(|e| !e.is_empty())
        {
            o += "   External CAs:\n";
            for e in ext {
                o += &format!("     {}: {}\n", s(&e["Protocol"]), s(&e["URL"]));
            }
        }
        let autolock = spec["EncryptionConfig"]["AutoLockManagers"]
            .as_bool()
            .unwrap_or(false);
        o += &format!("  Autolock Managers: {autolock}\n");
        let rot = c["RootRotationInProgress"].as_bool().unwrap_or(false);
        o += &format!("  Root Rotation In Progress: {rot}\n");
    }
    o += &format!("  Node Address: {}\n", s(&sw["NodeAddr"]));
    if let Some(rm) = sw["RemoteManagers"].as_array().filter(|r| !r.is_empty()) {
        let mut addrs: Vec<String> = rm.iter().map(|m| s(&m["Addr"])).collect();
        addrs.sort();
        o += "  Manager Addresses:\n";
        for a in addrs {
            o += &format!("   {a}\n");
        }
    }
    o
}

pub async fn run(client: &Client, a: InfoArgs) -> Result<()> {
    let info = client.get_json("/info").await?;
    match a.format {
        Some(f) => println!("{}", Template::parse(&f)?.render(&info, false)?),
        None => print!("{}", render_swarm_info(&info)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swarm_section_like_docker_info() {
        let info: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/api_info.json")).unwrap();
        let text = include_str!("../../tests/fixtures/info.txt");
        let start = text.find(" Swarm: ").unwrap();
        let end = text.find(" Runtimes:").unwrap();
        assert_eq!(render_swarm_info(&info), &text[start..end]);
    }
}
