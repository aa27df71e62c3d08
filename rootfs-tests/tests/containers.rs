//! A node's containers as the stock docker CLI sees them (issue 15, item 4, first
//! part): `docker ps`, `docker ps -a` with filters, `docker container inspect` and
//! `docker logs` against swarmd show the tasks' containers with Docker's names
//! (`web.<slot>.<task id>`), labels, state and logs; `swarm ps`, `swarm logs` and
//! `swarm container inspect` the same.

use anyhow::{ensure, Result};
use rootfs_tests::swarmd::{wait_for, Node};
use serde_json::Value;
use std::time::Duration;

#[test]
fn docker_ps_inspect_and_logs_show_the_tasks_containers() -> Result<()> {
    let node = Node::start("containers")?;
    node.swarm_ok(&["init"])?;
    node.swarm_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--replicas",
        "2",
        "--stop-signal",
        "SIGKILL",
        &node.image("1"),
        "sh",
        "-c",
        "echo hi; echo err >&2; sleep 0.2; echo bye; sleep 1d",
    ])?;
    let tasks = node.wait_running("web", 2)?;

    // docker ps: the two running containers, Docker's names and an `Up` status.
    let ps = node.docker_ok(&["ps", "--format", "{{.Names}}|{{.Status}}|{{.Command}}"])?;
    let lines: Vec<&str> = ps.lines().collect();
    ensure!(lines.len() == 2, "docker ps:\n{ps}");
    for t in &tasks {
        let name = format!("web.{}.{}", t.slot, t.id);
        ensure!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{name}|Up ")) && l.contains("sh -c")),
            "no running {name} in docker ps:\n{ps}"
        );
    }
    let ids = node.docker_ok(&[
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        "label=com.docker.swarm.service.name=web",
    ])?;
    let mut ids: Vec<&str> = ids.lines().collect();
    ids.sort();
    let mut want: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    want.sort();
    ensure!(
        ids == want,
        "docker ps -q --filter label: {ids:?}, tasks {want:?}"
    );

    // docker container inspect, by name: the task's process, labels and command.
    let t = &tasks[0];
    let name = format!("web.{}.{}", t.slot, t.id);
    let v: Value = serde_json::from_str(&node.docker_ok(&["container", "inspect", &name])?)?;
    let c = &v[0];
    ensure!(
        c["Id"] == t.id.as_str()
            && c["Name"] == format!("/{name}")
            && c["State"]["Running"] == true
            && c["State"]["Pid"].as_i64() == Some(t.pid)
            && c["Config"]["Labels"]["com.docker.swarm.task.id"] == t.id.as_str()
            && c["Path"] == "sh",
        "docker container inspect {name}: {c}"
    );
    let r = node.docker(&["container", "inspect", "nosuch"])?;
    ensure!(
        !r.ok && r.stderr.contains("No such container: nosuch"),
        "inspect nosuch: {r:?}"
    );

    // docker logs: stdout and stderr apart, --tail.
    wait_for("docker logs: every line", Duration::from_secs(20), || {
        let r = node.docker(&["logs", &name])?;
        Ok((r.ok && r.stdout == "hi\nbye\n" && r.stderr == "err\n").then_some(()))
    })?;
    let tail = node.docker_ok(&["logs", "--tail", "1", &name])?;
    ensure!(tail == "bye\n", "docker logs --tail 1: {tail:?}");

    // Our CLI shows the same: `swarm ps`, `swarm logs`, `swarm container inspect`.
    let format = "{{.ID}}|{{.Image}}|{{.Command}}|{{.Names}}";
    let theirs = node.docker_ok(&["ps", "--format", format])?;
    let ours = node.swarm_ok(&["ps", "--format", format])?;
    ensure!(ours == theirs, "swarm ps:\n{ours}\ndocker ps:\n{theirs}");
    let r = node.swarm(&["logs", &name])?;
    ensure!(
        r.ok && r.stdout == "hi\nbye\n" && r.stderr == "err\n",
        "swarm logs: {r:?}"
    );
    let pid = node.swarm_ok(&["container", "inspect", "-f", "{{.State.Pid}}", &name])?;
    ensure!(
        pid.trim() == t.pid.to_string(),
        "swarm container inspect: {pid}"
    );
    let r = node.swarm(&["container", "inspect", "nosuch"])?;
    ensure!(
        !r.ok && r.stderr.contains("Error: No such container: nosuch"),
        "swarm container inspect nosuch: {r:?}"
    );

    // A forced update replaces both tasks: the old containers stay, exited (the tasks'
    // history), in `docker ps -a` and not in `docker ps`.
    node.swarm_ok(&["service", "update", "-d", "--force", "web"])?;
    let exited = wait_for("two exited containers", Duration::from_secs(60), || {
        let out = node.docker_ok(&[
            "ps",
            "-a",
            "--filter",
            "status=exited",
            "--format",
            "{{.Names}}|{{.Status}}",
        ])?;
        Ok((out.lines().count() == 2).then_some(out))
    })?;
    ensure!(
        exited.lines().all(|l| l.contains("|Exited (137) ")),
        "docker ps -a --filter status=exited: {exited}"
    );
    wait_for("two running containers", Duration::from_secs(60), || {
        Ok((node.docker_ok(&["ps", "-q"])?.lines().count() == 2).then_some(()))
    })?;
    node.swarm_ok(&["service", "rm", "web"])?;
    Ok(())
}
