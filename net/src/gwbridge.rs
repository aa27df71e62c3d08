//! The egress path, Docker's `docker_gwbridge`: overlays give tasks no way out, so each
//! task also gets an interface on a host bridge whose subnet is masqueraded, and its
//! default route goes there.
//!
//! Our rules live in our own table (`table inet swarm`), rebuilt whole in one
//! transaction on every ensure. Docker's iptables set the FORWARD policy to DROP, and
//! an nftables `accept` ends only its own base chain: a drop in any other chain at the
//! same hook still drops (the root test shows it). So where iptables' FORWARD chain
//! drops by policy we also insert our accepts there (marked with the comment `swarm`,
//! each once), as Docker does for its own bridges; `remove_gwbridge` takes them out.

use std::borrow::Cow;
use std::net::Ipv4Addr;
use std::process::Command;

use ipnet::Ipv4Net;
use nftables::expr::{Expression, MetaKey, NamedExpression, CT};
use nftables::schema::{Chain, NfListObject, Rule};
use nftables::stmt::Statement;
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use crate::error::{Error, Result};
use crate::netlink::Netlink;
use crate::nft::{self, matches, meta, payload, prefix, string};
use crate::overlay::{connect, mac_for, Endpoint};
use crate::{endpoint_link_name, netns, Host};

/// The host bridge's name (Docker's is `docker_gwbridge`).
pub const GWBRIDGE: &str = "sw_gwbridge";

/// The gateway bridge's addressing: Docker's default is 172.18.0.0/16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GwBridge {
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
}

impl GwBridge {
    /// The gateway is the subnet's first address, as Docker picks it.
    pub fn new(subnet: Ipv4Net) -> Result<Self> {
        let gateway = subnet.hosts().next().ok_or_else(|| Error::Invalid {
            what: "gateway bridge subnet",
            value: subnet.to_string(),
        })?;
        Ok(Self { subnet, gateway })
    }
}

impl Host {
    /// Make (or confirm) the bridge, its address, IPv4 forwarding and our nftables
    /// table (masquerade for the subnet, forward accepts).
    pub fn ensure_gwbridge(&self, gw: &GwBridge) -> Result<()> {
        let mut nl = Netlink::open(self.netns())?;
        let br = match nl.link(GWBRIDGE)? {
            Some(l) => l,
            None => {
                nl.add_bridge(GWBRIDGE, None)?;
                nl.need_link(GWBRIDGE)?
            }
        };
        nl.ensure_addr(br.index, gw.gateway, gw.subnet.prefix_len())?;
        nl.set_up(br.index)?;
        netns::run_in(self.netns(), || {
            std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        })??;
        nft::apply(self.netns(), host_table(gw))?;
        self.iptables_accepts(true)
    }

    /// Whether the gateway bridge exists (one netlink query).
    pub fn has_gwbridge(&self) -> Result<bool> {
        Ok(Netlink::open(self.netns())?.link(GWBRIDGE)?.is_some())
    }

    /// Remove the bridge, our table and our iptables accepts; gone already is fine.
    /// Endpoints still on the bridge lose their outer ends with it.
    pub fn remove_gwbridge(&self) -> Result<()> {
        Netlink::open(self.netns())?.del_link_by_name(GWBRIDGE)?;
        nft::delete_table(self.netns(), NfFamily::INet)?;
        self.iptables_accepts(false)
    }

    /// Give the container `ep.ifname` on the gateway bridge with the default route via
    /// the bridge's address. Returns the MAC.
    pub fn attach_gw(&self, gw: &GwBridge, ep: &Endpoint) -> Result<[u8; 6]> {
        let mac = mac_for(ep.addr);
        let outer = endpoint_link_name('g', &ep.container_netns, &ep.ifname);
        let mut host = Netlink::open(self.netns())?;
        let mtu = host.need_link(GWBRIDGE)?.mtu;
        connect(&mut host, GWBRIDGE, &outer, ep, mac, mtu.max(1280))?;
        let mut inside = Netlink::open(Some(&ep.container_netns))?;
        let link = inside.need_link(&ep.ifname)?;
        inside.replace_default_route(link.index, gw.gateway)?;
        Ok(mac)
    }

    /// Insert (`on`) or delete our accepts in iptables' FORWARD chain. Inserted only
    /// where that chain drops by policy (Docker's hosts): elsewhere nothing drops our
    /// traffic but our own rules, and we create no iptables tables of our own. Each
    /// rule is checked first, so neither direction duplicates or fails.
    fn iptables_accepts(&self, on: bool) -> Result<()> {
        self.iptables_forward(&IPTABLES_ACCEPTS, on)
    }

    /// `rules` (each the arguments after `FORWARD`) in iptables' FORWARD chain, each
    /// once, when `on` and FORWARD drops by policy; none of them otherwise.
    pub(crate) fn iptables_forward(&self, rules: &[&[&str]], on: bool) -> Result<()> {
        let iptables = |args: &[&str]| -> Result<Option<String>> {
            let mut cmd = match self.netns() {
                None => Command::new("iptables"),
                Some(path) => {
                    let mut c = Command::new("nsenter");
                    c.arg(format!("--net={}", path.display())).arg("iptables");
                    c
                }
            };
            match cmd.args(["-w", "5"]).args(args).output() {
                Ok(out) if out.status.success() => {
                    Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
                }
                Ok(_) => Ok(None),
                // No iptables on this host: nothing there can drop our traffic.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        };
        let drops = iptables(&["-S", "FORWARD"])?
            .is_some_and(|rules| rules.lines().any(|l| l == "-P FORWARD DROP"));
        for &rule in rules {
            let with = |op: &'static str| [&[op, "FORWARD"][..], rule].concat();
            let present = iptables(&with("-C"))?.is_some();
            if on && drops && !present {
                if iptables(&with("-I"))?.is_none() {
                    tracing::warn!("could not insert iptables FORWARD {rule:?}");
                }
            } else if !on && present {
                iptables(&with("-D"))?;
            }
        }
        Ok(())
    }
}

const COMMENT: [&str; 4] = ["-m", "comment", "--comment", "swarm"];
const IPTABLES_ACCEPTS: [&[&str]; 2] = [
    &[
        "-i", GWBRIDGE, COMMENT[0], COMMENT[1], COMMENT[2], COMMENT[3], "-j", "ACCEPT",
    ],
    &[
        "-o",
        GWBRIDGE,
        "-m",
        "conntrack",
        "--ctstate",
        "RELATED,ESTABLISHED",
        COMMENT[0],
        COMMENT[1],
        COMMENT[2],
        COMMENT[3],
        "-j",
        "ACCEPT",
    ],
];

/// `table inet swarm`, whole:
/// ```text
/// chain forward { type filter hook forward priority filter - 1; policy accept;
///     iifname "sw_gwbridge" accept
///     oifname "sw_gwbridge" ct state established,related accept }
/// chain postrouting { type nat hook postrouting priority srcnat; policy accept;
///     ip saddr <subnet> oifname != "sw_gwbridge" masquerade }
/// ```
fn host_table(gw: &GwBridge) -> nftables::batch::Batch<'static> {
    let family = NfFamily::INet;
    let mut batch = nft::fresh_table(family);
    let chain = |name: &'static str, kind, hook, prio| Chain {
        family,
        table: Cow::Borrowed(nft::TABLE),
        name: Cow::Borrowed(name),
        _type: Some(kind),
        hook: Some(hook),
        prio: Some(prio),
        policy: Some(NfChainPolicy::Accept),
        ..Chain::default()
    };
    let rule = |chain: &'static str, expr: Vec<Statement<'static>>| Rule {
        family,
        table: Cow::Borrowed(nft::TABLE),
        chain: Cow::Borrowed(chain),
        expr: Cow::Owned(expr),
        ..Rule::default()
    };
    batch.add(NfListObject::Chain(chain(
        "forward",
        NfChainType::Filter,
        NfHook::Forward,
        -1,
    )));
    batch.add(NfListObject::Chain(chain(
        "postrouting",
        NfChainType::NAT,
        NfHook::Postrouting,
        100,
    )));
    batch.add(NfListObject::Rule(rule(
        "forward",
        vec![
            matches(meta(MetaKey::Iifname), string(GWBRIDGE), true),
            Statement::Accept(None),
        ],
    )));
    let ct_state = Expression::Named(NamedExpression::CT(CT {
        key: Cow::Borrowed("state"),
        family: None,
        dir: None,
    }));
    batch.add(NfListObject::Rule(rule(
        "forward",
        vec![
            matches(meta(MetaKey::Oifname), string(GWBRIDGE), true),
            Statement::Match(nftables::stmt::Match {
                left: ct_state,
                right: Expression::List(vec![string("established"), string("related")]),
                op: nftables::stmt::Operator::IN,
            }),
            Statement::Accept(None),
        ],
    )));
    batch.add(NfListObject::Rule(rule(
        "postrouting",
        vec![
            matches(payload("ip", "saddr"), prefix(gw.subnet), true),
            matches(meta(MetaKey::Oifname), string(GWBRIDGE), false),
            Statement::Masquerade(None),
        ],
    )));
    batch
}
