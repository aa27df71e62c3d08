//! Validation tests: one bad field at a time, with Docker's exact message.

use serde_json::json;

use super::*;
use crate::error::ErrorKind;
use crate::model::ServiceMode;

fn good() -> serde_json::Value {
    json!({
        "Name": "web",
        "Labels": {},
        "TaskTemplate": {
            "ContainerSpec": {"Image": "registry.local:5000/busybox:1",
                              "Mounts": [{"Type": "tmpfs", "Target": "/tmp"}]},
            "RestartPolicy": {"Condition": "on-failure", "Delay": 5000000000u64},
            "Placement": {"Constraints": ["node.role==manager", "node.labels.zone != b"]},
            "Resources": {"Limits": {"NanoCPUs": 500000000, "MemoryBytes": 67108864}},
            "ForceUpdate": 0
        },
        "Mode": {"Replicated": {"Replicas": 3}},
        "UpdateConfig": {"Parallelism": 1, "FailureAction": "pause", "MaxFailureRatio": 0, "Order": "stop-first"},
        "EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080}]}
    })
}

/// The message validating `good()` with `path` set to `value` gives.
fn err_with(path: &[&str], value: serde_json::Value) -> String {
    let mut v = good();
    let mut cur = &mut v;
    for p in &path[..path.len() - 1] {
        cur = &mut cur[*p];
    }
    cur[path[path.len() - 1]] = value;
    let spec: ServiceSpec = serde_json::from_value(v).unwrap();
    let err = validate_service_spec(&spec).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    err.to_string()
}

#[test]
fn a_good_spec_passes() {
    let spec: ServiceSpec = serde_json::from_value(good()).unwrap();
    validate_service_spec(&spec).unwrap();
}

#[test]
fn names() {
    assert_eq!(
        err_with(&["Name"], json!("")),
        "meta: name must be provided"
    );
    assert_eq!(
        err_with(&["Name"], json!("-web")),
        "name must be valid as a DNS name component"
    );
    assert_eq!(
        err_with(&["Name"], json!("web.1")),
        "name must be valid as a DNS name component"
    );
    assert_eq!(
        err_with(&["Name"], json!("a".repeat(64))),
        "name must be 63 characters or fewer"
    );
    validate_service_name("my_web-2").unwrap();
}

#[test]
fn images() {
    let image = |v: &str| err_with(&["TaskTemplate", "ContainerSpec", "Image"], json!(v));
    assert_eq!(image(""), "ContainerSpec: image reference must be provided");
    assert_eq!(
        image("Busybox"),
        "ContainerSpec: \"Busybox\" is not a valid repository/tag"
    );
    assert_eq!(
        image("busy box"),
        "ContainerSpec: \"busy box\" is not a valid repository/tag"
    );
    assert_eq!(
        image("busybox:"),
        "ContainerSpec: \"busybox:\" is not a valid repository/tag"
    );
    for ok in [
        "busybox",
        "busybox:1.36",
        "localhost:5000/a/b:tag",
        "Registry.Example.com/ns/app@sha256:abc",
        "127.0.0.1:5000/busybox:1",
    ] {
        validate_image(ok).unwrap();
    }
}

#[test]
fn modes() {
    assert_eq!(
        err_with(
            &["Mode"],
            json!({"Replicated": {"Replicas": 1}, "Global": {}})
        ),
        "cannot specify both replicated mode and global mode"
    );
    assert_eq!(
        err_with(&["Mode"], json!({"Global": {"Replicas": 2}})),
        "replicas can only be used with replicated or replicated-job mode"
    );
    assert_eq!(
        err_with(&["Mode"], json!({"ReplicatedJob": {}, "GlobalJob": {}})),
        "Unrecognized service mode"
    );
    assert_eq!(
        err_with(&["Mode"], json!({"ReplicatedJob": {"TotalCompletions": 3}})),
        "Jobs may not have an update config"
    );
    // Negative replicas cannot even be decoded into the spec.
    let mut v = good();
    v["Mode"]["Replicated"]["Replicas"] = json!(-1);
    assert!(serde_json::from_value::<ServiceSpec>(v).is_err());
}

#[test]
fn restart_resources_and_placement() {
    assert_eq!(
        err_with(
            &["TaskTemplate", "RestartPolicy", "Condition"],
            json!("always")
        ),
        "invalid RestartCondition: \"always\""
    );
    assert_eq!(
        err_with(&["TaskTemplate", "RestartPolicy", "Delay"], json!(-1)),
        "TaskSpec: restart-delay cannot be negative"
    );
    assert_eq!(
        err_with(&["TaskTemplate", "RestartPolicy", "Window"], json!(-1)),
        "TaskSpec: restart-window cannot be negative"
    );
    assert_eq!(
        err_with(
            &["TaskTemplate", "Resources", "Limits", "NanoCPUs"],
            json!(100000)
        ),
        "invalid cpu value 0.0001: Must be at least 0.001"
    );
    assert_eq!(
        err_with(
            &["TaskTemplate", "Resources", "Limits", "MemoryBytes"],
            json!(1024)
        ),
        "invalid memory value 1024: Must be at least 4MiB"
    );
    assert_eq!(
        err_with(
            &["TaskTemplate", "Placement", "Constraints"],
            json!(["node.role=manager"])
        ),
        "constraint expected one operator from ==, !="
    );
    assert_eq!(
        err_with(&["TaskTemplate", "Runtime"], json!("plugin")),
        "RuntimeSpec: unimplemented runtime in service spec"
    );
    let mut v = good();
    v["TaskTemplate"]
        .as_object_mut()
        .unwrap()
        .remove("ContainerSpec");
    let spec: ServiceSpec = serde_json::from_value(v).unwrap();
    assert_eq!(
        validate_service_spec(&spec).unwrap_err().to_string(),
        "TaskSpec: missing runtime"
    );
}

#[test]
fn mounts_and_healthcheck() {
    let mounts = |v: serde_json::Value| err_with(&["TaskTemplate", "ContainerSpec", "Mounts"], v);
    assert_eq!(
        mounts(json!([{"Type": "bind", "Source": "/a"}])),
        "invalid mount config for type \"bind\": field Target must not be empty"
    );
    assert_eq!(
        mounts(json!([{"Type": "bind", "Target": "/a"}])),
        "invalid mount config for type \"bind\": field Source must not be empty"
    );
    assert_eq!(
        mounts(json!([{"Type": "nfs", "Target": "/a"}])),
        "invalid mount config for type \"nfs\": mount type unknown"
    );
    assert_eq!(
        mounts(json!([{"Type": "tmpfs", "Target": "/a"}, {"Type": "volume", "Target": "/a"}])),
        "ContainerSpec: duplicate mount point: /a"
    );
    let hc = |v: serde_json::Value| err_with(&["TaskTemplate", "ContainerSpec", "Healthcheck"], v);
    assert_eq!(
        hc(json!({"Test": ["CMD", "true"], "Interval": 1000})),
        "ContainerSpec: Interval in HealthConfig cannot be less than 1ms"
    );
    assert_eq!(
        hc(json!({"Test": ["CMD", "true"], "Retries": -1})),
        "ContainerSpec: Retries in HealthConfig cannot be negative"
    );
}

#[test]
fn secret_and_config_references() {
    let secrets = |v: serde_json::Value| err_with(&["TaskTemplate", "ContainerSpec", "Secrets"], v);
    assert_eq!(
        secrets(json!([{"SecretName": "s"}])),
        "malformed secret reference"
    );
    assert_eq!(
        secrets(json!([{"SecretID": "x", "SecretName": "s"}])),
        "malformed secret reference, no target provided"
    );
    let file = |name: &str| json!({"Name": name, "UID": "0", "GID": "0", "Mode": 292});
    assert_eq!(
        secrets(json!([
            {"SecretID": "x", "SecretName": "a", "File": file("t")},
            {"SecretID": "y", "SecretName": "b", "File": file("t")}
        ])),
        "secret references 'a' and 'b' have a conflicting target: 't'"
    );
    let configs = |v: serde_json::Value| err_with(&["TaskTemplate", "ContainerSpec", "Configs"], v);
    assert_eq!(
        configs(json!([{"ConfigID": "x", "ConfigName": "c", "File": file("")}])),
        "malformed file config reference, invalid target file name provided"
    );
    let mut v = good();
    v["TaskTemplate"]["ContainerSpec"]["Configs"] =
        json!([{"ConfigID": "x", "ConfigName": "cred", "Runtime": {}}]);
    validate_service_spec(&serde_json::from_value(v).unwrap()).unwrap();
}

#[test]
fn update_config_and_endpoint() {
    assert_eq!(
        err_with(&["UpdateConfig", "FailureAction"], json!("explode")),
        "unrecognized update failure action explode"
    );
    assert_eq!(
        err_with(&["UpdateConfig", "Order"], json!("random")),
        "unrecognized update order random"
    );
    assert_eq!(
        err_with(&["UpdateConfig", "MaxFailureRatio"], json!(1.5)),
        "TaskSpec: update-maxfailureratio cannot be less than 0 or bigger than 1"
    );
    assert_eq!(
        err_with(&["UpdateConfig", "Delay"], json!(-5)),
        "TaskSpec: update-delay cannot be negative"
    );
    assert_eq!(
        err_with(&["EndpointSpec", "Mode"], json!("dnsrr")),
        "EndpointSpec: port published with ingress mode can't be used with dnsrr mode"
    );
    assert_eq!(
        err_with(
            &["EndpointSpec", "Ports"],
            json!([{"TargetPort": 80, "PublishedPort": 8080},
                   {"Protocol": "tcp", "TargetPort": 81, "PublishedPort": 8080}])
        ),
        "EndpointSpec: duplicate published ports provided"
    );
    // Same port on another protocol is fine.
    let mut v = good();
    v["EndpointSpec"]["Ports"] = json!([{"TargetPort": 53, "PublishedPort": 53},
                                         {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53}]);
    validate_service_spec(&serde_json::from_value(v).unwrap()).unwrap();
}

#[test]
fn updates_may_not_rename_or_change_mode() {
    let spec: ServiceSpec = serde_json::from_value(good()).unwrap();
    let current = Service {
        spec: spec.clone(),
        ..Service::default()
    };
    validate_service_update(&current, &spec).unwrap();
    let mut renamed = spec.clone();
    renamed.name = "other".into();
    assert_eq!(
        validate_service_update(&current, &renamed)
            .unwrap_err()
            .to_string(),
        "renaming services is not supported"
    );
    let mut global = spec;
    global.mode = ServiceMode::global();
    assert_eq!(
        validate_service_update(&current, &global)
            .unwrap_err()
            .to_string(),
        "service mode change is not allowed"
    );
}

#[test]
fn nodes_secrets_configs() {
    let spec: NodeSpec = serde_json::from_value(json!({"Role": "boss"})).unwrap();
    assert_eq!(
        validate_node_spec(&spec).unwrap_err().to_string(),
        "invalid Role: \"boss\""
    );
    let spec: NodeSpec = serde_json::from_value(json!({"Availability": "away"})).unwrap();
    assert_eq!(
        validate_node_spec(&spec).unwrap_err().to_string(),
        "invalid Availability: \"away\""
    );
    validate_secret_name("db.password_1").unwrap();
    assert_eq!(
        validate_secret_name("").unwrap_err().to_string(),
        "name must be provided"
    );
    assert!(validate_secret_name(".hidden").is_err());
    assert!(validate_secret_name(&"a".repeat(65)).is_err());
    validate_secret_data("secret", "aGVsbG8=").unwrap();
    assert_eq!(
        validate_secret_data("secret", "").unwrap_err().to_string(),
        "secret data must be larger than 0 and less than 512000 bytes"
    );
    // Smaller than 500 KiB decoded, as swarmkit: 512000 bytes is one too many.
    use base64::Engine;
    let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![b'x'; n]);
    validate_secret_data("config", &b64(MAX_SECRET_SIZE - 1)).unwrap();
    assert_eq!(
        validate_secret_data("config", &b64(MAX_SECRET_SIZE))
            .unwrap_err()
            .to_string(),
        "config data must be larger than 0 and less than 512000 bytes"
    );
    assert!(validate_secret_data("secret", "not base64!").is_err());
    let spec: SecretSpec =
        serde_json::from_value(json!({"Name": "db", "Data": "cHc=", "Driver": {"Name": "vault"}}))
            .unwrap();
    assert!(validate_secret_spec(&spec)
        .unwrap_err()
        .to_string()
        .starts_with("secret driver \"vault\" is not supported"));
    let spec: ConfigSpec = serde_json::from_value(json!({"Name": "-x", "Data": "cHc="})).unwrap();
    assert!(validate_config_spec(&spec).is_err());
}

#[test]
fn port_numbers_in_range() {
    let ports = |p: serde_json::Value| err_with(&["EndpointSpec", "Ports"], p);
    assert_eq!(
        ports(json!([{"TargetPort": 0, "PublishedPort": 8080}])),
        "EndpointSpec: invalid target port 0: must be between 1 and 65535"
    );
    assert_eq!(
        ports(json!([{"TargetPort": 70000}])),
        "EndpointSpec: invalid target port 70000: must be between 1 and 65535"
    );
    assert_eq!(
        ports(json!([{"TargetPort": 80, "PublishedPort": 65536}])),
        "EndpointSpec: invalid published port 65536: must be between 1 and 65535"
    );
    // Published 0 (or absent) asks for a dynamic port; host mode too.
    let mut v = good();
    v["EndpointSpec"]["Ports"] = json!([{"TargetPort": 80},
                                         {"TargetPort": 81, "PublishMode": "host"},
                                         {"TargetPort": 82, "PublishedPort": 65535}]);
    validate_service_spec(&serde_json::from_value(v).unwrap()).unwrap();
}
