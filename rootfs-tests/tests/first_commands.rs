//! The first commands a Swarm user types (issue 19), run as a tutorial runs them: with
//! `swarm` and with the stock docker CLI on the socket of one real swarmd, real
//! containers, a real registry. Each case checks the exit code, the words (IDs and times
//! aside) and the effect.
//!
//! `first_commands`: a service created without `--replicas` (both CLIs: converged, one
//! replica stored), pinned to the registry's digest without Docker's warning, named
//! `adjective_surname` without `--name`; `swarm swarm ...` as `swarm ...`; unknown flags
//! refused before anything is sent (exit 125); `--format` with `index`, pipelines and
//! `table`; not-found errors in the daemon's words; `inspect --pretty` with the default
//! update and rollback settings; the Raft timings of `info`.

use anyhow::{ensure, Result};
use rootfs_tests::swarmd::{Node, Run};
use serde_json::Value;

/// docker's text with the program's name as ours (`See 'docker service create --help'`).
fn as_swarm(text: &str) -> String {
    text.replace("docker ", "swarm ")
        .replace("docker:", "swarm:")
        .replace("'docker'", "'swarm'")
}

/// Runs `args` with both CLIs; the runs must agree on exit code, stdout and stderr.
fn same(node: &Node, args: &[&str]) -> Result<Run> {
    let ours = node.swarm(args)?;
    let theirs = node.docker(args)?;
    // The daemon's messages are the same bytes for both; the client's name its own.
    let agree = |a: &str, b: &str| a == b || a == as_swarm(b);
    ensure!(
        ours.code == theirs.code
            && agree(&ours.stdout, &theirs.stdout)
            && agree(&ours.stderr, &theirs.stderr),
        "swarm and docker differ on {args:?}:\nswarm ({:?}):\n{}{}\ndocker ({:?}):\n{}{}",
        ours.code,
        ours.stdout,
        ours.stderr,
        theirs.code,
        theirs.stdout,
        theirs.stderr
    );
    Ok(ours)
}

fn service_count(node: &Node) -> Result<usize> {
    Ok(node.services()?.len())
}

fn spec_of(node: &Node, name: &str) -> Result<Value> {
    Ok(node.ok("GET", &format!("/services/{name}"), None)?["Spec"].clone())
}

#[test]
fn first_commands() -> Result<()> {
    let node = Node::start("first")?;
    let img = node.image("1");

    // `swarm swarm init` is `swarm init`; a second init is refused in the daemon's words
    // by both forms and by docker.
    let init = node.swarm_ok(&["swarm", "init"])?;
    ensure!(
        init.starts_with("Swarm initialized: current node ("),
        "{init}"
    );
    let again = same(&node, &["swarm", "init"])?;
    ensure!(
        again.code == Some(1) && again.stderr.contains("already part of a swarm"),
        "{again:?}"
    );
    let short = node.swarm(&["init"])?;
    ensure!(short.stderr == again.stderr, "{short:?}");
    let long = node.swarm_ok(&["swarm", "join-token", "worker"])?;
    ensure!(
        long == node.swarm_ok(&["join-token", "worker"])?
            && long.contains("swarm join --token SWMTKN-1-"),
        "{long}"
    );

    // 1. create without --replicas: both CLIs wait, converge and exit 0; one replica
    //    stored as a count (the docker CLI refused `Replicated: {}` with `unrecognized
    //    service mode`).
    let out = node.swarm_ok(&["service", "create", "--name", "one", &img, "sleep", "1d"])?;
    ensure!(out.contains("verify: Service"), "{out}");
    let d = node.docker(&["service", "create", "--name", "two", &img, "sleep", "1d"])?;
    ensure!(
        d.ok && d.stdout.contains("verify: Service") && d.stderr.is_empty(),
        "docker create: {d:?}"
    );
    for name in ["one", "two"] {
        let spec = spec_of(&node, name)?;
        ensure!(
            spec["Mode"]["Replicated"]["Replicas"] == 1,
            "{name}: {spec}"
        );
        node.wait_running(name, 1)?;
    }

    // 5. pinned to the registry's digest, platforms recorded, no warning (above: docker's
    //    stderr was empty); `service ls` shows the tag as Docker does.
    for name in ["one", "two"] {
        let spec = spec_of(&node, name)?;
        let image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
            .as_str()
            .unwrap_or_default();
        ensure!(
            image.starts_with(&format!("{img}@sha256:")),
            "{name} not pinned: {image}"
        );
        ensure!(
            spec["TaskTemplate"]["Placement"]["Platforms"][0]["OS"] == "linux",
            "{name}: {spec}"
        );
    }
    let ls = same(
        &node,
        &["service", "ls", "--format", "{{.Name}} {{.Image}}"],
    )?;
    ensure!(
        ls.stdout == format!("one {img}\ntwo {img}\n"),
        "{}",
        ls.stdout
    );

    // 4. a service without --name gets adjective_surname.
    let id = node.swarm_ok(&["service", "create", "-d", &img, "sleep", "1d"])?;
    let name = node.ok("GET", &format!("/services/{}", id.trim()), None)?["Spec"]["Name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (adjective, surname) = name.split_once('_').unwrap_or_default();
    ensure!(
        !adjective.is_empty()
            && !surname.is_empty()
            && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "random name: {name:?}"
    );
    node.wait_running(&name, 1)?;

    // 2. an unknown flag is refused before anything is sent, in docker's words and code.
    let before = service_count(&node)?;
    let bad = same(
        &node,
        &["service", "create", "--repliaces", "3", &img, "sleep", "1d"],
    )?;
    ensure!(
        bad.code == Some(125) && bad.stderr.starts_with("unknown flag: --repliaces\n"),
        "{bad:?}"
    );
    ensure!(service_count(&node)? == before, "nothing was created");
    let missing = same(&node, &["service", "create"])?;
    ensure!(missing.code == Some(1), "{missing:?}");

    // 3. --format with index, a pipeline and a table.
    let addr = same(
        &node,
        &[
            "info",
            "--format",
            "{{ (index .Swarm.RemoteManagers 0).Addr }}",
        ],
    )?;
    ensure!(addr.stdout.trim().contains(':'), "{addr:?}");
    same(&node, &["node", "ls", "--format", "{{.Hostname | upper}}"])?;
    let table = same(
        &node,
        &[
            "service",
            "ls",
            "--format",
            "table {{.Name}}\t{{.Replicas}}",
        ],
    )?;
    ensure!(table.stdout.starts_with("NAME "), "{}", table.stdout);

    // 4. not-found errors as Docker's daemon and client word them.
    for (args, want) in [
        (
            &["node", "inspect", "w1"][..],
            "Error response from daemon: node w1 not found\n",
        ),
        (
            &["service", "rm", "nosuch"][..],
            "Error response from daemon: service nosuch not found\n",
        ),
        (
            &["service", "scale", "nosuch=2"][..],
            "nosuch: Error response from daemon: service nosuch not found\n",
        ),
        (
            &["service", "logs", "nosuch"][..],
            "no such task or service: nosuch\n",
        ),
        (
            &["service", "inspect", "nosuch"][..],
            "Error: no such service: nosuch\n",
        ),
    ] {
        let r = same(&node, args)?;
        ensure!(r.code == Some(1) && r.stderr == want, "{args:?}: {r:?}");
    }

    // 4. inspect --pretty shows the default update and rollback settings.
    let pretty = same(&node, &["service", "inspect", "--pretty", "one"])?;
    for line in [
        "UpdateConfig:",
        "RollbackConfig:",
        " Update order:      stop-first",
    ] {
        ensure!(pretty.stdout.contains(line), "{line}: {}", pretty.stdout);
    }

    // 4. info shows the Raft timings the cluster runs with.
    // (`{{json}}` of a part: the same object, its keys in another order than Go's
    // struct order: docs/cli.md.)
    let args = ["info", "--format", "{{json .Swarm.Cluster.Spec.Raft}}"];
    let raft: Value = serde_json::from_str(node.swarm_ok(&args)?.trim())?;
    let docker: Value = serde_json::from_str(node.docker_ok(&args)?.trim())?;
    ensure!(
        raft == docker && raft["ElectionTick"] == 10 && raft["HeartbeatTick"] == 1,
        "{raft} {docker}"
    );

    // `swarm swarm leave` refuses to remove the last manager, in docker's words.
    let leave = same(&node, &["swarm", "leave"])?;
    ensure!(
        leave.code == Some(1)
            && leave
                .stderr
                .contains("Use `--force` to ignore this message."),
        "{leave:?}"
    );
    for s in ["one", "two", &name] {
        node.swarm_ok(&["service", "rm", s])?;
    }
    Ok(())
}
