//! The routing mesh's kernel path on one node, shaped like libnetwork's
//! `service_linux.go` / `ingress_sbox` (IPVS replaced by nftables `numgen inc`, which
//! these kernels have; IPVS they do not):
//!
//! ```text
//!  client ──▶ host eth0 10.0.0.1:P          (table ip swarm_mesh, host netns)
//!               prerouting/output: fib daddr type local tcp dport P dnat to 172.18.0.2:P
//!               postrouting: oifname sw_gwbridge fib saddr type local masquerade
//!             sw_gwbridge ──▶ ingress_sbox eth1 172.18.0.2  (table ip swarm, sandbox)
//!               prerouting: ip daddr 172.18.0.2 tcp dport P dnat to numgen inc mod N map {..} : T
//!               postrouting: oifname eth0 ct status dnat snat to 10.255.0.2  (not with keep_source)
//!             eth0 10.255.0.2 ══ ingress overlay (VXLAN) ══▶ task eth0 10.255.0.5:T
//! ```
//! Replies retrace the path through the conntrack entries of the sandbox and the host
//! that received the connection. With [`MeshOptions::keep_source`] the task sees the
//! client's own address; its replies then need [`set_return_paths`] in the task's
//! namespace to go back to that sandbox instead of out of the task's default route.
//!
//! Host-mode ports ([`Host::set_host_ports`]) are plain DNAT to a local task's
//! gateway-bridge address in `table ip swarm_ports`. Every table here is replaced whole
//! in one `nft -f` transaction, and deleted when its list is empty.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::gwbridge::{GwBridge, GWBRIDGE};
use crate::netlink::Netlink;
use crate::overlay::{mac_for, Endpoint, Overlay};
use crate::vip::Proto;
use crate::{netns, nft, Host};

/// The sandbox's pinned name under `<run_dir>/netns/`, as Docker names it.
pub const SANDBOX: &str = "ingress_sbox";
/// The host's table for published (ingress) ports.
pub const MESH_TABLE: &str = "swarm_mesh";
/// The host's table for host-mode ports.
pub const PORTS_TABLE: &str = "swarm_ports";
/// The task's table marking connections that came through a sandbox.
pub const RETURN_TABLE: &str = "swarm_return";
/// The `ip rule` priority of every return-path rule (before `main` at 32766).
pub const RETURN_RULE_PREF: u32 = 20000;
/// The sandbox's interface on the ingress overlay and on the gateway bridge.
const SANDBOX_INGRESS_IF: &str = "eth0";
const SANDBOX_GW_IF: &str = "eth1";
/// The comment on our iptables FORWARD accepts for DNATed traffic.
const IPTABLES_COMMENT: &str = "swarm-dnat";

/// The node's end of the ingress network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressSandbox {
    /// The ingress overlay network.
    pub overlay: Overlay,
    /// The node's address on it, as a CIDR (`10.255.0.2/16`).
    pub addr: String,
    pub gw: GwBridge,
    /// The sandbox's address on the gateway bridge, as a CIDR (`172.18.0.2/16`).
    pub gw_addr: String,
}

/// A port published through the routing mesh: `published` on every node goes to
/// `target` on one of `backends` (the tasks' ingress addresses), new connections in
/// turn. No backends: refused (TCP reset, ICMP port unreachable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    pub proto: Proto,
    pub published: u16,
    pub target: u16,
    pub backends: Vec<Ipv4Addr>,
}

/// A host-mode port: `published` on this node goes to `dest:target`, `dest` being the
/// local task's address on the gateway bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPort {
    pub proto: Proto,
    pub published: u16,
    pub target: u16,
    pub dest: Ipv4Addr,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeshOptions {
    /// Beyond Docker (moby#25526): traffic from outside the node reaches the task
    /// with the client's address. Needs [`set_return_paths`] in every task of the
    /// published services. Traffic the node sends itself is still masqueraded.
    pub keep_source: bool,
}

fn cidr(what: &'static str, s: &str) -> Result<(Ipv4Addr, u8)> {
    let net: ipnet::Ipv4Net = s.parse().map_err(|_| Error::Invalid {
        what,
        value: s.to_owned(),
    })?;
    Ok((net.addr(), net.prefix_len()))
}

impl Host {
    /// Where the ingress sandbox is pinned: `<run_dir>/netns/ingress_sbox`.
    pub fn ingress_sandbox_netns(&self) -> PathBuf {
        self.netns_dir().join(SANDBOX)
    }

    /// Make (or complete, or confirm) the ingress sandbox: the ingress overlay, the
    /// gateway bridge, the namespace with `eth0` on the overlay and `eth1` on the
    /// bridge (default route), IPv4 forwarding on. Returns the namespace's path.
    pub fn ensure_ingress_sandbox(&self, sb: &IngressSandbox) -> Result<PathBuf> {
        let (addr, prefix) = cidr("ingress sandbox address", &sb.addr)?;
        let (gw_addr, gw_prefix) = cidr("ingress sandbox gateway-bridge address", &sb.gw_addr)?;
        self.ensure_overlay(&sb.overlay)?;
        self.ensure_gwbridge(&sb.gw)?;
        let ns = self.ingress_sandbox_netns();
        netns::create(&ns)?;
        let ep = |ifname: &str, addr, prefix| Endpoint {
            container_netns: ns.clone(),
            ifname: ifname.to_owned(),
            addr,
            prefix,
        };
        self.attach(
            &sb.overlay.network_id,
            &ep(SANDBOX_INGRESS_IF, addr, prefix),
        )?;
        self.attach_gw(&sb.gw, &ep(SANDBOX_GW_IF, gw_addr, gw_prefix))?;
        netns::run_in(Some(&ns), || -> std::io::Result<()> {
            std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")?;
            // Replies to clients leave by eth1 (the default route) for packets that
            // came in by eth0 and the other way round: loose mode, never strict.
            for conf in ["all", SANDBOX_INGRESS_IF, SANDBOX_GW_IF] {
                std::fs::write(format!("/proc/sys/net/ipv4/conf/{conf}/rp_filter"), "2")?;
            }
            Ok(())
        })??;
        Ok(ns)
    }

    /// Remove the sandbox (its interfaces and veth pairs go with it) and the mesh's
    /// host table and iptables accepts. Gone already is fine. The overlay and the
    /// gateway bridge stay: `remove_overlay`/`remove_gwbridge` take them.
    pub fn remove_ingress_sandbox(&self) -> Result<()> {
        self.set_published(&[], MeshOptions::default())?;
        netns::remove(&self.ingress_sandbox_netns())
    }

    /// Make the routing mesh exactly `ports`: the host's `table ip swarm_mesh` and the
    /// sandbox's `table ip swarm`, each replaced whole; an empty list deletes both and
    /// our iptables accepts. The sandbox's addresses are read back from its links.
    pub fn set_published(&self, ports: &[PublishedPort], opts: MeshOptions) -> Result<()> {
        let sbx = self.ingress_sandbox_netns();
        if ports.is_empty() {
            delete_table(self.netns(), MESH_TABLE)?;
            if netns::is_netns(&sbx) {
                delete_table(Some(&sbx), nft::TABLE)?;
            }
            return self.sync_iptables();
        }
        if !netns::is_netns(&sbx) {
            return Err(Error::Invalid {
                what: "published ports (no ingress sandbox on this node)",
                value: sbx.display().to_string(),
            });
        }
        let mut nl = Netlink::open(Some(&sbx))?;
        let addr_of = |nl: &mut Netlink, ifname: &str| -> Result<(Ipv4Addr, u8)> {
            let link = nl.need_link(ifname)?;
            nl.addrs(link.index)?
                .first()
                .copied()
                .ok_or_else(|| Error::NoSuchLink {
                    name: format!("{ifname} (no address)"),
                    netns: sbx.display().to_string(),
                })
        };
        let (ingress_ip, _) = addr_of(&mut nl, SANDBOX_INGRESS_IF)?;
        let (gw_ip, gw_prefix) = addr_of(&mut nl, SANDBOX_GW_IF)?;
        let gw_net = ipnet::Ipv4Net::new(gw_ip, gw_prefix)
            .map_err(|e| Error::Invalid {
                what: "sandbox gateway-bridge prefix",
                value: e.to_string(),
            })?
            .trunc();
        route_localnet(self.netns())?;
        let dnats: Vec<(Proto, u16, String)> = ports
            .iter()
            .map(|p| (p.proto, p.published, format!("{gw_ip}:{}", p.published)))
            .collect();
        nft::apply_script(self.netns(), &host_table(MESH_TABLE, &dnats))?;
        nft::apply_script(
            Some(&sbx),
            &sandbox_table(ports, ingress_ip, gw_ip, gw_net, opts),
        )?;
        self.sync_iptables()
    }

    /// Make the host-mode ports exactly `ports` (`table ip swarm_ports`, replaced
    /// whole; empty: deleted). Needs the gateway bridge.
    pub fn set_host_ports(&self, ports: &[HostPort]) -> Result<()> {
        if ports.is_empty() {
            delete_table(self.netns(), PORTS_TABLE)?;
        } else {
            route_localnet(self.netns())?;
            let dnats: Vec<(Proto, u16, String)> = ports
                .iter()
                .map(|p| (p.proto, p.published, format!("{}:{}", p.dest, p.target)))
                .collect();
            nft::apply_script(self.netns(), &host_table(PORTS_TABLE, &dnats))?;
        }
        self.sync_iptables()
    }

    /// Our iptables FORWARD accepts for traffic DNATed onto the gateway bridge, there
    /// exactly while one of our DNAT tables is (and only where FORWARD drops by
    /// policy, as in `gwbridge.rs`).
    fn sync_iptables(&self) -> Result<()> {
        let ours = nft::tables(self.netns())?
            .iter()
            .any(|(f, n)| f == "ip" && (n == MESH_TABLE || n == PORTS_TABLE));
        let accepts: [&[&str]; 2] = [
            &[
                "-o",
                GWBRIDGE,
                "-m",
                "conntrack",
                "--ctstate",
                "DNAT",
                "-m",
                "comment",
                "--comment",
                IPTABLES_COMMENT,
                "-j",
                "ACCEPT",
            ],
            &[
                "-i",
                GWBRIDGE,
                "-m",
                "conntrack",
                "--ctstate",
                "DNAT",
                "-m",
                "comment",
                "--comment",
                IPTABLES_COMMENT,
                "-j",
                "ACCEPT",
            ],
        ];
        self.iptables_forward(&accepts, ours)
    }
}

/// `route_localnet=1` on the gateway bridge: 127.0.0.1:P DNATed out of it
/// (Docker sets the same on docker_gwbridge).
fn route_localnet(ns: Option<&Path>) -> Result<()> {
    netns::run_in(ns, || {
        std::fs::write(
            format!("/proc/sys/net/ipv4/conf/{GWBRIDGE}/route_localnet"),
            "1",
        )
    })?
    .map_err(|e| Error::NoSuchLink {
        name: format!("{GWBRIDGE} ({e})"),
        netns: netns::label(ns),
    })
}

fn delete_table(ns: Option<&Path>, name: &str) -> Result<()> {
    nft::apply_script(
        ns,
        &format!("add table ip {name}\ndelete table ip {name}\n"),
    )
}

/// A script that replaces `table ip NAME` whole: what it begins with.
fn fresh(name: &str) -> String {
    format!("add table ip {name}\ndelete table ip {name}\ntable ip {name} {{\n")
}

/// The host's DNAT table (mesh or host-mode): `(proto, published, "ip:port")`.
fn host_table(name: &str, dnats: &[(Proto, u16, String)]) -> String {
    let mut s = fresh(name);
    for (chain, hook) in [("prerouting", "prerouting"), ("output", "output")] {
        let _ = writeln!(
            s,
            "  chain {chain} {{\n    type nat hook {hook} priority -100; policy accept;"
        );
        for (proto, published, to) in dnats {
            let _ = writeln!(
                s,
                "    fib daddr type local {} dport {published} dnat to {to}",
                proto.name()
            );
        }
        s.push_str("  }\n");
    }
    // The node's own connections (127.0.0.1 and its own addresses as source) leave
    // with the bridge's address, so that the replies come back here; a task on this
    // node reaching a published port through the host hairpins the same way.
    let _ = writeln!(
        s,
        "  chain postrouting {{\n    type nat hook postrouting priority 100; policy accept;\n    \
         oifname \"{GWBRIDGE}\" fib saddr type local masquerade\n    \
         iifname \"{GWBRIDGE}\" oifname \"{GWBRIDGE}\" ct status dnat masquerade\n  }}\n}}"
    );
    s
}

/// The sandbox's `table ip swarm`: balance, refuse, SNAT, clamp the MSS.
fn sandbox_table(
    ports: &[PublishedPort],
    ingress_ip: Ipv4Addr,
    gw_ip: Ipv4Addr,
    gw_net: ipnet::Ipv4Net,
    opts: MeshOptions,
) -> String {
    let mut s = fresh(nft::TABLE);
    s.push_str(
        "  chain prerouting {\n    type nat hook prerouting priority -100; policy accept;\n",
    );
    for p in ports.iter().filter(|p| !p.backends.is_empty()) {
        let map: Vec<String> = p
            .backends
            .iter()
            .enumerate()
            .map(|(i, b)| format!("{i} : {b}"))
            .collect();
        let _ = writeln!(
            s,
            "    iifname \"{SANDBOX_GW_IF}\" ip daddr {gw_ip} {} dport {} dnat to numgen inc mod {} map {{ {} }} : {}",
            p.proto.name(),
            p.published,
            p.backends.len(),
            map.join(", "),
            p.target
        );
    }
    s.push_str("  }\n");
    // A port without tasks: nothing DNATs it, so it is for the sandbox itself.
    s.push_str("  chain input {\n    type filter hook input priority 0; policy accept;\n");
    for p in ports.iter().filter(|p| p.backends.is_empty()) {
        let reject = match p.proto {
            Proto::Tcp => "reject with tcp reset",
            Proto::Udp => "reject",
        };
        let _ = writeln!(s, "    {} dport {} {reject}", p.proto.name(), p.published);
    }
    s.push_str("  }\n");
    // The overlay's MTU (1450) is below the bridge's (1500): clamp the MSS.
    s.push_str(
        "  chain forward {\n    type filter hook forward priority -150; policy accept;\n    \
         tcp flags syn tcp option maxseg size set rt mtu\n  }\n",
    );
    s.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n",
    );
    let only_local = if opts.keep_source {
        // The node's own traffic arrives masqueraded to the bridge's gateway: that
        // address means nothing to a task on another node, so it still gets ours.
        format!(" ip saddr {gw_net}")
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "    oifname \"{SANDBOX_INGRESS_IF}\" ct status dnat{only_local} snat to {ingress_ip}\n  }}\n}}"
    );
    s
}

/// The mark (and routing table) of replies that go back through the sandbox at
/// `sandbox`: its address as a number, stable whatever the order of the list.
pub fn return_mark(sandbox: Ipv4Addr) -> u32 {
    u32::from(sandbox)
}

/// In a task's namespace, send replies to connections that came through the sandbox
/// of node X back to that sandbox (needed with `keep_source`, where they are
/// addressed to the client and would otherwise leave by the default route):
///
/// ```text
/// table ip swarm_return {
///   chain prerouting { type filter hook prerouting priority -150;
///     iifname "eth0" ct state new ct mark set ether saddr map { 02:42:0a:ff:00:02 : 0x0aff0002, .. } }
///   chain output { type route hook output priority -150;
///     ct mark != 0 meta mark set ct mark }          # re-routed when the mark changes
/// }
/// ip rule pref 20000 fwmark 0x0aff0002 lookup 184483842
/// ip route table 184483842: default via 10.255.0.2 dev eth0
/// ```
/// Sandboxes are known by their source MAC (every endpoint's MAC is `02:42:<ip>`).
/// `rp_filter` on `ingress_ifname` is set loose (2): the client's address routes out
/// of the other interface. Converges; an empty list removes all of it.
pub fn set_return_paths(
    task_netns: &Path,
    ingress_ifname: &str,
    sandboxes: &[Ipv4Addr],
) -> Result<()> {
    let ns = Some(task_netns);
    let want: BTreeSet<Ipv4Addr> = sandboxes.iter().copied().collect();
    if want.is_empty() {
        delete_table(ns, RETURN_TABLE)?;
    } else {
        netns::run_in(ns, || {
            std::fs::write(
                format!("/proc/sys/net/ipv4/conf/{ingress_ifname}/rp_filter"),
                "2",
            )
        })?
        .map_err(|e| Error::NoSuchLink {
            name: format!("{ingress_ifname} ({e})"),
            netns: task_netns.display().to_string(),
        })?;
        let map: Vec<String> = want
            .iter()
            .map(|ip| {
                let mac: Vec<String> = mac_for(*ip).iter().map(|b| format!("{b:02x}")).collect();
                format!("{} : {:#010x}", mac.join(":"), return_mark(*ip))
            })
            .collect();
        let mut s = fresh(RETURN_TABLE);
        let _ = write!(
            s,
            "  chain prerouting {{\n    type filter hook prerouting priority -150; policy accept;\n    \
             iifname \"{ingress_ifname}\" ct state new ct mark set ether saddr map {{ {} }}\n  }}\n  \
             chain output {{\n    type route hook output priority -150; policy accept;\n    \
             ct mark != 0 meta mark set ct mark\n  }}\n}}\n",
            map.join(", ")
        );
        nft::apply_script(ns, &s)?;
    }
    // Rules: ours are those at our priority; keep the wanted, delete the rest.
    let have = return_rules(task_netns)?;
    for (mark, table) in &have {
        let keep = want.iter().any(|ip| return_mark(*ip) == *mark) && mark == table;
        if !keep {
            ip(
                task_netns,
                &[
                    "rule",
                    "del",
                    "pref",
                    &RETURN_RULE_PREF.to_string(),
                    "fwmark",
                    &mark.to_string(),
                    "lookup",
                    &table.to_string(),
                ],
            )?;
            ip(task_netns, &["route", "flush", "table", &table.to_string()])?;
        }
    }
    for sbx in &want {
        let k = return_mark(*sbx).to_string();
        ip(
            task_netns,
            &[
                "route",
                "replace",
                "default",
                "via",
                &sbx.to_string(),
                "dev",
                ingress_ifname,
                "table",
                &k,
            ],
        )?;
        if !have.iter().any(|(m, t)| *m == return_mark(*sbx) && m == t) {
            ip(
                task_netns,
                &[
                    "rule",
                    "add",
                    "pref",
                    &RETURN_RULE_PREF.to_string(),
                    "fwmark",
                    &k,
                    "lookup",
                    &k,
                ],
            )?;
        }
    }
    Ok(())
}

/// Remove every return path from a task's namespace.
pub fn clear_return_paths(task_netns: &Path) -> Result<()> {
    set_return_paths(task_netns, "", &[])
}

/// Our `ip rule`s in the namespace: (fwmark, table) of those at [`RETURN_RULE_PREF`].
pub fn return_rules(ns: &Path) -> Result<Vec<(u32, u32)>> {
    let out = ip(ns, &["-j", "rule", "show"])?;
    let rules: Vec<serde_json::Value> = serde_json::from_str(&out).map_err(|e| Error::Invalid {
        what: "ip -j rule show output",
        value: e.to_string(),
    })?;
    let num = |v: &serde_json::Value| -> Option<u32> {
        match v {
            serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            serde_json::Value::String(s) => match s.strip_prefix("0x") {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => s.parse().ok(),
            },
            _ => None,
        }
    };
    Ok(rules
        .iter()
        .filter(|r| r.get("priority").and_then(num) == Some(RETURN_RULE_PREF))
        .filter_map(|r| Some((num(r.get("fwmark")?)?, num(r.get("table")?)?)))
        .collect())
}

/// `ip ARGS` in the namespace at `ns` (iproute2): policy rules and routes in other
/// tables, which `netlink.rs` does not speak yet.
fn ip(ns: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .arg("ip")
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(Error::Invalid {
            what: "ip command",
            value: format!(
                "ip {} in {}: {}",
                args.join(" "),
                ns.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_balances_refuses_and_snats() {
        let ports = [
            PublishedPort {
                proto: Proto::Tcp,
                published: 8080,
                target: 80,
                backends: vec![Ipv4Addr::new(10, 255, 0, 5), Ipv4Addr::new(10, 255, 0, 6)],
            },
            PublishedPort {
                proto: Proto::Udp,
                published: 5353,
                target: 53,
                backends: vec![],
            },
        ];
        let gw: ipnet::Ipv4Net = "172.18.0.0/16".parse().unwrap();
        let s = sandbox_table(
            &ports,
            Ipv4Addr::new(10, 255, 0, 2),
            Ipv4Addr::new(172, 18, 0, 2),
            gw,
            MeshOptions::default(),
        );
        assert!(s.contains(
            "ip daddr 172.18.0.2 tcp dport 8080 dnat to numgen inc mod 2 map { 0 : 10.255.0.5, 1 : 10.255.0.6 } : 80"
        ), "{s}");
        assert!(s.contains("udp dport 5353 reject\n"), "{s}");
        assert!(s.contains("ct status dnat snat to 10.255.0.2"), "{s}");
        let kept = sandbox_table(
            &ports,
            Ipv4Addr::new(10, 255, 0, 2),
            Ipv4Addr::new(172, 18, 0, 2),
            gw,
            MeshOptions { keep_source: true },
        );
        assert!(kept.contains("ct status dnat ip saddr 172.18.0.0/16 snat to 10.255.0.2"));
    }

    #[test]
    fn the_return_mark_is_the_sandbox_address() {
        assert_eq!(return_mark(Ipv4Addr::new(10, 255, 0, 2)), 0x0aff_0002);
    }
}
