//! Several hosts on one machine for multi-host suites: each host is a network namespace
//! with a veth into a bridge that the test owns, and runs its own [`Swarmd`] (own data
//! dir, socket, hostname, cgroup parent, cluster address). The sockets live in the root
//! namespace's filesystem, so the test talks to every host from outside.
//!
//! ```text
//!  root namespace                                        netns swt<k>h0p<pid>
//!   bridge swt<k> 10.231.<k>.1/24 ──veth swt<k>h0 ── eth0 10.231.<k>.11  swarmd h0
//!    │  registry 10.231.<k>.1:P (busybox:1, :2)  ──veth swt<k>h1 ── eth0 10.231.<k>.12  swarmd h1
//!    │  iptables FORWARD -i swt<k> -o swt<k> ACCEPT  ─veth swt<k>h2 ── eth0 10.231.<k>.13  swarmd h2
//!   <tmp>/h<i>/{data,swarm.sock,swarmd.log}   cgroup parent swarm-swt<k>p<pid>h<i>
//! ```
//!
//! `<k>` (1..=254) is claimed machine-wide by creating the bridge `swt<k>` (creating an
//! existing link fails, so two clusters never share a subnet). Traffic stays on the
//! bridge's subnet: the hosts have no default route. [`Cluster::cut`] sets a host's veth
//! down in the root namespace (it reaches nobody, not even the registry);
//! [`Cluster::heal`] sets it up again. Dropping the cluster (also on a failed or
//! panicking test) kills every swarmd and container process, unmounts, removes the
//! cgroups, the namespaces, the veths, the bridge and its FORWARD rule, then the temp
//! dir: [`Inventory::leftovers`] checks that.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, ensure, Context, Result};

use crate::registry::Registry;
use crate::swarmd::{processes_naming, push_busybox, wait_for, Swarmd, SwarmdConfig};

/// The cluster port every host's swarmd listens and advertises on.
pub const CLUSTER_PORT: u16 = 2377;

/// One host: a network namespace with an address on the bridge, and its swarmd.
/// Derefs to its [`Swarmd`] (`swarm(..)`, `call(..)`, `wait_running(..)`, ...).
pub struct Host {
    swarmd: Swarmd,
    pub index: usize,
    pub ip: Ipv4Addr,
    /// Name under `/run/netns`.
    pub netns: String,
    /// The root-namespace end of its veth (the end in the host is `eth0`).
    pub veth: String,
}

impl std::ops::Deref for Host {
    type Target = Swarmd;
    fn deref(&self) -> &Swarmd {
        &self.swarmd
    }
}

impl std::ops::DerefMut for Host {
    fn deref_mut(&mut self) -> &mut Swarmd {
        &mut self.swarmd
    }
}

impl Host {
    /// `IP:2377`, what `swarm join` is given.
    pub fn addr(&self) -> String {
        format!("{}:{CLUSTER_PORT}", self.ip)
    }

    /// Run `f` on a thread inside this host's network namespace: sockets it opens live
    /// there (and stay there when handed back).
    pub fn in_netns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        in_netns(&self.netns, f)
    }

    /// The inode of this host's network namespace, as `/proc/<pid>/ns/net` shows it.
    pub fn netns_inode(&self) -> Result<u64> {
        let p = format!("/run/netns/{}", self.netns);
        Ok(std::fs::metadata(&p).with_context(|| p.clone())?.ino())
    }
}

/// Run `f` on a new thread that first enters the network namespace `/run/netns/<ns>`
/// (only that thread moves; the mount namespace stays the test's).
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    let path = format!("/run/netns/{ns}");
    let file = std::fs::File::open(&path).with_context(|| format!("open {path}"))?;
    std::thread::scope(|s| {
        s.spawn(|| -> Result<T> {
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .with_context(|| format!("setns {path}"))?;
            Ok(f())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("thread in {ns} panicked"))?
    })
}

/// The inode of a process's network namespace.
pub fn netns_of(pid: i64) -> Result<u64> {
    let p = format!("/proc/{pid}/ns/net");
    Ok(std::fs::metadata(&p).with_context(|| p.clone())?.ino())
}

/// N hosts on a private bridge, a registry on the bridge's gateway address, and
/// everything removed on drop. Fields drop in order: hosts (swarmd, containers, mounts,
/// cgroups), registry, network (namespaces, veths, bridge, rule), temp dir.
pub struct Cluster {
    hosts: Vec<Host>,
    pub registry: Registry,
    net: Net,
    pub tmp: tempfile::TempDir,
}

impl Cluster {
    /// `n` hosts, each with its swarmd up and answering (none of them in a swarm yet).
    pub fn new(n: usize) -> Result<Cluster> {
        crate::require_root();
        ensure!((1..=100).contains(&n), "1 to 100 hosts, not {n}");
        let tmp = tempfile::Builder::new()
            .prefix("swarm-cluster-")
            .tempdir()?;
        let mut net = Net::claim()?;
        for i in 0..n {
            net.add_host(i)?;
        }
        let registry = Registry::start_on(net.gateway())?;
        push_busybox(&registry, tmp.path())?;
        let mut cluster = Cluster {
            hosts: vec![],
            registry,
            net,
            tmp,
        };
        for i in 0..n {
            let (netns, veth, ip) = (cluster.net.netns(i), cluster.net.veth(i), cluster.net.ip(i));
            let dir = cluster.tmp.path().join(format!("h{i}"));
            std::fs::create_dir_all(&dir)?;
            let swarmd = Swarmd::start(SwarmdConfig {
                dir,
                hostname: format!("h{i}"),
                cgroup: format!("swarm-{}p{}h{i}", cluster.net.prefix(), std::process::id()),
                registry: cluster.registry.host(),
                netns: Some(netns.clone()),
                addr: Some(format!("{ip}:{CLUSTER_PORT}")),
            })
            .with_context(|| format!("start swarmd on host {i}"))?;
            cluster.hosts.push(Host {
                swarmd,
                index: i,
                ip,
                netns,
                veth,
            });
        }
        Ok(cluster)
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    pub fn host_mut(&mut self, i: usize) -> &mut Host {
        &mut self.hosts[i]
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    pub fn ip(&self, i: usize) -> Ipv4Addr {
        self.hosts[i].ip
    }

    /// The bridge's address in the root namespace (where the registry listens).
    pub fn gateway(&self) -> Ipv4Addr {
        self.net.gateway()
    }

    /// A reference to `busybox:<tag>` in the cluster's registry.
    pub fn image(&self, tag: &str) -> String {
        format!("{}/busybox:{tag}", self.registry.host())
    }

    /// SIGKILL host `i`'s swarmd; its containers live on.
    pub fn kill9(&mut self, i: usize) -> Result<()> {
        self.hosts[i].kill9()
    }

    /// Start host `i`'s swarmd again, same namespace, data dir and flags.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.hosts[i].start_swarmd()
    }

    /// Isolate host `i`: its veth goes down in the root namespace, so it reaches no
    /// other host and not the registry (its swarmd keeps running).
    pub fn cut(&self, i: usize) -> Result<()> {
        ip(&["link", "set", &self.hosts[i].veth, "down"])
    }

    /// Undo [`Cluster::cut`].
    pub fn heal(&self, i: usize) -> Result<()> {
        ip(&["link", "set", &self.hosts[i].veth, "up"])
    }

    /// The names of everything this cluster made, to check after it is dropped.
    /// Hosts 1.. join host 0's swarm (made already) as workers through the Engine API,
    /// and every node is ready.
    pub fn join_workers(&self) -> Result<()> {
        let manager = self.host(0);
        let swarm = manager.ok("GET", "/swarm", None)?;
        let token = swarm["JoinTokens"]["Worker"].as_str().context("token")?;
        for h in &self.hosts[1..] {
            let (code, v) = h.call(
                "POST",
                "/swarm/join",
                Some(&serde_json::json!({
                    "ListenAddr": h.addr(), "AdvertiseAddr": h.addr(),
                    "RemoteAddrs": [manager.addr()], "JoinToken": token,
                })),
            )?;
            ensure!(code == 200, "join h{}: {code} {v}", h.index);
        }
        wait_for(
            "every node ready",
            std::time::Duration::from_secs(60),
            || {
                let nodes = manager.ok("GET", "/nodes", None)?;
                let ready = nodes
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|n| n["Status"]["State"] == "ready")
                    .count();
                Ok((ready == self.hosts.len()).then_some(()))
            },
        )
    }

    /// Which host runs `task` (its JSON from the API), by its node's hostname `h<i>`.
    pub fn host_of(&self, task: &serde_json::Value) -> Result<usize> {
        let node = task["NodeID"].as_str().context("NodeID")?;
        let n = self.host(0).ok("GET", &format!("/nodes/{node}"), None)?;
        let name = n["Description"]["Hostname"].as_str().context("hostname")?;
        Ok(name.trim_start_matches('h').parse()?)
    }

    pub fn inventory(&self) -> Inventory {
        Inventory {
            dir: self.tmp.path().to_path_buf(),
            netns: (0..self.len()).map(|i| self.net.netns(i)).collect(),
            links: std::iter::once(self.net.bridge.clone())
                .chain((0..self.len()).map(|i| self.net.veth(i)))
                .collect(),
            cgroups: self.hosts.iter().flat_map(|h| h.cgroup_roots()).collect(),
            rule: self.net.rule(),
        }
    }
}

/// What a cluster made, by name.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub dir: PathBuf,
    pub netns: Vec<String>,
    /// The bridge and the root-namespace ends of the veths.
    pub links: Vec<String>,
    /// Every cgroup parent dir, over every hierarchy.
    pub cgroups: Vec<PathBuf>,
    /// The FORWARD accept rule for the bridge (match and target).
    pub rule: Vec<String>,
}

impl Inventory {
    /// Whatever is still on the machine: processes naming the temp dir, mounts below it,
    /// the dir itself, namespaces, links, cgroup dirs, the FORWARD rule.
    pub fn leftovers(&self) -> Vec<String> {
        let mut out = vec![];
        for pid in processes_naming(&self.dir) {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            out.push(format!(
                "process {pid}: {}",
                String::from_utf8_lossy(&cmd).replace('\0', " ")
            ));
        }
        let dir = self.dir.to_string_lossy().into_owned();
        for l in std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
        {
            if let Some(m) = l.split(' ').nth(4).filter(|m| m.starts_with(&dir)) {
                out.push(format!("mount {m}"));
            }
        }
        if self.dir.exists() {
            out.push(format!("dir {dir}"));
        }
        for ns in &self.netns {
            if Path::new("/run/netns").join(ns).exists() {
                out.push(format!("netns {ns}"));
            }
        }
        for l in &self.links {
            if Path::new("/sys/class/net").join(l).exists() {
                out.push(format!("link {l}"));
            }
        }
        for c in &self.cgroups {
            if c.exists() {
                out.push(format!("cgroup {}", c.display()));
            }
        }
        if iptables_has(&self.rule) {
            out.push(format!("iptables FORWARD {}", self.rule.join(" ")));
        }
        out
    }
}

/// The bridge, the namespaces and the veths; whatever was made is removed on drop, so a
/// half-built network is cleaned up too.
struct Net {
    k: u8,
    bridge: String,
    /// Host indexes whose namespace (and veth) exist.
    hosts: Vec<usize>,
    rule_added: bool,
}

/// Clusters made by this process so far: where the next one starts looking for a free
/// subnet, so a subnet just freed is not taken again at once.
static CLUSTERS: AtomicU32 = AtomicU32::new(0);

impl Net {
    /// Claim a free `10.231.<k>.0/24`: the first `k` whose bridge `swt<k>` could be created
    /// and whose subnet no local address uses.
    fn claim() -> Result<Net> {
        let start =
            std::process::id().wrapping_mul(31) + CLUSTERS.fetch_add(1, Ordering::SeqCst) * 7;
        for j in 0..254u32 {
            let k = ((start + j) % 254 + 1) as u8;
            let used = Command::new("ip")
                .args(["-4", "-o", "addr", "show"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!(" 10.231.{k}.")))
                .unwrap_or(true);
            if used {
                continue;
            }
            let bridge = format!("swt{k}");
            if ip(&["link", "add", &bridge, "type", "bridge"]).is_err() {
                continue; // someone else's
            }
            let mut net = Net {
                k,
                bridge,
                hosts: vec![],
                rule_added: false,
            };
            ip(&[
                "addr",
                "add",
                &format!("{}/24", net.gateway()),
                "dev",
                &net.bridge,
            ])?;
            ip(&["link", "set", &net.bridge, "up"])?;
            // Bridged frames go through iptables' FORWARD (br_netfilter), whose policy
            // Docker sets to DROP: let this bridge's own traffic through.
            if iptables_present() {
                let mut args = vec!["-I".to_string(), "FORWARD".into(), "1".into()];
                args.extend(net.rule());
                run("iptables", &args)?;
                net.rule_added = true;
            }
            return Ok(net);
        }
        bail!("no free subnet in 10.231.1-254.0/24")
    }

    fn prefix(&self) -> String {
        format!("swt{}", self.k)
    }

    fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 231, self.k, 1)
    }

    fn ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 231, self.k, 11 + i as u8)
    }

    fn netns(&self, i: usize) -> String {
        format!("{}h{i}p{}", self.prefix(), std::process::id())
    }

    fn veth(&self, i: usize) -> String {
        format!("{}h{i}", self.prefix())
    }

    /// The FORWARD rule's match and target (after `-I FORWARD 1`, `-D FORWARD`, ...).
    fn rule(&self) -> Vec<String> {
        ["-i", &self.bridge, "-o", &self.bridge, "-j", "ACCEPT"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// Host `i`'s namespace, lo up, `eth0` with `10.231.<k>.<11+i>/24` on the bridge.
    fn add_host(&mut self, i: usize) -> Result<()> {
        let (ns, veth) = (self.netns(i), self.veth(i));
        // A veth of ours left by a killed earlier run with the same subnet.
        let _ = ip(&["link", "del", &veth]);
        ip(&["netns", "add", &ns])?;
        self.hosts.push(i);
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ])?;
        ip(&["link", "set", &veth, "master", &self.bridge, "up"])?;
        let addr = format!("{}/24", self.ip(i));
        ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for &i in &self.hosts {
            let _ = ip(&["link", "del", &self.veth(i)]);
            let _ = ip(&["netns", "del", &self.netns(i)]);
        }
        if self.rule_added {
            let mut args = vec!["-D".to_string(), "FORWARD".into()];
            args.extend(self.rule());
            let _ = run("iptables", &args);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

fn iptables_present() -> bool {
    Command::new("iptables")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn iptables_has(rule: &[String]) -> bool {
    let mut args = vec!["-C".to_string(), "FORWARD".into()];
    args.extend(rule.iter().cloned());
    iptables_present() && run("iptables", &args).is_ok()
}

fn ip(args: &[&str]) -> Result<()> {
    run("ip", args)
}

fn run<S: AsRef<std::ffi::OsStr>>(prog: &str, args: &[S]) -> Result<()> {
    let out = Command::new(prog)
        .args(args)
        .output()
        .with_context(|| format!("run {prog}"))?;
    ensure!(
        out.status.success(),
        "{prog} {}: {}",
        args.iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}
