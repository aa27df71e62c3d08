//! Service VIPs load-balanced by nftables inside a task's own namespace (these kernels
//! have no IPVS, which Docker uses): connections the task opens to a VIP are DNATed to
//! the service's tasks in turn.
//!
//! ```text
//! table ip swarm {
//!   chain output { type nat hook output priority dstnat;
//!     ip daddr 10.0.1.2 tcp dport 80 dnat to numgen inc mod 2 map { 0 : 10.0.1.5, 1 : 10.0.1.6 } }
//!   chain reject { type filter hook output priority filter;
//!     ip daddr 10.0.1.3 reject }           # a VIP with no tasks: refuse at once
//! }
//! ```
//! The whole table is rewritten in one transaction, so a task never sees half a set.
//! Only new connections are balanced (NAT decides on a connection's first packet).

use std::borrow::Cow;
use std::net::Ipv4Addr;
use std::path::Path;

use nftables::batch::Batch;
use nftables::expr::{Expression, Map, NamedExpression, NgMode, Numgen, SetItem};
use nftables::schema::{Chain, NfListObject, Rule};
use nftables::stmt::{NATFamily, Reject, RejectType, Statement, NAT};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use crate::error::{Error, Result};
use crate::nft::{self, matches, payload, string};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// A service's virtual IP: connections to `vip` on `ports` (every port when empty) go
/// to one of `backends`, on the same port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub vip: Ipv4Addr,
    pub ports: Vec<(Proto, u16)>,
    pub backends: Vec<Ipv4Addr>,
}

/// Make the VIP table in the namespace at `container_netns` exactly `vips`.
pub fn set_vips(container_netns: &Path, vips: &[Vip]) -> Result<()> {
    nft::apply(Some(container_netns), ruleset(vips)?)
}

/// The transaction that rewrites the VIP table.
fn ruleset(vips: &[Vip]) -> Result<Batch<'static>> {
    let family = NfFamily::IP;
    let mut batch = nft::fresh_table(family);
    let chain = |name: &'static str, kind, prio| Chain {
        family,
        table: Cow::Borrowed(nft::TABLE),
        name: Cow::Borrowed(name),
        _type: Some(kind),
        hook: Some(NfHook::Output),
        prio: Some(prio),
        policy: Some(NfChainPolicy::Accept),
        ..Chain::default()
    };
    batch.add(NfListObject::Chain(chain("output", NfChainType::NAT, -100)));
    batch.add(NfListObject::Chain(chain("reject", NfChainType::Filter, 0)));
    for v in vips {
        if u32::try_from(v.backends.len()).is_err() {
            return Err(Error::Invalid {
                what: "vip backends",
                value: v.backends.len().to_string(),
            });
        }
        let ports: Vec<Option<(Proto, u16)>> = if v.ports.is_empty() {
            vec![None]
        } else {
            v.ports.iter().copied().map(Some).collect()
        };
        for port in ports {
            let mut expr = vec![matches(
                payload("ip", "daddr"),
                string(v.vip.to_string()),
                true,
            )];
            if let Some((proto, port)) = port {
                expr.push(matches(
                    payload(proto.name(), "dport"),
                    Expression::Number(u32::from(port)),
                    true,
                ));
            }
            let chain_name = if v.backends.is_empty() {
                expr.push(Statement::Reject(Some(Reject {
                    _type: match port {
                        Some((Proto::Tcp, _)) => Some(RejectType::TCPReset),
                        _ => None,
                    },
                    expr: None,
                })));
                "reject"
            } else {
                expr.push(dnat(&v.backends));
                "output"
            };
            batch.add(NfListObject::Rule(Rule {
                family,
                table: Cow::Borrowed(nft::TABLE),
                chain: Cow::Borrowed(chain_name),
                expr: Cow::Owned(expr),
                ..Rule::default()
            }));
        }
    }
    Ok(batch)
}

/// Remove the VIP table from the namespace; absent is fine.
pub fn clear_vips(container_netns: &Path) -> Result<()> {
    nft::delete_table(Some(container_netns), NfFamily::IP)
}

/// `dnat to numgen inc mod N map { 0 : b0, 1 : b1, ... }`.
fn dnat(backends: &[Ipv4Addr]) -> Statement<'static> {
    let map = Map {
        key: Expression::Named(NamedExpression::Numgen(Numgen {
            mode: NgMode::Inc,
            ng_mod: backends.len() as u32,
            offset: None,
        })),
        data: Expression::Named(NamedExpression::Set(
            backends
                .iter()
                .zip(0u32..)
                .map(|(b, i)| SetItem::Mapping(Expression::Number(i), string(b.to_string())))
                .collect(),
        )),
    };
    Statement::DNAT(Some(NAT {
        addr: Some(Expression::Named(NamedExpression::Map(Box::new(map)))),
        family: Some(NATFamily::IP),
        port: None,
        flags: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vip_is_a_numgen_map_and_an_empty_one_a_reject() {
        let vips = [
            Vip {
                vip: Ipv4Addr::new(10, 0, 1, 2),
                ports: vec![(Proto::Tcp, 80)],
                backends: vec![Ipv4Addr::new(10, 0, 1, 5), Ipv4Addr::new(10, 0, 1, 6)],
            },
            Vip {
                vip: Ipv4Addr::new(10, 0, 1, 3),
                ports: vec![],
                backends: vec![],
            },
        ];
        let json = serde_json::to_value(ruleset(&vips).unwrap().to_nftables()).unwrap();
        let rules: Vec<&serde_json::Value> = json["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o.get("add")?.get("rule"))
            .collect();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0]["chain"], "output");
        assert_eq!(
            rules[0]["expr"][2]["dnat"]["addr"]["map"],
            serde_json::json!({
                "key": {"numgen": {"mode": "inc", "mod": 2}},
                "data": {"set": [[0, "10.0.1.5"], [1, "10.0.1.6"]]},
            })
        );
        assert_eq!(rules[1]["chain"], "reject");
        assert_eq!(rules[1]["expr"].as_array().unwrap().len(), 2);
    }
}
