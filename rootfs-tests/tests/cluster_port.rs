//! The cluster port (issue 15, item 6): a swarmd that has not initialised or joined a
//! swarm listens on no TCP port; after `swarm init` it listens on its `--listen-addr`;
//! a second swarmd on the same machine told to use that port says so clearly, in
//! Docker's words, and the first goes on.

use std::process::Command;

use anyhow::{ensure, Context, Result};
use rootfs_tests::swarmd::Node;
use serde_json::json;

/// The TCP ports `pid` listens on (`ss -ltnpH`).
fn listening(pid: u32) -> Result<Vec<String>> {
    let out = Command::new("ss").args(["-ltnpH"]).output()?;
    ensure!(out.status.success(), "ss -ltnp failed");
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect())
}

#[test]
fn the_cluster_port_opens_at_init_and_a_clash_is_named() -> Result<()> {
    let a = Node::start("port-a")?;
    let pid = a.swarmd_pid().context("swarmd pid")?;
    let addr = a.config.addr.clone().context("listen addr")?;
    ensure!(
        listening(pid)?.is_empty(),
        "listening before init: {:?}",
        listening(pid)?
    );
    a.swarm_ok(&["init", "--advertise-addr", "127.0.0.1"])?;
    ensure!(
        listening(pid)? == vec![addr.clone()],
        "after init, {:?} rather than {addr}",
        listening(pid)?
    );

    let b = Node::start("port-b")?;
    let (code, v) = b.call(
        "POST",
        "/swarm/init",
        Some(&json!({"ListenAddr": addr, "AdvertiseAddr": addr})),
    )?;
    let message = v["message"].as_str().unwrap_or_default();
    ensure!(
        code >= 400 && message == format!("listen tcp {addr}: bind: address already in use"),
        "the second init on {addr}: {code} {v}"
    );
    ensure!(
        listening(b.swarmd_pid().context("pid")?)?.is_empty(),
        "b listens after its refused init"
    );
    // The first one is unharmed, and b can init on a port of its own.
    a.swarm_ok(&["node", "ls"])?;
    b.swarm_ok(&["init", "--advertise-addr", "127.0.0.1"])?;
    Ok(())
}

/// A node that left its swarm is a new node the next time (issue 15, item 5): Docker
/// gives it a new ID at the next init or join.
#[test]
fn a_node_that_left_inits_with_a_new_id() -> Result<()> {
    let node = Node::start("new-id")?;
    let id = |n: &Node| -> Result<String> {
        Ok(n.ok("GET", "/info", None)?["Swarm"]["NodeID"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    };
    node.swarm_ok(&["init", "--advertise-addr", "127.0.0.1"])?;
    let first = id(&node)?;
    ensure!(first.len() == 25, "node ID {first:?}");
    node.swarm_ok(&["swarm", "leave", "--force"])?;
    ensure!(id(&node)?.is_empty(), "a NodeID after leaving");
    node.swarm_ok(&["init", "--advertise-addr", "127.0.0.1"])?;
    let second = id(&node)?;
    ensure!(
        second.len() == 25 && second != first,
        "after leave and init: {first} then {second}"
    );
    let ls = node.swarm_ok(&["node", "ls", "-q"])?;
    ensure!(ls.trim() == second, "node ls -q: {ls}");
    Ok(())
}
