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

/// `busybox ARGS` inside a task's namespace, at most 5 s; (exit ok, stdout).
fn in_task(h: &Host, task: &str, args: &[&str]) -> Result<(bool, String)> {
    let ns = task_netns(h, task);
    let out = Command::new("timeout")
        .arg("5")
        .arg("nsenter")
        .arg(format!("--net={}", ns.display()))
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
        if name.starts_with("sw") && name != "sw_gwbridge" {
            out.push(format!("link {name}"));
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

    // Another network: no route to them, no VIP.
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

    // Removing everything leaves no link, namespace or overlay behind.
    for s in ["web", "client", "rr", "outsider"] {
        h.swarm_ok(&["service", "rm", s])?;
    }
    wait_for("every task gone", Duration::from_secs(30), || {
        Ok(h.all_tasks()?.is_empty().then_some(()))
    })?;
    h.swarm_ok(&["network", "rm", "appnet", "othernet"])?;
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
