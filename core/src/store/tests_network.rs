//! Store tests for networks: names, lookups, removal while in use, snapshots.

use chrono::{TimeZone, Utc};

use super::*;
use crate::allocator::ingress_network_spec;
use crate::error::ErrorKind;
use crate::model::{
    EndpointSpec, Meta, NetworkAttachmentConfig, NetworkSpec, PortConfig, ServiceSpec, TaskSpec,
};
use crate::state::TaskState;

fn now() -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(10, 0).unwrap()
}

fn network(id: &str, name: &str) -> Network {
    Network {
        meta: Meta::with_id(id),
        spec: NetworkSpec {
            name: name.into(),
            ..NetworkSpec::default()
        },
        ..Network::default()
    }
}

fn service_on(id: &str, target: &str) -> Service {
    Service {
        meta: Meta::with_id(id),
        spec: ServiceSpec {
            name: id.into(),
            task_template: TaskSpec {
                networks: vec![NetworkAttachmentConfig {
                    target: target.into(),
                    ..NetworkAttachmentConfig::default()
                }],
                ..TaskSpec::default()
            },
            ..ServiceSpec::default()
        },
        ..Service::default()
    }
}

fn create(o: impl Stored) -> StoreAction {
    StoreAction::Create(o.into_object())
}

fn remove(id: &str) -> StoreAction {
    StoreAction::Remove(ObjectKind::Network, id.into())
}

#[test]
fn network_names_are_unique_and_found_like_services() {
    let mut s = Store::new();
    s.apply(&[create(network("abc1", "backend"))], 1, now())
        .unwrap();
    s.apply(&[create(network("abd2", "frontend"))], 2, now())
        .unwrap();
    let err = s
        .apply(&[create(network("x", "Backend"))], 3, now())
        .unwrap_err();
    assert_eq!(err.to_string(), "network with name Backend already exists");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(s.find_network("backend").unwrap().id(), "abc1");
    assert_eq!(s.find_network("abd").unwrap().id(), "abd2");
    assert_eq!(
        s.find_network("ab").unwrap_err().to_string(),
        "network ab is ambiguous (2 matches found)"
    );
    assert_eq!(
        s.find_network("nope").unwrap_err().to_string(),
        "network nope not found"
    );
}

#[test]
fn a_network_in_use_is_not_removed() {
    let mut s = Store::new();
    s.apply(&[create(network("n1", "backend"))], 1, now())
        .unwrap();
    // Named by name in the spec (as stack deploy sends): still in use.
    s.apply(&[create(service_on("s1", "backend"))], 2, now())
        .unwrap();
    let err = s.apply(&[remove("n1")], 3, now()).unwrap_err();
    assert_eq!(err.to_string(), "network n1 is in use by service s1");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);

    // The service goes; a task of it still runs there.
    let mut t = Task {
        meta: Meta::with_id("t1"),
        service_id: "s1".into(),
        desired_state: TaskState::Running,
        status: task_status(TaskState::Running, "started", now()),
        ..Task::default()
    };
    t.networks_attachments
        .push(crate::model::NetworkAttachment {
            network: s.network("n1").unwrap().clone(),
            addresses: vec!["10.0.0.3/24".into()],
        });
    s.apply(
        &[
            StoreAction::Remove(ObjectKind::Service, "s1".into()),
            create(t),
        ],
        4,
        now(),
    )
    .unwrap();
    let err = s.apply(&[remove("n1")], 5, now()).unwrap_err();
    assert_eq!(err.to_string(), "network n1 is in use by task t1");
    // Once it ends, the network can go.
    s.apply(
        &[StoreAction::SetTaskStatus {
            id: "t1".into(),
            status: task_status(TaskState::Shutdown, "shutdown", now()),
        }],
        6,
        now(),
    )
    .unwrap();
    s.apply(&[remove("n1")], 7, now()).unwrap();
    assert!(s.network("n1").is_none());
}

#[test]
fn ingress_is_not_removed_while_a_service_publishes_through_the_mesh() {
    let mut s = Store::new();
    let ingress = Network {
        meta: Meta::with_id("ing"),
        spec: ingress_network_spec(),
        ..Network::default()
    };
    let mut web = service_on("web", "other");
    web.spec.task_template.networks.clear();
    web.spec.endpoint_spec = Some(EndpointSpec {
        ports: vec![PortConfig {
            target_port: 80,
            published_port: 8080,
            ..PortConfig::default()
        }],
        ..EndpointSpec::default()
    });
    s.apply(&[create(ingress), create(web)], 1, now()).unwrap();
    let err = s.apply(&[remove("ing")], 2, now()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ingress network cannot be removed because service web depends on it"
    );
}

#[test]
fn snapshots_carry_networks_and_old_ones_restore_without() {
    let mut s = Store::new();
    s.apply(&[create(network("n1", "backend"))], 1, now())
        .unwrap();
    let restored = Store::restore_json(&s.snapshot_json()).unwrap();
    assert_eq!(restored.network("n1"), s.network("n1"));
    assert_eq!(restored.network_by_name("BACKEND").unwrap().id(), "n1");
    let old = br#"{"index":3,"services":[],"tasks":[],"nodes":[],"secrets":[],"configs":[],"cluster":null}"#;
    let restored = Store::restore_json(old).unwrap();
    assert_eq!(restored.networks().count(), 0);
    assert_eq!(restored.applied_index(), 3);
}

#[test]
fn allocator_writes_are_unversioned_and_never_replace_attachments() {
    let mut s = Store::new();
    let t = Task {
        meta: Meta::with_id("t1"),
        desired_state: TaskState::Running,
        status: task_status(TaskState::New, "created", now()),
        ..Task::default()
    };
    s.apply(&[create(network("n1", "a")), create(t)], 1, now())
        .unwrap();
    let attach = |addr: &str| StoreAction::AllocateTask {
        id: "t1".into(),
        networks_attachments: vec![crate::model::NetworkAttachment {
            network: network("n1", "a"),
            addresses: vec![addr.into()],
        }],
        status: task_status(TaskState::Pending, "pending task scheduling", now()),
    };
    s.apply(&[attach("10.0.0.3/24")], 2, now()).unwrap();
    // A second (stale) decision is dropped: no event, the first address stays.
    let events = s.apply(&[attach("10.0.0.9/24")], 3, now()).unwrap();
    assert!(events.is_empty());
    let t = s.task("t1").unwrap();
    assert_eq!(t.networks_attachments[0].addresses, vec!["10.0.0.3/24"]);
    assert_eq!(t.status.state, TaskState::Pending);
    // For a task that is gone: nothing.
    let gone = StoreAction::SetServiceVirtualIps {
        id: "nope".into(),
        virtual_ips: vec![],
    };
    assert!(s.apply(&[gone], 4, now()).unwrap().is_empty());
}
