//! `swarm-bench mesh`: published ports through the routing mesh beside the direct path,
//! and how soon a published port answers after `service create` (issue 13, Benchmarks).
//!
//! Ours: real `swarmd` on two netns hosts (the multi-host harness of `rootfs-tests`), h1
//! joined as a worker. `sink` (busybox `sleep 1d`, one replica on h0) publishes
//! `18080:5001`; its task only lends its namespace (`<data>/net/tasks/<id>`) to this
//! process's TCP sink (a thread `setns`'d into it, the one of `swarm-bench net`).
//!
//! ```text
//!  mesh, same node:   root ns (bridge gateway) ─▶ h0:18080 ─▶ h0 sandbox ─▶ sink (h0)
//!  mesh, two nodes:   root ns (bridge gateway) ─▶ h1:18080 ─▶ h1 sandbox ═VXLAN═▶ sink
//!  direct, same node: task client0 (h0) ─▶ sink's ingress address:5001 (overlay bridge)
//!  direct, two nodes: task client1 (h1) ═VXLAN═▶ sink's ingress address:5001
//!  node (reference):  h0's host ns ─▶ sink's gateway-bridge address:5001 (one veth pair)
//! ```
//!
//! The direct path is the overlay the mesh ends on, without what the mesh adds (the
//! entry veth, the host's DNAT, the gateway bridge, the sandbox's DNAT): a client task on
//! the ingress network of the entry node (it is there by publishing a port of its own),
//! straight to the sink's ingress address. The root namespace reaches no overlay
//! address, so no client there has a direct path.
//!
//! - throughput: one TCP connection carrying `--bytes` until the sink counted every
//!   byte, the paths alternating within a round, median of `--rounds`;
//! - new connections/s: connect, 1 byte each way, close; sequential, `--seconds` per
//!   path in two alternating halves; failures counted;
//! - `service create` of busybox httpd with `-p 1809x:8080` until `GET /` answers through
//!   both hosts from the root namespace (polled every 5 ms), and until the API shows
//!   its task running (polled every 20 ms on another thread); median of `--creates`.
//!
//! The peer: Docker Swarm's mesh is IPVS; without it (these kernels) it cannot run here,
//! and the direct path is the comparison (the physical limit).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use rootfs_tests::cluster::{Cluster, Host};
use rootfs_tests::swarmd::wait_for;
use serde_json::{json, Value};

use crate::net::{
    connections, create, in_ns1, median, sh_web, short, task_addr, transfer, Sink, PORT,
};

/// The sink's published port.
const PUBLISHED: u16 = 18080;

pub struct Opts {
    pub bytes: u64,
    pub rounds: usize,
    pub seconds: f64,
    pub creates: usize,
    /// Docker's mesh behaviour (the cluster label `swarm.mesh.snat=true`): every
    /// connection SNATed, no return paths in the tasks.
    pub snat: bool,
}

/// One way to the sink: the namespace the client runs in and where it connects.
struct Route {
    name: &'static str,
    ns: PathBuf,
    to: SocketAddr,
}

/// Indexes into the routes (and the figures).
const MESH_SAME: usize = 0;
const DIRECT_SAME: usize = 1;
const MESH_CROSS: usize = 2;
const DIRECT_CROSS: usize = 3;
const NODE: usize = 4;
/// The mesh through h0 from a client on another machine (h1's host namespace), so the
/// client does not sit in the root namespace (where Docker's br_netfilter sends the
/// harness bridge through iptables).
const MESH_REMOTE: usize = 5;

#[derive(Default)]
struct Figs {
    /// MB/s, median, per route.
    tput: [Option<f64>; 6],
    /// connections/s and failed ones, per route.
    conns: [(Option<f64>, u64); 6],
    /// Per create: (until running in the API, until answering on both hosts).
    create: Vec<(Option<Duration>, Duration)>,
    routes: Vec<String>,
    notes: Vec<String>,
}

pub fn run(o: Opts) -> Result<()> {
    ensure!(
        nix::unistd::geteuid().is_root(),
        "the mesh benchmark needs root"
    );
    println!(
        "routing mesh vs direct; {} MiB per transfer, median of {}; {} s per rate figure; \
         {} creates\n",
        o.bytes >> 20,
        o.rounds,
        o.seconds,
        o.creates
    );
    let mut f = Figs::default();
    if let Err(e) = bench(&o, &mut f) {
        f.notes.push(format!("swarm: {}", short(&e)));
    }
    summary(&o, &f);
    Ok(())
}

/// Whether this kernel has IPVS (what Docker Swarm's mesh needs), and how we know.
fn ipvs() -> (bool, String) {
    if Path::new("/proc/net/ip_vs").exists() {
        return (true, "/proc/net/ip_vs exists".into());
    }
    match Command::new("modprobe").arg("ip_vs").output() {
        Ok(out) if out.status.success() && Path::new("/proc/net/ip_vs").exists() => {
            (true, "modprobe ip_vs loaded it".into())
        }
        Ok(out) => (
            false,
            format!(
                "no /proc/net/ip_vs; modprobe ip_vs: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ),
        Err(e) => (
            false,
            format!("no /proc/net/ip_vs; modprobe: {e}; no /lib/modules either"),
        ),
    }
}

fn ingress_spec(name: &str, image: &str, cmd: &[&str], published: u16, target: u16) -> Value {
    json!({
        "Name": name,
        "TaskTemplate": {
            "ContainerSpec": {"Image": image, "Command": cmd, "StopSignal": "SIGKILL"},
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {"Ports": [{
            "Protocol": "tcp", "PublishedPort": published, "TargetPort": target,
            "PublishMode": "ingress",
        }]},
    })
}

fn pinned(mut spec: Value, node: &str) -> Value {
    spec["TaskTemplate"]["Placement"] = json!({"Constraints": [format!("node.hostname=={node}")]});
    spec
}

/// The running task of a one-replica service: (its namespace on host `on`, its address
/// on the ingress network).
fn task_on(m: &Host, on: &Host, service: &str, ingress: &str) -> Result<(PathBuf, Ipv4Addr)> {
    let id = m.wait_running(service, 1)?.remove(0).id;
    let t = m.ok("GET", &format!("/tasks/{id}"), None)?;
    let addr = task_addr(&t, ingress).with_context(|| format!("ingress address: {t}"))?;
    Ok((on.data.join("net/tasks").join(&id), addr))
}

/// The IPv4 address of `ifname` inside the namespace at `ns`.
fn ns_addr(ns: &Path, ifname: &str) -> Result<Ipv4Addr> {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["ip", "-4", "-o", "addr", "show", "dev", ifname])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let cidr = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .with_context(|| format!("no address on {ifname}: {text}"))?;
    Ok(cidr.split('/').next().unwrap_or(cidr).parse()?)
}

/// One short connection answered by the sink at `to`, from the namespace at `ns`.
fn answers(ns: &Path, to: SocketAddr) -> Result<Option<()>> {
    in_ns1(ns, || {
        let one = || -> Result<()> {
            let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(1))?;
            c.set_read_timeout(Some(Duration::from_secs(1)))?;
            c.write_all(b"C")?;
            let mut got = Vec::with_capacity(2);
            c.read_to_end(&mut got)?;
            ensure!(got == b"y", "short answer");
            Ok(())
        };
        Ok(one().ok())
    })
}

fn bench(o: &Opts, f: &mut Figs) -> Result<()> {
    let cluster = Cluster::new(2)?;
    let (h0, h1) = (cluster.host(0), cluster.host(1));
    h0.swarm_ok(&["swarm", "init", "--advertise-addr", &h0.ip.to_string()])?;
    cluster.join_workers()?;
    if o.snat {
        let sw = h0.ok("GET", "/swarm", None)?;
        let version = sw["Version"]["Index"].as_u64().context("swarm version")?;
        let mut spec = sw["Spec"].clone();
        spec["Labels"]["swarm.mesh.snat"] = "true".into();
        h0.ok(
            "POST",
            &format!("/swarm/update?version={version}"),
            Some(&spec),
        )?;
    }
    let img = cluster.image("1");
    let sleep = ["sleep", "1d"];
    create(
        h0,
        &pinned(ingress_spec("sink", &img, &sleep, PUBLISHED, PORT), "h0"),
    )?;
    // The clients of the direct path are on the ingress network by publishing a port
    // nothing listens on.
    for (i, node) in ["h0", "h1"].iter().enumerate() {
        let s = ingress_spec(&format!("client{i}"), &img, &sleep, 18090 + i as u16, 9);
        create(h0, &pinned(s, node))?;
    }
    let ingress = h0.ok("GET", "/networks/ingress", None)?["Id"]
        .as_str()
        .context("ingress network id")?
        .to_string();
    let (sns, saddr) = task_on(h0, h0, "sink", &ingress)?;
    let (c0, _) = task_on(h0, h0, "client0", &ingress)?;
    let (c1, _) = task_on(h0, h1, "client1", &ingress)?;
    // The sink's gateway-bridge interface comes after its one overlay interface.
    let sgw = ns_addr(&sns, "eth1")?;
    let _sink = Sink::start(&sns)?;
    let root = PathBuf::from("/proc/self/ns/net");
    let routes = [
        Route {
            name: "mesh via h0",
            ns: root.clone(),
            to: (h0.ip, PUBLISHED).into(),
        },
        Route {
            name: "direct client0 (h0)",
            ns: c0,
            to: (saddr, PORT).into(),
        },
        Route {
            name: "mesh via h1",
            ns: root,
            to: (h1.ip, PUBLISHED).into(),
        },
        Route {
            name: "direct client1 (h1)",
            ns: c1,
            to: (saddr, PORT).into(),
        },
        Route {
            name: "h0 host ns to gw-bridge addr",
            ns: PathBuf::from(format!("/run/netns/{}", h0.netns)),
            to: (sgw, PORT).into(),
        },
        Route {
            name: "mesh via h0 from h1's host ns",
            ns: PathBuf::from(format!("/run/netns/{}", h1.netns)),
            to: (h0.ip, PUBLISHED).into(),
        },
    ];
    for r in &routes {
        wait_for(
            &format!("the sink through {}", r.name),
            Duration::from_secs(30),
            || answers(&r.ns, r.to),
        )?;
        f.routes
            .push(format!("{:<30} {} from {:?}", r.name, r.to, r.ns));
    }

    // Throughput: one warm-up transfer each, then the routes alternating per round.
    let mut runs = vec![Vec::new(); routes.len()];
    for r in &routes {
        transfer(&r.ns, r.to, o.bytes.min(64 << 20))?;
    }
    for _ in 0..o.rounds {
        for (i, r) in routes.iter().enumerate() {
            let t = transfer(&r.ns, r.to, o.bytes)?;
            runs[i].push(o.bytes as f64 / 1e6 / t.as_secs_f64());
        }
    }
    for (i, v) in runs.into_iter().enumerate() {
        f.tput[i] = median(v);
    }

    // Connections/s: two alternating halves per route.
    let mut tot = vec![(0u64, 0u64, 0f64); routes.len()];
    for r in &routes {
        connections(&r.ns, r.to, 0.2)?;
    }
    for _ in 0..2 {
        for (i, r) in routes.iter().enumerate() {
            let (n, failed, t) = connections(&r.ns, r.to, o.seconds / 2.0)?;
            tot[i].0 += n;
            tot[i].1 += failed;
            tot[i].2 += t.as_secs_f64();
        }
    }
    for (i, (n, failed, t)) in tot.into_iter().enumerate() {
        f.conns[i] = ((t > 0.0).then(|| n as f64 / t), failed);
    }
    drop(_sink);

    // Create until answering through both hosts.
    for i in 0..o.creates {
        match create_until_answers(h0, &cluster, &img, i) {
            Ok(c) => f.create.push(c),
            Err(e) => f.notes.push(format!("create {i}: {}", short(&e))),
        }
    }
    Ok(())
}

/// `GET /` answered 200 at `to`, from this thread's namespace (the root one).
fn http_ok(to: SocketAddr) -> bool {
    let get = || -> Result<bool> {
        let mut c = TcpStream::connect_timeout(&to, Duration::from_millis(300))?;
        c.set_read_timeout(Some(Duration::from_secs(1)))?;
        c.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
        let mut r = Vec::new();
        c.read_to_end(&mut r)?;
        Ok(r.starts_with(b"HTTP/1.") && r.windows(5).any(|w| w == b" 200 "))
    };
    get().unwrap_or(false)
}

/// One `service create` (Engine API) of httpd publishing `18081+i:8080`: the time until
/// the API shows its task running, and until `GET /` answers through both hosts.
fn create_until_answers(
    m: &Host,
    cluster: &Cluster,
    img: &str,
    i: usize,
) -> Result<(Option<Duration>, Duration)> {
    let name = format!("fresh{i}");
    let port = 18081 + i as u16;
    let spec = ingress_spec(&name, img, &sh_web(), port, 8080);
    let targets: Vec<SocketAddr> = cluster
        .hosts()
        .iter()
        .map(|h| (h.ip, port).into())
        .collect();
    let done = AtomicBool::new(false);
    let start = Instant::now();
    let (running, answered) = std::thread::scope(|s| -> Result<_> {
        let watcher = s.spawn(|| {
            while !done.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(60) {
                if m.running(&name).map(|r| !r.is_empty()).unwrap_or(false) {
                    return Some(start.elapsed());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            None
        });
        let answered = (|| -> Result<Duration> {
            create(m, &spec)?;
            let mut up = vec![false; targets.len()];
            loop {
                ensure!(
                    start.elapsed() < Duration::from_secs(60),
                    "{name} did not answer through every host within 60 s"
                );
                for (k, t) in targets.iter().enumerate() {
                    up[k] = up[k] || http_ok(*t);
                }
                if up.iter().all(|u| *u) {
                    return Ok(start.elapsed());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })();
        let answered = answered.inspect_err(|_| done.store(true, Ordering::Relaxed));
        let running = watcher.join().unwrap_or(None);
        Ok((running, answered?))
    })?;
    println!(
        "  create {i}: running (API) {}, answering through both hosts {}",
        running.map_or("n/a".into(), crate::util::ms),
        crate::util::ms(answered)
    );
    // Gone again before the next one, so it does not share the machine with it.
    m.ok("DELETE", &format!("/services/{name}"), None)?;
    wait_for(&format!("{name} removed"), Duration::from_secs(30), || {
        Ok(m.tasks(&name)?.is_empty().then_some(()))
    })?;
    Ok((running, answered))
}

// --------------------------------------------------------------------------------------
// The summary.

fn fig(v: Option<f64>, unit: &str) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.0} {unit}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn of_direct(r: Option<f64>) -> String {
    r.map_or("n/a".into(), |r| format!("{r:.2}x of direct"))
}

fn min(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn summary(o: &Opts, f: &Figs) {
    let (ipvs, why) = ipvs();
    println!("\n== summary (machine shared with other builds; see the load line) ==");
    if o.snat {
        println!("mode: swarm.mesh.snat=true (Docker's SNAT, no client address)");
    }
    println!(
        "load average: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!("routes:");
    for r in &f.routes {
        println!("  {r}");
    }
    if ipvs {
        println!("docker: IPVS is there ({why}), but this benchmark does not run Docker's mesh");
    } else {
        println!(
            "docker: its routing mesh cannot run here: it needs IPVS ({why}); the comparison \
             is the direct path (the physical limit)"
        );
    }

    let t = &f.tput;
    let rt = [
        ratio(t[MESH_SAME], t[DIRECT_SAME]),
        ratio(t[MESH_CROSS], t[DIRECT_CROSS]),
    ];
    println!(
        "\nthroughput, {} MiB on one TCP connection, median of {}:",
        o.bytes >> 20,
        o.rounds
    );
    println!(
        "  same node   mesh {:>11}   direct {:>11}   mesh is {} (goal >= 0.9)",
        fig(t[MESH_SAME], "MB/s"),
        fig(t[DIRECT_SAME], "MB/s"),
        of_direct(rt[0])
    );
    println!(
        "  two nodes   mesh {:>11}   direct {:>11}   mesh is {} (goal >= 0.9, VXLAN)",
        fig(t[MESH_CROSS], "MB/s"),
        fig(t[DIRECT_CROSS], "MB/s"),
        of_direct(rt[1])
    );
    println!(
        "  reference: h0's host namespace to the task's gateway-bridge address {}",
        fig(t[NODE], "MB/s")
    );
    println!(
        "  mesh via h0 from h1's host namespace {}   is {}",
        fig(t[MESH_REMOTE], "MB/s"),
        of_direct(ratio(t[MESH_REMOTE], t[DIRECT_SAME]))
    );

    let c = &f.conns;
    let rc = [
        ratio(c[MESH_SAME].0, c[DIRECT_SAME].0),
        ratio(c[MESH_CROSS].0, c[DIRECT_CROSS].0),
    ];
    println!(
        "\nnew connections/s (connect, 1 byte each way, close; sequential, {} s; failures counted):",
        o.seconds
    );
    for (label, m, d, r) in [
        ("same node", MESH_SAME, DIRECT_SAME, rc[0]),
        ("two nodes", MESH_CROSS, DIRECT_CROSS, rc[1]),
    ] {
        println!(
            "  {label}   mesh {:>8} ({} failed)   direct {:>8} ({} failed)   mesh is {} (goal >= 0.8)",
            fig(c[m].0, "/s"),
            c[m].1,
            fig(c[d].0, "/s"),
            c[d].1,
            of_direct(r)
        );
    }
    println!(
        "  reference: h0's host namespace to the task's gateway-bridge address {} ({} failed)",
        fig(c[NODE].0, "/s"),
        c[NODE].1
    );
    println!(
        "  mesh via h0 from h1's host namespace {} ({} failed)   is {}",
        fig(c[MESH_REMOTE].0, "/s"),
        c[MESH_REMOTE].1,
        of_direct(ratio(c[MESH_REMOTE].0, c[DIRECT_SAME].0))
    );

    println!(
        "\nservice create (busybox httpd, -p 18081+i:8080) until GET / answers through both hosts:"
    );
    let med = |v: Vec<Duration>| {
        let mut v = v;
        v.sort();
        v.get(v.len() / 2).copied()
    };
    let answer = med(f.create.iter().map(|c| c.1).collect());
    let running = med(f.create.iter().filter_map(|c| c.0).collect());
    let after = med(f
        .create
        .iter()
        .filter_map(|c| c.0.map(|r| c.1.saturating_sub(r)))
        .collect());
    let ms = |d: Option<Duration>| d.map_or("n/a".into(), crate::util::ms);
    println!(
        "  median of {}: task running (API) {}, answering {}, answering after running {} \
         (goal < 1 s: {})",
        f.create.len(),
        ms(running),
        ms(answer),
        ms(after),
        after.map_or("n/a", |a| met(a < Duration::from_secs(1)))
    );

    let (mt, mc) = (min(rt[0], rt[1]), min(rc[0], rc[1]));
    println!(
        "\ngoals: throughput >= 0.9x of direct: {}; connections >= 0.8x of direct: {}; \
         answering within 1 s of running: {}",
        mt.map_or("n/a", |r| met(r >= 0.9)),
        mc.map_or("n/a", |r| met(r >= 0.8)),
        after.map_or("n/a", |a| met(a < Duration::from_secs(1)))
    );
    if !f.notes.is_empty() {
        println!("\nnotes:");
        for n in &f.notes {
            println!("  - {n}");
        }
    }
    let num = |v: Option<f64>, p: usize| v.map_or("na".into(), |v| format!("{v:.p$}"));
    println!(
        "mesh tput_same={} tput_cross={} conn_same={} conn_cross={} ratio_tput_min={} \
         ratio_conn_min={} answer_ms={}",
        num(t[MESH_SAME], 0),
        num(t[MESH_CROSS], 0),
        num(c[MESH_SAME].0, 0),
        num(c[MESH_CROSS].0, 0),
        num(mt, 2),
        num(mc, 2),
        num(answer.map(|d| d.as_secs_f64() * 1e3), 1)
    );
}
