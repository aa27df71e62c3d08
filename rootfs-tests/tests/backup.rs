//! `swarm backup` and `swarmd --restore` (issue 16): a manager with two services, a
//! secret, a config and an overlay network is backed up while a service update rolls;
//! its swarmd is stopped; a fresh swarmd on a new, empty data dir restores the archive,
//! `swarm init --force-new-cluster` makes it the only manager, and everything is there
//! (same IDs and specs) and converges. A node outside a swarm and a worker refuse a
//! backup in Docker's words. With autolock, the archive holds no plain key and the
//! restored node starts locked until `swarm unlock`. A follower's backup of three
//! managers restores without quorum until the forced new cluster.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use rootfs_tests::registry::Registry;
use rootfs_tests::swarmd::{push_busybox, wait_for, Node, Swarmd, SwarmdConfig};
use serde_json::Value;

fn config(dir: &Path, name: &str, registry: &Registry, addr: Option<String>) -> SwarmdConfig {
    SwarmdConfig {
        dir: dir.to_path_buf(),
        hostname: "node-test".into(),
        cgroup: format!("swarm-backup-{name}-{}", std::process::id()),
        registry: registry.host(),
        netns: None,
        addr,
    }
}

/// ID -> (name, spec) of every object of a kind (`services`, `secrets`, ...).
fn objects(s: &Swarmd, kind: &str) -> Result<BTreeMap<String, (String, Value)>> {
    Ok(s.ok("GET", &format!("/{kind}"), None)?
        .as_array()
        .context(kind.to_string())?
        .iter()
        .map(|o| {
            let id = o["ID"]
                .as_str()
                .or(o["Id"].as_str())
                .unwrap_or("")
                .to_string();
            let name = o["Spec"]["Name"]
                .as_str()
                .or(o["Name"].as_str())
                .unwrap_or("")
                .to_string();
            let spec = if o["Spec"].is_null() {
                Value::Null
            } else {
                o["Spec"].clone()
            };
            (id, (name, spec))
        })
        .collect())
}

fn swarm_networks(s: &Swarmd) -> Result<BTreeMap<String, String>> {
    Ok(objects(s, "networks")?
        .into_iter()
        .map(|(id, (name, _))| (id, name))
        .filter(|(_, name)| name == "backend")
        .collect())
}

#[test]
fn backup_during_an_update_restores_into_a_fresh_swarmd() -> Result<()> {
    rootfs_tests::require_root();
    let tmp = tempfile::Builder::new().prefix("swarm-backup-").tempdir()?;
    let registry = Registry::start()?;
    push_busybox(&registry, tmp.path())?;
    let a_dir = tmp.path().join("a");
    let a = Swarmd::start(config(&a_dir, "a", &registry, None))?;
    a.swarm_ok(&["init"])?;
    a.swarm_ok(&["network", "create", "-d", "overlay", "backend"])?;
    let r = a.swarm_stdin(&["secret", "create", "db-pass", "-"], "s3cret")?;
    ensure!(r.ok, "secret create: {r:?}");
    let r = a.swarm_stdin(&["config", "create", "app-conf", "-"], "k=v")?;
    ensure!(r.ok, "config create: {r:?}");
    let img1 = a.image("1");
    let img2 = a.image("2");
    a.swarm_ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--replicas",
        "2",
        "--network",
        "backend",
        "--secret",
        "db-pass",
        "--config",
        "app-conf",
        "--detach",
        &img1,
        "sleep",
        "1d",
    ])?;
    a.swarm_ok(&[
        "service",
        "create",
        "--name",
        "worker",
        "--replicas",
        "1",
        "--detach",
        &img1,
        "sleep",
        "1d",
    ])?;
    a.wait_running("web", 2)?;
    a.wait_running("worker", 1)?;
    // A rolling update still under way when the backup is taken.
    a.swarm_ok(&[
        "service",
        "update",
        "--image",
        &img2,
        "--update-delay",
        "5s",
        "--detach",
        "web",
    ])?;
    let file = tmp.path().join("swarm.tar");
    a.swarm_ok(&["backup", file.to_str().context("path")?])?;
    let update = a.ok("GET", "/services/web", None)?["UpdateStatus"]["State"].clone();
    ensure!(
        update == "updating",
        "the update is not under way: {update}"
    );
    let services = objects(&a, "services")?;
    let secrets = objects(&a, "secrets")?;
    let configs = objects(&a, "configs")?;
    let networks = swarm_networks(&a)?;
    let node_id = a.ok("GET", "/info", None)?["Swarm"]["NodeID"].clone();
    ensure!(services.len() == 2 && secrets.len() == 1 && configs.len() == 1);
    ensure!(networks.len() == 1, "networks: {networks:?}");
    let listing = Command::new("tar").arg("-tf").arg(&file).output()?;
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    for f in [
        "swarm-backup.json",
        "node-id",
        "certificates/swarm-root-ca.crt",
        "certificates/swarm-node.crt",
        "raft/raft-log.redb",
        "raft/raft-snapshot.redb",
    ] {
        ensure!(listing.lines().any(|l| l == f), "{f} not in:\n{listing}");
    }
    // Without autolock the node key is plain in the archive, as on the node's disk.
    let bytes = std::fs::read(&file)?;
    ensure!(bytes.windows(11).any(|w| w == b"PRIVATE KEY"));
    let addr = a.config.addr.clone();
    drop(a);

    // A fresh swarmd, a new empty data dir, the archive laid in before it starts.
    let b_dir = tmp.path().join("b");
    let b = Swarmd::start_with(
        config(&b_dir, "b", &registry, addr),
        vec!["--restore".into(), file.display().to_string()],
    )?;
    ensure!(b.ok("GET", "/info", None)?["Swarm"]["NodeID"] == node_id);
    let out = b.swarm_ok(&["init", "--force-new-cluster"])?;
    ensure!(out.contains("is now a manager"), "{out}");
    let managers = wait_for("one manager, the leader", Duration::from_secs(30), || {
        let nodes = b.ok("GET", "/nodes", None)?;
        let m: Vec<Value> = nodes
            .as_array()
            .context("nodes")?
            .iter()
            .filter(|n| !n["ManagerStatus"].is_null())
            .cloned()
            .collect();
        Ok((m.len() == 1 && m[0]["ManagerStatus"]["Leader"] == true).then_some(m))
    })?;
    ensure!(managers[0]["ID"] == node_id);
    let restored = objects(&b, "services")?;
    ensure!(
        restored.keys().eq(services.keys()),
        "services {:?} != {:?}",
        restored.keys(),
        services.keys()
    );
    for (id, (name, spec)) in &services {
        ensure!(
            restored[id].0 == *name && restored[id].1 == *spec,
            "{name}'s spec changed"
        );
    }
    ensure!(objects(&b, "secrets")? == secrets, "secrets");
    ensure!(objects(&b, "configs")? == configs, "configs");
    ensure!(swarm_networks(&b)? == networks, "networks");
    // The update goes on to its end and every task runs on the new node.
    b.wait_running("worker", 1)?;
    wait_for("web updated to busybox:2", Duration::from_secs(120), || {
        let r = b.running("web")?;
        Ok((r.len() == 2 && r.iter().all(|t| t.runs(&img2))).then_some(()))
    })
    .with_context(|| b.log_tail())?;
    b.wait_running("web", 2)?;

    // Nothing left in the host: the restored swarmd took over the gateway bridge the
    // first one left when it was stopped, and removes it with the last overlay task.
    for s in ["web", "worker"] {
        b.swarm_ok(&["service", "rm", s])?;
    }
    b.swarm_ok(&["network", "rm", "backend"])?;
    wait_for(
        "the gateway bridge and our table gone",
        Duration::from_secs(30),
        || {
            let link = Command::new("ip")
                .args(["link", "show", "sw_gwbridge"])
                .output()?;
            let tables = Command::new("nft").args(["list", "tables"]).output()?;
            let ours = String::from_utf8_lossy(&tables.stdout).contains("inet swarm");
            Ok((!link.status.success() && !ours).then_some(()))
        },
    )
    .with_context(|| b.log_tail())?;
    Ok(())
}

#[test]
fn a_node_that_is_not_a_manager_refuses_a_backup() -> Result<()> {
    let node = Node::start("backup-refused")?;
    let file = node.tmp.path().join("x.tar");
    let r = node.swarm(&["backup", file.to_str().context("path")?])?;
    ensure!(!r.ok, "backup outside a swarm worked");
    ensure!(
        r.stderr.contains("This node is not a swarm manager."),
        "{}",
        r.stderr
    );
    ensure!(!file.exists(), "a refused backup left a file");

    // A worker: moby's errSwarmNotManager.
    node.swarm_ok(&["init"])?;
    let token = node.swarm_ok(&["join-token", "-q", "worker"])?;
    let w_dir = node.tmp.path().join("w");
    let w = Swarmd::start(config(&w_dir, "w", &node.registry, None))?;
    let manager = node.config.addr.clone().context("addr")?;
    w.swarm_ok(&["join", "--token", token.trim(), &manager])?;
    let r = w.swarm(&["backup", "-"])?;
    ensure!(!r.ok && r.stdout.is_empty(), "backup on a worker worked");
    ensure!(
        r.stderr
            .contains("This node is not a swarm manager. Worker nodes can't be used"),
        "{}",
        r.stderr
    );
    Ok(())
}

const LOCKED: &str = "Swarm is encrypted and needs to be unlocked before it can be used.";

#[test]
fn an_autolocked_backup_stays_sealed_and_restores_after_unlock() -> Result<()> {
    rootfs_tests::require_root();
    let tmp = tempfile::Builder::new()
        .prefix("swarm-backup-lock-")
        .tempdir()?;
    let registry = Registry::start()?;
    push_busybox(&registry, tmp.path())?;
    let a = Swarmd::start(config(&tmp.path().join("a"), "la", &registry, None))?;
    a.swarm_ok(&["init", "--autolock"])?;
    let key = a.swarm_ok(&["unlock-key", "-q"])?.trim().to_string();
    ensure!(key.starts_with("SWMKEY-1-"), "{key}");
    let secret = "PLAIN-SECRET-BACKUP-42";
    let r = a.swarm_stdin(&["secret", "create", "db-pass", "-"], secret)?;
    ensure!(r.ok, "secret create: {r:?}");
    let img = a.image("1");
    a.swarm_ok(&[
        "service", "create", "--name", "web", "--secret", "db-pass", "--detach", &img, "sleep",
        "1d",
    ])?;
    a.wait_running("web", 1)?;
    let file = tmp.path().join("locked.tar");
    a.swarm_ok(&["backup", file.to_str().context("path")?])?;
    let services = objects(&a, "services")?;
    let secrets = objects(&a, "secrets")?;
    let addr = a.config.addr.clone();
    drop(a);

    // Nothing in the archive is plain: no key file, no private key, not the secret.
    let bytes = std::fs::read(&file)?;
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    ensure!(
        !has(secret.as_bytes()),
        "the secret is in the archive in plain text"
    );
    ensure!(
        !has(b"PRIVATE KEY"),
        "a private key is in the archive in plain text"
    );
    let listing = Command::new("tar").arg("-tf").arg(&file).output()?;
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    ensure!(
        listing
            .lines()
            .any(|l| l == "certificates/swarm-node.key.locked")
            && !listing
                .lines()
                .any(|l| l == "certificates/swarm-node.key" || l == "certificates/raft-dek"),
        "{listing}"
    );

    let b = Swarmd::start_with(
        config(&tmp.path().join("b"), "lb", &registry, addr),
        vec!["--restore".into(), file.display().to_string()],
    )?;
    ensure!(b.ok("GET", "/info", None)?["Swarm"]["LocalNodeState"] == "locked");
    let r = b.swarm(&["init", "--force-new-cluster"])?;
    ensure!(!r.ok && r.stderr.contains(LOCKED), "{r:?}");
    let r = b.swarm_stdin(&["unlock"], "SWMKEY-1-wrong\n")?;
    ensure!(!r.ok, "a wrong key unlocked: {r:?}");
    let r = b.swarm_stdin(&["unlock"], &format!("{key}\n"))?;
    ensure!(r.ok, "unlock: {r:?}");
    b.swarm_ok(&["init", "--force-new-cluster"])?;
    ensure!(objects(&b, "services")? == services, "services");
    ensure!(objects(&b, "secrets")? == secrets, "secrets");
    ensure!(
        b.swarm_ok(&["unlock-key", "-q"])?.trim() == key,
        "unlock key"
    );
    b.wait_running("web", 1)?;
    Ok(())
}

/// A backup of a follower of three managers: restored alone it still names the other two
/// (no quorum) until `swarm init --force-new-cluster` makes it the only manager.
#[test]
fn a_followers_backup_of_three_managers_restores_as_the_only_manager() -> Result<()> {
    rootfs_tests::require_root();
    let tmp = tempfile::Builder::new()
        .prefix("swarm-backup-3m-")
        .tempdir()?;
    let registry = Registry::start()?;
    push_busybox(&registry, tmp.path())?;
    let m: Vec<Swarmd> = ["m0", "m1", "m2"]
        .iter()
        .map(|n| {
            let mut c = config(&tmp.path().join(n), n, &registry, None);
            c.hostname = n.to_string();
            Swarmd::start(c)
        })
        .collect::<Result<_>>()?;
    m[0].swarm_ok(&["init"])?;
    let token = m[0].swarm_ok(&["join-token", "-q", "manager"])?;
    let leader = m[0].config.addr.clone().context("addr")?;
    for s in &m[1..] {
        s.swarm_ok(&["join", "--token", token.trim(), &leader])?;
    }
    let img = m[0].image("1");
    m[0].swarm_ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--replicas",
        "3",
        "--detach",
        &img,
        "sleep",
        "1d",
    ])?;
    wait_for("3 tasks running", Duration::from_secs(90), || {
        let n = m[0]
            .tasks("web")?
            .iter()
            .filter(|t| t["Status"]["State"] == "running")
            .count();
        Ok((n == 3).then_some(()))
    })?;
    // A follower's store has the service once it applied it.
    let file = tmp.path().join("m1.tar");
    wait_for("m1 sees web", Duration::from_secs(30), || {
        Ok((objects(&m[1], "services")?.len() == 1).then_some(()))
    })?;
    m[1].swarm_ok(&["backup", file.to_str().context("path")?])?;
    let services = objects(&m[1], "services")?;
    let node_id = m[1].ok("GET", "/info", None)?["Swarm"]["NodeID"].clone();
    let mut restored = m[1].config.clone();
    drop(m);

    restored.dir = tmp.path().join("restored");
    restored.cgroup = format!("swarm-backup-r-{}", std::process::id());
    let r = Swarmd::start_with(
        restored,
        vec!["--restore".into(), file.display().to_string()],
    )?;
    let w = r.swarm(&["service", "scale", "--detach", "web=2"])?;
    ensure!(
        !w.ok && w.stderr.contains("The swarm does not have a leader"),
        "a write without quorum: {w:?}"
    );
    r.swarm_ok(&["init", "--force-new-cluster"])?;
    let managers = wait_for("one manager, the leader", Duration::from_secs(30), || {
        let nodes = r.ok("GET", "/nodes", None)?;
        let leaders: Vec<Value> = nodes
            .as_array()
            .context("nodes")?
            .iter()
            .filter(|n| n["ManagerStatus"]["Leader"] == true)
            .cloned()
            .collect();
        Ok((leaders.len() == 1).then_some(leaders))
    })
    .with_context(|| r.log_tail())?;
    ensure!(
        managers[0]["ID"] == node_id,
        "the leader is not the restored node"
    );
    ensure!(objects(&r, "services")? == services, "services");
    // A write commits: the cluster of one has its quorum.
    r.swarm_ok(&["service", "scale", "--detach", "web=1"])?;
    Ok(())
}
