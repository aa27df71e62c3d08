//! The dispatcher protocol's messages (`proto/cluster.proto`) and the agent's own types,
//! both ways: assignments, their secrets and configs, the node's networks, status
//! reports.
//!
//! ```text
//!  dispatcher: Assignment, NodeNetworks ──encode──▶ proto ──▶ session stream
//!  agent:      session stream ──▶ proto ──decode (all or nothing)──▶ Assignment, ...
//!  agent:      StatusReport ──encode──▶ TaskStatus ──▶ dispatcher ──decode──▶ StatusReport
//! ```
//!
//! Decoding checks everything a message holds before any of it is used: a message
//! from another protocol version, an unknown enum value, a task spec that is not a
//! TaskSpec, an address that does not parse, is a [`WireError`], and the receiver ends
//! the session with it. Nothing half-decoded reaches the agent, so no bad message can
//! take a node's containers away (an empty set in its place would remove them all).
//! Fields a newer peer adds are ignored (protobuf's rule); a change an older peer would
//! misread bumps [`PROTOCOL`].

use std::net::Ipv4Addr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::agent::netmap::{
    HostPortInfo, IngressInfo, NameRecord, NetworkInfo, NodeNetworks, PeerInfo, PublishedInfo,
    TaskAttachment, VipInfo,
};
use crate::agent::{Assignment, Desired, ReportedState, StatusReport, TaskData, TaskIdentity};
use crate::cluster::proto;

/// The dispatcher protocol this build speaks (sent in `SessionRequest` and in every
/// `SessionMessage`). 1: typed messages (before it, assignments travelled as JSON).
pub const PROTOCOL: u32 = 1;

/// What makes a message from the other side unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("the dispatcher speaks protocol {theirs}, this node speaks {PROTOCOL}")]
    Protocol { theirs: u32 },
    #[error("task {task}: {what}")]
    Task { task: String, what: String },
    #[error("networks: {0}")]
    Networks(String),
    #[error("status of task {task}: {what}")]
    Status { task: String, what: String },
}

/// Checks a session message's protocol.
pub fn check_protocol(theirs: u32) -> Result<(), WireError> {
    if theirs == PROTOCOL {
        Ok(())
    } else {
        Err(WireError::Protocol { theirs })
    }
}

// ---- assignments ----

pub fn encode_assignment(a: &Assignment) -> Result<proto::Assignment, serde_json::Error> {
    Ok(proto::Assignment {
        task_id: a.who.task_id.clone(),
        service_id: a.who.service_id.clone(),
        service_name: a.who.service_name.clone(),
        node_id: a.who.node_id.clone(),
        slot: a.who.slot,
        desired: match a.desired {
            Desired::Running => proto::DesiredState::Running,
            Desired::Shutdown => proto::DesiredState::Shutdown,
            Desired::Remove => proto::DesiredState::Remove,
        } as i32,
        spec: serde_json::to_vec(&*a.spec)?,
        secrets: a.data.secrets.clone().into_iter().collect(),
        configs: a.data.configs.clone().into_iter().collect(),
        networks: a
            .networks
            .iter()
            .map(|n| proto::TaskAttachment {
                network_id: n.network_id.clone(),
                addr: n.addr.clone(),
            })
            .collect(),
    })
}

pub fn decode_assignment(a: proto::Assignment) -> Result<Assignment, WireError> {
    let task = a.task_id.clone();
    let bad = |what: String| WireError::Task {
        task: task.clone(),
        what,
    };
    if a.task_id.is_empty() {
        return Err(bad("no task ID".into()));
    }
    let desired = match proto::DesiredState::try_from(a.desired) {
        Ok(proto::DesiredState::Running) => Desired::Running,
        Ok(proto::DesiredState::Shutdown) => Desired::Shutdown,
        Ok(proto::DesiredState::Remove) => Desired::Remove,
        Ok(proto::DesiredState::Unspecified) | Err(_) => {
            return Err(bad(format!("unknown desired state {}", a.desired)))
        }
    };
    let spec: swarm_core::model::TaskSpec =
        serde_json::from_slice(&a.spec).map_err(|e| bad(format!("spec: {e}")))?;
    let mut networks = Vec::with_capacity(a.networks.len());
    for n in a.networks {
        if n.network_id.is_empty() || crate::agent::netmap::parse_cidr(&n.addr).is_none() {
            return Err(bad(format!(
                "attachment to network {:?} with address {:?}",
                n.network_id, n.addr
            )));
        }
        networks.push(TaskAttachment {
            network_id: n.network_id,
            addr: n.addr,
        });
    }
    Ok(Assignment {
        who: TaskIdentity {
            task_id: a.task_id,
            service_id: a.service_id,
            service_name: a.service_name,
            node_id: a.node_id,
            slot: a.slot,
        },
        spec: Arc::new(spec),
        desired,
        data: TaskData {
            secrets: a.secrets.into_iter().collect(),
            configs: a.configs.into_iter().collect(),
        },
        networks,
    })
}

/// Every assignment of a message, or the first reason one is unusable.
pub fn decode_assignments(list: Vec<proto::Assignment>) -> Result<Vec<Assignment>, WireError> {
    list.into_iter().map(decode_assignment).collect()
}

// ---- networks ----

fn text(ip: Ipv4Addr) -> String {
    ip.to_string()
}

fn texts(ips: &[Ipv4Addr]) -> Vec<String> {
    ips.iter().copied().map(text).collect()
}

pub fn encode_networks(n: &NodeNetworks) -> proto::NodeNetworks {
    proto::NodeNetworks {
        local_underlay: n.local_underlay.map(text).unwrap_or_default(),
        data_path_port: u32::from(n.data_path_port),
        networks: n
            .networks
            .iter()
            .map(|x| proto::NetworkInfo {
                id: x.id.clone(),
                name: x.name.clone(),
                vni: x.vni,
                subnet: x.subnet.clone(),
                gateway: text(x.gateway),
                internal: x.internal,
                peers: x
                    .peers
                    .iter()
                    .map(|p| proto::Peer {
                        task_ip: text(p.task_ip),
                        mac: p.mac.clone(),
                        underlay: text(p.underlay),
                    })
                    .collect(),
                records: x
                    .records
                    .iter()
                    .map(|r| proto::NameRecord {
                        name: r.name.clone(),
                        addrs: texts(&r.addrs),
                        reverse: r.reverse,
                    })
                    .collect(),
                vips: x
                    .vips
                    .iter()
                    .map(|v| proto::Vip {
                        service: v.service.clone(),
                        vip: text(v.vip),
                        ports: v
                            .ports
                            .iter()
                            .map(|(p, port)| proto::VipPort {
                                protocol: p.clone(),
                                port: u32::from(*port),
                            })
                            .collect(),
                        backends: texts(&v.backends),
                    })
                    .collect(),
            })
            .collect(),
        ingress: n.ingress.as_ref().map(|i| proto::IngressInfo {
            network_id: i.network_id.clone(),
            addr: i.addr.clone().unwrap_or_default(),
            sandboxes: texts(&i.sandboxes),
            published: i
                .published
                .iter()
                .map(|p| proto::PublishedPort {
                    protocol: p.proto.clone(),
                    published: u32::from(p.published),
                    target: u32::from(p.target),
                    backends: texts(&p.backends),
                })
                .collect(),
            keep_source: i.keep_source,
        }),
        host_ports: n
            .host_ports
            .iter()
            .map(|h| proto::HostPort {
                task_id: h.task_id.clone(),
                protocol: h.proto.clone(),
                published: u32::from(h.published),
                target: u32::from(h.target),
            })
            .collect(),
    }
}

fn ip(s: &str, what: &str) -> Result<Ipv4Addr, WireError> {
    s.parse()
        .map_err(|_| WireError::Networks(format!("{what}: not an IPv4 address: {s:?}")))
}

fn ips(list: &[String], what: &str) -> Result<Vec<Ipv4Addr>, WireError> {
    list.iter().map(|s| ip(s, what)).collect()
}

fn port(p: u32, what: &str) -> Result<u16, WireError> {
    u16::try_from(p).map_err(|_| WireError::Networks(format!("{what}: port {p} out of range")))
}

fn protocol(p: &str, what: &str) -> Result<String, WireError> {
    match p {
        "tcp" | "udp" => Ok(p.to_string()),
        _ => Err(WireError::Networks(format!("{what}: protocol {p:?}"))),
    }
}

pub fn decode_networks(n: proto::NodeNetworks) -> Result<NodeNetworks, WireError> {
    let local_underlay = match n.local_underlay.as_str() {
        "" => None,
        s => Some(ip(s, "local underlay")?),
    };
    let mut networks = Vec::with_capacity(n.networks.len());
    for x in n.networks {
        let what = format!("network {}", x.id);
        if x.id.is_empty() || crate::agent::netmap::parse_cidr(&x.subnet).is_none() {
            return Err(WireError::Networks(format!(
                "{what}: subnet {:?}",
                x.subnet
            )));
        }
        let peers = x
            .peers
            .iter()
            .map(|p| {
                if crate::agent::netmap::parse_mac(&p.mac).is_none() {
                    return Err(WireError::Networks(format!("{what}: MAC {:?}", p.mac)));
                }
                Ok(PeerInfo {
                    task_ip: ip(&p.task_ip, &what)?,
                    mac: p.mac.clone(),
                    underlay: ip(&p.underlay, &what)?,
                })
            })
            .collect::<Result<_, _>>()?;
        let records = x
            .records
            .iter()
            .map(|r| {
                Ok(NameRecord {
                    name: r.name.clone(),
                    addrs: ips(&r.addrs, &what)?,
                    reverse: r.reverse,
                })
            })
            .collect::<Result<_, WireError>>()?;
        let vips = x
            .vips
            .iter()
            .map(|v| {
                Ok(VipInfo {
                    service: v.service.clone(),
                    vip: ip(&v.vip, &what)?,
                    ports: v
                        .ports
                        .iter()
                        .map(|p| Ok((protocol(&p.protocol, &what)?, port(p.port, &what)?)))
                        .collect::<Result<_, WireError>>()?,
                    backends: ips(&v.backends, &what)?,
                })
            })
            .collect::<Result<_, WireError>>()?;
        networks.push(NetworkInfo {
            gateway: ip(&x.gateway, &what)?,
            id: x.id,
            name: x.name,
            vni: x.vni,
            subnet: x.subnet,
            internal: x.internal,
            peers,
            records,
            vips,
        });
    }
    let ingress = match n.ingress {
        None => None,
        Some(i) => Some(IngressInfo {
            addr: match i.addr.as_str() {
                "" => None,
                a if crate::agent::netmap::parse_cidr(a).is_some() => Some(i.addr.clone()),
                a => return Err(WireError::Networks(format!("ingress address {a:?}"))),
            },
            sandboxes: ips(&i.sandboxes, "ingress")?,
            published: i
                .published
                .iter()
                .map(|p| {
                    Ok(PublishedInfo {
                        proto: protocol(&p.protocol, "ingress")?,
                        published: port(p.published, "ingress")?,
                        target: port(p.target, "ingress")?,
                        backends: ips(&p.backends, "ingress")?,
                    })
                })
                .collect::<Result<_, WireError>>()?,
            keep_source: i.keep_source,
            network_id: i.network_id,
        }),
    };
    let host_ports = n
        .host_ports
        .into_iter()
        .map(|h| {
            Ok(HostPortInfo {
                proto: protocol(&h.protocol, "host port")?,
                published: port(h.published, "host port")?,
                target: port(h.target, "host port")?,
                task_id: h.task_id,
            })
        })
        .collect::<Result<_, WireError>>()?;
    Ok(NodeNetworks {
        local_underlay,
        data_path_port: port(n.data_path_port, "data path")?,
        networks,
        ingress,
        host_ports,
    })
}

// ---- status reports ----

fn task_state(s: ReportedState) -> proto::TaskState {
    match s {
        ReportedState::Accepted => proto::TaskState::Accepted,
        ReportedState::Preparing => proto::TaskState::Preparing,
        ReportedState::Ready => proto::TaskState::Ready,
        ReportedState::Starting => proto::TaskState::Starting,
        ReportedState::Running => proto::TaskState::Running,
        ReportedState::Complete => proto::TaskState::Complete,
        ReportedState::Shutdown => proto::TaskState::Shutdown,
        ReportedState::Failed => proto::TaskState::Failed,
        ReportedState::Rejected => proto::TaskState::Rejected,
    }
}

pub fn encode_status(r: &StatusReport) -> proto::TaskStatus {
    proto::TaskStatus {
        task_id: r.task_id.clone(),
        state: task_state(r.state) as i32,
        message: r.message.clone(),
        err: r.err.clone(),
        exit_code: r.exit_code,
        pid: r.pid,
        timestamp_nanos: r.timestamp.timestamp_nanos_opt().unwrap_or_default(),
        log_tail: r
            .log_tail
            .iter()
            .map(|l| proto::LogLine {
                task_id: String::new(),
                time_nanos: l.time.timestamp_nanos_opt().unwrap_or_default(),
                stream: l.stream,
                line: l.line.clone().into_bytes(),
            })
            .collect(),
    }
}

pub fn decode_status(r: proto::TaskStatus) -> Result<StatusReport, WireError> {
    let bad = |what: String| WireError::Status {
        task: r.task_id.clone(),
        what,
    };
    let state = match proto::TaskState::try_from(r.state) {
        Ok(proto::TaskState::Accepted) => ReportedState::Accepted,
        Ok(proto::TaskState::Preparing) => ReportedState::Preparing,
        Ok(proto::TaskState::Ready) => ReportedState::Ready,
        Ok(proto::TaskState::Starting) => ReportedState::Starting,
        Ok(proto::TaskState::Running) => ReportedState::Running,
        Ok(proto::TaskState::Complete) => ReportedState::Complete,
        Ok(proto::TaskState::Shutdown) => ReportedState::Shutdown,
        Ok(proto::TaskState::Failed) => ReportedState::Failed,
        Ok(proto::TaskState::Rejected) => ReportedState::Rejected,
        Ok(proto::TaskState::Unspecified) | Err(_) => {
            return Err(bad(format!("unknown state {}", r.state)))
        }
    };
    if r.task_id.is_empty() {
        return Err(bad("no task ID".into()));
    }
    use swarm_core::model::{TailLine, LOG_TAIL_LINES, LOG_TAIL_LINE_BYTES};
    if r.log_tail.len() > LOG_TAIL_LINES
        || r.log_tail
            .iter()
            .any(|l| l.line.len() > LOG_TAIL_LINE_BYTES + 1)
    {
        return Err(bad(format!(
            "a log tail over {LOG_TAIL_LINES} lines or {LOG_TAIL_LINE_BYTES} bytes a line"
        )));
    }
    let log_tail = r
        .log_tail
        .iter()
        .map(|l| TailLine {
            time: DateTime::<Utc>::from_timestamp_nanos(l.time_nanos),
            stream: if l.stream == 2 { 2 } else { 1 },
            line: String::from_utf8_lossy(&l.line).into_owned(),
        })
        .collect();
    Ok(StatusReport {
        state,
        timestamp: DateTime::<Utc>::from_timestamp_nanos(r.timestamp_nanos),
        task_id: r.task_id,
        message: r.message,
        err: r.err,
        exit_code: r.exit_code,
        pid: r.pid,
        log_tail,
    })
}

#[cfg(test)]
mod tests;
