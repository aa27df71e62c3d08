//! Overlay networks end to end (issue 12): swarmd hosts in network namespaces (the
//! multi-host harness), real containers, real VXLAN, nftables VIPs.
//!
//! Commands "from a container" run in the task's network namespace with the host's
//! busybox (`nsenter --net=<data>/net/tasks/<task id>`), bounded by `timeout` (Debian's
//! busybox `wget -T` segfaults).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use rootfs_tests::cluster::{in_netns, Cluster, Host};
use rootfs_tests::swarmd::wait_for;
use serde_json::Value;

const WEB_CMD: &str =
    "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www";

/// Where a task's network namespace is pinned on its host.
fn task_netns(h: &Host, task: &str) -> PathBuf {
    h.data.join("net/tasks").join(task)
}

/// The container's first process, from the task's status.
fn task_pid(h: &Host, task: &str) -> Result<i64> {
    let t = h.ok("GET", &format!("/tasks/{task}"), None)?;
    t["Status"]["ContainerStatus"]["PID"]
        .as_i64()
        .filter(|p| *p > 0)
        .with_context(|| format!("no pid: {t}"))
}

/// `busybox ARGS` in the task's container (its network and mount namespaces: its own
/// resolv.conf and hosts), at most 5 s; (exit ok, stdout).
fn in_task(h: &Host, task: &str, args: &[&str]) -> Result<(bool, String)> {
    let pid = task_pid(h, task)?;
    let out = Command::new("timeout")
        .arg("5")
        .arg("nsenter")
        .args(["-t", &pid.to_string(), "-n", "-m"])
        .arg("/bin/busybox")
        .args(args)
        .output()
        .context("nsenter")?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

fn wget(h: &Host, task: &str, url: &str) -> Result<Option<String>> {
    let (ok, out) = in_task(h, task, &["wget", "-qO-", url])?;
    Ok(ok.then(|| out.trim().to_string()))
}

/// The addresses `nslookup NAME 127.0.0.11` gives in the task's container (empty when
/// it does not resolve).
fn lookup(h: &Host, task: &str, name: &str) -> Result<BTreeSet<String>> {
    let (ok, out) = in_task(h, task, &["nslookup", name, "127.0.0.11"])?;
    if !ok {
        return Ok(BTreeSet::new());
    }
    Ok(out
        .lines()
        .filter_map(|l| l.strip_prefix("Address:"))
        .map(|a| a.trim().to_string())
        .filter(|a| !a.starts_with("127.0.0.11"))
        .collect())
}

/// The task's address on network `net_id`.
fn task_addr(task: &Value, net_id: &str) -> Option<String> {
    task["NetworksAttachments"]
        .as_array()?
        .iter()
        .find(|a| a["Network"]["ID"] == net_id)?["Addresses"][0]
        .as_str()
        .map(|a| a.split('/').next().unwrap_or(a).to_string())
}

fn running_tasks(h: &Host, service: &str) -> Result<Vec<Value>> {
    Ok(h.tasks(service)?
        .into_iter()
        .filter(|t| t["DesiredState"] == "running" && t["Status"]["State"] == "running")
        .collect())
}

fn service_vip(h: &Host, service: &str, net_id: &str) -> Result<String> {
    let svc = h.ok("GET", &format!("/services/{service}"), None)?;
    let vip = svc["Endpoint"]["VirtualIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["NetworkID"] == net_id)
        .and_then(|v| v["Addr"].as_str())
        .with_context(|| format!("no VIP for {service}: {svc}"))?;
    Ok(vip.split('/').next().unwrap_or(vip).to_string())
}

fn network_id(h: &Host, name: &str) -> Result<String> {
    let n = h.ok("GET", &format!("/networks/{name}"), None)?;
    Ok(n["Id"].as_str().context("Id")?.to_string())
}

/// Links with our prefix, task/overlay namespaces, and `swarm` nft tables on a host.
fn leftovers(h: &Host) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let links = in_netns(&h.netns, || {
        Command::new("ip").args(["-o", "link"]).output()
    })??;
    for l in String::from_utf8_lossy(&links.stdout).lines() {
        let name = l.split(':').nth(1).unwrap_or("").trim();
        let name = name.split('@').next().unwrap_or(name);
        if name.starts_with("sw") {
            out.push(format!("link {name}"));
        }
    }
    let tables = in_netns(&h.netns, || {
        Command::new("nft").args(["list", "tables"]).output()
    })??;
    for t in String::from_utf8_lossy(&tables.stdout).lines() {
        if t.trim_end().ends_with(" swarm") {
            out.push(t.to_string());
        }
    }
    for dir in ["net/tasks", "net/host/netns"] {
        if let Ok(d) = std::fs::read_dir(h.data.join(dir)) {
            for e in d.flatten() {
                out.push(format!("netns {}", e.path().display()));
            }
        }
    }
    Ok(out)
}

fn init(h: &Host, extra: &[&str]) -> Result<()> {
    let ip = h.ip.to_string();
    let mut args = vec!["swarm", "init", "--advertise-addr", ip.as_str()];
    args.extend_from_slice(extra);
    h.swarm_ok(&args[1..])?;
    Ok(())
}

#[test]
fn one_node_vip_tasks_and_isolation() -> Result<()> {
    let cluster = Cluster::new(1)?;
    let h = cluster.host(0);
    init(h, &[])?;
    let img = cluster.image("1");
    h.swarm_ok(&["network", "create", "-d", "overlay", "appnet"])?;
    h.swarm_ok(&["network", "create", "-d", "overlay", "othernet"])?;
    let net = network_id(h, "appnet")?;
    h.swarm_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--network",
        "appnet",
        "--replicas",
        "3",
        &img,
        "sh",
        "-c",
        WEB_CMD,
    ])?;
    h.swarm_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "client",
        "--network",
        "appnet",
        &img,
        "sleep",
        "1d",
    ])?;
    h.swarm_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "rr",
        "--network",
        "appnet",
        "--endpoint-mode",
        "dnsrr",
        "--replicas",
        "2",
        &img,
        "sleep",
        "1d",
    ])?;
    h.swarm_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "outsider",
        "--network",
        "othernet",
        &img,
        "sleep",
        "1d",
    ])?;
    for (s, n) in [("web", 3), ("client", 1), ("rr", 2), ("outsider", 1)] {
        h.wait_running(s, n)?;
    }
    let web = running_tasks(h, "web")?;
    let addrs: BTreeSet<String> = web
        .iter()
        .map(|t| task_addr(t, &net).context("web task address"))
        .collect::<Result<_>>()?;
    ensure!(addrs.len() == 3, "{addrs:?}");
    let hostnames: BTreeSet<String> = web
        .iter()
        .map(|t| t["ID"].as_str().unwrap_or("")[..12].to_string())
        .collect();
    let client = running_tasks(h, "client")?[0]["ID"]
        .as_str()
        .context("client")?
        .to_string();
    let outsider = running_tasks(h, "outsider")?[0]["ID"]
        .as_str()
        .context("outsider")?
        .to_string();

    // Straight to each task, then through the VIP: every replica answers.
    for a in &addrs {
        let got = wait_for(&format!("web task {a}"), Duration::from_secs(20), || {
            wget(h, &client, &format!("http://{a}:8080/"))
        })?;
        ensure!(hostnames.contains(&got), "{got} not in {hostnames:?}");
    }
    let vip = service_vip(h, "web", &net)?;
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        let got = wait_for("web through its VIP", Duration::from_secs(20), || {
            wget(h, &client, &format!("http://{vip}:8080/"))
        })?;
        seen.insert(got);
    }
    ensure!(
        seen == hostnames,
        "over 20 requests: {seen:?} of {hostnames:?}"
    );

    // The embedded DNS: the VIP, every replica, the dnsrr tasks, the task names.
    let want_vip = BTreeSet::from([vip.clone()]);
    wait_for("web resolves to its VIP", Duration::from_secs(20), || {
        Ok((lookup(h, &client, "web")? == want_vip).then_some(()))
    })?;
    wait_for(
        "tasks.web resolves to every replica",
        Duration::from_secs(20),
        || Ok((lookup(h, &client, "tasks.web")? == addrs).then_some(())),
    )?;
    let rr: BTreeSet<String> = running_tasks(h, "rr")?
        .iter()
        .filter_map(|t| task_addr(t, &net))
        .collect();
    ensure!(rr.len() == 2, "{rr:?}");
    wait_for(
        "dnsrr resolves to its tasks",
        Duration::from_secs(20),
        || Ok((lookup(h, &client, "rr")? == rr).then_some(())),
    )?;
    let t = &web[0];
    let tname = format!(
        "web.{}.{}",
        t["Slot"].as_u64().unwrap_or(0),
        t["ID"].as_str().unwrap_or("")
    );
    let want = BTreeSet::from([task_addr(t, &net).context("address")?]);
    ensure!(lookup(h, &client, &tname)? == want, "{tname}");
    // By name through the container's resolv.conf.
    let got = wait_for("wget http://web:8080/", Duration::from_secs(20), || {
        wget(h, &client, "http://web:8080/")
    })?;
    ensure!(hostnames.contains(&got), "{got}");

    // Another network: no name, no route to them, no VIP.
    ensure!(
        lookup(h, &outsider, "web")?.is_empty(),
        "web resolved on othernet"
    );
    ensure!(lookup(h, &outsider, "tasks.web")?.is_empty());
    let (ok, _) = in_task(
        h,
        &outsider,
        &["wget", "-qO-", &format!("http://{vip}:8080/")],
    )?;
    ensure!(!ok, "the VIP answered from another network");
    let first = addrs.iter().next().context("an address")?;
    let (ok, _) = in_task(
        h,
        &outsider,
        &["wget", "-qO-", &format!("http://{first}:8080/")],
    )?;
    ensure!(!ok, "a task answered from another network");

    // Every task has lo up and the default route on the gateway bridge.
    let (ok, routes) = in_task(h, &client, &["ip", "route"])?;
    ensure!(ok && routes.contains("default via 172.18.0.1"), "{routes}");
    let (_, links) = in_task(h, &client, &["ip", "-o", "link"])?;
    ensure!(
        links.contains("lo:") && links.contains("eth0") && links.contains("eth1"),
        "{links}"
    );
    ensure!(in_task(h, &client, &["ping", "-c", "1", "-W", "1", "127.0.0.1"])?.0);

    // `service update --network-add`: the new task is on both networks and resolves
    // the other network's names; `--network-rm` takes it off again.
    h.swarm_ok(&[
        "service",
        "update",
        "-d",
        "--network-add",
        "othernet",
        "client",
    ])?;
    let on_both = wait_for("client on both networks", Duration::from_secs(30), || {
        let t = running_tasks(h, "client")?;
        Ok(t.first()
            .filter(|t| t["NetworksAttachments"].as_array().map_or(0, Vec::len) == 2)
            .and_then(|t| t["ID"].as_str().map(str::to_string)))
    })?;
    wait_for(
        "outsider resolves from both",
        Duration::from_secs(20),
        || Ok((!lookup(h, &on_both, "outsider")?.is_empty()).then_some(())),
    )?;
    ensure!(
        lookup(h, &on_both, "web")? == want_vip,
        "web from both networks"
    );
    h.swarm_ok(&[
        "service",
        "update",
        "-d",
        "--network-rm",
        "othernet",
        "client",
    ])?;
    let back = wait_for("client on appnet only", Duration::from_secs(30), || {
        let t = running_tasks(h, "client")?;
        Ok(t.first()
            .filter(|t| t["NetworksAttachments"].as_array().map_or(0, Vec::len) == 1)
            .and_then(|t| t["ID"].as_str().map(str::to_string)))
    })?;
    wait_for("client resolves web again", Duration::from_secs(20), || {
        Ok((lookup(h, &back, "web")? == want_vip).then_some(()))
    })?;
    ensure!(
        lookup(h, &back, "outsider")?.is_empty(),
        "outsider after rm"
    );

    // `--internal`: a task only on an internal network has no way out (no gateway
    // bridge, no default route), and still resolves its network's names.
    h.swarm_ok(&["network", "create", "-d", "overlay", "--internal", "sealed"])?;
    h.swarm_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "inside",
        "--network",
        "sealed",
        &img,
        "sleep",
        "1d",
    ])?;
    h.wait_running("inside", 1)?;
    let inside = running_tasks(h, "inside")?[0]["ID"]
        .as_str()
        .context("inside")?
        .to_string();
    let (_, routes) = in_task(h, &inside, &["ip", "route"])?;
    ensure!(
        !routes.contains("default"),
        "internal network with egress: {routes}"
    );
    wait_for("inside resolves itself", Duration::from_secs(20), || {
        Ok((!lookup(h, &inside, "inside")?.is_empty()).then_some(()))
    })?;

    // Removing everything leaves no link, namespace or overlay behind.
    for s in ["web", "client", "rr", "outsider", "inside"] {
        h.swarm_ok(&["service", "rm", s])?;
    }
    wait_for("every task gone", Duration::from_secs(30), || {
        Ok(h.all_tasks()?.is_empty().then_some(()))
    })?;
    h.swarm_ok(&["network", "rm", "appnet", "othernet", "sealed"])?;
    wait_for("nothing left", Duration::from_secs(20), || {
        let l = leftovers(h)?;
        Ok(l.is_empty().then_some(()))
    })
    .with_context(|| format!("{:?}", leftovers(h)))?;
    Ok(())
}

#[test]
fn bad_input_is_refused_in_dockers_words() -> Result<()> {
    let cluster = Cluster::new(1)?;
    let h = cluster.host(0);
    init(h, &[])?;
    let img = cluster.image("1");
    h.swarm_ok(&["network", "create", "--subnet", "10.55.0.0/24", "a"])?;
    let r = h.swarm(&["network", "create", "--subnet", "10.55.0.128/25", "b"])?;
    ensure!(!r.ok && r.stderr.contains("Pool overlaps"), "{r:?}");
    let r = h.swarm(&["network", "create", "-d", "bridge", "c"])?;
    ensure!(!r.ok && r.stderr.contains("not supported"), "{r:?}");
    let r = h.swarm(&["network", "create", "--opt", "encrypted", "d"])?;
    ensure!(!r.ok && r.stderr.contains("not supported"), "{r:?}");
    let r = h.swarm(&[
        "service",
        "create",
        "--detach",
        "--network",
        "nope",
        &img,
        "true",
    ])?;
    ensure!(
        !r.ok && r.stderr.contains("network nope not found"),
        "{r:?}"
    );
    h.swarm_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "s",
        "--network",
        "a",
        &img,
        "sleep",
        "1d",
    ])?;
    let r = h.swarm(&["network", "rm", "a"])?;
    ensure!(!r.ok && r.stderr.contains("is in use by service"), "{r:?}");
    // Nothing half-made: only ingress and a.
    let names: BTreeSet<String> = h
        .ok("GET", "/networks", None)?
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["Name"].as_str().map(str::to_string))
        .collect();
    ensure!(
        names == BTreeSet::from(["ingress".to_string(), "a".to_string()]),
        "{names:?}"
    );
    let services = h.services()?;
    ensure!(services.len() == 1, "{services:?}");
    bail_if_tasks_without_networks(h)
}

fn bail_if_tasks_without_networks(h: &Host) -> Result<()> {
    for t in h.all_tasks()? {
        if t["NetworksAttachments"]
            .as_array()
            .is_none_or(Vec::is_empty)
        {
            bail!("task without attachments: {t}");
        }
    }
    Ok(())
}

#[test]
fn three_hosts_reach_a_service_by_name_across_vxlan_and_after_a_drain() -> Result<()> {
    let cluster = Cluster::new(3)?;
    let h0 = cluster.host(0);
    init(h0, &["--data-path-port", "7789"])?;
    cluster.join_workers()?;
    let img = cluster.image("1");
    h0.swarm_ok(&["network", "create", "appnet"])?;
    h0.swarm_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--network",
        "appnet",
        // httpd as PID 1 ignores SIGTERM: without this the drain waits the 10 s grace.
        "--stop-grace-period",
        "1s",
        "--constraint",
        "node.role==worker",
        &img,
        "sh",
        "-c",
        WEB_CMD,
    ])?;
    h0.swarm_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "client",
        "--network",
        "appnet",
        "--constraint",
        "node.hostname==h0",
        &img,
        "sleep",
        "1d",
    ])?;
    h0.wait_running("web", 1)?;
    h0.wait_running("client", 1)?;
    let client = running_tasks(h0, "client")?[0]["ID"]
        .as_str()
        .context("client")?
        .to_string();
    let web = running_tasks(h0, "web")?.remove(0);
    let b = cluster.host_of(&web)?;
    ensure!(b != 0, "web runs on a worker");
    let first = web["ID"].as_str().context("id")?[..12].to_string();
    let got = wait_for(
        "web on another host by name",
        Duration::from_secs(30),
        || wget(h0, &client, "http://web:8080/"),
    )?;
    ensure!(got == first, "{got} != {first}");
    // The swarm's data path port reached the VXLAN devices on both hosts.
    let net = network_id(h0, "appnet")?;
    for i in [0, b] {
        let ov = cluster
            .host(i)
            .data
            .join("net/host/netns")
            .join(format!("ov-{}", &net[..12]));
        let out = Command::new("nsenter")
            .arg(format!("--net={}", ov.display()))
            .args(["ip", "-d", "link", "show", "vxlan0"])
            .output()?;
        let out = String::from_utf8_lossy(&out.stdout);
        ensure!(out.contains("dstport 7789"), "host {i}: {out}");
    }

    // Drain its host: the task moves to the other worker; the name follows.
    let drained = format!("h{b}");
    let node_id = web["NodeID"].as_str().context("NodeID")?.to_string();
    h0.swarm_ok(&["node", "update", "--availability", "drain", &node_id])?;
    let start = std::time::Instant::now();
    let moved = wait_for("web moved", Duration::from_secs(60), || {
        let r = running_tasks(h0, "web")?;
        Ok(r.into_iter().find(|t| t["NodeID"] != node_id.as_str()))
    })?;
    let second = moved["ID"].as_str().context("id")?[..12].to_string();
    let got = wait_for(
        "web by name after the drain",
        Duration::from_secs(30),
        || Ok(wget(h0, &client, "http://web:8080/")?.filter(|g| *g == second)),
    )?;
    eprintln!(
        "web answered from its new task {} s after draining {drained}",
        start.elapsed().as_secs_f64()
    );
    ensure!(got == second);
    Ok(())
}

#[test]
fn kill9_and_restart_keep_addresses_and_leave_no_duplicates() -> Result<()> {
    let mut cluster = Cluster::new(1)?;
    init(cluster.host(0), &[])?;
    let img = cluster.image("1");
    let h = cluster.host(0);
    h.swarm_ok(&["network", "create", "appnet"])?;
    h.swarm_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--network",
        "appnet",
        "--replicas",
        "2",
        &img,
        "sh",
        "-c",
        WEB_CMD,
    ])?;
    h.swarm_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "client",
        "--network",
        "appnet",
        &img,
        "sleep",
        "1d",
    ])?;
    let before_web = h.wait_running("web", 2)?;
    let before_client = h.wait_running("client", 1)?;
    let client = before_client[0].id.clone();
    wait_for("web by name", Duration::from_secs(20), || {
        wget(h, &client, "http://web:8080/")
    })?;
    let state = |h: &Host| -> Result<(Vec<String>, String, String)> {
        let links = in_netns(&h.netns, || {
            Command::new("ip").args(["-o", "link"]).output()
        })??;
        let mut links: Vec<String> = String::from_utf8_lossy(&links.stdout)
            .lines()
            .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
            .collect();
        links.sort();
        let tables = in_netns(&h.netns, || {
            Command::new("nft").args(["list", "ruleset"]).output()
        })??;
        let ns = task_netns(h, &client);
        let inside = Command::new("nsenter")
            .arg(format!("--net={}", ns.display()))
            .args(["ip", "-o", "-4", "addr"])
            .output()?;
        Ok((
            links,
            String::from_utf8_lossy(&tables.stdout).into_owned(),
            String::from_utf8_lossy(&inside.stdout).into_owned(),
        ))
    };
    let before = state(h)?;
    cluster.kill9(0)?;
    cluster.restart(0)?;
    let h = cluster.host(0);
    ensure!(h.wait_running("web", 2)? == before_web, "web tasks changed");
    ensure!(
        h.wait_running("client", 1)? == before_client,
        "client changed"
    );
    // Connectivity by name again once the new swarmd serves DNS.
    wait_for(
        "web by name after the restart",
        Duration::from_secs(30),
        || wget(h, &client, "http://web:8080/"),
    )?;
    let after = state(h)?;
    ensure!(
        before.0 == after.0,
        "links: {:?} -> {:?}",
        before.0,
        after.0
    );
    ensure!(before.1 == after.1, "nft:\n{}\n->\n{}", before.1, after.1);
    ensure!(
        before.2 == after.2,
        "task addresses:\n{}\n->\n{}",
        before.2,
        after.2
    );

    for s in ["web", "client"] {
        h.swarm_ok(&["service", "rm", s])?;
    }
    wait_for("every task gone", Duration::from_secs(30), || {
        Ok(h.all_tasks()?.is_empty().then_some(()))
    })?;
    h.swarm_ok(&["network", "rm", "appnet"])?;
    wait_for("nothing left", Duration::from_secs(20), || {
        Ok(leftovers(h)?.is_empty().then_some(()))
    })
    .with_context(|| format!("{:?}", leftovers(h)))?;
    Ok(())
}

#[test]
fn docker_cli_networks_and_address_pools() -> Result<()> {
    let cluster = Cluster::new(1)?;
    let h = cluster.host(0);
    let ip = h.ip.to_string();
    h.docker_ok(&[
        "swarm",
        "init",
        "--advertise-addr",
        &ip,
        "--default-addr-pool",
        "10.20.0.0/16",
        "--default-addr-pool-mask-length",
        "26",
    ])?;
    let swarm = h.ok("GET", "/swarm", None)?;
    ensure!(
        swarm["DefaultAddrPool"] == serde_json::json!(["10.20.0.0/16"]),
        "{swarm}"
    );
    ensure!(swarm["SubnetSize"] == 26, "{swarm}");
    let id = h.docker_ok(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--attachable",
        "appnet",
    ])?;
    let ls = h.docker_ok(&["network", "ls"])?;
    ensure!(ls.starts_with("NETWORK ID"), "{ls}");
    let line = ls
        .lines()
        .find(|l| l.contains("appnet"))
        .with_context(|| ls.clone())?;
    ensure!(line.starts_with(&id.trim()[..12]), "{line}");
    ensure!(line.contains("overlay") && line.contains("swarm"), "{line}");
    ensure!(ls == h.swarm_ok(&["network", "ls"])?, "ours differs:\n{ls}");
    let inspect: Value = serde_json::from_str(&h.docker_ok(&["network", "inspect", "appnet"])?)?;
    let n = &inspect[0];
    ensure!(n["Driver"] == "overlay" && n["Scope"] == "swarm", "{n}");
    ensure!(n["Attachable"] == true, "{n}");
    let subnet = n["IPAM"]["Config"][0]["Subnet"].as_str().unwrap_or("");
    ensure!(
        subnet.starts_with("10.20.0.") && subnet.ends_with("/26"),
        "{n}"
    );
    ensure!(
        n["Options"]["com.docker.network.driver.overlay.vxlanid_list"].is_string(),
        "{n}"
    );
    let img = cluster.image("1");
    h.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--network",
        "appnet",
        &img,
        "sleep",
        "1d",
    ])?;
    h.wait_running("web", 1)?;
    let t = &running_tasks(h, "web")?[0];
    let addr = task_addr(t, n["Id"].as_str().unwrap_or("")).context("address")?;
    ensure!(addr.starts_with("10.20.0."), "{addr}");
    let svc: Value = serde_json::from_str(&h.docker_ok(&["service", "inspect", "web"])?)?;
    ensure!(
        svc[0]["Endpoint"]["VirtualIPs"][0]["Addr"]
            .as_str()
            .is_some_and(|a| a.starts_with("10.20.0.")),
        "{svc}"
    );
    let r = h.docker(&["network", "rm", "appnet"])?;
    ensure!(!r.ok && r.stderr.contains("is in use"), "{r:?}");
    Ok(())
}
