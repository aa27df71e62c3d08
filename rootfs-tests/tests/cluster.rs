//! Issue 4 acceptance on netns hosts (`rootfs_tests::cluster`): three managers and two
//! workers join over mutual TLS, tasks spread, the leader's swarmd is killed and a write
//! commits through a follower, a killed worker's tasks move and its stale containers stop
//! when it returns, wrong tokens and a foreign CA are refused, and the managers' data dirs
//! hold no join token or CA key in plain text.
//!
//! Hosts 0-2 are managers (0 inits), 3-4 workers. Heartbeat period: Swarm's default 5 s,
//! so a node is Down about 15 s after its swarmd dies.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use rootfs_tests::cluster::Cluster;
use rootfs_tests::swarmd::{swarm_at, wait_for};
use serde_json::{json, Value};

const MANAGERS: usize = 3;
const HOSTS: usize = 5;

fn join(cluster: &Cluster, i: usize, token: &str, via: usize) -> Result<(u16, Value)> {
    let h = cluster.host(i);
    h.call(
        "POST",
        "/swarm/join",
        Some(&json!({
            "ListenAddr": h.addr(),
            "AdvertiseAddr": h.addr(),
            "RemoteAddrs": [cluster.host(via).addr()],
            "JoinToken": token,
        })),
    )
}

/// `node ls` on host `i`: hostname -> (status, manager status).
fn nodes(cluster: &Cluster, i: usize) -> Result<BTreeMap<String, (String, String)>> {
    let out = cluster.host(i).swarm_ok(&[
        "node",
        "ls",
        "--format",
        "{{.Hostname}} {{.Status}} {{.ManagerStatus}}",
    ])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?.to_string();
            let status = f.next()?.to_string();
            let ms = f.next().unwrap_or("").to_string();
            Some((name, (status, ms)))
        })
        .collect())
}

fn wait_nodes(
    cluster: &Cluster,
    i: usize,
    what: &str,
    ok: impl Fn(&BTreeMap<String, (String, String)>) -> bool,
) -> Result<BTreeMap<String, (String, String)>> {
    wait_for(what, Duration::from_secs(60), || {
        let n = nodes(cluster, i)?;
        Ok(ok(&n).then_some(n))
    })
}

/// Running tasks of `service` per node hostname, as host `i` sees them.
fn spread(cluster: &Cluster, i: usize, service: &str) -> Result<BTreeMap<String, usize>> {
    let h = cluster.host(i);
    let names: BTreeMap<String, String> = h
        .ok("GET", "/nodes", None)?
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|n| {
            (
                n["ID"].as_str().unwrap_or("").to_string(),
                n["Description"]["Hostname"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    let mut out = BTreeMap::new();
    for t in h.tasks(service)? {
        if t["DesiredState"] == "running" && t["Status"]["State"] == "running" {
            let node = t["NodeID"].as_str().unwrap_or("");
            *out.entry(names.get(node).cloned().unwrap_or_default())
                .or_insert(0) += 1;
        }
    }
    Ok(out)
}

fn leader_of(n: &BTreeMap<String, (String, String)>) -> Option<usize> {
    n.iter()
        .find(|(_, (_, ms))| ms == "Leader")
        .and_then(|(name, _)| name.strip_prefix('h')?.parse().ok())
}

/// Every file under `dir`, read whole (the data dirs are small apart from layers).
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                // Image layers and container rootfs hold no cluster state.
                if !p.ends_with("image") && !p.ends_with("containers") {
                    stack.push(p);
                }
            } else if ft.is_file() {
                if let Ok(b) = std::fs::read(&p) {
                    if b.windows(needle.len()).any(|w| w == needle) {
                        hits.push(p.display().to_string());
                    }
                }
            }
        }
    }
    hits
}

/// Writes sent while managers die and are cut off (item 8's log): each attempt adds its
/// own label to node `target` through the managers in turn; the numbers of the writes the
/// API acknowledged are kept, to be found on every manager at the end.
struct AckLog {
    stop: Arc<AtomicBool>,
    writer: std::thread::JoinHandle<(u32, Vec<u32>)>,
}

impl AckLog {
    fn start(sockets: Vec<PathBuf>, target: String) -> AckLog {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let writer = std::thread::spawn(move || {
            let (mut tried, mut acked) = (0u32, Vec::new());
            while !stopped.load(Ordering::Relaxed) {
                tried += 1;
                let socket = &sockets[tried as usize % sockets.len()];
                let label = format!("ack-{tried}={tried}");
                let ok = swarm_at(
                    socket,
                    &["node", "update", "--label-add", &label, &target],
                    None,
                    None,
                )
                .is_ok_and(|r| r.ok);
                if ok {
                    acked.push(tried);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (tried, acked)
        });
        AckLog { stop, writer }
    }

    /// Stops writing: (attempts, acknowledged ones).
    fn finish(self) -> (u32, Vec<u32>) {
        self.stop.store(true, Ordering::Relaxed);
        self.writer.join().expect("the writer thread")
    }
}

#[test]
fn three_managers_two_workers_failover_and_worker_loss() -> Result<()> {
    let mut cluster = Cluster::new(HOSTS)?;
    let m0 = cluster.host(0);
    let addr0 = m0.addr();
    m0.swarm_ok(&["init", "--advertise-addr", &addr0])?;
    let swarm = m0.ok("GET", "/swarm", None)?;
    ensure!(
        swarm.get("RootCAKey").is_none(),
        "GET /swarm must not show the CA key"
    );
    let worker_token = swarm["JoinTokens"]["Worker"]
        .as_str()
        .context("token")?
        .to_string();
    let manager_token = swarm["JoinTokens"]["Manager"]
        .as_str()
        .context("token")?
        .to_string();

    // 7. Refused: a wrong secret, and a token whose CA digest is not this swarm's.
    let mut wrong = worker_token.clone();
    let last = wrong.pop().context("token")?;
    wrong.push(if last == 'a' { 'b' } else { 'a' });
    let (code, v) = join(&cluster, 3, &wrong, 0)?;
    ensure!(
        code >= 400
            && v["message"]
                .as_str()
                .unwrap_or("")
                .contains("A valid join token is necessary to join this cluster"),
        "wrong token: {code} {v}"
    );
    let parts: Vec<&str> = worker_token.split('-').collect();
    let foreign = format!("SWMTKN-1-{}-{}", "1".repeat(parts[2].len()), parts[3]);
    let (code, v) = join(&cluster, 3, &foreign, 0)?;
    ensure!(
        code >= 400
            && v["message"]
                .as_str()
                .unwrap_or("")
                .contains("remote CA does not match fingerprint"),
        "foreign CA digest: {code} {v}"
    );
    ensure!(
        cluster.host(3).ok("GET", "/info", None)?["Swarm"]["LocalNodeState"] == "inactive",
        "a refused join leaves the node out of the swarm"
    );

    // 1. Joins: managers through different managers, workers through a follower.
    for i in 1..MANAGERS {
        let (code, v) = join(&cluster, i, &manager_token, i - 1)?;
        ensure!(code == 200, "manager h{i} join: {code} {v}");
    }
    // Workers with the CLI, token from `join-token -q` on a follower.
    let token = cluster.host(1).swarm_ok(&["join-token", "-q", "worker"])?;
    ensure!(token.trim() == worker_token, "join-token -q: {token}");
    for i in MANAGERS..HOSTS {
        let h = cluster.host(i);
        let out = h.swarm_ok(&[
            "join",
            "--token",
            token.trim(),
            "--advertise-addr",
            &h.addr(),
            &cluster.host(1).addr(),
        ])?;
        ensure!(
            out == "This node joined a swarm as a worker.\n",
            "h{i} join: {out}"
        );
    }
    for i in 0..MANAGERS {
        let n = wait_nodes(&cluster, i, "5 Ready nodes, 1 Leader, 2 Reachable", |n| {
            n.len() == HOSTS
                && n.values().all(|(s, _)| s == "Ready")
                && n.values().filter(|(_, m)| m == "Leader").count() == 1
                && n.values().filter(|(_, m)| m == "Reachable").count() == 2
        })?;
        ensure!(leader_of(&n) == Some(0), "h0 leads: {n:?}");
    }
    let out = cluster.host(3).swarm(&["node", "ls"])?;
    ensure!(
        !out.ok && out.stderr.contains("This node is not a swarm manager"),
        "a worker cannot list nodes: {out:?}"
    );

    // 2. Six replicas over five nodes, none with more than two.
    let image = cluster.image("1");
    cluster.host(1).swarm_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--replicas",
        "6",
        "--stop-signal",
        "SIGKILL",
        &image,
        "sleep",
        "1d",
    ])?;
    cluster.host(0).wait_running("web", 6)?;
    let s = spread(&cluster, 0, "web")?;
    ensure!(
        s.values().sum::<usize>() == 6 && s.values().all(|&n| n <= 2) && s.len() >= 3,
        "spread: {s:?}"
    );

    // 8 (the log): label writes through every manager in turn, from here through the
    // leader's death and a cut, on h2's node.
    let acks = AckLog::start(
        (0..MANAGERS)
            .map(|i| cluster.host(i).socket.clone())
            .collect(),
        "h2".to_string(),
    );

    // 3. kill -9 the leader: a write commits through a follower; h0 goes Down and its
    // tasks are replaced; restarted, it is Ready and Reachable again.
    let had_tasks_on_h0 = s.get("h0").copied().unwrap_or(0);
    cluster.kill9(0)?;
    let killed = Instant::now();
    let scaled = wait_for("scale through a follower", Duration::from_secs(30), || {
        let r = cluster
            .host(1)
            .swarm(&["service", "scale", "-d", "web=7"])?;
        Ok(r.ok.then_some(()))
    });
    scaled?;
    let failover = killed.elapsed();
    eprintln!("leader kill -9 -> write committed through a follower: {failover:?}");
    let n = wait_nodes(&cluster, 1, "h0 Down, a new leader", |n| {
        n.get("h0").is_some_and(|(s, _)| s == "Down") && leader_of(n).is_some_and(|l| l != 0)
    })?;
    let new_leader = leader_of(&n).context("leader")?;
    wait_for("7 running, none on h0", Duration::from_secs(60), || {
        let s = spread(&cluster, new_leader, "web")?;
        Ok((s.values().sum::<usize>() == 7 && !s.contains_key("h0")).then_some(()))
    })?;
    ensure!(had_tasks_on_h0 <= 2);
    cluster.restart(0)?;
    wait_nodes(&cluster, new_leader, "h0 back Ready and Reachable", |n| {
        n.get("h0")
            .is_some_and(|(s, m)| s == "Ready" && m == "Reachable")
    })?;
    wait_nodes(&cluster, 0, "h0 agrees", |n| {
        n.len() == HOSTS && leader_of(n) == Some(new_leader)
    })?;

    // 5. kill -9 a worker: Down after the heartbeat grace, its tasks Running elsewhere;
    // restarted, its stale containers stop.
    let s = spread(&cluster, new_leader, "web")?;
    let worker = if s.contains_key("h3") { 3 } else { 4 };
    let stale: Vec<i64> = cluster
        .host(new_leader)
        .tasks("web")?
        .iter()
        .filter(|t| t["Status"]["State"] == "running")
        .filter(|t| {
            cluster
                .host(worker)
                .ok("GET", "/info", None)
                .ok()
                .map(|i| i["Swarm"]["NodeID"].clone())
                == Some(t["NodeID"].clone())
        })
        .filter_map(|t| t["Status"]["ContainerStatus"]["PID"].as_i64())
        .collect();
    cluster.kill9(worker)?;
    let name = format!("h{worker}");
    wait_nodes(&cluster, new_leader, "the killed worker Down", |n| {
        n.get(&name).is_some_and(|(s, _)| s == "Down")
    })?;
    wait_for(
        "7 running, none on the dead worker",
        Duration::from_secs(60),
        || {
            let s = spread(&cluster, new_leader, "web")?;
            Ok((s.values().sum::<usize>() == 7 && !s.contains_key(&name)).then_some(()))
        },
    )?;
    ensure!(
        stale.iter().all(|&p| rootfs_tests::swarmd::alive(p)),
        "containers outlive their swarmd"
    );
    cluster.restart(worker)?;
    wait_nodes(&cluster, new_leader, "the worker Ready again", |n| {
        n.get(&name).is_some_and(|(s, _)| s == "Ready")
    })?;
    wait_for(
        "its stale containers stopped",
        Duration::from_secs(30),
        || {
            Ok(stale
                .iter()
                .all(|&p| !rootfs_tests::swarmd::alive(p))
                .then_some(()))
        },
    )?;

    let worker_identity =
        swarm_identity::NodeIdentity::load(&cluster.host(3).data.join("certificates"))?;

    // 4. Cut a follower manager off: it cannot commit and says so in Docker's words; the
    // majority goes on; healed, it catches up.
    let follower = (0..MANAGERS)
        .find(|&i| i != new_leader)
        .context("a follower")?;
    cluster.cut(follower)?;
    let r = cluster
        .host(follower)
        .swarm(&["service", "scale", "-d", "web=5"])?;
    ensure!(
        !r.ok && r.stderr.contains("The swarm does not have a leader"),
        "a cut-off manager's write: {r:?}"
    );
    cluster
        .host(new_leader)
        .swarm_ok(&["service", "scale", "-d", "web=8"])?;
    cluster.heal(follower)?;
    wait_for(
        "the healed manager catches up",
        Duration::from_secs(60),
        || {
            let v = cluster.host(follower).ok("GET", "/services/web", None)?;
            Ok((v["Spec"]["Mode"]["Replicated"]["Replicas"] == 8).then_some(()))
        },
    )?;
    let n = wait_nodes(&cluster, follower, "one leader after the heal", |n| {
        leader_of(n).is_some()
    })?;
    let leader = leader_of(&n).context("leader")?;
    let (tried, acked) = acks.finish();
    eprintln!(
        "label writes during the faults: {} of {tried} acknowledged",
        acked.len()
    );
    ensure!(
        acked.len() >= 10,
        "too few writes acknowledged to check anything: {} of {tried}",
        acked.len()
    );

    // 6. drain moves tasks away; rm refuses a live node and a manager; rm --force works
    // and the removed node's session is refused.
    let lh = cluster.host(leader);
    let id_of = |i: usize| -> Result<String> {
        Ok(cluster.host(i).ok("GET", "/info", None)?["Swarm"]["NodeID"]
            .as_str()
            .context("node id")?
            .to_string())
    };
    let w4 = id_of(4)?;
    lh.swarm_ok(&["node", "update", "--availability", "drain", &w4])
        .with_context(|| {
            (0..MANAGERS)
                .map(|i| format!("== h{i}\n{}", cluster.host(i).log_tail()))
                .collect::<Vec<_>>()
                .join("\n")
        })?;
    wait_for("h4 drained", Duration::from_secs(60), || {
        let s = spread(&cluster, leader, "web")?;
        Ok((s.values().sum::<usize>() == 8 && !s.contains_key("h4")).then_some(()))
    })?;
    let (code, v) = lh.call("DELETE", &format!("/nodes/{w4}"), None)?;
    ensure!(
        code == 400
            && v["message"]
                .as_str()
                .unwrap_or("")
                .ends_with("is not down and can't be removed"),
        "rm of a live node: {code} {v}"
    );
    let (code, v) = lh.call("DELETE", &format!("/nodes/{}", id_of(follower)?), None)?;
    ensure!(
        code == 400
            && v["message"]
                .as_str()
                .unwrap_or("")
                .ends_with("It must be demoted to worker before removal"),
        "rm of a manager: {code} {v}"
    );
    lh.swarm_ok(&["node", "rm", "--force", &w4])?;
    wait_nodes(&cluster, leader, "4 nodes left", |n| {
        n.len() == HOSTS - 1 && !n.contains_key("h4")
    })?;
    // The removed node's agent is refused when it comes back, and says so in its log.
    wait_for("h4 refused", Duration::from_secs(30), || {
        Ok(cluster
            .host(4)
            .log_tail()
            .contains("the managers refuse this node")
            .then_some(()))
    })?;

    // Promote a worker: it serves the manager API and is Reachable; demote it again: a
    // worker, out of Raft, refused the manager API. No restart either way.
    let out = lh.swarm_ok(&["node", "promote", "h3"])?;
    ensure!(
        out == "Node h3 promoted to a manager in the swarm.\n",
        "promote: {out}"
    );
    wait_nodes(&cluster, leader, "h3 Reachable", |n| {
        n.get("h3")
            .is_some_and(|(s, m)| s == "Ready" && m == "Reachable")
    })
    .with_context(|| format!("h3's log:\n{}", cluster.host(3).log_tail()))?;
    wait_nodes(&cluster, 3, "h3 manages", |n| n.len() == HOSTS - 1)?;
    let out = lh.swarm_ok(&["node", "demote", "h3"])?;
    ensure!(out == "Manager h3 demoted in the swarm.\n", "demote: {out}");
    wait_nodes(&cluster, leader, "h3 a worker again", |n| {
        n.get("h3")
            .is_some_and(|(s, m)| s == "Ready" && m.is_empty())
    })?;
    wait_for(
        "h3 refuses the manager API",
        Duration::from_secs(30),
        || {
            let r = cluster.host(3).swarm(&["node", "ls"])?;
            Ok((!r.ok && r.stderr.contains("This node is not a swarm manager")).then_some(()))
        },
    )?;
    let (code, v) = lh.call("DELETE", &format!("/nodes/{}", id_of(leader)?), None)?;
    ensure!(code == 400, "rm of the leader: {code} {v}");

    // A worker leaves: inactive, its containers gone.
    let out = cluster.host(3).swarm_ok(&["leave"])?;
    ensure!(out == "Node left the swarm.\n", "leave: {out}");
    ensure!(
        cluster.host(3).ok("GET", "/info", None)?["Swarm"]["LocalNodeState"] == "inactive",
        "h3 left"
    );
    wait_for("h3's containers removed", Duration::from_secs(30), || {
        Ok(cluster.host(3).containers().is_empty().then_some(()))
    })?;

    // 7. A worker's certificate calling Raft on a manager: refused (and logged there).
    let refused = tokio::runtime::Runtime::new()?.block_on(async {
        let tls = swarm_identity::ClusterTls::new(&worker_identity)?;
        let addr = cluster.host(leader).addr();
        // From the root namespace, which reaches the hosts over the bridge.
        let ch = swarm_identity::connect(&addr, tls.client()).await?;
        let r = swarm_raft::network::grpc::RaftClient::new(ch)
            .vote(swarm_raft::network::grpc::proto::Payload {
                json: b"{}".to_vec(),
            })
            .await;
        anyhow::Ok(r)
    })?;
    ensure!(
        refused
            .as_ref()
            .is_err_and(|st| st.code() == tonic::Code::PermissionDenied),
        "a worker certificate calling Raft: {refused:?}"
    );

    // 8. Every write acknowledged above is there, on every manager: each label write the
    // API acknowledged during the kill and the cut (the log), the last scale (8 replicas,
    // through a cut and a leader change), the labels-free spec of h4 gone with its
    // removal, h3's demotion.
    for i in 0..MANAGERS {
        let h = cluster.host(i);
        wait_for(
            "the acknowledged writes on every manager",
            Duration::from_secs(30),
            || {
                let web = h.ok("GET", "/services/web", None)?;
                let nodes = h.ok("GET", "/nodes", None)?;
                let nodes = nodes.as_array().cloned().unwrap_or_default();
                let by_name = |n: &str| {
                    nodes
                        .iter()
                        .find(|x| x["Description"]["Hostname"] == n)
                        .cloned()
                };
                let h2_labels = by_name("h2")
                    .map(|n| n["Spec"]["Labels"].clone())
                    .unwrap_or_default();
                let lost: Vec<&u32> = acked
                    .iter()
                    .filter(|n| h2_labels[format!("ack-{n}")] != json!(n.to_string()))
                    .collect();
                if !lost.is_empty() {
                    eprintln!("manager h{i}: acknowledged label writes missing: {lost:?}");
                }
                Ok((lost.is_empty()
                    && web["Spec"]["Mode"]["Replicated"]["Replicas"] == 8
                    && web["Spec"]["TaskTemplate"]["ContainerSpec"]["StopSignal"] == "SIGKILL"
                    && by_name("h4").is_none()
                    && by_name("h3").is_some_and(|n| n["Spec"]["Role"] == "worker")
                    && nodes.len() == HOSTS - 1)
                    .then_some(()))
            },
        )
        .with_context(|| format!("manager h{i}"))?;
    }

    // No join token and no CA key in plain text in the managers' data dirs.
    for i in 0..MANAGERS {
        let data = &cluster.host(i).data;
        for needle in [
            worker_token.as_bytes(),
            manager_token.as_bytes(),
            b"RootCAKey",
        ] {
            let hits = files_containing(data, needle);
            ensure!(
                hits.is_empty(),
                "h{i}: {:?} in plain text in {hits:?}",
                String::from_utf8_lossy(needle)
            );
        }
    }
    Ok(())
}
