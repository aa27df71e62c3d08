//! Issue 5 end to end on real containers (netns hosts, `rootfs_tests::cluster`): a global
//! service follows a node that joins, a constraint on a node label places tasks, a task no
//! node fits stays Pending and says why in `service ps`, and a start-first update to a
//! spec whose health check fails is rolled back automatically.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use rootfs_tests::cluster::Cluster;
use rootfs_tests::swarmd::wait_for;
use serde_json::Value;

fn node_id(c: &Cluster, i: usize) -> Result<String> {
    Ok(c.host(i).ok("GET", "/info", None)?["Swarm"]["NodeID"]
        .as_str()
        .context("node id")?
        .to_string())
}

/// Running tasks of `service` by node ID.
fn running_nodes(c: &Cluster, service: &str) -> Result<Vec<String>> {
    let mut v: Vec<String> = c
        .host(0)
        .tasks(service)?
        .iter()
        .filter(|t| t["DesiredState"] == "running" && t["Status"]["State"] == "running")
        .map(|t| t["NodeID"].as_str().unwrap_or("").to_string())
        .collect();
    v.sort();
    Ok(v)
}

#[test]
fn global_constraints_pending_and_automatic_rollback() -> Result<()> {
    let c = Cluster::new(2)?;
    let m = c.host(0);
    m.swarm_ok(&["init", "--advertise-addr", &m.addr()])?;
    let n0 = node_id(&c, 0)?;
    let image = c.image("1");

    // A global service on a one-node swarm: one task; a node joins: one more, there.
    m.swarm_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "everywhere",
        "--mode",
        "global",
        "--stop-signal",
        "SIGKILL",
        &image,
        "sleep",
        "1d",
    ])?;
    wait_for("a global task on h0", Duration::from_secs(60), || {
        Ok((running_nodes(&c, "everywhere")? == [n0.clone()]).then_some(()))
    })?;
    let token = m.swarm_ok(&["join-token", "-q", "worker"])?;
    c.host(1).swarm_ok(&[
        "join",
        "--token",
        token.trim(),
        "--advertise-addr",
        &c.host(1).addr(),
        &m.addr(),
    ])?;
    let n1 = node_id(&c, 1)?;
    let mut both = vec![n0.clone(), n1.clone()];
    both.sort();
    wait_for(
        "a global task on each node",
        Duration::from_secs(60),
        || Ok((running_nodes(&c, "everywhere")? == both).then_some(())),
    )?;

    // A constraint on a node label.
    m.swarm_ok(&["node", "update", "--label-add", "zone=a", &n1])?;
    m.swarm_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "zoned",
        "--replicas",
        "2",
        "--constraint",
        "node.labels.zone==a",
        "--stop-signal",
        "SIGKILL",
        &image,
        "sleep",
        "1d",
    ])?;
    wait_for("both zoned tasks on h1", Duration::from_secs(60), || {
        Ok((running_nodes(&c, "zoned")? == [n1.clone(), n1.clone()]).then_some(()))
    })?;

    // No node fits: Pending, and `service ps` says why in Docker's words (quoted, as
    // docker's ERROR column is).
    m.swarm_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "nowhere",
        "--constraint",
        "node.labels.zone==b",
        &image,
        "sleep",
        "1d",
    ])?;
    let line = wait_for("the pending explanation", Duration::from_secs(30), || {
        let out = m.swarm_ok(&[
            "service",
            "ps",
            "--no-trunc",
            "--format",
            "{{.CurrentState}}|{{.Error}}",
            "nowhere",
        ])?;
        Ok(out
            .lines()
            .find(|l| l.contains("no suitable node"))
            .map(str::to_string))
    })?;
    ensure!(
        line.starts_with("Pending")
            && line.ends_with(
                "|\"no suitable node (scheduling constraints not satisfied on 2 nodes)\""
            ),
        "pending line: {line}"
    );

    // start-first update to a spec whose health check fails: rolled back automatically.
    m.swarm_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--replicas",
        "2",
        "--stop-signal",
        "SIGKILL",
        &image,
        "sleep",
        "1d",
    ])?;
    let before = m.wait_running("web", 2)?;
    let image2 = c.image("2");
    let out = m.swarm(&[
        "service",
        "update",
        "-d",
        "--image",
        &image2,
        "--health-cmd",
        "exit 1",
        "--health-interval",
        "1s",
        "--health-retries",
        "1",
        "--update-order",
        "start-first",
        "--update-failure-action",
        "rollback",
        "--update-monitor",
        "10s",
        "web",
    ])?;
    ensure!(out.ok, "update: {out:?}");
    let svc: Value = wait_for("rollback_completed", Duration::from_secs(120), || {
        let v = m.ok("GET", "/services/web", None)?;
        Ok((v["UpdateStatus"]["State"] == "rollback_completed").then_some(v))
    })?;
    ensure!(
        svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
            .as_str()
            .is_some_and(|i| i.starts_with(&format!("{}@sha256:", image))),
        "back on :1 after the rollback: {svc}"
    );
    let after = m.wait_running("web", 2)?;
    ensure!(
        after.iter().all(|t| t.runs(&image)),
        "running :1 again: {after:?}"
    );
    // start-first: the old tasks served until the rollback; they were never stopped.
    ensure!(
        before.iter().any(|b| after.iter().any(|a| a.id == b.id)),
        "start-first keeps the old tasks during a failed update: {before:?} {after:?}"
    );

    // The last manager leaves only with --force, which erases the swarm here; a new
    // init then works on the same node.
    let r = m.swarm(&["leave"])?;
    ensure!(
        !r.ok
            && r.stderr
                .contains("Removing the last manager erases all current state of the swarm"),
        "leave without --force: {r:?}"
    );
    let out = m.swarm_ok(&["leave", "--force"])?;
    ensure!(out == "Node left the swarm.\n", "leave --force: {out}");
    ensure!(m.ok("GET", "/info", None)?["Swarm"]["LocalNodeState"] == "inactive");
    wait_for("h0's containers removed", Duration::from_secs(30), || {
        Ok(m.containers().is_empty().then_some(()))
    })?;
    wait_for("a new swarm on h0", Duration::from_secs(30), || {
        let r = m.swarm(&["init", "--advertise-addr", &m.addr()])?;
        Ok(r.ok.then_some(()))
    })?;
    ensure!(
        m.swarm_ok(&["service", "ls", "-q"])?.is_empty(),
        "the new swarm starts empty"
    );
    Ok(())
}

/// Health for a container's whole life (issue 15): a task that was healthy and running
/// turns unhealthy later (its check starts failing after a few seconds); the agent
/// stops it, the task fails with `unhealthy container`, and the service gets a new task.
#[test]
fn a_task_that_turns_unhealthy_later_is_replaced() -> Result<()> {
    let node = rootfs_tests::swarmd::Node::start("unhealthy-later")?;
    node.swarm_ok(&["swarm", "init"])?;
    let img = node.image("1");
    node.swarm_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "flaky",
        "--health-cmd",
        "test ! -f /tmp/bad",
        "--health-interval",
        "500ms",
        "--health-retries",
        "2",
        "--restart-delay",
        "1s",
        "--stop-signal",
        "SIGKILL",
        &img,
        "sh",
        "-c",
        "sleep 4; touch /tmp/bad; sleep 1d",
    ])?;
    // First healthy and RUNNING...
    let first = node.wait_running("flaky", 1)?[0].id.clone();
    // ...then failed as unhealthy, and replaced by a new task that runs.
    let failed = wait_for(
        "the task failed as unhealthy",
        Duration::from_secs(30),
        || {
            let tasks = node.tasks("flaky")?;
            Ok(tasks
                .into_iter()
                .find(|t| t["ID"] == first.as_str() && t["Status"]["State"] == "failed"))
        },
    )?;
    ensure!(
        failed["Status"]["Err"] == "unhealthy container",
        "{}",
        failed["Status"]
    );
    wait_for("a new task running", Duration::from_secs(30), || {
        let r = node.running("flaky")?;
        Ok(r.iter().any(|t| t.id != first).then_some(()))
    })?;
    Ok(())
}
