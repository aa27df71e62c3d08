//! Root tests on the real kernel: two hosts (network namespaces on a private underlay)
//! each with the same overlay; containers on it reach each other across hosts, not
//! across networks; ensure converges without duplicates; remove leaves nothing.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{can_run, fetch, fetch_within, links, ping, Lab};
use swarm_net::netlink::Netlink;
use swarm_net::{mac_for, Endpoint, Overlay, Peer};

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn endpoint(ns: &std::path::Path, ifname: &str, addr: &str) -> Endpoint {
    Endpoint {
        container_netns: ns.to_owned(),
        ifname: ifname.into(),
        addr: ip(addr),
        prefix: 24,
    }
}

#[test]
fn containers_on_one_overlay_reach_each_other_across_hosts_and_not_across_networks() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("ov", 1);
    let (ha, ua) = lab.host(1);
    let (hb, ub) = lab.host(2);
    let net1 = |local| {
        Overlay::new(
            "net1aaaaaaaaaaaaaa",
            4097,
            "10.0.1.0/24".parse().unwrap(),
            ip("10.0.1.1"),
            local,
        )
    };
    // net2 reuses net1's subnet: only the VNI keeps them apart.
    let net2 = |local| {
        Overlay::new(
            "net2bbbbbbbbbbbbbb",
            4098,
            "10.0.1.0/24".parse().unwrap(),
            ip("10.0.1.1"),
            local,
        )
    };
    for (h, u) in [(&ha, ua), (&hb, ub)] {
        h.ensure_overlay(&net1(u)).unwrap();
        h.ensure_overlay(&net2(u)).unwrap();
    }
    let ca = lab.netns("ca");
    let cb = lab.netns("cb");
    let cx = lab.netns("cx"); // on net2, host b, with an address that is on net1 too
    let ea = endpoint(&ca, "eth0", "10.0.1.2");
    let eb = endpoint(&cb, "eth0", "10.0.1.3");
    let ex = endpoint(&cx, "eth0", "10.0.1.4");
    assert_eq!(
        ha.attach("net1aaaaaaaaaaaaaa", &ea).unwrap(),
        mac_for(ip("10.0.1.2"))
    );
    hb.attach("net1aaaaaaaaaaaaaa", &eb).unwrap();
    hb.attach("net2bbbbbbbbbbbbbb", &ex).unwrap();
    // Each host learns of the other's tasks; host a is even told (wrongly) that
    // 10.0.1.4 is a net1 task on host b, which the VNI must still keep out.
    ha.set_peers(
        "net1aaaaaaaaaaaaaa",
        &[Peer::new(ub, ip("10.0.1.3")), Peer::new(ub, ip("10.0.1.4"))],
    )
    .unwrap();
    hb.set_peers("net1aaaaaaaaaaaaaa", &[Peer::new(ua, ip("10.0.1.2"))])
        .unwrap();

    lab.serve(&cb, "10.0.1.3:7000".parse().unwrap(), "b");
    lab.serve(&cx, "10.0.1.4:7000".parse().unwrap(), "x");
    lab.serve(&ca, "10.0.1.2:7000".parse().unwrap(), "a");
    let to = |s: &str| -> SocketAddr { s.parse().unwrap() };
    assert_eq!(
        fetch_within(&ca, to("10.0.1.3:7000"), Duration::from_secs(5)).unwrap(),
        "b"
    );
    assert_eq!(
        fetch_within(&cb, to("10.0.1.2:7000"), Duration::from_secs(5)).unwrap(),
        "a"
    );
    if let Some(ok) = ping(&ca, ip("10.0.1.3")) {
        assert!(ok, "ping across hosts");
    }
    assert!(
        fetch(&ca, to("10.0.1.4:7000"), Duration::from_secs(1)).is_err(),
        "a net1 task reached a net2 task"
    );
    assert!(
        fetch(&cx, to("10.0.1.2:7000"), Duration::from_secs(1)).is_err(),
        "a net2 task reached a net1 task"
    );

    // The FDB and neighbour entries are exactly the peers; setting them again changes
    // nothing, and a shorter set removes the rest.
    let ov = ha.overlay_netns("net1aaaaaaaaaaaaaa");
    let mut nl = Netlink::open(Some(&ov)).unwrap();
    let vx = nl.need_link("vxlan0").unwrap();
    assert_eq!(nl.neighbours(vx.index, true).unwrap().len(), 2);
    assert_eq!(nl.neighbours(vx.index, false).unwrap().len(), 2);
    ha.set_peers("net1aaaaaaaaaaaaaa", &[Peer::new(ub, ip("10.0.1.3"))])
        .unwrap();
    ha.set_peers("net1aaaaaaaaaaaaaa", &[Peer::new(ub, ip("10.0.1.3"))])
        .unwrap();
    let fdb = nl.neighbours(vx.index, true).unwrap();
    assert_eq!(fdb.len(), 1);
    assert_eq!((fdb[0].ip, fdb[0].mac), (ub, mac_for(ip("10.0.1.3"))));
    assert_eq!(nl.neighbours(vx.index, false).unwrap().len(), 1);
    assert_eq!(
        fetch(&ca, to("10.0.1.3:7000"), Duration::from_secs(2)).unwrap(),
        "b"
    );

    // No default route on the overlay interface.
    let routes = std::process::Command::new("nsenter")
        .arg(format!("--net={}", ca.display()))
        .args(["ip", "-4", "route", "show", "default"])
        .output()
        .unwrap();
    assert!(
        routes.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&routes.stdout)
    );

    // Detach, remove: nothing of ours is left on either host.
    ha.detach(&ea).unwrap();
    ha.detach(&ea).unwrap();
    assert!(Netlink::open(Some(&ca))
        .unwrap()
        .link("eth0")
        .unwrap()
        .is_none());
    for h in [&ha, &hb] {
        h.remove_overlay("net1aaaaaaaaaaaaaa").unwrap();
        h.remove_overlay("net2bbbbbbbbbbbbbb").unwrap();
        h.remove_overlay("net2bbbbbbbbbbbbbb").unwrap();
        let left = h.list_ours().unwrap();
        assert!(left.is_empty(), "{left:?}");
    }
    // The containers' interfaces went with the overlay namespaces' veth ends.
    assert!(Netlink::open(Some(&cb))
        .unwrap()
        .link("eth0")
        .unwrap()
        .is_none());
}

#[test]
fn ensure_twice_and_after_a_half_made_state_converges_to_the_same_links() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("idem", 2);
    let (h, u) = lab.host(1);
    let ov = Overlay::new(
        "idemnetwork0000",
        77,
        "10.0.9.0/24".parse().unwrap(),
        ip("10.0.9.1"),
        u,
    );
    let ns = h.ensure_overlay(&ov).unwrap();
    let c = lab.netns("c");
    let ep = endpoint(&c, "eth0", "10.0.9.2");
    h.attach(&ov.network_id, &ep).unwrap();
    let host_links = links(h.netns());
    let ov_links = links(Some(&ns));
    let c_links = links(Some(&c));
    assert_eq!(
        ov_links
            .iter()
            .map(|l| l.0.as_str())
            .filter(|n| !n.starts_with("sw"))
            .collect::<Vec<_>>(),
        ["br0", "lo", "vxlan0"]
    );

    h.ensure_overlay(&ov).unwrap();
    h.attach(&ov.network_id, &ep).unwrap();
    assert_eq!(links(h.netns()), host_links);
    assert_eq!(links(Some(&ns)), ov_links);
    assert_eq!(links(Some(&c)), c_links);
    let mut nl = Netlink::open(Some(&ns)).unwrap();
    let br = nl.need_link("br0").unwrap();
    assert_eq!(nl.addrs(br.index).unwrap(), [(ip("10.0.9.1"), 24)]);

    // Half-made: the VXLAN device is gone (a crash before it was moved in) and a
    // stray device of ours with its temporary name sits in the host namespace.
    nl.del_link_by_name("vxlan0").unwrap();
    let mut host = Netlink::open(h.netns()).unwrap();
    host.add_bridge("swvx00004d", None).unwrap();
    h.ensure_overlay(&ov).unwrap();
    let vx = nl.need_link("vxlan0").unwrap();
    assert_eq!((vx.vni, vx.master, vx.up), (Some(77), Some(br.index), true));
    assert!(host.link("swvx00004d").unwrap().is_none());
    assert_eq!(links(h.netns()), host_links);

    // A stale VNI is replaced.
    let moved = Overlay {
        vni: 78,
        ..ov.clone()
    };
    h.ensure_overlay(&moved).unwrap();
    assert_eq!(nl.need_link("vxlan0").unwrap().vni, Some(78));

    h.remove_overlay(&ov.network_id).unwrap();
    assert!(h.list_ours().unwrap().is_empty());
}
