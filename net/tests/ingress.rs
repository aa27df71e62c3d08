//! Root tests of the routing mesh: three hosts with an ingress sandbox each, two tasks
//! (on b and c) behind a published port, a client on the switch; with iptables'
//! FORWARD policy DROP on every host, as Docker leaves it.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{can_run, fetch, fetch_udp, fetch_within, Lab, PEER};
use swarm_net::ingress::{self, return_rules, MESH_TABLE, PORTS_TABLE};
use swarm_net::{
    nft, Endpoint, GwBridge, Host, HostPort, IngressSandbox, MeshOptions, Overlay, Peer, Proto,
    PublishedPort,
};

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn sh(ns: &Path, prog: &str, args: &[&str]) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .arg(prog)
        .args(args)
        .output()
        .expect("run in namespace");
    assert!(out.status.success(), "{prog} {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the kernel holds for the mesh on one host: both tables and FORWARD.
fn state(h: &Host) -> (Option<String>, Option<String>, Option<String>, String) {
    let sbx = h.ingress_sandbox_netns();
    (
        nft::list_table(h.netns(), "ip", MESH_TABLE).unwrap(),
        nft::list_table(h.netns(), "ip", PORTS_TABLE).unwrap(),
        nft::list_table(Some(&sbx), "ip", "swarm").unwrap(),
        sh(h.netns().unwrap(), "iptables", &["-S", "FORWARD"]),
    )
}

/// `n` connections to `to` from `ns`, the answers sorted.
fn answers(ns: &Path, to: SocketAddr, n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n)
        .map(|_| fetch(ns, to, Duration::from_secs(2)).unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn the_routing_mesh_reaches_every_task_from_every_node() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("mesh", 13);
    let hosts: Vec<(Host, Ipv4Addr)> = (1..=3).map(|n| lab.host(n)).collect();
    let (client, client_ip) = lab.host(9);
    let client = client.netns().unwrap().to_owned();
    let forward_before: Vec<String> = hosts
        .iter()
        .map(|(h, _)| {
            sh(h.netns().unwrap(), "iptables", &["-P", "FORWARD", "DROP"]);
            sh(h.netns().unwrap(), "iptables", &["-S", "FORWARD"])
        })
        .collect();

    let gw = GwBridge::new("172.18.0.0/16".parse().unwrap()).unwrap();
    let sandbox_ip = |i: usize| Ipv4Addr::new(10, 255, 0, 2 + i as u8);
    let sandbox = |i: usize| IngressSandbox {
        overlay: Overlay::new(
            "ingress",
            4100,
            "10.255.0.0/24".parse().unwrap(),
            ip("10.255.0.1"),
            hosts[i].1,
        ),
        addr: format!("{}/24", sandbox_ip(i)),
        gw,
        gw_addr: "172.18.0.2/16".into(),
    };
    for (i, (h, _)) in hosts.iter().enumerate() {
        let ns = h.ensure_ingress_sandbox(&sandbox(i)).unwrap();
        assert_eq!(ns, h.ingress_sandbox_netns());
    }

    // Tasks t1 on b and t2 on c: eth0 on ingress, eth1 on the gateway bridge.
    let t1_ip = ip("10.255.0.5");
    let t2_ip = ip("10.255.0.6");
    let task = |lab: &mut Lab, name: &str, h: &Host, addr: Ipv4Addr| -> PathBuf {
        let ns = lab.netns(name);
        h.attach(
            "ingress",
            &Endpoint {
                container_netns: ns.clone(),
                ifname: "eth0".into(),
                addr,
                prefix: 24,
            },
        )
        .unwrap();
        h.attach_gw(
            &gw,
            &Endpoint {
                container_netns: ns.clone(),
                ifname: "eth1".into(),
                addr: ip("172.18.0.5"),
                prefix: 16,
            },
        )
        .unwrap();
        lab.serve(
            &ns,
            "0.0.0.0:80".parse().unwrap(),
            &format!("{name} {PEER}"),
        );
        lab.serve_udp(
            &ns,
            "0.0.0.0:53".parse().unwrap(),
            &format!("{name} {PEER}"),
        );
        ns
    };
    let t1 = task(&mut lab, "t1", &hosts[1].0, t1_ip);
    let t2 = task(&mut lab, "t2", &hosts[2].0, t2_ip);
    // Everyone on ingress as a peer of every host but its own.
    let on = [
        (hosts[0].1, sandbox_ip(0)),
        (hosts[1].1, sandbox_ip(1)),
        (hosts[2].1, sandbox_ip(2)),
        (hosts[1].1, t1_ip),
        (hosts[2].1, t2_ip),
    ];
    for (h, u) in &hosts {
        let peers: Vec<Peer> = on
            .iter()
            .filter(|(pu, _)| pu != u)
            .map(|(pu, pip)| Peer::new(*pu, *pip))
            .collect();
        h.set_peers("ingress", &peers).unwrap();
    }

    let ports = vec![
        PublishedPort {
            proto: Proto::Tcp,
            published: 8080,
            target: 80,
            backends: vec![t1_ip, t2_ip],
        },
        PublishedPort {
            proto: Proto::Udp,
            published: 5353,
            target: 53,
            backends: vec![t1_ip, t2_ip],
        },
        PublishedPort {
            proto: Proto::Tcp,
            published: 8081,
            target: 80,
            backends: vec![],
        },
    ];
    for (h, _) in &hosts {
        h.set_published(&ports, MeshOptions::default()).unwrap();
    }
    let at = |u: Ipv4Addr, port: u16| SocketAddr::new(u.into(), port);
    let (ha, ua) = (&hosts[0].0, hosts[0].1);
    let ha_ns = ha.netns().unwrap().to_owned();

    // From the switch to host a (no task there): both tasks, which see a's sandbox.
    let first = fetch_within(&client, at(ua, 8080), Duration::from_secs(10)).unwrap();
    assert!(first.ends_with(" 10.255.0.2"), "{first}");
    let got = answers(&client, at(ua, 8080), 4);
    assert_eq!(
        got,
        [
            "t1 10.255.0.2",
            "t1 10.255.0.2",
            "t2 10.255.0.2",
            "t2 10.255.0.2"
        ]
    );
    // From host a itself: 127.0.0.1 and its own underlay address.
    let got = answers(&ha_ns, at(ip("127.0.0.1"), 8080), 2);
    assert_eq!(got, ["t1 10.255.0.2", "t2 10.255.0.2"]);
    let got = answers(&ha_ns, at(ua, 8080), 2);
    assert_eq!(got, ["t1 10.255.0.2", "t2 10.255.0.2"]);
    // Host c's task through host b's sandbox.
    let got = answers(&client, at(hosts[1].1, 8080), 2);
    assert_eq!(got, ["t1 10.255.0.3", "t2 10.255.0.3"]);
    // UDP through the mesh.
    let mut udp: Vec<String> = (0..2)
        .map(|_| fetch_udp(&client, at(ua, 5353), Duration::from_secs(2)).unwrap())
        .collect();
    udp.sort();
    assert_eq!(udp, ["t1 10.255.0.2", "t2 10.255.0.2"]);
    // A port without tasks is refused at once.
    let t = std::time::Instant::now();
    let refused = fetch(&client, at(ua, 8081), Duration::from_secs(2)).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(t.elapsed() < Duration::from_millis(500));

    // Ensure twice: the same kernel state, rule for rule.
    let before: Vec<_> = hosts.iter().map(|(h, _)| state(h)).collect();
    for (i, (h, _)) in hosts.iter().enumerate() {
        h.ensure_ingress_sandbox(&sandbox(i)).unwrap();
        h.set_published(&ports, MeshOptions::default()).unwrap();
    }
    let after: Vec<_> = hosts.iter().map(|(h, _)| state(h)).collect();
    assert_eq!(before, after);
    let (mesh, _, sbx, forward) = &after[0];
    let mesh = mesh.as_ref().unwrap();
    assert!(
        mesh.contains("fib daddr type local tcp dport 8080 dnat to 172.18.0.2:8080"),
        "{mesh}"
    );
    assert!(
        sbx.as_ref().unwrap().contains("numgen inc mod 2"),
        "{sbx:?}"
    );
    assert_eq!(forward.matches("swarm-dnat").count(), 2, "{forward}");
    let inv = ha.list_ours().unwrap();
    assert!(inv.ingress_sandbox);
    assert_eq!(inv.port_tables, [MESH_TABLE]);

    // keep_source: the tasks see the client, through a's sandbox or b's. Without the
    // return paths a task answers the client by its default route, which fails.
    for (h, _) in &hosts {
        h.set_published(&ports, MeshOptions { keep_source: true })
            .unwrap();
    }
    assert!(fetch(&client, at(ua, 8080), Duration::from_millis(700)).is_err());
    let sandboxes = [sandbox_ip(0), sandbox_ip(1), sandbox_ip(2)];
    for t in [&t1, &t2] {
        ingress::set_return_paths(t, "eth0", &sandboxes).unwrap();
        ingress::set_return_paths(t, "eth0", &sandboxes).unwrap();
    }
    let rules = return_rules(&t1).unwrap();
    assert_eq!(rules.len(), 3, "{rules:?}");
    let route = sh(
        &t1,
        "ip",
        &[
            "route",
            "show",
            "table",
            &ingress::return_mark(sandbox_ip(0)).to_string(),
        ],
    );
    assert_eq!(route.trim(), "default via 10.255.0.2 dev eth0");
    for (h, _) in &hosts {
        h.set_published(&ports, MeshOptions { keep_source: true })
            .unwrap();
    }
    let c = client_ip.to_string();
    let got = answers(&client, at(ua, 8080), 4);
    assert_eq!(
        got,
        [
            format!("t1 {c}"),
            format!("t1 {c}"),
            format!("t2 {c}"),
            format!("t2 {c}")
        ]
    );
    let got = answers(&client, at(hosts[1].1, 8080), 2);
    assert_eq!(
        got,
        [format!("t1 {c}"), format!("t2 {c}")],
        "entering on the task's host"
    );
    let udp = fetch_udp(&client, at(hosts[2].1, 5353), Duration::from_secs(2)).unwrap();
    assert!(udp.ends_with(&c), "{udp}");
    // The node's own traffic is still masqueraded (and gets the sandbox's address).
    let got = answers(&ha_ns, at(ip("127.0.0.1"), 8080), 2);
    assert_eq!(got, ["t1 10.255.0.2", "t2 10.255.0.2"]);
    // Fewer sandboxes: the rules and tables follow.
    ingress::set_return_paths(&t1, "eth0", &sandboxes[..1]).unwrap();
    assert_eq!(return_rules(&t1).unwrap().len(), 1);
    ingress::set_return_paths(&t1, "eth0", &sandboxes).unwrap();

    // Host mode on b: only b's task, only on b.
    let hb = &hosts[1].0;
    let hp = [HostPort {
        proto: Proto::Tcp,
        published: 9090,
        target: 80,
        dest: ip("172.18.0.5"),
    }];
    hb.set_host_ports(&hp).unwrap();
    hb.set_host_ports(&hp).unwrap();
    let got = answers(&client, at(hosts[1].1, 9090), 2);
    assert_eq!(
        got.iter().filter(|a| a.starts_with("t1 ")).count(),
        2,
        "{got:?}"
    );
    let got = answers(hb.netns().unwrap(), at(ip("127.0.0.1"), 9090), 1);
    assert!(got[0].starts_with("t1 "), "{got:?}");
    assert!(fetch(&client, at(ua, 9090), Duration::from_secs(1)).is_err());
    assert_eq!(
        hb.list_ours().unwrap().port_tables,
        [MESH_TABLE, PORTS_TABLE]
    );

    // Everything off: nothing of ours left, FORWARD as it was.
    for t in [&t1, &t2] {
        ingress::clear_return_paths(t).unwrap();
        ingress::clear_return_paths(t).unwrap();
        assert!(return_rules(t).unwrap().is_empty());
        assert_eq!(
            nft::list_table(Some(t), "ip", ingress::RETURN_TABLE).unwrap(),
            None
        );
    }
    hb.set_host_ports(&[]).unwrap();
    for (i, (h, _)) in hosts.iter().enumerate() {
        h.set_published(&[], MeshOptions::default()).unwrap();
        assert_eq!(state(h).0, None);
        h.remove_ingress_sandbox().unwrap();
        h.remove_ingress_sandbox().unwrap();
        for t in [&t1, &t2] {
            h.detach(&Endpoint {
                container_netns: t.clone(),
                ifname: "eth1".into(),
                addr: ip("172.18.0.5"),
                prefix: 16,
            })
            .unwrap();
        }
        h.remove_overlay("ingress").unwrap();
        h.remove_gwbridge().unwrap();
        let left = h.list_ours().unwrap();
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(
            sh(h.netns().unwrap(), "iptables", &["-S", "FORWARD"]),
            forward_before[i]
        );
    }
}
