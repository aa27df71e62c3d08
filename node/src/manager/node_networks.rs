//! What the dispatcher sends a node about its networks (`agent::netmap`): only the
//! networks its own tasks use, and per network the peers elsewhere, the DNS names and
//! the VIPs with their running backends. A pure function of the store, so every
//! applied entry recomputes it and the session sends it when it changed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use swarm_core::model::{node_ingress_addr, PublishMode, ResolutionMode, Service, Task};
use swarm_core::store::{spec_networks, Store as CoreStore};
use swarm_core::TaskState;

use crate::agent::netmap::{
    mac_text, parse_cidr, HostPortInfo, IngressInfo, NameRecord, NetworkInfo, NodeNetworks,
    PeerInfo, PublishedInfo, TaskAttachment, VipInfo,
};

/// The cluster label that turns the mesh back into Docker's (every connection SNATed
/// to the receiving node's ingress address, so tasks see that instead of the client).
pub const MESH_SNAT_LABEL: &str = "swarm.mesh.snat";

/// A task that holds its addresses and is placed: assigned to a node, not ended, still
/// wanted.
fn placed(t: &Task) -> bool {
    !t.node_id.is_empty()
        && t.status.state >= TaskState::Assigned
        && t.status.state <= TaskState::Running
        && t.desired_state <= TaskState::Running
}

fn running(t: &Task) -> bool {
    t.status.state == TaskState::Running && t.desired_state <= TaskState::Running
}

/// The task's address on network `id`.
fn addr_on(t: &Task, id: &str) -> Option<Ipv4Addr> {
    t.networks_attachments
        .iter()
        .find(|a| a.network.id() == id)
        .and_then(|a| a.addresses.first())
        .and_then(|a| parse_cidr(a))
        .map(|(ip, _)| ip)
}

/// A node's underlay address: where its agent's session came from.
fn underlay(s: &CoreStore, node_id: &str) -> Option<Ipv4Addr> {
    let n = s.node(node_id)?;
    n.description
        .extra
        .get("DataPathAddr")
        .and_then(|v| v.as_str())
        .and_then(|a| a.parse().ok())
        .or_else(|| n.status.addr.parse().ok())
}

/// A task's interfaces, in attachment order.
pub fn task_attachments(t: &Task) -> Vec<TaskAttachment> {
    t.networks_attachments
        .iter()
        .filter_map(|a| {
            Some(TaskAttachment {
                network_id: a.network.id().to_string(),
                addr: a.addresses.first()?.clone(),
            })
        })
        .collect()
}

/// Docker's task name as DNS knows it: `<service>.<slot>.<task id>` (global services:
/// the node ID instead of the slot).
fn task_name(svc: &Service, t: &Task) -> String {
    if t.slot == 0 {
        format!("{}.{}.{}", svc.spec.name, t.node_id, t.id())
    } else {
        format!("{}.{}.{}", svc.spec.name, t.slot, t.id())
    }
}

/// The routing mesh as every node sees it: the ingress network's ID and every port
/// published through it with its running backends (empty: no mesh).
fn mesh(s: &CoreStore) -> Option<(String, Vec<PublishedInfo>)> {
    let ingress = s.networks().find(|n| n.spec.ingress && n.is_allocated())?;
    let id = ingress.id().to_string();
    let mut published = Vec::new();
    for svc in s.services() {
        let ports: Vec<_> = svc
            .endpoint
            .ports
            .iter()
            .filter(|p| {
                p.publish_mode_or_default() == PublishMode::Ingress && p.published_port != 0
            })
            .collect();
        if ports.is_empty() {
            continue;
        }
        let mut backends: Vec<Ipv4Addr> = s
            .tasks_of_service(svc.id())
            .filter(|t| running(t))
            .filter_map(|t| addr_on(t, &id))
            .collect();
        backends.sort();
        for p in ports {
            let (Ok(published_port), Ok(target)) = (
                u16::try_from(p.published_port),
                u16::try_from(p.target_port),
            ) else {
                continue;
            };
            published.push(PublishedInfo {
                proto: p.protocol_or_default().as_str().to_string(),
                published: published_port,
                target,
                backends: backends.clone(),
            });
        }
    }
    if published.is_empty() {
        return None;
    }
    published.sort();
    Some((id, published))
}

/// Host-mode ports of the tasks placed on `node_id`.
fn host_ports(s: &CoreStore, node_id: &str) -> Vec<HostPortInfo> {
    let mut out = Vec::new();
    for t in s.tasks_on_node(node_id).filter(|t| placed(t)) {
        let Some(svc) = s.service(&t.service_id) else {
            continue;
        };
        for p in &svc.endpoint.ports {
            if p.publish_mode_or_default() != PublishMode::Host || p.published_port == 0 {
                continue;
            }
            let (Ok(published), Ok(target)) = (
                u16::try_from(p.published_port),
                u16::try_from(p.target_port),
            ) else {
                continue;
            };
            out.push(HostPortInfo {
                task_id: t.id().to_string(),
                proto: p.protocol_or_default().as_str().to_string(),
                published,
                target,
            });
        }
    }
    out.sort();
    out
}

pub fn node_networks(s: &CoreStore, node_id: &str) -> NodeNetworks {
    let mesh = mesh(s);
    let mut used: BTreeSet<String> = s
        .tasks_on_node(node_id)
        .filter(|t| placed(t))
        .flat_map(|t| {
            t.networks_attachments
                .iter()
                .map(|a| a.network.id().to_string())
        })
        .collect();
    // Every node is on ingress while the mesh publishes a port.
    if let Some((id, _)) = &mesh {
        used.insert(id.clone());
    }
    let data_path_port = s
        .cluster()
        .map(|c| c.cluster.data_path_port_or_default())
        .unwrap_or(4789) as u16;
    let mut networks = Vec::new();
    for id in &used {
        let Some(n) = s.network(id) else { continue };
        let (Some(vni), Some(cfg)) = (
            n.vni(),
            n.ipam_options.as_ref().and_then(|o| o.configs.first()),
        ) else {
            continue;
        };
        let Ok(gateway) = cfg.gateway.parse::<Ipv4Addr>() else {
            continue;
        };
        let on_net: Vec<&Task> = s
            .tasks()
            .filter(|t| placed(t) && addr_on(t, id).is_some())
            .collect();
        let mut peers: Vec<PeerInfo> = on_net
            .iter()
            .filter(|t| t.node_id != node_id)
            .filter_map(|t| {
                let ip = addr_on(t, id)?;
                Some(PeerInfo {
                    task_ip: ip,
                    mac: mac_text(ip),
                    underlay: underlay(s, &t.node_id)?,
                })
            })
            .collect();
        if mesh.as_ref().is_some_and(|(ingress, _)| ingress == id) {
            // The other nodes' ingress sandboxes.
            peers.extend(s.nodes().filter(|nd| nd.id() != node_id).filter_map(|nd| {
                let (ip, _) = parse_cidr(node_ingress_addr(nd, id)?)?;
                Some(PeerInfo {
                    task_ip: ip,
                    mac: mac_text(ip),
                    underlay: underlay(s, nd.id())?,
                })
            }));
        }
        peers.sort();
        // Per service on this network: its names and VIP.
        let mut by_service: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
        for t in &on_net {
            by_service.entry(t.service_id.as_str()).or_default().push(t);
        }
        let mut records = Vec::new();
        let mut vips = Vec::new();
        for (sid, tasks) in by_service {
            let Some(svc) = s.service(sid) else { continue };
            let mut live: Vec<Ipv4Addr> = tasks
                .iter()
                .filter(|t| running(t))
                .filter_map(|t| addr_on(t, id))
                .collect();
            live.sort();
            let name = svc.spec.name.clone();
            let dnsrr = svc.spec.endpoint_spec.as_ref().and_then(|e| e.mode.clone())
                == Some(ResolutionMode::Dnsrr);
            let vip = svc
                .endpoint
                .virtual_ips
                .iter()
                .find(|v| v.network_id == *id)
                .and_then(|v| parse_cidr(&v.addr))
                .map(|(ip, _)| ip);
            let service_addrs = match (dnsrr, vip) {
                (false, Some(vip)) => vec![vip],
                _ => live.clone(),
            };
            let aliases: Vec<String> = spec_networks(&svc.spec)
                .iter()
                .filter(|a| a.target == *id || a.target == n.spec.name)
                .flat_map(|a| a.aliases.iter().cloned())
                .collect();
            for alias in aliases {
                records.push(NameRecord {
                    name: alias,
                    addrs: service_addrs.clone(),
                    reverse: false,
                });
            }
            records.push(NameRecord {
                name: name.clone(),
                addrs: service_addrs,
                reverse: false,
            });
            records.push(NameRecord {
                name: format!("tasks.{name}"),
                addrs: live.clone(),
                reverse: false,
            });
            for t in tasks.iter().filter(|t| running(t)) {
                if let Some(ip) = addr_on(t, id) {
                    records.push(NameRecord {
                        name: task_name(svc, t),
                        addrs: vec![ip],
                        reverse: true,
                    });
                    records.push(NameRecord {
                        name: t.id().to_string(),
                        addrs: vec![ip],
                        reverse: false,
                    });
                }
            }
            if let (false, Some(vip)) = (dnsrr, vip) {
                let ports = svc
                    .spec
                    .endpoint_spec
                    .as_ref()
                    .map(|e| {
                        e.ports
                            .iter()
                            .filter_map(|p| {
                                let port = u16::try_from(p.target_port).ok()?;
                                Some((p.protocol_or_default().as_str().to_string(), port))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                vips.push(VipInfo {
                    service: name,
                    vip,
                    ports,
                    backends: live,
                });
            }
        }
        records.sort();
        networks.push(NetworkInfo {
            id: id.clone(),
            name: n.spec.name.clone(),
            vni,
            subnet: cfg.subnet.clone(),
            gateway,
            internal: n.spec.internal,
            peers,
            records,
            vips,
        });
    }
    let ingress = mesh.map(|(id, published)| {
        let mut sandboxes: Vec<Ipv4Addr> = s
            .nodes()
            .filter_map(|nd| parse_cidr(node_ingress_addr(nd, &id)?).map(|(ip, _)| ip))
            .collect();
        sandboxes.sort();
        let snat = s
            .cluster()
            .and_then(|c| c.cluster.spec.labels.get(MESH_SNAT_LABEL).cloned())
            .is_some_and(|v| v == "true");
        IngressInfo {
            addr: s
                .node(node_id)
                .and_then(|nd| node_ingress_addr(nd, &id))
                .map(str::to_string),
            network_id: id,
            sandboxes,
            published,
            keep_source: !snat,
        }
    });
    NodeNetworks {
        local_underlay: underlay(s, node_id),
        data_path_port,
        networks,
        ingress,
        host_ports: host_ports(s, node_id),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;
    use swarm_core::store::{Object, StoreAction};

    use super::*;

    fn task(id: &str, svc: &str, node: &str, slot: u64, addr: &str, state: TaskState) -> Task {
        let mut t: Task = serde_json::from_value(json!({
            "ID": id, "ServiceID": svc, "NodeID": node, "Slot": slot,
            "DesiredState": "running", "Status": {"State": state.as_str()},
            "Spec": {"ContainerSpec": {"Image": "busybox"}},
            "NetworksAttachments": [{"Network": {"ID": "n1"}, "Addresses": [addr]}]
        }))
        .unwrap();
        t.meta.id = id.into();
        t
    }

    #[test]
    fn a_node_gets_only_its_networks_with_remote_peers_names_and_vips() {
        let mut s = CoreStore::new();
        let net: swarm_core::model::Network = serde_json::from_value(json!({
            "ID": "n1", "Spec": {"Name": "appnet"},
            "DriverState": {"Name": "overlay", "Options": {"com.docker.network.driver.overlay.vxlanid_list": "4097"}},
            "IPAMOptions": {"Configs": [{"Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"}]}
        }))
        .unwrap();
        let node = |id: &str, addr: &str| {
            let n: swarm_core::model::Node = serde_json::from_value(
                json!({"ID": id, "Status": {"State": "ready", "Addr": addr}}),
            )
            .unwrap();
            StoreAction::Create(Object::Node(Box::new(n)))
        };
        let web: Service = serde_json::from_value(json!({
            "ID": "s1", "Spec": {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "b"},
                "Networks": [{"Target": "n1", "Aliases": ["www"]}]},
                "EndpointSpec": {"Ports": [{"TargetPort": 8080}]}},
            "Endpoint": {"VirtualIPs": [{"NetworkID": "n1", "Addr": "10.0.1.2/24"}]}
        }))
        .unwrap();
        s.apply(
            &[
                StoreAction::Create(Object::Network(Box::new(net))),
                node("a", "192.168.0.1"),
                node("b", "192.168.0.2"),
                node("c", "192.168.0.3"),
                StoreAction::Create(Object::Service(Box::new(web))),
                StoreAction::Create(Object::Task(Box::new(task(
                    "t1",
                    "s1",
                    "a",
                    1,
                    "10.0.1.3/24",
                    TaskState::Running,
                )))),
                StoreAction::Create(Object::Task(Box::new(task(
                    "t2",
                    "s1",
                    "b",
                    2,
                    "10.0.1.4/24",
                    TaskState::Running,
                )))),
                StoreAction::Create(Object::Task(Box::new(task(
                    "t3",
                    "s1",
                    "b",
                    3,
                    "10.0.1.5/24",
                    TaskState::Assigned,
                )))),
            ],
            1,
            Utc::now(),
        )
        .unwrap();
        let a = node_networks(&s, "a");
        assert_eq!(a.local_underlay, Some(Ipv4Addr::new(192, 168, 0, 1)));
        assert_eq!(a.data_path_port, 4789);
        let n = &a.networks[0];
        assert_eq!((n.vni, n.subnet.as_str()), (4097, "10.0.1.0/24"));
        let peers: Vec<_> = n.peers.iter().map(|p| (p.task_ip, p.underlay)).collect();
        let b = Ipv4Addr::new(192, 168, 0, 2);
        assert_eq!(
            peers,
            vec![
                (Ipv4Addr::new(10, 0, 1, 4), b),
                (Ipv4Addr::new(10, 0, 1, 5), b)
            ]
        );
        let rec = |name: &str| {
            n.records
                .iter()
                .find(|r| r.name == name)
                .map(|r| r.addrs.clone())
        };
        assert_eq!(rec("web"), Some(vec![Ipv4Addr::new(10, 0, 1, 2)]));
        assert_eq!(rec("www"), Some(vec![Ipv4Addr::new(10, 0, 1, 2)]));
        // Only running tasks answer.
        assert_eq!(
            rec("tasks.web"),
            Some(vec![Ipv4Addr::new(10, 0, 1, 3), Ipv4Addr::new(10, 0, 1, 4)])
        );
        assert_eq!(rec("web.1.t1"), Some(vec![Ipv4Addr::new(10, 0, 1, 3)]));
        assert_eq!(n.vips[0].ports, vec![("tcp".to_string(), 8080)]);
        assert_eq!(n.vips[0].backends.len(), 2);
        // A node without tasks on the network gets nothing about it.
        assert!(node_networks(&s, "c").networks.is_empty());
    }
}

#[cfg(test)]
mod mesh_tests {
    use chrono::Utc;
    use serde_json::json;
    use swarm_core::store::{Object, StoreAction};

    use super::*;

    fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn every_node_gets_the_mesh_and_its_own_host_ports() {
        let mut s = CoreStore::new();
        let ingress: swarm_core::model::Network = obj(json!({
            "ID": "ing", "Spec": {"Name": "ingress", "Ingress": true},
            "DriverState": {"Name": "overlay", "Options": {"com.docker.network.driver.overlay.vxlanid_list": "4096"}},
            "IPAMOptions": {"Configs": [{"Subnet": "10.0.0.0/24", "Gateway": "10.0.0.1"}]}
        }));
        let net = json!({"ID": "ing"});
        let node = |id: &str, addr: &str, ing: &str| {
            let n: swarm_core::model::Node = obj(json!({
                "ID": id, "Status": {"State": "ready", "Addr": addr},
                "Attachments": [{"Network": net, "Addresses": [ing]}]
            }));
            StoreAction::Create(Object::Node(Box::new(n)))
        };
        let web: Service = obj(json!({
            "ID": "s1", "Spec": {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "b"}},
                "EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishedPort": 8080}]}},
            "Endpoint": {"Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}],
                "VirtualIPs": [{"NetworkID": "ing", "Addr": "10.0.0.9/24"}]}
        }));
        let hostmode: Service = obj(json!({
            "ID": "s2", "Spec": {"Name": "hm", "TaskTemplate": {"ContainerSpec": {"Image": "b"}}},
            "Endpoint": {"Ports": [{"Protocol": "udp", "TargetPort": 53, "PublishedPort": 5353, "PublishMode": "host"}]}
        }));
        let task = |id: &str, svc: &str, node: &str, atts: serde_json::Value| {
            let mut t: Task = obj(json!({
                "ID": id, "ServiceID": svc, "NodeID": node, "Slot": 1,
                "DesiredState": "running", "Status": {"State": "running"},
                "Spec": {"ContainerSpec": {"Image": "b"}}, "NetworksAttachments": atts
            }));
            t.meta.id = id.into();
            StoreAction::Create(Object::Task(Box::new(t)))
        };
        s.apply(
            &[
                StoreAction::Create(Object::Network(Box::new(ingress))),
                node("a", "192.168.0.1", "10.0.0.2/24"),
                node("b", "192.168.0.2", "10.0.0.3/24"),
                node("c", "192.168.0.3", "10.0.0.4/24"),
                StoreAction::Create(Object::Service(Box::new(web))),
                StoreAction::Create(Object::Service(Box::new(hostmode))),
                task(
                    "t1",
                    "s1",
                    "b",
                    json!([{"Network": net, "Addresses": ["10.0.0.5/24"]}]),
                ),
                task("t2", "s2", "a", json!([])),
            ],
            1,
            Utc::now(),
        )
        .unwrap();
        // c runs nothing and still gets the mesh.
        let c = node_networks(&s, "c");
        let ing = c.ingress.as_ref().expect("the mesh");
        assert_eq!(ing.addr.as_deref(), Some("10.0.0.4/24"));
        assert!(ing.keep_source);
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            ing.sandboxes,
            vec![ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.4")]
        );
        assert_eq!(
            ing.published,
            vec![PublishedInfo {
                proto: "tcp".into(),
                published: 8080,
                target: 80,
                backends: vec![ip("10.0.0.5")],
            }]
        );
        let n = c.network("ing").expect("ingress in networks");
        let peers: Vec<_> = n.peers.iter().map(|p| (p.task_ip, p.underlay)).collect();
        assert_eq!(
            peers,
            vec![
                (ip("10.0.0.2"), ip("192.168.0.1")),
                (ip("10.0.0.3"), ip("192.168.0.2")),
                (ip("10.0.0.5"), ip("192.168.0.2")),
            ]
        );
        assert!(c.host_ports.is_empty());
        // a has the host-mode task's port, and only a.
        let a = node_networks(&s, "a");
        assert_eq!(
            a.host_ports,
            vec![HostPortInfo {
                task_id: "t2".into(),
                proto: "udp".into(),
                published: 5353,
                target: 53,
            }]
        );
        assert!(node_networks(&s, "b").host_ports.is_empty());
    }
}
