//! Model tests: lossless round trips of what the docker CLI and docker-py send, and the
//! exact JSON shape of what we return.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use super::*;
use crate::state::TaskState;

/// A ServiceSpec as the docker CLI 28 sends it on `service create` (flags for most
/// options), plus fields we do not model at several depths.
fn cli_service_spec() -> Value {
    json!({
        "Name": "web",
        "Labels": {"com.docker.stack.namespace": "app"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "registry:5000/busybox:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "Labels": {"l": "v"},
                "Command": ["/bin/sh"],
                "Args": ["-c", "httpd -f -p 8080"],
                "Hostname": "{{.Service.Name}}-{{.Task.Slot}}",
                "Env": ["A=1", "B=2"],
                "Dir": "/srv",
                "User": "1000:1000",
                "Groups": ["wheel"],
                "Privileges": {"CredentialSpec": null, "SELinuxContext": null, "NoNewPrivileges": true},
                "Init": false,
                "StopSignal": "SIGTERM",
                "TTY": true,
                "OpenStdin": true,
                "ReadOnly": true,
                "Mounts": [
                    {"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 1023}},
                    {"Type": "bind", "Source": "/srv", "Target": "/data", "ReadOnly": true,
                     "Consistency": "cached", "BindOptions": {"Propagation": "rprivate", "ReadOnlyNonRecursive": true}},
                    {"Type": "volume", "Source": "vol", "Target": "/v",
                     "VolumeOptions": {"NoCopy": true, "Labels": {"a": "b"},
                                       "DriverConfig": {"Name": "local", "Options": {"type": "nfs"}}}}
                ],
                "StopGracePeriod": 10000000000u64,
                "Healthcheck": {"Test": ["CMD-SHELL", "wget -q localhost:8080"], "Interval": 1000000000,
                                "Timeout": 3000000000u64, "Retries": 3, "StartPeriod": 2000000000},
                "Hosts": ["10.0.0.1 db"],
                "DNSConfig": {"Nameservers": ["8.8.8.8"], "Search": ["example.com"], "Options": ["ndots:2"]},
                "Secrets": [{"File": {"Name": "s", "UID": "0", "GID": "0", "Mode": 292},
                             "SecretID": "k0v5ld4xqg4z2ufyzjxtm9nhx", "SecretName": "s"}],
                "Configs": [{"File": {"Name": "/etc/c", "UID": "0", "GID": "0", "Mode": 292},
                             "ConfigID": "c2rnm2ysqpg4bqrxxl6w3mqzt", "ConfigName": "c"},
                            {"Runtime": {}, "ConfigID": "c3", "ConfigName": "cred"}],
                "Isolation": "default",
                "Sysctls": {"net.core.somaxconn": "1024"},
                "CapabilityAdd": ["CAP_NET_ADMIN"],
                "CapabilityDrop": ["CAP_MKNOD"],
                "Ulimits": [{"Name": "nofile", "Hard": 2048, "Soft": 1024}],
                "OomScoreAdj": 100,
                "FutureContainerField": {"x": [1, 2, 3]}
            },
            "Resources": {
                "Limits": {"NanoCPUs": 500000000, "MemoryBytes": 67108864, "Pids": 100},
                "Reservations": {"NanoCPUs": 100000000, "MemoryBytes": 33554432,
                                 "GenericResources": [{"DiscreteResourceSpec": {"Kind": "gpu", "Value": 1}}]}
            },
            "RestartPolicy": {"Condition": "on-failure", "Delay": 5000000000u64, "MaxAttempts": 3, "Window": 60000000000u64},
            "Placement": {
                "Constraints": ["node.role==manager", "node.labels.zone!=b"],
                "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
                "MaxReplicas": 2,
                "Platforms": [{"Architecture": "amd64", "OS": "linux"}]
            },
            "Networks": [{"Target": "backend", "Aliases": ["api"], "DriverOpts": {"com.docker.network.x": "1"}}],
            "LogDriver": {"Name": "json-file", "Options": {"max-size": "1m"}},
            "ForceUpdate": 0,
            "Runtime": "container",
            "FutureTaskField": true
        },
        "Mode": {"Replicated": {"Replicas": 3}},
        "UpdateConfig": {"Parallelism": 2, "Delay": 1000000000, "FailureAction": "rollback",
                         "Monitor": 5000000000u64, "MaxFailureRatio": 0.2, "Order": "start-first"},
        "RollbackConfig": {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5000000000u64,
                           "MaxFailureRatio": 0, "Order": "stop-first"},
        "EndpointSpec": {"Mode": "vip", "Ports": [
            {"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 80, "PublishMode": "ingress"},
            {"Name": "dns", "Protocol": "udp", "TargetPort": 53, "PublishMode": "host"}
        ]},
        "FutureServiceField": {"nested": {"deep": "value"}}
    })
}

#[test]
fn cli_service_spec_round_trips_losslessly() {
    let sent = cli_service_spec();
    let text = serde_json::to_string(&sent).unwrap();
    let spec: ServiceSpec = serde_json::from_str(&text).unwrap();
    let back: Value = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
    assert_eq!(back, sent);
    // And what we modelled is where we expect it.
    assert_eq!(spec.mode.replicas(), Some(3));
    let c = spec.task_template.container_spec.as_ref().unwrap();
    assert!(c.tty);
    assert_eq!(c.capability_add, vec!["CAP_NET_ADMIN"]);
    assert_eq!(c.mounts[0].kind, Some(MountType::Tmpfs));
    assert_eq!(c.mounts[1].extra["Consistency"], json!("cached"));
    assert_eq!(c.extra["OomScoreAdj"], json!(100));
    assert_eq!(
        spec.task_template
            .resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap()
            .nano_cpus,
        500_000_000
    );
    let update = spec.update_config.as_ref().unwrap();
    assert_eq!(update.failure_action, Some(FailureAction::Rollback));
    assert_eq!(update.order, Some(UpdateOrder::StartFirst));
    assert_eq!(
        spec.extra["FutureServiceField"]["nested"]["deep"],
        json!("value")
    );
}

#[test]
fn scale_keeps_every_field() {
    // `docker service scale`: GET, change Replicas, POST the whole spec back.
    let mut spec: ServiceSpec = serde_json::from_value(cli_service_spec()).unwrap();
    spec.mode = ServiceMode::replicated(5);
    let back = serde_json::to_value(&spec).unwrap();
    let mut expected = cli_service_spec();
    expected["Mode"]["Replicated"]["Replicas"] = json!(5);
    assert_eq!(back, expected);
}

#[test]
fn minimal_cli_spec_round_trips() {
    // `docker service create busybox`: Go's omitempty leaves most fields out.
    let sent = json!({
        "Labels": {},
        "TaskTemplate": {
            "ContainerSpec": {"Image": "busybox", "Init": false, "StopGracePeriod": 10000000000u64,
                              "DNSConfig": {}, "Isolation": "default"},
            "Resources": {"Limits": {}, "Reservations": {}},
            "RestartPolicy": {"Condition": "any", "Delay": 5000000000u64, "MaxAttempts": 0},
            "Placement": {},
            "ForceUpdate": 0,
            "Runtime": "container"
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "UpdateConfig": {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5000000000u64,
                         "MaxFailureRatio": 0, "Order": "stop-first"},
        "RollbackConfig": {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5000000000u64,
                           "MaxFailureRatio": 0, "Order": "stop-first"},
        "EndpointSpec": {"Mode": "vip"}
    });
    let spec: ServiceSpec = serde_json::from_value(sent.clone()).unwrap();
    assert_eq!(serde_json::to_value(&spec).unwrap(), sent);
}

#[test]
fn docker_py_lowercase_mode_is_accepted() {
    // docker-py's ServiceMode sends {"replicated": {"Replicas": 2}} and {"global": {}}.
    let spec: ServiceSpec = serde_json::from_value(json!({
        "Name": "py", "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}},
        "Mode": {"replicated": {"Replicas": 2}}
    }))
    .unwrap();
    assert_eq!(spec.mode.kind(), Some(ModeKind::Replicated));
    assert_eq!(spec.mode.replicas(), Some(2));
    let global: ServiceMode = serde_json::from_value(json!({"global": {}})).unwrap();
    assert_eq!(global.kind(), Some(ModeKind::Global));
    // What we write back is Docker's spelling.
    assert_eq!(
        serde_json::to_value(&spec.mode).unwrap(),
        json!({"Replicated": {"Replicas": 2}})
    );
}

#[test]
fn null_labels_and_lists_read_as_empty() {
    let spec: ServiceSpec = serde_json::from_value(json!({
        "Name": "n", "Labels": null,
        "TaskTemplate": {"ContainerSpec": {"Image": "i", "Env": null, "Mounts": null}}
    }))
    .unwrap();
    assert!(spec.labels.is_empty());
    assert!(spec.task_template.container_spec.unwrap().env.is_empty());
}

#[test]
fn unknown_enum_values_survive_for_validation() {
    let policy: RestartPolicy = serde_json::from_value(json!({"Condition": "sometimes"})).unwrap();
    assert_eq!(
        policy.condition,
        Some(RestartCondition::Other("sometimes".into()))
    );
    assert_eq!(
        serde_json::to_value(&policy).unwrap(),
        json!({"Condition": "sometimes"})
    );
    assert!(!policy.condition.unwrap().is_known());
}

#[test]
fn mode_kind() {
    assert_eq!(ServiceMode::default().kind(), None);
    assert_eq!(
        ServiceMode::default().kind_or_default(),
        Some(ModeKind::Replicated)
    );
    assert_eq!(ServiceMode::default().replicas(), Some(1));
    let both = ServiceMode {
        replicated: Some(ReplicatedService::default()),
        global: Some(GlobalService::default()),
        ..ServiceMode::default()
    };
    assert_eq!(both.kind(), None);
    assert_eq!(both.kind_or_default(), None);
    assert_eq!(ServiceMode::global().replicas(), None);
}

fn at(secs: i64, nanos: u32) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(secs, nanos).unwrap()
}

#[test]
fn service_object_has_dockers_shape() {
    let service = Service {
        meta: Meta {
            id: "k0v5ld4xqg4z2ufyzjxtm9nhx".into(),
            version: Version::new(12),
            created_at: at(1_700_000_000, 123_450_000),
            updated_at: at(1_700_000_001, 0),
        },
        spec: ServiceSpec {
            name: "web".into(),
            mode: ServiceMode::replicated(2),
            ..ServiceSpec::default()
        },
        update_status: Some(UpdateStatus {
            state: Some(UpdateState::Updating),
            started_at: Some(at(1_700_000_001, 5)),
            completed_at: None,
            message: "update in progress".into(),
        }),
        ..Service::default()
    };
    assert_eq!(
        serde_json::to_value(&service).unwrap(),
        json!({
            "ID": "k0v5ld4xqg4z2ufyzjxtm9nhx",
            "Version": {"Index": 12},
            "CreatedAt": "2023-11-14T22:13:20.12345Z",
            "UpdatedAt": "2023-11-14T22:13:21Z",
            "Spec": {
                "Name": "web", "Labels": {},
                "TaskTemplate": {"ForceUpdate": 0},
                "Mode": {"Replicated": {"Replicas": 2}}
            },
            "Endpoint": {"Spec": {}},
            "UpdateStatus": {"State": "updating", "StartedAt": "2023-11-14T22:13:21.000000005Z",
                             "Message": "update in progress"}
        })
    );
    let back: Service = serde_json::from_value(serde_json::to_value(&service).unwrap()).unwrap();
    assert_eq!(back, service);
}

#[test]
fn task_object_has_dockers_shape() {
    let task = Task {
        meta: Meta {
            id: "t1".into(),
            version: Version::new(3),
            created_at: at(0, 0),
            updated_at: at(0, 0),
        },
        service_id: "s1".into(),
        slot: 1,
        node_id: "n1".into(),
        status: TaskStatus {
            timestamp: at(10, 0),
            state: TaskState::Running,
            message: "started".into(),
            container_status: Some(ContainerStatus {
                container_id: "c1".into(),
                pid: 42,
                exit_code: 0,
            }),
            ..TaskStatus::default()
        },
        desired_state: TaskState::Running,
        ..Task::default()
    };
    assert_eq!(
        serde_json::to_value(&task).unwrap(),
        json!({
            "ID": "t1", "Version": {"Index": 3},
            "CreatedAt": "1970-01-01T00:00:00Z", "UpdatedAt": "1970-01-01T00:00:00Z",
            "Labels": {},
            "Spec": {"ForceUpdate": 0},
            "ServiceID": "s1", "Slot": 1, "NodeID": "n1",
            "Status": {"Timestamp": "1970-01-01T00:00:10Z", "State": "running", "Message": "started",
                       "ContainerStatus": {"ContainerID": "c1", "PID": 42}, "PortStatus": {}},
            "DesiredState": "running"
        })
    );
}

#[test]
fn node_and_swarm_specs_are_lossless() {
    let node_spec = json!({"Name": "n", "Labels": {"zone": "a"}, "Role": "manager",
                           "Availability": "drain", "Future": 1});
    let spec: NodeSpec = serde_json::from_value(node_spec.clone()).unwrap();
    assert_eq!(spec.availability, Some(NodeAvailability::Drain));
    assert_eq!(serde_json::to_value(&spec).unwrap(), node_spec);

    let swarm_spec = json!({
        "Name": "default", "Labels": {},
        "Orchestration": {"TaskHistoryRetentionLimit": 5},
        "Raft": {"SnapshotInterval": 10000, "KeepOldSnapshots": 0, "LogEntriesForSlowFollowers": 500,
                 "ElectionTick": 10, "HeartbeatTick": 1},
        "Dispatcher": {"HeartbeatPeriod": 5000000000u64},
        "CAConfig": {"NodeCertExpiry": 7776000000000000u64},
        "TaskDefaults": {},
        "EncryptionConfig": {"AutoLockManagers": false},
        "FutureSwarmField": "x"
    });
    let spec: SwarmSpec = serde_json::from_value(swarm_spec.clone()).unwrap();
    assert_eq!(spec.orchestration.task_history_retention_limit, Some(5));
    assert_eq!(serde_json::to_value(&spec).unwrap(), swarm_spec);
}

#[test]
fn swarm_object_flattens_cluster_info() {
    let swarm = Swarm {
        cluster: ClusterInfo {
            meta: Meta::with_id("c1"),
            default_addr_pool: vec!["10.0.0.0/8".into()],
            subnet_size: 24,
            data_path_port: 4789,
            ..ClusterInfo::default()
        },
        join_tokens: JoinTokens {
            worker: "SWMTKN-1-w".into(),
            manager: "SWMTKN-1-m".into(),
        },
        root_ca_key: String::new(),
        unlock_key: String::new(),
        root_rotation: None,
    };
    let v = serde_json::to_value(&swarm).unwrap();
    assert_eq!(v["ID"], json!("c1"));
    assert_eq!(v["JoinTokens"]["Worker"], json!("SWMTKN-1-w"));
    assert_eq!(v["DataPathPort"], json!(4789));
    assert_eq!(v["TLSInfo"], json!({}));
    assert_eq!(v["RootRotationInProgress"], json!(false));
    let back: Swarm = serde_json::from_value(v).unwrap();
    assert_eq!(back, swarm);
}

#[test]
fn secret_spec_is_lossless() {
    let sent = json!({"Name": "s", "Labels": {"a": "b"}, "Data": "aGVsbG8=", "Future": [1]});
    let spec: SecretSpec = serde_json::from_value(sent.clone()).unwrap();
    assert_eq!(spec.data, "aGVsbG8=");
    assert_eq!(serde_json::to_value(&spec).unwrap(), sent);
    let sent = json!({"Name": "c", "Labels": {}, "Data": "eA==", "Templating": {"Name": "golang"}});
    let spec: ConfigSpec = serde_json::from_value(sent.clone()).unwrap();
    assert_eq!(serde_json::to_value(&spec).unwrap(), sent);
}

/// A network as Docker's `swarm.Network` JSON, with fields we do not model.
#[test]
fn network_object_round_trips_with_dockers_shape() {
    let v = json!({
        "ID": "n1",
        "Version": {"Index": 12},
        "CreatedAt": "2024-01-02T03:04:05.123456789Z",
        "UpdatedAt": "2024-01-02T03:04:05Z",
        "Spec": {
            "Name": "backend",
            "Labels": {},
            "DriverConfiguration": {"Name": "overlay", "Options": {"encrypted": ""}},
            "Attachable": true,
            "IPAMOptions": {
                "Driver": {"Name": "default"},
                "Configs": [{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1", "Future": 1}]
            },
            "Scope": "swarm",
            "ConfigFrom": {"Network": "cfg"}
        },
        "DriverState": {
            "Name": "overlay",
            "Options": {"com.docker.network.driver.overlay.vxlanid_list": "4097"}
        },
        "IPAMOptions": {
            "Driver": {"Name": "default"},
            "Configs": [{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1"}]
        }
    });
    let n: Network = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(n.vni(), Some(4097));
    assert!(n.is_allocated());
    assert_eq!(n.spec.ipam_configs()[0].subnet, "10.9.0.0/24");
    assert_eq!(serde_json::to_value(&n).unwrap(), v);

    // Before allocation: DriverState is written empty (a Go struct), IPAMOptions not.
    let fresh = Network {
        meta: Meta::with_id("n2"),
        spec: NetworkSpec {
            name: "x".into(),
            ..NetworkSpec::default()
        },
        ..Network::default()
    };
    let v = serde_json::to_value(&fresh).unwrap();
    assert_eq!(v["DriverState"], json!({}));
    assert_eq!(v["Spec"], json!({"Name": "x", "Labels": {}}));
    assert!(v.get("IPAMOptions").is_none());
    assert!(!fresh.is_allocated());
}

#[test]
fn address_pool_settings_default_as_dockers() {
    let c = ClusterInfo::default();
    assert_eq!(c.addr_pools(), vec!["10.0.0.0/8"]);
    assert_eq!(c.subnet_size_or_default(), 24);
    assert_eq!(c.data_path_port_or_default(), 4789);
}

#[test]
fn fill_defaults_as_dockers_daemon_stores_them() {
    use crate::model::{ServiceMode, ServiceSpec};
    let mut spec: ServiceSpec = serde_json::from_value(json!({
        "Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}},
        "Mode": {"Replicated": {}}
    }))
    .unwrap();
    spec.fill_defaults();
    let v = serde_json::to_value(&spec).unwrap();
    assert_eq!(v["Mode"], json!({"Replicated": {"Replicas": 1}}));
    assert_eq!(v["TaskTemplate"]["Runtime"], "container");
    assert_eq!(v["TaskTemplate"]["ContainerSpec"]["Isolation"], "default");

    // No mode at all is replicated with one; a count given is kept; a job gets
    // MaxConcurrent 1 and as many completions.
    let mut none: ServiceSpec = serde_json::from_value(json!({"Name": "a"})).unwrap();
    none.fill_defaults();
    assert_eq!(none.mode, ServiceMode::replicated(1));
    let mut three: ServiceSpec =
        serde_json::from_value(json!({"Mode": {"Replicated": {"Replicas": 3}}})).unwrap();
    three.fill_defaults();
    assert_eq!(three.mode, ServiceMode::replicated(3));
    let mut job: ServiceSpec =
        serde_json::from_value(json!({"Mode": {"ReplicatedJob": {}}})).unwrap();
    job.fill_defaults();
    let v = serde_json::to_value(&job).unwrap();
    assert_eq!(
        v["Mode"],
        json!({"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}})
    );
    let mut global: ServiceSpec = serde_json::from_value(json!({"Mode": {"Global": {}}})).unwrap();
    global.fill_defaults();
    assert_eq!(global.mode, ServiceMode::global());
}

#[test]
fn insert_defaults_fills_only_missing_parts() {
    let mut v = json!({
        "Name": "web",
        "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}, "RestartPolicy": {"Condition": "none"}},
        "UpdateConfig": {"Parallelism": 2}
    });
    crate::model::insert_service_defaults(&mut v);
    assert_eq!(v["UpdateConfig"], json!({"Parallelism": 2}));
    assert_eq!(
        v["RollbackConfig"],
        json!({"Parallelism": 1, "FailureAction": "pause", "Monitor": 5_000_000_000u64,
               "MaxFailureRatio": 0, "Order": "stop-first"})
    );
    assert_eq!(
        v["TaskTemplate"]["RestartPolicy"],
        json!({"Condition": "none"})
    );
    assert_eq!(
        v["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"],
        10_000_000_000u64
    );
    assert_eq!(v["TaskTemplate"]["ContainerSpec"]["DNSConfig"], json!({}));
    assert_eq!(v["TaskTemplate"]["Placement"], json!({}));
    assert_eq!(v["TaskTemplate"]["Resources"], json!({}));
}
