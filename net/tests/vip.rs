//! Root tests of VIP load balancing in a task's namespace: a client on an overlay
//! connects to a VIP and lands on the service's tasks in turn, on two hosts.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{can_run, fetch, fetch_within, Lab};
use swarm_net::{nft, vip, Endpoint, Overlay, Peer, Proto, Vip};

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn connections_to_a_vip_go_to_every_backend_in_turn() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("vip", 4);
    let (ha, ua) = lab.host(1);
    let (hb, ub) = lab.host(2);
    let net = |u| {
        Overlay::new(
            "vipnet",
            300,
            "10.0.5.0/24".parse().unwrap(),
            ip("10.0.5.1"),
            u,
        )
    };
    ha.ensure_overlay(&net(ua)).unwrap();
    hb.ensure_overlay(&net(ub)).unwrap();
    let client = lab.netns("client");
    let b1 = lab.netns("b1");
    let b2 = lab.netns("b2");
    let ep = |ns: &std::path::Path, a: &str| Endpoint {
        container_netns: ns.to_owned(),
        ifname: "eth0".into(),
        addr: ip(a),
        prefix: 24,
    };
    ha.attach("vipnet", &ep(&client, "10.0.5.2")).unwrap();
    ha.attach("vipnet", &ep(&b1, "10.0.5.5")).unwrap();
    hb.attach("vipnet", &ep(&b2, "10.0.5.6")).unwrap();
    ha.set_peers("vipnet", &[Peer::new(ub, ip("10.0.5.6"))])
        .unwrap();
    hb.set_peers(
        "vipnet",
        &[Peer::new(ua, ip("10.0.5.2")), Peer::new(ua, ip("10.0.5.5"))],
    )
    .unwrap();
    lab.serve(&b1, "10.0.5.5:8080".parse().unwrap(), "b1");
    lab.serve(&b2, "10.0.5.6:8080".parse().unwrap(), "b2");
    // Both backends answer directly first (ARP and tunnels warmed up).
    for b in ["10.0.5.5:8080", "10.0.5.6:8080"] {
        fetch_within(&client, b.parse().unwrap(), Duration::from_secs(5)).unwrap();
    }

    let web = Vip {
        vip: ip("10.0.5.100"),
        ports: vec![(Proto::Tcp, 8080)],
        backends: vec![ip("10.0.5.5"), ip("10.0.5.6")],
    };
    let empty = Vip {
        vip: ip("10.0.5.101"),
        ports: vec![(Proto::Tcp, 8080)],
        backends: vec![],
    };
    let any_port = Vip {
        vip: ip("10.0.5.102"),
        ports: vec![],
        backends: vec![ip("10.0.5.6")],
    };
    vip::set_vips(&client, &[web.clone(), empty.clone(), any_port.clone()]).unwrap();
    vip::set_vips(&client, &[web.clone(), empty.clone(), any_port.clone()]).unwrap();

    let to = |a: &str| -> SocketAddr { a.parse().unwrap() };
    let hits: Vec<String> = (0..6)
        .map(|_| fetch(&client, to("10.0.5.100:8080"), Duration::from_secs(2)).unwrap())
        .collect();
    let b1_hits = hits.iter().filter(|h| *h == "b1").count();
    assert_eq!((b1_hits, 6 - b1_hits), (3, 3), "round robin: {hits:?}");

    let refused = fetch(&client, to("10.0.5.101:8080"), Duration::from_secs(2)).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(
        fetch(&client, to("10.0.5.102:8080"), Duration::from_secs(2)).unwrap(),
        "b2"
    );

    // Replaced whole: one backend left, the other VIPs gone.
    let one = Vip {
        backends: vec![ip("10.0.5.5")],
        ..web
    };
    vip::set_vips(&client, &[one]).unwrap();
    for _ in 0..3 {
        assert_eq!(
            fetch(&client, to("10.0.5.100:8080"), Duration::from_secs(2)).unwrap(),
            "b1"
        );
    }
    assert!(fetch(&client, to("10.0.5.102:8080"), Duration::from_secs(1)).is_err());

    vip::clear_vips(&client).unwrap();
    vip::clear_vips(&client).unwrap();
    assert!(nft::tables(Some(&client)).unwrap().is_empty());
}
