//! `swarm-bench cluster`: failover and worker loss on netns hosts (the multi-host harness
//! of `rootfs-tests`), three managers and one worker, real swarmd over mutual TLS.
//!
//! - failover: `kill -9` of the leader's swarmd until a `service scale` sent to a
//!   follower commits (the follower forwards it to whoever leads by then);
//! - worker loss: `kill -9` of the worker's swarmd until every task it ran is Running on
//!   another node, with Swarm's default 5 s heartbeat and with a 1 s heartbeat;
//! - idle RSS of a manager's and of the worker's swarmd.
//!
//! The service has `--restart-delay 0s`: with Docker's default 5 s delay, replacing a
//! lost node's tasks waits 5 s more after the node is Down (swarmkit does the same).
//!
//! The anchor is swarmkit's timers (election after 10 ticks of 1 s; a node Down after
//! about 15 s): no Docker Swarm peer runs here, one engine cannot make a multi-node swarm.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rootfs_tests::cluster::Cluster;
use rootfs_tests::swarmd::wait_for;
use serde_json::{json, Value};

use crate::util::rss_kib;

const WORKER: usize = 3;

fn join(c: &Cluster, i: usize, token: &str) -> Result<()> {
    let h = c.host(i);
    h.ok(
        "POST",
        "/swarm/join",
        Some(&json!({"ListenAddr": h.addr(), "AdvertiseAddr": h.addr(),
                     "RemoteAddrs": [c.host(0).addr()], "JoinToken": token})),
    )?;
    Ok(())
}

fn node_id(c: &Cluster, i: usize) -> Result<String> {
    Ok(c.host(i).ok("GET", "/info", None)?["Swarm"]["NodeID"]
        .as_str()
        .context("node id")?
        .to_string())
}

/// The hosts (by index) whose nodes lead and follow, as manager `via` sees them.
fn leader(c: &Cluster, via: usize) -> Result<Option<usize>> {
    let nodes = c.host(via).ok("GET", "/nodes", None)?;
    let leader_id = nodes
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["ManagerStatus"]["Leader"] == true)
        .and_then(|n| n["ID"].as_str().map(str::to_string));
    Ok(match leader_id {
        Some(id) => (0..c.len()).find(|&i| node_id(c, i).ok().as_deref() == Some(&id)),
        None => None,
    })
}

fn running_on(c: &Cluster, via: usize, node: &str) -> Result<(usize, usize)> {
    let tasks = c.host(via).tasks("web")?;
    let running: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["DesiredState"] == "running" && t["Status"]["State"] == "running")
        .collect();
    let on = running.iter().filter(|t| t["NodeID"] == node).count();
    Ok((running.len(), on))
}

pub fn run() -> Result<()> {
    let mut c = Cluster::new(4)?;
    c.host(0)
        .swarm_ok(&["init", "--advertise-addr", &c.host(0).addr()])?;
    let swarm = c.host(0).ok("GET", "/swarm", None)?;
    let token = |k: &str| swarm["JoinTokens"][k].as_str().unwrap_or("").to_string();
    join(&c, 1, &token("Manager"))?;
    join(&c, 2, &token("Manager"))?;
    join(&c, WORKER, &token("Worker"))?;
    wait_for("4 Ready nodes", Duration::from_secs(60), || {
        let n = c.host(0).ok("GET", "/nodes", None)?;
        let ready = n
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["Status"]["State"] == "ready")
            .count();
        Ok((ready == 4).then_some(()))
    })?;
    let image = c.image("1");
    c.host(0).swarm_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--replicas",
        "8",
        "--stop-signal",
        "SIGKILL",
        "--restart-delay",
        "0s",
        &image,
        "sleep",
        "1d",
    ])?;
    c.host(0).wait_running("web", 8)?;
    settle();
    let mgr_rss = rss_kib(c.host(0).swarmd_pid().context("pid")?);
    let wrk_rss = rss_kib(c.host(WORKER).swarmd_pid().context("pid")?);

    // Failover.
    let old = leader(&c, 1)?.context("a leader")?;
    let via = (0..3).find(|&i| i != old).context("a follower")?;
    c.kill9(old)?;
    let t = Instant::now();
    wait_for(
        "a write through a follower",
        Duration::from_secs(60),
        || {
            let r = c.host(via).swarm(&["service", "scale", "-d", "web=9"])?;
            Ok(r.ok.then_some(()))
        },
    )?;
    let failover = t.elapsed();
    c.restart(old)?;
    let lead = wait_for("a leader", Duration::from_secs(30), || leader(&c, via))?;
    c.host(lead).wait_running("web", 9)?;

    // Worker loss, default heartbeat then 1 s.
    let mut loss = Vec::new();
    for period_s in [5u64, 1] {
        let lead = wait_for("a leader", Duration::from_secs(30), || leader(&c, via))?;
        let s = c.host(lead).ok("GET", "/swarm", None)?;
        let mut spec = s["Spec"].clone();
        spec["Dispatcher"]["HeartbeatPeriod"] = json!(period_s * 1_000_000_000);
        let version = s["Version"]["Index"].as_u64().context("version")?;
        c.host(lead).ok(
            "POST",
            &format!("/swarm/update?version={version}"),
            Some(&spec),
        )?;
        let worker = node_id(&c, WORKER)?;
        wait_for(
            "the worker Ready with tasks",
            Duration::from_secs(60),
            || {
                let (all, on) = running_on(&c, lead, &worker)?;
                Ok((all == 9 && on > 0).then_some(()))
            },
        )?;
        // A new session picks the period up at its next message; let it settle.
        std::thread::sleep(Duration::from_secs(2 * period_s));
        c.kill9(WORKER)?;
        let t = Instant::now();
        wait_for(
            "the worker's tasks Running elsewhere",
            Duration::from_secs(120),
            || {
                let (all, on) = running_on(&c, lead, &worker)?;
                Ok((all == 9 && on == 0).then_some(()))
            },
        )?;
        loss.push((period_s, t.elapsed()));
        c.restart(WORKER)?;
    }

    println!("cluster on netns hosts: 3 managers + 1 worker, 9 replicas of busybox sleep, --restart-delay 0s\n");
    println!(
        "leader kill -9 -> write committed via a follower   {:>8.0} ms   (goal < 2000 ms; swarmkit: election after 10 x 1 s ticks)",
        failover.as_secs_f64() * 1000.0
    );
    for (p, d) in &loss {
        println!(
            "worker kill -9 -> its tasks Running elsewhere, heartbeat {p} s   {:>8.0} ms   ({})",
            d.as_secs_f64() * 1000.0,
            if *p == 1 {
                "goal < 5000 ms"
            } else {
                "swarmkit: Down after ~15 s, then the restart delay"
            }
        );
    }
    println!(
        "idle RSS: manager swarmd {:.1} MiB, worker swarmd {:.1} MiB",
        mgr_rss as f64 / 1024.0,
        wrk_rss as f64 / 1024.0
    );
    Ok(())
}

fn settle() {
    std::thread::sleep(Duration::from_secs(3));
}
