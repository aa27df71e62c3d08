//! Queries per second of the embedded DNS server answering from its table, over UDP on a
//! loopback port of this namespace (no root): `cargo run --release -p swarm-net --example
//! dns_bench [services] [seconds] [clients]`. Prints figures; asserts nothing.

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use swarm_net::dns::{NameRecord, Resolver, Scope};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let services = args.first().copied().unwrap_or(1000);
    let seconds = args.get(1).copied().unwrap_or(3) as u64;
    let clients = args.get(2).copied().unwrap_or(1);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let resolver = Resolver::new(vec![]);
    // Per service: the VIP, tasks.<name> with 5 tasks, and each task's name.
    let mut records = Vec::new();
    for s in 0..services as u32 {
        let base = 0x0a00_0000 + s * 8;
        let tasks: Vec<Ipv4Addr> = (1..6).map(|t| Ipv4Addr::from(base + t)).collect();
        records.push(NameRecord::new(
            "net",
            format!("svc{s}"),
            vec![Ipv4Addr::from(base)],
        ));
        records.push(NameRecord::new(
            "net",
            format!("tasks.svc{s}"),
            tasks.clone(),
        ));
        for (slot, t) in tasks.iter().enumerate() {
            records.push(
                NameRecord::new("net", format!("svc{s}.{}.t{s}x{slot}", slot + 1), vec![*t])
                    .with_reverse(),
            );
        }
    }
    let built = Instant::now();
    resolver.set_records(records);
    println!(
        "table: {} names, indexed in {:?}",
        resolver.table().len(),
        built.elapsed()
    );

    let handle = {
        let _in_rt = rt.enter();
        resolver
            .serve(
                None,
                "127.0.0.1:0".parse().unwrap(),
                Scope::new(vec!["net".into()]),
            )
            .unwrap()
    };
    let server = handle.addr();
    let run = Duration::from_secs(seconds);
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            std::thread::spawn(move || {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                s.connect(server).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                let mut buf = [0u8; 4096];
                let (mut n, mut i) = (0u64, c);
                let end = Instant::now() + run;
                while Instant::now() < end {
                    let name = if i % 2 == 0 {
                        format!("tasks.svc{}", i % services)
                    } else {
                        format!("svc{}", i % services)
                    };
                    let mut q = Message::query();
                    q.add_query(Query::query(
                        Name::from_ascii(&name).unwrap(),
                        RecordType::A,
                    ));
                    s.send(&q.to_vec().unwrap()).unwrap();
                    let got = s.recv(&mut buf).unwrap();
                    assert!(!Message::from_vec(&buf[..got]).unwrap().answers.is_empty());
                    n += 1;
                    i += clients;
                }
                n
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    println!(
        "{clients} client(s), one query in flight each: {:.0} queries/s ({total} in {seconds} s)",
        total as f64 / seconds as f64
    );
    rt.block_on(handle.stop());
}
