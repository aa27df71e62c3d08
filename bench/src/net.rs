//! `swarm-bench net`: the overlay data path and the embedded DNS, beside the direct path
//! and Docker Swarm in the same run (issue 12, Benchmarks).
//!
//! Ours: real `swarmd` on netns hosts (the multi-host harness of `rootfs-tests`), two
//! hosts, h1 joined as a worker; one overlay network `benchnet`; services of busybox
//! `sleep 1d` whose tasks only lend their network namespaces (`<data>/net/tasks/<id>`):
//! the server is this process's own TCP sink on a thread that `setns`'d into the backend
//! task's namespace, the client a thread that `setns`'d into the client task's namespace.
//!
//! - throughput: one TCP connection sending `--bytes` (1 GiB), until the sink has counted
//!   every byte; client task to the backend's address (direct) and to its service VIP
//!   (nftables DNAT in the client's namespace), alternating, median of `--rounds`; one
//!   node (backend on h0) and across the two hosts (backend on h1, VXLAN);
//! - new connections per second: connect, send 1 byte, read the 1-byte answer and the
//!   sink's close, sequentially for `--seconds`, direct and VIP alternating;
//! - DNS: A queries for a service name to 127.0.0.11:53 from inside the client task,
//!   over UDP, 1 and 4 client threads (one query in flight each), `--seconds` in three
//!   rounds alternating with Docker's (both kept up meanwhile, so both see the same
//!   machine load): qps, p50, p99;
//! - `service create` (Engine API, curl) until the name resolves from another task and
//!   busybox httpd answers `GET /` at the address it gives: VIP and dnsrr.
//!
//! The peer: Docker Swarm on this machine (`docker swarm init --advertise-addr
//! 127.0.0.1:<free port>`, only if the engine is `inactive`), an `--attachable` overlay network,
//! services in `dnsrr` mode from a `docker import` of the same busybox rootfs (Docker's
//! VIPs need IPVS, which these kernels lack), the same sink and clients in the containers'
//! namespaces (`/proc/<pid>/ns/net`): DNS against Docker's embedded resolver, the direct
//! overlay path, and create until answering with dnsrr. Docker is left as found, also on
//! failure (services, swarm, `docker_gwbridge`, the image).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rootfs_tests::cluster::{Cluster, Host};
use rootfs_tests::swarmd::wait_for;
use serde_json::{json, Value};

/// The sink's port in the backend's namespace.
pub(crate) const PORT: u16 = 5001;
const WEB_CMD: &str =
    "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www";
const NET: &str = "benchnet";

pub struct Opts {
    pub bytes: u64,
    pub rounds: usize,
    pub seconds: f64,
}

/// Figures of one contender (None: not measured; the note says why).
#[derive(Default)]
struct Figs {
    /// MB/s, median: one node direct / VIP, two nodes direct / VIP.
    tput: [Option<f64>; 4],
    /// connections/s and failed connections: direct, VIP.
    conns: [(Option<f64>, u64); 2],
    /// DNS: (threads, qps, p50, p99, lost) per run.
    dns: Vec<(usize, f64, Duration, Duration, u64)>,
    /// create until answering: VIP, dnsrr.
    create: [Option<Duration>; 2],
    notes: Vec<String>,
}

pub fn run(o: Opts) -> Result<()> {
    ensure!(
        nix::unistd::geteuid().is_root(),
        "the net benchmark needs root"
    );
    println!(
        "overlay data path and embedded DNS; {} MiB per transfer, median of {}; {} s per \
         rate figure\n",
        o.bytes >> 20,
        o.rounds,
        o.seconds
    );
    let (mut ours, mut peer) = (Figs::default(), Figs::default());
    let ours_live = bench_ours(&o, &mut ours)
        .map_err(|e| ours.notes.push(format!("swarm: {}", short(&e))))
        .ok();
    let peer_live = bench_docker(&o, &mut peer)
        .map_err(|e| peer.notes.push(format!("docker: {}", short(&e))))
        .ok();
    dns_rounds(
        &o,
        [ours_live.as_ref(), peer_live.as_ref()],
        [&mut ours, &mut peer],
    );
    // Docker left as found, then the cluster torn down.
    drop(peer_live);
    drop(ours_live);
    summary(&o, &ours, &peer);
    Ok(())
}

// --------------------------------------------------------------------------------------
// Network namespaces, the sink and the clients.

/// Run `f` on `n` threads, each first entering the network namespace at `ns` (a bind
/// mount or `/proc/<pid>/ns/net`); the results in thread order.
pub(crate) fn in_ns<T: Send>(
    ns: &Path,
    n: usize,
    f: impl Fn(usize) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let file = File::open(ns).with_context(|| format!("open {}", ns.display()))?;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (file, f) = (&file, &f);
                s.spawn(move || -> Result<T> {
                    nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                        .with_context(|| format!("setns {}", ns.display()))?;
                    f(i)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("thread panicked"))?)
            .collect()
    })
}

pub(crate) fn in_ns1<T: Send>(ns: &Path, f: impl Fn() -> Result<T> + Sync) -> Result<T> {
    Ok(in_ns(ns, 1, |_| f())?.remove(0))
}

/// A TCP sink on `0.0.0.0:PORT` in a namespace, one connection at a time. First byte:
/// `T` read to EOF, answer the byte count (8 bytes BE); `C` answer one byte and close;
/// `Q` stop.
pub(crate) struct Sink {
    ns: PathBuf,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sink {
    pub(crate) fn start(ns: &Path) -> Result<Sink> {
        let file = File::open(ns).with_context(|| format!("open {}", ns.display()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let listener = nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(anyhow::Error::from)
                .and_then(|_| Ok(std::net::TcpListener::bind(("0.0.0.0", PORT))?));
            drop(file);
            match listener {
                Ok(l) => {
                    let _ = tx.send(Ok(()));
                    serve(l);
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
        rx.recv().context("sink thread")??;
        Ok(Sink {
            ns: ns.to_path_buf(),
            thread: Some(thread),
        })
    }
}

fn serve(l: std::net::TcpListener) {
    let mut buf = vec![0u8; 1 << 18];
    for conn in l.incoming() {
        let Ok(mut c) = conn else { continue };
        let _ = c.set_read_timeout(Some(Duration::from_secs(60)));
        let mut op = [0u8; 1];
        if c.read_exact(&mut op).is_err() {
            continue;
        }
        match op[0] {
            b'T' => {
                let mut n = 0u64;
                while let Ok(k) = c.read(&mut buf) {
                    if k == 0 {
                        break;
                    }
                    n += k as u64;
                }
                let _ = c.write_all(&n.to_be_bytes());
            }
            b'C' => {
                let _ = c.write_all(b"y");
            }
            b'Q' => return,
            _ => {}
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // Stop it from inside its namespace; if that fails (the namespace is gone), leave
        // the thread rather than hang on it.
        let stopped = in_ns1(&self.ns, || {
            let mut c = TcpStream::connect_timeout(
                &SocketAddr::from((Ipv4Addr::LOCALHOST, PORT)),
                Duration::from_secs(1),
            )?;
            c.write_all(b"Q")?;
            Ok(())
        });
        if stopped.is_ok() {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// One transfer of `bytes` to the sink at `to`, until it has counted every byte.
pub(crate) fn transfer(ns: &Path, to: SocketAddr, bytes: u64) -> Result<Duration> {
    in_ns1(ns, || {
        let buf = vec![0x5au8; 1 << 18];
        let start = Instant::now();
        let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(5))?;
        c.set_read_timeout(Some(Duration::from_secs(120)))?;
        c.write_all(b"T")?;
        let mut left = bytes;
        while left > 0 {
            let k = left.min(buf.len() as u64) as usize;
            c.write_all(&buf[..k])?;
            left -= k as u64;
        }
        c.shutdown(std::net::Shutdown::Write)?;
        let mut n = [0u8; 8];
        c.read_exact(&mut n)?;
        ensure!(
            u64::from_be_bytes(n) == bytes,
            "the sink counted fewer bytes"
        );
        Ok(start.elapsed())
    })
}

/// Sequential short connections to the sink for `secs`: (answered, failed, elapsed).
/// A failed one (connect timeout, reset, short answer) is counted and the loop goes on.
pub(crate) fn connections(ns: &Path, to: SocketAddr, secs: f64) -> Result<(u64, u64, Duration)> {
    in_ns1(ns, || {
        let one = || -> Result<()> {
            let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
            c.set_read_timeout(Some(Duration::from_secs(2)))?;
            c.set_nodelay(true)?;
            c.write_all(b"C")?;
            let mut got = Vec::with_capacity(2);
            c.read_to_end(&mut got)?;
            ensure!(got == b"y", "short answer {got:?}");
            Ok(())
        };
        let start = Instant::now();
        let (mut n, mut failed) = (0u64, 0u64);
        while start.elapsed().as_secs_f64() < secs {
            match one() {
                Ok(()) => n += 1,
                Err(_) => failed += 1,
            }
        }
        Ok((n, failed, start.elapsed()))
    })
}

pub(crate) fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// Throughput (MB/s, median) to each of `addrs`, the rounds alternating between them.
fn throughput(ns: &Path, addrs: &[Ipv4Addr], o: &Opts) -> Result<Vec<Option<f64>>> {
    let mut runs = vec![Vec::new(); addrs.len()];
    // One warm-up transfer each (ARP, conntrack, caches).
    for a in addrs {
        transfer(ns, SocketAddr::from((*a, PORT)), o.bytes.min(64 << 20))?;
    }
    for _ in 0..o.rounds {
        for (i, a) in addrs.iter().enumerate() {
            let t = transfer(ns, SocketAddr::from((*a, PORT)), o.bytes)?;
            runs[i].push(o.bytes as f64 / 1e6 / t.as_secs_f64());
        }
    }
    Ok(runs.into_iter().map(median).collect())
}

/// Connections per second to each of `addrs`, two alternating halves each; with the
/// count of failed ones.
fn conn_rates(ns: &Path, addrs: &[Ipv4Addr], o: &Opts) -> Result<Vec<(Option<f64>, u64)>> {
    let mut tot = vec![(0u64, 0u64, 0f64); addrs.len()];
    for a in addrs {
        connections(ns, SocketAddr::from((*a, PORT)), 0.2)?;
    }
    for _ in 0..2 {
        for (i, a) in addrs.iter().enumerate() {
            let (n, failed, t) = connections(ns, SocketAddr::from((*a, PORT)), o.seconds / 2.0)?;
            tot[i].0 += n;
            tot[i].1 += failed;
            tot[i].2 += t.as_secs_f64();
        }
    }
    Ok(tot
        .into_iter()
        .map(|(n, failed, t)| (Some(n as f64 / t), failed))
        .collect())
}

// --------------------------------------------------------------------------------------
// A minimal DNS client (A queries over UDP).

fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, 1 question
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]); // root, A, IN
    q
}

fn skip_name(p: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let l = *p.get(i)? as usize;
        if l == 0 {
            return Some(i + 1);
        }
        if l & 0xc0 == 0xc0 {
            return Some(i + 2);
        }
        i += 1 + l;
    }
}

/// The A records of a response to query `id` (None: not that response).
fn dns_answers(p: &[u8], id: u16) -> Option<Vec<Ipv4Addr>> {
    if p.len() < 12 || u16::from_be_bytes([p[0], p[1]]) != id || p[2] & 0x80 == 0 {
        return None;
    }
    let qd = u16::from_be_bytes([p[4], p[5]]);
    let an = u16::from_be_bytes([p[6], p[7]]);
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(p, i)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        i = skip_name(p, i)?;
        let rr = p.get(i..i + 10)?;
        let (ty, len) = (
            u16::from_be_bytes([rr[0], rr[1]]),
            u16::from_be_bytes([rr[8], rr[9]]) as usize,
        );
        let data = p.get(i + 10..i + 10 + len)?;
        if ty == 1 && len == 4 {
            out.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        i += 10 + len;
    }
    Some(out)
}

/// One A query on `sock` (connected to the resolver); Err on timeout.
fn resolve(sock: &UdpSocket, id: u16, name: &str, buf: &mut [u8]) -> Result<Vec<Ipv4Addr>> {
    sock.send(&dns_query(id, name))?;
    loop {
        let n = sock.recv(buf)?;
        if let Some(a) = dns_answers(&buf[..n], id) {
            return Ok(a);
        }
    }
}

fn resolver_socket(timeout: Duration) -> Result<UdpSocket> {
    let s = UdpSocket::bind("0.0.0.0:0")?;
    s.connect("127.0.0.11:53")?;
    s.set_read_timeout(Some(timeout))?;
    Ok(s)
}

/// Answers' latencies, lost queries and seconds of one DNS load run.
#[derive(Default)]
struct DnsRun {
    lat: Vec<Duration>,
    lost: u64,
    secs: f64,
}

impl DnsRun {
    fn add(&mut self, r: DnsRun) {
        self.lat.extend(r.lat);
        self.lost += r.lost;
        self.secs += r.secs;
    }

    /// (qps, p50, p99, lost)
    fn figures(mut self) -> Option<(f64, Duration, Duration, u64)> {
        if self.lat.is_empty() {
            return None;
        }
        self.lat.sort();
        let l = &self.lat;
        let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)];
        Some((l.len() as f64 / self.secs, pct(0.50), pct(0.99), self.lost))
    }
}

/// `threads` clients, one query in flight each, for `secs`.
fn dns_load(ns: &Path, name: &str, threads: usize, secs: f64) -> Result<DnsRun> {
    // Once, and it must answer with an address.
    let first = in_ns1(ns, || {
        let s = resolver_socket(Duration::from_secs(2))?;
        resolve(&s, 1, name, &mut [0u8; 512])
    })?;
    ensure!(!first.is_empty(), "{name} has no A record");
    let start = Instant::now();
    let per = in_ns(ns, threads, |t| {
        let s = resolver_socket(Duration::from_secs(1))?;
        let mut buf = [0u8; 512];
        let mut lat = Vec::new();
        let mut lost = 0u64;
        let mut id = (t as u16) << 12;
        let begin = Instant::now();
        while begin.elapsed().as_secs_f64() < secs {
            id = id.wrapping_add(1);
            let q = Instant::now();
            match resolve(&s, id, name, &mut buf) {
                Ok(a) if !a.is_empty() => lat.push(q.elapsed()),
                _ => lost += 1,
            }
        }
        Ok((lat, lost))
    })?;
    let mut run = DnsRun {
        secs: start.elapsed().as_secs_f64(),
        ..Default::default()
    };
    for (lat, lost) in per {
        run.lat.extend(lat);
        run.lost += lost;
    }
    ensure!(!run.lat.is_empty(), "no answer");
    Ok(run)
}

/// The DNS figures, ours and Docker's alternating (three rounds each) so that both see
/// the same machine load.
fn dns_rounds(o: &Opts, live: [Option<&Live>; 2], figs: [&mut Figs; 2]) {
    let [fo, fp] = figs;
    for threads in [1, 4] {
        let mut acc = [DnsRun::default(), DnsRun::default()];
        for _ in 0..3 {
            for (k, l) in live.iter().enumerate() {
                let Some(l) = l else { continue };
                match dns_load(&l.ns, "rr", threads, o.seconds / 3.0) {
                    Ok(r) => acc[k].add(r),
                    Err(e) => {
                        let f = if k == 0 { &mut *fo } else { &mut *fp };
                        f.notes
                            .push(format!("{}: DNS, {threads} threads: {}", l.who, short(&e)));
                    }
                }
            }
        }
        let [a, b] = acc;
        if let Some((qps, p50, p99, lost)) = a.figures() {
            fo.dns.push((threads, qps, p50, p99, lost));
        }
        if let Some((qps, p50, p99, lost)) = b.figures() {
            fp.dns.push((threads, qps, p50, p99, lost));
        }
    }
    // The VIP name too (an extra row, ours only).
    if let Some(l) = live[0] {
        match dns_load(&l.ns, "sink", 1, o.seconds / 3.0).map(DnsRun::figures) {
            Ok(Some((qps, p50, p99, lost))) => fo.notes.push(format!(
                "swarm: DNS of a VIP name (sink), 1 thread: {qps:.0} q/s, p50 {}, p99 {}, \
                 {lost} lost",
                us(p50),
                us(p99)
            )),
            Ok(None) => {}
            Err(e) => fo
                .notes
                .push(format!("swarm: DNS of the VIP name: {}", short(&e))),
        }
    }
}

/// A contender kept up for the DNS rounds: the client's namespace, and what keeps it
/// (the cluster, or the guard that leaves Docker as found).
struct Live {
    who: &'static str,
    ns: PathBuf,
    _keep: Box<dyn std::any::Any>,
}

/// Poll from `ns` until `name` resolves and busybox httpd answers `GET /` on port 8080
/// at the (first) address it gives; the time since `start`.
fn until_answers(ns: &Path, name: &str, start: Instant) -> Result<Duration> {
    in_ns1(ns, || {
        let s = resolver_socket(Duration::from_millis(200))?;
        let mut buf = [0u8; 512];
        let mut id = 0x4000u16;
        loop {
            ensure!(
                start.elapsed() < Duration::from_secs(60),
                "{name} did not answer within 60 s"
            );
            id = id.wrapping_add(1);
            if let Ok(addrs) = resolve(&s, id, name, &mut buf) {
                if let Some(a) = addrs.first() {
                    if http_ok(*a) {
                        return Ok(start.elapsed());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    })
}

fn http_ok(a: Ipv4Addr) -> bool {
    let get = || -> Result<bool> {
        let mut c =
            TcpStream::connect_timeout(&SocketAddr::from((a, 8080)), Duration::from_millis(300))?;
        c.set_read_timeout(Some(Duration::from_secs(1)))?;
        c.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
        let mut r = Vec::new();
        c.read_to_end(&mut r)?;
        Ok(r.starts_with(b"HTTP/1.") && r.windows(5).any(|w| w == b" 200 "))
    };
    get().unwrap_or(false)
}

// --------------------------------------------------------------------------------------
// Service specs, the same for both (Engine API).

fn spec(name: &str, image: &str, cmd: &[&str], net: &str, mode: &str, node: Option<&str>) -> Value {
    let mut s = json!({
        "Name": name,
        "TaskTemplate": {
            "ContainerSpec": {"Image": image, "Command": cmd, "StopSignal": "SIGKILL"},
            "Networks": [{"Target": net}],
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {"Mode": mode},
    });
    if let Some(n) = node {
        s["TaskTemplate"]["Placement"] = json!({"Constraints": [format!("node.hostname=={n}")]});
    }
    s
}

pub(crate) fn sh_web() -> Vec<&'static str> {
    vec!["sh", "-c", WEB_CMD]
}

// --------------------------------------------------------------------------------------
// Ours.

pub(crate) fn task_addr(task: &Value, net_id: &str) -> Option<Ipv4Addr> {
    let a = task["NetworksAttachments"]
        .as_array()?
        .iter()
        .find(|a| a["Network"]["ID"] == net_id)?["Addresses"][0]
        .as_str()?;
    a.split('/').next()?.parse().ok()
}

fn service_vip(h: &Host, service: &str, net_id: &str) -> Result<Ipv4Addr> {
    let svc = h.ok("GET", &format!("/services/{service}"), None)?;
    let vip = svc["Endpoint"]["VirtualIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["NetworkID"] == net_id)
        .and_then(|v| v["Addr"].as_str())
        .with_context(|| format!("no VIP for {service}: {svc}"))?;
    Ok(vip.split('/').next().unwrap_or(vip).parse()?)
}

/// The running task of a one-replica service, asking manager `m`, on host `on`: (its
/// namespace, its address).
fn our_task(m: &Host, on: &Host, service: &str, net_id: &str) -> Result<(PathBuf, Ipv4Addr)> {
    let id = m.wait_running(service, 1)?.remove(0).id;
    let t = m.ok("GET", &format!("/tasks/{id}"), None)?;
    let addr = task_addr(&t, net_id).with_context(|| format!("address of {service}: {t}"))?;
    Ok((on.data.join("net/tasks").join(&id), addr))
}

/// The first line of an error chain, at most 300 characters (no log tails).
pub(crate) fn short(e: &anyhow::Error) -> String {
    let parts: Vec<String> = e
        .chain()
        .map(|c| c.to_string().lines().next().unwrap_or("").to_string())
        .filter(|l| !l.starts_with("swarmd log"))
        .collect();
    parts.join(": ").chars().take(300).collect()
}

pub(crate) fn create(h: &Host, spec: &Value) -> Result<()> {
    let (code, v) = h.call("POST", "/services/create", Some(spec))?;
    ensure!(code == 201, "service create: {code} {v}");
    Ok(())
}

fn bench_ours(o: &Opts, f: &mut Figs) -> Result<Live> {
    let cluster = Cluster::new(2)?;
    let h = cluster.host(0);
    h.swarm_ok(&["init", "--advertise-addr", &h.ip.to_string()])?;
    let two = match cluster.join_workers() {
        Ok(()) => true,
        Err(e) => {
            f.notes.push(format!("swarm: two nodes: {}", short(&e)));
            false
        }
    };
    let img = cluster.image("1");
    h.swarm_ok(&["network", "create", "-d", "overlay", NET])?;
    let net = h.ok("GET", &format!("/networks/{NET}"), None)?["Id"]
        .as_str()
        .context("network id")?
        .to_string();
    let sleep = ["sleep", "1d"];
    create(h, &spec("client", &img, &sleep, &net, "vip", Some("h0")))?;
    create(h, &spec("sink", &img, &sleep, &net, "vip", Some("h0")))?;
    create(h, &spec("rr", &img, &sleep, &net, "dnsrr", Some("h0")))?;
    if two {
        create(h, &spec("sink1", &img, &sleep, &net, "vip", Some("h1")))?;
    }
    let (cns, _) = our_task(h, h, "client", &net)?;
    let (sns, saddr) = our_task(h, h, "sink", &net)?;
    let svip = service_vip(h, "sink", &net)?;
    our_task(h, h, "rr", &net)?;
    let _sink = Sink::start(&sns)?;
    println!("swarm: client {cns:?}\n  sink {saddr} (VIP {svip})");

    let r = throughput(&cns, &[saddr, svip], o)?;
    (f.tput[0], f.tput[1]) = (r[0], r[1]);
    let r = conn_rates(&cns, &[saddr, svip], o)?;
    (f.conns[0], f.conns[1]) = (r[0], r[1]);
    if two {
        let two = || -> Result<(Option<f64>, Option<f64>)> {
            let (ns1, addr1) = our_task(h, cluster.host(1), "sink1", &net)?;
            let vip1 = service_vip(h, "sink1", &net)?;
            let _sink1 = Sink::start(&ns1)?;
            println!("  sink1 on h1 {addr1} (VIP {vip1})");
            let r = throughput(&cns, &[addr1, vip1], o)?;
            Ok((r[0], r[1]))
        };
        match two() {
            Ok((d, v)) => (f.tput[2], f.tput[3]) = (d, v),
            Err(e) => f
                .notes
                .push(format!("swarm: across two nodes: {}", short(&e))),
        }
    }
    for (i, (name, mode)) in [("fresh", "vip"), ("freshrr", "dnsrr")].iter().enumerate() {
        let s = spec(name, &img, &sh_web(), &net, mode, Some("h0"));
        let start = Instant::now();
        create(h, &s)?;
        f.create[i] = Some(until_answers(&cns, name, start)?);
    }
    drop(_sink);
    Ok(Live {
        who: "swarm",
        ns: cns,
        _keep: Box::new(cluster),
    })
}

// --------------------------------------------------------------------------------------
// The peer: Docker Swarm.

const DOCKER_IMAGE: &str = "swarm-bench/busybox-net:latest";
const DOCKER_SERVICES: [&str; 4] = ["client", "rr", "freshrr", "sink"];

fn docker(args: &[&str]) -> Result<String> {
    let out = Command::new("docker").args(args).output()?;
    ensure!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn docker_networks() -> BTreeSet<String> {
    docker(&["network", "ls", "--format", "{{.Name}}"])
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Leaves Docker as found: what this run created, and only that, is removed on drop.
#[derive(Default)]
struct DockerGuard {
    image: bool,
    swarm: bool,
    networks_before: BTreeSet<String>,
}

impl Drop for DockerGuard {
    fn drop(&mut self) {
        if self.swarm {
            for s in DOCKER_SERVICES {
                let _ = docker(&["service", "rm", s]);
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                let left = docker(&["ps", "-aq", "--filter", "label=com.docker.swarm.service.id"])
                    .unwrap_or_default();
                if left.is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = docker(&["network", "rm", NET]);
            if let Err(e) = docker(&["swarm", "leave", "--force"]) {
                eprintln!("cleanup: {e:#}");
            }
            for n in docker_networks().difference(&self.networks_before) {
                if let Err(e) = docker(&["network", "rm", n]) {
                    eprintln!("cleanup: {e:#}");
                }
            }
        }
        if self.image {
            if let Err(e) = docker(&["rmi", DOCKER_IMAGE]) {
                eprintln!("cleanup: {e:#}");
            }
        }
    }
}

/// The Engine API over its socket (curl, as for ours).
fn docker_api(method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-w", "\n%{http_code}", "-X", method])
        .args(["--unix-socket", "/var/run/docker.sock"])
        .arg(format!("http://localhost{path}"));
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "-d", &b.to_string()]);
    }
    let out = cmd.output()?;
    ensure!(out.status.success(), "curl {method} {path}");
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once('\n').context("curl output")?;
    Ok((
        code.trim().parse()?,
        serde_json::from_str(body).unwrap_or(Value::Null),
    ))
}

fn docker_create(spec: &Value) -> Result<()> {
    let (code, v) = docker_api("POST", "/services/create", Some(spec))?;
    ensure!(code == 201, "docker service create: {code} {v}");
    Ok(())
}

/// The running container of a one-replica service: (its namespace, its address on `net`).
fn docker_task(service: &str, net: &str) -> Result<(PathBuf, Ipv4Addr)> {
    let id = wait_for(
        &format!("a running container of {service}"),
        Duration::from_secs(120),
        || {
            let ids = docker(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.swarm.service.name={service}"),
                "--filter",
                "status=running",
            ])?;
            Ok(ids.lines().next().map(str::to_string))
        },
    )?;
    let pid = docker(&["inspect", "-f", "{{.State.Pid}}", &id])?;
    let addr = docker(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        &id,
    ])?;
    Ok((
        PathBuf::from(format!("/proc/{pid}/ns/net")),
        addr.parse()
            .with_context(|| format!("{service} address {addr:?}"))?,
    ))
}

fn bench_docker(o: &Opts, f: &mut Figs) -> Result<Live> {
    let state =
        docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).context("no Docker Engine")?;
    if state != "inactive" {
        bail!("the Docker Engine is already in a swarm ({state}); not touched");
    }
    ensure!(
        docker(&["image", "inspect", DOCKER_IMAGE]).is_err(),
        "{DOCKER_IMAGE} already exists; not touched"
    );
    let mut guard = DockerGuard {
        networks_before: docker_networks(),
        ..Default::default()
    };
    let tmp = tempfile::Builder::new()
        .prefix("swarm-bench-net-")
        .tempdir()?;
    let rootfs = tmp.path().join("rootfs");
    rootfs_tests::busybox::rootfs(&rootfs)?;
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()?;
    guard.image = true;
    let status = Command::new("docker")
        .args(["import", "-", DOCKER_IMAGE])
        .stdin(tar.stdout.context("tar stdout")?)
        .stdout(Stdio::null())
        .status()?;
    ensure!(status.success(), "docker import failed");
    guard.swarm = true;
    // A free port rather than 2377: something else on this machine may hold it.
    let addr = format!("127.0.0.1:{}", rootfs_tests::registry::free_port()?);
    docker(&[
        "swarm",
        "init",
        "--advertise-addr",
        &addr,
        "--listen-addr",
        &addr,
    ])?;
    let net = docker(&["network", "create", "-d", "overlay", "--attachable", NET])?;

    let sleep = ["sleep", "1d"];
    // dnsrr everywhere: a VIP-mode service needs IPVS, which these kernels lack.
    for s in ["client", "rr", "sink"] {
        docker_create(&spec(s, DOCKER_IMAGE, &sleep, &net, "dnsrr", None))?;
    }
    let (cns, _) = docker_task("client", NET)?;
    let (sns, saddr) = docker_task("sink", NET)?;
    docker_task("rr", NET)?;
    println!("docker: client {cns:?}\n  sink {saddr}");
    match Sink::start(&sns) {
        Ok(sink) => {
            match throughput(&cns, &[saddr], o) {
                Ok(r) => f.tput[0] = r[0],
                Err(e) => f.notes.push(format!("docker: throughput: {}", short(&e))),
            }
            match conn_rates(&cns, &[saddr], o) {
                Ok(r) => f.conns[0] = r[0],
                Err(e) => f.notes.push(format!("docker: connections: {}", short(&e))),
            }
            drop(sink);
        }
        Err(e) => f.notes.push(format!("docker: sink: {}", short(&e))),
    }
    let s = spec("freshrr", DOCKER_IMAGE, &sh_web(), &net, "dnsrr", None);
    let start = Instant::now();
    docker_create(&s)?;
    match until_answers(&cns, "freshrr", start) {
        Ok(t) => f.create[1] = Some(t),
        Err(e) => f
            .notes
            .push(format!("docker: create until answering: {}", short(&e))),
    }
    drop(tmp);
    Ok(Live {
        who: "docker",
        ns: cns,
        _keep: Box::new(guard),
    })
}

// --------------------------------------------------------------------------------------
// The summary.

fn us(d: Duration) -> String {
    format!("{:.0} us", d.as_secs_f64() * 1e6)
}

fn fig(v: Option<f64>, unit: &str) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.0} {unit}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "n/a".into(),
    }
}

fn summary(o: &Opts, ours: &Figs, peer: &Figs) {
    println!("\n== summary (machine shared with other builds; see the load line) ==");
    println!(
        "load average: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!(
        "\nthroughput, {} MiB on one TCP connection, median of {}:",
        o.bytes >> 20,
        o.rounds
    );
    let t = &ours.tput;
    println!("  one node   swarm direct {:>12}", fig(t[0], "MB/s"));
    println!(
        "  one node   swarm VIP    {:>12}   VIP/direct {} (goal >= 0.9)",
        fig(t[1], "MB/s"),
        ratio(t[1], t[0])
    );
    println!(
        "  one node   docker direct (overlay, dnsrr task address) {:>12}   swarm direct/docker {}",
        fig(peer.tput[0], "MB/s"),
        ratio(t[0], peer.tput[0])
    );
    println!(
        "  two nodes  swarm direct {:>12}   (VXLAN)",
        fig(t[2], "MB/s")
    );
    println!(
        "  two nodes  swarm VIP    {:>12}   VIP/direct {} (goal >= 0.9)",
        fig(t[3], "MB/s"),
        ratio(t[3], t[2])
    );
    println!(
        "  docker VIP: n/a (needs IPVS, not in these kernels); docker two nodes: n/a (one engine)"
    );

    println!(
        "\nnew connections/s (connect, 1 byte each way, close; sequential, {} s; failures counted):",
        o.seconds
    );
    let c = &ours.conns;
    println!(
        "  swarm direct {:>10}   ({} failed)",
        fig(c[0].0, "/s"),
        c[0].1
    );
    println!(
        "  swarm VIP    {:>10}   ({} failed)   VIP/direct {} (goal >= 0.8)",
        fig(c[1].0, "/s"),
        c[1].1,
        ratio(c[1].0, c[0].0)
    );
    println!(
        "  docker direct {:>9}   ({} failed)   swarm direct/docker {}",
        fig(peer.conns[0].0, "/s"),
        peer.conns[0].1,
        ratio(c[0].0, peer.conns[0].0)
    );

    println!(
        "\nDNS, A query for a dnsrr service name to 127.0.0.11 from a task, {} s:",
        o.seconds
    );
    for (who, f) in [("swarm", ours), ("docker", peer)] {
        if f.dns.is_empty() {
            println!("  {who:<7} n/a");
        }
        for (th, qps, p50, p99, lost) in &f.dns {
            println!(
                "  {who:<7} {th} thread(s) {qps:>8.0} q/s   p50 {:>7}   p99 {:>7}   lost {lost}",
                us(*p50),
                us(*p99)
            );
        }
    }
    for (a, b) in ours.dns.iter().zip(&peer.dns) {
        println!(
            "  {} thread(s): swarm/docker qps {:.2}x (goal >= 2x), p99 docker/swarm {:.2}x",
            a.0,
            a.1 / b.1,
            b.3.as_secs_f64() / a.3.as_secs_f64()
        );
    }

    println!(
        "\nservice create until the name resolves and httpd answers in another task (one node):"
    );
    let ms = |d: Option<Duration>| d.map_or("n/a".into(), crate::util::ms);
    println!("  swarm  VIP   {:>10}   (goal < 1 s)", ms(ours.create[0]));
    println!("  swarm  dnsrr {:>10}   (goal < 1 s)", ms(ours.create[1]));
    println!("  docker dnsrr {:>10}", ms(peer.create[1]));
    if let (Some(a), Some(b)) = (ours.create[1], peer.create[1]) {
        println!(
            "  dnsrr: ours is {:.2}x faster",
            b.as_secs_f64() / a.as_secs_f64()
        );
    }
    let notes: Vec<&String> = ours.notes.iter().chain(&peer.notes).collect();
    if !notes.is_empty() {
        println!("\nnotes:");
        for n in notes {
            println!("  - {n}");
        }
    }
}
