//! The compose corpus (`cli/tests/compose/corpus`) deployed twice on a real swarmd: by
//! `swarm stack deploy` and by the stock docker CLI's `docker stack deploy` (its own
//! compose conversion, client-side), and what the manager then holds compared object
//! by object: service specs, networks, secrets, configs. The error cases must fail with
//! the same first line from both and leave nothing of the stack behind.
//!
//! The node is drained (no task runs: the corpus names public images this machine
//! cannot pull) and images are not resolved (`--resolve-image never`). External
//! networks and secrets the cases name are made first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use rootfs_tests::swarmd::{wait_for, Node, Run};
use serde_json::{json, Value};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/tests/compose/corpus")
}

/// One case: its namespace, `-c` files, environment, and whether it must fail.
struct Case {
    dir: PathBuf,
    namespace: String,
    files: Vec<String>,
    env: Vec<(String, String)>,
    error: bool,
}

fn cases() -> Result<Vec<Case>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(corpus())? {
        let dir = e?.path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let namespace = name
            .split_once('-')
            .map(|(_, n)| n)
            .unwrap_or(&name)
            .to_string();
        let files: Vec<String> = match std::fs::read_to_string(dir.join("files")) {
            Ok(list) => list
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| dir.join(l).display().to_string())
                .collect(),
            Err(_) => vec![dir.join("docker-compose.yml").display().to_string()],
        };
        let env = std::fs::read_to_string(dir.join("env"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json"))?)?;
        out.push(Case {
            error: expected.get("error").is_some(),
            dir,
            namespace,
            files,
            env,
        });
    }
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(out)
}

/// `prog stack deploy --resolve-image never -c F... NS` in the case's directory and
/// environment, against the node's socket.
fn deploy(node: &Node, prog: &str, case: &Case) -> Result<Run> {
    let mut cmd = match prog {
        "swarm" => {
            let mut c = Command::new(rootfs_tests::workspace_bin("swarm"));
            c.arg("-H").arg(format!("unix://{}", node.socket.display()));
            c
        }
        _ => node.docker_command("docker"),
    };
    cmd.args([
        "stack",
        "deploy",
        "--detach=true",
        "--resolve-image",
        "never",
    ]);
    for f in &case.files {
        cmd.args(["-c", f]);
    }
    cmd.arg(&case.namespace)
        .current_dir(&case.dir)
        .env_remove("SWARM_HOST")
        .envs(case.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    Ok(cmd.output().with_context(|| format!("run {prog}"))?.into())
}

/// What the manager holds for the stack, without what differs between two deploys of
/// the same specs (IDs, versions, times, allocated subnets).
fn snapshot(node: &Node, ns: &str) -> Result<Value> {
    let filter = rootfs_tests::swarmd::urlencode(&format!(
        r#"{{"label":{{"com.docker.stack.namespace={ns}":true}}}}"#
    ));
    let list = |kind: &str| -> Result<Vec<Value>> {
        let v = node.ok("GET", &format!("/{kind}?filters={filter}"), None)?;
        Ok(v.as_array().cloned().unwrap_or_default())
    };
    // Services name their networks by ID once created: named back, to compare.
    let all = node.ok("GET", "/networks", None)?;
    let net_name = |id: &str| -> String {
        all.as_array()
            .into_iter()
            .flatten()
            .find(|n| n["Id"] == id)
            .and_then(|n| n["Name"].as_str())
            .unwrap_or(id)
            .to_string()
    };
    let mut services: Vec<Value> = list("services")?
        .into_iter()
        .map(|s| {
            let mut spec = s["Spec"].clone();
            for (key, id) in [("Secrets", "SecretID"), ("Configs", "ConfigID")] {
                if let Some(refs) = spec["TaskTemplate"]["ContainerSpec"][key].as_array_mut() {
                    for r in refs {
                        r.as_object_mut().map(|o| o.remove(id));
                    }
                }
            }
            if let Some(nets) = spec["TaskTemplate"]["Networks"].as_array_mut() {
                for n in nets {
                    let name = net_name(n["Target"].as_str().unwrap_or(""));
                    n["Target"] = json!(name);
                }
            }
            spec
        })
        .collect();
    services.sort_by_key(|s| s["Name"].as_str().unwrap_or("").to_string());
    let mut networks: Vec<Value> = list("networks")?
        .into_iter()
        .map(|mut n| {
            // The VNI is allocated: it differs between two deploys of the same network.
            if let Some(o) = n["Options"].as_object_mut() {
                o.remove("com.docker.network.driver.overlay.vxlanid_list");
            }
            json!({"Name": n["Name"], "Driver": n["Driver"], "Scope": n["Scope"],
                   "Labels": n["Labels"], "Attachable": n["Attachable"],
                   "Internal": n["Internal"], "Options": n["Options"],
                   "IPAMDriver": n["IPAM"]["Driver"], "IPAMOptions": n["IPAM"]["Options"]})
        })
        .collect();
    networks.sort_by_key(|n| n["Name"].as_str().unwrap_or("").to_string());
    let mut blobs = BTreeMap::new();
    for kind in ["secrets", "configs"] {
        let mut specs: Vec<Value> = list(kind)?.into_iter().map(|s| s["Spec"].clone()).collect();
        specs.sort_by_key(|s| s["Name"].as_str().unwrap_or("").to_string());
        blobs.insert(kind, specs);
    }
    Ok(json!({"services": services, "networks": networks,
              "secrets": blobs["secrets"], "configs": blobs["configs"]}))
}

fn remove(node: &Node, ns: &str) -> Result<()> {
    node.swarm_ok(&["stack", "rm", ns])?;
    wait_for(&format!("stack {ns} gone"), Duration::from_secs(30), || {
        let s = snapshot(node, ns)?;
        let empty = ["services", "networks", "secrets", "configs"]
            .iter()
            .all(|k| s[*k].as_array().is_none_or(Vec::is_empty));
        Ok(empty.then_some(()))
    })
}

/// Where `a` and `b` differ, as `path: a | b` lines.
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let (va, vb) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                diff(&format!("{path}/{k}"), va, vb, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}/{i}"), va, vb, out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} | {b}")),
        _ => {}
    }
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

#[test]
fn every_corpus_case_deploys_as_the_docker_cli_deploys_it() -> Result<()> {
    let node = Node::start("stack-corpus")?;
    node.swarm_ok(&["swarm", "init"])?;
    let me = node.ok("GET", "/info", None)?["Swarm"]["NodeID"]
        .as_str()
        .context("node id")?
        .to_string();
    node.swarm_ok(&["node", "update", "--availability", "drain", &me])?;
    // What the cases declare external.
    for net in ["proxy", "corp-shared-net", "traefik-public"] {
        node.swarm_ok(&["network", "create", "-d", "overlay", "--attachable", net])?;
    }
    node.swarm_stdin(&["secret", "create", "ext_token", "-"], "t")?;

    let mut failures = Vec::new();
    let cases = cases()?;
    ensure!(cases.len() >= 20, "only {} corpus cases", cases.len());
    for case in &cases {
        let ns = &case.namespace;
        let ours = deploy(&node, "swarm", case)?;
        if case.error {
            // Ours fails before creating anything.
            let left = snapshot(&node, ns)?;
            let created: Vec<String> = ["services", "networks", "secrets", "configs"]
                .iter()
                .filter(|k| left[**k].as_array().is_some_and(|a| !a.is_empty()))
                .map(|k| format!("{k}: {}", left[*k]))
                .collect();
            if !created.is_empty() {
                failures.push(format!("{ns}: a failed deploy created {created:?}"));
            }
            let theirs = deploy(&node, "docker", case)?;
            ensure!(
                !ours.ok && !theirs.ok,
                "{ns}: both must fail: {ours:?} {theirs:?}"
            );
            // Docker names absolute paths as given; so do we: only the first line counts.
            let (o, t) = (first_line(&ours.stderr), first_line(&theirs.stderr));
            if o != t {
                failures.push(format!("{ns}: ours {o:?}\n  docker's {t:?}"));
            }
            // Docker may have made networks before failing.
            let _ = node.swarm(&["stack", "rm", ns]);
            continue;
        }
        if !ours.ok {
            failures.push(format!("{ns}: swarm stack deploy failed: {}", ours.stderr));
            continue;
        }
        let a = snapshot(&node, ns)?;
        remove(&node, ns)?;
        let theirs = deploy(&node, "docker", case)?;
        if !theirs.ok {
            failures.push(format!(
                "{ns}: docker stack deploy failed: {}",
                theirs.stderr
            ));
            continue;
        }
        let b = snapshot(&node, ns)?;
        remove(&node, ns)?;
        let mut diffs = Vec::new();
        diff("", &a, &b, &mut diffs);
        if !diffs.is_empty() {
            failures.push(format!(
                "{ns}: the manager holds different objects (path: swarm's | docker's)\n  {}",
                diffs.join("\n  ")
            ));
        }
        // The warnings (unsupported options) in the same words.
        let warn = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| l.starts_with("Ignoring"))
                .map(str::to_string)
                .collect()
        };
        if warn(&ours.stderr) != warn(&theirs.stderr) {
            failures.push(format!(
                "{ns}: warnings differ:\n{}\n---\n{}",
                ours.stderr, theirs.stderr
            ));
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} of {} cases differ:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n\n")
        );
    }
    Ok(())
}

/// The other stack commands through both CLIs on one deployed stack: `stack ls`,
/// `stack services`, `stack ps` print the same, and `docker stack rm` removes what
/// `swarm stack deploy` made.
#[test]
fn stack_ls_services_ps_and_rm_print_what_the_docker_cli_prints() -> Result<()> {
    let node = Node::start("stack-cmds")?;
    node.swarm_ok(&["swarm", "init"])?;
    let dir = tempfile::tempdir()?;
    let compose = format!(
        "services:\n  web:\n    image: {img}\n    command: [\"sleep\", \"1d\"]\n    \
         stop_signal: SIGKILL\n    deploy:\n      replicas: 2\n  \
         worker:\n    image: {img}\n    command: [\"sleep\", \"1d\"]\n    stop_signal: SIGKILL\n",
        img = node.image("1")
    );
    let file = dir.path().join("docker-compose.yml");
    std::fs::write(&file, compose)?;
    let file = file.to_str().context("path")?;
    node.swarm_ok(&["stack", "deploy", "-c", file, "app"])?;
    wait_for("the stack running", Duration::from_secs(60), || {
        let ps = node.swarm_ok(&["stack", "ps", "app", "--format", "{{.CurrentState}}"])?;
        Ok((ps.lines().filter(|l| l.starts_with("Running")).count() == 3).then_some(()))
    })?;
    let both = |args: &[&str]| -> Result<(String, String)> {
        Ok((node.swarm_ok(args)?, node.docker_ok(args)?))
    };
    for args in [
        &["stack", "ls"][..],
        &["stack", "services", "app"],
        &["stack", "services", "app", "-q"],
        &[
            "stack",
            "services",
            "app",
            "--format",
            "{{.Name}} {{.Mode}} {{.Replicas}}",
        ],
        &[
            "stack",
            "ps",
            "app",
            "--format",
            "{{.Name}} {{.Image}} {{.Node}} {{.DesiredState}}",
        ],
        &["stack", "ps", "app", "-q"],
        &[
            "stack",
            "ps",
            "app",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Name}}",
        ],
    ] {
        let (ours, theirs) = both(args)?;
        ensure!(
            ours == theirs,
            "{args:?}:\n--- swarm\n{ours}--- docker\n{theirs}"
        );
    }
    let ours = node.swarm(&["stack", "ps", "nosuch"])?;
    let theirs = node.docker(&["stack", "ps", "nosuch"])?;
    ensure!(
        (ours.code, ours.stderr.trim()) == (theirs.code, theirs.stderr.trim()),
        "{ours:?}\n{theirs:?}"
    );
    // `--prune`: a file without `worker` removes it; `web` is updated in place, its
    // image kept pinned (`--resolve-image changed`: the compose image did not change).
    let web = node.ok("GET", "/services/app_web", None)?;
    let only_web = dir.path().join("web-only.yml");
    let img = node.image("1");
    std::fs::write(
        &only_web,
        format!(
            "services:\n  web:\n    image: {img}\n    command: [\"sleep\", \"1d\"]\n    \
             stop_signal: SIGKILL\n    deploy:\n      replicas: 2\n"
        ),
    )?;
    let out = node.swarm_ok(&[
        "stack",
        "deploy",
        "--prune",
        "--resolve-image",
        "changed",
        "-c",
        only_web.to_str().context("path")?,
        "app",
    ])?;
    ensure!(out.contains("Removing service app_worker"), "{out}");
    let web_id = web["ID"].as_str().unwrap_or_default();
    ensure!(
        out.contains(&format!("Updating service app_web (id: {web_id})")),
        "{out}"
    );
    let after = node.ok("GET", "/services/app_web", None)?;
    let image = |s: &Value| s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].clone();
    ensure!(
        image(&after) == image(&web),
        "{} -> {}",
        image(&web),
        image(&after)
    );
    let services = node.swarm_ok(&["stack", "services", "app", "--format", "{{.Name}}"])?;
    ensure!(services == "app_web\n", "{services}");

    let out = node.docker_ok(&["stack", "rm", "app"])?;
    ensure!(out.contains("Removing service app_web"), "{out}");
    let left = snapshot(&node, "app")?;
    ensure!(
        ["services", "networks", "secrets", "configs"]
            .iter()
            .all(|k| left[*k].as_array().is_none_or(Vec::is_empty)),
        "left after docker stack rm: {left}"
    );
    Ok(())
}
