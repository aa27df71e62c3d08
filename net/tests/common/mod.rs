//! A lab of network namespaces for the root tests: a "switch" namespace with a bridge,
//! "hosts" joined to it by veth pairs on a private underlay, "containers" to attach.
//! Every namespace is pinned under one directory of the run (`/run/swt-<pid>-<tag>`);
//! dropping the lab (also when a test fails) unpins them all, which frees everything
//! made inside them. Nothing is made in the machine's own namespace.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarm_net::netlink::Netlink;
use swarm_net::{netns, Host};

/// Whether the suite can run here; prints why not.
pub fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the netns tests need root (namespaces, links, nftables)");
        return false;
    }
    for bin in ["nft", "nsenter"] {
        if std::process::Command::new(bin)
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("skipped: `{bin}` is not installed (Debian nftables / util-linux)");
            return false;
        }
    }
    true
}

/// In `Lab::serve`'s answer, replaced by the client's address.
pub const PEER: &str = "$peer";

pub struct Lab {
    pub dir: PathBuf,
    /// The underlay: 10.<second>.<third>.0/24.
    pub underlay: [u8; 2],
    namespaces: Vec<PathBuf>,
    stops: Vec<Arc<AtomicBool>>,
}

impl Lab {
    /// A lab whose underlay is 10.233.`k`.0/24 inside its own switch namespace.
    pub fn new(tag: &str, k: u8) -> Self {
        let dir = PathBuf::from(format!("/run/swt-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut lab = Lab {
            dir,
            underlay: [233, k],
            namespaces: Vec::new(),
            stops: Vec::new(),
        };
        let switch = lab.netns("switch");
        let mut nl = Netlink::open(Some(&switch)).unwrap();
        nl.add_bridge("lan", None).unwrap();
        nl.set_up_by_name("lan").unwrap();
        lab
    }

    /// A new namespace of the lab.
    pub fn netns(&mut self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        netns::create(&path).unwrap();
        self.namespaces.push(path.clone());
        path
    }

    /// Host number `n` (1..): a namespace on the switch with underlay address
    /// 10.233.k.(10+n), and its `Host` (run dir inside the lab).
    pub fn host(&mut self, n: u8) -> (Host, Ipv4Addr) {
        let name = format!("host{n}");
        let ns = self.netns(&name);
        let ip = self.underlay_ip(10 + n);
        let mut sw = Netlink::open(Some(&self.dir.join("switch"))).unwrap();
        let port = format!("p{n}");
        sw.add_veth(&port, "eth0", Some(&ns), None, None).unwrap();
        let lan = sw.need_link("lan").unwrap();
        let p = sw.need_link(&port).unwrap();
        sw.set_master(p.index, lan.index).unwrap();
        sw.set_up(p.index).unwrap();
        let mut h = Netlink::open(Some(&ns)).unwrap();
        let eth0 = h.need_link("eth0").unwrap();
        h.ensure_addr(eth0.index, ip, 24).unwrap();
        h.set_up(eth0.index).unwrap();
        let run = self.dir.join(format!("{name}-run"));
        (Host::in_netns(ns, run), ip)
    }

    pub fn underlay_ip(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, self.underlay[0], self.underlay[1], last)
    }

    /// A TCP server in `ns` on `addr` answering every connection with `name`, where
    /// [`PEER`] stands for the address the connection came from, until the lab is
    /// dropped.
    pub fn serve(&mut self, ns: &Path, addr: SocketAddr, name: &str) {
        let stop = Arc::new(AtomicBool::new(false));
        self.stops.push(stop.clone());
        let name = name.to_owned();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        netns::spawn_in(ns, move || {
            let listener = TcpListener::bind(addr).expect("bind test server");
            listener.set_nonblocking(true).unwrap();
            ready_tx.send(()).unwrap();
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, from)) => {
                        let answer = name.replace(PEER, &from.ip().to_string());
                        let _ = s.write_all(answer.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        })
        .unwrap();
        ready_rx.recv().expect("test server started");
    }
}

impl Lab {
    /// A UDP server in `ns` on `addr` answering every datagram as `serve` answers a
    /// connection, until the lab is dropped.
    pub fn serve_udp(&mut self, ns: &Path, addr: SocketAddr, name: &str) {
        let stop = Arc::new(AtomicBool::new(false));
        self.stops.push(stop.clone());
        let name = name.to_owned();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        netns::spawn_in(ns, move || {
            let sock = UdpSocket::bind(addr).expect("bind test udp server");
            sock.set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            ready_tx.send(()).unwrap();
            let mut buf = [0u8; 1500];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((_, from)) = sock.recv_from(&mut buf) {
                    let answer = name.replace(PEER, &from.ip().to_string());
                    let _ = sock.send_to(answer.as_bytes(), from);
                }
            }
        })
        .unwrap();
        ready_rx.recv().expect("test udp server started");
    }
}

/// One datagram from namespace `ns` to `to`, and the answer.
pub fn fetch_udp(ns: &Path, to: SocketAddr, timeout: Duration) -> std::io::Result<String> {
    netns::run_in(Some(ns), || {
        let s = UdpSocket::bind("0.0.0.0:0")?;
        s.set_read_timeout(Some(timeout))?;
        s.send_to(b"?", to)?;
        let mut buf = [0u8; 1500];
        let (n, _) = s.recv_from(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    })
    .expect("enter namespace")
}

impl Drop for Lab {
    fn drop(&mut self) {
        for stop in &self.stops {
            stop.store(true, Ordering::Relaxed);
        }
        // Overlay namespaces under each host's run dir, then the lab's own.
        let mut pinned: Vec<PathBuf> = Vec::new();
        if let Ok(dir) = std::fs::read_dir(&self.dir) {
            for entry in dir.flatten() {
                let p = entry.path().join("netns");
                if let Ok(inner) = std::fs::read_dir(&p) {
                    pinned.extend(inner.flatten().map(|e| e.path()));
                }
            }
        }
        pinned.extend(self.namespaces.iter().cloned());
        for p in pinned {
            if let Err(e) = netns::remove(&p) {
                eprintln!("cleanup: {}: {e}", p.display());
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Connect from namespace `ns` to `to` and read what the server says.
pub fn fetch(ns: &Path, to: SocketAddr, timeout: Duration) -> std::io::Result<String> {
    netns::run_in(Some(ns), || {
        let mut s = TcpStream::connect_timeout(&to, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })
    .expect("enter namespace")
}

/// `fetch`, retried until it answers or `deadline` passes (ARP and the first
/// VXLAN packet can take a moment).
pub fn fetch_within(ns: &Path, to: SocketAddr, deadline: Duration) -> std::io::Result<String> {
    let end = Instant::now() + deadline;
    loop {
        match fetch(ns, to, Duration::from_secs(1)) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= end => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// busybox ping, once, from `ns` (when busybox is installed; `None` otherwise).
pub fn ping(ns: &Path, ip: Ipv4Addr) -> Option<bool> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let status = std::process::Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args([busybox, "ping", "-c1", "-W2", &ip.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    Some(status.success())
}

/// The links of namespace `ns` as (name, index, master).
pub fn links(ns: Option<&Path>) -> Vec<(String, u32, Option<u32>)> {
    let mut v: Vec<_> = Netlink::open(ns)
        .unwrap()
        .links()
        .unwrap()
        .into_iter()
        .map(|l| (l.name, l.index, l.master))
        .collect();
    v.sort();
    v
}
