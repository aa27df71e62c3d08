//! `GET /events` (issue 16) as users watch it: the stock `docker events --filter
//! scope=swarm --format '{{json .}}'` and `swarm events` run in the background on a real
//! swarmd's socket while a service is created, scaled, updated and removed, a secret
//! comes and goes and a node gets a label; each expected event must arrive with moby's
//! attributes. Then `--since`/`--until` replay the same events from the manager's ring.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use rootfs_tests::swarmd::{wait_for, Node};
use serde_json::Value;

/// A command streaming into a file until dropped (killed by its own pid).
struct Watcher {
    child: Child,
    out: PathBuf,
}

impl Watcher {
    fn start(mut cmd: Command, out: PathBuf) -> Result<Watcher> {
        let file = std::fs::File::create(&out)?;
        let child = cmd
            .stdout(file)
            .stderr(Stdio::inherit())
            .stdin(Stdio::null())
            .spawn()?;
        Ok(Watcher { child, out })
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// The JSON lines so far.
    fn events(&self) -> Vec<Value> {
        self.text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn docker_cmd(node: &Node, args: &[&str]) -> Command {
    let mut c = node.docker_command("docker");
    c.args(args);
    c
}

fn swarm_cmd(node: &Node, args: &[&str]) -> Command {
    let mut c = Command::new(rootfs_tests::workspace_bin("swarm"));
    c.arg("-H")
        .arg(format!("unix://{}", node.socket.display()))
        .args(args)
        .env_remove("SWARM_HOST");
    c
}

fn attr<'a>(e: &'a Value, k: &str) -> &'a str {
    e["Actor"]["Attributes"][k].as_str().unwrap_or_default()
}

/// Waits until `w` has an event matching `f`; returns it.
fn expect(w: &Watcher, what: &str, f: impl Fn(&Value) -> bool) -> Result<Value> {
    wait_for(what, Duration::from_secs(30), || {
        Ok(w.events().into_iter().find(|e| f(e)))
    })
    .with_context(|| format!("events so far:\n{}", w.text()))
}

fn is(e: &Value, kind: &str, action: &str, name: &str) -> bool {
    e["Type"] == kind && e["Action"] == action && attr(e, "name") == name
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as i64
}

fn stamp(nanos: i64) -> String {
    format!("{}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000)
}

#[test]
fn events_stream_as_docker_sends_them() -> Result<()> {
    let node = Node::start("events")?;
    node.swarm_ok(&["init"])?;
    let dir = node.tmp.path();
    let docker = Watcher::start(
        docker_cmd(
            &node,
            &[
                "events",
                "--filter",
                "scope=swarm",
                "--format",
                "{{json .}}",
            ],
        ),
        dir.join("docker-events.json"),
    )?;
    let ours = Watcher::start(
        swarm_cmd(&node, &["events", "--format", "json"]),
        dir.join("swarm-events.json"),
    )?;
    let pretty = Watcher::start(swarm_cmd(&node, &["events"]), dir.join("swarm-events.txt"))?;

    // Both listen once a probe's event reached them; what follows is after `t0`. A
    // watcher that subscribed after a probe was made (the docker CLI can take a second
    // to start on a loaded machine) only sees a later one: a new probe every 2 s.
    let probe = node.tmp.path().join("probe");
    std::fs::write(&probe, "x")?;
    let is_probe = |e: &Value| {
        e["Type"] == "config" && e["Action"] == "create" && attr(e, "name").starts_with("probe")
    };
    let mut probes = 0;
    let mut last = std::time::Instant::now() - Duration::from_secs(10);
    wait_for(
        "every watcher to see a probe",
        Duration::from_secs(60),
        || {
            if last.elapsed() >= Duration::from_secs(2) {
                probes += 1;
                node.swarm_ok(&[
                    "config",
                    "create",
                    &format!("probe{probes}"),
                    probe.to_str().unwrap(),
                ])?;
                last = std::time::Instant::now();
            }
            let seen = [&docker, &ours]
                .iter()
                .all(|w| w.events().iter().any(is_probe))
                && pretty.text().contains("config create");
            Ok(seen.then_some(()))
        },
    )
    .with_context(|| {
        format!(
            "docker saw:\n{}\nswarm saw:\n{}",
            docker.text(),
            ours.text()
        )
    })?;
    let t0 = now_nanos();

    let img1 = node.image("1");
    let img2 = node.image("2");
    node.swarm_ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--replicas",
        "1",
        &img1,
        "sleep",
        "1d",
    ])?;
    node.swarm_ok(&["service", "scale", "web=2"])?;
    node.swarm_ok(&["service", "update", "--image", &img2, "web"])?;
    node.swarm_ok(&["service", "rm", "web"])?;
    let secret = node.tmp.path().join("secret");
    std::fs::write(&secret, "s3cr3t")?;
    node.swarm_ok(&["secret", "create", "db-pass", secret.to_str().unwrap()])?;
    node.swarm_ok(&["secret", "rm", "db-pass"])?;
    node.swarm_ok(&["node", "update", "--label-add", "zone=a", "node-test"])?;

    for w in [&docker, &ours] {
        let created = expect(w, "service create", |e| is(e, "service", "create", "web"))?;
        ensure!(created["scope"] == "swarm", "{created}");
        let id = created["Actor"]["ID"].as_str().unwrap_or_default();
        ensure!(id.len() == 25, "{created}");
        let t = created["timeNano"].as_i64().unwrap_or_default();
        ensure!(
            created["time"].as_i64() == Some(t / 1_000_000_000) && t >= t0,
            "{created}"
        );
        expect(w, "the scale", |e| {
            is(e, "service", "update", "web")
                && attr(e, "replicas.old") == "1"
                && attr(e, "replicas.new") == "2"
        })?;
        expect(w, "the image update", |e| {
            is(e, "service", "update", "web")
                && attr(e, "image.old").contains("busybox:1")
                && attr(e, "image.new").contains("busybox:2")
        })?;
        expect(w, "the rolling update's state", |e| {
            is(e, "service", "update", "web") && attr(e, "updatestate.new") == "updating"
        })?;
        expect(w, "service remove", |e| {
            is(e, "service", "remove", "web") && e["Actor"]["ID"] == id
        })?;
        expect(w, "secret create", |e| is(e, "secret", "create", "db-pass"))?;
        expect(w, "secret remove", |e| is(e, "secret", "remove", "db-pass"))?;
        // After t0: the node's own update at init time (seen by a watcher that
        // subscribed early) is not this one.
        expect(w, "the node's label", |e| {
            is(e, "node", "update", "node-test")
                && e["Actor"]["Attributes"].as_object().map(|a| a.len()) == Some(1)
                && e["timeNano"].as_i64().unwrap_or_default() >= t0
        })?;
        // No task makes an event in swarm scope, nor the cluster object; the node's
        // containers' events are local (only ours subscribed to them).
        ensure!(
            w.events().iter().all(|e| match e["scope"].as_str() {
                Some("swarm") => ["service", "node", "secret", "config", "network"]
                    .contains(&e["Type"].as_str().unwrap_or_default()),
                Some("local") => e["Type"] == "container",
                _ => false,
            }),
            "{}",
            w.text()
        );
    }
    // The task containers' own events, as dockerd sends them on the node: created,
    // started, stopped (die with its exit code, stop) and destroyed, named and labelled
    // as Docker names and labels a task's container.
    let container = |e: &Value, action: &str| {
        e["Type"] == "container"
            && e["scope"] == "local"
            && e["Action"] == action
            && attr(e, "com.docker.swarm.service.name") == "web"
            && attr(e, "name").starts_with("web.")
            && attr(e, "name").ends_with(e["Actor"]["ID"].as_str().unwrap_or("-"))
            && attr(e, "com.docker.swarm.task.id") == e["Actor"]["ID"]
            && attr(e, "image").contains("busybox:")
    };
    for action in ["create", "start", "stop", "destroy"] {
        expect(&ours, &format!("a task container's {action}"), |e| {
            container(e, action)
        })?;
    }
    expect(&ours, "a task container's die", |e| {
        container(e, "die") && attr(e, "exitCode") == "137"
    })?;
    ensure!(
        docker.events().iter().all(|e| e["scope"] == "swarm"),
        "{}",
        docker.text()
    );
    let t1 = now_nanos();
    // Ours and Docker's CLI saw the same stream after the probes (each watcher saw the
    // probes from the one it subscribed before).
    let key = |e: &Value| e.to_string();
    let after_t0 = |e: &&Value| e["timeNano"].as_i64().unwrap_or_default() >= t0;
    let (d, o): (Vec<String>, Vec<String>) = (
        docker.events().iter().filter(after_t0).map(key).collect(),
        ours.events()
            .iter()
            .filter(after_t0)
            .filter(|e| e["scope"] == "swarm")
            .map(key)
            .collect(),
    );
    ensure!(
        d == o,
        "docker:\n{}\nswarm:\n{}",
        docker.text(),
        ours.text()
    );

    // The pretty form: `TIME TYPE ACTION ID (k=v, ...)`, one line per event.
    eprintln!("swarm events printed:\n{}", pretty.text());
    // What came after the last probe (every probe came before t0, and so did the
    // node's own update at init, which a watcher that subscribed early saw).
    let text = pretty.text();
    let all: Vec<&str> = text.lines().collect();
    let after_probes = all
        .iter()
        .rposition(|l| l.contains(" config create "))
        .map_or(0, |i| i + 1);
    let lines: Vec<String> = all[after_probes..]
        .iter()
        .filter(|l| !l.contains(" container "))
        .map(|l| l.to_string())
        .collect();
    ensure!(lines.len() == o.len(), "{lines:?}");
    let create = lines
        .iter()
        .find(|l| l.contains(" service create "))
        .context("pretty create")?;
    ensure!(create.ends_with(" (name=web)"), "{create}");
    ensure!(
        create.as_bytes()[10] == b'T' && create.split(' ').next().unwrap().len() >= 30,
        "RFC3339 with nine decimals: {create}"
    );
    let scale = lines
        .iter()
        .find(|l| l.contains("replicas.new=2"))
        .context("pretty scale")?;
    ensure!(
        scale.ends_with("(name=web, replicas.new=2, replicas.old=1)"),
        "{scale}"
    );

    // Replay: since/until over the manager's ring give what the live stream gave.
    let live: Vec<String> = docker
        .events()
        .iter()
        .filter(|e| e["timeNano"].as_i64().is_some_and(|t| t >= t0 && t <= t1))
        .map(key)
        .collect();
    let (since, until) = (stamp(t0), stamp(t1));
    let replay = node.docker_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "scope=swarm",
        "--format",
        "{{json .}}",
    ])?;
    let replayed: Vec<String> = replay
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).map(|v| key(&v)))
        .collect::<Result<_, _>>()?;
    ensure!(live == replayed, "live:\n{live:#?}\nreplayed:\n{replay}");
    let ours_replay = node.swarm_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "-f",
        "type=service",
        "-f",
        "event=update",
    ])?;
    let n = live
        .iter()
        .filter(|e| e.contains(r#""Type":"service""#) && e.contains(r#""Action":"update""#))
        .count();
    ensure!(
        n >= 3 && ours_replay.lines().count() == n,
        "{n} updates; swarm events replayed:\n{ours_replay}"
    );
    ensure!(
        ours_replay.lines().all(|l| l.contains(" service update ")),
        "{ours_replay}"
    );
    // A filter by name, as Docker's: the service's name or ID prefix.
    let by_name = node.docker_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "secret=db-",
    ])?;
    ensure!(
        by_name.lines().count() == 2 && by_name.lines().all(|l| l.contains(" secret ")),
        "{by_name}"
    );
    // The containers' events replay too, to the stock CLI: one start per task (one
    // created, one by the scale, two by the rolling update).
    let starts = node.docker_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=container",
        "--filter",
        "event=start",
    ])?;
    ensure!(
        starts.lines().count() == 4
            && starts
                .lines()
                .all(|l| l.contains(" container start ") && l.contains("name=web.")),
        "{starts}"
    );
    // Docker's refusal of an inverted window.
    let r = node.docker(&["events", "--since", &until, "--until", &since])?;
    ensure!(
        !r.ok && r.stderr.contains("cannot be after `until` time"),
        "{}",
        r.stderr
    );
    Ok(())
}
