//! Secrets and configs end to end on one real swarmd, driven by the `swarm` CLI: a secret
//! created from stdin and a config from a file, a service whose containers read them at
//! `/run/secrets/<name>` and `/<target>` (owner and mode from the reference), the data
//! never returned by the API nor written to the node's disk, removal refused while the
//! service uses them and allowed after.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use base64::Engine;
use rootfs_tests::conformance::files_containing;
use rootfs_tests::swarmd::{wait_for, Node, Run};

/// `swarm ARGS` with `input` on stdin.
fn swarm_stdin(node: &Node, args: &[&str], input: &[u8]) -> Result<Run> {
    let mut child = Command::new(rootfs_tests::workspace_bin("swarm"))
        .arg("-H")
        .arg(format!("unix://{}", node.socket.display()))
        .args(args)
        .env_remove("SWARM_HOST")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().context("stdin")?.write_all(input)?;
    Ok(child.wait_with_output()?.into())
}

#[test]
fn secrets_and_configs_reach_tasks() -> Result<()> {
    let node = Node::start("secrets")?;
    let img = node.image("1");
    node.swarm_ok(&["init"])?;

    // Distinct per run, so that a search of the disk finds only this run's traces.
    let nonce = format!("{}-{:x}", std::process::id(), clock_nanos());
    let shown = format!("shown-{nonce}");
    let hidden = format!("hidden-{nonce}");
    let conf = format!("listen {nonce}\n");

    // Create: from stdin, and a config from a file; each prints its ID.
    let r = swarm_stdin(&node, &["secret", "create", "db_pw", "-"], shown.as_bytes())?;
    ensure!(r.ok, "secret create: {}{}", r.stdout, r.stderr);
    let secret_id = r.stdout.trim().to_string();
    ensure!(secret_id.len() == 25, "secret create prints the ID: {r:?}");
    let r = swarm_stdin(
        &node,
        &["secret", "create", "--label", "env=test", "api_key", "-"],
        hidden.as_bytes(),
    )?;
    ensure!(r.ok, "secret create: {}{}", r.stdout, r.stderr);
    let conf_file = node.tmp.path().join("app.conf");
    std::fs::write(&conf_file, &conf)?;
    let config_id = node
        .swarm_ok(&[
            "config",
            "create",
            "app",
            conf_file.to_str().context("path")?,
        ])?
        .trim()
        .to_string();

    // Client-side refusals: as the stock docker CLI words them.
    let missing = node.tmp.path().join("missing");
    let missing = missing.to_str().context("path")?;
    for args in [
        &["secret", "create", "e", "-"][..],
        &["secret", "create", "e", missing],
        &["secret", "create", "e"],
        &["config", "create", "e", "-"],
        &["config", "create", "e", missing],
    ] {
        let (d, s) = (node.docker(args)?, node.swarm(args)?);
        ensure!(
            !d.ok && !s.ok && d.stderr == s.stderr,
            "{args:?}: docker said {d:?}, swarm said {s:?}"
        );
    }

    // A taken name: Docker's words.
    let r = swarm_stdin(&node, &["secret", "create", "db_pw", "-"], b"x")?;
    ensure!(
        !r.ok
            && r.stderr.trim()
                == "Error response from daemon: rpc error: code = AlreadyExists desc = secret db_pw already exists",
        "duplicate secret: {r:?}"
    );

    // ls: Docker's table, sorted by name; -q; a filter.
    let ls = node.swarm_ok(&["secret", "ls"])?;
    let lines: Vec<&str> = ls.lines().collect();
    ensure!(lines.len() == 3, "secret ls: {ls}");
    ensure!(
        lines[0].split_whitespace().collect::<Vec<_>>()
            == ["ID", "NAME", "DRIVER", "CREATED", "UPDATED"],
        "secret ls header: {ls}"
    );
    ensure!(
        lines[1].contains(" api_key ")
            && lines[2].starts_with(&secret_id)
            && lines[2].contains(" db_pw "),
        "secret ls rows: {ls}"
    );
    let q = node.swarm_ok(&["secret", "ls", "-q", "--filter", "label=env=test"])?;
    ensure!(
        q.lines().count() == 1 && !q.contains(&secret_id),
        "filtered: {q}"
    );
    let ls = node.swarm_ok(&["config", "ls"])?;
    ensure!(
        ls.lines()
            .next()
            .map(|h| h.split_whitespace().collect::<Vec<_>>())
            == Some(vec!["ID", "NAME", "CREATED", "UPDATED"])
            && ls.contains(&config_id),
        "config ls: {ls}"
    );

    // inspect: a secret's data is never returned, a config's is.
    let out = node.swarm_ok(&["secret", "inspect", "db_pw"])?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    ensure!(v[0]["ID"] == secret_id.as_str(), "secret inspect: {out}");
    ensure!(
        v[0]["Spec"].get("Data").is_none(),
        "secret data returned: {out}"
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(shown.as_bytes());
    ensure!(
        !out.contains(&b64) && !out.contains(&shown),
        "secret data returned: {out}"
    );
    let pretty = node.swarm_ok(&["config", "inspect", "--pretty", "app"])?;
    ensure!(
        pretty.starts_with(&format!("ID:\t\t\t{config_id}\nName:\t\t\tapp\n"))
            && pretty.ends_with(&format!("Data:\n{conf}\n")),
        "config inspect --pretty: {pretty:?}"
    );

    // The stock docker CLI on the same socket prints the same.
    wait_for(
        "docker and swarm agree on secret ls",
        Duration::from_secs(10),
        || {
            Ok(
                (node.docker_ok(&["secret", "ls"])? == node.swarm_ok(&["secret", "ls"])?)
                    .then_some(()),
            )
        },
    )?;
    for args in [
        &["config", "inspect", "--pretty", "app"][..],
        &["secret", "inspect", "--pretty", "api_key"],
        &["secret", "inspect", "db_pw", "api_key"],
        &["config", "ls", "--format", "{{.ID}} {{.Name}} {{.Labels}}"],
        &["secret", "ls", "-q", "--filter", "name=db"],
    ] {
        let (d, s) = (node.docker_ok(args)?, node.swarm_ok(args)?);
        ensure!(d == s, "{args:?}: docker printed\n{d}\nswarm printed\n{s}");
    }

    // Update: labels change, the data may be sent back unchanged, not changed.
    let v = node.ok("GET", "/secrets/db_pw", None)?;
    let version = v["Version"]["Index"].as_u64().context("version")?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(shown.as_bytes());
    let path = format!("/secrets/{secret_id}/update?version={version}");
    let spec = serde_json::json!({"Name": "db_pw", "Labels": {"rotated": "no"}, "Data": b64});
    node.ok("POST", &path, Some(&spec))?;
    let v = node.ok("GET", "/secrets/db_pw", None)?;
    ensure!(
        v["Spec"]["Labels"]["rotated"] == "no",
        "labels updated: {v}"
    );
    let version = v["Version"]["Index"].as_u64().context("version")?;
    let path = format!("/secrets/{secret_id}/update?version={version}");
    let spec = serde_json::json!({"Name": "db_pw", "Data": "b3RoZXI="});
    let (code, body) = node.call("POST", &path, Some(&spec))?;
    ensure!(
        code == 400
            && body["message"]
                == "rpc error: code = InvalidArgument desc = only updates to Labels are allowed",
        "secret data update: {code} {body}"
    );

    // A service that reads them: the default target, a custom target with owner and
    // mode, a config at a path.
    let script = "cat /run/secrets/db_pw; echo; \
                  sha256sum < /run/secrets/key | cut -d' ' -f1; \
                  stat -c 'key %u %g %a' /run/secrets/key; \
                  stat -c 'db_pw %u %g %a' /run/secrets/db_pw; \
                  cat /etc/app.conf; \
                  (echo x > /run/secrets/db_pw) 2>/dev/null && echo writable; \
                  echo done; sleep 1d";
    node.swarm_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "reader",
        "--secret",
        "db_pw",
        "--secret",
        "source=api_key,target=key,uid=1000,gid=1000,mode=0400",
        "--config",
        "source=app,target=/etc/app.conf",
        &img,
        "sh",
        "-c",
        script,
    ])?;
    node.wait_running("reader", 1)?;
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(hidden.as_bytes()));
    let logs = wait_for("the reader's output", Duration::from_secs(30), || {
        let out = node.swarm_ok(&["service", "logs", "--raw", "reader"])?;
        Ok(out.contains("done").then_some(out))
    })
    .with_context(|| node.log_tail())?;
    let want = [
        shown.as_str(),
        digest.as_str(),
        "key 1000 1000 400",
        "db_pw 0 0 444",
        conf.trim_end(),
        "done",
    ];
    let got: Vec<&str> = logs.lines().collect();
    ensure!(got == want, "in the container: {got:?}, want {want:?}");

    // The hidden secret is on no disk file of the node (raft, bundle, logs), in clear or
    // in base64; it is on a tmpfs.
    for needle in [
        hidden.clone(),
        base64::engine::general_purpose::STANDARD.encode(hidden.as_bytes()),
    ] {
        let found = files_containing(&node.data, needle.as_bytes());
        ensure!(found.is_empty(), "secret on disk: {found:?}");
        // Nor in swarmd's own log (debug level in this fixture).
        let log = std::fs::read_to_string(node.config.dir.join("swarmd.log"))?;
        ensure!(!log.contains(&needle), "secret in swarmd's log");
    }

    // In use: refused with Docker's words; still there.
    let r = node.swarm(&["secret", "rm", "db_pw"])?;
    ensure!(
        !r.ok
            && r.stderr.trim()
                == "Error response from daemon: rpc error: code = InvalidArgument desc = secret 'db_pw' is in use by the following service: reader",
        "secret rm in use: {r:?}"
    );
    let r = node.swarm(&["config", "rm", "app"])?;
    ensure!(
        !r.ok
            && r.stderr
                .contains("config 'app' is in use by the following service: reader"),
        "config rm in use: {r:?}"
    );
    // An unknown reference is refused before anything is created.
    let r = node.swarm(&["service", "create", "--secret", "nope", &img, "true"])?;
    ensure!(
        !r.ok && r.stderr.trim() == "secret not found: nope",
        "unknown secret: {r:?}"
    );

    // The manager checks too, for clients that send IDs of their own.
    let spec = serde_json::json!({
        "Name": "bogus",
        "TaskTemplate": {"ContainerSpec": {"Image": img, "Secrets": [
            {"SecretID": "nope", "SecretName": "nope", "File": {"Name": "nope", "UID": "0", "GID": "0", "Mode": 292}}
        ]}}
    });
    let (code, body) = node.call("POST", "/services/create", Some(&spec))?;
    ensure!(
        code == 400
            && body["message"] == "rpc error: code = InvalidArgument desc = secret not found: nope",
        "create with an unknown secret ID: {code} {body}"
    );

    // The stock docker CLI resolves the names the same way (GET /secrets?filters=name).
    node.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "dreader",
        "--secret",
        "db_pw",
        "--config",
        "app",
        &img,
        "sh",
        "-c",
        "cat /run/secrets/db_pw /app; sleep 1d",
    ])?;
    let svc = node.ok("GET", "/services/dreader", None)?;
    let c = &svc["Spec"]["TaskTemplate"]["ContainerSpec"];
    ensure!(
        c["Secrets"][0]["SecretID"] == secret_id.as_str()
            && c["Configs"][0]["ConfigID"] == config_id.as_str(),
        "docker's service create: {c}"
    );
    node.wait_running("dreader", 1)?;
    let logs = wait_for("dreader's output", Duration::from_secs(30), || {
        let out = node.swarm_ok(&["service", "logs", "--raw", "dreader"])?;
        Ok(out.contains("listen").then_some(out))
    })?;
    ensure!(logs == format!("{shown}{conf}"), "dreader printed {logs:?}");
    node.docker_ok(&["service", "rm", "dreader"])?;

    // After the service: removal works, by name and by ID.
    node.swarm_ok(&["service", "rm", "reader"])?;
    let out = node.swarm_ok(&["secret", "rm", "db_pw", "api_key"])?;
    ensure!(out == "db_pw\napi_key\n", "secret rm: {out}");
    node.swarm_ok(&["config", "rm", &config_id])?;
    ensure!(node.swarm_ok(&["secret", "ls", "-q"])?.is_empty());
    ensure!(node.swarm_ok(&["config", "ls", "-q"])?.is_empty());
    let r = node.swarm(&["secret", "inspect", "db_pw"])?;
    ensure!(
        !r.ok
            && r.stdout == "[]\n"
            && r.stderr.trim() == "Error response from daemon: secret db_pw not found",
        "inspect after rm: {r:?}"
    );
    Ok(())
}

fn clock_nanos() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    t.as_nanos() as u64
}
