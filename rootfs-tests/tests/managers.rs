//! Managers beyond the acceptance run of `cluster.rs` (netns hosts, real swarmd): the
//! advertise address found as dockerd finds it, and the leader demoted through itself.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use rootfs_tests::cluster::Cluster;
use rootfs_tests::swarmd::wait_for;
use serde_json::Value;

/// A cluster port other than the harness' flags (`IP:2377`), so that `--listen-addr
/// 0.0.0.0:P` is what the request gives and no advertise address is set anywhere.
const PORT: u16 = 2378;

/// `node ls` on host `i`: hostname -> manager status.
fn manager_status(c: &Cluster, i: usize) -> Result<BTreeMap<String, String>> {
    let out =
        c.host(i)
            .swarm_ok(&["node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}"])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next().unwrap_or("").to_string()))
        })
        .collect())
}

/// The manager addresses the swarm has, by hostname, as host `i` sees them.
fn manager_addrs(c: &Cluster, i: usize) -> Result<BTreeMap<String, String>> {
    let nodes = c.host(i).ok("GET", "/nodes", None)?;
    Ok(nodes
        .as_array()
        .context("nodes")?
        .iter()
        .filter_map(|n| {
            Some((
                n["Description"]["Hostname"].as_str()?.to_string(),
                n["ManagerStatus"]["Addr"].as_str()?.to_string(),
            ))
        })
        .collect())
}

fn ip_in(c: &Cluster, i: usize, args: &[&str]) -> Result<()> {
    let st = Command::new("ip")
        .args(["-n", &c.host(i).netns])
        .args(args)
        .status()?;
    ensure!(st.success(), "ip -n {} {args:?}", c.host(i).netns);
    Ok(())
}

#[test]
fn advertise_address_found_and_the_leader_demoted() -> Result<()> {
    let c = Cluster::new(3)?;
    let listen = format!("0.0.0.0:{PORT}");
    let addr = |i: usize| format!("{}:{PORT}", c.ip(i));

    // Two addresses on h0's only interface: init without --advertise-addr is refused
    // in Docker's words; with one, that one is advertised.
    ip_in(&c, 0, &["addr", "add", "10.255.254.1/32", "dev", "eth0"])?;
    let r = c.host(0).swarm(&["init", "--listen-addr", &listen])?;
    ensure!(
        !r.ok
            && r.stderr.trim_end().ends_with(&format!(
                "could not choose an IP address to advertise since this system has multiple addresses on interface eth0 ({} and 10.255.254.1)",
                c.ip(0)
            )),
        "init on an ambiguous host: {}{}",
        r.stdout,
        r.stderr
    );
    ip_in(&c, 0, &["addr", "del", "10.255.254.1/32", "dev", "eth0"])?;
    c.host(0).swarm_ok(&["init", "--listen-addr", &listen])?;
    let token = c.host(0).swarm_ok(&["join-token", "-q", "manager"])?;
    // h1 names its interface; h2 gives nothing and is found as h0 was.
    c.host(1).swarm_ok(&[
        "join",
        "--token",
        token.trim(),
        "--listen-addr",
        &listen,
        "--advertise-addr",
        "eth0",
        &addr(0),
    ])?;
    c.host(2).swarm_ok(&[
        "join",
        "--token",
        token.trim(),
        "--listen-addr",
        &listen,
        &addr(0),
    ])?;
    let want: BTreeMap<String, String> = (0..3).map(|i| (format!("h{i}"), addr(i))).collect();
    wait_for(
        "three managers at their addresses",
        Duration::from_secs(60),
        || {
            let ms = manager_status(&c, 0)?;
            let ok = manager_addrs(&c, 0)? == want
                && ms.get("h0").map(String::as_str) == Some("Leader")
                && ms.values().filter(|s| *s == "Reachable").count() == 2;
            Ok(ok.then_some(()))
        },
    )?;

    // The leader demotes itself: acknowledged at once; it leaves Raft and steps down,
    // another manager leads, and h0 ends up a worker with its manager half stopped.
    let out = c.host(0).swarm_ok(&["node", "demote", "h0"])?;
    ensure!(out == "Manager h0 demoted in the swarm.\n", "demote: {out}");
    let ms = wait_for(
        "h0 a worker, another leader",
        Duration::from_secs(60),
        || {
            let ms = manager_status(&c, 1)?;
            let ok = ms.get("h0").is_some_and(String::is_empty)
                && ms.values().filter(|s| *s == "Leader").count() == 1
                && ms.values().filter(|s| *s == "Reachable").count() == 1;
            Ok(ok.then_some(ms))
        },
    )
    .with_context(|| format!("h0's log:\n{}", c.host(0).log_tail()))?;
    ensure!(ms.len() == 3, "node ls: {ms:?}");
    wait_for(
        "h0 refuses the manager API",
        Duration::from_secs(30),
        || {
            let r = c.host(0).swarm(&["node", "ls"])?;
            Ok((!r.ok && r.stderr.contains("This node is not a swarm manager")).then_some(()))
        },
    )?;
    let log = std::fs::read_to_string(c.host(0).config.dir.join("swarmd.log"))?;
    ensure!(
        log.matches("manager stopped: its loop ends").count() == 2,
        "the demoted manager's loops did not end:\n{}",
        c.host(0).log_tail()
    );
    ensure!(
        !c.host(0).data.join("raft").exists(),
        "the demoted manager kept its Raft files"
    );

    // The two managers left still commit, and the demoted leader takes work.
    let leader = (1..3)
        .find(|&i| ms.get(&format!("h{i}")).map(String::as_str) == Some("Leader"))
        .context("a leader")?;
    c.host(3 - leader).swarm_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "after",
        "--mode",
        "global",
        "--stop-signal",
        "SIGKILL",
        &c.image("1"),
        "sleep",
        "1d",
    ])?;
    wait_for(
        "a global task on every node",
        Duration::from_secs(60),
        || {
            let running = c
                .host(leader)
                .tasks("after")?
                .iter()
                .filter(|t| t["Status"]["State"] == "running")
                .count();
            Ok((running == 3).then_some(()))
        },
    )?;
    let info: Value = c.host(0).ok("GET", "/info", None)?;
    ensure!(
        info["Swarm"]["ControlAvailable"] == false && info["Swarm"]["LocalNodeState"] == "active",
        "h0's info: {}",
        info["Swarm"]
    );
    Ok(())
}
