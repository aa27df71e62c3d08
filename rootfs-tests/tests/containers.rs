//! A node's containers as the stock docker CLI sees them (issue 15, item 4, first
//! part): `docker ps`, `docker ps -a` with filters, `docker container inspect` and
//! `docker logs` against swarmd show the tasks' containers with Docker's names
//! (`web.<slot>.<task id>`), labels, state and logs; `swarm ps`, `swarm logs` and
//! `swarm container inspect` the same. Then (item 4, second part) `docker exec` (pipes
//! with stdin, exit codes, a tty), `docker top` and `docker stats`, and our CLI's.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use rootfs_tests::swarmd::{wait_for, Node, Run};
use serde_json::{json, Value};

/// `cmd` with `input` on its stdin (a pipe).
fn with_input(mut cmd: Command, input: &str) -> Result<Run> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run {:?}", cmd.get_program()))?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(input.as_bytes())?;
    Ok(child.wait_with_output()?.into())
}

/// The docker CLI on the node's socket with `input` on its stdin (a pipe).
fn docker_stdin(node: &Node, args: &[&str], input: &str) -> Result<Run> {
    let mut cmd = node.docker_command("docker");
    cmd.args(args);
    with_input(cmd, input)
}

/// `command` run on a terminal (`script` gives it a pty) that `input` is typed into,
/// with the node's socket for both CLIs; stdout is what the terminal showed.
fn on_a_tty(node: &Node, command: &str, input: &str) -> Result<Run> {
    let mut cmd = node.docker_command("script");
    cmd.args(["-qec", command, "/dev/null"]);
    with_input(cmd, input)
}

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

#[test]
fn exec_top_and_stats_on_a_tasks_container() -> Result<()> {
    let node = Node::start("exec")?;
    node.swarm_ok(&["init"])?;
    node.swarm_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--limit-memory",
        "64M",
        "--stop-signal",
        "SIGKILL",
        &node.image("1"),
        "sleep",
        "1d",
    ])?;
    let t = node.wait_running("web", 1)?.remove(0);
    let name = format!("web.{}.{}", t.slot, t.id);

    // exec with stdin piped: `cat` echoes it and ends at its EOF.
    let r = docker_stdin(&node, &["exec", "-i", &name, "cat"], "hi\n")?;
    ensure!(
        r.ok && r.stdout == "hi\n",
        "echo hi | docker exec -i cat: {r:?}"
    );
    // stdout and stderr apart, the exit code through.
    let r = node.docker(&["exec", &name, "sh", "-c", "echo out; echo err >&2; exit 3"])?;
    ensure!(
        r.code == Some(3) && r.stdout == "out\n" && r.stderr == "err\n",
        "docker exec sh -c 'exit 3': {r:?}"
    );
    // -e, -w, -u as Docker's.
    let r = node.docker_ok(&[
        "exec",
        "-e",
        "GREETING=hello",
        "-w",
        "/tmp",
        "-u",
        "nobody",
        &name,
        "sh",
        "-c",
        "echo $GREETING $(pwd) $(id -un)",
    ])?;
    ensure!(r == "hello /tmp nobody\n", "docker exec -e -w -u: {r:?}");
    // A command that is not there: Docker's words and 127.
    let r = node.docker(&["exec", &name, "nosuch"])?;
    ensure!(
        r.code == Some(127) && r.stdout.contains("executable file not found in $PATH"),
        "docker exec nosuch: {r:?}"
    );
    let r = node.docker(&["exec", "nosuchcontainer", "true"])?;
    ensure!(
        !r.ok && r.stderr.contains("No such container: nosuchcontainer"),
        "docker exec on no container: {r:?}"
    );

    // The API: a detached exec's exit code and state in /exec/{id}/json.
    let created = node.ok(
        "POST",
        &format!("/containers/{name}/exec"),
        Some(&json!({"Cmd": ["sh", "-c", "exit 3"], "AttachStdout": true})),
    )?;
    let exec_id = created["Id"].as_str().context("exec Id")?.to_string();
    ensure!(exec_id.len() == 64, "exec id {exec_id}");
    let before = node.ok("GET", &format!("/exec/{exec_id}/json"), None)?;
    ensure!(
        before["Running"] == false
            && before["ExitCode"].is_null()
            && before["ContainerID"] == t.id.as_str(),
        "exec before start: {before}"
    );
    node.ok(
        "POST",
        &format!("/exec/{exec_id}/start"),
        Some(&json!({"Detach": true})),
    )?;
    let after = wait_for("the exec's exit code", Duration::from_secs(20), || {
        let v = node.ok("GET", &format!("/exec/{exec_id}/json"), None)?;
        Ok((v["ExitCode"] == 3).then_some(v))
    })?;
    ensure!(
        after["Running"] == false
            && after["Pid"].as_i64().is_some_and(|p| p > 0)
            && after["ProcessConfig"]["entrypoint"] == "sh",
        "exec after: {after}"
    );
    // An attached start on a connection that cannot be taken over runs nothing.
    let created = node.ok(
        "POST",
        &format!("/containers/{name}/exec"),
        Some(&json!({"Cmd": ["true"], "AttachStdout": true})),
    )?;
    let plain = created["Id"].as_str().context("exec Id")?;
    let (code, _) = node.call(
        "POST",
        &format!("/exec/{plain}/start"),
        Some(&json!({"Detach": false})),
    )?;
    let v = node.ok("GET", &format!("/exec/{plain}/json"), None)?;
    ensure!(
        code == 400 && v["Pid"] == 0 && v["ExitCode"].is_null(),
        "attached start without an upgrade: {code} {v}"
    );
    let (code, v) = node.call("GET", "/exec/nosuch/json", None)?;
    ensure!(
        code == 404 && v["message"] == "No such exec instance: nosuch",
        "GET /exec/nosuch/json: {code} {v}"
    );

    // A tty: the process runs on a terminal of the container's devpts; with -i what is
    // typed reaches it (the shell's prompt and echo come back raw).
    let r = on_a_tty(
        &node,
        &format!("docker exec -t {name} sh -c 'tty; exit 4'"),
        "",
    )?;
    ensure!(
        r.code == Some(4) && r.stdout.contains("/dev/pts/"),
        "docker exec -t tty: {r:?}"
    );
    let typed = "echo hello-$((6*7)); tty; exit 6\n";
    let r = on_a_tty(&node, &format!("docker exec -it {name} sh"), typed)?;
    ensure!(
        r.code == Some(6) && r.stdout.contains("hello-42\r\n/dev/pts/"),
        "docker exec -it sh: {r:?}"
    );

    // top: the container's processes only, the command whole.
    let top = node.docker_ok(&["top", &name])?;
    ensure!(
        top.starts_with("UID") && top.contains("sleep 1d") && top.contains(&t.pid.to_string()),
        "docker top:\n{top}"
    );
    ensure!(
        top.lines().count() == 2,
        "docker top shows other processes:\n{top}"
    );

    // stats: the memory in use and the limit of --limit-memory.
    let line = node.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}|{{.PIDs}}",
        &name,
    ])?;
    let fields: Vec<&str> = line.trim().split('|').collect();
    ensure!(
        fields.len() == 3 && fields[0] == name,
        "docker stats: {line}"
    );
    let (used, limit) = fields[1].split_once(" / ").context("MemUsage")?;
    ensure!(limit == "64MiB", "docker stats limit: {line}");
    ensure!(
        !used.starts_with("0B") && used.chars().next().is_some_and(|c| c.is_ascii_digit()),
        "docker stats usage: {line}"
    );
    ensure!(fields[2] == "1", "docker stats PIDs: {line}");

    // Our CLI does the same.
    let r = node.swarm_stdin(&["exec", "-i", &name, "cat"], "hi\n")?;
    ensure!(r.ok && r.stdout == "hi\n", "swarm exec -i cat: {r:?}");
    let r = node.swarm(&["exec", &name, "sh", "-c", "echo out; echo err >&2; exit 3"])?;
    ensure!(
        r.code == Some(3) && r.stdout == "out\n" && r.stderr == "err\n",
        "swarm exec exit 3: {r:?}"
    );
    let r = node.swarm(&["container", "exec", "nosuchcontainer", "true"])?;
    ensure!(
        !r.ok && r.stderr.contains("No such container: nosuchcontainer"),
        "swarm container exec on no container: {r:?}"
    );
    let swarm = format!(
        "{} -H unix://{}",
        rootfs_tests::workspace_bin("swarm").display(),
        node.socket.display()
    );
    let r = on_a_tty(
        &node,
        &format!("{swarm} exec -t {name} sh -c 'tty; exit 4'"),
        "",
    )?;
    ensure!(
        r.code == Some(4) && r.stdout.contains("/dev/pts/"),
        "swarm exec -t tty: {r:?}"
    );
    let r = on_a_tty(&node, &format!("{swarm} exec -it {name} sh"), typed)?;
    ensure!(
        r.code == Some(6) && r.stdout.contains("hello-42\r\n/dev/pts/"),
        "swarm exec -it sh: {r:?}"
    );
    let ours = node.swarm_ok(&["top", &name])?;
    ensure!(
        ours.starts_with("UID") && ours.contains("sleep 1d") && ours.lines().count() == 2,
        "swarm top:\n{ours}"
    );
    let ours = node.swarm_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}|{{.PIDs}}",
        &name,
    ])?;
    let f: Vec<&str> = ours.trim().split('|').collect();
    ensure!(
        f.len() == 3
            && f[0] == name
            && f[1].ends_with(" / 64MiB")
            && !f[1].starts_with("0B")
            && f[2] == "1",
        "swarm stats: {ours}"
    );
    node.swarm_ok(&["service", "rm", "web"])?;
    Ok(())
}
