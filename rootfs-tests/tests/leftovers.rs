//! Issue 15, item 8: after `service rm` of everything and a `kill -9` of swarmd at any
//! moment, nothing of ours remains: no process, mount, cgroup directory (empty ones
//! included), rootfs, or network object.
//!
//! One swarmd in its own network namespace (the multi-host harness with one host), so
//! every network object in that namespace is this swarmd's, and every other object is
//! found by what only this swarmd has: its dir (processes' command lines, mounts, bundle
//! dirs, pinned namespaces) and its cgroup parent. Other suites may run on the machine
//! at the same time; they are never counted.
//!
//! Services: busybox with a health check, one on an overlay network with a published
//! port, one with a secret and a volume. `kill -9` lands at a random moment of a
//! scale-up (the seed is printed); swarmd restarts on the same data dir, everything is
//! removed, and once swarmd is stopped cleanly the walk must find nothing. The second
//! test kills swarmd again right after the removals.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context, Result};
use rootfs_tests::cluster::{Cluster, Host};
use rootfs_tests::swarmd::{processes_naming, wait_for};
use serde_json::Value;

/// Every object of this host's swarmd still on the machine, one line each.
fn walk(h: &Host) -> Vec<String> {
    let mut found = Vec::new();
    let dir = &h.config.dir;
    // Processes: shims (their command lines name the bundle under our dir), swarmd if
    // it should not run, and whatever is in a container cgroup under our parent.
    for pid in processes_naming(dir) {
        if Some(pid as u32) == h.swarmd_pid() {
            continue;
        }
        found.push(format!("process {pid}: {}", cmdline(pid)));
    }
    let mut cgroups = Vec::new();
    for root in h.cgroup_roots() {
        if root.exists() {
            cgroups.push(root.clone());
        }
        subdirs(&root, &mut cgroups);
    }
    for cg in &cgroups {
        for pid in std::fs::read_to_string(cg.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
        {
            found.push(format!(
                "process {pid} in {}: {}",
                cg.display(),
                cmdline(pid.parse().unwrap_or(0))
            ));
        }
    }
    // Cgroup dirs: the containers' and the node's parent itself, in every hierarchy.
    for cg in &cgroups {
        found.push(format!("cgroup dir {}", cg.display()));
    }
    // Mounts below the data dir (overlays, secret tmpfs, pinned namespaces).
    for m in h.mounts() {
        found.push(format!("mount {m}"));
    }
    // Bundles (rootfs dirs) and libcontainer state.
    for sub in ["containers", "libcontainer"] {
        for e in entries(&h.data.join(sub)) {
            found.push(format!("{sub} entry {}", e.display()));
        }
    }
    // Pinned namespaces of tasks and overlays.
    for sub in ["net/tasks", "net/netns"] {
        for e in entries(&h.data.join(sub)) {
            found.push(format!("netns file {}", e.display()));
        }
    }
    // The host namespace is this swarmd's alone: any link but the harness's, any
    // nftables table, our policy rules.
    let ns = format!("--net=/run/netns/{}", h.netns);
    match json_of(&["nsenter", &ns, "ip", "-j", "link"]) {
        Ok(links) => {
            for l in links.as_array().into_iter().flatten() {
                let name = l["ifname"].as_str().unwrap_or_default();
                if name != "lo" && name != "eth0" {
                    found.push(format!("link {name}"));
                }
            }
        }
        Err(e) => found.push(format!("links unreadable: {e:#}")),
    }
    match json_of(&["nsenter", &ns, "nft", "-j", "list", "tables"]) {
        Ok(v) => {
            for t in v["nftables"].as_array().into_iter().flatten() {
                if let Some(t) = t.get("table") {
                    found.push(format!("nft table {} {}", t["family"], t["name"]));
                }
            }
        }
        Err(e) => found.push(format!("nft tables unreadable: {e:#}")),
    }
    match json_of(&["nsenter", &ns, "ip", "-j", "rule"]) {
        Ok(rules) => {
            for r in rules.as_array().into_iter().flatten() {
                let table = r["table"].as_str().unwrap_or_default();
                if !["local", "main", "default"].contains(&table) {
                    found.push(format!("ip rule {r}"));
                }
            }
        }
        Err(e) => found.push(format!("ip rules unreadable: {e:#}")),
    }
    found
}

fn cmdline(pid: i32) -> String {
    let c = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&c).replace('\0', " ")
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn subdirs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in entries(dir) {
        if e.is_dir() && !e.is_symlink() {
            out.push(e.clone());
            subdirs(&e, out);
        }
    }
}

fn json_of(argv: &[&str]) -> Result<Value> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .with_context(|| format!("run {argv:?}"))?;
    ensure!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Ok(Value::Array(vec![]));
    }
    Ok(serde_json::from_str(&text)?)
}

/// The services of the scenario, running; returns nothing but a swarm to break.
fn deploy(h: &Host, image: &str) -> Result<()> {
    h.swarm_ok(&["init", "--advertise-addr", &h.ip.to_string()])?;
    h.swarm_ok(&["network", "create", "-d", "overlay", "appnet"])?;
    let r = h.swarm_stdin(&["secret", "create", "s1", "-"], "hush")?;
    ensure!(r.ok, "secret create: {r:?}");
    let create = |args: &[&str]| -> Result<()> {
        let mut a = vec!["service", "create", "-d", "--stop-grace-period", "1s"];
        a.extend_from_slice(args);
        h.swarm_ok(&a).map(|_| ())
    };
    create(&[
        "--name",
        "hc",
        "--replicas",
        "2",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        image,
        "sleep",
        "1d",
    ])?;
    create(&[
        "--name",
        "web",
        "--network",
        "appnet",
        "-p",
        "18080:8080",
        image,
        "httpd",
        "-f",
        "-p",
        "8080",
    ])?;
    create(&[
        "--name",
        "sv",
        "--secret",
        "s1",
        "--mount",
        "type=volume,source=lv,target=/data",
        image,
        "sleep",
        "1d",
    ])?;
    h.wait_running("hc", 2)?;
    h.wait_running("web", 1)?;
    h.wait_running("sv", 1)?;
    // The walk sees every kind of object while they exist (else it proves nothing).
    let found = walk(h);
    for kind in [
        "process ",
        "cgroup dir ",
        "mount ",
        "containers entry ",
        "libcontainer entry ",
        "netns file ",
        "link ",
        "nft table ",
    ] {
        ensure!(
            found.iter().any(|f| f.starts_with(kind)),
            "the walk found no {kind:?} while services run:\n{}",
            found.join("\n")
        );
    }
    Ok(())
}

/// Remove every service, the network and the secret (the last two once the store lets
/// go of them).
fn remove_all(h: &Host) -> Result<()> {
    remove_all_of(h, &["hc", "web", "sv"])
}

fn wait_removed(h: &Host) -> Result<()> {
    wait_for(
        "network and secret removed",
        Duration::from_secs(60),
        || {
            for args in [["network", "rm", "appnet"], ["secret", "rm", "s1"]] {
                let r = h.swarm(&args)?;
                if !r.ok && !r.stderr.contains("not found") {
                    return Ok(None);
                }
            }
            Ok(Some(()))
        },
    )?;
    wait_for("no task left", Duration::from_secs(60), || {
        Ok(h.all_tasks()?.is_empty().then_some(()))
    })
}

/// Wait (bounded) for the walk to come back empty while swarmd runs, then stop it
/// cleanly and walk again: both must find nothing.
fn assert_nothing_left(cluster: &mut Cluster) -> Result<()> {
    // While swarmd runs, its cgroup parent itself may stay; everything else must go.
    let parents: Vec<String> = cluster
        .host(0)
        .cgroup_roots()
        .iter()
        .map(|r| format!("cgroup dir {}", r.display()))
        .collect();
    let converged = wait_for("nothing of ours left", Duration::from_secs(60), || {
        let found = walk(cluster.host(0));
        Ok(found.iter().all(|f| parents.contains(f)).then_some(()))
    });
    if let Err(e) = converged {
        eprintln!(
            "leftovers while swarmd runs:\n{}",
            walk(cluster.host(0)).join("\n")
        );
        eprintln!("swarmd log:\n{}", cluster.host(0).log_tail());
        return Err(e);
    }
    cluster.host_mut(0).stop()?;
    let found = walk(cluster.host(0));
    eprintln!(
        "leftovers after a clean stop: {}{}",
        found.len(),
        found.iter().map(|f| format!("\n  {f}")).collect::<String>()
    );
    ensure!(
        found.is_empty(),
        "left after service rm, kill -9 and a clean stop:\n{}\nswarmd log:\n{}",
        found.join("\n"),
        cluster.host(0).log_tail()
    );
    Ok(())
}

/// A kill moment from the clock, printed so a failure can be replayed by hand.
fn kill_delay() -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos() as u64;
    let ms = nanos % 2500;
    eprintln!("leftovers: kill -9 swarmd {ms} ms into the scale-up");
    Duration::from_millis(ms)
}

#[test]
fn kill9_during_a_scale_up_then_service_rm_leaves_nothing() -> Result<()> {
    let mut cluster = Cluster::new(1)?;
    let image = cluster.image("1");
    deploy(cluster.host(0), &image)?;
    cluster
        .host(0)
        .swarm_ok(&["service", "scale", "-d", "hc=6", "sv=2"])?;
    std::thread::sleep(kill_delay());
    cluster.kill9(0)?;
    cluster.restart(0)?;
    remove_all(cluster.host(0))?;
    wait_removed(cluster.host(0))?;
    assert_nothing_left(&mut cluster)
}

#[test]
fn kill9_right_after_service_rm_leaves_nothing() -> Result<()> {
    let mut cluster = Cluster::new(1)?;
    let image = cluster.image("1");
    deploy(cluster.host(0), &image)?;
    cluster
        .host(0)
        .swarm_ok(&["service", "scale", "-d", "hc=4"])?;
    std::thread::sleep(kill_delay());
    remove_all(cluster.host(0))?;
    cluster.kill9(0)?;
    cluster.restart(0)?;
    wait_removed(cluster.host(0))?;
    assert_nothing_left(&mut cluster)
}

/// What a `kill -9` in the middle of a container create leaves, made by hand at the
/// moment the kill would land (the window between the bundle's mounts and the
/// container's first record is too short to hit by chance every run): a bundle dir
/// with its rootfs mounted and no `meta.json`, libcontainer state and the container's
/// cgroup dir in every hierarchy. The restarted swarmd must clear all of it.
#[test]
fn a_create_cut_short_by_kill9_leaves_nothing() -> Result<()> {
    let mut cluster = Cluster::new(1)?;
    let image = cluster.image("1");
    let h = cluster.host(0);
    h.swarm_ok(&["init", "--advertise-addr", &h.ip.to_string()])?;
    h.swarm_ok(&[
        "service", "create", "-d", "--name", "hc", &image, "sleep", "1d",
    ])?;
    h.wait_running("hc", 1)?;
    cluster.kill9(0)?;
    let h = cluster.host(0);
    let id = "halfmade0000000000000000";
    let bundle = h.data.join("containers").join(id);
    std::fs::create_dir_all(bundle.join("rootfs"))?;
    std::fs::create_dir_all(bundle.join("upper"))?;
    nix::mount::mount(
        Some("tmpfs"),
        &bundle.join("rootfs"),
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )?;
    std::fs::create_dir_all(h.data.join("libcontainer").join(id))?;
    for root in h.cgroup_roots() {
        if root.is_dir() {
            std::fs::create_dir(root.join(id))?;
        }
    }
    let planted = walk(h);
    ensure!(
        planted
            .iter()
            .any(|f| f.contains(id) && f.starts_with("mount "))
            && planted
                .iter()
                .any(|f| f.contains(id) && f.starts_with("cgroup dir ")),
        "the planted create is not in the walk:\n{}",
        planted.join("\n")
    );
    cluster.restart(0)?;
    remove_all_of(cluster.host(0), &["hc"])?;
    wait_for("no task left", Duration::from_secs(60), || {
        Ok(cluster.host(0).all_tasks()?.is_empty().then_some(()))
    })?;
    assert_nothing_left(&mut cluster)
}

fn remove_all_of(h: &Host, services: &[&str]) -> Result<()> {
    for s in services {
        h.swarm_ok(&["service", "rm", s])?;
    }
    Ok(())
}
