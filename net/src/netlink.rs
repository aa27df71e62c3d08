//! A small synchronous rtnetlink client: links, addresses, routes, neighbours and FDB
//! entries, in one network namespace per socket.
//!
//! Why not `rtnetlink`: no release builds on the workspace's netlink-packet-route 0.31
//! (0.21 wants 0.30, 0.22 wants 0.32), and its async handle adds nothing here: every
//! call is one request and its answer, and a socket's namespace is fixed when it is
//! made (see `netns`), which a blocking socket opened on a scoped thread gives for free.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{Error, Result};
use crate::netns;

/// A link as netlink reports it, reduced to what this crate looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// "bridge", "vxlan", "veth", ...; `None` for a network device.
    pub kind: Option<String>,
    pub up: bool,
    /// The bridge it is enslaved to (its index).
    pub master: Option<u32>,
    /// A VXLAN device's VNI, local address and UDP port.
    pub vni: Option<u32>,
    pub vxlan_local: Option<Ipv4Addr>,
    pub vxlan_port: Option<u16>,
    pub mac: Vec<u8>,
    pub mtu: u32,
}

/// One static neighbour (`family` Inet) or FDB (`family` Bridge) entry on a link.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Neighbour {
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
}

/// A rtnetlink socket bound to one network namespace.
pub struct Netlink {
    socket: Socket,
    seq: u32,
    ns: String,
}

impl Netlink {
    /// A socket in the namespace at `path` (`None`: the caller's own).
    pub fn open(path: Option<&Path>) -> Result<Self> {
        let socket = netns::run_in(path, || -> std::io::Result<Socket> {
            let mut socket = Socket::new(NETLINK_ROUTE)?;
            socket.bind_auto()?;
            socket.connect(&SocketAddr::new(0, 0))?;
            Ok(socket)
        })??;
        Ok(Self {
            socket,
            seq: 0,
            ns: netns::label(path),
        })
    }

    /// Send one request and collect the answers: every message of a dump, or nothing
    /// for an acknowledged change.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        op: impl Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let fail = |source| Error::Netlink { op: op(), source };
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut req = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
        self.seq = self.seq.wrapping_add(1);
        req.header.flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        req.header.sequence_number = self.seq;
        req.finalize();
        let mut buf = vec![0; req.buffer_len()];
        req.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(fail)?;
        let mut out = Vec::new();
        loop {
            let (rx, _) = self.socket.recv_from_full().map_err(fail)?;
            let mut at = 0;
            while at < rx.len() {
                let msg: NetlinkMessage<RouteNetlinkMessage> =
                    NetlinkMessage::deserialize(&rx[at..]).map_err(|e| {
                        fail(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            e.to_string(),
                        ))
                    })?;
                let len = msg.header.length as usize;
                if msg.header.sequence_number != self.seq {
                    // An answer to an earlier request that gave up: skip it.
                    if len == 0 {
                        break;
                    }
                    at += len;
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(code) => Err(fail(std::io::Error::from_raw_os_error(-code.get()))),
                        }
                    }
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
                if len == 0 {
                    break;
                }
                at += len;
            }
        }
    }

    fn change(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        op: impl Fn() -> String,
    ) -> Result<()> {
        self.request(msg, flags, op).map(drop)
    }

    // ---- links ----

    pub fn links(&mut self) -> Result<Vec<Link>> {
        let ns = self.ns.clone();
        let msgs = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
            || format!("list links in {ns}"),
        )?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_of(&l)),
                _ => None,
            })
            .collect())
    }

    pub fn link(&mut self, name: &str) -> Result<Option<Link>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        let ns = self.ns.clone();
        match self.request(RouteNetlinkMessage::GetLink(msg), 0, || {
            format!("get link {name} in {ns}")
        }) {
            Ok(msgs) => Ok(msgs.iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_of(l)),
                _ => None,
            })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The link called `name`, or a `NoSuchLink` error.
    pub fn need_link(&mut self, name: &str) -> Result<Link> {
        self.link(name)?.ok_or_else(|| Error::NoSuchLink {
            name: name.to_owned(),
            netns: self.ns.clone(),
        })
    }

    fn add_link(&mut self, msg: LinkMessage, what: &str) -> Result<()> {
        let ns = self.ns.clone();
        self.change(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            || format!("add {what} in {ns}"),
        )
    }

    pub fn add_bridge(&mut self, name: &str, mtu: Option<u32>) -> Result<()> {
        let mut msg = named(name);
        if let Some(mtu) = mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.add_link(msg, &format!("bridge {name}"))
    }

    pub fn add_vxlan(&mut self, name: &str, spec: &VxlanSpec) -> Result<()> {
        let mut msg = named(name);
        msg.attributes.push(LinkAttribute::Mtu(spec.mtu));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vxlan),
            LinkInfo::Data(InfoData::Vxlan(vec![
                InfoVxlan::Id(spec.vni),
                InfoVxlan::Local(spec.local),
                InfoVxlan::Port(spec.port),
                InfoVxlan::Learning(false),
                // Answer ARP for remote tasks from the neighbour entries we install,
                // as libnetwork does: no broadcast crosses the underlay.
                InfoVxlan::Proxy(true),
                InfoVxlan::Ttl(0),
            ])),
        ]));
        self.add_link(msg, &format!("vxlan {name} (vni {})", spec.vni))
    }

    /// A veth pair: `name` here, `peer` (with `peer_mac`) created directly in the
    /// namespace `peer_ns` when given.
    pub fn add_veth(
        &mut self,
        name: &str,
        peer: &str,
        peer_ns: Option<&Path>,
        peer_mac: Option<[u8; 6]>,
        mtu: Option<u32>,
    ) -> Result<()> {
        let ns_file = peer_ns.map(std::fs::File::open).transpose()?;
        let mut peer_msg = named(peer);
        if let Some(f) = &ns_file {
            peer_msg
                .attributes
                .push(LinkAttribute::NetNsFd(f.as_raw_fd()));
        }
        if let Some(mac) = peer_mac {
            peer_msg
                .attributes
                .push(LinkAttribute::Address(mac.to_vec()));
        }
        let mut msg = named(name);
        if let Some(mtu) = mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
            peer_msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        self.add_link(msg, &format!("veth {name}/{peer}"))
    }

    fn set_link(&mut self, msg: LinkMessage, what: impl Fn() -> String) -> Result<()> {
        let ns = self.ns.clone();
        self.change(RouteNetlinkMessage::SetLink(msg), 0, || {
            format!("{} in {ns}", what())
        })
    }

    pub fn set_up(&mut self, index: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.set_link(msg, || format!("set link {index} up"))
    }

    pub fn set_up_by_name(&mut self, name: &str) -> Result<()> {
        let link = self.need_link(name)?;
        if link.up {
            return Ok(());
        }
        self.set_up(link.index)
    }

    pub fn set_master(&mut self, index: u32, master: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Controller(master));
        self.set_link(msg, || format!("enslave link {index} to {master}"))
    }

    /// Move a link into the namespace at `to`, renaming it on the way.
    pub fn move_to(&mut self, index: u32, to: &Path, new_name: &str) -> Result<()> {
        let ns = std::fs::File::open(to)?;
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
        msg.attributes
            .push(LinkAttribute::IfName(new_name.to_owned()));
        self.set_link(msg, || {
            format!("move link {index} to {} as {new_name}", to.display())
        })
    }

    pub fn del_link(&mut self, index: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        let ns = self.ns.clone();
        self.change(RouteNetlinkMessage::DelLink(msg), 0, || {
            format!("delete link {index} in {ns}")
        })
    }

    /// Delete the link called `name`; gone already is fine.
    pub fn del_link_by_name(&mut self, name: &str) -> Result<()> {
        match self.link(name)? {
            None => Ok(()),
            Some(l) => match self.del_link(l.index) {
                Err(e) if e.is_not_found() => Ok(()),
                r => r,
            },
        }
    }

    // ---- addresses and routes ----

    pub fn addrs(&mut self, index: u32) -> Result<Vec<(Ipv4Addr, u8)>> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        let ns = self.ns.clone();
        let msgs = self.request(RouteNetlinkMessage::GetAddress(msg), NLM_F_DUMP, || {
            format!("list addresses in {ns}")
        })?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => {
                    a.attributes.iter().find_map(|at| match at {
                        AddressAttribute::Address(std::net::IpAddr::V4(ip)) => {
                            Some((*ip, a.header.prefix_len))
                        }
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Give link `index` the address `ip/prefix`; already there is fine.
    pub fn ensure_addr(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<()> {
        if self.addrs(index)?.contains(&(ip, prefix)) {
            return Ok(());
        }
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(ip.into()));
        msg.attributes.push(AddressAttribute::Address(ip.into()));
        let ns = self.ns.clone();
        match self.change(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            || format!("add address {ip}/{prefix} to link {index} in {ns}"),
        ) {
            Err(e) if e.is_exists() => Ok(()),
            r => r,
        }
    }

    /// The default route via `gateway` out of link `index`, replacing any other.
    pub fn replace_default_route(&mut self, index: u32, gateway: Ipv4Addr) -> Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        msg.attributes.push(RouteAttribute::Oif(index));
        let ns = self.ns.clone();
        self.change(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
            || format!("default route via {gateway} in {ns}"),
        )
    }

    // ---- neighbours (family Inet) and FDB entries (family Bridge) ----

    /// The permanent entries on link `index`: neighbours (ip = the task's address) or,
    /// for `fdb`, VXLAN FDB entries (ip = the remote underlay address).
    pub fn neighbours(&mut self, index: u32, fdb: bool) -> Result<Vec<Neighbour>> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = family(fdb);
        let ns = self.ns.clone();
        let msgs = self.request(RouteNetlinkMessage::GetNeighbour(msg), NLM_F_DUMP, || {
            format!("list neighbours in {ns}")
        })?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n)
                    if n.header.ifindex == index
                        && n.header.family == family(fdb)
                        && permanent(n.header.state) =>
                {
                    neighbour_of(n)
                }
                _ => None,
            })
            .collect())
    }

    pub fn add_neighbour(&mut self, index: u32, fdb: bool, n: &Neighbour) -> Result<()> {
        let ns = self.ns.clone();
        self.change(
            RouteNetlinkMessage::NewNeighbour(neighbour_msg(index, fdb, n)),
            NLM_F_CREATE | NLM_F_REPLACE,
            || {
                format!(
                    "add {} {n:?} in {ns}",
                    if fdb { "fdb" } else { "neighbour" }
                )
            },
        )
    }

    pub fn del_neighbour(&mut self, index: u32, fdb: bool, n: &Neighbour) -> Result<()> {
        let ns = self.ns.clone();
        match self.change(
            RouteNetlinkMessage::DelNeighbour(neighbour_msg(index, fdb, n)),
            0,
            || {
                format!(
                    "delete {} {n:?} in {ns}",
                    if fdb { "fdb" } else { "neighbour" }
                )
            },
        ) {
            Err(e) if e.is_not_found() => Ok(()),
            r => r,
        }
    }
}

/// What a VXLAN device is made with.
pub struct VxlanSpec {
    pub vni: u32,
    pub local: Ipv4Addr,
    pub port: u16,
    pub mtu: u32,
}

fn named(name: &str) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    msg
}

fn family(fdb: bool) -> AddressFamily {
    if fdb {
        AddressFamily::Bridge
    } else {
        AddressFamily::Inet
    }
}

fn neighbour_msg(index: u32, fdb: bool, n: &Neighbour) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = family(fdb);
    msg.header.ifindex = index;
    msg.header.state = NeighbourState::Permanent;
    if fdb {
        // NTF_SELF: the entry is the VXLAN device's own table (where to tunnel a MAC),
        // not the bridge's.
        msg.header.flags = NeighbourFlags::Own;
    }
    msg.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
            n.ip,
        )));
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(n.mac.to_vec()));
    msg
}

/// FDB entries come back `PERMANENT | NOARP` (192), which the crate calls `Other`.
fn permanent(state: NeighbourState) -> bool {
    const NUD_PERMANENT: u16 = 0x80;
    u16::from(state) & NUD_PERMANENT != 0
}

fn neighbour_of(n: &NeighbourMessage) -> Option<Neighbour> {
    let ip = n.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
        // The crate parses an AF_BRIDGE entry's destination as raw bytes.
        NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => {
            <[u8; 4]>::try_from(b.as_slice()).ok().map(Ipv4Addr::from)
        }
        _ => None,
    })?;
    let mac = n.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLayerAddress(m) => <[u8; 6]>::try_from(m.as_slice()).ok(),
        _ => None,
    })?;
    Some(Neighbour { ip, mac })
}

fn link_of(l: &LinkMessage) -> Link {
    let mut link = Link {
        index: l.header.index,
        name: String::new(),
        kind: None,
        up: l.header.flags.contains(LinkFlags::Up),
        master: None,
        vni: None,
        vxlan_local: None,
        vxlan_port: None,
        mac: Vec::new(),
        mtu: 0,
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Controller(m) => link.master = Some(*m),
            LinkAttribute::Address(m) => link.mac = m.clone(),
            LinkAttribute::Mtu(m) => link.mtu = *m,
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    match i {
                        LinkInfo::Kind(k) => link.kind = Some(k.to_string()),
                        LinkInfo::Data(InfoData::Vxlan(v)) => {
                            for x in v {
                                match x {
                                    InfoVxlan::Id(id) => link.vni = Some(*id),
                                    InfoVxlan::Local(ip) => link.vxlan_local = Some(*ip),
                                    InfoVxlan::Port(p) => link.vxlan_port = Some(*p),
                                    _ => {}
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    link
}
