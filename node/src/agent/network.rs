//! The node's network manager: turns the dispatcher's [`NodeNetworks`] and each task's
//! attachments into kernel state through `swarm-net`, level-triggered (every call
//! converges from whatever is there, so a restarted swarmd adopts its own state).
//!
//! ```text
//!  set_networks(NodeNetworks) ──▶ peers of ensured overlays, VIPs of live tasks,
//!                                 DNS records; overlays no network needs: pruned
//!  prepare(task)  (before create) ──▶ netns <data>/net/tasks/<id> (lo up)
//!                                     ensure_overlay + attach eth0.. per attachment
//!                                     ensure_gwbridge + attach_gw (default route), VIPs
//!  release(task)  (terminal, again after remove) ──▶ netns removed (its interfaces go with it),
//!                                     overlays no task needs: pruned
//! ```
//!
//! Every kernel call is blocking and runs on the blocking pool under one async lock, so
//! operations on a network (and on everything else) never interleave.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use swarm_net::{
    Endpoint, GwBridge, Host, HostPort, IngressSandbox, MeshOptions, Overlay, Peer, Proto,
    PublishedPort, Vip,
};

use super::dns::Dns;
use super::netmap::{
    parse_cidr, parse_mac, IngressInfo, NetworkInfo, NodeNetworks, TaskAttachment,
};
use super::Assignment;

/// The gateway bridge's subnet on every node (Docker's `docker_gwbridge` default).
pub const GW_SUBNET: &str = "172.18.0.0/16";
/// The ingress sandbox's address on the gateway bridge (Docker's `ingress-sbox` gets
/// the first after the gateway too); never given to a task.
pub const SANDBOX_GW_ADDR: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 2);

/// What a prepared task got: the namespace to run in and its overlay addresses.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub netns: PathBuf,
    /// The first overlay address (for `/etc/hosts`), if any.
    pub addr: Option<Ipv4Addr>,
    /// Whether the task is on any overlay (then its resolver is 127.0.0.11).
    pub on_networks: bool,
}

struct State {
    nn: NodeNetworks,
    /// Tasks with a namespace, and the networks they are attached to.
    tasks: BTreeMap<String, Vec<String>>,
}

/// The mesh as made: the sandbox, the published ports, keep_source, the ingress peers.
type MeshState = (Option<IngressSandbox>, Vec<PublishedPort>, bool, Vec<Peer>);

/// What the mesh and the host-mode ports were last made into (successfully), so a
/// converge that changes nothing there makes no kernel call (each is a few `nft` and
/// `iptables` runs). None after a start: the first converge makes it whatever it was.
#[derive(Default)]
struct Applied {
    mesh: Option<MeshState>,
    host_ports: Option<Vec<HostPort>>,
    /// The sandboxes and keep_source every live task on ingress was given (a task
    /// prepared later gets them in `prepare`).
    return_paths: Option<(Vec<Ipv4Addr>, bool)>,
}

pub struct NetworkManager {
    host: Host,
    tasks_dir: PathBuf,
    gw: GwBridge,
    gw_addrs_path: PathBuf,
    state: Mutex<State>,
    applied: Mutex<Applied>,
    /// Serializes every kernel operation.
    ops: tokio::sync::Mutex<()>,
    /// Converges asked for (dispatcher updates, releases) waiting for `ops` or running,
    /// and whether one of them left shared state (peers, VIPs, overlays, the mesh) to
    /// converge: only the last one of a burst (a `stack rm`: a dozen updates and twenty
    /// releases) runs the converge, with the state they all left.
    waiting: AtomicUsize,
    converge_pending: AtomicBool,
    dns: Dns,
}

/// One converge asked for, counted in `waiting` until it is dropped (done or cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(n: &'a AtomicUsize) -> Waiting<'a> {
        n.fetch_add(1, Ordering::SeqCst);
        Waiting(n)
    }

    /// Whether nobody else waits behind this one (checked under `ops`).
    fn last(&self) -> bool {
        self.0.load(Ordering::SeqCst) == 1
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl NetworkManager {
    /// `dir` is `<data>/net`: overlay namespaces under `host/netns/`, task namespaces under
    /// `tasks/`, the gateway bridge's address book in `gw-addrs.json`.
    pub fn new(dir: &Path, upstreams: Vec<std::net::SocketAddr>) -> Arc<NetworkManager> {
        let gw = GwBridge::new(GW_SUBNET.parse().expect("a valid subnet")).expect("gateway");
        Arc::new(NetworkManager {
            host: Host::new(dir.join("host")),
            tasks_dir: dir.join("tasks"),
            gw,
            gw_addrs_path: dir.join("gw-addrs.json"),
            state: Mutex::new(State {
                nn: NodeNetworks::default(),
                tasks: BTreeMap::new(),
            }),
            applied: Mutex::new(Applied::default()),
            ops: tokio::sync::Mutex::new(()),
            waiting: AtomicUsize::new(0),
            converge_pending: AtomicBool::new(false),
            dns: Dns::new(upstreams),
        })
    }

    pub fn task_netns(&self, task_id: &str) -> PathBuf {
        self.tasks_dir.join(task_id)
    }

    /// The dispatcher's latest view: peers, VIPs and DNS follow it at once.
    pub fn set_networks(self: &Arc<Self>, nn: NodeNetworks) {
        {
            let mut st = self.state.lock().expect("network state");
            if st.nn == nn {
                return;
            }
            st.nn = nn;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let queued = Waiting::new(&me.waiting);
            let _g = me.ops.lock().await;
            let (nn, tasks) = {
                let st = me.state.lock().expect("network state");
                (st.nn.clone(), st.tasks.clone())
            };
            me.dns.set_records(&nn);
            // A later update (or release) waits: it converges the newer state.
            if !queued.last() {
                me.converge_pending.store(true, Ordering::SeqCst);
                return;
            }
            me.converge_pending.store(false, Ordering::SeqCst);
            drop(queued);
            let me2 = me.clone();
            let r = tokio::task::spawn_blocking(move || me2.converge(&nn, &tasks)).await;
            if let Ok(Err(e)) = r {
                tracing::warn!("networks: {e}");
            }
        });
    }

    /// Peers on every ensured overlay, VIPs in every live task's namespace, and no
    /// overlay that neither the managers nor a local task needs.
    fn converge(
        &self,
        nn: &NodeNetworks,
        tasks: &BTreeMap<String, Vec<String>>,
    ) -> Result<(), String> {
        let mut needed: BTreeSet<&str> = nn.networks.iter().map(|n| n.id.as_str()).collect();
        needed.extend(tasks.values().flatten().map(String::as_str));
        let mesh = self.converge_mesh(nn, tasks);
        for n in &nn.networks {
            if swarm_net::netns::is_netns(&self.host.overlay_netns(&n.id)) {
                self.host
                    .set_peers(&n.id, &peers(n))
                    .map_err(|e| format!("set peers of {}: {e}", n.name))?;
            }
        }
        for (task, nets) in tasks {
            if nets.is_empty() {
                continue;
            }
            let ns = self.task_netns(task);
            if swarm_net::netns::is_netns(&ns) {
                swarm_net::vip::set_vips(&ns, &vips(nn, nets))
                    .map_err(|e| format!("VIPs of task {task}: {e}"))?;
            }
        }
        let keep: Vec<&str> = needed.into_iter().collect();
        let removed = self
            .host
            .prune_overlays(&keep)
            .map_err(|e| format!("prune overlays: {e}"))?;
        if !removed.is_empty() {
            tracing::info!(?removed, "overlays no task needs removed");
        }
        // No overlay and no task that egresses through it (an overlay or a host-mode
        // port) any more: the gateway bridge goes too. Here and not in a release alone:
        // the last task often goes before the dispatcher drops its network (`stack rm`),
        // and then only the update that drops it finds the bridge unused.
        let gw_used = !nn.networks.is_empty()
            || tasks.values().any(|nets| !nets.is_empty())
            || nn.host_ports.iter().any(|h| tasks.contains_key(&h.task_id));
        if !gw_used && self.host.has_gwbridge().unwrap_or(false) {
            self.host
                .remove_gwbridge()
                .map_err(|e| format!("remove the gateway bridge: {e}"))?;
        }
        mesh
    }

    /// The routing mesh as the dispatcher describes it: the ingress sandbox and every
    /// published port while some service publishes one (all gone with the last), the
    /// return paths of the local tasks on ingress, and this node's host-mode ports.
    fn converge_mesh(
        &self,
        nn: &NodeNetworks,
        tasks: &BTreeMap<String, Vec<String>>,
    ) -> Result<(), String> {
        let mut result = Ok(());
        let sandbox = self.sandbox(nn);
        let want = (
            sandbox.clone(),
            published(nn),
            nn.ingress.as_ref().is_some_and(|i| i.keep_source),
            nn.ingress
                .as_ref()
                .map(|i| peers_of(nn, &i.network_id))
                .unwrap_or_default(),
        );
        let done = self.applied.lock().expect("applied").mesh.as_ref() == Some(&want);
        if !done {
            let r = match &sandbox {
                Some(sb) => {
                    let ing = nn.ingress.as_ref().expect("sandbox implies ingress");
                    self.host
                        .ensure_ingress_sandbox(sb)
                        .and_then(|_| self.host.set_peers(&ing.network_id, &want.3))
                        .and_then(|()| {
                            self.host.set_published(
                                &want.1,
                                MeshOptions {
                                    keep_source: ing.keep_source,
                                },
                            )
                        })
                        .map_err(|e| format!("routing mesh: {e}"))
                }
                None => {
                    if swarm_net::netns::is_netns(&self.host.ingress_sandbox_netns()) {
                        tracing::info!(
                            "no port published through the mesh: ingress sandbox removed"
                        );
                    }
                    self.host
                        .remove_ingress_sandbox()
                        .map_err(|e| format!("remove the ingress sandbox: {e}"))
                }
            };
            let mut applied = self.applied.lock().expect("applied");
            match r {
                Ok(()) => applied.mesh = Some(want),
                Err(e) => {
                    applied.mesh = None;
                    result = Err(e);
                }
            }
        }
        // Return paths in the tasks on ingress, when the sandboxes or the mode changed.
        if let Some(ing) = &nn.ingress {
            let want = (ing.sandboxes.clone(), ing.keep_source);
            if self.applied.lock().expect("applied").return_paths.as_ref() != Some(&want) {
                let mut ok = true;
                for (task, nets) in tasks {
                    let Some(i) = nets.iter().position(|n| *n == ing.network_id) else {
                        continue;
                    };
                    let ns = self.task_netns(task);
                    if !swarm_net::netns::is_netns(&ns) {
                        continue;
                    }
                    if let Err(e) = return_paths(&ns, i, ing) {
                        ok = false;
                        result = Err(format!("return paths of task {task}: {e}"));
                    }
                }
                self.applied.lock().expect("applied").return_paths = ok.then_some(want);
            }
        }
        if let Err(e) = self.sync_host_ports(nn, tasks) {
            result = Err(e);
        }
        result
    }

    /// This node's host-mode ports, to the local tasks' gateway-bridge addresses.
    fn sync_host_ports(
        &self,
        nn: &NodeNetworks,
        tasks: &BTreeMap<String, Vec<String>>,
    ) -> Result<(), String> {
        let book = self.gw_book();
        let host_ports: Vec<HostPort> = nn
            .host_ports
            .iter()
            .filter(|h| tasks.contains_key(&h.task_id))
            .filter_map(|h| {
                Some(HostPort {
                    proto: proto(&h.proto),
                    published: h.published,
                    target: h.target,
                    dest: *book.get(&h.task_id)?,
                })
            })
            .collect();
        if self.applied.lock().expect("applied").host_ports.as_ref() == Some(&host_ports) {
            return Ok(());
        }
        let r = self
            .host
            .set_host_ports(&host_ports)
            .map_err(|e| format!("host-mode ports: {e}"));
        self.applied.lock().expect("applied").host_ports = r.is_ok().then_some(host_ports);
        r
    }

    /// The ingress sandbox this node should have: when the mesh publishes a port and
    /// the managers gave this node its ingress address.
    fn sandbox(&self, nn: &NodeNetworks) -> Option<IngressSandbox> {
        let ing = nn.ingress.as_ref().filter(|i| !i.published.is_empty())?;
        let addr = ing.addr.clone()?;
        let info = nn.network(&ing.network_id)?;
        let overlay = overlay(nn, info).ok()?;
        Some(IngressSandbox {
            overlay,
            addr,
            gw: self.gw,
            gw_addr: format!("{SANDBOX_GW_ADDR}/{}", self.gw.subnet.prefix_len()),
        })
    }

    /// Everything the task's container needs before it is created (or, adopted after a
    /// restart, again: each step converges).
    pub async fn prepare(self: &Arc<Self>, a: &Assignment) -> Result<Prepared, String> {
        let _g = self.ops.lock().await;
        let nn = self.state.lock().expect("network state").nn.clone();
        let task = a.who.task_id.clone();
        let attachments = a.networks.clone();
        let nets: Vec<String> = attachments.iter().map(|x| x.network_id.clone()).collect();
        self.state
            .lock()
            .expect("network state")
            .tasks
            .insert(task.clone(), nets.clone());
        let me = self.clone();
        let t = task.clone();
        let res = tokio::task::spawn_blocking(move || {
            let p = me.prepare_blocking(&t, &attachments, &nn)?;
            if nn.host_ports.iter().any(|h| h.task_id == t) {
                let tasks = me.state.lock().expect("network state").tasks.clone();
                me.sync_host_ports(&nn, &tasks)?;
            }
            Ok::<_, String>(p)
        })
        .await
        .map_err(|e| format!("network setup: {e}"))?;
        let prepared = res?;
        if !nets.is_empty() {
            self.dns.serve(&task, &self.task_netns(&task), &nets)?;
        }
        Ok(prepared)
    }

    fn prepare_blocking(
        &self,
        task: &str,
        attachments: &[TaskAttachment],
        nn: &NodeNetworks,
    ) -> Result<Prepared, String> {
        let ns = self.task_netns(task);
        swarm_net::netns::create(&ns).map_err(|e| format!("network namespace: {e}"))?;
        let mut first = None;
        let mut egress = false;
        for (i, att) in attachments.iter().enumerate() {
            let info = nn.network(&att.network_id).ok_or_else(|| {
                format!("network {} is not known on this node yet", att.network_id)
            })?;
            let ov = overlay(nn, info)?;
            self.host
                .ensure_overlay(&ov)
                .map_err(|e| format!("network {}: {e}", info.name))?;
            self.host
                .set_peers(&info.id, &peers(info))
                .map_err(|e| format!("network {}: peers: {e}", info.name))?;
            let (addr, prefix) = parse_cidr(&att.addr)
                .ok_or_else(|| format!("task address {} is not IPv4 CIDR", att.addr))?;
            self.host
                .attach(
                    &info.id,
                    &Endpoint {
                        container_netns: ns.clone(),
                        ifname: format!("eth{i}"),
                        addr,
                        prefix,
                    },
                )
                .map_err(|e| format!("network {}: attach: {e}", info.name))?;
            first.get_or_insert(addr);
            egress |= !info.internal;
        }
        // A host-mode port is DNATed to the task's gateway-bridge address.
        egress |= nn.host_ports.iter().any(|h| h.task_id == task);
        if egress {
            self.host
                .ensure_gwbridge(&self.gw)
                .map_err(|e| format!("gateway bridge: {e}"))?;
            let addr = self.gw_addr(task)?;
            self.host
                .attach_gw(
                    &self.gw,
                    &Endpoint {
                        container_netns: ns.clone(),
                        ifname: format!("eth{}", attachments.len()),
                        addr,
                        prefix: self.gw.subnet.prefix_len(),
                    },
                )
                .map_err(|e| format!("gateway bridge: attach: {e}"))?;
        }
        if !attachments.is_empty() {
            let nets: Vec<String> = attachments.iter().map(|x| x.network_id.clone()).collect();
            swarm_net::vip::set_vips(&ns, &vips(nn, &nets)).map_err(|e| format!("VIPs: {e}"))?;
        }
        if let Some(ing) = nn.ingress.as_ref().filter(|i| i.keep_source) {
            if let Some(i) = attachments
                .iter()
                .position(|a| a.network_id == ing.network_id)
            {
                return_paths(&ns, i, ing).map_err(|e| format!("routing mesh return paths: {e}"))?;
            }
        }
        Ok(Prepared {
            netns: ns,
            addr: first,
            on_networks: !attachments.is_empty(),
        })
    }

    /// After the task's container is gone: its namespace (and every interface in it), its
    /// gateway address, and overlays nothing needs any more.
    ///
    /// A burst of releases (a `stack rm`, a scale down) converges once: each removes its
    /// own namespace, and only the last one queued (release or update) runs the converge
    /// (nft and iptables runs) with the state they all left.
    pub async fn release(self: &Arc<Self>, task: &str) {
        let queued = Waiting::new(&self.waiting);
        let _g = self.ops.lock().await;
        self.dns.stop(task);
        let (nn, tasks, had_networks) = {
            let mut st = self.state.lock().expect("network state");
            let nets = st.tasks.remove(task);
            (
                st.nn.clone(),
                st.tasks.clone(),
                nets.is_some_and(|n| !n.is_empty()),
            )
        };
        // A task on no network and with no host port changed nothing shared: only its
        // own namespace goes (no converge, which runs nft and iptables).
        let shared = had_networks || nn.host_ports.iter().any(|h| h.task_id == task);
        if shared {
            self.converge_pending.store(true, Ordering::SeqCst);
        }
        // Others queued behind this one: the last of them converges.
        let converge = queued.last() && self.converge_pending.swap(false, Ordering::SeqCst);
        drop(queued);
        let me = self.clone();
        let task = task.to_string();
        let r = tokio::task::spawn_blocking(move || {
            let ns = me.task_netns(&task);
            swarm_net::netns::remove(&ns).map_err(|e| format!("remove {}: {e}", ns.display()))?;
            me.free_gw_addr(&task);
            if converge {
                me.converge(&nn, &tasks)?;
            }
            Ok::<(), String>(())
        })
        .await;
        match r {
            Ok(Err(e)) => tracing::warn!("release a task's network: {e}"),
            Err(e) => tracing::warn!("release a task's network: {e}"),
            Ok(Ok(())) => {}
        }
    }

    /// Task namespaces of tasks not in `keep` (left by a crash): removed.
    pub async fn remove_strays(self: &Arc<Self>, keep: BTreeSet<String>) {
        let Ok(dir) = std::fs::read_dir(&self.tasks_dir) else {
            return;
        };
        let strays: Vec<String> = dir
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| !keep.contains(id))
            .collect();
        for id in strays {
            tracing::info!(task = %id, "removing the network namespace of a task gone");
            self.release(&id).await;
        }
    }

    /// This task's address on the gateway bridge: kept in `gw-addrs.json` so a restart
    /// finds the same one; the lowest free one for a new task.
    fn gw_addr(&self, task: &str) -> Result<Ipv4Addr, String> {
        let mut book = self.gw_book();
        if let Some(a) = book.get(task) {
            return Ok(*a);
        }
        let taken: BTreeSet<Ipv4Addr> = book.values().copied().collect();
        let addr = self
            .gw
            .subnet
            .hosts()
            .filter(|a| *a != self.gw.gateway && *a != SANDBOX_GW_ADDR)
            .find(|a| !taken.contains(a))
            .ok_or("the gateway bridge's subnet is full")?;
        book.insert(task.to_string(), addr);
        self.save_gw_book(&book)?;
        Ok(addr)
    }

    fn free_gw_addr(&self, task: &str) {
        let mut book = self.gw_book();
        if book.remove(task).is_some() {
            let _ = self.save_gw_book(&book);
        }
    }

    fn gw_book(&self) -> BTreeMap<String, Ipv4Addr> {
        std::fs::read(&self.gw_addrs_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save_gw_book(&self, book: &BTreeMap<String, Ipv4Addr>) -> Result<(), String> {
        let tmp = self.gw_addrs_path.with_extension("tmp");
        if let Some(d) = tmp.parent() {
            std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
        }
        std::fs::write(&tmp, serde_json::to_vec(book).map_err(|e| e.to_string())?)
            .and_then(|()| std::fs::rename(&tmp, &self.gw_addrs_path))
            .map_err(|e| format!("write {}: {e}", self.gw_addrs_path.display()))
    }
}

/// The host's nameservers, the embedded resolver's upstreams (it forwards from the
/// daemon's namespace, so the host's own stub resolver works too).
pub fn host_resolvers() -> Vec<std::net::SocketAddr> {
    match swarm_net::dns::ResolvConf::load_host() {
        Ok(rc) => rc.upstreams(),
        Err(e) => {
            tracing::warn!("read the host's resolv.conf: {e}");
            Vec::new()
        }
    }
}

/// The overlay of network `info` on this node.
fn overlay(nn: &NodeNetworks, info: &NetworkInfo) -> Result<Overlay, String> {
    let underlay = nn
        .local_underlay
        .ok_or("this node's underlay address is not known yet")?;
    let subnet: ipnet::Ipv4Net = info
        .subnet
        .parse()
        .map_err(|e| format!("network {}: subnet {}: {e}", info.name, info.subnet))?;
    let mut ov = Overlay::new(&info.id, info.vni, subnet, info.gateway, underlay);
    ov.data_path_port = nn.data_path_port;
    Ok(ov)
}

fn proto(p: &str) -> Proto {
    if p == "udp" {
        Proto::Udp
    } else {
        Proto::Tcp
    }
}

/// A task's replies through the sandbox each connection came from (the client's address
/// kept), or none (Docker's SNAT); `i` is its ingress interface's index.
fn return_paths(ns: &Path, i: usize, ing: &IngressInfo) -> swarm_net::Result<()> {
    if ing.keep_source {
        swarm_net::ingress::set_return_paths(ns, &format!("eth{i}"), &ing.sandboxes)
    } else {
        swarm_net::ingress::clear_return_paths(ns)
    }
}

/// Every port the mesh publishes.
fn published(nn: &NodeNetworks) -> Vec<PublishedPort> {
    nn.ingress
        .iter()
        .flat_map(|i| i.published.iter())
        .map(|p| PublishedPort {
            proto: proto(&p.proto),
            published: p.published,
            target: p.target,
            backends: p.backends.clone(),
        })
        .collect()
}

fn peers_of(nn: &NodeNetworks, id: &str) -> Vec<Peer> {
    nn.network(id).map(peers).unwrap_or_default()
}

fn peers(n: &NetworkInfo) -> Vec<Peer> {
    n.peers
        .iter()
        .map(|p| Peer {
            underlay_ip: p.underlay,
            task_ip: p.task_ip,
            task_mac: parse_mac(&p.mac).unwrap_or_else(|| swarm_net::mac_for(p.task_ip)),
        })
        .collect()
}

/// The VIPs a task on `nets` reaches: every VIP-mode service on those networks.
fn vips(nn: &NodeNetworks, nets: &[String]) -> Vec<Vip> {
    nets.iter()
        .filter_map(|id| nn.network(id))
        .flat_map(|n| n.vips.iter())
        .map(|v| Vip {
            vip: v.vip,
            ports: v.ports.iter().map(|(p, port)| (proto(p), *port)).collect(),
            backends: v.backends.clone(),
        })
        .collect()
}
