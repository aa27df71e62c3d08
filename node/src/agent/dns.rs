//! The embedded DNS as the agent drives it: the dispatcher's per-network records become
//! the resolver's records, and each task on overlays gets a server on 127.0.0.11:53 in its
//! namespace, answering only for the task's networks.
//!
//! The resolver itself is `swarm_net::dns` (another branch, `net-dns`); until it is merged
//! here, [`Dns`] keeps the records and the tasks' scopes and serves nothing.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::netmap::NodeNetworks;

/// One name on one network, as the resolver takes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NameRecord {
    pub network_id: String,
    pub name: String,
    pub addrs: Vec<Ipv4Addr>,
}

/// Every name of every network this node knows, flattened for the resolver.
pub fn name_records(nn: &NodeNetworks) -> Vec<NameRecord> {
    nn.networks
        .iter()
        .flat_map(|n| {
            n.records.iter().map(|r| NameRecord {
                network_id: n.id.clone(),
                name: r.name.clone(),
                addrs: r.addrs.clone(),
            })
        })
        .collect()
}

pub struct Dns {
    #[allow(dead_code)]
    upstreams: Vec<SocketAddr>,
    records: Mutex<Vec<NameRecord>>,
    /// Task ID -> (its namespace, its networks).
    served: Mutex<BTreeMap<String, (PathBuf, Vec<String>)>>,
}

impl Dns {
    pub fn new(upstreams: Vec<SocketAddr>) -> Dns {
        Dns {
            upstreams,
            records: Mutex::default(),
            served: Mutex::default(),
        }
    }

    pub fn set_records(&self, nn: &NodeNetworks) {
        *self.records.lock().expect("dns records") = name_records(nn);
    }

    /// Serve the task's networks' names in its namespace (idempotent).
    pub fn serve(&self, task: &str, netns: &Path, networks: &[String]) {
        self.served
            .lock()
            .expect("dns tasks")
            .insert(task.to_string(), (netns.to_owned(), networks.to_vec()));
    }

    pub fn stop(&self, task: &str) {
        self.served.lock().expect("dns tasks").remove(task);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::netmap::{NameRecord as Rec, NetworkInfo};

    #[test]
    fn records_carry_their_network() {
        let nn = NodeNetworks {
            networks: vec![NetworkInfo {
                id: "n1".into(),
                name: "appnet".into(),
                vni: 4097,
                subnet: "10.0.1.0/24".into(),
                gateway: Ipv4Addr::new(10, 0, 1, 1),
                internal: false,
                peers: vec![],
                records: vec![Rec {
                    name: "web".into(),
                    addrs: vec![Ipv4Addr::new(10, 0, 1, 2)],
                }],
                vips: vec![],
            }],
            ..NodeNetworks::default()
        };
        let r = name_records(&nn);
        assert_eq!(r[0].network_id, "n1");
        assert_eq!(r[0].name, "web");
    }
}
