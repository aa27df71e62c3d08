//! The embedded DNS as the agent drives it: the dispatcher's per-network records become
//! the resolver's records, and each task on overlays gets a server on 127.0.0.11:53 in its
//! namespace, answering only for the task's networks.
//!
//! The resolver is `swarm_net::dns`: one [`Resolver`] per node holding every record, one
//! server per task (dropping its handle stops it). The servers live in this process, so
//! a restarted swarmd serves its adopted tasks again from their assignments.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;

use swarm_net::dns::{Handle, NameRecord, Resolver};

use super::netmap::NodeNetworks;

/// Every name of every network this node knows, flattened for the resolver.
pub fn name_records(nn: &NodeNetworks) -> Vec<NameRecord> {
    nn.networks
        .iter()
        .flat_map(|n| {
            n.records.iter().map(|r| {
                let rec = NameRecord::new(n.id.clone(), r.name.clone(), r.addrs.clone());
                if r.reverse {
                    rec.with_reverse()
                } else {
                    rec
                }
            })
        })
        .collect()
}

pub struct Dns {
    resolver: Resolver,
    /// Task ID -> its server.
    served: Mutex<BTreeMap<String, Handle>>,
}

impl Dns {
    pub fn new(upstreams: Vec<SocketAddr>) -> Dns {
        Dns {
            resolver: Resolver::new(upstreams),
            served: Mutex::default(),
        }
    }

    pub fn set_records(&self, nn: &NodeNetworks) {
        self.resolver.set_network_names(
            nn.networks
                .iter()
                .map(|n| (n.id.clone(), n.name.clone()))
                .collect::<HashMap<_, _>>(),
        );
        self.resolver.set_records(name_records(nn));
    }

    /// Serve the task's networks' names on 127.0.0.11:53 in its namespace (once).
    pub fn serve(&self, task: &str, netns: &Path, networks: &[String]) -> Result<(), String> {
        let mut served = self.served.lock().expect("dns tasks");
        if served.contains_key(task) {
            return Ok(());
        }
        let h = self
            .resolver
            .serve_in(netns, networks.to_vec())
            .map_err(|e| format!("embedded DNS: {e}"))?;
        served.insert(task.to_string(), h);
        Ok(())
    }

    pub fn stop(&self, task: &str) {
        self.served.lock().expect("dns tasks").remove(task);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

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
                    reverse: false,
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
