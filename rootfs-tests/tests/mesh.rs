//! Published ports and the routing mesh end to end (issue 13): swarmd hosts in network
//! namespaces (the multi-host harness), real containers, the ingress overlay over VXLAN,
//! nftables DNAT on every node.
//!
//! Clients: the test process in the root namespace (the harness's bridge reaches every
//! host's address, the client's address being the bridge's gateway), or a thread inside
//! a host's namespace for 127.0.0.1. Busybox httpd answers `GET /cgi-bin/ip` with the
//! container's hostname and the `REMOTE_ADDR` it saw. UDP: Debian's busybox has no UDP
//! server, so a thread of this test `setns`'d into the task's namespace answers each
//! datagram with the task's ID and the sender's address.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use rootfs_tests::cluster::{Cluster, Host};
use rootfs_tests::swarmd::wait_for;
use serde_json::Value;

/// httpd with a CGI that prints `<hostname> <client address>`.
const WEB_CMD: &str = "mkdir -p /www/cgi-bin && hostname > /www/index.html && \
     printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \"$(hostname) $REMOTE_ADDR\"\\n' \
     > /www/cgi-bin/ip && chmod +x /www/cgi-bin/ip && exec httpd -f -p 8080 -h /www";

fn init(h: &Host) -> Result<()> {
    h.swarm_ok(&["swarm", "init", "--advertise-addr", &h.ip.to_string()])?;
    Ok(())
}

/// `GET path` on `addr`, from the calling thread's namespace.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    rootfs_tests::http_get(addr, path, Duration::from_secs(3))
}

/// `(hostname, client address)` from the CGI on `ip:port`, asked from the root
/// namespace (`inside` None) or from inside a host's namespace.
fn whoami(inside: Option<&Host>, ip: Ipv4Addr, port: u16) -> Result<Option<(String, String)>> {
    let addr = SocketAddr::from((ip, port));
    let body = match inside {
        Some(h) => h.in_netns(|| http_get(addr, "/cgi-bin/ip"))?,
        None => http_get(addr, "/cgi-bin/ip"),
    };
    Ok(body.and_then(|b| {
        let (host, remote) = b.split_once(' ')?;
        // httpd listens on IPv6 and shows `[::ffff:a.b.c.d]`.
        let remote = remote.trim_start_matches('[').trim_end_matches(']');
        let remote = remote.strip_prefix("::ffff:").unwrap_or(remote);
        Some((host.to_string(), remote.to_string()))
    }))
}

/// Hostnames (the task IDs' first 12) answering over `n` requests.
fn answering(inside: Option<&Host>, ip: Ipv4Addr, port: u16, n: usize) -> Result<BTreeSet<String>> {
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        if let Some((host, _)) = whoami(inside, ip, port)? {
            seen.insert(host);
        }
    }
    Ok(seen)
}

fn running_ids(h: &Host, service: &str) -> Result<BTreeSet<String>> {
    Ok(h.running(service)?
        .into_iter()
        .map(|t| t.id[..12].to_string())
        .collect())
}

/// The service's `Endpoint.Ports` as the manager shows them.
fn endpoint_ports(h: &Host, service: &str) -> Result<Value> {
    let svc = h.ok("GET", &format!("/services/{service}"), None)?;
    Ok(svc["Endpoint"]["Ports"].clone())
}

/// Our nft tables and the sandbox on a host: what the mesh leaves in the kernel.
fn mesh_state(h: &Host) -> Result<Vec<String>> {
    let tables = h.in_netns(|| Command::new("nft").args(["list", "tables"]).output())??;
    let mut out: Vec<String> = String::from_utf8_lossy(&tables.stdout)
        .lines()
        .filter(|t| t.contains(" swarm"))
        .map(str::to_string)
        .collect();
    let sbx = h.data.join("net/host/netns/ingress_sbox");
    if sbx.exists() {
        out.push(format!("netns {}", sbx.display()));
    }
    let fwd = h.in_netns(|| Command::new("iptables").args(["-S", "FORWARD"]).output())??;
    out.extend(
        String::from_utf8_lossy(&fwd.stdout)
            .lines()
            .filter(|l| l.contains("swarm"))
            .map(str::to_string),
    );
    out.sort();
    Ok(out)
}

/// Every host's view of the ingress fabric, for a failure: the overlay's FDB and
/// neighbours, the sandbox's rules (its backends), each task's addresses, return-path
/// rules and neighbours, and swarmd's warnings.
fn fabric(cluster: &Cluster) -> String {
    let mut out = String::new();
    for h in cluster.hosts() {
        // `cmd` run in namespace `ns` (a pinned path) from inside host `h`.
        let run = |ns: &std::path::Path, cmd: &[&str]| -> String {
            let net = format!("--net={}", ns.display());
            h.in_netns(|| Command::new("nsenter").arg(&net).args(cmd).output())
                .ok()
                .and_then(|r| r.ok())
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        out += &format!("== h{} {}\n", h.index, h.ip);
        for dir in ["net/host/netns", "net/tasks"] {
            for e in std::fs::read_dir(h.data.join(dir))
                .into_iter()
                .flatten()
                .flatten()
            {
                let (ns, name) = (e.path(), e.file_name().to_string_lossy().into_owned());
                out += &format!("-- {name}\n");
                let cmds: &[&[&str]] = if name.starts_with("ov-") {
                    &[
                        &["bridge", "fdb", "show", "dev", "vxlan0"],
                        &["ip", "neigh"],
                    ]
                } else if name == "ingress_sbox" {
                    &[&["nft", "list", "ruleset"], &["ip", "-br", "addr"]]
                } else {
                    &[&["ip", "-br", "addr"], &["ip", "rule"], &["ip", "neigh"]]
                };
                for cmd in cmds {
                    out += &run(&ns, cmd);
                }
            }
        }
        let log = std::fs::read_to_string(h.config.dir.join("swarmd.log")).unwrap_or_default();
        for l in log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        {
            out += l;
            out.push('\n');
        }
    }
    out
}

/// `nft list table ip <name>` on a host (the ruleset as text, empty when absent).
fn nft_table(h: &Host, name: &str) -> Result<String> {
    let out = h.in_netns(|| {
        Command::new("nft")
            .args(["list", "table", "ip", name])
            .output()
    })??;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A UDP responder inside a task's namespace: each datagram gets `<task id> <sender>`.
struct UdpResponder {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UdpResponder {
    fn start(netns: PathBuf, task: String, port: u16) -> Result<UdpResponder> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let bind = || -> Result<UdpSocket> {
                let f = std::fs::File::open(&netns)?;
                nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
                let s = UdpSocket::bind(("0.0.0.0", port))?;
                s.set_read_timeout(Some(Duration::from_millis(200)))?;
                Ok(s)
            };
            let sock = match bind() {
                Ok(s) => {
                    let _ = tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let mut buf = [0u8; 512];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((_, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(format!("{} {}", &task[..12], from.ip()).as_bytes(), from);
                }
            }
        });
        rx.recv().context("responder thread")??;
        Ok(UdpResponder {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for UdpResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One datagram to `addr`; the answer.
fn udp_ask(addr: SocketAddr) -> Option<String> {
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.send_to(b"hi", addr).ok()?;
    let mut buf = [0u8; 512];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn one_node_mesh_tcp_udp_dynamic_update_host_mode_and_cleanup() -> Result<()> {
    let cluster = Cluster::new(1)?;
    let h = cluster.host(0);
    init(h)?;
    let img = cluster.image("1");
    let client = cluster.gateway().to_string();
    h.swarm_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--replicas",
        "2",
        "-p",
        "18080:8080",
        "--stop-grace-period",
        "1s",
        &img,
        "sh",
        "-c",
        WEB_CMD,
    ])?;
    h.wait_running("web", 2)?;
    let ids = running_ids(h, "web")?;

    // The node's own address (from outside) and 127.0.0.1 (from inside) answer; both
    // replicas answer over 20 requests.
    let seen = wait_for("web on the node's address", Duration::from_secs(20), || {
        whoami(None, h.ip, 18080)
    })
    .with_context(|| fabric(&cluster))?;
    ensure!(ids.contains(&seen.0), "{seen:?} not one of {ids:?}");
    ensure!(
        seen.1 == client,
        "the task saw {} and not the client {client}",
        seen.1
    );
    // The second replica joins the mesh when the node hears it runs: a moment after
    // the API says so.
    let outside = wait_for(
        "both replicas from outside",
        Duration::from_secs(10),
        || {
            let s = answering(None, h.ip, 18080, 20)?;
            Ok((s == ids).then_some(s))
        },
    )
    .with_context(|| fabric(&cluster))?;
    ensure!(
        outside == ids,
        "from outside {outside:?}, not both of {ids:?}"
    );
    let local = answering(Some(h), Ipv4Addr::LOCALHOST, 18080, 20)?;
    ensure!(local == ids, "on 127.0.0.1 {local:?}, not both of {ids:?}");
    ensure!(
        answering(Some(h), h.ip, 18080, 10)?.is_subset(&ids),
        "the node's own address from inside"
    );
    let ports = endpoint_ports(h, "web")?;
    ensure!(
        ports
            == serde_json::json!([{"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 18080, "PublishMode": "ingress"}]),
        "Endpoint.Ports: {ports}"
    );
    // The docker CLI reads the same.
    let docker = h.docker_ok(&[
        "service",
        "inspect",
        "--format",
        "{{json .Endpoint.Ports}}",
        "web",
    ])?;
    let docker: Value = serde_json::from_str(docker.trim())?;
    ensure!(docker == ports, "docker: {docker} vs {ports}");

    // A port another service publishes: refused in Docker's words, nothing made.
    let r = h.swarm(&[
        "service", "create", "--name", "web2", "-p", "18080:80", &img, "sleep", "1d",
    ])?;
    ensure!(!r.ok, "a second service took 18080");
    ensure!(
        r.stderr
            .contains("port '18080' is already in use by service 'web'"),
        "{}",
        r.stderr
    );
    ensure!(h.tasks("web2")?.is_empty(), "web2 made tasks");
    // Bad ports and protocols, as the docker CLI words them.
    for (arg, words) in [("70000:80", "invalid"), ("80/xyz", "invalid")] {
        let r = h.swarm(&["service", "create", "--name", "bad", "-p", arg, &img])?;
        ensure!(
            !r.ok && r.stderr.to_lowercase().contains(words),
            "-p {arg}: {}",
            r.stderr
        );
    }
    // Through the API: a target port of 0 and a published port out of range.
    let (code, v) = h.call(
        "POST",
        "/services/create",
        Some(
            &serde_json::json!({"Name": "bad", "TaskTemplate": {"ContainerSpec": {"Image": img}},
            "EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishedPort": 70000}]}}),
        ),
    )?;
    ensure!(code == 400, "published 70000: {code} {v}");

    // No published port asked (the stock docker CLI): one from 30000-32767, and it answers.
    h.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "dyn",
        "-p",
        "8080",
        "--stop-grace-period",
        "1s",
        &img,
        "sh",
        "-c",
        WEB_CMD,
    ])?;
    h.wait_running("dyn", 1)?;
    let dyn_port = endpoint_ports(h, "dyn")?[0]["PublishedPort"]
        .as_u64()
        .context("no dynamic port")?;
    ensure!(
        (30000..=32767).contains(&dyn_port),
        "dynamic port {dyn_port}"
    );
    let dyn_ids = running_ids(h, "dyn")?;
    let got = wait_for("the dynamic port", Duration::from_secs(20), || {
        whoami(None, h.ip, dyn_port as u16)
    })?;
    ensure!(dyn_ids.contains(&got.0), "{got:?}");

    // UDP through the mesh.
    h.swarm_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "udp",
        "-p",
        "19090:9000/udp",
        &img,
        "sleep",
        "1d",
    ])?;
    let udp_task = h.wait_running("udp", 1)?.remove(0);
    let _responder = UdpResponder::start(
        h.data.join("net/tasks").join(&udp_task.id),
        udp_task.id.clone(),
        9000,
    )?;
    let answer = wait_for("UDP through the mesh", Duration::from_secs(20), || {
        Ok(udp_ask(SocketAddr::from((h.ip, 19090))))
    })?;
    ensure!(
        answer == format!("{} {client}", &udp_task.id[..12]),
        "UDP answer {answer}"
    );

    // --publish-add gives web a second port; --publish-rm takes the ports with its
    // target (docker's rule: target, protocol and mode), both; a new one comes back.
    h.docker_ok(&[
        "service",
        "update",
        "--detach",
        "--publish-add",
        "18081:8080",
        "web",
    ])?;
    wait_for("18081 answers", Duration::from_secs(60), || {
        whoami(None, h.ip, 18081)
    })?;
    ensure!(
        whoami(None, h.ip, 18080)?.is_some(),
        "18080 went when 18081 came"
    );
    h.docker_ok(&[
        "service",
        "update",
        "--detach",
        "--publish-rm",
        "8080",
        "web",
    ])?;
    wait_for("18080 and 18081 closed", Duration::from_secs(60), || {
        Ok(
            (whoami(None, h.ip, 18080)?.is_none() && whoami(None, h.ip, 18081)?.is_none())
                .then_some(()),
        )
    })?;
    h.swarm_ok(&[
        "service",
        "update",
        "--detach",
        "--publish-add",
        "18082:8080",
        "web",
    ])?;
    wait_for("18082 answers", Duration::from_secs(60), || {
        whoami(None, h.ip, 18082)
    })?;
    let host_table = nft_table(h, "swarm_mesh")?;
    ensure!(
        !host_table.contains("18080")
            && !host_table.contains("18081")
            && host_table.contains("18082"),
        "the mesh's rules after the moves:\n{host_table}"
    );

    // mode=host: the port answers on the task's node, straight to it.
    h.swarm_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "hostmode",
        "--publish",
        "mode=host,published=18090,target=8080",
        "--stop-grace-period",
        "1s",
        &img,
        "sh",
        "-c",
        WEB_CMD,
    ])?;
    let hm = h.wait_running("hostmode", 1)?.remove(0);
    let got = wait_for("host-mode port", Duration::from_secs(20), || {
        whoami(None, h.ip, 18090)
    })?;
    ensure!(got.0 == hm.id[..12], "{got:?}");

    // Every service gone: every rule, table and the sandbox gone.
    for s in ["web", "dyn", "udp", "hostmode"] {
        h.swarm_ok(&["service", "rm", s])?;
    }
    wait_for("nothing of the mesh left", Duration::from_secs(60), || {
        let left = mesh_state(h)?;
        Ok(left
            .iter()
            .all(|l| {
                !l.contains("swarm_mesh")
                    && !l.contains("swarm_ports")
                    && !l.contains("ingress_sbox")
                    && !l.contains("swarm-dnat")
            })
            .then_some(()))
    })
    .with_context(|| format!("left: {:?}", mesh_state(h)))?;
    Ok(())
}

#[test]
fn three_hosts_mesh_follows_the_task_keeps_the_client_address_and_host_mode() -> Result<()> {
    let cluster = Cluster::new(3)?;
    let h0 = cluster.host(0);
    init(h0)?;
    cluster.join_workers()?;
    let img = cluster.image("1");
    let client = cluster.gateway().to_string();
    h0.swarm_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "-p",
        "18080:8080",
        "--constraint",
        "node.hostname!=h0",
        "--stop-grace-period",
        "1s",
        &img,
        "sh",
        "-c",
        WEB_CMD,
    ])?;
    let task = h0.wait_running("web", 1)?.remove(0);
    let t = h0.ok("GET", &format!("/tasks/{}", task.id), None)?;
    // Every host answers, also those without the task, and the task sees the client.
    for h in cluster.hosts() {
        let got = wait_for(
            &format!("web through h{}", h.index),
            Duration::from_secs(30),
            || whoami(None, h.ip, 18080),
        )?;
        ensure!(got.0 == task.id[..12], "h{}: {got:?}", h.index);
        ensure!(
            got.1 == client,
            "through h{}: the task saw {} and not the client {client}",
            h.index,
            got.1
        );
        // 127.0.0.1 on every host.
        let local = wait_for(
            &format!("127.0.0.1 on h{}", h.index),
            Duration::from_secs(10),
            || whoami(Some(h), Ipv4Addr::LOCALHOST, 18080),
        )?;
        ensure!(local.0 == task.id[..12], "{local:?}");
    }

    // Drain the task's host: the task moves, the port still answers everywhere.
    let node_id = t["NodeID"].as_str().context("NodeID")?.to_string();
    h0.swarm_ok(&["node", "update", "--availability", "drain", &node_id])?;
    let moved = wait_for("web moved", Duration::from_secs(60), || {
        let r = h0.running("web")?;
        Ok(r.into_iter().find(|x| x.id != task.id))
    })?;
    for h in cluster.hosts() {
        let got = wait_for(
            &format!("the moved task through h{}", h.index),
            Duration::from_secs(30),
            || Ok(whoami(None, h.ip, 18080)?.filter(|g| g.0 == moved.id[..12])),
        )?;
        ensure!(got.1 == client, "after the drain, h{}: {got:?}", h.index);
    }
    h0.swarm_ok(&["node", "update", "--availability", "active", &node_id])?;

    // Scale to 3 across the hosts: connections through one host spread over all.
    h0.swarm_ok(&[
        "service",
        "update",
        "--detach",
        "--constraint-rm",
        "node.hostname!=h0",
        "--replicas",
        "3",
        "web",
    ])?;
    h0.wait_running("web", 3)?;
    let ids = running_ids(h0, "web")?;
    let mut seen = BTreeSet::new();
    wait_for("every replica through h0", Duration::from_secs(30), || {
        seen.extend(answering(None, cluster.ip(0), 18080, 6)?);
        Ok(ids.is_subset(&seen).then_some(()))
    })
    .with_context(|| format!("saw {seen:?} of {ids:?}\n{}", fabric(&cluster)))?;
    ensure!(
        seen == ids,
        "answers from tasks not running: {seen:?} vs {ids:?}"
    );

    // mode=host on one worker: only that node answers.
    h0.swarm_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "hostmode",
        "--publish",
        "mode=host,published=18090,target=8080",
        "--constraint",
        "node.hostname==h1",
        "--stop-grace-period",
        "1s",
        &img,
        "sh",
        "-c",
        WEB_CMD,
    ])?;
    let hm = h0.wait_running("hostmode", 1)?.remove(0);
    let got = wait_for("host mode on h1", Duration::from_secs(30), || {
        whoami(None, cluster.ip(1), 18090)
    })?;
    ensure!(got.0 == hm.id[..12] && got.1 == client, "{got:?}");
    for i in [0, 2] {
        ensure!(
            whoami(None, cluster.ip(i), 18090)?.is_none(),
            "host-mode port answered on h{i}"
        );
    }
    Ok(())
}

#[test]
fn kill9_keeps_published_ports_answering_and_leaves_no_duplicates() -> Result<()> {
    let mut cluster = Cluster::new(1)?;
    init(cluster.host(0))?;
    let img = cluster.image("1");
    {
        let h = cluster.host(0);
        h.swarm_ok(&[
            "service",
            "create",
            "--detach",
            "--name",
            "web",
            "--replicas",
            "2",
            "-p",
            "18080:8080",
            "--stop-grace-period",
            "1s",
            &img,
            "sh",
            "-c",
            WEB_CMD,
        ])?;
        h.wait_running("web", 2)?;
        wait_for("web answers", Duration::from_secs(20), || {
            whoami(None, h.ip, 18080)
        })?;
    }
    let ip = cluster.ip(0);
    let before = (
        nft_table(cluster.host(0), "swarm_mesh")?,
        mesh_state(cluster.host(0))?,
    );
    ensure!(before.0.contains("18080"), "no mesh table:\n{}", before.0);
    cluster.kill9(0)?;
    // The kernel keeps serving while swarmd is down.
    for _ in 0..5 {
        ensure!(
            whoami(None, ip, 18080)?.is_some(),
            "the port stopped answering with swarmd down"
        );
    }
    cluster.restart(0)?;
    let h = cluster.host(0);
    h.wait_running("web", 2)?;
    ensure!(
        whoami(None, ip, 18080)?.is_some(),
        "the port after the restart"
    );
    // The restarted agent converges again: to the same rules, nothing added.
    let mut after = None;
    wait_for(
        "the same rules after the restart",
        Duration::from_secs(20),
        || {
            let now = (nft_table(h, "swarm_mesh")?, mesh_state(h)?);
            let same = now == before;
            after = Some(now);
            Ok(same.then_some(()))
        },
    )
    .with_context(|| format!("before:\n{before:?}\nafter:\n{after:?}"))?;
    h.swarm_ok(&["service", "rm", "web"])?;
    wait_for("nothing of the mesh left", Duration::from_secs(60), || {
        let left = mesh_state(h)?;
        Ok(left
            .iter()
            .all(|l| {
                !l.contains("swarm_mesh")
                    && !l.contains("ingress_sbox")
                    && !l.contains("swarm-dnat")
            })
            .then_some(()))
    })
    .with_context(|| format!("left: {:?}", mesh_state(h)))?;
    if whoami(None, ip, 18080)?.is_some() {
        bail!("18080 answers after service rm");
    }
    Ok(())
}
