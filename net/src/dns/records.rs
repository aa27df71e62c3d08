//! The record table: what the agent knows about names on its networks, indexed for the
//! resolver. The agent replaces it whole whenever its view changes; every container's
//! server reads the same snapshot (an `Arc`), so a table costs memory once per node.
//!
//! Lookup follows libnetwork's `Sandbox.ResolveName`: the name without its trailing dot,
//! case folded, is tried on each of the container's networks in order, and the first
//! network that has it answers (its addresses only, not a union). Then `a.b` is tried on
//! the network *named* `b`, `a` on the network named `b.c`, and so on, so that
//! `web.frontend` finds the service `web` on the network `frontend`.

use std::collections::HashMap;
use std::net::Ipv4Addr;

/// One name on one network and the addresses it resolves to.
///
/// What the agent puts in, per network the node has tasks on (as libnetwork does):
/// `<service>` → the VIP (every task's address for `--endpoint-mode dnsrr`),
/// `tasks.<service>` → every running task's address, `<service>.<slot>.<task-id>` (the
/// task's name, with `reverse` set) and `<task-id>` → the task's address, and each
/// network alias → the same as the service name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRecord {
    pub network_id: String,
    pub name: String,
    pub addrs: Vec<Ipv4Addr>,
    /// This name answers reverse (PTR) lookups of its addresses, as `<name>.<network
    /// name>.`. libnetwork does this for a task's container name only: not for VIPs,
    /// aliases or `tasks.` names.
    pub reverse: bool,
}

impl NameRecord {
    pub fn new(
        network_id: impl Into<String>,
        name: impl Into<String>,
        addrs: Vec<Ipv4Addr>,
    ) -> Self {
        Self {
            network_id: network_id.into(),
            name: name.into(),
            addrs,
            reverse: false,
        }
    }

    /// The same record, answering PTR queries for its addresses.
    pub fn with_reverse(mut self) -> Self {
        self.reverse = true;
        self
    }
}

/// The records of one network.
#[derive(Debug, Default)]
struct Network {
    /// Case-folded name → addresses (deduplicated, in the order given).
    by_name: HashMap<String, Vec<Ipv4Addr>>,
    /// Address → the name (as given) its PTR answer carries; the first record wins.
    by_addr: HashMap<Ipv4Addr, String>,
}

/// An immutable, indexed snapshot of the records and the networks' names.
#[derive(Debug, Default)]
pub struct Table {
    networks: HashMap<String, Network>,
    /// Network ID → network name (for `<name>.<network>` and PTR answers).
    names: HashMap<String, String>,
}

impl Table {
    /// Index `records`; `names` maps network IDs to network names. Records with no
    /// address are left out (libnetwork drops a name when its last address goes), and
    /// duplicate (network, name) records merge their addresses.
    pub fn new(records: &[NameRecord], names: &HashMap<String, String>) -> Self {
        let mut networks: HashMap<String, Network> = HashMap::new();
        for r in records {
            if r.addrs.is_empty() {
                continue;
            }
            let net = networks.entry(r.network_id.clone()).or_default();
            if r.reverse {
                for a in &r.addrs {
                    net.by_addr.entry(*a).or_insert_with(|| r.name.clone());
                }
            }
            let addrs = net.by_name.entry(r.name.to_ascii_lowercase()).or_default();
            for a in &r.addrs {
                if !addrs.contains(a) {
                    addrs.push(*a);
                }
            }
        }
        Self {
            networks,
            names: names.clone(),
        }
    }

    /// The addresses of `name` as seen from a container on `networks` (in priority
    /// order), or `None` when the name is not ours there.
    pub fn lookup(&self, networks: &[String], name: &str) -> Option<&[Ipv4Addr]> {
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        if name.is_empty() {
            return None;
        }
        // (name, on the network named) pairs: the whole name on any network first.
        let splits = std::iter::once((name.as_str(), None)).chain(
            name.rmatch_indices('.')
                .map(|(i, _)| (&name[..i], Some(&name[i + 1..]))),
        );
        for (req, network_name) in splits {
            for id in networks {
                if let Some(want) = network_name {
                    match self.names.get(id) {
                        Some(n) if n.eq_ignore_ascii_case(want) => {}
                        _ => continue,
                    }
                }
                if let Some(addrs) = self.networks.get(id).and_then(|n| n.by_name.get(req)) {
                    return Some(addrs);
                }
            }
        }
        None
    }

    /// The PTR target for `addr` as seen from `networks`: `<name>.<network name>`
    /// (without the network name when it is unknown), as libnetwork's `ResolveIP`.
    pub fn reverse(&self, networks: &[String], addr: Ipv4Addr) -> Option<String> {
        networks.iter().find_map(|id| {
            let name = self.networks.get(id)?.by_addr.get(&addr)?;
            Some(match self.names.get(id) {
                Some(net) => format!("{name}.{net}"),
                None => name.clone(),
            })
        })
    }

    /// How many names the table holds, over all networks.
    pub fn len(&self) -> usize {
        self.networks.values().map(|n| n.by_name.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn nets(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn table() -> Table {
        Table::new(
            &[
                NameRecord::new("n1", "web", vec![ip("10.0.1.100")]),
                NameRecord::new("n1", "tasks.web", vec![ip("10.0.1.5"), ip("10.0.1.6")]),
                NameRecord::new("n1", "web.1.abc", vec![ip("10.0.1.5")]).with_reverse(),
                NameRecord::new("n1", "abc", vec![ip("10.0.1.5")]),
                NameRecord::new("n2", "web", vec![ip("10.0.2.100")]),
                NameRecord::new("n2", "db", vec![ip("10.0.2.7")]),
                NameRecord::new("n2", "empty", vec![]),
            ],
            &HashMap::from([
                ("n1".to_string(), "front".to_string()),
                ("n2".to_string(), "back.end".to_string()),
            ]),
        )
    }

    #[test]
    fn names_match_case_insensitively_with_or_without_the_trailing_dot() {
        let t = table();
        let n1 = nets(&["n1"]);
        for name in ["web", "WEB.", "Web", "web."] {
            assert_eq!(t.lookup(&n1, name), Some(&[ip("10.0.1.100")][..]), "{name}");
        }
        assert_eq!(
            t.lookup(&n1, "tasks.web"),
            Some(&[ip("10.0.1.5"), ip("10.0.1.6")][..])
        );
        assert_eq!(t.lookup(&n1, "nosuch"), None);
        assert_eq!(t.lookup(&n1, "."), None);
        assert_eq!(t.lookup(&n1, ""), None);
    }

    #[test]
    fn a_container_sees_only_its_networks_and_the_first_that_has_the_name_answers() {
        let t = table();
        assert_eq!(t.lookup(&nets(&["n1"]), "db"), None);
        assert_eq!(t.lookup(&nets(&["n2"]), "db"), Some(&[ip("10.0.2.7")][..]));
        assert_eq!(
            t.lookup(&nets(&["n2", "n1"]), "web"),
            Some(&[ip("10.0.2.100")][..])
        );
        assert_eq!(
            t.lookup(&nets(&["n1", "n2"]), "web"),
            Some(&[ip("10.0.1.100")][..])
        );
        assert_eq!(t.lookup(&nets(&[]), "web"), None);
        assert_eq!(t.lookup(&nets(&["n2"]), "empty"), None);
    }

    #[test]
    fn a_network_name_suffix_picks_that_network_among_the_containers() {
        let t = table();
        let both = nets(&["n1", "n2"]);
        assert_eq!(t.lookup(&both, "web.front"), Some(&[ip("10.0.1.100")][..]));
        assert_eq!(
            t.lookup(&both, "web.back.end."),
            Some(&[ip("10.0.2.100")][..])
        );
        assert_eq!(
            t.lookup(&both, "WEB.Back.End"),
            Some(&[ip("10.0.2.100")][..])
        );
        assert_eq!(
            t.lookup(&both, "tasks.web.front"),
            Some(&[ip("10.0.1.5"), ip("10.0.1.6")][..])
        );
        // Not a network the container is on, or no such name on that network.
        assert_eq!(t.lookup(&nets(&["n1"]), "web.back.end"), None);
        assert_eq!(t.lookup(&both, "db.front"), None);
    }

    #[test]
    fn reverse_names_carry_the_network_name_and_only_marked_records_have_them() {
        let t = table();
        assert_eq!(
            t.reverse(&nets(&["n2", "n1"]), ip("10.0.1.5")).as_deref(),
            Some("web.1.abc.front")
        );
        assert_eq!(t.reverse(&nets(&["n2"]), ip("10.0.1.5")), None);
        assert_eq!(t.reverse(&nets(&["n1"]), ip("10.0.1.100")), None);
        let unnamed = Table::new(
            &[NameRecord::new("n9", "t.1.x", vec![ip("10.9.0.2")]).with_reverse()],
            &HashMap::new(),
        );
        assert_eq!(
            unnamed.reverse(&nets(&["n9"]), ip("10.9.0.2")).as_deref(),
            Some("t.1.x")
        );
    }

    #[test]
    fn duplicate_records_merge_their_addresses_once() {
        let t = Table::new(
            &[
                NameRecord::new("n1", "web", vec![ip("10.0.1.5")]),
                NameRecord::new("n1", "Web", vec![ip("10.0.1.6"), ip("10.0.1.5")]),
            ],
            &HashMap::new(),
        );
        assert_eq!(
            t.lookup(&nets(&["n1"]), "web"),
            Some(&[ip("10.0.1.5"), ip("10.0.1.6")][..])
        );
        assert_eq!(t.len(), 1);
    }
}
