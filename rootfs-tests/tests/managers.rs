//! Managers beyond the acceptance run of `cluster.rs` (netns hosts, real swarmd): the
//! advertise address found as dockerd finds it, and the leader demoted through itself.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use rootfs_tests::cluster::Cluster;
use rootfs_tests::swarmd::{swarm_at, wait_for, Run, Swarmd};
use serde_json::Value;

/// A cluster port other than the harness' flags (`IP:2377`), so that `--listen-addr
/// 0.0.0.0:P` is what the request gives and no advertise address is set anywhere.
const PORT: u16 = 2378;

/// `node ls` on host `i`: hostname -> manager status.
fn manager_status(c: &Cluster, i: usize) -> Result<BTreeMap<String, String>> {
    let out =
        c.host(i)
            .swarm_ok(&["node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}"])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next().unwrap_or("").to_string()))
        })
        .collect())
}

/// The manager addresses the swarm has, by hostname, as host `i` sees them.
fn manager_addrs(c: &Cluster, i: usize) -> Result<BTreeMap<String, String>> {
    let nodes = c.host(i).ok("GET", "/nodes", None)?;
    Ok(nodes
        .as_array()
        .context("nodes")?
        .iter()
        .filter_map(|n| {
            Some((
                n["Description"]["Hostname"].as_str()?.to_string(),
                n["ManagerStatus"]["Addr"].as_str()?.to_string(),
            ))
        })
        .collect())
}

/// A global service of `sleep 1d` tasks named `name`, killed at once on removal.
fn create_global(h: &Swarmd, name: &str, image: &str) -> Result<()> {
    h.swarm_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        name,
        "--mode",
        "global",
        "--stop-signal",
        "SIGKILL",
        image,
        "sleep",
        "1d",
    ])?;
    Ok(())
}

fn ip_in(c: &Cluster, i: usize, args: &[&str]) -> Result<()> {
    let st = Command::new("ip")
        .args(["-n", &c.host(i).netns])
        .args(args)
        .status()?;
    ensure!(st.success(), "ip -n {} {args:?}", c.host(i).netns);
    Ok(())
}

#[test]
fn advertise_address_found_and_the_leader_demoted() -> Result<()> {
    let c = Cluster::new(3)?;
    let listen = format!("0.0.0.0:{PORT}");
    let addr = |i: usize| format!("{}:{PORT}", c.ip(i));

    // Two addresses on h0's only interface: init without --advertise-addr is refused
    // in Docker's words; with one, that one is advertised.
    ip_in(&c, 0, &["addr", "add", "10.255.254.1/32", "dev", "eth0"])?;
    let r = c.host(0).swarm(&["init", "--listen-addr", &listen])?;
    ensure!(
        !r.ok
            && r.stderr.trim_end().ends_with(&format!(
                "could not choose an IP address to advertise since this system has multiple addresses on interface eth0 ({} and 10.255.254.1)",
                c.ip(0)
            )),
        "init on an ambiguous host: {}{}",
        r.stdout,
        r.stderr
    );
    ip_in(&c, 0, &["addr", "del", "10.255.254.1/32", "dev", "eth0"])?;
    c.host(0).swarm_ok(&["init", "--listen-addr", &listen])?;
    let token = c.host(0).swarm_ok(&["join-token", "-q", "manager"])?;
    // h1 names its interface; h2 gives nothing and is found as h0 was.
    c.host(1).swarm_ok(&[
        "join",
        "--token",
        token.trim(),
        "--listen-addr",
        &listen,
        "--advertise-addr",
        "eth0",
        &addr(0),
    ])?;
    c.host(2).swarm_ok(&[
        "join",
        "--token",
        token.trim(),
        "--listen-addr",
        &listen,
        &addr(0),
    ])?;
    let want: BTreeMap<String, String> = (0..3).map(|i| (format!("h{i}"), addr(i))).collect();
    wait_for(
        "three managers at their addresses",
        Duration::from_secs(60),
        || {
            let ms = manager_status(&c, 0)?;
            let ok = manager_addrs(&c, 0)? == want
                && ms.get("h0").map(String::as_str) == Some("Leader")
                && ms.values().filter(|s| *s == "Reachable").count() == 2;
            Ok(ok.then_some(()))
        },
    )?;

    // The leader demotes itself: acknowledged at once; it leaves Raft and steps down,
    // another manager leads, and h0 ends up a worker with its manager half stopped.
    let out = c.host(0).swarm_ok(&["node", "demote", "h0"])?;
    ensure!(out == "Manager h0 demoted in the swarm.\n", "demote: {out}");
    let ms = wait_for(
        "h0 a worker, another leader",
        Duration::from_secs(60),
        || {
            let ms = manager_status(&c, 1)?;
            let ok = ms.get("h0").is_some_and(String::is_empty)
                && ms.values().filter(|s| *s == "Leader").count() == 1
                && ms.values().filter(|s| *s == "Reachable").count() == 1;
            Ok(ok.then_some(ms))
        },
    )
    .with_context(|| format!("h0's log:\n{}", c.host(0).log_tail()))?;
    ensure!(ms.len() == 3, "node ls: {ms:?}");
    wait_for(
        "h0 refuses the manager API",
        Duration::from_secs(30),
        || {
            let r = c.host(0).swarm(&["node", "ls"])?;
            Ok((!r.ok && r.stderr.contains("This node is not a swarm manager")).then_some(()))
        },
    )?;
    let log = std::fs::read_to_string(c.host(0).config.dir.join("swarmd.log"))?;
    ensure!(
        log.matches("manager stopped: its loop ends").count() == 3,
        "the demoted manager's loops did not end:\n{}",
        c.host(0).log_tail()
    );
    ensure!(
        !c.host(0).data.join("raft").exists(),
        "the demoted manager kept its Raft files"
    );

    // The two managers left still commit, and the demoted leader takes work.
    let leader = (1..3)
        .find(|&i| ms.get(&format!("h{i}")).map(String::as_str) == Some("Leader"))
        .context("a leader")?;
    create_global(c.host(3 - leader), "after", &c.image("1"))?;
    wait_for(
        "a global task on every node",
        Duration::from_secs(60),
        || {
            let running = c
                .host(leader)
                .tasks("after")?
                .iter()
                .filter(|t| t["Status"]["State"] == "running")
                .count();
            Ok((running == 3).then_some(()))
        },
    )?;
    // `node ps NODE` on a manager: the demoted leader's task, as `service ps` shows it.
    let out = c.host(leader).swarm_ok(&[
        "node",
        "ps",
        "--format",
        "{{.Name}}|{{.Node}}|{{.DesiredState}}|{{.CurrentState}}",
        "h0",
    ])?;
    let rows: Vec<&str> = out.lines().collect();
    ensure!(
        rows.len() == 1
            && rows[0].starts_with("after.")
            && rows[0].contains("|h0|Running|Running "),
        "node ps h0: {out}"
    );
    let r = c.host(leader).swarm(&["node", "ps", "nosuch"])?;
    ensure!(!r.ok && r.stdout.is_empty(), "node ps of no node: {r:?}");
    let info: Value = c.host(0).ok("GET", "/info", None)?;
    ensure!(
        info["Swarm"]["ControlAvailable"] == false && info["Swarm"]["LocalNodeState"] == "active",
        "h0's info: {}",
        info["Swarm"]
    );
    Ok(())
}

/// `swarm unlock` on host `i` with `key` on its standard input (not a terminal: no
/// prompt, as docker).
fn unlock(c: &Cluster, i: usize, key: &str) -> Result<Run> {
    c.host(i).swarm_stdin(&["unlock"], &format!("{key}\n"))
}

/// The unlock key in what `init --autolock`, `update --autolock` and `unlock-key` print.
fn key_in(out: &str) -> Result<String> {
    out.split_whitespace()
        .find(|w| w.starts_with("SWMKEY-1-"))
        .map(str::to_string)
        .with_context(|| format!("no unlock key in {out:?}"))
}

const LOCKED: &str = "Swarm is encrypted and needs to be unlocked before it can be used. Please use \"docker swarm unlock\" to unlock it.";

#[test]
fn autolock_seals_the_keys_and_a_restarted_manager_waits_for_its_key() -> Result<()> {
    let mut c = Cluster::new(1)?;
    let certs = c.host(0).data.join("certificates");
    // Sealed: one file holds the node key and the Raft data key; plain: one file each.
    let sealed = |on: bool| -> Result<()> {
        let files =
            |names: &[&str], there: bool| names.iter().all(|n| certs.join(n).exists() == there);
        ensure!(
            files(&["swarm-node.key.locked"], on) && files(&["swarm-node.key", "raft-dek"], !on),
            "keys sealed should be {on}: {:?}",
            std::fs::read_dir(&certs)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Vec<_>>()
        );
        if on {
            let k = std::fs::read(certs.join("swarm-node.key.locked"))?;
            ensure!(
                !String::from_utf8_lossy(&k).contains("PRIVATE KEY"),
                "the sealed node key reads as PEM"
            );
        }
        Ok(())
    };

    let out = c
        .host(0)
        .swarm_ok(&["init", "--autolock", "--advertise-addr", &c.host(0).addr()])?;
    ensure!(
        out.contains("To unlock a swarm manager after it restarts, run the `swarm unlock`\ncommand and provide the following key:\n\n    SWMKEY-1-"),
        "init --autolock: {out}"
    );
    let key = key_in(&out)?;
    ensure!(
        c.host(0).swarm_ok(&["unlock-key", "-q"])?.trim() == key,
        "unlock-key -q"
    );
    let inspect = c.host(0).ok("GET", "/swarm", None)?;
    ensure!(
        !inspect.to_string().contains(&key),
        "GET /swarm shows the unlock key"
    );
    sealed(true)?;
    c.host(0).swarm_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "kept",
        "--stop-signal",
        "SIGKILL",
        &c.image("1"),
        "sleep",
        "1d",
    ])?;
    c.host(0).wait_running("kept", 1)?;

    // Restarted, it is locked: the API says so in Docker's words until the right key.
    c.kill9(0)?;
    c.restart(0)?;
    let r = c.host(0).swarm(&["node", "ls"])?;
    ensure!(
        !r.ok && r.stderr.contains(LOCKED),
        "node ls while locked: {}",
        r.stderr
    );
    let info = c.host(0).ok("GET", "/info", None)?;
    ensure!(
        info["Swarm"]["LocalNodeState"] == "locked",
        "info: {}",
        info["Swarm"]
    );
    let r = unlock(&c, 0, "SWMKEY-1-nope")?;
    ensure!(
        !r.ok && r.stderr.contains("invalid key string"),
        "malformed: {}",
        r.stderr
    );
    let other = "SWMKEY-1-+MrE8NgAyKj5r3NcR4FiQMdgu+7W72urH0EZeSmP/0Y";
    let r = unlock(&c, 0, other)?;
    ensure!(
        !r.ok
            && r.stderr
                .contains("swarm could not be unlocked: invalid key provided"),
        "wrong key: {}",
        r.stderr
    );
    let r = unlock(&c, 0, &key)?;
    ensure!(r.ok, "unlock: {}{}", r.stdout, r.stderr);
    c.host(0).wait_running("kept", 1)?;
    let r = unlock(&c, 0, &key)?;
    ensure!(
        !r.ok && r.stderr.contains("swarm is not locked"),
        "unlock twice: {}",
        r.stderr
    );

    // A rotated key: the old one no longer opens the restarted manager, the new one does.
    let before = std::fs::read(certs.join("swarm-node.key.locked"))?;
    let out = c.host(0).swarm_ok(&["unlock-key", "--rotate"])?;
    ensure!(
        out.starts_with("Successfully rotated manager unlock key.\n\n"),
        "rotate: {out}"
    );
    let new_key = key_in(&out)?;
    ensure!(new_key != key, "rotation kept the key");
    wait_for(
        "the keys sealed under the new key",
        Duration::from_secs(10),
        || {
            let now = std::fs::read(certs.join("swarm-node.key.locked"))?;
            Ok((now != before).then_some(()))
        },
    )?;
    c.kill9(0)?;
    c.restart(0)?;
    let r = unlock(&c, 0, &key)?;
    ensure!(!r.ok, "the old key unlocked after rotation");
    let r = unlock(&c, 0, &new_key)?;
    ensure!(r.ok, "unlock with the new key: {}", r.stderr);

    // Autolock off: plain keys again, and a restart needs no key.
    let out = c.host(0).swarm_ok(&["update", "--autolock=false"])?;
    ensure!(out == "Swarm updated.\n", "update: {out}");
    wait_for("plain keys", Duration::from_secs(10), || {
        Ok(sealed(false).ok())
    })?;
    let r = c.host(0).swarm(&["unlock-key"])?;
    ensure!(
        !r.ok && r.stderr.contains("no unlock key is set"),
        "unlock-key: {}",
        r.stderr
    );
    c.kill9(0)?;
    c.restart(0)?;
    c.host(0).wait_running("kept", 1)?;
    Ok(())
}

/// The file each host trusts as the root, and its certificate chain.
fn host_certs(c: &Cluster, i: usize) -> Result<(String, String)> {
    let dir = c.host(i).data.join("certificates");
    Ok((
        std::fs::read_to_string(dir.join("swarm-root-ca.crt"))?,
        std::fs::read_to_string(dir.join("swarm-node.crt"))?,
    ))
}

#[test]
fn ca_rotation_renews_every_certificate_without_a_restart() -> Result<()> {
    let c = Cluster::new(4)?;
    let m = c.host(0);
    m.swarm_ok(&["init", "--advertise-addr", &m.addr()])?;
    let manager = m.swarm_ok(&["join-token", "-q", "manager"])?;
    let worker = m.swarm_ok(&["join-token", "-q", "worker"])?;
    for (i, token) in [(1, &manager), (2, &worker)] {
        c.host(i).swarm_ok(&[
            "join",
            "--token",
            token.trim(),
            "--advertise-addr",
            &c.host(i).addr(),
            &m.addr(),
        ])?;
    }
    let old_root = m.swarm_ok(&["ca"])?;
    ensure!(
        old_root.starts_with("-----BEGIN CERTIFICATE-----"),
        "ca: {old_root}"
    );
    let before: Vec<(String, String)> = (0..3).map(|i| host_certs(&c, i)).collect::<Result<_>>()?;
    create_global(m, "everywhere", &c.image("1"))?;
    wait_for("a task on each node", Duration::from_secs(60), || {
        Ok((m.running("everywhere")?.len() == 3).then_some(()))
    })?;

    // `swarm ca --rotate` waits until every node has a certificate from the new root, then
    // prints that root.
    let out = swarm_at(
        &c.host(1).socket,
        &["ca", "--rotate"],
        None,
        Some(Duration::from_secs(120)),
    )?;
    let new_root = out.stdout.clone();
    ensure!(
        out.ok,
        "ca --rotate: {new_root}{}\nh0's log:\n{}",
        out.stderr,
        m.log_tail()
    );
    ensure!(
        new_root.starts_with("-----BEGIN CERTIFICATE-----") && new_root != old_root,
        "the new root: {new_root}"
    );
    ensure!(
        m.swarm_ok(&["ca"])? == new_root,
        "swarm ca after the rotation"
    );

    // Every node (none restarted): a new certificate, the new root trusted.
    wait_for(
        "every node trusts the new root",
        Duration::from_secs(30),
        || {
            let all = (0..3)
                .all(|i| host_certs(&c, i).is_ok_and(|(root, _)| root.trim() == new_root.trim()));
            Ok(all.then_some(()))
        },
    )?;
    for (i, (_, old_cert)) in before.iter().enumerate() {
        let (_, cert) = host_certs(&c, i)?;
        ensure!(cert != *old_cert, "h{i} kept its certificate");
    }
    let inspect = m.ok("GET", "/swarm", None)?;
    ensure!(inspect["RootRotationInProgress"] == false, "{}", inspect);

    // The swarm still works over the new certificates: a write through a follower, the
    // global service on every node, all Ready; a restarted worker reconnects.
    c.host(1)
        .swarm_ok(&["service", "update", "-d", "--force", "everywhere"])?;
    wait_for(
        "the service redeployed on every node",
        Duration::from_secs(60),
        || {
            let tasks = m.tasks("everywhere")?;
            let running = tasks
                .iter()
                .filter(|t| t["Status"]["State"] == "running" && t["DesiredState"] == "running")
                .count();
            Ok((tasks.len() >= 6 && running == 3).then_some(()))
        },
    )?;

    // A join token from before the rotation names the old root: refused; the new one works.
    let join = |token: &str| {
        let addr = c.host(3).addr();
        c.host(3).swarm(&[
            "join",
            "--token",
            token.trim(),
            "--advertise-addr",
            &addr,
            &m.addr(),
        ])
    };
    let r = join(&worker)?;
    ensure!(
        !r.ok && r.stderr.contains("remote CA does not match fingerprint"),
        "join with the old token: {}",
        r.stderr
    );
    let r = join(&m.swarm_ok(&["join-token", "-q", "worker"])?)?;
    ensure!(r.ok, "join with the new token: {}", r.stderr);
    wait_for("four nodes Ready", Duration::from_secs(60), || {
        let out = m.swarm_ok(&["node", "ls", "--format", "{{.Status}}"])?;
        Ok((out.lines().filter(|l| *l == "Ready").count() == 4).then_some(()))
    })?;
    Ok(())
}
