//! Allocator tests: exact actions on a store, driven pass by pass as the leader would
//! (allocate, apply the actions as one entry, allocate again).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::model::{
    ContainerSpec, Driver, EndpointSpec, IpamConfig, IpamOptions, Meta, NetworkAttachmentConfig,
    NetworkSpec, PortConfig, PortProtocol, PublishMode, ServiceMode, ServiceSpec, Swarm, TaskSpec,
    VXLANID_OPTION,
};
use crate::store::{Object, Stored};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

/// A store and the next Raft index, applying as the leader would.
struct Leader {
    store: Store,
    index: u64,
}

impl Leader {
    fn new(pools: &[&str], size: u32) -> Leader {
        let mut l = Leader {
            store: Store::new(),
            index: 0,
        };
        let mut swarm = Swarm::default();
        swarm.cluster.meta = Meta::with_id("swarm");
        swarm.cluster.default_addr_pool = pools.iter().map(|p| p.to_string()).collect();
        swarm.cluster.subnet_size = size;
        l.apply(vec![StoreAction::Create(Object::Cluster(Box::new(swarm)))]);
        l
    }

    fn apply(&mut self, actions: Vec<StoreAction>) {
        self.try_apply(actions).unwrap();
    }

    fn try_apply(&mut self, actions: Vec<StoreAction>) -> crate::Result<()> {
        self.index += 1;
        self.store
            .apply(&actions, self.index, t(self.index as i64))?;
        Ok(())
    }

    fn create(&mut self, o: impl Stored) {
        self.apply(vec![StoreAction::Create(o.into_object())]);
    }

    /// One allocator pass, its actions applied.
    fn pass(&mut self) -> Allocation {
        let a = allocate(&self.store, t(1000));
        self.apply(a.actions.clone());
        a
    }

    /// Passes until nothing changes.
    fn settle(&mut self) {
        for _ in 0..5 {
            if self.pass().actions.is_empty() {
                return;
            }
        }
        panic!("allocation does not settle");
    }

    fn network(&self, id: &str) -> &Network {
        self.store.network(id).unwrap()
    }

    fn addresses(&self, task: &str) -> Vec<String> {
        let t = self.store.task(task).unwrap();
        t.networks_attachments
            .iter()
            .flat_map(|a| a.addresses.clone())
            .collect()
    }

    fn fail(&mut self, task: &str) {
        self.apply(vec![StoreAction::SetTaskStatus {
            id: task.into(),
            status: task_status(TaskState::Failed, "failed", t(5)),
        }]);
    }
}

fn network(id: &str, name: &str, subnet: Option<&str>) -> Network {
    Network {
        meta: Meta::with_id(id),
        spec: NetworkSpec {
            name: name.into(),
            driver_configuration: Some(Driver {
                name: "overlay".into(),
                ..Driver::default()
            }),
            ipam_options: subnet.map(|s| IpamOptions {
                configs: vec![IpamConfig {
                    subnet: s.into(),
                    ..IpamConfig::default()
                }],
                ..IpamOptions::default()
            }),
            scope: "swarm".into(),
            ..NetworkSpec::default()
        },
        ..Network::default()
    }
}

fn ingress(id: &str) -> Network {
    Network {
        meta: Meta::with_id(id),
        spec: ingress_network_spec(),
        ..Network::default()
    }
}

fn attach(targets: &[&str]) -> Vec<NetworkAttachmentConfig> {
    targets
        .iter()
        .map(|n| NetworkAttachmentConfig {
            target: n.to_string(),
            ..NetworkAttachmentConfig::default()
        })
        .collect()
}

fn service(id: &str, networks: &[&str]) -> Service {
    Service {
        meta: Meta::with_id(id),
        spec: ServiceSpec {
            name: format!("svc-{id}"),
            mode: ServiceMode::replicated(1),
            task_template: TaskSpec {
                container_spec: Some(ContainerSpec {
                    image: "busybox".into(),
                    ..ContainerSpec::default()
                }),
                networks: attach(networks),
                ..TaskSpec::default()
            },
            ..ServiceSpec::default()
        },
        ..Service::default()
    }
}

fn task(id: &str, s: &Service) -> Task {
    Task {
        meta: Meta::with_id(id),
        service_id: s.meta.id.clone(),
        spec: std::sync::Arc::new(s.spec.task_template.clone()),
        slot: 1,
        desired_state: TaskState::Running,
        status: task_status(TaskState::New, "created", t(0)),
        ..Task::default()
    }
}

fn vni_options(vni: u32) -> BTreeMap<String, String> {
    BTreeMap::from([(VXLANID_OPTION.to_owned(), vni.to_string())])
}

#[test]
fn first_pass_allocates_networks_second_their_vips_and_task_addresses() {
    let mut l = Leader::new(&["10.0.0.0/8"], 24);
    l.create(ingress("ing"));
    l.create(network("n1", "backend", None));
    let s = service("s1", &["n1"]);
    l.create(s.clone());
    l.create(task("t1", &s));

    // Pass 1: the networks only; nothing may use a subnet not yet recorded.
    let a = allocate(&l.store, t(1000));
    assert!(a.failures.is_empty(), "{:?}", a.failures);
    let mut ing = l.network("ing").clone();
    ing.driver_state = Driver {
        name: "overlay".into(),
        options: vni_options(4096),
        ..Driver::default()
    };
    ing.ipam_options = Some(IpamOptions {
        driver: Driver {
            name: "default".into(),
            ..Driver::default()
        },
        configs: vec![IpamConfig {
            subnet: "10.0.0.0/24".into(),
            gateway: "10.0.0.1".into(),
            ..IpamConfig::default()
        }],
        ..IpamOptions::default()
    });
    let mut n1 = l.network("n1").clone();
    n1.driver_state = Driver {
        name: "overlay".into(),
        options: vni_options(4097),
        ..Driver::default()
    };
    n1.ipam_options = Some(IpamOptions {
        driver: Driver {
            name: "default".into(),
            ..Driver::default()
        },
        configs: vec![IpamConfig {
            subnet: "10.0.1.0/24".into(),
            gateway: "10.0.1.1".into(),
            ..IpamConfig::default()
        }],
        ..IpamOptions::default()
    });
    assert_eq!(
        a.actions,
        vec![
            StoreAction::Update(Object::Network(Box::new(ing))),
            StoreAction::Update(Object::Network(Box::new(n1))),
        ]
    );
    l.apply(a.actions);

    // Pass 2: the service's VIP, then the task's address; the task moves to PENDING.
    let a = allocate(&l.store, t(1000));
    assert_eq!(
        a.actions,
        vec![
            StoreAction::SetServiceVirtualIps {
                id: "s1".into(),
                virtual_ips: vec![EndpointVirtualIp {
                    network_id: "n1".into(),
                    addr: "10.0.1.2/24".into(),
                }],
            },
            StoreAction::AllocateTask {
                id: "t1".into(),
                networks_attachments: vec![NetworkAttachment {
                    network: l.network("n1").clone(),
                    addresses: vec!["10.0.1.3/24".into()],
                }],
                status: task_status(TaskState::Pending, PENDING_MESSAGE, t(1000)),
            },
        ]
    );
    l.apply(a.actions);
    assert_eq!(l.store.task("t1").unwrap().status.state, TaskState::Pending);
    // Pass 3: nothing left to do.
    assert!(allocate(&l.store, t(1000)).is_empty());
}

#[test]
fn ingress_comes_first_for_services_publishing_through_the_mesh_and_dnsrr_gets_no_vip() {
    let mut l = Leader::new(&[], 0);
    l.create(ingress("ing"));
    l.create(network("n1", "backend", None));
    let mut web = service("web", &["n1"]);
    web.spec.endpoint_spec = Some(EndpointSpec {
        ports: vec![PortConfig {
            target_port: 80,
            published_port: 8080,
            ..PortConfig::default()
        }],
        ..EndpointSpec::default()
    });
    let mut rr = service("rr", &["n1"]);
    rr.spec.endpoint_spec = Some(EndpointSpec {
        mode: Some(ResolutionMode::Dnsrr),
        ..EndpointSpec::default()
    });
    l.create(web.clone());
    l.create(rr.clone());
    l.create(task("t-web", &web));
    l.create(task("t-rr", &rr));
    l.settle();
    let vips: Vec<(String, String)> = l
        .store
        .service("web")
        .unwrap()
        .endpoint
        .virtual_ips
        .iter()
        .map(|v| (v.network_id.clone(), v.addr.clone()))
        .collect();
    assert_eq!(
        vips,
        [("ing", "10.0.0.2/24"), ("n1", "10.0.1.2/24")].map(|(a, b)| (a.into(), b.into()))
    );
    assert!(l
        .store
        .service("rr")
        .unwrap()
        .endpoint
        .virtual_ips
        .is_empty());
    // Services in ID order ("rr" < "web"), then tasks in ID order.
    assert_eq!(l.addresses("t-rr"), vec!["10.0.1.3/24"]);
    assert_eq!(l.addresses("t-web"), vec!["10.0.0.3/24", "10.0.1.4/24"]);
}

#[test]
fn a_small_pool_runs_out_of_subnets_and_a_small_subnet_out_of_addresses() {
    let mut l = Leader::new(&["10.10.0.0/23"], 24);
    for i in 1..=3 {
        l.create(network(&format!("n{i}"), &format!("net{i}"), None));
    }
    let a = l.pass();
    assert_eq!(a.actions.len(), 2);
    assert_eq!(
        a.failures,
        vec![Failure {
            kind: ObjectKind::Network,
            id: "n3".into(),
            error: networks::NO_POOL.into(),
        }]
    );
    assert_eq!(
        network_subnets(l.network("n2")),
        vec![Subnet::parse("10.10.1.0/24").unwrap()]
    );

    // A /29: .0 network, .1 gateway, .7 broadcast; .2 to .6 for tasks.
    l.create(network("small", "small", Some("10.20.0.0/29")));
    let s = service("s", &["small"]);
    let mut s = s;
    s.spec.endpoint_spec = Some(EndpointSpec {
        mode: Some(ResolutionMode::Dnsrr),
        ..EndpointSpec::default()
    });
    l.create(s.clone());
    for i in 1..=6 {
        l.create(task(&format!("t{i}"), &s));
    }
    l.pass();
    let a = l.pass();
    assert_eq!(
        a.failures.last(),
        Some(&Failure {
            kind: ObjectKind::Task,
            id: "t6".into(),
            error: NO_ADDRESS.into(),
        })
    );
    let got: Vec<String> = (1..=5)
        .flat_map(|i| l.addresses(&format!("t{i}")))
        .collect();
    assert_eq!(
        got,
        [
            "10.20.0.2/29",
            "10.20.0.3/29",
            "10.20.0.4/29",
            "10.20.0.5/29",
            "10.20.0.6/29"
        ]
    );
    let t6 = l.store.task("t6").unwrap();
    assert_eq!(t6.status.state, TaskState::New);
    assert_eq!(t6.status.err, NO_ADDRESS);
    // A task ends: its address goes to the one waiting.
    l.fail("t2");
    l.pass();
    assert_eq!(l.addresses("t6"), vec!["10.20.0.3/29"]);
    assert_eq!(l.store.task("t6").unwrap().status.state, TaskState::Pending);
}

#[test]
fn an_asked_subnet_is_used_as_given_and_an_overlapping_one_is_refused() {
    let mut l = Leader::new(&[], 0);
    let mut user = network("u", "user", Some("10.0.0.0/16"));
    user.spec.ipam_options.as_mut().unwrap().configs[0].gateway = "10.0.0.254".into();
    user.spec.ipam_options.as_mut().unwrap().configs[0].range = "10.0.5.0/24".into();
    l.create(user);
    l.create(network("auto", "auto", None));
    l.settle();
    let u = l.network("u").ipam_options.clone().unwrap();
    assert_eq!(
        u.configs,
        vec![IpamConfig {
            subnet: "10.0.0.0/16".into(),
            range: "10.0.5.0/24".into(),
            gateway: "10.0.0.254".into(),
            ..IpamConfig::default()
        }]
    );
    // The pool's first free /24 is past the user's /16.
    assert_eq!(
        network_subnets(l.network("auto")),
        vec![Subnet::parse("10.1.0.0/24").unwrap()]
    );
    // Addresses come from the range.
    let s = service("s", &["u"]);
    l.create(s.clone());
    l.create(task("t", &s));
    l.settle();
    assert_eq!(l.addresses("t"), vec!["10.0.5.1/16"]);
    assert_eq!(
        l.store.service("s").unwrap().endpoint.virtual_ips[0].addr,
        "10.0.5.0/16"
    );

    // Overlaps are refused when the entry is applied, with libnetwork's words.
    let err = l
        .try_apply(vec![StoreAction::Create(
            network("x", "x", Some("10.0.3.0/24")).into_object(),
        )])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid pool request: Pool overlaps with other one on this address space"
    );
    let err = l
        .try_apply(vec![StoreAction::Create(
            network("y", "y", Some("10.1.0.0/16")).into_object(),
        )])
        .unwrap_err();
    assert_eq!(err, crate::Error::PoolOverlap);
}

#[test]
fn addresses_come_back_when_tasks_end_or_go_and_vips_when_a_service_leaves() {
    let mut l = Leader::new(&[], 0);
    l.create(network("n1", "a", None));
    l.create(network("n2", "b", None));
    let s = service("s", &["n1", "n2"]);
    l.create(s.clone());
    l.create(task("t1", &s));
    l.create(task("t2", &s));
    l.settle();
    assert_eq!(l.addresses("t1"), vec!["10.0.0.3/24", "10.0.1.3/24"]);
    assert_eq!(l.addresses("t2"), vec!["10.0.0.4/24", "10.0.1.4/24"]);

    // t1 fails, t2 is deleted: their replacements take the same addresses, lowest first.
    l.fail("t1");
    l.apply(vec![StoreAction::Remove(ObjectKind::Task, "t2".into())]);
    l.create(task("t3", &s));
    l.create(task("t4", &s));
    l.settle();
    assert_eq!(l.addresses("t3"), vec!["10.0.0.3/24", "10.0.1.3/24"]);
    assert_eq!(l.addresses("t4"), vec!["10.0.0.4/24", "10.0.1.4/24"]);
    // A failed task keeps its attachments as a record (Docker shows them).
    assert_eq!(l.addresses("t1"), vec!["10.0.0.3/24", "10.0.1.3/24"]);

    // The service leaves n2: its VIP there is dropped, and a new service gets it.
    let mut updated = l.store.service("s").unwrap().clone();
    updated.spec.task_template.networks = attach(&["n1"]);
    l.apply(vec![StoreAction::Update(updated.into_object())]);
    let a = l.pass();
    assert_eq!(
        a.actions,
        vec![StoreAction::SetServiceVirtualIps {
            id: "s".into(),
            virtual_ips: vec![EndpointVirtualIp {
                network_id: "n1".into(),
                addr: "10.0.0.2/24".into(),
            }],
        }]
    );
    // t3 and t4 still hold .3 and .4 on n2 (they run until the update replaces them).
    l.create(service("s2", &["n2"]));
    l.pass();
    assert_eq!(
        l.store.service("s2").unwrap().endpoint.virtual_ips[0].addr,
        "10.0.1.2/24"
    );
}

#[test]
fn a_restored_store_rebuilds_the_same_view_and_never_reuses_a_live_address() {
    let mut l = Leader::new(&[], 0);
    l.create(network("n1", "a", None));
    let s = service("s", &["n1"]);
    l.create(s.clone());
    for i in 1..=4 {
        l.create(task(&format!("t{i}"), &s));
    }
    l.settle();
    l.fail("t2");
    l.create(task("t5", &s));
    l.create(task("t6", &s));

    let restored = Store::restore_json(&l.store.snapshot_json()).unwrap();
    // A new leader decides exactly what the old one would have.
    assert_eq!(allocate(&restored, t(1000)), allocate(&l.store, t(1000)));
    let mut l2 = Leader {
        store: restored,
        index: l.index,
    };
    l2.settle();
    let live: Vec<String> = ["t1", "t3", "t4", "t5", "t6"]
        .iter()
        .flat_map(|t| l2.addresses(t))
        .collect();
    let unique: BTreeSet<&String> = live.iter().collect();
    assert_eq!(unique.len(), live.len(), "{live:?}");
    // t5 takes t2's freed .4; t6 the next free one, past t4's .6.
    assert_eq!(l2.addresses("t5"), vec!["10.0.0.4/24"]);
    assert_eq!(l2.addresses("t6"), vec!["10.0.0.7/24"]);
}

#[test]
fn vnis_are_unique_and_start_at_4096() {
    let mut l = Leader::new(&[], 0);
    for i in 0..20 {
        l.create(network(&format!("n{i:02}"), &format!("net{i}"), None));
    }
    l.settle();
    let vnis: BTreeSet<u32> = l.store.networks().filter_map(Network::vni).collect();
    assert_eq!(vnis, (4096..4116).collect());
    // A removed network's VNI is free again; the others stay put.
    l.apply(vec![StoreAction::Remove(ObjectKind::Network, "n05".into())]);
    l.create(network("z", "z", None));
    l.settle();
    assert_eq!(l.network("z").vni(), Some(4101));
    assert_eq!(
        network_subnets(l.network("z")),
        vec![Subnet::parse("10.0.5.0/24").unwrap()]
    );
}

#[test]
fn next_subnet_skips_taken_ones_and_pools_too_small() {
    let p = |s: &str| Subnet::parse(s).unwrap();
    let pools = [p("192.168.0.0/25"), p("10.0.0.0/16")];
    // The /25 pool is smaller than a /24 subnet: skipped.
    assert_eq!(
        ipam::next_subnet(&pools, 24, &[p("10.0.0.0/23"), p("10.0.3.0/24")]),
        Some(p("10.0.2.0/24"))
    );
    assert_eq!(
        ipam::next_subnet(&[p("10.0.0.0/24")], 24, &[p("10.0.0.128/25")]),
        None
    );
    assert_eq!(
        ipam::next_subnet(&[p("10.0.0.0/8")], 24, &[p("0.0.0.0/0")]),
        None
    );
}

#[test]
fn vni_range_ends_at_24_bits() {
    let mut used: BTreeSet<u32> = BTreeSet::from([4096, 4097, 4099]);
    assert_eq!(vni::allocate_vni(&mut used), Some(4098));
    assert_eq!(vni::allocate_vni(&mut used), Some(4100));
    let mut full: BTreeSet<u32> = (vni::VNI_START..=vni::VNI_END).collect();
    assert_eq!(vni::allocate_vni(&mut full), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever tasks come, end and go, across restores: no two live tasks or VIPs ever
    /// share an address, and every address is inside its network's subnet.
    #[test]
    fn live_addresses_are_never_shared(ops in proptest::collection::vec(0u8..4, 1..40)) {
        let mut l = Leader::new(&["10.0.0.0/16"], 28);
        l.create(network("n1", "a", None));
        let s = service("s", &["n1"]);
        l.create(s.clone());
        let mut next = 0;
        for op in ops {
            match op {
                0 | 1 => {
                    next += 1;
                    l.create(task(&format!("t{next:03}"), &s));
                }
                2 => {
                    let live = l.store.tasks().find(|t| holds_addresses(t)).map(|t| t.meta.id.clone());
                    if let Some(id) = live {
                        l.fail(&id);
                    }
                }
                _ => {
                    l.store = Store::restore_json(&l.store.snapshot_json()).unwrap();
                }
            }
            l.pass();
            let subnet = network_subnets(l.network("n1")).first().copied();
            let mut held: Vec<String> = l
                .store
                .tasks()
                .filter(|t| holds_addresses(t))
                .flat_map(|t| t.networks_attachments.iter().flat_map(|a| a.addresses.clone()))
                .collect();
            held.extend(l.store.services().flat_map(|s| s.endpoint.virtual_ips.iter().map(|v| v.addr.clone())));
            let unique: BTreeSet<&String> = held.iter().collect();
            prop_assert_eq!(unique.len(), held.len(), "{:?}", held);
            for a in &held {
                let addr = ipam::parse_cidr_addr(a).unwrap();
                prop_assert!(subnet.unwrap().contains(addr));
            }
        }
    }
}

/// The leader's pipeline: reconcile makes tasks on networks NEW, the scheduler leaves
/// them alone, the allocator attaches them and makes them PENDING, then they are placed.
#[test]
fn tasks_on_networks_flow_new_allocated_pending_assigned() {
    use crate::orchestrator::testkit::{self, Sim};
    let mut sim = Sim::new();
    sim.add_node(testkit::node("node1"));
    sim.apply(&[StoreAction::Create(
        network("n1", "backend", None).into_object(),
    )]);
    let mut s = testkit::service("s1", "web", 2);
    s.spec.task_template.networks = attach(&["n1"]);
    sim.add_service(s);
    sim.reconcile("s1");
    let tasks = sim.tasks("s1");
    assert_eq!(tasks.len(), 2);
    assert!(tasks
        .iter()
        .all(|t| t.status.state == TaskState::New && t.status.message == "created"));
    assert!(sim.schedule().is_empty());

    // Pass 1 allocates the network, pass 2 the tasks.
    for _ in 0..2 {
        let a = allocate(&sim.store, sim.now);
        assert!(a.failures.is_empty(), "{:?}", a.failures);
        sim.apply(&a.actions);
    }
    let tasks = sim.tasks("s1");
    assert!(tasks
        .iter()
        .all(|t| t.status.state == TaskState::Pending && t.networks_attachments.len() == 1));
    assert_eq!(sim.schedule().len(), 2);
    assert!(sim
        .tasks("s1")
        .iter()
        .all(|t| t.status.state == TaskState::Assigned && t.node_id == "node1"));
    // A service without networks still goes straight to PENDING.
    sim.add_service(testkit::service("s2", "plain", 1));
    sim.reconcile("s2");
    assert_eq!(sim.tasks("s2")[0].status.state, TaskState::Pending);
}

fn port(target: u32, published: u32) -> PortConfig {
    PortConfig {
        target_port: target,
        published_port: published,
        ..PortConfig::default()
    }
}

fn host_port(target: u32, published: u32) -> PortConfig {
    PortConfig {
        publish_mode: Some(PublishMode::Host),
        ..port(target, published)
    }
}

fn publishing(id: &str, ports: Vec<PortConfig>) -> Service {
    let mut s = service(id, &[]);
    s.spec.endpoint_spec = Some(EndpointSpec {
        ports,
        ..EndpointSpec::default()
    });
    s
}

/// `(protocol, target, published, mode)` of a service's `Endpoint.Ports`.
fn published(l: &Leader, id: &str) -> Vec<(String, u32, u32, String)> {
    let s = l.store.service(id).unwrap();
    s.endpoint
        .ports
        .iter()
        .map(|p| {
            (
                p.protocol.as_ref().unwrap().as_str().to_owned(),
                p.target_port,
                p.published_port,
                p.publish_mode.as_ref().unwrap().as_str().to_owned(),
            )
        })
        .collect()
}

fn ports_of(list: &[(&str, u32, u32, &str)]) -> Vec<(String, u32, u32, String)> {
    list.iter()
        .map(|(p, t, n, m)| (p.to_string(), *t, *n, m.to_string()))
        .collect()
}

/// Replaces a service's endpoint spec, as `service update` does (versioned).
fn update_ports(l: &mut Leader, id: &str, ports: Vec<PortConfig>) -> crate::Result<()> {
    let mut s = l.store.service(id).unwrap().clone();
    s.spec.endpoint_spec = Some(EndpointSpec {
        ports,
        ..EndpointSpec::default()
    });
    l.try_apply(vec![StoreAction::Update(Object::Service(Box::new(s)))])
}

#[test]
fn published_ports_are_filled_and_dynamic_ones_picked_even_without_a_network() {
    let mut l = Leader::new(&[], 0);
    let udp = PortConfig {
        protocol: Some(PortProtocol::Udp),
        ..port(53, 0)
    };
    let web = publishing(
        "web",
        vec![port(80, 0), port(81, 8081), host_port(82, 0), udp.clone()],
    );
    l.create(web.clone());
    let a = l.pass();
    assert_eq!(a.actions.len(), 1);
    assert_eq!(
        published(&l, "web"),
        ports_of(&[
            ("tcp", 80, 30000, "ingress"),
            ("tcp", 81, 8081, "ingress"),
            ("tcp", 82, 0, "host"),
            ("udp", 53, 30000, "ingress"),
        ])
    );
    let stored = l.store.service("web").unwrap();
    assert_eq!(Some(&stored.endpoint.spec), web.spec.endpoint_spec.as_ref());
    // A second service takes the next free port of each protocol.
    l.create(publishing("api", vec![port(80, 0), udp]));
    l.settle();
    assert_eq!(
        published(&l, "api"),
        ports_of(&[("tcp", 80, 30001, "ingress"), ("udp", 53, 30001, "ingress")])
    );
    // Settled: nothing more to write.
    assert!(allocate(&l.store, t(1000)).is_empty());
    // Docker's JSON: every field filled.
    let json = serde_json::to_value(&l.store.service("web").unwrap().endpoint).unwrap();
    assert_eq!(
        json["Ports"][0],
        serde_json::json!({"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 30000, "PublishMode": "ingress"})
    );
}

#[test]
fn a_service_keeps_its_dynamic_ports_across_passes_updates_and_leaders_and_frees_them_when_removed()
{
    let mut l = Leader::new(&[], 0);
    l.create(publishing("a", vec![port(80, 0)]));
    l.create(publishing("b", vec![port(80, 0)]));
    l.settle();
    assert_eq!(
        published(&l, "a"),
        ports_of(&[("tcp", 80, 30000, "ingress")])
    );
    assert_eq!(
        published(&l, "b"),
        ports_of(&[("tcp", 80, 30001, "ingress")])
    );
    // A spec update that adds a port keeps the one held; the new one gets the next.
    update_ports(&mut l, "a", vec![port(90, 0), port(80, 0)]).unwrap();
    l.settle();
    assert_eq!(
        published(&l, "a"),
        ports_of(&[("tcp", 90, 30002, "ingress"), ("tcp", 80, 30000, "ingress")])
    );
    // A new leader (a restored store) sees the same ports: nothing to do.
    let restored = Store::restore(l.store.snapshot()).unwrap();
    assert!(allocate(&restored, t(2000)).is_empty());
    // Another target is another port; the old one is freed with it.
    update_ports(&mut l, "a", vec![port(8000, 0)]).unwrap();
    l.settle();
    assert_eq!(
        published(&l, "a"),
        ports_of(&[("tcp", 8000, 30003, "ingress")])
    );
    // A removed service frees its ports: the lowest free one is b's old 30001.
    l.apply(vec![StoreAction::Remove(ObjectKind::Service, "b".into())]);
    l.create(publishing("c", vec![port(80, 0)]));
    l.settle();
    assert_eq!(
        published(&l, "c"),
        ports_of(&[("tcp", 80, 30000, "ingress")])
    );
}

#[test]
fn ingress_ports_are_refused_to_a_second_service_in_swarmkits_words() {
    let mut l = Leader::new(&[], 0);
    l.create(publishing("web", vec![port(80, 8080)]));
    l.create(publishing("h", vec![host_port(80, 9090)]));
    let refused = |l: &mut Leader, s: Service| {
        let e = crate::store::check_port_conflicts(&l.store, &s.spec, None).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        // The store refuses it too, with the same words.
        let applied = l
            .try_apply(vec![StoreAction::Create(Object::Service(Box::new(s)))])
            .unwrap_err();
        assert_eq!(applied, e);
        e.to_string()
    };
    assert_eq!(
        refused(&mut l, publishing("x", vec![port(80, 8080)])),
        "port '8080' is already in use by service 'svc-web' (web) as an ingress port"
    );
    // Host mode on a port another service has through the mesh: refused too.
    assert_eq!(
        refused(&mut l, publishing("x", vec![host_port(80, 8080)])),
        "port '8080' is already in use by service 'svc-web' (web) as an ingress port"
    );
    // Through the mesh on a port another publishes on its nodes.
    assert_eq!(
        refused(&mut l, publishing("x", vec![port(80, 9090)])),
        "port '9090' is already in use by service 'svc-h' (h) as a host-published port"
    );
    // Host mode on host mode: the scheduler keeps them apart per node. Another
    // protocol is another port. Published 0 never conflicts.
    let udp = PortConfig {
        protocol: Some(PortProtocol::Udp),
        ..port(80, 8080)
    };
    l.create(publishing(
        "h2",
        vec![host_port(80, 9090), host_port(81, 0)],
    ));
    l.create(publishing("u", vec![udp, port(80, 0)]));
    l.settle();
    // A dynamic port someone holds is taken as well.
    assert_eq!(published(&l, "u")[1].2, 30000);
    assert_eq!(
        refused(&mut l, publishing("x", vec![port(80, 30000)])),
        "port '30000' is already in use by service 'svc-u' (u) as an ingress port"
    );
    // An update to a taken port is refused; one that leaves the endpoint alone passes,
    // and so does the service keeping its own port.
    assert_eq!(
        update_ports(&mut l, "h", vec![port(80, 8080)])
            .unwrap_err()
            .to_string(),
        "port '8080' is already in use by service 'svc-web' (web) as an ingress port"
    );
    update_ports(&mut l, "web", vec![port(80, 8080), port(443, 8443)]).unwrap();
    let mut web = l.store.service("web").unwrap().clone();
    web.spec.labels.insert("k".into(), "v".into());
    l.apply(vec![StoreAction::Update(Object::Service(Box::new(web)))]);
}

#[test]
fn two_creates_racing_for_one_port_cannot_both_win() {
    let mut l = Leader::new(&[], 0);
    let (a, b) = (
        publishing("a", vec![port(80, 8080)]),
        publishing("b", vec![port(81, 8080)]),
    );
    // Both pass the API's check on the same view...
    crate::store::check_port_conflicts(&l.store, &a.spec, None).unwrap();
    crate::store::check_port_conflicts(&l.store, &b.spec, None).unwrap();
    // ...and the store takes the first entry only.
    l.create(a);
    let e = l
        .try_apply(vec![StoreAction::Create(Object::Service(Box::new(b)))])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "port '8080' is already in use by service 'svc-a' (a) as an ingress port"
    );
    assert!(l.store.service("b").is_none());
}

#[test]
fn a_dynamic_port_taken_meanwhile_is_not_written_and_the_next_pass_picks_another() {
    let mut l = Leader::new(&[], 0);
    l.create(publishing("a", vec![port(80, 0)]));
    let a = allocate(&l.store, t(1000));
    // Before the allocator's entry is applied, b is created asking for 30000.
    l.create(publishing("b", vec![port(80, 30000)]));
    l.apply(a.actions);
    assert!(l.store.service("a").unwrap().endpoint.ports.is_empty());
    l.settle();
    assert_eq!(
        published(&l, "a"),
        ports_of(&[("tcp", 80, 30001, "ingress")])
    );
    assert_eq!(
        published(&l, "b"),
        ports_of(&[("tcp", 80, 30000, "ingress")])
    );
}

fn node(id: &str) -> Node {
    Node {
        meta: Meta::with_id(id),
        ..Node::default()
    }
}

fn ingress_addr(l: &Leader, node: &str) -> Option<String> {
    crate::model::node_ingress_addr(l.store.node(node).unwrap(), "ing").map(str::to_owned)
}

#[test]
fn each_node_gets_one_ingress_address_that_tasks_never_get_and_loses_it_with_the_node() {
    let mut l = Leader::new(&[], 0);
    l.create(node("n1"));
    // No network yet: nothing to attach to.
    assert!(allocate(&l.store, t(1000)).is_empty());
    l.create(ingress("ing"));
    l.create(node("n2"));
    let web = publishing("web", vec![port(80, 8080)]);
    l.create(web.clone());
    l.create(task("t1", &web));
    l.settle();
    // Services (VIP) first, then nodes in ID order, then tasks.
    assert_eq!(
        l.store.service("web").unwrap().endpoint.virtual_ips[0].addr,
        "10.0.0.2/24"
    );
    assert_eq!(ingress_addr(&l, "n1").as_deref(), Some("10.0.0.3/24"));
    assert_eq!(ingress_addr(&l, "n2").as_deref(), Some("10.0.0.4/24"));
    assert_eq!(l.addresses("t1"), vec!["10.0.0.5/24"]);
    let n1 = l.store.node("n1").unwrap();
    assert_eq!(n1.attachments[0].network.id(), "ing");
    assert!(crate::model::node_ingress_addr(n1, "other").is_none());
    // Kept on later passes and by a new leader; a new task gets a fresh address.
    let restored = Store::restore(l.store.snapshot()).unwrap();
    assert!(allocate(&restored, t(2000)).is_empty());
    l.create(task("t2", &web));
    l.settle();
    assert_eq!(l.addresses("t2"), vec!["10.0.0.6/24"]);
    // A removed node frees its address: the next node gets it.
    l.apply(vec![StoreAction::Remove(ObjectKind::Node, "n1".into())]);
    l.create(node("n3"));
    l.settle();
    assert_eq!(ingress_addr(&l, "n3").as_deref(), Some("10.0.0.3/24"));
    // The ingress network gone: its attachments are dropped.
    l.apply(vec![StoreAction::Remove(ObjectKind::Service, "web".into())]);
    l.fail("t1");
    l.fail("t2");
    l.apply(vec![StoreAction::Remove(ObjectKind::Network, "ing".into())]);
    l.create(network("n", "backend", None));
    l.settle();
    assert!(l.store.node("n2").unwrap().attachments.is_empty());
    assert!(l.store.node("n3").unwrap().attachments.is_empty());
}

#[test]
fn node_attachments_to_a_network_that_is_gone_are_dropped_when_no_network_is_left() {
    let mut l = Leader::new(&[], 0);
    l.create(ingress("ing"));
    l.create(node("n1"));
    l.settle();
    assert!(ingress_addr(&l, "n1").is_some());
    l.apply(vec![StoreAction::Remove(ObjectKind::Network, "ing".into())]);
    l.settle();
    assert!(l.store.node("n1").unwrap().attachments.is_empty());
}

#[test]
fn new_store_actions_round_trip_through_serde() {
    let actions = vec![
        StoreAction::SetServiceEndpointPorts {
            id: "s".into(),
            spec: EndpointSpec::default(),
            ports: vec![port(80, 30000)],
        },
        StoreAction::SetNodeAttachments {
            id: "n".into(),
            attachments: vec![NetworkAttachment {
                network: ingress("ing"),
                addresses: vec!["10.0.0.3/24".into()],
            }],
        },
    ];
    let bytes = serde_json::to_vec(&actions).unwrap();
    let back: Vec<StoreAction> = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(back, actions);
}

/// A service publishing through the mesh has no network of its own, yet its tasks need an
/// ingress address: the orchestrator makes them NEW (not PENDING) so the allocator
/// attaches them first; a host-mode-only service's tasks skip the allocator.
#[test]
fn tasks_of_a_mesh_publishing_service_wait_for_their_ingress_address() {
    use crate::orchestrator::slot::SlotKey;
    use crate::orchestrator::task::new_task;
    let mesh = publishing("s1", vec![port(80, 8080)]);
    let one = new_task(
        &mesh,
        &SlotKey::Replica(1),
        "t1".into(),
        TaskState::Running,
        t(0),
    );
    assert_eq!(one.status.state, TaskState::New);
    let hostmode = publishing("s2", vec![host_port(80, 8080)]);
    let two = new_task(
        &hostmode,
        &SlotKey::Replica(1),
        "t2".into(),
        TaskState::Running,
        t(0),
    );
    assert_eq!(two.status.state, TaskState::Pending);
}
