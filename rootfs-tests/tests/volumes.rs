//! Named volumes (issue 15, item 4, volumes part): `swarm volume create|ls|inspect|rm|
//! prune` and the stock docker CLI against one swarmd give Docker's answers and words;
//! a service's volume keeps its data across a task restart, cannot be removed while a
//! container (running or exited) mounts it, and goes with its directory once the
//! containers are gone; prune removes only what no container mounts (anonymous volumes
//! unless `--all`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Result};
use rootfs_tests::swarmd::{wait_for, Node};
use serde_json::Value;

fn volume_dir(node: &Node, name: &str) -> PathBuf {
    node.data.join("volumes").join(name)
}

#[test]
fn volumes_through_both_clis_and_a_service() -> Result<()> {
    let node = Node::start("volumes")?;
    node.swarm_ok(&["init"])?;

    // Create, list, inspect: ours and the stock docker CLI alike.
    let out = node.swarm_ok(&["volume", "create", "--label", "team=a", "v0"])?;
    ensure!(out == "v0\n", "swarm volume create: {out:?}");
    let out = node.docker_ok(&["volume", "create", "dv"])?;
    ensure!(out == "dv\n", "docker volume create: {out:?}");
    let anon = node.docker_ok(&["volume", "create"])?.trim().to_string();
    ensure!(
        anon.len() == 64 && anon.chars().all(|c| c.is_ascii_hexdigit()),
        "an anonymous volume's name: {anon:?}"
    );
    for n in ["v0", "dv", anon.as_str()] {
        ensure!(
            volume_dir(&node, n).join("_data").is_dir(),
            "no _data for {n}"
        );
    }
    let ours = node.swarm_ok(&["volume", "ls"])?;
    let theirs = node.docker_ok(&["volume", "ls"])?;
    let mut want = vec!["DRIVER    VOLUME NAME".to_string()];
    let mut names = [anon.clone(), "dv".into(), "v0".into()];
    names.sort();
    want.extend(names.iter().map(|n| format!("local     {n}")));
    ensure!(
        theirs.lines().collect::<Vec<_>>() == want,
        "docker volume ls:\n{theirs}"
    );
    ensure!(
        ours == theirs,
        "swarm volume ls:\n{ours}\ndocker:\n{theirs}"
    );
    let q = node.swarm_ok(&["volume", "ls", "-q", "--filter", "label=team=a"])?;
    ensure!(q == "v0\n", "ls -q --filter label: {q:?}");
    let q = node.docker_ok(&["volume", "ls", "-q", "--filter", "name=dv"])?;
    ensure!(q == "dv\n", "docker volume ls --filter name: {q:?}");
    let f = node.swarm_ok(&[
        "volume",
        "ls",
        "--format",
        "{{.Name}}:{{.Labels}}",
        "-f",
        "name=v0",
    ])?;
    ensure!(f == "v0:team=a\n", "ls --format: {f:?}");

    let v: Value = serde_json::from_str(&node.docker_ok(&["volume", "inspect", "v0"])?)?;
    let v = &v[0];
    ensure!(
        v["Name"] == "v0"
            && v["Driver"] == "local"
            && v["Scope"] == "local"
            && v["Labels"]["team"] == "a"
            && v["Mountpoint"] == volume_dir(&node, "v0").join("_data").to_str().unwrap()
            && v["CreatedAt"].as_str().is_some_and(|t| t.ends_with('Z')),
        "docker volume inspect v0: {v}"
    );
    let v: Value = serde_json::from_str(&node.swarm_ok(&["volume", "inspect", &anon])?)?;
    ensure!(
        v[0]["Labels"]["com.docker.volume.anonymous"] == "",
        "an anonymous volume's labels: {}",
        v[0]
    );
    let mp = node.swarm_ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "dv"])?;
    ensure!(
        mp.trim() == volume_dir(&node, "dv").join("_data").to_str().unwrap(),
        "inspect -f: {mp}"
    );

    // Misses and refusals in Docker's words, from both CLIs.
    for r in [
        node.docker(&["volume", "inspect", "nosuch"])?,
        node.swarm(&["volume", "inspect", "nosuch"])?,
        node.docker(&["volume", "rm", "nosuch"])?,
        node.swarm(&["volume", "rm", "nosuch"])?,
    ] {
        ensure!(
            !r.ok && r.stderr.trim() == "Error response from daemon: get nosuch: no such volume",
            "a missing volume: {r:?}"
        );
    }
    let r = node.swarm(&["volume", "rm", "-f", "nosuch"])?;
    ensure!(r.ok && r.stdout == "nosuch\n", "rm -f nosuch: {r:?}");
    let r = node.docker(&["volume", "create", "-o", "foo=bar", "vx"])?;
    ensure!(
        !r.ok && r.stderr.contains("create vx: invalid option: \"foo\""),
        "create -o foo=bar: {r:?}"
    );
    ensure!(
        !volume_dir(&node, "vx").exists(),
        "a refused create left vx"
    );

    // rm through docker, then ours.
    let out = node.docker_ok(&["volume", "rm", "dv"])?;
    ensure!(out == "dv\n", "docker volume rm: {out:?}");
    ensure!(!volume_dir(&node, "dv").exists(), "dv's dir is still there");
    node.swarm_ok(&["volume", "rm", "v0", &anon])?;
    ensure!(
        node.swarm_ok(&["volume", "ls", "-q"])?.is_empty(),
        "volumes left"
    );

    // A service writes to its volume; the volume is refused while the container exists.
    node.swarm_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--restart-delay",
        "1s",
        "--mount",
        "type=volume,source=v1,target=/data",
        &node.image("1"),
        "sh",
        "-c",
        "echo hello >> /data/f; sleep 1d",
    ])?;
    let first = node.wait_running("web", 1)?.remove(0);
    let file = volume_dir(&node, "v1").join("_data").join("f");
    wait_for("the task's write", Duration::from_secs(20), || {
        Ok((std::fs::read_to_string(&file).unwrap_or_default() == "hello\n").then_some(()))
    })?;
    let refused = format!(
        "Error response from daemon: remove v1: volume is in use - [{}]",
        first.id
    );
    for r in [
        node.swarm(&["volume", "rm", "v1"])?,
        node.docker(&["volume", "rm", "-f", "v1"])?,
    ] {
        ensure!(!r.ok && r.stderr.trim() == refused, "rm v1 in use: {r:?}");
    }
    let d = node.docker_ok(&["volume", "ls", "-q", "--filter", "dangling=false"])?;
    ensure!(d == "v1\n", "dangling=false: {d:?}");
    let d = node.swarm_ok(&["volume", "ls", "-q", "--filter", "dangling=true"])?;
    ensure!(d.is_empty(), "dangling=true: {d:?}");

    // The task's process dies: a new task, same volume, the first line still there.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first.pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let second = wait_for("a new task of web", Duration::from_secs(60), || {
        Ok(node
            .running("web")?
            .into_iter()
            .find(|t| t.id != first.id && rootfs_tests::swarmd::alive(t.pid)))
    })?;
    wait_for("the new task's write", Duration::from_secs(20), || {
        Ok((std::fs::read_to_string(&file).unwrap_or_default() == "hello\nhello\n").then_some(()))
    })?;
    // The exited container of the first task still mounts it: refused, both named.
    let r = node.swarm(&["volume", "rm", "v1"])?;
    ensure!(
        !r.ok
            && r.stderr.contains("remove v1: volume is in use - [")
            && r.stderr.contains(&first.id)
            && r.stderr.contains(&second.id),
        "rm v1 with an exited and a running container: {r:?}"
    );

    // Once the service and its containers are gone, rm works and the directory goes.
    node.swarm_ok(&["service", "rm", "web"])?;
    wait_for("web's containers removed", Duration::from_secs(60), || {
        Ok(node.containers().is_empty().then_some(()))
    })?;
    let out = node.swarm_ok(&["volume", "rm", "v1"])?;
    ensure!(out == "v1\n", "rm v1: {out:?}");
    ensure!(!volume_dir(&node, "v1").exists(), "v1's dir is still there");

    // Prune: only what no container mounts; anonymous ones unless --all.
    let used = node.swarm_ok(&["volume", "create"])?.trim().to_string();
    let unused = node.swarm_ok(&["volume", "create"])?.trim().to_string();
    node.swarm_ok(&["volume", "create", "named"])?;
    std::fs::write(volume_dir(&node, &unused).join("_data/f"), [7u8; 2000])?;
    node.swarm_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "user",
        "--mount",
        &format!("type=volume,source={used},target=/data"),
        &node.image("1"),
        "sleep",
        "1d",
    ])?;
    node.wait_running("user", 1)?;
    let r = node.swarm_stdin(&["volume", "prune"], "y\n")?;
    ensure!(
        r.ok && r.stdout
            == format!(
                "WARNING! This will remove anonymous local volumes not used by at least one \
                 container.\nAre you sure you want to continue? [y/N] Deleted Volumes:\n\
                 {unused}\n\nTotal reclaimed space: 2kB\n"
            ),
        "swarm volume prune: {r:?}"
    );
    let out = node.docker_ok(&["volume", "prune", "-f", "--all"])?;
    ensure!(
        out == "Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n",
        "docker volume prune --all: {out:?}"
    );
    let left = node.swarm_ok(&["volume", "ls", "-q"])?;
    ensure!(left == format!("{used}\n"), "after prune: {left:?}");
    let out = node.swarm_ok(&["volume", "prune", "-f"])?;
    ensure!(
        out == "Total reclaimed space: 0B\n",
        "nothing to prune: {out:?}"
    );
    Ok(())
}
