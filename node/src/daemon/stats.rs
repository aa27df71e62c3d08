//! `GET /containers/{id}/stats?stream=&one-shot=`: moby's `StatsJSON` from the
//! container's cgroup (see `swarm_runtime::container::cgroup`), the host's `/proc/stat`
//! and the container's network namespace (`/proc/<pid>/net/dev`).
//!
//! ```text
//!  sample (cgroup + /proc) ──1 s──▶ sample ──▶ {cpu_stats, precpu_stats, ...}  (stream:
//!                                               one object a second, as dockerd sends)
//! ```
//!
//! `one-shot` answers at once with an empty `precpu_stats`; otherwise the first answer
//! waits one second so that the CLI can work out a CPU percentage.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{json, Value};
use swarm_runtime::container::cgroup::{self, CgroupStats};
use swarm_runtime::container::Status;

use super::Node;
use crate::api::{ApiError, Reply};

/// One interface's counters, from `/proc/<pid>/net/dev`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetDev {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Everything one stats object is made of, read at one moment.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub read: Option<DateTime<Utc>>,
    pub cgroup: CgroupStats,
    /// The host's CPU time, nanoseconds (`/proc/stat`'s first line).
    pub system_ns: u64,
    pub online_cpus: u32,
    /// The host's memory: the limit Docker shows for a container without one.
    pub mem_total: u64,
    pub networks: BTreeMap<String, NetDev>,
}

/// `/proc/stat`: the `cpu` line's ticks (user..steal) in nanoseconds, and the number
/// of `cpuN` lines.
pub fn parse_proc_stat(text: &str) -> (u64, u32) {
    // USER_HZ is 100 on every Linux Docker runs on.
    const NS_PER_TICK: u64 = 10_000_000;
    let mut total = 0;
    let mut cpus = 0;
    for l in text.lines() {
        let mut it = l.split_whitespace();
        match it.next() {
            Some("cpu") => {
                total = it
                    .take(8)
                    .filter_map(|n| n.parse::<u64>().ok())
                    .sum::<u64>()
                    * NS_PER_TICK;
            }
            Some(c) if c.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (total, cpus)
}

/// `/proc/meminfo`'s `MemTotal` in bytes.
pub fn parse_mem_total(text: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let kb = l.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?;
            kb.trim().parse::<u64>().ok()
        })
        .unwrap_or(0)
        * 1024
}

/// `/proc/<pid>/net/dev` without `lo`, as Docker lists a container's interfaces.
pub fn parse_net_dev(text: &str) -> BTreeMap<String, NetDev> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim();
            if name == "lo" {
                return None;
            }
            let n: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if n.len() < 16 {
                return None;
            }
            Some((
                name.to_string(),
                NetDev {
                    rx_bytes: n[0],
                    rx_packets: n[1],
                    rx_errors: n[2],
                    rx_dropped: n[3],
                    tx_bytes: n[8],
                    tx_packets: n[9],
                    tx_errors: n[10],
                    tx_dropped: n[11],
                },
            ))
        })
        .collect()
}

fn cpu_stats(s: &Sample) -> Value {
    let c = &s.cgroup;
    let mut usage = json!({
        "total_usage": c.cpu_usage_ns,
        "usage_in_kernelmode": c.cpu_system_ns,
        "usage_in_usermode": c.cpu_user_ns,
    });
    if !c.percpu_ns.is_empty() {
        usage["percpu_usage"] = json!(c.percpu_ns);
    }
    json!({
        "cpu_usage": usage,
        "system_cpu_usage": s.system_ns,
        "online_cpus": s.online_cpus,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

/// moby's `StatsJSON` for `cur`, with `pre` as its `precpu_stats` (empty when None).
pub fn stats_json(name: &str, id: &str, cur: &Sample, pre: Option<&Sample>) -> Value {
    let zero = "0001-01-01T00:00:00Z".to_string();
    let time = |t: Option<DateTime<Utc>>| {
        t.map_or(zero.clone(), |t| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        })
    };
    let c = &cur.cgroup;
    let mut memory = json!({
        "usage": c.memory_usage,
        "stats": c.memory_stat,
        "limit": match (c.memory_limit, cur.mem_total) {
            (Some(l), 0) => l,
            (Some(l), host) => l.min(host),
            (None, host) => host,
        },
    });
    if !c.v2 {
        memory["max_usage"] = json!(c.memory_max_usage);
    }
    let mut pids = json!({ "current": c.pids_current });
    if let Some(l) = c.pids_limit {
        pids["limit"] = json!(l);
    }
    let blkio: Value = if c.io_service_bytes.is_empty() {
        Value::Null
    } else {
        c.io_service_bytes
            .iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
            .collect()
    };
    let networks: serde_json::Map<String, Value> = cur
        .networks
        .iter()
        .map(|(k, n)| {
            (
                k.clone(),
                json!({
                    "rx_bytes": n.rx_bytes, "rx_packets": n.rx_packets,
                    "rx_errors": n.rx_errors, "rx_dropped": n.rx_dropped,
                    "tx_bytes": n.tx_bytes, "tx_packets": n.tx_packets,
                    "tx_errors": n.tx_errors, "tx_dropped": n.tx_dropped,
                }),
            )
        })
        .collect();
    let precpu = match pre {
        Some(p) => cpu_stats(p),
        None => json!({
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        }),
    };
    let mut v = json!({
        "name": format!("/{name}"),
        "id": id,
        "read": time(cur.read),
        "preread": time(pre.and_then(|p| p.read)),
        "pids_stats": pids,
        "blkio_stats": {
            "io_service_bytes_recursive": blkio,
            "io_serviced_recursive": null,
            "io_queue_recursive": null,
            "io_service_time_recursive": null,
            "io_wait_time_recursive": null,
            "io_merged_recursive": null,
            "io_time_recursive": null,
            "sectors_recursive": null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_stats(cur),
        "precpu_stats": precpu,
        "memory_stats": memory,
    });
    if !networks.is_empty() {
        v["networks"] = Value::Object(networks);
    }
    v
}

/// Reads one sample of a container's cgroup and, while it runs, its network namespace.
fn sample(cgroup_path: &str, pid: Option<i32>) -> Sample {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let (system_ns, online_cpus) = parse_proc_stat(&read("/proc/stat"));
    Sample {
        read: Some(Utc::now()),
        cgroup: cgroup::stats(cgroup_path),
        system_ns,
        online_cpus,
        mem_total: parse_mem_total(&read("/proc/meminfo")),
        networks: pid
            .map(|p| parse_net_dev(&read(&format!("/proc/{p}/net/dev"))))
            .unwrap_or_default(),
    }
}

impl Node {
    pub(super) async fn container_stats(
        &self,
        key: &str,
        stream: bool,
        one_shot: bool,
    ) -> Result<Reply, ApiError> {
        let c = self.find_container(key).await?;
        let id = c.st.id.clone();
        let name = c.name.clone();
        let running = c.st.status == Status::Running;
        let path = self.rt.cgroup_path(&id);
        let pid = c.st.pid.filter(|_| running);
        let first = sample(&path, pid);
        if !running {
            // A stopped container has no counters left: one object of zeros, as dockerd.
            let v = stats_json(&name, &id, &Sample::default(), None);
            return Ok(Reply::Json(200, v));
        }
        if !stream {
            if one_shot {
                return Ok(Reply::Json(200, stats_json(&name, &id, &first, None)));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let cur = sample(&path, pid);
            return Ok(Reply::Json(200, stats_json(&name, &id, &cur, Some(&first))));
        }
        // One object a second until the client goes or the container ends.
        let rt = self.rt.clone();
        let ticks = futures::stream::unfold(first, move |pre| {
            let path = path.clone();
            let rt = rt.clone();
            let id = id.clone();
            let name = name.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let alive = rt
                    .state(&id)
                    .await
                    .is_ok_and(|s| s.status == Status::Running);
                if !alive {
                    return None;
                }
                let cur = sample(&path, pid);
                let mut line = serde_json::to_vec(&stats_json(&name, &id, &cur, Some(&pre)))
                    .unwrap_or_default();
                line.push(b'\n');
                Some((Ok(bytes::Bytes::from(line)), cur))
            }
        });
        Ok(Reply::JsonLines(ticks.boxed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_and_meminfo() {
        let (ns, cpus) = parse_proc_stat(
            "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\ncpu1 50 0 25 400 25 0 0 0 0 0\nintr 1\n",
        );
        assert_eq!((ns, cpus), (1000 * 10_000_000, 2));
        assert_eq!(
            parse_mem_total("MemTotal:       2048 kB\nMemFree: 1 kB\n"),
            2 << 20
        );
    }

    #[test]
    fn net_dev_without_lo() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    1500      10    1    2    0     0          0         0      700       5    0    3    0     0       0          0
";
        let n = parse_net_dev(text);
        assert_eq!(n.len(), 1);
        let e = &n["eth0"];
        assert_eq!(
            (e.rx_bytes, e.rx_packets, e.rx_errors, e.rx_dropped),
            (1500, 10, 1, 2)
        );
        assert_eq!((e.tx_bytes, e.tx_packets, e.tx_dropped), (700, 5, 3));
    }

    fn a_sample(cpu: u64, system: u64) -> Sample {
        Sample {
            read: Some(DateTime::from_timestamp(1_700_000_000, 0).unwrap()),
            cgroup: CgroupStats {
                cpu_usage_ns: cpu,
                memory_usage: 8 << 20,
                memory_limit: Some(32 << 20),
                memory_stat: [("total_inactive_file".to_string(), 1 << 20)].into(),
                pids_current: 2,
                ..Default::default()
            },
            system_ns: system,
            online_cpus: 2,
            mem_total: 1 << 30,
            networks: BTreeMap::new(),
        }
    }

    #[test]
    fn stats_json_as_the_cli_reads_it() {
        let pre = a_sample(1_000, 10_000);
        let cur = a_sample(3_000, 20_000);
        let v = stats_json("web.1.x", "x", &cur, Some(&pre));
        assert_eq!(v["name"], "/web.1.x");
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 3_000);
        assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 1_000);
        assert_eq!(v["precpu_stats"]["system_cpu_usage"], 10_000);
        assert_eq!(v["cpu_stats"]["online_cpus"], 2);
        assert_eq!(v["memory_stats"]["usage"], 8 << 20);
        assert_eq!(v["memory_stats"]["limit"], 32 << 20);
        assert_eq!(v["memory_stats"]["stats"]["total_inactive_file"], 1 << 20);
        assert_eq!(v["pids_stats"]["current"], 2);
        assert!(v["pids_stats"].get("limit").is_none());
        assert_eq!(v["read"], "2023-11-14T22:13:20.000000000Z");
        assert!(v.get("networks").is_none());
        // No precpu (one-shot): the zero time and no system usage.
        let once = stats_json("web.1.x", "x", &cur, None);
        assert_eq!(once["preread"], "0001-01-01T00:00:00Z");
        assert!(once["precpu_stats"].get("system_cpu_usage").is_none());
    }

    #[test]
    fn no_memory_limit_shows_the_hosts_memory() {
        let mut s = a_sample(0, 0);
        s.cgroup.memory_limit = None;
        assert_eq!(
            stats_json("n", "i", &s, None)["memory_stats"]["limit"],
            1 << 30
        );
    }
}
