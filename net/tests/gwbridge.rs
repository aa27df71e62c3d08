//! Root tests of the egress path: a container's default route through the gateway
//! bridge, masqueraded to its host's underlay address, on a host whose iptables FORWARD
//! policy is DROP as Docker leaves it.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use common::{can_run, fetch, fetch_within, Lab, PEER};
use swarm_net::netlink::Netlink;
use swarm_net::{Endpoint, GwBridge};

fn iptables(ns: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .arg("iptables")
        .args(args)
        .output()
        .expect("run iptables");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn egress_through_the_gateway_bridge_is_masqueraded_despite_a_forward_drop_policy() {
    if !can_run() {
        return;
    }
    if Command::new("iptables").arg("--version").output().is_err() {
        eprintln!("skipped: iptables is not installed");
        return;
    }
    let mut lab = Lab::new("gw", 3);
    let (h, ua) = lab.host(1);
    let (hb, ub) = lab.host(2);
    let host_ns = h.netns().unwrap().to_owned();
    // What Docker does to every host it runs on.
    assert!(iptables(&host_ns, &["-P", "FORWARD", "DROP"]).0);

    let gw = GwBridge::new("172.31.3.0/24".parse().unwrap()).unwrap();
    assert_eq!(gw.gateway, Ipv4Addr::new(172, 31, 3, 1));
    h.ensure_gwbridge(&gw).unwrap();
    h.ensure_gwbridge(&gw).unwrap();
    let c = lab.netns("c");
    let ep = Endpoint {
        container_netns: c.clone(),
        ifname: "eth1".into(),
        addr: Ipv4Addr::new(172, 31, 3, 2),
        prefix: 24,
    };
    h.attach_gw(&gw, &ep).unwrap();
    h.attach_gw(&gw, &ep).unwrap();

    let outside: SocketAddr = SocketAddr::new(ub.into(), 7100);
    lab.serve(hb.netns().unwrap(), outside, PEER);
    assert_eq!(
        fetch_within(&c, outside, Duration::from_secs(5)).unwrap(),
        ua.to_string(),
        "the outside sees the host's underlay address"
    );

    // Each accept is there once, however often ensure ran.
    let (_, rules) = iptables(&host_ns, &["-S", "FORWARD"]);
    assert_eq!(rules.matches("swarm").count(), 2, "{rules}");
    // Our nftables accept alone does not get past iptables' DROP (an accept ends only
    // its own base chain): without the iptables accept the egress stops, and ensure
    // puts it back.
    assert!(
        iptables(
            &host_ns,
            &[
                "-D",
                "FORWARD",
                "-i",
                "sw_gwbridge",
                "-m",
                "comment",
                "--comment",
                "swarm",
                "-j",
                "ACCEPT"
            ]
        )
        .0
    );
    assert!(fetch(&c, outside, Duration::from_secs(1)).is_err());
    h.ensure_gwbridge(&gw).unwrap();
    assert_eq!(
        fetch_within(&c, outside, Duration::from_secs(5)).unwrap(),
        ua.to_string()
    );

    let inv = h.list_ours().unwrap();
    assert_eq!(inv.nft_tables, ["inet"]);
    assert_eq!(
        inv.links.iter().filter(|l| l.name == "sw_gwbridge").count(),
        1
    );

    h.detach(&ep).unwrap();
    h.remove_gwbridge().unwrap();
    h.remove_gwbridge().unwrap();
    let left = h.list_ours().unwrap();
    assert!(left.is_empty(), "{left:?}");
    let (_, rules) = iptables(&host_ns, &["-S", "FORWARD"]);
    assert!(!rules.contains("swarm"), "{rules}");
    assert!(Netlink::open(Some(&c))
        .unwrap()
        .link("eth1")
        .unwrap()
        .is_none());
}
