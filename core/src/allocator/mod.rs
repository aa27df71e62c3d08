//! The allocator: gives networks their subnets and VNIs, services their virtual IPs
//! and published ports, nodes their ingress address, and tasks their addresses —
//! swarmkit's `manager/allocator`, as a pure function of the store.
//!
//! ```text
//! allocate(store, now)
//!   PortState::build: every published port a service holds        (ports.rs)
//!   State::build: VNIs and subnets of every network; per allocated network an
//!     AddressPool with what live holders have (gateway, VIPs of services still on
//!     the network, nodes' attachments, addresses of tasks not yet ended)
//!                                                                 (level-triggered)
//!   1. networks  not allocated ──> Update(Network){DriverState VNI, IPAMOptions}
//!   2. services  vip mode: a VIP per allocated network (ingress first if it
//!                publishes through the mesh) ──> SetServiceVirtualIps
//!                Endpoint.Ports (dynamic ingress ports picked) ──> SetServiceEndpointPorts
//!                (ports only when the store has no network at all)
//!   3. nodes     an address on the allocated ingress network; attachments to
//!                networks gone dropped ──> SetNodeAttachments
//!   4. tasks     NEW, every network allocated ──> AllocateTask{attachments, PENDING}
//! ──> Allocation { actions, failures }
//! ```
//!
//! Nothing is freed explicitly: an address is in use while a task that is not past
//! RUNNING holds it, a node still in the store holds it as an attachment, or a service
//! holds it as a VIP of a network it is still on; a port while a service holds it. A new
//! leader (or the same one after a restart) rebuilds the same view from the store, so
//! it never hands out a live address. Services and tasks only use networks the store
//! already holds as allocated: an entry that allocated a network and was refused can
//! leave no task with an address in a subnet nobody recorded.
//!
//! The leader calls it after the orchestrators and before the scheduler (tasks that
//! need networks are made NEW and only become PENDING here), proposes the actions, and
//! calls it again on the next applied entry. Run it on an applied store only, and not
//! again before its entry is applied: two passes over one view hand out the same
//! addresses (the store keeps a task's first attachments, so a second is dropped).

pub mod ipam;
pub mod networks;
pub mod ports;
pub mod vni;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Utc};

use crate::model::{
    EndpointVirtualIp, Network, NetworkAttachment, Node, ResolutionMode, Service, Task,
    DEFAULT_ADDR_POOL, DEFAULT_SUBNET_SIZE, OVERLAY_DRIVER,
};
use crate::orchestrator::task::PENDING_MESSAGE;
use crate::state::TaskState;
use crate::store::{
    network_subnets, publishes_ingress, spec_networks, task_status, ObjectKind, Store, StoreAction,
};
use ipam::{parse_addr, parse_cidr_addr, AddressPool, Subnet};
pub use networks::ingress_network_spec;
use ports::PortState;

/// libnetwork's words when a subnet has no address left.
pub const NO_ADDRESS: &str = "No available addresses on this pool";

/// What one pass decided: the writes (networks first, then services, then tasks; may
/// be proposed as one entry or split in that order), and what could not be allocated
/// and why (left as it is; the next pass tries again).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Allocation {
    pub actions: Vec<StoreAction>,
    pub failures: Vec<Failure>,
}

impl Allocation {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.failures.is_empty()
    }
}

/// An object the pass could not allocate, and Docker's words for why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: ObjectKind,
    pub id: String,
    pub error: String,
}

/// Decides every allocation the store is missing at `now` (the time is only stamped on
/// task statuses).
pub fn allocate(store: &Store, now: DateTime<Utc>) -> Allocation {
    let mut out = Allocation::default();
    let mut ports = PortState::build(store.services());
    // No network: ports only, attachments dropped (and no pass over every task).
    if store.networks().next().is_none() {
        for service in store.services() {
            allocate_ports(&mut ports, service, &mut out);
        }
        for node in store.nodes().filter(|n| !n.attachments.is_empty()) {
            out.actions.push(StoreAction::SetNodeAttachments {
                id: node.meta.id.clone(),
                attachments: Vec::new(),
            });
        }
        return out;
    }
    let mut state = State::build(store);
    allocate_networks(store, &mut state, &mut out);
    for service in store.services() {
        allocate_service(store, &mut state, service, &mut out);
        allocate_ports(&mut ports, service, &mut out);
    }
    for node in store.nodes() {
        allocate_node(store, &mut state, node, &mut out);
    }
    for task in store.tasks().filter(|t| needs_allocation(t)) {
        allocate_task(store, &mut state, task, now, &mut out);
    }
    out
}

/// A task the allocator still has to attach and move to PENDING.
pub fn needs_allocation(task: &Task) -> bool {
    task.status.state == TaskState::New && task.desired_state <= TaskState::Running
}

/// Whether a task holds its addresses: until it ends (swarmkit frees them once the
/// observed state is past RUNNING, or the task is deleted).
pub fn holds_addresses(task: &Task) -> bool {
    task.status.state <= TaskState::Running
}

/// The allocator's view of the store: what is taken.
struct State {
    /// Pools (address spaces) subnets are cut from, and the size of those subnets.
    pools: Vec<Subnet>,
    subnet_size: u8,
    /// Every network's subnets (asked or allocated), by network ID.
    subnets: BTreeMap<String, Vec<Subnet>>,
    vnis: BTreeSet<u32>,
    /// The addresses of each network the store holds as allocated.
    addresses: BTreeMap<String, Vec<AddressPool>>,
}

impl State {
    fn build(store: &Store) -> State {
        let (pools, subnet_size) = match store.cluster() {
            Some(c) => (c.cluster.addr_pools(), c.cluster.subnet_size_or_default()),
            None => (vec![DEFAULT_ADDR_POOL.to_owned()], DEFAULT_SUBNET_SIZE),
        };
        let mut state = State {
            pools: pools.iter().filter_map(|p| Subnet::parse(p)).collect(),
            subnet_size: u8::try_from(subnet_size).unwrap_or(u8::MAX),
            subnets: BTreeMap::new(),
            vnis: BTreeSet::new(),
            addresses: BTreeMap::new(),
        };
        for n in store.networks() {
            state.subnets.insert(n.id().to_owned(), network_subnets(n));
            state.vnis.extend(n.vni());
            if n.is_allocated() {
                state.addresses.insert(n.id().to_owned(), address_pools(n));
            }
        }
        for s in store.services() {
            let wanted: HashSet<String> = vip_networks(store, s)
                .into_iter()
                .map(|n| n.meta.id.clone())
                .collect();
            for vip in &s.endpoint.virtual_ips {
                if wanted.contains(&vip.network_id) {
                    state.reserve(&vip.network_id, &vip.addr);
                }
            }
        }
        for node in store.nodes() {
            for a in &node.attachments {
                for addr in &a.addresses {
                    state.reserve(a.network.id(), addr);
                }
            }
        }
        for t in store.tasks().filter(|t| holds_addresses(t)) {
            for a in &t.networks_attachments {
                for addr in &a.addresses {
                    state.reserve(a.network.id(), addr);
                }
            }
        }
        state
    }

    /// Marks `addr` (CIDR or bare) used in network `id`. A holder whose address is
    /// not in the network's subnets (stale) holds nothing.
    fn reserve(&mut self, id: &str, addr: &str) -> bool {
        let (Some(pools), Some(addr)) = (self.addresses.get_mut(id), parse_cidr_addr(addr)) else {
            return false;
        };
        pools
            .iter_mut()
            .find(|p| p.subnet().contains(addr))
            .is_some_and(|p| p.reserve(addr))
    }

    /// Whether `addr` belongs to network `id`'s subnets.
    fn in_network(&self, id: &str, addr: &str) -> bool {
        let (Some(pools), Some(addr)) = (self.addresses.get(id), parse_cidr_addr(addr)) else {
            return false;
        };
        pools.iter().any(|p| p.subnet().contains(addr))
    }

    /// A free address of network `id`, CIDR: from its first subnet with one left.
    fn allocate_address(&mut self, id: &str) -> Result<String, String> {
        let pools = self
            .addresses
            .get_mut(id)
            .ok_or_else(|| format!("network {id} not allocated yet"))?;
        pools
            .iter_mut()
            .find_map(|p| p.allocate().map(|a| p.subnet().cidr(a)))
            .ok_or_else(|| NO_ADDRESS.to_owned())
    }
}

/// The address pools of an allocated network, one per IPAM config.
fn address_pools(n: &Network) -> Vec<AddressPool> {
    let configs = n.ipam_options.iter().flat_map(|o| o.configs.iter());
    configs
        .filter_map(|c| {
            let subnet = Subnet::parse(&c.subnet)?;
            let range = Subnet::parse(&c.range).filter(|r| subnet.contains_subnet(r));
            let gateway = parse_addr(&c.gateway);
            Some(AddressPool::new(subnet, range, gateway))
        })
        .collect()
}

/// Step 1: every overlay network without its subnets or VNI gets them.
fn allocate_networks(store: &Store, state: &mut State, out: &mut Allocation) {
    for n in store.networks() {
        if n.is_allocated() || n.driver_name() != OVERLAY_DRIVER {
            continue;
        }
        let taken: Vec<Subnet> = state
            .subnets
            .iter()
            .filter(|(id, _)| *id != n.id())
            .flat_map(|(_, s)| s.iter().copied())
            .collect();
        let result = networks::ipam_configs(&n.spec, &state.pools, state.subnet_size, &taken)
            .and_then(|configs| {
                let vni = match n.vni() {
                    Some(v) => v,
                    None => vni::allocate_vni(&mut state.vnis)
                        .ok_or_else(|| networks::NO_VNI.to_owned())?,
                };
                Ok(networks::allocated(n, vni, configs))
            });
        match result {
            Ok(allocated) => {
                // Later networks of this pass must not take these subnets.
                state
                    .subnets
                    .insert(n.id().to_owned(), network_subnets(&allocated));
                out.actions
                    .push(StoreAction::Update(crate::store::Object::Network(
                        Box::new(allocated),
                    )));
            }
            Err(error) => out.failures.push(Failure {
                kind: ObjectKind::Network,
                id: n.id().to_owned(),
                error,
            }),
        }
    }
}

/// The networks a service's tasks attach to, as stored: `ingress` first when the
/// service publishes through the mesh, then its own (targets that name no network are
/// left out, as swarmkit does), each once.
fn task_networks<'a>(
    store: &'a Store,
    service: &Service,
    task: Option<&'a Task>,
) -> Vec<&'a Network> {
    let mut out: Vec<&Network> = Vec::new();
    if publishes_ingress(&service.spec) {
        out.extend(store.networks().find(|n| n.spec.ingress));
    }
    let targets = match task {
        Some(t) if !t.spec.networks.is_empty() => &t.spec.networks[..],
        _ => spec_networks(&service.spec),
    };
    for a in targets {
        if let Some(n) = store.resolve_network(&a.target) {
            if !out.iter().any(|o| o.id() == n.id()) {
                out.push(n);
            }
        }
    }
    out
}

/// The networks a service gets a VIP on: its tasks' networks, in VIP mode only.
fn vip_networks<'a>(store: &'a Store, service: &Service) -> Vec<&'a Network> {
    let dnsrr = service
        .spec
        .endpoint_spec
        .as_ref()
        .is_some_and(|e| e.mode == Some(ResolutionMode::Dnsrr));
    if dnsrr {
        return Vec::new();
    }
    task_networks(store, service, None)
}

/// Step 2: a VIP on each allocated network the service is on; VIPs of networks it
/// left are dropped (and so freed).
fn allocate_service(store: &Store, state: &mut State, service: &Service, out: &mut Allocation) {
    let mut vips = Vec::new();
    for n in vip_networks(store, service) {
        if !state.addresses.contains_key(n.id()) {
            continue; // not allocated yet: the next pass
        }
        let kept = service
            .endpoint
            .virtual_ips
            .iter()
            .find(|v| v.network_id == n.meta.id && state.in_network(n.id(), &v.addr));
        match kept {
            Some(v) => vips.push(v.clone()),
            None => match state.allocate_address(n.id()) {
                Ok(addr) => vips.push(EndpointVirtualIp {
                    network_id: n.meta.id.clone(),
                    addr,
                }),
                Err(error) => out.failures.push(Failure {
                    kind: ObjectKind::Service,
                    id: service.meta.id.clone(),
                    error,
                }),
            },
        }
    }
    if vips != service.endpoint.virtual_ips {
        out.actions.push(StoreAction::SetServiceVirtualIps {
            id: service.meta.id.clone(),
            virtual_ips: vips,
        });
    }
}

/// Step 2, ports: the service's `Endpoint.Ports` and `Endpoint.Spec`, written when
/// they differ from the stored ones.
fn allocate_ports(ports: &mut PortState, service: &Service, out: &mut Allocation) {
    let spec = service.spec.endpoint_spec.clone().unwrap_or_default();
    match ports.endpoint_ports(service) {
        Ok(p) => {
            if p != service.endpoint.ports || spec != service.endpoint.spec {
                out.actions.push(StoreAction::SetServiceEndpointPorts {
                    id: service.meta.id.clone(),
                    spec,
                    ports: p,
                });
            }
        }
        Err(error) => out.failures.push(Failure {
            kind: ObjectKind::Service,
            id: service.meta.id.clone(),
            error,
        }),
    }
}

/// Step 3: the node keeps its attachments to networks that still exist (with an
/// address in them once allocated) and gets one on the allocated ingress network
/// (swarmkit's per-node ingress "LB" attachment, which the routing mesh uses).
fn allocate_node(store: &Store, state: &mut State, node: &Node, out: &mut Allocation) {
    let mut attachments: Vec<NetworkAttachment> = node
        .attachments
        .iter()
        .filter(|a| {
            let id = a.network.id();
            store.network(id).is_some()
                && (!state.addresses.contains_key(id)
                    || (!a.addresses.is_empty()
                        && a.addresses.iter().all(|addr| state.in_network(id, addr))))
        })
        .cloned()
        .collect();
    let ingress = store
        .networks()
        .find(|n| n.spec.ingress && state.addresses.contains_key(n.id()));
    if let Some(ingress) = ingress {
        if !attachments.iter().any(|a| a.network.id() == ingress.id()) {
            match state.allocate_address(ingress.id()) {
                Ok(addr) => attachments.push(NetworkAttachment {
                    network: ingress.clone(),
                    addresses: vec![addr],
                }),
                Err(error) => out.failures.push(Failure {
                    kind: ObjectKind::Node,
                    id: node.meta.id.clone(),
                    error,
                }),
            }
        }
    }
    if attachments != node.attachments {
        out.actions.push(StoreAction::SetNodeAttachments {
            id: node.meta.id.clone(),
            attachments,
        });
    }
}

/// Step 4: a NEW task gets an address on each of its networks and moves to PENDING,
/// once all of them are allocated. If one has no address left, the task stays NEW
/// with the reason in `Status.Err`.
fn allocate_task(
    store: &Store,
    state: &mut State,
    task: &Task,
    now: DateTime<Utc>,
    out: &mut Allocation,
) {
    let Some(service) = store.service(&task.service_id) else {
        return; // the orchestrator removes it
    };
    let networks = task_networks(store, service, Some(task));
    if networks
        .iter()
        .any(|n| !state.addresses.contains_key(n.id()))
    {
        return; // a network not allocated yet: the next pass
    }
    let mut attachments = Vec::with_capacity(networks.len());
    for n in networks {
        match state.allocate_address(n.id()) {
            Ok(addr) => attachments.push(NetworkAttachment {
                network: n.clone(),
                addresses: vec![addr],
            }),
            Err(error) => {
                if task.status.err != error {
                    let mut status = task.status.clone();
                    status.err = error.clone();
                    status.timestamp = now;
                    out.actions.push(StoreAction::SetTaskStatus {
                        id: task.meta.id.clone(),
                        status,
                    });
                }
                out.failures.push(Failure {
                    kind: ObjectKind::Task,
                    id: task.meta.id.clone(),
                    error,
                });
                return;
            }
        }
    }
    out.actions.push(StoreAction::AllocateTask {
        id: task.meta.id.clone(),
        networks_attachments: attachments,
        status: task_status(TaskState::Pending, PENDING_MESSAGE, now),
    });
}
