use prost::Message;
use serde_json::json;

use super::*;

fn assignment() -> Assignment {
    let spec: swarm_core::model::TaskSpec = serde_json::from_value(json!({
        "ContainerSpec": {"Image": "busybox:1", "Args": ["sleep", "1d"]}
    }))
    .unwrap();
    let mut data = TaskData::default();
    data.secrets.insert("s1".into(), b"pw".to_vec());
    data.configs.insert("c1".into(), vec![0, 1, 2]);
    Assignment {
        who: TaskIdentity {
            task_id: "t1".into(),
            service_id: "s".into(),
            service_name: "web".into(),
            node_id: "n1".into(),
            slot: 2,
        },
        spec: Arc::new(spec),
        desired: Desired::Shutdown,
        data,
        networks: vec![TaskAttachment {
            network_id: "net1".into(),
            addr: "10.0.1.5/24".into(),
        }],
    }
}

fn networks() -> NodeNetworks {
    NodeNetworks {
        local_underlay: Some(Ipv4Addr::new(192, 168, 1, 2)),
        data_path_port: 4789,
        networks: vec![NetworkInfo {
            id: "net1".into(),
            name: "front".into(),
            vni: 4097,
            subnet: "10.0.1.0/24".into(),
            gateway: Ipv4Addr::new(10, 0, 1, 1),
            internal: true,
            peers: vec![PeerInfo {
                task_ip: Ipv4Addr::new(10, 0, 1, 7),
                mac: "02:42:0a:00:01:07".into(),
                underlay: Ipv4Addr::new(192, 168, 1, 3),
            }],
            records: vec![NameRecord {
                name: "web".into(),
                addrs: vec![Ipv4Addr::new(10, 0, 1, 2)],
                reverse: true,
            }],
            vips: vec![VipInfo {
                service: "web".into(),
                vip: Ipv4Addr::new(10, 0, 1, 2),
                ports: vec![("tcp".into(), 80), ("udp".into(), 53)],
                backends: vec![Ipv4Addr::new(10, 0, 1, 7)],
            }],
        }],
        ingress: Some(IngressInfo {
            network_id: "ing".into(),
            addr: Some("10.0.0.2/24".into()),
            sandboxes: vec![Ipv4Addr::new(10, 0, 0, 2)],
            published: vec![PublishedInfo {
                proto: "tcp".into(),
                published: 8080,
                target: 80,
                backends: vec![Ipv4Addr::new(10, 0, 0, 5)],
            }],
            keep_source: true,
        }),
        host_ports: vec![HostPortInfo {
            task_id: "t1".into(),
            proto: "udp".into(),
            published: 53,
            target: 5353,
        }],
    }
}

/// Through the wire's bytes, as the other side decodes them.
fn through_bytes<M: Message + Default>(m: &M) -> M {
    M::decode(m.encode_to_vec().as_slice()).unwrap()
}

#[test]
fn assignments_and_networks_come_back_as_they_went() {
    let a = assignment();
    let wire = through_bytes(&encode_assignment(&a).unwrap());
    assert_eq!(decode_assignment(wire).unwrap(), a);
    let n = networks();
    assert_eq!(
        decode_networks(through_bytes(&encode_networks(&n))).unwrap(),
        n
    );
    let none = NodeNetworks::default();
    assert_eq!(
        decode_networks(through_bytes(&encode_networks(&none))).unwrap(),
        none
    );
}

#[test]
fn status_reports_come_back_as_they_went() {
    let r = StatusReport {
        task_id: "t1".into(),
        state: ReportedState::Failed,
        message: "started".into(),
        err: Some("task: non-zero exit (3)".into()),
        exit_code: Some(3),
        pid: None,
        timestamp: DateTime::<Utc>::from_timestamp_nanos(1_700_000_000_123_456_789),
        log_tail: vec![swarm_core::model::TailLine {
            time: DateTime::<Utc>::from_timestamp_nanos(1_700_000_000_000_000_001),
            stream: 2,
            line: "boom\n".into(),
        }],
    };
    assert_eq!(decode_status(through_bytes(&encode_status(&r))).unwrap(), r);
}

#[test]
fn fields_a_newer_peer_adds_are_ignored() {
    let a = assignment();
    let mut bytes = encode_assignment(&a).unwrap().encode_to_vec();
    // Field 99 (varint 1) and field 100 (bytes "x"): unknown to this build.
    bytes.extend_from_slice(&[0x98, 0x06, 0x01, 0xa2, 0x06, 0x01, b'x']);
    let wire = proto::Assignment::decode(bytes.as_slice()).unwrap();
    assert_eq!(decode_assignment(wire).unwrap(), a);
}

#[test]
fn an_unusable_assignment_is_an_error_never_a_default() {
    let good = encode_assignment(&assignment()).unwrap();
    let cases: Vec<(proto::Assignment, &str)> = vec![
        (
            proto::Assignment {
                spec: b"{not json".to_vec(),
                ..good.clone()
            },
            "task t1: spec: ",
        ),
        (
            proto::Assignment {
                spec: Vec::new(),
                ..good.clone()
            },
            "task t1: spec: ",
        ),
        (
            proto::Assignment {
                desired: 7,
                ..good.clone()
            },
            "task t1: unknown desired state 7",
        ),
        (
            proto::Assignment {
                desired: 0,
                ..good.clone()
            },
            "task t1: unknown desired state 0",
        ),
        (
            proto::Assignment {
                task_id: String::new(),
                ..good.clone()
            },
            "task : no task ID",
        ),
        (
            proto::Assignment {
                networks: vec![proto::TaskAttachment {
                    network_id: "n".into(),
                    addr: "10.0.1.5".into(),
                }],
                ..good.clone()
            },
            "task t1: attachment to network \"n\" with address \"10.0.1.5\"",
        ),
    ];
    for (wire, want) in cases {
        let err = decode_assignment(wire).unwrap_err().to_string();
        assert!(
            err.starts_with(want),
            "{err:?} does not start with {want:?}"
        );
    }
    // One bad assignment spoils the whole message.
    let bad = proto::Assignment {
        desired: 9,
        ..good.clone()
    };
    assert!(decode_assignments(vec![good.clone(), bad]).is_err());
    assert_eq!(decode_assignments(vec![good]).unwrap().len(), 1);
}

#[test]
fn unusable_networks_are_an_error() {
    let good = encode_networks(&networks());
    let mut bad_ip = good.clone();
    bad_ip.networks[0].peers[0].underlay = "300.1.1.1".into();
    let mut bad_port = good.clone();
    bad_port.host_ports[0].published = 70000;
    let mut bad_proto = good.clone();
    bad_proto.networks[0].vips[0].ports[0].protocol = "sctp".into();
    let mut bad_subnet = good.clone();
    bad_subnet.networks[0].subnet = "10.0.1.0".into();
    let mut bad_mac = good;
    bad_mac.networks[0].peers[0].mac = "02:42".into();
    for (n, want) in [
        (
            bad_ip,
            "networks: network net1: not an IPv4 address: \"300.1.1.1\"",
        ),
        (bad_port, "networks: host port: port 70000 out of range"),
        (bad_proto, "networks: network net1: protocol \"sctp\""),
        (bad_subnet, "networks: network net1: subnet \"10.0.1.0\""),
        (bad_mac, "networks: network net1: MAC \"02:42\""),
    ] {
        assert_eq!(decode_networks(n).unwrap_err().to_string(), want);
    }
}

#[test]
fn another_protocol_or_an_unknown_state_is_refused() {
    assert_eq!(check_protocol(PROTOCOL), Ok(()));
    assert_eq!(
        check_protocol(0).unwrap_err().to_string(),
        format!("the dispatcher speaks protocol 0, this node speaks {PROTOCOL}")
    );
    let r = proto::TaskStatus {
        task_id: "t1".into(),
        state: 42,
        ..proto::TaskStatus::default()
    };
    assert_eq!(
        decode_status(r).unwrap_err().to_string(),
        "status of task t1: unknown state 42"
    );
}
