//! Service logs from every node (issue 15, item 2) on netns hosts
//! (`rootfs_tests::cluster`): h0 inits, h1 and h2 join as workers, h1 is promoted.
//! A service's tasks run on the three nodes; `service logs` on the leader and on the
//! follower (through the leader's log broker), and the stock `docker service logs`, read
//! every task's lines with Docker's `name.slot.id@node |` prefix; `--tail`, `--since`,
//! `--timestamps`, `--raw`, `--no-task-ids`, `--no-resolve`; `--follow` picks up the
//! tasks a scale adds on any node; with h2's swarmd killed, the answer names the node
//! that is not available in Docker's words and still gives the others' lines, and the
//! last lines of a task that ended on h2 (kept by the managers, moby#37336).

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use rootfs_tests::cluster::Cluster;
use rootfs_tests::swarmd::wait_for;

/// A `swarm service logs -f` in the background, its output in a file.
struct Follow {
    child: Child,
    out: std::path::PathBuf,
}

impl Follow {
    fn text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The task IDs (as printed, truncated) of the lines that say `hello`, and the nodes.
fn hellos(out: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut tasks = BTreeSet::new();
    let mut nodes = BTreeSet::new();
    for l in out.lines().filter(|l| l.ends_with("| hello")) {
        let Some((name, _)) = l.split_once(' ') else {
            continue;
        };
        if let Some((task, node)) = name.split_once('@') {
            tasks.insert(task.to_string());
            nodes.insert(node.to_string());
        }
    }
    (tasks, nodes)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn service_logs_come_from_every_node() -> Result<()> {
    let mut c = Cluster::new(3)?;
    c.host(0)
        .swarm_ok(&["init", "--advertise-addr", &c.ip(0).to_string()])?;
    c.join_workers()?;
    c.host(0).swarm_ok(&["node", "promote", "h1"])?;
    wait_for("h1 a reachable manager", Duration::from_secs(60), || {
        let out =
            c.host(0)
                .swarm_ok(&["node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}"])?;
        Ok(out.lines().any(|l| l == "h1 Reachable").then_some(()))
    })?;
    // One task per node (spread); each says hello once, then ticks every 200 ms.
    c.host(0).swarm_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "lg",
        "--replicas",
        "3",
        "--replicas-max-per-node",
        "2",
        "--stop-signal",
        "SIGKILL",
        &c.image("1"),
        "sh",
        "-c",
        "echo hello; echo oops >&2; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done",
    ])?;
    let ids = wait_for(
        "a task running on each node",
        Duration::from_secs(90),
        || {
            let tasks = c.host(0).running("lg")?;
            Ok((tasks.len() == 3).then_some(tasks))
        },
    )?;
    let all = set(&["h0", "h1", "h2"]);

    // On the leader and on the follower, every node's lines, stdout and stderr.
    for i in [0, 1] {
        let out = wait_for(
            &format!("h{i}: every task's hello"),
            Duration::from_secs(30),
            || {
                let r = c.host(i).swarm(&["service", "logs", "lg"])?;
                ensure!(r.ok, "service logs on h{i}: {r:?}");
                let (tasks, nodes) = hellos(&r.stdout);
                let oops = r.stderr.lines().filter(|l| l.ends_with("| oops")).count();
                Ok((tasks.len() == 3 && nodes == all && oops == 3).then_some(r.stdout))
            },
        )?;
        // Docker's prefix: `lg.<slot>.<task id, 12>@<hostname>    | `.
        for t in &ids {
            let name = format!("lg.{}.{}@", t.slot, &t.id[..12]);
            ensure!(out.contains(&name), "no line of {name} on h{i}:\n{out}");
        }
    }
    // The stock docker CLI reads the same stream.
    let docker = c.host(1).docker_ok(&["service", "logs", "lg"])?;
    let (tasks, nodes) = hellos(&docker);
    ensure!(
        tasks.len() == 3 && nodes == all,
        "docker service logs:\n{docker}"
    );

    // --tail 1: one line per task (the last tick, once each task ticked: before that
    // a task's last line is its `oops` on stderr); --raw, --no-task-ids, --no-resolve.
    wait_for(
        "--tail 1: each task's last tick",
        Duration::from_secs(20),
        || {
            let r = c.host(1).swarm(&["service", "logs", "--tail", "1", "lg"])?;
            let ticks = r.stdout.lines().filter(|l| l.contains("| tick ")).count();
            Ok(
                (r.ok && ticks == 3 && r.stdout.lines().count() == 3 && r.stderr.is_empty())
                    .then_some(()),
            )
        },
    )?;
    let raw = c
        .host(0)
        .swarm_ok(&["service", "logs", "--raw", "--tail", "1", "lg"])?;
    ensure!(
        raw.lines().count() == 3 && raw.lines().all(|l| l.starts_with("tick ")),
        "--raw:\n{raw}"
    );
    let bare = c
        .host(0)
        .swarm_ok(&["service", "logs", "--no-task-ids", "--tail", "1", "lg"])?;
    ensure!(
        bare.lines()
            .all(|l| l.starts_with("lg.") && l.split('@').next().unwrap().split('.').count() == 2),
        "--no-task-ids:\n{bare}"
    );
    let service_id = c
        .host(0)
        .swarm_ok(&["service", "inspect", "-f", "{{.ID}}", "lg"])?;
    let ids_only = c
        .host(0)
        .swarm_ok(&["service", "logs", "--no-resolve", "--tail", "1", "lg"])?;
    ensure!(
        ids_only.lines().count() == 3
            && ids_only
                .lines()
                .all(|l| l.starts_with(&format!("{}.", service_id.trim())) && !l.contains("@h")),
        "--no-resolve:\n{ids_only}"
    );
    // --timestamps: RFC 3339 with nanoseconds first; --since after the hellos: none.
    let stamped = c
        .host(0)
        .swarm_ok(&["service", "logs", "-t", "--tail", "1", "lg"])?;
    ensure!(
        stamped
            .lines()
            .all(|l| l.as_bytes().get(10) == Some(&b'T') && l.contains("Z lg.")),
        "--timestamps:\n{stamped}"
    );
    // (once the hellos are more than a second old)
    wait_for(
        "--since 1s without the hellos",
        Duration::from_secs(20),
        || {
            let since = c
                .host(1)
                .swarm_ok(&["service", "logs", "--since", "1s", "lg"])?;
            let ticks = since.lines().filter(|l| l.contains("| tick ")).count();
            Ok((!since.contains("| hello") && (3..=30).contains(&ticks)).then_some(()))
        },
    )?;

    // --follow on the follower: the tasks a scale adds, on any node, come in.
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("follow.txt");
    let child = Command::new(rootfs_tests::workspace_bin("swarm"))
        .args(["-H", &format!("unix://{}", c.host(1).socket.display())])
        .args(["service", "logs", "-f", "lg"])
        .env_remove("SWARM_HOST")
        .stdout(std::fs::File::create(&out)?)
        .stderr(Stdio::null())
        .spawn()?;
    let follow = Follow { child, out };
    wait_for("follow: the first hellos", Duration::from_secs(30), || {
        Ok((hellos(&follow.text()).0.len() == 3).then_some(()))
    })?;
    c.host(0).swarm_ok(&["service", "scale", "-d", "lg=6"])?;
    wait_for(
        "follow: six tasks' hellos on three nodes",
        Duration::from_secs(60),
        || {
            let (tasks, nodes) = hellos(&follow.text());
            Ok((tasks.len() == 6 && nodes == all).then_some(()))
        },
    )
    .with_context(|| format!("followed:\n{}", follow.text()))?;
    drop(follow);

    // A task on h2 that ended: its node sent its last lines with its final status.
    c.host(0).swarm_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "last",
        "--restart-condition",
        "none",
        "--constraint",
        "node.hostname==h2",
        &c.image("1"),
        "sh",
        "-c",
        "echo first words; echo last words; sleep 0.3; echo dying >&2; exit 3",
    ])?;
    wait_for("last's task failed", Duration::from_secs(60), || {
        let tasks = c.host(0).tasks("last")?;
        Ok(tasks
            .iter()
            .any(|t| t["Status"]["State"] == "failed" && t["Status"]["SwarmLogTail"].is_array())
            .then_some(()))
    })?;

    // h2's swarmd dies: its tasks' logs cannot be read, and the answer says so.
    let h2 = c
        .host(0)
        .swarm_ok(&["node", "inspect", "-f", "{{.ID}}", "h2"])?;
    let h2 = h2.trim().to_string();
    c.kill9(2)?;
    let warning = format!(
        "error from daemon in stream: Error grabbing logs: warning: incomplete log stream. \
         some logs could not be retrieved for the following reasons: node {h2} is not available"
    );
    let r = wait_for("the warning for h2", Duration::from_secs(30), || {
        let r = c.host(1).swarm(&["service", "logs", "lg"])?;
        Ok(r.stderr.contains(&warning).then_some(r))
    })?;
    let (_, nodes) = hellos(&r.stdout);
    ensure!(!r.ok && nodes == set(&["h0", "h1"]), "without h2: {r:?}");
    let d = c.host(0).docker(&["service", "logs", "lg"])?;
    ensure!(
        !d.ok && d.stderr.contains(&warning),
        "docker service logs without h2: {d:?}"
    );
    // Beyond Docker (moby#37336): the ended task's last lines, kept by the managers,
    // still read with h2 gone, with the warning; `--tail 1` cuts them as on a node.
    let r = c.host(1).swarm(&["service", "logs", "last"])?;
    let out: Vec<&str> = r.stdout.lines().collect();
    ensure!(
        !r.ok
            && out.len() == 2
            && out[0].starts_with("last.1.")
            && out[0].contains(&"@h2".to_string())
            && out[0].ends_with("| first words")
            && out[1].ends_with("| last words")
            && r.stderr.lines().any(|l| l.ends_with("| dying"))
            && r.stderr.contains(&warning),
        "the ended task's kept lines without h2: {r:?}"
    );
    let d = c
        .host(0)
        .docker(&["service", "logs", "--tail", "1", "--raw", "last"])?;
    ensure!(
        d.stdout.is_empty() && d.stderr.starts_with("dying\n") && d.stderr.contains(&warning),
        "docker service logs --tail 1 --raw without h2: {d:?}"
    );
    Ok(())
}
