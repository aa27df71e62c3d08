//! The spine's acceptance (issue 3), driven the way users drive it: the real `swarm` CLI
//! and the stock `docker` CLI on the socket of a real `swarmd`, real containers, a real
//! registry holding busybox:1 and busybox:2.
//!
//! `spine_lifecycle`: 1 init + create (waits, Docker's progress) -> 2 kill a container
//! -> 3 scale 5 / 1 -> 4 rolling update to :2, rollback to :1 -> 5 kill -9 swarmd and
//! restart -> 7 the docker CLI agrees -> 6 service rm leaves no trace.
//! `spine_bad_input`: 8 unknown image, invalid spec, duplicate name, no such service.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use rootfs_tests::swarmd::{alive, wait_for, Node, RunningTask};
use serde_json::{json, Value};

/// A `service ps` table as rows of (column header -> cell), cut at the header's offsets.
type Row = BTreeMap<String, String>;

fn table(out: &str) -> Result<(Vec<String>, Vec<Row>)> {
    let mut lines = out.lines();
    let header = lines.next().context("no header")?;
    let mut starts = vec![];
    let mut names = vec![];
    let mut i = 0;
    let b = header.as_bytes();
    while i < b.len() {
        if b[i] != b' ' {
            let start = i;
            // A column name ends at two spaces (names like "DESIRED STATE" hold one).
            while i < b.len() && !(b[i] == b' ' && (i + 1 >= b.len() || b[i + 1] == b' ')) {
                i += 1;
            }
            starts.push(start);
            names.push(header[start..i].to_string());
        }
        i += 1;
    }
    let rows = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let chars: Vec<char> = l.chars().collect();
            names
                .iter()
                .enumerate()
                .map(|(k, n)| {
                    let s = starts[k].min(chars.len());
                    let e = starts
                        .get(k + 1)
                        .copied()
                        .unwrap_or(chars.len())
                        .min(chars.len());
                    (
                        n.clone(),
                        chars[s..e].iter().collect::<String>().trim().to_string(),
                    )
                })
                .collect()
        })
        .collect();
    Ok((names, rows))
}

const PS_COLUMNS: [&str; 8] = [
    "ID",
    "NAME",
    "IMAGE",
    "NODE",
    "DESIRED STATE",
    "CURRENT STATE",
    "ERROR",
    "PORTS",
];

fn ps(node: &Node, service: &str) -> Result<Vec<BTreeMap<String, String>>> {
    let out = node.swarm_ok(&["service", "ps", service])?;
    let (cols, rows) = table(&out)?;
    ensure!(cols == PS_COLUMNS, "service ps columns: {cols:?}\n{out}");
    Ok(rows)
}

fn read_version(node: &Node, task: &str) -> Result<String> {
    let p = node
        .data
        .join("containers")
        .join(task)
        .join("rootfs/etc/swarm-version");
    Ok(std::fs::read_to_string(&p)
        .with_context(|| format!("read {}", p.display()))?
        .trim()
        .to_string())
}

fn kill(pid: i64) -> Result<()> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    Ok(())
}

fn ids(r: &[RunningTask]) -> Vec<String> {
    r.iter().map(|t| t.id.clone()).collect()
}

#[test]
fn spine_lifecycle() -> Result<()> {
    let mut node = Node::start("spine")?;
    let img1 = node.image("1");
    let img2 = node.image("2");

    // 1. init; create waits for convergence with Docker's progress; 3 Running tasks.
    let init = node.swarm_ok(&["init"])?;
    ensure!(
        init.starts_with("Swarm initialized: current node (") && init.contains("is now a manager"),
        "{init}"
    );
    let out = node.swarm_ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--replicas",
        "3",
        &img1,
        "httpd",
        "-f",
        "-p",
        "8080",
    ])?;
    let lines: Vec<&str> = out.lines().collect();
    ensure!(lines.len() >= 3, "create output: {out}");
    let service_id = lines[0].trim().to_string();
    ensure!(
        service_id.len() == 25,
        "first line is the service ID: {out}"
    );
    ensure!(
        out.contains("overall progress: 3 out of 3 tasks"),
        "create progress: {out}"
    );
    for s in 1..=3 {
        // Docker's plain (not a terminal) form: one empty line per slot.
        ensure!(
            lines.contains(&format!("{s}/3:  ").as_str()),
            "slot {s}: {out}"
        );
    }
    ensure!(
        lines.last().unwrap().trim() == format!("verify: Service {service_id} converged"),
        "create ends converged: {out}"
    );
    let three = node.wait_running("web", 3)?;
    ensure!(three.iter().map(|t| t.slot).collect::<Vec<_>>() == [1, 2, 3]);
    let rows = ps(&node, "web")?;
    ensure!(rows.len() == 3, "{rows:?}");
    for (i, r) in rows.iter().enumerate() {
        ensure!(r["NAME"] == format!("web.{}", i + 1), "{r:?}");
        ensure!(r["IMAGE"] == img1, "{r:?}");
        ensure!(r["NODE"] == "node-test", "{r:?}");
        ensure!(r["DESIRED STATE"] == "Running", "{r:?}");
        ensure!(r["CURRENT STATE"].starts_with("Running "), "{r:?}");
        ensure!(r["ERROR"].is_empty(), "{r:?}");
        ensure!(three.iter().any(|t| t.id.starts_with(&r["ID"])), "{r:?}");
    }
    for t in &three {
        ensure!(alive(t.pid), "task {}: pid {} not alive", t.id, t.pid);
        let cg = node.pids_cgroup(&t.id);
        let procs = std::fs::read_to_string(cg.join("cgroup.procs"))
            .with_context(|| format!("cgroup of {} at {}", t.id, cg.display()))?;
        ensure!(
            procs.lines().any(|p| p == t.pid.to_string()),
            "pid {} not in {}: {procs}",
            t.pid,
            cg.display()
        );
        let comm = std::fs::read_to_string(format!("/proc/{}/cmdline", t.pid))?;
        ensure!(comm.starts_with("httpd\0-f\0-p\08080"), "{comm:?}");
    }

    // 2. Kill one container's process: Failed, replaced in its slot, `\_` history row.
    let victim = three[1].clone();
    kill(victim.pid)?;
    let after_kill = wait_for("the replacement", Duration::from_secs(60), || {
        let r = node.running("web")?;
        Ok((r.len() == 3
            && r.iter().any(|t| t.slot == victim.slot && t.id != victim.id)
            && r.iter().all(|t| alive(t.pid)))
        .then_some(r))
    })?;
    let old = node
        .tasks("web")?
        .into_iter()
        .find(|t| t["ID"] == victim.id.as_str())
        .context("old task kept as history")?;
    ensure!(old["Status"]["State"] == "failed", "{old}");
    let rows = ps(&node, "web")?;
    let hist = rows
        .iter()
        .find(|r| victim.id.starts_with(&r["ID"]))
        .with_context(|| format!("no row for the killed task: {rows:?}"))?;
    ensure!(
        hist["NAME"] == format!(r"\_ web.{}", victim.slot),
        "history row: {hist:?}"
    );
    ensure!(hist["DESIRED STATE"] == "Shutdown", "{hist:?}");
    ensure!(hist["CURRENT STATE"].starts_with("Failed "), "{hist:?}");
    ensure!(hist["ERROR"] == "\"task: non-zero exit (137)\"", "{hist:?}");
    // The history row follows its slot's running row.
    let pos = rows
        .iter()
        .position(|r| victim.id.starts_with(&r["ID"]))
        .unwrap();
    ensure!(
        pos > 0 && rows[pos - 1]["NAME"] == format!("web.{}", victim.slot),
        "{rows:?}"
    );

    // 3. Scale 5 then 1: added and removed by slot; removed tasks Shutdown, no traces.
    let out = node.swarm_ok(&["service", "scale", "web=5"])?;
    ensure!(out.starts_with("web scaled to 5"), "{out}");
    ensure!(out.contains("converged"), "{out}");
    let five = node.wait_running("web", 5)?;
    ensure!(five.iter().map(|t| t.slot).collect::<Vec<_>>() == [1, 2, 3, 4, 5]);
    for t in &after_kill {
        ensure!(five.contains(t), "scale up replaced {t:?}: {five:?}");
    }
    let out = node.swarm_ok(&["service", "scale", "web=1"])?;
    ensure!(out.starts_with("web scaled to 1"), "{out}");
    let one = node.wait_running("web", 1)?;
    ensure!(one[0].slot == 1 && one[0] == five[0], "{one:?} {five:?}");
    let removed: Vec<RunningTask> = five[1..].to_vec();
    wait_for(
        "scaled-down tasks shut down and cleaned",
        Duration::from_secs(60),
        || {
            let tasks = node.tasks("web")?;
            for t in &removed {
                let Some(task) = tasks.iter().find(|x| x["ID"] == t.id.as_str()) else {
                    // Removed from the store entirely is fine too, once its container
                    // is gone (the agent removes it a moment after).
                    if !node.traces_of(&t.id).is_empty() {
                        return Ok(None);
                    }
                    continue;
                };
                if task["Status"]["State"] != "shutdown" || !node.traces_of(&t.id).is_empty() {
                    return Ok(None);
                }
                if alive(t.pid) {
                    return Ok(None);
                }
            }
            Ok(Some(()))
        },
    )
    .with_context(|| {
        removed
            .iter()
            .map(|t| format!("{} {:?}", t.id, node.traces_of(&t.id)))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let rows = ps(&node, "web")?;
    for t in &removed {
        if let Some(r) = rows.iter().find(|r| t.id.starts_with(&r["ID"])) {
            ensure!(
                r["DESIRED STATE"] == "Remove" || r["DESIRED STATE"] == "Shutdown",
                "{r:?}"
            );
            ensure!(r["CURRENT STATE"].starts_with("Shutdown "), "{r:?}");
        }
    }
    ensure!(
        node.containers() == vec![one[0].id.clone()],
        "containers left: {:?} (one: {}); tasks: {}\nlog:\n{}",
        node.containers(),
        one[0].id,
        node.tasks("web")?
            .iter()
            .map(|t| format!("{} {} {}", t["ID"], t["DesiredState"], t["Status"]["State"]))
            .collect::<Vec<_>>()
            .join("; "),
        std::fs::read_to_string(node.config.dir.join("swarmd.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("remov"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // 4. Rolling update to :2 with parallelism 1, watched from the side; rollback to :1.
    node.swarm_ok(&["service", "scale", "web=3"])?;
    let before = node.wait_running("web", 3)?;
    ensure!(before.iter().all(|t| t.runs(&img1)), "{before:?}");
    let samples = watch(&node, || {
        node.swarm_ok(&["service", "update", "--image", &img2, "web"])
    })?;
    let (out, samples) = samples;
    ensure!(out.contains("converged"), "update output: {out}");
    let after = node.wait_running("web", 3)?;
    ensure!(after.iter().all(|t| t.runs(&img2)), "{after:?}");
    for t in &after {
        ensure!(read_version(&node, &t.id)? == "2", "{t:?} does not run :2");
        ensure!(!ids(&before).contains(&t.id));
    }
    check_one_at_a_time(&samples, &img1, &img2)?;
    let spec = node.ok("GET", "/services/web", None)?;
    ensure!(spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        .as_str()
        .is_some_and(|i| i.starts_with(&format!("{}@sha256:", img2))));

    let (out, samples) = watch(&node, || node.swarm_ok(&["service", "rollback", "web"]))?;
    ensure!(out.contains("rollback"), "rollback output: {out}");
    let rolled = node.wait_running("web", 3)?;
    ensure!(rolled.iter().all(|t| t.runs(&img1)), "{rolled:?}");
    for t in &rolled {
        ensure!(read_version(&node, &t.id)? == "1", "{t:?} does not run :1");
    }
    check_one_at_a_time(&samples, &img2, &img1)?;
    let spec = node.ok("GET", "/services/web", None)?;
    ensure!(
        spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
            .as_str()
            .is_some_and(|i| i.starts_with(&format!("{}@sha256:", img1))),
        "{spec}"
    );
    ensure!(spec["ID"] == service_id.as_str());
    // (Replaced tasks stay as history with their stopped containers, as Docker keeps
    // them; step 6 checks that `service rm` removes them all.)

    // 5. kill -9 swarmd, start it again: same service, same tasks, same processes.
    let services_before = node.services()?;
    let tasks_before: BTreeSet<String> = node
        .tasks("web")?
        .iter()
        .map(|t| t["ID"].as_str().unwrap_or("").to_string())
        .collect();
    node.kill9()?;
    for t in &rolled {
        ensure!(alive(t.pid), "container {} died with swarmd", t.id);
    }
    node.start_swarmd()?;
    let services_after = node.services()?;
    ensure!(
        services_after.len() == services_before.len()
            && services_after[0]["ID"] == services_before[0]["ID"]
            && services_after[0]["Spec"] == services_before[0]["Spec"],
        "{services_before:?}\n{services_after:?}"
    );
    let back = node.wait_running("web", 3)?;
    ensure!(back == rolled, "before {rolled:?}, after {back:?}");
    let tasks_after: BTreeSet<String> = node
        .tasks("web")?
        .iter()
        .map(|t| t["ID"].as_str().unwrap_or("").to_string())
        .collect();
    ensure!(
        tasks_before.is_subset(&tasks_after),
        "{tasks_before:?} {tasks_after:?}"
    );
    let ls = node.swarm_ok(&["service", "ls"])?;
    ensure!(ls.contains("web") && ls.contains("3/3"), "{ls}");
    for t in &back {
        ensure!(alive(t.pid), "not adopted: {t:?}");
    }

    // 7. The stock docker CLI on our socket agrees with ours.
    for args in [
        vec!["service", "ls"],
        vec!["node", "ls"],
        vec![
            "service",
            "ps",
            "--format",
            "{{.ID}} {{.Name}} {{.Image}} {{.Node}} {{.DesiredState}} {{.Error}}",
            "web",
        ],
    ] {
        let ours = node.swarm_ok(&args)?;
        let theirs = node.docker_ok(&args)?;
        ensure!(
            ours == theirs,
            "{args:?} differs\nswarm:\n{ours}\ndocker:\n{theirs}"
        );
    }
    let docker_ps = node.docker_ok(&["service", "ps", "web"])?;
    let (cols, rows) = table(&docker_ps)?;
    ensure!(cols == PS_COLUMNS && rows.len() >= 3, "{docker_ps}");
    let ours: Value = serde_json::from_str(&node.swarm_ok(&["service", "inspect", "web"])?)?;
    let theirs: Value = serde_json::from_str(&node.docker_ok(&["service", "inspect", "web"])?)?;
    // docker re-encodes the answer through its Go types, which have no `SpecVersion`
    // (swarmkit's internal counter that our API returns too); everything else is equal.
    let mut ours = ours;
    if let Some(o) = ours[0].as_object_mut() {
        o.remove("SpecVersion");
    }
    ensure!(ours == theirs, "inspect differs:\n{ours}\n{theirs}");
    ensure!(theirs[0]["ID"] == service_id.as_str());
    let q = node.docker_ok(&["service", "ls", "-q"])?;
    ensure!(q.trim() == &service_id[..12], "{q}");

    let created = node.docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web2",
        "--replicas",
        "2",
        &img1,
        "sleep",
        "1d",
    ])?;
    let web2_id = created.trim().to_string();
    let two = node.wait_running("web2", 2)?;
    let ours = node.swarm_ok(&["service", "ps", "-q", "web2"])?;
    let mut ours: Vec<&str> = ours.lines().collect();
    ours.sort();
    let mut want: Vec<&str> = two.iter().map(|t| &t.id[..12]).collect();
    want.sort();
    ensure!(ours == want, "{ours:?} {want:?}");
    let inspect = node.swarm_ok(&["service", "inspect", "--format", "{{.ID}}", "web2"])?;
    ensure!(inspect.trim() == web2_id, "{inspect} {web2_id}");

    let out = node.docker_ok(&["service", "scale", "-d", "web=2"])?;
    ensure!(out.trim() == "web scaled to 2", "{out}");
    node.wait_running("web", 2)?;
    let replicas = node.swarm_ok(&[
        "service",
        "inspect",
        "--format",
        "{{.Spec.Mode.Replicated.Replicas}}",
        "web",
    ])?;
    ensure!(replicas.trim() == "2", "{replicas}");
    let ls_ours = node.swarm_ok(&["service", "ls"])?;
    let ls_docker = node.docker_ok(&["service", "ls"])?;
    ensure!(ls_ours == ls_docker, "{ls_ours}\n{ls_docker}");
    ensure!(ls_ours.contains("2/2"), "{ls_ours}");

    // 6. service rm: every container and its traces removed.
    let all: Vec<RunningTask> = [node.running("web")?, node.running("web2")?].concat();
    let out = node.swarm_ok(&["service", "rm", "web", "web2"])?;
    ensure!(out == "web\nweb2\n", "{out}");
    wait_for("every container gone", Duration::from_secs(60), || {
        Ok((node.containers().is_empty()
            && node.container_cgroups().is_empty()
            && node.mounts().is_empty()
            && node.all_tasks()?.is_empty()
            && all.iter().all(|t| !alive(t.pid)))
        .then_some(()))
    })
    .with_context(|| {
        format!(
            "containers {:?} cgroups {:?} mounts {:?}",
            node.containers(),
            node.container_cgroups(),
            node.mounts()
        )
    })?;
    let ls = node.swarm_ok(&["service", "ls"])?;
    ensure!(ls.lines().count() == 1, "{ls}");
    Ok(())
}

/// Runs `f` (a CLI command that waits) while sampling the service's tasks from the side.
#[allow(clippy::type_complexity)]
fn watch(
    node: &Node,
    f: impl FnOnce() -> Result<String>,
) -> Result<(String, Vec<Vec<(u64, String, String)>>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(vec![]));
    let out = std::thread::scope(|s| {
        let (stop2, samples2) = (stop.clone(), samples.clone());
        s.spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                if let Ok(tasks) = node.tasks("web") {
                    let snap: Vec<(u64, String, String)> = tasks
                        .iter()
                        .map(|t| {
                            (
                                t["Slot"].as_u64().unwrap_or(0),
                                // The image as given, without the digest it is pinned to.
                                t["Spec"]["ContainerSpec"]["Image"]
                                    .as_str()
                                    .unwrap_or("")
                                    .split('@')
                                    .next()
                                    .unwrap_or("")
                                    .to_string(),
                                format!(
                                    "{}/{}",
                                    t["DesiredState"].as_str().unwrap_or(""),
                                    t["Status"]["State"].as_str().unwrap_or("")
                                ),
                            )
                        })
                        .collect();
                    samples2.lock().unwrap().push(snap);
                }
                std::thread::sleep(Duration::from_millis(30));
            }
        });
        let out = f();
        stop.store(true, Ordering::SeqCst);
        out
    })?;
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    Ok((out, samples))
}

/// With parallelism 1: at every sample at least two of the three slots have a running
/// task, and at some moment old and new images run side by side.
fn check_one_at_a_time(samples: &[Vec<(u64, String, String)>], from: &str, to: &str) -> Result<()> {
    ensure!(samples.len() > 5, "too few samples: {}", samples.len());
    let mut mixed = false;
    for snap in samples {
        let running: BTreeSet<u64> = snap
            .iter()
            .filter(|t| t.2 == "running/running")
            .map(|t| t.0)
            .collect();
        ensure!(
            running.len() >= 2,
            "more than one slot down at once: {snap:?}"
        );
        let imgs: BTreeSet<&str> = snap
            .iter()
            .filter(|t| t.2 == "running/running")
            .map(|t| t.1.as_str())
            .collect();
        mixed |= imgs.contains(from) && imgs.contains(to);
    }
    ensure!(mixed, "never saw {from} and {to} running side by side");
    Ok(())
}

#[test]
fn spine_bad_input() -> Result<()> {
    let node = Node::start("spine-bad")?;
    node.swarm_ok(&["init"])?;
    let nosuch = format!("{}/nosuch:1", node.registry.host());

    // An unknown image: Rejected with the pull error in ERROR; the service stays.
    let out = node.swarm_ok(&["service", "create", "-d", "--name", "ghost", &nosuch])?;
    let ghost_id = out.trim().to_string();
    let rows = wait_for("a rejected task", Duration::from_secs(60), || {
        let rows = ps(&node, "ghost")?;
        Ok(rows
            .iter()
            .any(|r| r["CURRENT STATE"].starts_with("Rejected "))
            .then_some(rows))
    })?;
    let rejected = rows
        .iter()
        .find(|r| r["CURRENT STATE"].starts_with("Rejected "))
        .unwrap();
    ensure!(rejected["IMAGE"] == nosuch, "{rejected:?}");
    ensure!(rejected["ERROR"].starts_with('"'), "{rejected:?}");
    let task = node
        .tasks("ghost")?
        .into_iter()
        .find(|t| t["Status"]["State"] == "rejected")
        .context("rejected task")?;
    let err = task["Status"]["Err"].as_str().unwrap_or("");
    ensure!(
        err.contains("nosuch") || err.contains("not found") || err.contains("manifest"),
        "pull error: {err}"
    );
    let shown: String = err.chars().take(29).collect();
    ensure!(
        rejected["ERROR"]
            .trim_matches('"')
            .trim_end_matches('…')
            .starts_with(&shown),
        "ERROR column {:?} vs {err:?}",
        rejected["ERROR"]
    );
    let ls = node.swarm_ok(&["service", "ls", "--format", "{{.ID}} {{.Name}}"])?;
    ensure!(ls.trim() == format!("{} ghost", &ghost_id[..12]), "{ls}");
    ensure!(node.containers().is_empty(), "{:?}", node.containers());
    ensure!(
        node.container_cgroups().is_empty(),
        "{:?}",
        node.container_cgroups()
    );
    ensure!(node.mounts().is_empty(), "{:?}", node.mounts());

    // An invalid spec: 400 with a clear message, nothing created.
    let (code, v) = node.call(
        "POST",
        "/services/create",
        Some(&json!({"Name": "bad", "TaskTemplate": {"ContainerSpec": {}}})),
    )?;
    ensure!(code == 400, "invalid spec: {code} {v}");
    let msg = v["message"].as_str().unwrap_or("");
    ensure!(msg.contains("image"), "message: {msg}");
    let r = node.swarm(&[
        "service",
        "create",
        "-d",
        "--name",
        "bad_name!",
        &node.image("1"),
    ])?;
    ensure!(!r.ok, "{r:?}");
    ensure!(
        r.stderr.starts_with("Error response from daemon: ") && r.stderr.contains("name"),
        "{r:?}"
    );
    ensure!(r.stdout.is_empty(), "{r:?}");

    // A duplicate name: 409, Docker's line.
    node.swarm_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        &node.image("1"),
        "sleep",
        "1d",
    ])?;
    let web = node.wait_running("web", 1)?;
    let r = node.swarm(&[
        "service",
        "create",
        "--name",
        "web",
        &node.image("1"),
        "sleep",
        "1d",
    ])?;
    ensure!(!r.ok, "{r:?}");
    ensure!(
        r.stderr.trim()
            == "Error response from daemon: rpc error: code = AlreadyExists desc = name conflicts with an existing object: service web already exists"
            || r.stderr.trim()
                == "Error response from daemon: name conflicts with an existing object: service web already exists",
        "{r:?}"
    );
    let (code, v) = node.call(
        "POST",
        "/services/create",
        Some(
            &json!({"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": node.image("1")}}}),
        ),
    )?;
    ensure!(code == 409, "duplicate: {code} {v}");

    // No such service.
    let r = node.swarm(&["service", "ps", "nosuch"])?;
    ensure!(
        !r.ok && r.stderr.trim() == "no such service: nosuch",
        "{r:?}"
    );
    let r = node.docker(&["service", "ps", "nosuch"])?;
    ensure!(
        !r.ok && r.stderr.trim() == "no such service: nosuch",
        "docker: {r:?}"
    );

    // Nothing half-created: two services, web's one task and container only.
    let names: BTreeSet<String> = node
        .services()?
        .iter()
        .map(|s| s["Spec"]["Name"].as_str().unwrap_or("").to_string())
        .collect();
    ensure!(
        names == BTreeSet::from(["ghost".to_string(), "web".to_string()]),
        "{names:?}"
    );
    let running_web = node.running("web")?;
    ensure!(running_web == web, "{running_web:?} {web:?}");
    ensure!(
        node.containers() == vec![web[0].id.clone()],
        "{:?}",
        node.containers()
    );
    let tasks = node.all_tasks()?;
    ensure!(
        tasks
            .iter()
            .all(|t| t["ServiceID"] == ghost_id.as_str() || t["ID"] == web[0].id.as_str()),
        "stray tasks: {tasks:?}"
    );

    // Removing the failing service leaves nothing either.
    node.swarm_ok(&["service", "rm", "ghost", "web"])?;
    wait_for("everything removed", Duration::from_secs(60), || {
        Ok((node.containers().is_empty()
            && node.container_cgroups().is_empty()
            && node.mounts().is_empty()
            && node.all_tasks()?.is_empty())
        .then_some(()))
    })
    .with_context(|| {
        format!(
            "containers {:?} cgroups {:?} mounts {:?} tasks {:?}",
            node.containers(),
            node.container_cgroups(),
            node.mounts(),
            node.all_tasks()
        )
    })?;
    Ok(())
}
