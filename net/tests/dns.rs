//! The embedded DNS server over real sockets. A fake upstream resolver on a loopback port
//! of the test's own namespace stands in for the host's resolvers (nothing leaves the
//! machine). The first tests serve on a loopback port of the test's namespace (no root);
//! the root test serves on 127.0.0.11:53 inside namespaces it makes and queries from
//! inside them.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use swarm_net::dns::{NameRecord, Resolver, Scope};
use swarm_net::netns;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

// ---- the fake upstream -------------------------------------------------------------

type Answerer = dyn Fn(&Message) -> Option<Message> + Send + Sync;

/// A DNS server on 127.0.0.1 (UDP and TCP, one port) in the test's namespace, answering
/// with `answer` (`None`: stays silent), recording every question's name.
struct Upstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    fn start(answer: impl Fn(&Message) -> Option<Message> + Send + Sync + 'static) -> Self {
        let answer: Arc<Answerer> = Arc::new(answer);
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            if let Ok(tcp) = std::net::TcpListener::bind(udp.local_addr().unwrap()) {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        {
            let (answer, seen, stop) = (answer.clone(), seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = udp.recv_from(&mut buf) else {
                        continue;
                    };
                    if let Some(out) = respond(&*answer, &seen, &buf[..n], true) {
                        let _ = udp.send_to(&out, from);
                    }
                }
            });
        }
        {
            let (answer, seen, stop) = (answer, seen.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((mut s, _)) = tcp.accept() else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    while let Ok(q) = read_framed(&mut s) {
                        match respond(&*answer, &seen, &q, false) {
                            Some(out) => write_framed(&mut s, &out).unwrap(),
                            None => break,
                        }
                    }
                }
            });
        }
        Upstream { addr, seen, stop }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The answer's bytes; over UDP cut to the 512 bytes of a query without EDNS, with TC,
/// as a real server does.
fn respond(answer: &Answerer, seen: &Mutex<Vec<String>>, q: &[u8], udp: bool) -> Option<Vec<u8>> {
    let q = Message::from_vec(q).ok()?;
    seen.lock()
        .unwrap()
        .push(q.queries[0].name().to_ascii().to_ascii_lowercase());
    let m = answer(&q)?;
    let out = m.to_vec().unwrap();
    if udp && out.len() > 512 {
        return Some(m.truncate().to_vec().unwrap());
    }
    Some(out)
}

/// The upstream's usual behaviour: `external.test.` is 192.0.2.10, `big.test.` has 100
/// addresses (truncated over UDP), anything else is NXDOMAIN.
fn internet(q: &Message) -> Option<Message> {
    let qn = q.queries[0].name().clone();
    let mut r = reply(q, ResponseCode::NoError);
    match qn.to_ascii().to_ascii_lowercase().as_str() {
        "external.test." => r.add_answer(Record::from_rdata(qn, 60, RData::A(A(ip("192.0.2.10"))))),
        "big.test." => {
            for i in 0..100 {
                let a = Ipv4Addr::new(198, 51, 100, i);
                r.add_answer(Record::from_rdata(qn.clone(), 60, RData::A(A(a))));
            }
            &mut r
        }
        _ => {
            r.metadata.response_code = ResponseCode::NXDomain;
            &mut r
        }
    };
    Some(r)
}

fn reply(q: &Message, rcode: ResponseCode) -> Message {
    let mut r = Message::response(q.metadata.id, q.metadata.op_code);
    r.metadata.response_code = rcode;
    r.metadata.recursion_available = true;
    r.add_queries(q.queries.iter().cloned());
    r
}

// ---- a client ----------------------------------------------------------------------

fn question(name: &str, qtype: RecordType) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m
}

/// Ask `server` over UDP from namespace `ns` (`None`: the test's own).
fn udp(
    ns: Option<&Path>,
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
) -> std::io::Result<Message> {
    let q = question(name, qtype);
    netns::run_in(ns, || {
        let s = UdpSocket::bind("0.0.0.0:0")?;
        s.connect(server)?;
        s.set_read_timeout(Some(Duration::from_secs(6)))?;
        s.send(&q.to_vec().unwrap())?;
        let mut buf = vec![0u8; 65535];
        let n = s.recv(&mut buf)?;
        let m = Message::from_vec(&buf[..n]).map_err(std::io::Error::other)?;
        assert_eq!(m.metadata.id, q.metadata.id);
        Ok(m)
    })
    .unwrap()
}

/// Ask `server` over TCP from namespace `ns`.
fn tcp(
    ns: Option<&Path>,
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
) -> std::io::Result<Message> {
    let q = question(name, qtype);
    netns::run_in(ns, || {
        let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(6)))?;
        write_framed(&mut s, &q.to_vec().unwrap())?;
        let m = Message::from_vec(&read_framed(&mut s)?).map_err(std::io::Error::other)?;
        assert_eq!(m.metadata.id, q.metadata.id);
        Ok(m)
    })
    .unwrap()
}

fn read_framed(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut msg)?;
    Ok(msg)
}

fn write_framed(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    s.write_all(&out)
}

fn addrs(m: &Message) -> Vec<Ipv4Addr> {
    let mut v: Vec<Ipv4Addr> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(A(a)) => Some(*a),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn records() -> Vec<NameRecord> {
    vec![
        NameRecord::new("n1", "web", vec![ip("10.0.1.100")]),
        NameRecord::new("n1", "tasks.web", vec![ip("10.0.1.5"), ip("10.0.1.6")]),
        NameRecord::new("n1", "web.1.abc123", vec![ip("10.0.1.5")]).with_reverse(),
        NameRecord::new("n1", "web.2.def456", vec![ip("10.0.1.6")]).with_reverse(),
        NameRecord::new("n2", "db", vec![ip("10.0.2.100")]),
    ]
}

fn resolver(upstreams: Vec<SocketAddr>, timeout: Duration) -> Resolver {
    let r = Resolver::with_timeout(upstreams, timeout);
    r.set_records(records());
    r.set_network_names(HashMap::from([
        ("n1".to_string(), "front".to_string()),
        ("n2".to_string(), "back".to_string()),
    ]));
    r
}

// ---- no root: the server on a loopback port ----------------------------------------

#[test]
fn on_loopback_the_table_answers_and_the_rest_is_forwarded_over_the_clients_transport() {
    let up = Upstream::start(internet);
    let rt = runtime();
    let _in_rt = rt.enter();
    let r = resolver(vec![up.addr], Duration::from_secs(2));
    let h = r
        .serve(
            None,
            "127.0.0.1:0".parse().unwrap(),
            Scope::new(vec!["n1".into()]),
        )
        .unwrap();
    let at = h.addr();

    let m = udp(None, at, "web", RecordType::A).unwrap();
    assert_eq!(addrs(&m), [ip("10.0.1.100")]);
    assert_eq!(m.answers[0].ttl, 600);
    let m = tcp(None, at, "Tasks.Web.", RecordType::A).unwrap();
    assert_eq!(addrs(&m), [ip("10.0.1.5"), ip("10.0.1.6")]);
    let m = udp(None, at, "6.1.0.10.in-addr.arpa", RecordType::PTR).unwrap();
    assert_eq!(
        m.answers[0].data,
        RData::PTR(PTR(Name::from_ascii("web.2.def456.front.").unwrap()))
    );
    assert!(
        up.seen().is_empty(),
        "the table's names went upstream: {:?}",
        up.seen()
    );

    for ask in [udp, tcp] {
        let m = ask(None, at, "external.test", RecordType::A).unwrap();
        assert_eq!(addrs(&m), [ip("192.0.2.10")]);
        let m = ask(None, at, "db", RecordType::A).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    }
    assert_eq!(
        up.seen(),
        ["external.test.", "db.", "external.test.", "db."]
    );

    // A truncated upstream answer goes back truncated over UDP; TCP gets it whole.
    let m = udp(None, at, "big.test", RecordType::A).unwrap();
    assert!(m.metadata.truncation);
    assert_eq!(
        tcp(None, at, "big.test", RecordType::A)
            .unwrap()
            .answers
            .len(),
        100
    );
}

#[test]
fn failing_upstreams_are_skipped_and_none_left_is_servfail() {
    let failing = Upstream::start(|q| Some(reply(q, ResponseCode::ServFail)));
    let refusing = Upstream::start(|q| Some(reply(q, ResponseCode::Refused)));
    let silent = Upstream::start(|_| None);
    let good = Upstream::start(internet);
    let rt = runtime();
    let _in_rt = rt.enter();
    let scope = Scope::new(vec!["n1".into()]);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();

    let r = resolver(
        vec![failing.addr, silent.addr, good.addr],
        Duration::from_millis(300),
    );
    let h = r.serve(None, any, scope.clone()).unwrap();
    let m = udp(None, h.addr(), "external.test", RecordType::A).unwrap();
    assert_eq!(addrs(&m), [ip("192.0.2.10")]);
    assert_eq!(silent.seen(), ["external.test."]);

    // Only three upstreams are ever asked (libnetwork's maxExtDNS).
    let r = resolver(
        vec![failing.addr, refusing.addr, silent.addr, good.addr],
        Duration::from_millis(300),
    );
    let h = r.serve(None, any, scope.clone()).unwrap();
    for ask in [udp, tcp] {
        let m = ask(None, h.addr(), "external.test", RecordType::A).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(m.queries[0].name().to_ascii(), "external.test.");
    }
    assert_eq!(good.seen().len(), 1, "the fourth upstream was asked");

    // No upstream at all: SERVFAIL at once.
    let r = resolver(vec![], Duration::from_millis(300));
    let h = r.serve(None, any, scope.clone()).unwrap();
    let started = Instant::now();
    let m = udp(None, h.addr(), "external.test", RecordType::A).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(started.elapsed() < Duration::from_secs(1));

    // A container's own upstreams (the service's --dns) replace the resolver's.
    let r = resolver(vec![failing.addr], Duration::from_millis(300));
    let own = Scope {
        upstreams: Some(vec![good.addr]),
        ..scope
    };
    let h = r.serve(None, any, own).unwrap();
    let m = udp(None, h.addr(), "external.test", RecordType::A).unwrap();
    assert_eq!(addrs(&m), [ip("192.0.2.10")]);
}

#[test]
fn stop_closes_both_sockets() {
    let rt = runtime();
    let r = resolver(vec![], Duration::from_millis(300));
    let h = {
        let _in_rt = rt.enter();
        r.serve(
            None,
            "127.0.0.1:0".parse().unwrap(),
            Scope::new(vec!["n1".into()]),
        )
        .unwrap()
    };
    let at = h.addr();
    assert!(udp(None, at, "web", RecordType::A).is_ok());
    rt.block_on(h.stop());
    // Nothing listens: TCP is refused, and UDP gets port unreachable (a connected
    // socket reports it as ConnectionRefused).
    assert_eq!(
        TcpStream::connect(at).unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    assert_eq!(
        udp(None, at, "web", RecordType::A).unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    // The port can be served again.
    let _in_rt = rt.enter();
    let again = r.serve(None, at, Scope::new(vec!["n1".into()])).unwrap();
    assert_eq!(
        addrs(&udp(None, again.addr(), "web", RecordType::A).unwrap()),
        [ip("10.0.1.100")]
    );
}

#[test]
fn serving_outside_a_runtime_is_an_error() {
    let r = Resolver::new(vec![]);
    let err = r
        .serve(None, "127.0.0.1:0".parse().unwrap(), Scope::default())
        .unwrap_err();
    assert!(err.to_string().contains("outside a tokio runtime"), "{err}");
}

// ---- root: 127.0.0.11:53 inside namespaces the test makes ---------------------------

/// From inside `ns`, until `deadline`: nothing answers on 127.0.0.11:53 (TCP refused and
/// UDP port unreachable).
fn nothing_listens_within(ns: &Path, deadline: Duration) -> bool {
    let end = Instant::now() + deadline;
    loop {
        let tcp_refused = netns::run_in(Some(ns), || {
            TcpStream::connect_timeout(&swarm_net::dns::ADDR, Duration::from_secs(1))
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
        })
        .unwrap();
        let udp_refused = udp(Some(ns), swarm_net::dns::ADDR, "web", RecordType::A)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
        if tcp_refused && udp_refused {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn in_container_namespaces_127_0_0_11_answers_each_container_for_its_own_networks() {
    if !common::can_run() {
        return;
    }
    let mut lab = common::Lab::new("dns", 9);
    let c1 = lab.netns("c1");
    let c2 = lab.netns("c2");
    // serve_in brings lo up itself.
    let _ = std::process::Command::new("nsenter")
        .arg(format!("--net={}", c1.display()))
        .args(["ip", "link", "set", "lo", "down"])
        .status();
    let up = Upstream::start(internet);
    let rt = runtime();
    let _in_rt = rt.enter();
    let r = resolver(vec![up.addr], Duration::from_secs(2));
    let h1 = r.serve_in(&c1, vec!["n1".into()]).unwrap();
    let h2 = r.serve_in(&c2, vec!["n2".into()]).unwrap();
    let dns = swarm_net::dns::ADDR;
    assert_eq!(h1.addr(), dns);
    let (c1, c2) = (Some(c1.as_path()), Some(c2.as_path()));

    // Each container resolves its own networks' names from the table.
    for ask in [udp, tcp] {
        assert_eq!(
            addrs(&ask(c1, dns, "web", RecordType::A).unwrap()),
            [ip("10.0.1.100")]
        );
        assert_eq!(
            addrs(&ask(c1, dns, "tasks.web", RecordType::A).unwrap()),
            [ip("10.0.1.5"), ip("10.0.1.6")]
        );
        assert_eq!(
            addrs(&ask(c2, dns, "db", RecordType::A).unwrap()),
            [ip("10.0.2.100")]
        );
    }
    assert_eq!(
        addrs(&udp(c1, dns, "WEB.front.", RecordType::A).unwrap()),
        [ip("10.0.1.100")]
    );
    let m = udp(c1, dns, "web", RecordType::AAAA).unwrap();
    assert!(m.answers.is_empty() && m.metadata.response_code == ResponseCode::NoError);
    let m = udp(c1, dns, "5.1.0.10.in-addr.arpa.", RecordType::PTR).unwrap();
    assert_eq!(
        m.answers[0].data,
        RData::PTR(PTR(Name::from_ascii("web.1.abc123.front.").unwrap()))
    );
    assert!(
        up.seen().is_empty(),
        "table names went upstream: {:?}",
        up.seen()
    );

    // Another network's names are not answered from the table: they go upstream, which
    // does not know them.
    let m = udp(c1, dns, "db", RecordType::A).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let m = tcp(c2, dns, "web", RecordType::A).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(up.seen(), ["db.", "web."]);

    // Unknown names are forwarded from the host's namespace (the upstream listens on the
    // host's loopback, unreachable from the containers) and the answer comes back.
    for ask in [udp, tcp] {
        assert_eq!(
            addrs(&ask(c2, dns, "external.test", RecordType::A).unwrap()),
            [ip("192.0.2.10")]
        );
    }

    // What a libc-less client in the container sees.
    if Path::new("/bin/busybox").exists() {
        let out = std::process::Command::new("nsenter")
            .arg(format!("--net={}", c1.unwrap().display()))
            .args(["/bin/busybox", "nslookup", "tasks.web", "127.0.0.11"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("10.0.1.5") && text.contains("10.0.1.6"),
            "busybox nslookup: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // A new table is served at once.
    let mut new = records();
    new[1] = NameRecord::new("n1", "tasks.web", vec![ip("10.0.1.7")]);
    r.set_records(new);
    assert_eq!(
        addrs(&udp(c1, dns, "tasks.web", RecordType::A).unwrap()),
        [ip("10.0.1.7")]
    );
    assert_eq!(
        addrs(&tcp(c1, dns, "tasks.web", RecordType::A).unwrap()),
        [ip("10.0.1.7")]
    );

    // Dropping a handle closes that container's sockets (soon); stop closes them before
    // it returns. The other container is served until then.
    drop(h1);
    assert!(nothing_listens_within(c1.unwrap(), Duration::from_secs(5)));
    assert_eq!(
        addrs(&udp(c2, dns, "db", RecordType::A).unwrap()),
        [ip("10.0.2.100")]
    );
    rt.block_on(h2.stop());
    assert!(nothing_listens_within(c2.unwrap(), Duration::ZERO));
}
