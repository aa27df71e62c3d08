//! Answering one query from the table, as libnetwork's `Resolver.serveDNS` does: a pure
//! function of (table, scope, query) to a [`Reply`], and the encoding of a local answer
//! within the client's size limit. No sockets here.
//!
//! | question | ours (in the table for this container) | not ours |
//! |---|---|---|
//! | A | every address, shuffled, TTL 600 | forward (empty NOERROR if ndots is set and the name has one label) |
//! | AAAA | empty NOERROR (we have no IPv6 records) | as A |
//! | MX | empty NOERROR ("implicit MX", RFC 5321) | forward |
//! | PTR `d.c.b.a.in-addr.arpa` | `<task name>.<network name>.` | forward |
//! | anything else | forward | forward |

use std::net::Ipv4Addr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rand::seq::SliceRandom;
use rand::Rng;

use super::records::Table;
use super::scope::Scope;

/// The TTL of every answer from the table (libnetwork's `respTTL`).
pub const TTL: u32 = 600;

/// What the server does with one query.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A response from the table (or an empty one the rules call for).
    Local(Message),
    /// Not ours: ask the upstreams.
    Forward,
    /// Nothing to answer: a message without a question, or a response. libnetwork drops
    /// these too.
    Drop,
}

/// The transport a query came on, which bounds the size of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What to do with `query` from a container with `scope`.
pub fn answer(table: &Table, scope: &Scope, query: &Message, rng: &mut impl Rng) -> Reply {
    if query.metadata.message_type != MessageType::Query || query.metadata.op_code != OpCode::Query
    {
        return Reply::Drop;
    }
    // libnetwork looks at the first question only.
    let Some(q) = query.queries.first() else {
        return Reply::Drop;
    };
    let qname = q.name();
    let name = qname.to_ascii();
    let nets = &scope.networks;
    match q.query_type() {
        RecordType::A | RecordType::AAAA => {
            if let Some(addrs) = table.lookup(nets, &name) {
                let mut resp = response_to(query);
                if q.query_type() == RecordType::A {
                    let mut addrs = addrs.to_vec();
                    addrs.shuffle(rng);
                    resp.answers = addrs
                        .into_iter()
                        .map(|a| Record::from_rdata(qname.clone(), TTL, RData::A(A(a))))
                        .collect();
                }
                Reply::Local(resp)
            } else if scope.ndots_set && qname.num_labels() == 1 {
                // Let the client retry with its search domains rather than asking the
                // world about a bare name.
                Reply::Local(response_to(query))
            } else {
                Reply::Forward
            }
        }
        RecordType::MX if table.lookup(nets, &name).is_some() => Reply::Local(response_to(query)),
        RecordType::PTR => match in_addr_arpa(qname).and_then(|a| table.reverse(nets, a)) {
            Some(target) => match Name::from_ascii(format!("{target}.")) {
                Ok(target) => {
                    let mut resp = response_to(query);
                    resp.answers = vec![Record::from_rdata(
                        qname.clone(),
                        TTL,
                        RData::PTR(PTR(target)),
                    )];
                    Reply::Local(resp)
                }
                Err(_) => Reply::Forward,
            },
            None => Reply::Forward,
        },
        _ => Reply::Forward,
    }
}

/// The response skeleton libnetwork's `createRespMsg` makes: the query's ID, opcode,
/// question, RD and CD, and RA set (we do recurse, through the upstreams). An EDNS query
/// gets an OPT record back (RFC 6891; libnetwork omits it).
pub fn response_to(query: &Message) -> Message {
    let mut resp = Message::response(query.metadata.id, query.metadata.op_code);
    resp.metadata.recursion_desired = query.metadata.recursion_desired;
    resp.metadata.checking_disabled = query.metadata.checking_disabled;
    resp.metadata.recursion_available = true;
    resp.add_queries(query.queries.iter().cloned());
    if query.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        resp.set_edns(edns);
    }
    resp
}

/// The UDP payload we advertise in answers (the DNS flag day 2020 value).
const EDNS_PAYLOAD: u16 = 1232;

/// SERVFAIL for `query`: no upstream answered, or forwarding is impossible.
pub fn servfail(query: &Message) -> Message {
    let mut resp = response_to(query);
    resp.metadata.response_code = ResponseCode::ServFail;
    resp
}

/// REFUSED for `query`: too many forwarded queries in flight (libnetwork's limit).
pub fn refused(query: &Message) -> Message {
    let mut resp = response_to(query);
    resp.metadata.response_code = ResponseCode::Refused;
    resp
}

/// Encode a local answer within what the client can take: 512 bytes over UDP or the
/// query's EDNS payload if larger, 64 KiB over TCP. Answers are dropped from the end until
/// it fits, with TC set over UDP so the client retries over TCP (miekg's `Truncate`, which
/// libnetwork calls). `None` only if the message cannot be encoded at all.
pub fn encode(mut resp: Message, query: &Message, transport: Transport) -> Option<Vec<u8>> {
    let max = match transport {
        Transport::Udp => usize::from(query.max_payload()),
        Transport::Tcp => usize::from(u16::MAX),
    };
    loop {
        let bytes = resp.to_vec().ok()?;
        if bytes.len() <= max || resp.answers.is_empty() {
            return Some(bytes);
        }
        resp.answers.pop();
        if transport == Transport::Udp {
            resp.metadata.truncation = true;
        }
    }
}

/// The IPv4 address of a `d.c.b.a.in-addr.arpa.` name (whole addresses only).
fn in_addr_arpa(name: &Name) -> Option<Ipv4Addr> {
    let labels: Vec<Vec<u8>> = name.iter().map(|l| l.to_ascii_lowercase()).collect();
    let [d, c, b, a, in_addr, arpa] = labels.as_slice() else {
        return None;
    };
    if in_addr != b"in-addr" || arpa != b"arpa" {
        return None;
    }
    let octet = |l: &[u8]| std::str::from_utf8(l).ok()?.parse::<u8>().ok();
    Some(Ipv4Addr::new(octet(a)?, octet(b)?, octet(c)?, octet(d)?))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use hickory_proto::op::Query;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::dns::records::NameRecord;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn table() -> Table {
        let tasks: Vec<Ipv4Addr> = (10..20).map(|i| Ipv4Addr::new(10, 0, 1, i)).collect();
        Table::new(
            &[
                NameRecord::new("n1", "web", vec![ip("10.0.1.100")]),
                NameRecord::new("n1", "tasks.web", tasks),
                NameRecord::new("n1", "web.1.abc", vec![ip("10.0.1.10")]).with_reverse(),
                NameRecord::new("n2", "db", vec![ip("10.0.2.7")]),
            ],
            &HashMap::from([("n1".to_string(), "front".to_string())]),
        )
    }

    fn query(name: &str, qtype: RecordType) -> Message {
        let mut m = Message::query();
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        m
    }

    fn scope(nets: &[&str]) -> Scope {
        Scope::new(nets.iter().map(|s| s.to_string()).collect())
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn local(r: Reply) -> Message {
        match r {
            Reply::Local(m) => m,
            other => panic!("expected a local answer, got {other:?}"),
        }
    }

    fn a_addrs(m: &Message) -> Vec<Ipv4Addr> {
        m.answers
            .iter()
            .map(|r| match &r.data {
                RData::A(A(a)) => *a,
                other => panic!("not an A record: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_service_name_gets_its_vip_with_dockers_ttl_and_flags() {
        let q = query("web.", RecordType::A);
        let m = local(answer(&table(), &scope(&["n1"]), &q, &mut rng()));
        assert_eq!(a_addrs(&m), vec![ip("10.0.1.100")]);
        assert_eq!(m.answers[0].ttl, TTL);
        assert_eq!(&m.answers[0].name, q.queries[0].name());
        assert_eq!(m.metadata.id, q.metadata.id);
        assert_eq!(m.metadata.message_type, MessageType::Response);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.recursion_available && m.metadata.recursion_desired);
        assert!(!m.metadata.authoritative);
        assert_eq!(m.queries, q.queries);
    }

    #[test]
    fn tasks_name_gets_every_address_shuffled_per_query() {
        let q = query("tasks.web", RecordType::A);
        let mut r = rng();
        let orders: BTreeSet<Vec<Ipv4Addr>> = (0..20)
            .map(|_| a_addrs(&local(answer(&table(), &scope(&["n1"]), &q, &mut r))))
            .collect();
        assert!(orders.len() > 1, "the order never changed");
        for o in &orders {
            let set: BTreeSet<_> = o.iter().copied().collect();
            assert_eq!(set.len(), 10);
            assert_eq!(o.len(), 10);
        }
    }

    #[test]
    fn names_not_ours_are_forwarded_and_other_networks_are_not_ours() {
        let t = table();
        for (name, qtype) in [
            ("db", RecordType::A),
            ("db", RecordType::AAAA),
            ("example.com.", RecordType::A),
            ("web", RecordType::TXT),
            ("web", RecordType::SRV),
            ("nosuch", RecordType::MX),
        ] {
            let r = answer(&t, &scope(&["n1"]), &query(name, qtype), &mut rng());
            assert_eq!(r, Reply::Forward, "{name} {qtype}");
        }
        let m = local(answer(
            &t,
            &scope(&["n2"]),
            &query("db", RecordType::A),
            &mut rng(),
        ));
        assert_eq!(a_addrs(&m), vec![ip("10.0.2.7")]);
    }

    #[test]
    fn aaaa_and_mx_for_our_names_are_empty_noerror() {
        for qtype in [RecordType::AAAA, RecordType::MX] {
            let m = local(answer(
                &table(),
                &scope(&["n1"]),
                &query("web", qtype),
                &mut rng(),
            ));
            assert!(m.answers.is_empty(), "{qtype}");
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        }
    }

    #[test]
    fn with_ndots_set_a_bare_unknown_name_is_answered_empty_not_forwarded() {
        let mut s = scope(&["n1"]);
        s.ndots_set = true;
        let m = local(answer(
            &table(),
            &s,
            &query("nosuch", RecordType::A),
            &mut rng(),
        ));
        assert!(m.answers.is_empty());
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        let r = answer(
            &table(),
            &s,
            &query("nosuch.example.", RecordType::A),
            &mut rng(),
        );
        assert_eq!(r, Reply::Forward);
        let r = answer(&table(), &s, &query("nosuch", RecordType::TXT), &mut rng());
        assert_eq!(r, Reply::Forward);
    }

    #[test]
    fn ptr_for_a_task_address_names_the_task_on_its_network() {
        let q = query("10.1.0.10.in-addr.arpa.", RecordType::PTR);
        let m = local(answer(&table(), &scope(&["n1"]), &q, &mut rng()));
        assert_eq!(m.answers.len(), 1);
        assert_eq!(
            &m.answers[0].data,
            &RData::PTR(PTR(Name::from_ascii("web.1.abc.front.").unwrap()))
        );
        // A VIP, another network's view, and malformed names go upstream.
        for (name, nets) in [
            ("100.1.0.10.in-addr.arpa.", ["n1"]),
            ("10.1.0.10.in-addr.arpa.", ["n2"]),
            ("1.0.10.in-addr.arpa.", ["n1"]),
            ("x.1.0.10.in-addr.arpa.", ["n1"]),
        ] {
            let r = answer(
                &table(),
                &scope(&nets),
                &query(name, RecordType::PTR),
                &mut rng(),
            );
            assert_eq!(r, Reply::Forward, "{name}");
        }
    }

    #[test]
    fn responses_and_empty_questions_are_dropped() {
        let mut q = query("web", RecordType::A);
        q.metadata.message_type = MessageType::Response;
        assert_eq!(
            answer(&table(), &scope(&["n1"]), &q, &mut rng()),
            Reply::Drop
        );
        let empty = Message::query();
        assert_eq!(
            answer(&table(), &scope(&["n1"]), &empty, &mut rng()),
            Reply::Drop
        );
    }

    #[test]
    fn large_answers_are_truncated_over_udp_with_tc_and_whole_over_tcp() {
        let many: Vec<Ipv4Addr> = (0..100).map(|i| Ipv4Addr::new(10, 0, 3, i)).collect();
        let t = Table::new(&[NameRecord::new("n1", "tasks.big", many)], &HashMap::new());
        let q = query("tasks.big.", RecordType::A);
        let resp = local(answer(&t, &scope(&["n1"]), &q, &mut rng()));

        let udp = encode(resp.clone(), &q, Transport::Udp).unwrap();
        assert!(udp.len() <= 512, "{}", udp.len());
        let udp = Message::from_vec(&udp).unwrap();
        assert!(udp.metadata.truncation);
        assert!(!udp.answers.is_empty() && udp.answers.len() < 100);

        let tcp = Message::from_vec(&encode(resp.clone(), &q, Transport::Tcp).unwrap()).unwrap();
        assert!(!tcp.metadata.truncation);
        assert_eq!(tcp.answers.len(), 100);

        // A client that takes 4096 bytes over UDP gets all of them.
        let mut q_edns = q.clone();
        let mut e = Edns::new();
        e.set_max_payload(4096);
        q_edns.set_edns(e);
        let resp = local(answer(&t, &scope(&["n1"]), &q_edns, &mut rng()));
        let big = Message::from_vec(&encode(resp, &q_edns, Transport::Udp).unwrap()).unwrap();
        assert_eq!(big.answers.len(), 100);
        assert!(!big.metadata.truncation);
        assert!(big.edns.is_some());
    }

    #[test]
    fn servfail_and_refused_echo_the_question() {
        let q = query("web", RecordType::A);
        let s = servfail(&q);
        assert_eq!(s.metadata.response_code, ResponseCode::ServFail);
        assert_eq!((s.metadata.id, &s.queries), (q.metadata.id, &q.queries));
        assert_eq!(refused(&q).metadata.response_code, ResponseCode::Refused);
    }
}
