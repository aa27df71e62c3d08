//! `stack deploy` of an N-service stack on one node until every service runs its task,
//! and `stack rm` until every container is gone: `swarm stack deploy` against swarmd vs
//! `docker stack deploy` against Docker Swarm on the same machine, the same compose file
//! (busybox `sleep 1d`, one replica each, the stack's default overlay network), images
//! not resolved on either side (`--resolve-image never`; the image is local). Goal
//! (issue 14): at least 3x faster than Docker Swarm.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use crate::services::{start_docker, start_ours, wait_for, Api, DOCKER_IMAGE};

const STACK: &str = "bench";

fn compose(image: &str, services: usize) -> String {
    let mut out = String::from("version: \"3.8\"\nservices:\n");
    for i in 1..=services {
        out += &format!(
            "  s{i:02}:\n    image: {image}\n    command: [\"sleep\", \"1d\"]\n    \
             stop_signal: SIGKILL\n    deploy:\n      replicas: 1\n"
        );
    }
    out
}

/// The stack's services that have a running task (desired running).
fn running(api: &Api) -> Result<usize> {
    let label = json!({"label": {format!("com.docker.stack.namespace={STACK}"): true}});
    let ids: BTreeSet<String> = api
        .list("/services", &label)?
        .iter()
        .filter_map(|s| s["ID"].as_str().map(str::to_string))
        .collect();
    let tasks = api.list("/tasks", &json!({"desired-state": {"running": true}}))?;
    let up: BTreeSet<&str> = tasks
        .iter()
        .filter(|t| t["Status"]["State"] == "running")
        .filter_map(|t| t["ServiceID"].as_str())
        .filter(|id| ids.contains(*id))
        .collect();
    Ok(up.len())
}

fn run_cli(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().context("run the CLI")?;
    ensure!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// (deploy -> all running, rm -> all containers gone) for one contender; `cli` makes
/// the command line (`swarm -H ...` or `docker`), `containers` counts the stack's.
fn timings(
    api: &Api,
    file: &Path,
    services: usize,
    cli: impl Fn() -> Command,
    containers: impl Fn() -> Result<usize>,
) -> Result<(Duration, Duration)> {
    let start = Instant::now();
    run_cli(
        cli()
            .args([
                "stack",
                "deploy",
                "--detach=true",
                "--resolve-image",
                "never",
                "-c",
            ])
            .arg(file)
            .arg(STACK),
    )?;
    wait_for(&format!("{services} services running"), || {
        Ok((running(api)? == services).then_some(()))
    })?;
    let up = start.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let start = Instant::now();
    run_cli(cli().args(["stack", "rm", STACK]))?;
    wait_for("every container gone", || {
        Ok((containers()? == 0).then_some(()))
    })?;
    Ok((up, start.elapsed()))
}

pub fn run(services: usize, pinned: bool) -> Result<()> {
    ensure!(
        nix::unistd::geteuid().is_root(),
        "the stack benchmark needs root"
    );
    let tmp = tempfile::Builder::new()
        .prefix("swarm-bench-stack-")
        .tempdir()?;
    println!(
        "one node: stack deploy of {services} services (busybox sleep 1d, 1 replica each, \
         one overlay network) until every service runs, stack rm until every container (and our overlay namespace) is gone\n"
    );

    let ours = (|| {
        let o = start_ours(tmp.path(), pinned)?;
        let file = tmp.path().join("ours.yml");
        std::fs::write(&file, compose(&o.image, services))?;
        let socket = o.api.socket.clone();
        let containers_dir = o.data.join("containers");
        let overlays_dir = o.data.join("net/host/netns");
        let r = timings(
            &o.api,
            &file,
            services,
            || {
                let mut c = Command::new(rootfs_tests::workspace_bin("swarm"));
                c.arg("-H").arg(format!("unix://{}", socket.display()));
                c
            },
            // Gone: the containers, and the stack's overlay namespace on the node.
            || {
                let count = |d: &Path, prefix: &str| {
                    std::fs::read_dir(d)
                        .map(|d| {
                            d.flatten()
                                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                                .count()
                        })
                        .unwrap_or(0)
                };
                Ok(count(&containers_dir, "") + count(&overlays_dir, "ov-"))
            },
        );
        drop(o.guard);
        r
    })()
    .context("swarmd");
    let peer = (|| {
        let (mut guard, api) = start_docker(tmp.path())?;
        guard.stack = Some(STACK.to_string());
        let file = tmp.path().join("docker.yml");
        std::fs::write(&file, compose(DOCKER_IMAGE, services))?;
        let label = format!("com.docker.stack.namespace={STACK}");
        timings(
            &api,
            &file,
            services,
            || Command::new("docker"),
            || {
                Ok(api
                    .list("/containers/json?all=1", &json!({"label": [label]}))?
                    .iter()
                    .filter(|c: &&Value| c["Id"].is_string())
                    .count())
            },
        )
    })();

    let (ours_up, ours_down) = match &ours {
        Ok((u, d)) => (Some(*u), Some(*d)),
        Err(_) => (None, None),
    };
    let err = |e: &anyhow::Error| format!("{e:#}");
    crate::util::row(
        &format!("swarm: stack deploy {services} -> running"),
        ours.as_ref().map(|r| r.0).map_err(err),
        None,
    );
    crate::util::row(
        &format!("docker swarm: stack deploy {services} -> running"),
        peer.as_ref().map(|r| r.0).map_err(err),
        ours_up,
    );
    crate::util::row(
        "swarm: stack rm -> containers gone",
        ours.as_ref().map(|r| r.1).map_err(err),
        None,
    );
    crate::util::row(
        "docker swarm: stack rm -> containers gone",
        peer.as_ref().map(|r| r.1).map_err(err),
        ours_down,
    );
    ours.map(|_| ())
}
