//! Store tests: exact versions, errors, events and index contents after each batch.

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::error::{Error, ErrorKind};
use crate::model::{
    ContainerSpec, Meta, ModeKind, NodeRole, NodeSpec, SecretSpec, ServiceMode, ServiceSpec, Swarm,
    TaskSpec, Version,
};
use crate::state::TaskState;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

fn service(id: &str, name: &str) -> Service {
    Service {
        meta: Meta::with_id(id),
        spec: ServiceSpec {
            name: name.into(),
            mode: ServiceMode::replicated(1),
            task_template: TaskSpec {
                container_spec: Some(ContainerSpec {
                    image: "busybox".into(),
                    ..ContainerSpec::default()
                }),
                ..TaskSpec::default()
            },
            ..ServiceSpec::default()
        },
        ..Service::default()
    }
}

fn task(id: &str, service_id: &str, slot: u64) -> Task {
    Task {
        meta: Meta::with_id(id),
        service_id: service_id.into(),
        slot,
        desired_state: TaskState::Running,
        status: task_status(TaskState::New, "created", t(0)),
        ..Task::default()
    }
}

fn node(id: &str, hostname: &str) -> Node {
    let mut n = Node {
        meta: Meta::with_id(id),
        spec: NodeSpec {
            role: Some(NodeRole::Worker),
            ..NodeSpec::default()
        },
        ..Node::default()
    };
    n.description.hostname = hostname.into();
    n
}

fn create(o: impl Stored) -> StoreAction {
    StoreAction::Create(o.into_object())
}

fn update(o: impl Stored) -> StoreAction {
    StoreAction::Update(o.into_object())
}

#[test]
fn create_stamps_version_and_times_and_reports_events() {
    let mut store = Store::new();
    let events = store
        .apply(
            &[create(service("s1", "web")), create(task("t1", "s1", 1))],
            5,
            t(100),
        )
        .unwrap();
    assert_eq!(
        events,
        vec![
            Event::Created {
                kind: ObjectKind::Service,
                id: "s1".into()
            },
            Event::Created {
                kind: ObjectKind::Task,
                id: "t1".into()
            },
        ]
    );
    let s = store.service("s1").unwrap();
    assert_eq!(s.meta.version, Version::new(5));
    assert_eq!((s.meta.created_at, s.meta.updated_at), (t(100), t(100)));
    assert_eq!(store.applied_index(), 5);
    let ids: Vec<_> = store.tasks_of_service("s1").map(|t| t.id()).collect();
    assert_eq!(ids, vec!["t1"]);
}

#[test]
fn update_checks_version_and_keeps_created_at() {
    let mut store = Store::new();
    store
        .apply(&[create(service("s1", "web"))], 5, t(100))
        .unwrap();

    let mut s = store.service("s1").unwrap().clone();
    s.spec.mode = ServiceMode::replicated(3);
    let events = store.apply(&[update(s.clone())], 6, t(200)).unwrap();
    assert_eq!(
        events,
        vec![Event::Updated {
            kind: ObjectKind::Service,
            id: "s1".into()
        }]
    );
    let stored = store.service("s1").unwrap();
    assert_eq!(stored.meta.version, Version::new(6));
    assert_eq!(
        (stored.meta.created_at, stored.meta.updated_at),
        (t(100), t(200))
    );
    assert_eq!(stored.spec.mode.replicas(), Some(3));

    // `s` still carries version 5: stale.
    let err = store.apply(&[update(s)], 7, t(300)).unwrap_err();
    assert_eq!(err, Error::OutOfSequence);
    assert_eq!(err.to_string(), "update out of sequence");
    assert_eq!(err.kind(), ErrorKind::OutOfSequence);
    assert_eq!(store.service("s1").unwrap().meta.version, Version::new(6));
    // The failed entry still counts as applied.
    assert_eq!(store.applied_index(), 7);
}

#[test]
fn names_are_unique_ignoring_case() {
    let mut store = Store::new();
    store
        .apply(&[create(service("s1", "web"))], 1, t(1))
        .unwrap();
    let err = store
        .apply(&[create(service("s2", "WEB"))], 2, t(2))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "name conflicts with an existing object: service WEB already exists"
    );
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);

    // Renaming into a taken name conflicts too; renaming to a free one frees the old.
    store
        .apply(&[create(service("s2", "api"))], 3, t(3))
        .unwrap();
    let mut s2 = store.service("s2").unwrap().clone();
    s2.spec.name = "web".into();
    assert!(matches!(
        store.apply(&[update(s2.clone())], 4, t(4)),
        Err(Error::NameConflict { .. })
    ));
    s2.spec.name = "api2".into();
    store.apply(&[update(s2)], 5, t(5)).unwrap();
    assert!(store.service_by_name("api").is_none());
    assert_eq!(store.service_by_name("API2").unwrap().id(), "s2");

    // Secrets have their own namespace.
    let secret = Secret {
        meta: Meta::with_id("x1"),
        spec: SecretSpec {
            name: "web".into(),
            ..SecretSpec::default()
        },
    };
    store.apply(&[create(secret)], 6, t(6)).unwrap();
    assert_eq!(store.secret_by_name("web").unwrap().id(), "x1");
}

#[test]
fn a_failed_batch_changes_nothing() {
    let mut store = Store::new();
    store
        .apply(
            &[create(service("s1", "web")), create(task("t1", "s1", 1))],
            1,
            t(1),
        )
        .unwrap();
    let before = store.snapshot();

    let mut t1 = store.task("t1").unwrap().clone();
    t1.node_id = "n1".into();
    let err = store
        .apply(
            &[
                create(service("s2", "api")),
                create(task("t2", "s2", 1)),
                update(t1),
                StoreAction::Remove(ObjectKind::Service, "s1".into()),
                create(service("s3", "web")), // conflicts with s1? s1 was removed above...
                create(service("s4", "api")), // ...but this one conflicts with s2
            ],
            2,
            t(2),
        )
        .unwrap_err();
    assert!(matches!(err, Error::NameConflict { ref name, .. } if name == "api"));
    let mut after = store.snapshot();
    assert_eq!(after.index, 2);
    after.index = before.index;
    assert_eq!(after, before);
    // Indexes rolled back too.
    assert_eq!(store.tasks_of_service("s2").count(), 0);
    assert_eq!(store.tasks_on_node("n1").count(), 0);
    assert_eq!(store.service_by_name("web").unwrap().id(), "s1");
    assert!(store.service_by_name("api").is_none());
}

#[test]
fn task_state_never_moves_backwards_and_node_never_changes() {
    let mut store = Store::new();
    store
        .apply(&[create(task("t1", "s1", 1))], 1, t(1))
        .unwrap();
    store
        .apply(
            &[StoreAction::AssignTask {
                id: "t1".into(),
                node_id: "n1".into(),
                status: task_status(TaskState::Assigned, "scheduler assigned task to node", t(2)),
            }],
            2,
            t(2),
        )
        .unwrap();
    let ids: Vec<_> = store.tasks_on_node("n1").map(|t| t.id()).collect();
    assert_eq!(ids, vec!["t1"]);

    let mut t1 = store.task("t1").unwrap().clone();
    t1.status.state = TaskState::Running;
    store.apply(&[update(t1.clone())], 3, t(3)).unwrap();

    let mut back = store.task("t1").unwrap().clone();
    back.status.state = TaskState::Starting;
    let err = store.apply(&[update(back)], 4, t(4)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "task t1: state cannot move from running to starting"
    );

    let mut moved = store.task("t1").unwrap().clone();
    moved.node_id = "n2".into();
    let err = store.apply(&[update(moved)], 5, t(5)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "task t1: node cannot change from \"n1\" to \"n2\""
    );

    // A late agent report is dropped, not an error, and makes no event.
    let events = store
        .apply(
            &[StoreAction::SetTaskStatus {
                id: "t1".into(),
                status: task_status(TaskState::Starting, "starting", t(6)),
            }],
            6,
            t(6),
        )
        .unwrap();
    assert!(events.is_empty());
    assert_eq!(store.task("t1").unwrap().status.state, TaskState::Running);
    assert_eq!(store.task("t1").unwrap().meta.version, Version::new(3));

    // A forward report applies.
    let mut failed = task_status(TaskState::Failed, "started", t(7));
    failed.err = "task: non-zero exit (1)".into();
    let events = store
        .apply(
            &[
                StoreAction::SetTaskStatus {
                    id: "t1".into(),
                    status: failed,
                },
                StoreAction::SetTaskDesiredState {
                    id: "t1".into(),
                    desired_state: TaskState::Shutdown,
                },
                // Backwards desired state and unknown tasks are ignored.
                StoreAction::SetTaskDesiredState {
                    id: "t1".into(),
                    desired_state: TaskState::Running,
                },
                StoreAction::SetTaskStatus {
                    id: "gone".into(),
                    status: task_status(TaskState::Running, "", t(7)),
                },
            ],
            7,
            t(7),
        )
        .unwrap();
    assert_eq!(events.len(), 2);
    let t1 = store.task("t1").unwrap();
    assert_eq!(t1.status.state, TaskState::Failed);
    assert_eq!(t1.status.err, "task: non-zero exit (1)");
    assert_eq!(t1.desired_state, TaskState::Shutdown);
    assert_eq!(t1.meta.version, Version::new(7));

    // Assigning to another node is refused.
    let err = store
        .apply(
            &[StoreAction::AssignTask {
                id: "t1".into(),
                node_id: "n2".into(),
                status: task_status(TaskState::Failed, "", t(8)),
            }],
            8,
            t(8),
        )
        .unwrap_err();
    assert!(matches!(err, Error::TaskImmutable { field: "node", .. }));
}

#[test]
fn remove_reports_the_object_and_cleans_indexes() {
    let mut store = Store::new();
    let mut t1 = task("t1", "s1", 1);
    t1.node_id = "n1".into();
    store
        .apply(&[create(service("s1", "web")), create(t1)], 1, t(1))
        .unwrap();
    let events = store
        .apply(
            &[
                StoreAction::Remove(ObjectKind::Task, "t1".into()),
                StoreAction::Remove(ObjectKind::Service, "s1".into()),
            ],
            2,
            t(2),
        )
        .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].kind(), ObjectKind::Task);
    assert_eq!(events[0].id(), "t1");
    match &events[1] {
        Event::Removed {
            object: Object::Service(s),
        } => assert_eq!(s.spec.name, "web"),
        other => panic!("unexpected event {other:?}"),
    }
    assert_eq!(store.tasks_on_node("n1").count(), 0);
    assert_eq!(store.tasks_of_service("s1").count(), 0);
    assert!(store.service_by_name("web").is_none());
    let err = store
        .apply(
            &[StoreAction::Remove(ObjectKind::Service, "s1".into())],
            3,
            t(3),
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "service s1 not found");
}

#[test]
fn create_refuses_existing_ids_and_missing_ids() {
    let mut store = Store::new();
    store.apply(&[create(node("n1", "h1"))], 1, t(1)).unwrap();
    assert_eq!(
        store
            .apply(&[create(node("n1", "h2"))], 2, t(2))
            .unwrap_err()
            .to_string(),
        "object already exists: node n1"
    );
    assert_eq!(
        store
            .apply(&[create(node("", "h2"))], 3, t(3))
            .unwrap_err()
            .to_string(),
        "node has no ID"
    );
    // One cluster object per store.
    let swarm = |id: &str| {
        let mut s = Swarm::default();
        s.cluster.meta.id = id.into();
        s
    };
    store.apply(&[create(swarm("c1"))], 4, t(4)).unwrap();
    assert!(store.apply(&[create(swarm("c2"))], 5, t(5)).is_err());
    assert_eq!(store.cluster().unwrap().id(), "c1");
    // Updating a missing object is `no such`.
    assert_eq!(
        store
            .apply(&[update(service("nope", "x"))], 6, t(6))
            .unwrap_err()
            .to_string(),
        "service nope not found"
    );
}

#[test]
fn find_by_id_name_and_prefix_with_dockers_errors() {
    let mut store = Store::new();
    store
        .apply(
            &[
                create(service("abc111", "web")),
                create(service("abc222", "api")),
                create(service("xyz333", "abc")),
                create(node("n1", "host-a")),
                create(node("n2", "host-b")),
                create(node("n3", "host-b")),
                create(task("t1aaa", "abc111", 1)),
            ],
            1,
            t(1),
        )
        .unwrap();
    assert_eq!(store.find_service("abc111").unwrap().id(), "abc111");
    assert_eq!(store.find_service("web").unwrap().id(), "abc111");
    assert_eq!(store.find_service("WEB").unwrap().id(), "abc111");
    // A name beats an ID prefix.
    assert_eq!(store.find_service("abc").unwrap().id(), "xyz333");
    assert_eq!(store.find_service("abc2").unwrap().id(), "abc222");
    let err = store.find_service("ab").unwrap_err();
    assert_eq!(err.to_string(), "service ab is ambiguous (2 matches found)");
    let err = store.find_service("nosuch").unwrap_err();
    assert_eq!(err.to_string(), "service nosuch not found");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(store.find_service("").unwrap_err().is_not_found());

    assert_eq!(store.find_node("host-a").unwrap().id(), "n1");
    assert_eq!(
        store.find_node("host-b").unwrap_err().to_string(),
        "node host-b is ambiguous (2 matches found)"
    );
    assert_eq!(store.find_node("n3").unwrap().id(), "n3");
    assert_eq!(store.find_task("t1").unwrap().id(), "t1aaa");
    assert_eq!(
        store.find_task("web.1").unwrap_err().to_string(),
        "task web.1 not found"
    );
    assert_eq!(
        store.find_secret("s").unwrap_err().to_string(),
        "secret s not found"
    );
}

#[test]
fn list_filters() {
    let mut store = Store::new();
    let mut web = service("s1", "web");
    web.spec
        .labels
        .insert("com.docker.stack.namespace".into(), "app".into());
    let mut global = service("s2", "webglobal");
    global.spec.mode = ServiceMode::global();
    let mut t1 = task("t1", "s1", 1);
    t1.node_id = "n1".into();
    let mut t2 = task("t2", "s1", 2);
    t2.desired_state = TaskState::Shutdown;
    t2.node_id = "n2".into();
    let t3 = task("t3", "s2", 0);
    let mut manager = node("n1", "m1");
    manager.spec.role = Some(NodeRole::Manager);
    manager.spec.labels.insert("zone".into(), "a".into());
    store
        .apply(
            &[
                create(web),
                create(global),
                create(service("s3", "api")),
                create(t1),
                create(t2),
                create(t3),
                create(manager),
                create(node("n2", "w1")),
            ],
            1,
            t(1),
        )
        .unwrap();
    let ids = |v: Vec<&Service>| v.iter().map(|s| s.id().to_owned()).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_services(&ServiceFilter::default())),
        vec!["s1", "s2", "s3"]
    );
    assert_eq!(
        ids(store.list_services(&ServiceFilter {
            names: vec!["web".into()],
            ..Default::default()
        })),
        vec!["s1", "s2"]
    );
    assert_eq!(
        ids(store.list_services(&ServiceFilter {
            labels: vec![LabelFilter::parse("com.docker.stack.namespace")],
            ..Default::default()
        })),
        vec!["s1"]
    );
    assert_eq!(
        ids(store.list_services(&ServiceFilter {
            labels: vec![LabelFilter::parse("com.docker.stack.namespace=other")],
            ..Default::default()
        })),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(store.list_services(&ServiceFilter {
            modes: vec![ModeKind::Global],
            ..Default::default()
        })),
        vec!["s2"]
    );

    let tids = |v: Vec<&Task>| v.iter().map(|t| t.id().to_owned()).collect::<Vec<_>>();
    assert_eq!(
        tids(store.list_tasks(&TaskFilter {
            service_ids: vec!["s1".into()],
            ..Default::default()
        })),
        vec!["t1", "t2"]
    );
    assert_eq!(
        tids(store.list_tasks(&TaskFilter {
            service_ids: vec!["s1".into(), "s2".into()],
            desired_states: vec![TaskState::Running],
            ..Default::default()
        })),
        vec!["t1", "t3"]
    );
    assert_eq!(
        tids(store.list_tasks(&TaskFilter {
            node_ids: vec!["n2".into()],
            ..Default::default()
        })),
        vec!["t2"]
    );
    assert_eq!(
        tids(store.list_tasks(&TaskFilter {
            ids: vec!["t".into()],
            slots: vec![0],
            ..Default::default()
        })),
        vec!["t3"]
    );

    let nids = |v: Vec<&Node>| v.iter().map(|n| n.id().to_owned()).collect::<Vec<_>>();
    assert_eq!(
        nids(store.list_nodes(&NodeFilter {
            roles: vec![NodeRole::Manager],
            ..Default::default()
        })),
        vec!["n1"]
    );
    assert_eq!(
        nids(store.list_nodes(&NodeFilter {
            node_labels: vec![LabelFilter::parse("zone=a")],
            ..Default::default()
        })),
        vec!["n1"]
    );
    assert_eq!(
        nids(store.list_nodes(&NodeFilter {
            names: vec!["w".into()],
            ..Default::default()
        })),
        vec!["n2"]
    );
}

#[test]
fn snapshot_restores_an_equal_store() {
    let mut store = Store::new();
    let mut t1 = task("t1", "s1", 1);
    t1.node_id = "n1".into();
    store
        .apply(
            &[
                create(service("s1", "web")),
                create(t1),
                create(node("n1", "h1")),
                create(Secret {
                    meta: Meta::with_id("x1"),
                    spec: SecretSpec {
                        name: "pw".into(),
                        data: "aGVsbG8=".into(),
                        ..SecretSpec::default()
                    },
                }),
            ],
            9,
            t(9),
        )
        .unwrap();
    let bytes = store.snapshot_json();
    assert_eq!(
        bytes,
        serde_json::to_vec(&store.snapshot()).unwrap(),
        "the borrowed view writes the Snapshot's JSON"
    );
    let restored = Store::restore_json(&bytes).unwrap();
    assert_eq!(restored.snapshot(), store.snapshot());
    assert_eq!(restored.applied_index(), 9);
    assert_eq!(restored.find_service("web").unwrap().id(), "s1");
    assert_eq!(restored.tasks_on_node("n1").count(), 1);
    assert_eq!(restored.secret_by_name("pw").unwrap().spec.data, "aGVsbG8=");

    let mut dup = store.snapshot();
    dup.services.push(service("s2", "WEB"));
    assert!(matches!(
        Store::restore(dup),
        Err(Error::NameConflict { .. })
    ));
    assert!(matches!(
        Store::restore_json(b"{not json"),
        Err(Error::Decode(_))
    ));
}

#[test]
fn actions_round_trip_through_serde_for_the_raft_log() {
    let actions = vec![
        create(service("s1", "web")),
        update(task("t1", "s1", 1)),
        StoreAction::Remove(ObjectKind::Node, "n1".into()),
        StoreAction::SetTaskStatus {
            id: "t1".into(),
            status: task_status(TaskState::Running, "started", t(5)),
        },
        StoreAction::SetTaskDesiredState {
            id: "t1".into(),
            desired_state: TaskState::Shutdown,
        },
    ];
    let bytes = serde_json::to_vec(&actions).unwrap();
    let back: Vec<StoreAction> = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(back, actions);
    assert_eq!(back[2].kind(), ObjectKind::Node);
    assert_eq!(back[3].kind(), ObjectKind::Task);
}

fn secret(id: &str, name: &str, data: &str) -> Secret {
    Secret {
        meta: Meta::with_id(id),
        spec: SecretSpec {
            name: name.into(),
            data: data.into(),
            ..SecretSpec::default()
        },
    }
}

fn config(id: &str, name: &str, data: &str) -> Config {
    Config {
        meta: Meta::with_id(id),
        spec: crate::model::ConfigSpec {
            name: name.into(),
            data: data.into(),
            ..Default::default()
        },
    }
}

/// A service using secret `x1` (as `db`) and config `c1` (as `app`).
fn service_with_refs(id: &str, name: &str) -> Service {
    let mut s = service(id, name);
    let c = s.spec.task_template.container_spec.as_mut().unwrap();
    c.secrets = serde_json::from_value(serde_json::json!([
        {"SecretID": "x1", "SecretName": "db", "File": {"Name": "db", "UID": "0", "GID": "0", "Mode": 292}}
    ]))
    .unwrap();
    c.configs = serde_json::from_value(serde_json::json!([
        {"ConfigID": "c1", "ConfigName": "app", "File": {"Name": "/app", "UID": "0", "GID": "0", "Mode": 292}}
    ]))
    .unwrap();
    s
}

#[test]
fn secrets_and_configs_in_use_cannot_be_removed() {
    let mut store = Store::new();
    store
        .apply(
            &[
                create(secret("x1", "db", "cHc=")),
                create(config("c1", "app", "YQ==")),
                create(service_with_refs("s1", "web")),
                create(service_with_refs("s2", "api")),
            ],
            1,
            t(1),
        )
        .unwrap();
    let err = store
        .apply(
            &[StoreAction::Remove(ObjectKind::Secret, "x1".into())],
            2,
            t(2),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    // Services in ID order: s1 (web), s2 (api).
    assert_eq!(
        err.to_string(),
        "secret 'db' is in use by the following services: web, api"
    );
    store
        .apply(
            &[StoreAction::Remove(ObjectKind::Service, "s2".into())],
            3,
            t(3),
        )
        .unwrap();
    let err = store
        .apply(
            &[StoreAction::Remove(ObjectKind::Config, "c1".into())],
            4,
            t(4),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "config 'app' is in use by the following service: web"
    );
    store
        .apply(
            &[StoreAction::Remove(ObjectKind::Service, "s1".into())],
            5,
            t(5),
        )
        .unwrap();
    store
        .apply(
            &[
                StoreAction::Remove(ObjectKind::Secret, "x1".into()),
                StoreAction::Remove(ObjectKind::Config, "c1".into()),
            ],
            6,
            t(6),
        )
        .unwrap();
    assert!(store.secrets().next().is_none() && store.configs().next().is_none());
}

#[test]
fn secret_names_are_unique_and_references_must_exist() {
    let mut store = Store::new();
    store
        .apply(&[create(secret("x1", "db", "cHc="))], 1, t(1))
        .unwrap();
    let err = store
        .apply(&[create(secret("x2", "DB", "cHc="))], 2, t(2))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let spec = service_with_refs("s1", "web").spec;
    assert_eq!(
        store.check_service_refs(&spec).unwrap_err().to_string(),
        "config not found: app"
    );
    // The store checks it when the service is written.
    let err = store
        .apply(&[create(service_with_refs("s1", "web"))], 3, t(3))
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.to_string().as_str()),
        (ErrorKind::InvalidArgument, "config not found: app")
    );
    store
        .apply(&[create(config("c1", "app", "YQ=="))], 4, t(4))
        .unwrap();
    store.check_service_refs(&spec).unwrap();
    store
        .apply(&[create(service_with_refs("s1", "web"))], 5, t(5))
        .unwrap();
    // A reference whose name is not the stored secret's name is refused too.
    let mut wrong = spec.clone();
    let c = wrong.task_template.container_spec.as_mut().unwrap();
    c.secrets[0].secret_name = "other".into();
    c.secrets.push(c.secrets[0].clone());
    c.secrets[1].secret_name = "third".into();
    assert_eq!(
        store.check_service_refs(&wrong).unwrap_err().to_string(),
        "secrets not found: other, third"
    );
    // An update that changes the references is checked; one that keeps them is not.
    let mut s1 = store.service("s1").unwrap().clone();
    s1.spec = wrong;
    assert_eq!(
        store.apply(&[update(s1)], 6, t(6)).unwrap_err().to_string(),
        "secrets not found: other, third"
    );
    let mut s1 = store.service("s1").unwrap().clone();
    s1.spec.labels.insert("a".into(), "b".into());
    store.apply(&[update(s1)], 7, t(7)).unwrap();
}

#[test]
fn secret_and_config_updates_change_labels_only() {
    let stored = secret("x1", "db", "cHc=");
    let mut spec = stored.spec.clone();
    spec.labels.insert("a".into(), "1".into());
    let out = update_secret(&stored, spec.clone()).unwrap();
    assert_eq!(out.spec.labels.get("a").map(String::as_str), Some("1"));
    assert_eq!(out.spec.data, "cHc=");
    // No data in the request keeps the stored data.
    spec.data.clear();
    assert_eq!(
        update_secret(&stored, spec.clone()).unwrap().spec.data,
        "cHc="
    );
    spec.data = "b3RoZXI=".into();
    assert_eq!(
        update_secret(&stored, spec).unwrap_err().to_string(),
        "only updates to Labels are allowed"
    );
    let stored = config("c1", "app", "YQ==");
    let mut spec = stored.spec.clone();
    spec.name = "app2".into();
    assert_eq!(
        update_config(&stored, spec).unwrap_err().to_string(),
        "only updates to Labels are allowed"
    );
}

#[test]
fn a_services_tasks_share_one_spec_also_after_a_restore() {
    let mut store = Store::new();
    store
        .apply(
            &[
                create(service("s1", "web")),
                create(task("t1", "s1", 1)),
                create(task("t2", "s1", 2)),
            ],
            3,
            t(3),
        )
        .unwrap();
    let shared = |s: &Store| {
        let (a, b) = (s.task("t1").unwrap(), s.task("t2").unwrap());
        std::sync::Arc::ptr_eq(&a.spec, &b.spec)
    };
    assert!(shared(&store), "two copies of one spec from the log");
    let restored = Store::restore_json(&store.snapshot_json()).unwrap();
    assert!(shared(&restored), "two copies of one spec from a snapshot");
}
