//! Stacks end to end (issue 14): the seed documents' scenario on three hosts of the
//! multi-host harness, with real containers, the routing mesh and a registry running as
//! a service on the swarm.
//!
//! ```text
//!  harness registry (bootstrap only): registry:2 (Debian's docker-registry), webapp:1.0
//!  h0 manager ── service `registry` -p 5000:5000 ── every node's 127.0.0.1:5000 (mesh)
//!  h1: swarm image pull <harness>/webapp:1.0, tag 127.0.0.1:5000/webapp:1.0, push
//!  stack `bank`: web (2 replicas, -p 8080:80, from ${REGISTRY_IP}:5000 via .env)
//!                db (serves /run/secrets, the secret from a file), network `backend`
//!  GET http://<each node>:8080/cgi-bin/app ──> "web <task>" + db's secret, fetched by name
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use rootfs_tests::busybox::{
    busybox_layer, tar_files_with_modes, Compression, OciLayout, TestImage,
};
use rootfs_tests::cluster::{Cluster, Host};
use rootfs_tests::registry::{registry_image, ManifestKind};
use rootfs_tests::swarmd::wait_for;
use serde_json::Value;
use swarm_runtime::image::ImageConfig;

const SECRET: &str = "s3cret-from-a-file";

/// The web app: httpd whose CGI prints its hostname and what `db` serves at
/// `/db_password` (its secret file), reached by the service's short name.
fn webapp_image() -> Result<TestImage> {
    let cgi = b"#!/bin/sh\necho Content-Type: text/plain\necho\necho \"web $(hostname)\"\nwget -qO- http://db/db_password 2>&1\n";
    Ok(TestImage {
        layers: vec![
            busybox_layer()?,
            tar_files_with_modes(&[
                ("www/cgi-bin/app", cgi, 0o755),
                ("www/index.html", b"bank\n", 0o644),
            ])?,
        ],
        config: ImageConfig {
            cmd: vec![
                "httpd".into(),
                "-f".into(),
                "-p".into(),
                "80".into(),
                "-h".into(),
                "/www".into(),
            ],
            env: vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()],
            ..Default::default()
        },
        arch: swarm_runtime::image::manifest::node_arch().to_string(),
        compression: Compression::Gzip,
    })
}

const COMPOSE: &str = r#"version: "3.8"
services:
  web:
    image: ${REGISTRY_IP}:5000/webapp:1.0
    ports:
      - "8080:80"
    networks:
      - backend
    deploy:
      replicas: 2
  db:
    image: ${REGISTRY_IP}:5000/webapp:1.0
    command: ["httpd", "-f", "-p", "80", "-h", "/run/secrets"]
    secrets:
      - db_password
    networks:
      - backend
secrets:
  db_password:
    file: ./db_password.txt
networks:
  backend:
    driver: overlay
"#;

/// `-c compose.yml -c scale.yml`: the web app at 3 replicas.
const SCALE: &str = "version: \"3.8\"\nservices:\n  web:\n    deploy:\n      replicas: 3\n";

fn write_project(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("docker-compose.yml"), COMPOSE)?;
    std::fs::write(dir.join("scale.yml"), SCALE)?;
    std::fs::write(dir.join(".env"), "REGISTRY_IP=127.0.0.1\n")?;
    std::fs::write(dir.join("db_password.txt"), SECRET)?;
    Ok(())
}

/// `GET path` on `addr` from the root namespace (the CGI asks `db` in turn).
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    rootfs_tests::http_get(addr, path, Duration::from_secs(8))
}

fn service(h: &Host, name: &str) -> Result<Value> {
    h.ok("GET", &format!("/services/{name}"), None)
}

fn names(h: &Host, kind: &str) -> Result<Vec<String>> {
    let list = h.ok("GET", &format!("/{kind}"), None)?;
    let mut out: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| {
            o["Spec"]["Name"]
                .as_str()
                .or(o["Name"].as_str())
                .map(str::to_string)
        })
        .collect();
    out.sort();
    Ok(out)
}

#[test]
fn the_seeds_scenario_registry_on_the_swarm_and_a_stack_on_three_hosts() -> Result<()> {
    let c = Cluster::new(3)?;
    let h0 = c.host(0);
    h0.swarm_ok(&["swarm", "init", "--advertise-addr", &h0.ip.to_string()])?;
    c.join_workers()?;

    // The bootstrap: the registry's image and the app's image in the harness registry.
    let mut layout = OciLayout::create(&c.tmp.path().join("layout"))?;
    layout.add_image("registry", &registry_image()?)?;
    layout.add_image("webapp", &webapp_image()?)?;
    c.registry.push(
        &layout.dir,
        "registry",
        "registry:2",
        ManifestKind::OciManifest,
    )?;
    c.registry.push(
        &layout.dir,
        "webapp",
        "webapp:1.0",
        ManifestKind::OciManifest,
    )?;

    // A registry as a service on the swarm, published on every node's 5000.
    let registry = format!("{}/registry:2", c.registry.host());
    h0.swarm_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "registry",
        "-p",
        "5000:5000",
        &registry,
    ])?;
    h0.wait_running("registry", 1)?;

    // The registry workflow on a node: pull, tag, push to the registry on the swarm
    // (through the routing mesh of h1's 127.0.0.1:5000, wherever the registry runs).
    let h1 = c.host(1);
    let source = format!("{}/webapp:1.0", c.registry.host());
    h1.swarm_ok(&["image", "pull", &source])?;
    h1.swarm_ok(&["image", "tag", &source, "127.0.0.1:5000/webapp:1.0"])?;
    let pushed = wait_for("the push through the mesh", Duration::from_secs(60), || {
        let r = h1.swarm(&["image", "push", "127.0.0.1:5000/webapp:1.0"])?;
        Ok(r.ok.then_some(r.stdout))
    })?;
    ensure!(
        pushed.contains("1.0: digest: sha256:"),
        "push printed: {pushed}"
    );

    // The stack.
    let project = c.tmp.path().join("bank");
    write_project(&project)?;
    let compose = project.join("docker-compose.yml");
    let compose = compose.to_str().context("path")?;
    let out = h0.swarm_ok(&["stack", "deploy", "-c", compose, "bank"])?;
    for line in [
        "Creating network bank_backend",
        "Creating secret bank_db_password",
        "Creating service bank_db",
        "Creating service bank_web",
    ] {
        ensure!(out.contains(line), "deploy printed:\n{out}");
    }
    h0.wait_running("bank_web", 2)?;
    h0.wait_running("bank_db", 1)?;
    let web = service(h0, "bank_web")?;
    ensure!(
        web["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
            .as_str()
            .is_some_and(|i| i.starts_with("127.0.0.1:5000/webapp:1.0@sha256:")),
        "the image is pinned to the registry's digest: {}",
        web["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    );
    ensure!(web["Spec"]["Labels"]["com.docker.stack.namespace"] == "bank");

    // The web app answers on every node's published port and reads db's secret by name.
    for h in c.hosts() {
        let addr = SocketAddr::from((h.ip, 8080));
        let mut last = None;
        let body = wait_for(
            &format!("the app on h{}", h.index),
            Duration::from_secs(60),
            || {
                last = http_get(addr, "/cgi-bin/app");
                Ok(last.clone().filter(|b| b.contains(SECRET)))
            },
        )
        .with_context(|| {
            let ps = h0.swarm(&["stack", "ps", "bank", "--no-trunc"]);
            let ps = ps.map(|r| r.stdout + &r.stderr).unwrap_or_default();
            format!("last answer: {last:?}\nstack ps:\n{ps}")
        })?;
        ensure!(body.starts_with("web "), "{body}");
    }

    // What the stack commands show.
    let ls = h0.swarm_ok(&["stack", "ls"])?;
    ensure!(ls == "NAME      SERVICES\nbank      2\n", "stack ls:\n{ls}");
    let services = h0.swarm_ok(&[
        "stack",
        "services",
        "bank",
        "--format",
        "{{.Name}} {{.Replicas}}",
    ])?;
    ensure!(
        services == "bank_db 1/1\nbank_web 2/2\n",
        "stack services:\n{services}"
    );
    let ps = h0.swarm_ok(&[
        "stack",
        "ps",
        "bank",
        "--format",
        "{{.Name}} {{.CurrentState}}",
    ])?;
    ensure!(
        ps.lines().count() == 3 && ps.lines().all(|l| l.contains("Running")),
        "stack ps:\n{ps}"
    );
    let none = h0.swarm(&["stack", "ps", "nosuch"])?;
    ensure!(
        !none.ok && none.stderr.trim() == "nothing found in stack: nosuch",
        "{none:?}"
    );

    // Objects that are not the stack's, which `stack rm` must leave alone.
    h0.swarm_ok(&["network", "create", "-d", "overlay", "keep_net"])?;
    h0.swarm_stdin(&["secret", "create", "keep_secret", "-"], "x")?;

    // Re-deploy at 3 replicas: the same services, updated in place.
    let ids_before: Vec<String> = ["bank_db", "bank_web"]
        .iter()
        .map(|s| Ok(service(h0, s)?["ID"].as_str().unwrap_or("").to_string()))
        .collect::<Result<_>>()?;
    let scale = project.join("scale.yml");
    let out = h0.swarm_ok(&[
        "stack",
        "deploy",
        "-c",
        compose,
        "-c",
        scale.to_str().context("path")?,
        "bank",
    ])?;
    ensure!(
        out.contains(&format!(
            "Updating service bank_web (id: {})",
            ids_before[1]
        )),
        "{out}"
    );
    let tasks = h0.wait_running("bank_web", 3)?;
    let ids_after: Vec<String> = ["bank_db", "bank_web"]
        .iter()
        .map(|s| Ok(service(h0, s)?["ID"].as_str().unwrap_or("").to_string()))
        .collect::<Result<_>>()?;
    ensure!(ids_before == ids_after, "{ids_before:?} -> {ids_after:?}");
    // Three replicas spread one a node: every node pulled from the registry on the swarm.
    let hosts: std::collections::BTreeSet<usize> = h0
        .tasks("bank_web")?
        .iter()
        .filter(|t| t["Status"]["State"] == "running" && t["DesiredState"] == "running")
        .map(|t| c.host_of(t))
        .collect::<Result<_>>()?;
    ensure!(
        hosts.len() == 3,
        "web runs on hosts {hosts:?} ({} tasks)",
        tasks.len()
    );
    for h in c.hosts() {
        // Pulled by digest (the pinned spec): listed by repository with `<none>` as its
        // tag, as Docker lists an image pulled by digest.
        let images = h.swarm_ok(&["image", "ls", "--format", "{{.Repository}}"])?;
        ensure!(
            images.lines().any(|l| l == "127.0.0.1:5000/webapp"),
            "h{}: {images}",
            h.index
        );
    }

    // `stack rm`: exactly what the stack made.
    let out = h0.swarm_ok(&["stack", "rm", "bank"])?;
    for line in [
        "Removing service bank_db",
        "Removing service bank_web",
        "Removing secret bank_db_password",
        "Removing network bank_backend",
    ] {
        ensure!(out.contains(line), "stack rm printed:\n{out}");
    }
    ensure!(
        names(h0, "services")? == ["registry"],
        "services left: {:?}",
        names(h0, "services")?
    );
    ensure!(
        names(h0, "secrets")? == ["keep_secret"],
        "secrets left: {:?}",
        names(h0, "secrets")?
    );
    let nets = names(h0, "networks")?;
    ensure!(
        nets.contains(&"keep_net".to_string()) && !nets.iter().any(|n| n.starts_with("bank_")),
        "networks left: {nets:?}"
    );
    let again = h0.swarm(&["stack", "rm", "bank"])?;
    ensure!(
        again.ok && again.stderr.trim() == "Nothing found in stack: bank",
        "{again:?}"
    );
    Ok(())
}
