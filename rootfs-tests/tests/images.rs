//! Images suite: a real swarmd pulls, tags, pushes, lists, inspects and removes images
//! through the `swarm` CLI and the stock `docker` CLI (DOCKER_HOST on swarmd's socket;
//! dockerd is never used), against real registries (Debian's docker-registry 2.8) on
//! loopback. The push target registries are not in `--insecure-registry`: plain HTTP to
//! 127.0.0.0/8 is the default, as with Docker.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{ensure, Context, Result};
use rootfs_tests::registry::Registry;
use rootfs_tests::swarmd::{Node, Run};
use serde_json::Value;

/// `swarm ARGS` against `socket` with `DOCKER_CONFIG` set (credentials for push).
fn swarm_with_config(socket: &Path, config: &Path, args: &[&str]) -> Result<Run> {
    let out = Command::new(rootfs_tests::workspace_bin("swarm"))
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .args(args)
        .env_remove("SWARM_HOST")
        .env("DOCKER_CONFIG", config)
        .stdin(Stdio::null())
        .output()
        .context("run swarm")?;
    Ok(out.into())
}

/// The digest in the push's last line: `1.0: digest: sha256:... size: N`.
fn pushed_digest(out: &str, tag: &str) -> Result<String> {
    let last = out.lines().last().unwrap_or_default();
    let rest = last
        .strip_prefix(&format!("{tag}: digest: "))
        .with_context(|| format!("last line of the push: {out}"))?;
    let (digest, size) = rest.split_once(" size: ").context("size")?;
    ensure!(size.parse::<u64>().is_ok(), "size in {last}");
    Ok(digest.to_string())
}

fn inspect(node: &Node, name: &str) -> Result<Value> {
    let out = node.swarm_ok(&["image", "inspect", name])?;
    let v: Value = serde_json::from_str(&out)?;
    Ok(v[0].clone())
}

#[test]
fn pull_tag_push_ls_inspect_rm_with_the_swarm_cli() -> Result<()> {
    let node = Node::start("images-cli")?;
    let target = Registry::start()?;
    let source = node.image("1");
    let app = format!("{}/app:1.0", target.host());

    // Pull with Docker's progress, then again: up to date.
    let out = node.swarm_ok(&["image", "pull", &source])?;
    ensure!(out.starts_with("1: Pulling from busybox\n"), "{out}");
    ensure!(out.contains(": Pull complete\n"), "{out}");
    ensure!(out.contains("\nDigest: sha256:"), "{out}");
    ensure!(
        out.contains(&format!("Status: Downloaded newer image for {source}\n")),
        "{out}"
    );
    ensure!(out.ends_with(&format!("\n{source}\n")), "{out}");
    let again = node.swarm_ok(&["pull", &source])?;
    ensure!(
        again.contains(&format!("Status: Image is up to date for {source}\n")),
        "{again}"
    );
    let q = node.swarm_ok(&["image", "pull", "-q", &source])?;
    ensure!(q == format!("{source}\n"), "{q}");

    // Tag, push: the registry holds the manifest the push printed.
    node.swarm_ok(&["image", "tag", &source, &app])?;
    let out = node.swarm_ok(&["image", "push", &app])?;
    ensure!(
        out.starts_with(&format!(
            "The push refers to repository [{}/app]\n",
            target.host()
        )),
        "{out}"
    );
    ensure!(out.contains(": Preparing\n"), "{out}");
    ensure!(out.contains(": Pushed\n"), "{out}");
    ensure!(
        !out.contains("Pushing"),
        "no byte counts when not a terminal: {out}"
    );
    let digest = pushed_digest(&out, "1.0")?;
    ensure!(
        target.manifest_digest("app", "1.0")? == digest,
        "registry digest differs from the pushed one"
    );
    let again = node.swarm_ok(&["push", &app])?;
    ensure!(again.contains(": Layer already exists\n"), "{again}");
    ensure!(!again.contains(": Pushed\n"), "{again}");
    ensure!(pushed_digest(&again, "1.0")? == digest);

    // ls and inspect.
    let id = inspect(&node, &app)?["Id"]
        .as_str()
        .context("Id")?
        .to_string();
    let short = &id["sha256:".len().."sha256:".len() + 12];
    let ls = node.swarm_ok(&["image", "ls"])?;
    let header = ls.lines().next().unwrap_or_default();
    ensure!(
        header.split_whitespace().collect::<Vec<_>>()
            == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"],
        "{ls}"
    );
    let row = ls
        .lines()
        .find(|l| l.starts_with(&format!("{}/app ", target.host())))
        .with_context(|| format!("no app row: {ls}"))?;
    let cols: Vec<&str> = row.split_whitespace().collect();
    ensure!(cols[1] == "1.0" && cols[2] == short, "{row}");
    let q = node.swarm_ok(&["images", "-q"])?;
    ensure!(
        q.lines().all(|l| l == short) && q.lines().count() == 2,
        "{q}"
    );
    let f = node.swarm_ok(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])?;
    ensure!(f.lines().any(|l| l == app), "{f}");
    let d = node.swarm_ok(&["image", "ls", "--digests", "--no-trunc"])?;
    ensure!(d.contains(&digest) && d.contains(&id), "{d}");
    let filtered = node.swarm_ok(&["image", "ls", &format!("{}/app", target.host())])?;
    ensure!(filtered.lines().count() == 2, "{filtered}");
    let i = inspect(&node, &app)?;
    let tags: Vec<&str> = i["RepoTags"]
        .as_array()
        .context("RepoTags")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    ensure!(
        tags.contains(&app.as_str()) && tags.contains(&source.as_str()),
        "{i}"
    );
    ensure!(i["RootFS"]["Type"] == "layers", "{i}");
    ensure!(!i["RootFS"]["Layers"]
        .as_array()
        .context("layers")?
        .is_empty());
    ensure!(
        i["Os"] == "linux" && i["Size"].as_u64().unwrap_or(0) > 0,
        "{i}"
    );
    ensure!(inspect(&node, short)?["Id"] == id.as_str());
    let miss = node.swarm(&["image", "inspect", "nope"])?;
    ensure!(
        !miss.ok && miss.stderr.trim() == "Error: No such image: nope",
        "{} | {} | {:?}",
        miss.stdout,
        miss.stderr,
        miss.code
    );

    // Push of what is not here, in Docker's words.
    let none = node.swarm(&["image", "push", &format!("{}/nope:1", target.host())])?;
    ensure!(
        !none.ok
            && none.stderr.trim()
                == format!(
                    "Error response from daemon: An image does not exist locally with the tag: {}/nope",
                    target.host()
                ),
        "{} | {} | {:?}", none.stdout, none.stderr, none.code
    );

    // rm: one of two tags only untags; the last tag deletes.
    let out = node.swarm_ok(&["image", "rm", &app])?;
    ensure!(out == format!("Untagged: {app}\n"), "{out}");
    let out = node.swarm_ok(&["rmi", &source])?;
    ensure!(
        out == format!("Untagged: {source}\nDeleted: {id}\n"),
        "{out}"
    );
    ensure!(!node.swarm(&["image", "inspect", &id])?.ok);
    let blobs = std::fs::read_dir(node.data.join("image/blobs/sha256"))?.count();
    ensure!(blobs == 0, "{blobs} blobs left after the last image went");
    let miss = node.swarm(&["rmi", "nope"])?;
    ensure!(
        miss.stderr.trim() == "Error response from daemon: No such image: nope:latest",
        "{} | {} | {:?}",
        miss.stdout,
        miss.stderr,
        miss.code
    );

    // Pull it back from where we pushed it: the same image.
    let out = node.swarm_ok(&["image", "pull", &app])?;
    ensure!(out.contains(&format!("Digest: {digest}\n")), "{out}");
    ensure!(inspect(&node, &app)?["Id"] == id.as_str());

    // An image a task's container uses: 409 unless forced; forced, only the tag goes.
    node.swarm_ok(&["swarm", "init"])?;
    node.swarm_ok(&[
        "service", "create", "--detach", "--name", "web", &app, "sleep", "1d",
    ])?;
    node.wait_running("web", 1)?;
    let busy = node.swarm(&["image", "rm", &app])?;
    ensure!(
        !busy.ok
            && busy.stderr.contains(&format!(
                "conflict: unable to remove repository reference \"{app}\" (must force) - container"
            )),
        "{} | {} | {:?}",
        busy.stdout,
        busy.stderr,
        busy.code
    );
    let by_id = node.swarm(&["image", "rm", "-f", short])?;
    ensure!(
        by_id
            .stderr
            .contains("(cannot be forced) - image is being used by running container"),
        "{} | {} | {:?}",
        by_id.stdout,
        by_id.stderr,
        by_id.code
    );
    let out = node.swarm_ok(&["image", "rm", "-f", &app])?;
    ensure!(out == format!("Untagged: {app}\n"), "{out}");
    let dangling = node.swarm_ok(&["image", "ls", "--filter", "dangling=true", "-q"])?;
    ensure!(dangling.trim() == short, "{dangling}");
    node.swarm_ok(&["service", "rm", "web"])?;
    Ok(())
}

#[test]
fn push_with_basic_auth_from_the_docker_config() -> Result<()> {
    let node = Node::start("images-auth")?;
    let target = Registry::start_with_auth("pusher", "s3cret")?;
    let source = node.image("1");
    let app = format!("{}/team/app:2", target.host());
    node.swarm_ok(&["image", "pull", "-q", &source])?;
    node.swarm_ok(&["image", "tag", &source, &app])?;

    let empty = node.tmp.path().join("no-creds");
    std::fs::create_dir_all(&empty)?;
    let refused = swarm_with_config(&node.socket, &empty, &["image", "push", &app])?;
    ensure!(
        !refused.ok,
        "pushed without credentials: {}",
        refused.stdout
    );
    ensure!(
        refused.stderr.contains("unauthorized"),
        "{}",
        refused.stderr
    );

    let config = node.tmp.path().join("creds");
    std::fs::create_dir_all(&config)?;
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode("pusher:s3cret");
    std::fs::write(
        config.join("config.json"),
        serde_json::json!({"auths": {target.host(): {"auth": auth}}}).to_string(),
    )?;
    let run = swarm_with_config(&node.socket, &config, &["image", "push", &app])?;
    ensure!(run.ok, "{}{}", run.stdout, run.stderr);
    let digest = pushed_digest(&run.stdout, "2")?;
    ensure!(target.manifest_digest("team/app", "2")? == digest);

    // And back, with the same credentials.
    node.swarm_ok(&["rmi", &app])?;
    let pulled = swarm_with_config(&node.socket, &config, &["pull", &app])?;
    ensure!(pulled.ok, "{}{}", pulled.stdout, pulled.stderr);
    ensure!(
        pulled.stdout.contains(&format!("Digest: {digest}")),
        "{}",
        pulled.stdout
    );
    Ok(())
}

#[test]
fn the_stock_docker_cli_pulls_tags_pushes_and_removes() -> Result<()> {
    let node = Node::start("images-docker")?;
    let target = Registry::start()?;
    let source = node.image("2");
    let app = format!("{}/app:2.0", target.host());

    let out = node.docker_ok(&["pull", &source])?;
    ensure!(out.contains("Pull complete"), "{out}");
    ensure!(out.trim_end().ends_with(&source), "{out}");
    node.docker_ok(&["tag", &source, &app])?;
    let images = node.docker_ok(&["images"])?;
    ensure!(
        images
            .lines()
            .any(|l| l.starts_with(&format!("{}/app ", target.host())) && l.contains(" 2.0 ")),
        "{images}"
    );
    let out = node.docker_ok(&["push", &app])?;
    ensure!(
        out.contains(&format!(
            "The push refers to repository [{}/app]",
            target.host()
        )),
        "{out}"
    );
    let digest = pushed_digest(out.trim_end(), "2.0")?;
    ensure!(target.manifest_digest("app", "2.0")? == digest);
    let again = node.docker_ok(&["push", &app])?;
    ensure!(again.contains("Layer already exists"), "{again}");

    let fmt = node.docker_ok(&["image", "inspect", "-f", "{{.Id}} {{.Os}}", &app])?;
    ensure!(
        fmt.starts_with("sha256:") && fmt.trim_end().ends_with(" linux"),
        "{fmt}"
    );
    let out = node.docker_ok(&["rmi", &app])?;
    ensure!(out.contains(&format!("Untagged: {app}")), "{out}");
    let out = node.docker_ok(&["rmi", &source])?;
    ensure!(out.contains("Deleted: sha256:"), "{out}");
    let miss = node.docker(&["image", "inspect", &app])?;
    ensure!(
        !miss.ok && miss.stderr.contains("No such image"),
        "{} | {} | {:?}",
        miss.stdout,
        miss.stderr,
        miss.code
    );

    let out = node.docker_ok(&["pull", &app])?;
    ensure!(out.contains(&format!("Digest: {digest}")), "{out}");
    let missing = node.docker(&["push", &format!("{}/nope:1", target.host())])?;
    ensure!(
        missing
            .stderr
            .contains("An image does not exist locally with the tag"),
        "{}",
        missing.stderr
    );
    Ok(())
}
