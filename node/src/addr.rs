//! The cluster port's advertise address, resolved as dockerd resolves it
//! (`daemon/cluster/listen_addr.go`): an interface name stands for its address, an
//! unspecified host (`0.0.0.0`, the default listen address) for the system's only
//! address, and an ambiguous system is refused with Docker's words.

use std::net::IpAddr;

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

/// One address of one interface, as the system lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    pub interface: String,
    pub up: bool,
    pub loopback: bool,
    /// A network device (a NIC), not a bridge, veth, tunnel or other virtual link:
    /// netlink gives it no link kind.
    pub device: bool,
    pub ip: IpAddr,
}

/// The addresses of this network namespace's interfaces, in the system's order.
pub fn system_addrs() -> Vec<IfAddr> {
    let Ok(list) = getifaddrs() else {
        return Vec::new();
    };
    let virtual_links = virtual_links().unwrap_or_else(|e| {
        tracing::debug!("list link kinds: {e}");
        Vec::new()
    });
    list.filter_map(|a| {
        let sa = a.address?;
        let ip = if let Some(v4) = sa.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else {
            IpAddr::V6(sa.as_sockaddr_in6()?.ip())
        };
        Some(IfAddr {
            device: !virtual_links.contains(&a.interface_name),
            interface: a.interface_name,
            up: a.flags.contains(InterfaceFlags::IFF_UP),
            loopback: a.flags.contains(InterfaceFlags::IFF_LOOPBACK),
            ip,
        })
    })
    .collect()
}

/// `host:port` to advertise for `addr` (a host, an interface name or an unspecified
/// host, with or without a port; the port defaults to `default_port`).
pub fn resolve_advertise(
    addr: &str,
    default_port: &str,
    system: &[IfAddr],
) -> Result<String, String> {
    let (host, port) = split_host_port(addr).unwrap_or((addr, default_port));
    let ip = if let Some(ip) = interface_addr(host, system)? {
        ip
    } else {
        match host.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => system_addr(system)?,
            Ok(ip) => ip,
            Err(_) => return Err(
                "advertise address must be a non-zero IP address or network interface (with optional port number)"
                    .into(),
            ),
        }
    };
    Ok(match ip {
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    })
}

/// The names of the links netlink gives a kind (bridge, veth, ...): everything but
/// network devices.
fn virtual_links() -> std::io::Result<Vec<String>> {
    use netlink_packet_core::{
        NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
    };
    use netlink_packet_route::link::{LinkAttribute, LinkInfo, LinkMessage};
    use netlink_packet_route::RouteNetlinkMessage;
    use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut req = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::from(RouteNetlinkMessage::GetLink(LinkMessage::default())),
    );
    req.header.flags = NLM_F_DUMP | NLM_F_REQUEST;
    req.header.sequence_number = 1;
    req.finalize();
    let mut buf = vec![0; req.buffer_len()];
    req.serialize(&mut buf);
    socket.send(&buf, 0)?;
    let bad = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let mut names = Vec::new();
    let mut rx = vec![0; 64 * 1024];
    loop {
        let size = socket.recv(&mut &mut rx[..], 0)?;
        let mut at = 0;
        while at < size {
            let msg: NetlinkMessage<RouteNetlinkMessage> =
                NetlinkMessage::deserialize(&rx[at..size]).map_err(|e| bad(e.to_string()))?;
            match msg.payload {
                NetlinkPayload::Done(_) => return Ok(names),
                NetlinkPayload::Error(e) => return Err(bad(format!("netlink: {e:?}"))),
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    let name = link.attributes.iter().find_map(|a| match a {
                        LinkAttribute::IfName(n) => Some(n.clone()),
                        _ => None,
                    });
                    let kind = link.attributes.iter().any(|a| {
                        matches!(a, LinkAttribute::LinkInfo(infos)
                            if infos.iter().any(|i| matches!(i, LinkInfo::Kind(_))))
                    });
                    if let (Some(name), true) = (name, kind) {
                        names.push(name);
                    }
                }
                _ => {}
            }
            if msg.header.length == 0 {
                break;
            }
            at += msg.header.length as usize;
        }
    }
}

/// `ip:port` of the local address this host reaches `remote` (`host:port`) from: the
/// kernel's route choice for a connected UDP socket (nothing is sent).
pub fn source_towards(remote: &str, port: &str) -> Option<String> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.connect(remote).ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then(|| match ip {
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    })
}

/// `host:port`, `[v6]:port`; `None` when there is no port.
fn split_host_port(addr: &str) -> Option<(&str, &str)> {
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some((host, port));
    }
    let (host, port) = addr.rsplit_once(':')?;
    (!host.contains(':')).then_some((host, port))
}

/// The address of interface `name` (IPv4 over IPv6); `None` if no interface has that
/// name.
fn interface_addr(name: &str, system: &[IfAddr]) -> Result<Option<IpAddr>, String> {
    let addrs: Vec<&IfAddr> = system.iter().filter(|a| a.interface == name).collect();
    if addrs.is_empty() {
        return Ok(None);
    }
    let (mut v4, mut v6): (Option<IpAddr>, Option<IpAddr>) = (None, None);
    for a in addrs {
        let (slot, kind) = if a.ip.is_ipv4() {
            (&mut v4, "IPv4")
        } else {
            (&mut v6, "IPv6")
        };
        if let Some(first) = slot {
            return Err(format!(
                "interface {name} has more than one {kind} address ({first} and {})",
                a.ip
            ));
        }
        *slot = Some(a.ip);
    }
    Ok(v4.or(v6))
}

fn global_unicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            !(ip.is_unspecified()
                || ip.is_loopback()
                || ip.is_link_local()
                || ip.is_multicast()
                || ip.is_broadcast())
        }
        IpAddr::V6(ip) => {
            !(ip.is_unspecified()
                || ip.is_loopback()
                || ip.is_multicast()
                || (ip.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// The system's only address: each up, non-loopback network device's one global
/// unicast address (IPv4 preferred), refused when there are several. With no network
/// device at all (a host that is a container or a namespace: its NICs are veths), every
/// up, non-loopback interface counts.
fn system_addr(system: &[IfAddr]) -> Result<IpAddr, String> {
    let usable = |a: &&IfAddr| a.up && !a.loopback;
    if system.iter().filter(usable).any(|a| a.device) {
        let devices: Vec<IfAddr> = system.iter().filter(|a| a.device).cloned().collect();
        return only_addr(&devices);
    }
    only_addr(system)
}

fn only_addr(system: &[IfAddr]) -> Result<IpAddr, String> {
    let mut interfaces: Vec<&str> = Vec::new();
    for a in system {
        if !interfaces.contains(&a.interface.as_str()) {
            interfaces.push(&a.interface);
        }
    }
    let mut chosen: Option<(IpAddr, &str)> = None;
    for name in interfaces {
        let addrs: Vec<&IfAddr> = system
            .iter()
            .filter(|a| a.interface == name && a.up && !a.loopback && global_unicast(&a.ip))
            .collect();
        let (mut v4, mut v6): (Option<IpAddr>, Option<IpAddr>) = (None, None);
        for a in addrs {
            let slot = if a.ip.is_ipv4() { &mut v4 } else { &mut v6 };
            if let Some(first) = slot {
                return Err(multiple_ips(name, name, *first, a.ip));
            }
            *slot = Some(a.ip);
        }
        if let Some(ip) = v4.or(v6) {
            if let Some((first, first_name)) = chosen {
                return Err(multiple_ips(first_name, name, first, ip));
            }
            chosen = Some((ip, name));
        }
    }
    chosen.map(|(ip, _)| ip).ok_or_else(|| {
        "could not find the system's IP address - specify one with --advertise-addr".into()
    })
}

fn multiple_ips(a: &str, b: &str, ip_a: IpAddr, ip_b: IpAddr) -> String {
    if a == b {
        format!("could not choose an IP address to advertise since this system has multiple addresses on interface {a} ({ip_a} and {ip_b})")
    } else {
        format!("could not choose an IP address to advertise since this system has multiple addresses on different interfaces ({ip_a} on {a} and {ip_b} on {b})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(interface: &str, ip: &str) -> IfAddr {
        IfAddr {
            interface: interface.into(),
            up: true,
            loopback: interface == "lo",
            device: !interface.starts_with("docker") && !interface.starts_with("veth"),
            ip: ip.parse().unwrap(),
        }
    }

    #[test]
    fn bridges_yield_to_network_devices_and_count_without_them() {
        let sys = [
            at("lo", "127.0.0.1"),
            at("eth0", "192.0.2.2"),
            at("docker0", "172.17.0.1"),
        ];
        assert_eq!(
            resolve_advertise("0.0.0.0:2377", "2377", &sys).unwrap(),
            "192.0.2.2:2377"
        );
        let netns = [at("lo", "127.0.0.1"), at("veth0", "10.231.1.11")];
        assert_eq!(
            resolve_advertise("0.0.0.0:2377", "2377", &netns).unwrap(),
            "10.231.1.11:2377"
        );
    }

    #[test]
    fn this_hosts_links_are_listed_with_their_kinds() {
        // Loopback is a device (no link kind); nothing here needs root.
        let sys = system_addrs();
        let lo = sys.iter().find(|a| a.interface == "lo").expect("lo listed");
        assert!(lo.loopback && lo.device, "{lo:?}");
        // Docker's bridge, where Docker is installed, is no device.
        for a in sys.iter().filter(|a| a.interface == "docker0") {
            assert!(!a.device, "{a:?}");
        }
    }

    #[test]
    fn the_only_address_is_advertised_for_an_unspecified_host() {
        let sys = [
            at("lo", "127.0.0.1"),
            at("eth0", "10.0.2.15"),
            at("eth0", "fe80::1"),
        ];
        assert_eq!(
            resolve_advertise("0.0.0.0:2377", "2377", &sys).unwrap(),
            "10.0.2.15:2377"
        );
        assert_eq!(
            resolve_advertise("0.0.0.0", "4000", &sys).unwrap(),
            "10.0.2.15:4000"
        );
    }

    #[test]
    fn interfaces_and_addresses_as_given() {
        let sys = [
            at("eth0", "10.0.2.15"),
            at("eth1", "192.168.56.10"),
            at("eth1", "fd00::1"),
        ];
        assert_eq!(
            resolve_advertise("eth1", "2377", &sys).unwrap(),
            "192.168.56.10:2377"
        );
        assert_eq!(
            resolve_advertise("eth0:4567", "2377", &sys).unwrap(),
            "10.0.2.15:4567"
        );
        assert_eq!(
            resolve_advertise("10.9.9.9:2377", "2377", &sys).unwrap(),
            "10.9.9.9:2377"
        );
        assert_eq!(
            resolve_advertise("[fd00::2]:2377", "2377", &sys).unwrap(),
            "[fd00::2]:2377"
        );
        assert_eq!(
            resolve_advertise("nosuch0", "2377", &sys).unwrap_err(),
            "advertise address must be a non-zero IP address or network interface (with optional port number)"
        );
    }

    #[test]
    fn an_ambiguous_system_is_refused_in_dockers_words() {
        let two = [at("eth0", "10.0.2.15"), at("eth1", "192.168.56.10")];
        assert_eq!(
            resolve_advertise("0.0.0.0:2377", "2377", &two).unwrap_err(),
            "could not choose an IP address to advertise since this system has multiple addresses on different interfaces (10.0.2.15 on eth0 and 192.168.56.10 on eth1)"
        );
        let one = [at("eth0", "10.0.2.15"), at("eth0", "10.0.2.16")];
        assert_eq!(
            resolve_advertise("0.0.0.0:2377", "2377", &one).unwrap_err(),
            "could not choose an IP address to advertise since this system has multiple addresses on interface eth0 (10.0.2.15 and 10.0.2.16)"
        );
        assert_eq!(
            resolve_advertise("eth0", "2377", &one).unwrap_err(),
            "interface eth0 has more than one IPv4 address (10.0.2.15 and 10.0.2.16)"
        );
        let none = [at("lo", "127.0.0.1")];
        assert_eq!(
            resolve_advertise("0.0.0.0:2377", "2377", &none).unwrap_err(),
            "could not find the system's IP address - specify one with --advertise-addr"
        );
    }

    #[test]
    fn down_interfaces_do_not_count() {
        let mut down = at("eth1", "192.168.56.10");
        down.up = false;
        let sys = [at("eth0", "10.0.2.15"), down];
        assert_eq!(
            resolve_advertise("0.0.0.0:2377", "2377", &sys).unwrap(),
            "10.0.2.15:2377"
        );
    }
}
