//! `swarm init --force-new-cluster` on netns hosts (`rootfs_tests::cluster`): three
//! managers and a worker; two managers' swarmd are killed (no quorum: a write fails); the
//! survivor forces a new cluster through the CLI and leads it alone with the whole state
//! (service, secret, every task), the worker's tasks go on, a write converges, and a
//! restart of the survivor keeps the cluster of one; then two new managers join it and
//! the three hold a quorum of their own (the survivor killed, the two go on). Also
//! Docker's refusals: init without the flag in a swarm, the flag on a worker; and the
//! flag outside a swarm is a plain init.
//!
//! Hosts 0-2 are managers (0 inits), 3 a worker, 4 outside the swarm, 5 and 6 the new
//! managers that join the forced cluster. Heartbeat period:
//! Swarm's default 5 s, so a node is Down about 15 s after its swarmd dies.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use rootfs_tests::cluster::Cluster;
use rootfs_tests::swarmd::{swarm_at, wait_for, Run};

const ALREADY_IN_SWARM: &str = "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.";
const NOT_A_SWARM_MANAGER: &str = "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.";

/// `node ls` on host `i`: hostname -> (status, manager status).
fn nodes(c: &Cluster, i: usize) -> Result<BTreeMap<String, (String, String)>> {
    let out = c.host(i).swarm_ok(&[
        "node",
        "ls",
        "--format",
        "{{.Hostname}} {{.Status}} {{.ManagerStatus}}",
    ])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?.to_string();
            let status = f.next()?.to_string();
            Some((name, (status, f.next().unwrap_or("").to_string())))
        })
        .collect())
}

fn wait_nodes(
    c: &Cluster,
    i: usize,
    what: &str,
    ok: impl Fn(&BTreeMap<String, (String, String)>) -> bool,
) -> Result<BTreeMap<String, (String, String)>> {
    wait_for(what, Duration::from_secs(90), || {
        let n = nodes(c, i)?;
        Ok(ok(&n).then_some(n))
    })
    .with_context(|| format!("h{i}'s log:\n{}", c.host(i).log_tail()))
}

fn node_ids(c: &Cluster, i: usize) -> Result<BTreeMap<String, String>> {
    Ok(c.host(i)
        .ok("GET", "/nodes", None)?
        .as_array()
        .context("nodes")?
        .iter()
        .filter_map(|n| {
            Some((
                n["ID"].as_str()?.to_string(),
                n["Description"]["Hostname"].as_str()?.to_string(),
            ))
        })
        .collect())
}

/// Tasks of `service` that should run and do, by task ID -> hostname, as host `i` sees
/// them.
fn running(c: &Cluster, i: usize, service: &str) -> Result<BTreeMap<String, String>> {
    let names = node_ids(c, i)?;
    Ok(c.host(i)
        .tasks(service)?
        .iter()
        .filter(|t| t["DesiredState"] == "running" && t["Status"]["State"] == "running")
        .filter_map(|t| {
            let node = names.get(t["NodeID"].as_str()?)?.clone();
            Some((t["ID"].as_str()?.to_string(), node))
        })
        .collect())
}

fn task_ids(c: &Cluster, i: usize) -> Result<BTreeSet<String>> {
    Ok(c.host(i)
        .all_tasks()?
        .iter()
        .filter_map(|t| t["ID"].as_str().map(str::to_string))
        .collect())
}

fn failed_with(r: &Run, text: &str) -> bool {
    !r.ok && r.stderr.contains(text)
}

#[test]
fn the_survivor_of_a_lost_quorum_forces_a_new_cluster_with_the_whole_state() -> Result<()> {
    let mut c = Cluster::new(7)?;
    let h0 = c.host(0);
    h0.swarm_ok(&["init", "--advertise-addr", &c.ip(0).to_string()])?;
    let manager = h0.swarm_ok(&["join-token", "-q", "manager"])?;
    let worker = h0.swarm_ok(&["join-token", "-q", "worker"])?;
    for (i, token) in [(1, &manager), (2, &manager), (3, &worker)] {
        let addr = c.host(i).addr();
        c.host(i).swarm_ok(&[
            "join",
            "--token",
            token.trim(),
            "--listen-addr",
            &addr,
            "--advertise-addr",
            &addr,
            &c.host(0).addr(),
        ])?;
    }
    wait_nodes(&c, 0, "three managers and a worker, Ready", |n| {
        n.len() == 4
            && n.values().all(|(s, _)| s == "Ready")
            && n.values().filter(|(_, m)| m == "Leader").count() == 1
            && n.values().filter(|(_, m)| m == "Reachable").count() == 2
    })?;
    let cluster_id = c.host(0).ok("GET", "/swarm", None)?["ID"].clone();

    c.host(0)
        .swarm_stdin(&["secret", "create", "fnc_secret", "-"], "s3cret")
        .and_then(|r| {
            ensure!(r.ok, "secret create: {r:?}");
            Ok(())
        })?;
    for (name, replicas) in [("web", "6"), ("hist", "1")] {
        c.host(0).swarm_ok(&[
            "service",
            "create",
            "-d",
            "--name",
            name,
            "--replicas",
            replicas,
            "--secret",
            "fnc_secret",
            "--stop-signal",
            "SIGKILL",
            &c.image("1"),
            "sleep",
            "1d",
        ])?;
    }
    wait_for("6 tasks of web running", Duration::from_secs(120), || {
        Ok((running(&c, 2, "web")?.len() == 6).then_some(()))
    })?;
    // Some task history: hist's task replaced, the old one kept in its slot.
    c.host(0)
        .swarm_ok(&["service", "update", "-d", "--force", "hist"])?;
    wait_for("hist's task replaced", Duration::from_secs(60), || {
        let tasks = c.host(2).tasks("hist")?;
        let ok = tasks.len() == 2
            && running(&c, 2, "hist")?.len() == 1
            && tasks.iter().any(|t| t["Status"]["State"] == "shutdown");
        Ok(ok.then_some(()))
    })?;
    let before = task_ids(&c, 2)?;
    ensure!(before.len() == 8, "tasks on h2: {before:?}");
    // The processes of the tasks on the survivor and the worker: none may restart.
    let survivors = |c: &Cluster| -> Result<BTreeMap<String, i64>> {
        let names = node_ids(c, 2)?;
        Ok(c.host(2)
            .all_tasks()?
            .iter()
            .filter(|t| t["Status"]["State"] == "running")
            .filter(|t| {
                names
                    .get(t["NodeID"].as_str().unwrap_or_default())
                    .is_some_and(|h| h == "h2" || h == "h3")
            })
            .filter_map(|t| {
                let pid = t["Status"]["ContainerStatus"]["PID"].as_i64()?;
                Some((t["ID"].as_str()?.to_string(), pid))
            })
            .collect())
    };
    let pids = survivors(&c)?;
    ensure!(!pids.is_empty(), "no task runs on h2 or h3");
    let on_worker: BTreeSet<String> = running(&c, 2, "web")?
        .into_iter()
        .filter(|(_, n)| n == "h3")
        .map(|(t, _)| t)
        .collect();

    // Docker's refusals: init again in a swarm; force on a worker.
    let r = c.host(2).swarm(&["init"])?;
    ensure!(
        failed_with(&r, ALREADY_IN_SWARM),
        "init on a manager: {r:?}"
    );
    let r = c.host(3).swarm(&["init", "--force-new-cluster"])?;
    ensure!(
        failed_with(&r, NOT_A_SWARM_MANAGER),
        "force on a worker: {r:?}"
    );
    // Outside a swarm the flag is a plain init.
    let out = c.host(4).swarm_ok(&["init", "--force-new-cluster"])?;
    ensure!(
        out.starts_with("Swarm initialized: current node ("),
        "{out}"
    );

    // Two managers die: no quorum, a write fails.
    c.kill9(0)?;
    c.kill9(1)?;
    let socket = c.host(2).socket.clone();
    let r = swarm_at(
        &socket,
        &["service", "scale", "-d", "web=7"],
        None,
        Some(Duration::from_secs(60)),
    )?;
    ensure!(
        failed_with(&r, "The swarm does not have a leader"),
        "a write without quorum: {r:?}"
    );

    // The survivor forces a new cluster through the CLI.
    let h2_id = c.host(2).ok("GET", "/info", None)?["Swarm"]["NodeID"]
        .as_str()
        .context("h2's node ID")?
        .to_string();
    let out = c.host(2).swarm_ok(&["init", "--force-new-cluster"])?;
    ensure!(
        out.starts_with(&format!(
            "Swarm initialized: current node ({h2_id}) is now a manager.\n\n"
        )) && out.contains("swarm join --token SWMTKN-1-"),
        "force-new-cluster: {out}"
    );
    let ms = wait_nodes(&c, 2, "h2 Leader, h0 and h1 Down", |n| {
        n.len() == 4
            && n.get("h2") == Some(&("Ready".into(), "Leader".into()))
            && n.get("h3").is_some_and(|(s, _)| s == "Ready")
            && ["h0", "h1"]
                .iter()
                .all(|h| n.get(*h) == Some(&("Down".into(), "Unreachable".into())))
    })?;
    ensure!(ms.len() == 4, "{ms:?}");
    ensure!(
        c.host(2).ok("GET", "/swarm", None)?["ID"] == cluster_id,
        "the cluster ID changed"
    );
    let secrets = c
        .host(2)
        .swarm_ok(&["secret", "ls", "--format", "{{.Name}}"])?;
    ensure!(secrets.trim() == "fnc_secret", "secrets: {secrets}");
    let after = task_ids(&c, 2)?;
    ensure!(
        before.is_subset(&after),
        "tasks lost: {:?}",
        before.difference(&after).collect::<Vec<_>>()
    );
    let svc = c
        .host(2)
        .swarm_ok(&["service", "ls", "--format", "{{.Name}}"])?;
    ensure!(svc == "hist\nweb\n", "services: {svc}");
    // Every task that ran on the survivor and the worker runs on, in the same process.
    let still = survivors(&c)?;
    ensure!(
        pids.iter().all(|(t, pid)| still.get(t) == Some(pid)),
        "a container restarted: before {pids:?}, after {still:?}"
    );

    // A write converges: the tasks of the dead managers move to h2 and h3; the worker's
    // tasks never stopped.
    c.host(2).swarm_ok(&["service", "scale", "-d", "web=7"])?;
    let now = wait_for(
        "7 tasks of web running on h2 and h3",
        Duration::from_secs(120),
        || {
            let r = running(&c, 2, "web")?;
            let ok = r.len() == 7 && r.values().all(|n| n == "h2" || n == "h3");
            Ok(ok.then_some(r))
        },
    )
    .with_context(|| format!("h2's log:\n{}", c.host(2).log_tail()))?;
    ensure!(
        on_worker.iter().all(|t| now.contains_key(t)),
        "the worker's tasks {on_worker:?} did not all go on: {now:?}"
    );

    // A restarted survivor is still the cluster of one.
    c.kill9(2)?;
    c.restart(2)?;
    wait_nodes(&c, 2, "h2 leads again after its restart", |n| {
        n.get("h2") == Some(&("Ready".into(), "Leader".into()))
    })?;
    c.host(2).swarm_ok(&["service", "scale", "-d", "web=5"])?;
    wait_for("5 tasks of web running", Duration::from_secs(60), || {
        Ok((running(&c, 2, "web")?.len() == 5).then_some(()))
    })?;
    let backups: Vec<String> = std::fs::read_dir(&c.host(2).data)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("raft.before-force-new-cluster-"))
        .collect();
    ensure!(
        backups.len() == 1,
        "the old Raft directory kept: {backups:?}"
    );

    // Two new managers join the forced cluster with its manager token.
    let manager = c.host(2).swarm_ok(&["join-token", "-q", "manager"])?;
    for i in [5, 6] {
        let addr = c.host(i).addr();
        c.host(i).swarm_ok(&[
            "join",
            "--token",
            manager.trim(),
            "--listen-addr",
            &addr,
            "--advertise-addr",
            &addr,
            &c.host(2).addr(),
        ])?;
    }
    wait_nodes(&c, 2, "h5 and h6 Reachable managers beside h2", |n| {
        n.get("h2") == Some(&("Ready".into(), "Leader".into()))
            && ["h5", "h6"]
                .iter()
                .all(|h| n.get(*h) == Some(&("Ready".into(), "Reachable".into())))
    })?;
    // The three hold a quorum of their own: with the survivor gone, h5 and h6 elect a
    // leader, and a write converges.
    c.kill9(2)?;
    wait_nodes(&c, 5, "h5 or h6 leads with h2 down", |n| {
        ["h5", "h6"]
            .iter()
            .any(|h| n.get(*h) == Some(&("Ready".into(), "Leader".into())))
    })?;
    let svc = c
        .host(5)
        .swarm_ok(&["service", "ls", "--format", "{{.Name}}"])?;
    ensure!(svc == "hist\nweb\n", "services on h5: {svc}");
    c.host(6).swarm_ok(&["service", "scale", "-d", "web=4"])?;
    wait_for("4 tasks of web running", Duration::from_secs(90), || {
        Ok((running(&c, 5, "web")?.len() == 4).then_some(()))
    })
    .with_context(|| format!("h5's log:\n{}", c.host(5).log_tail()))?;
    Ok(())
}
