//! The merged model to Engine API bodies, as the docker CLI's `compose/convert`
//! (`service.go`, `compose.go`, `volume.go`) builds them, in the JSON Go's
//! `encoding/json` writes for those structs (omitempty fields left out, the others
//! present even when zero: `ForceUpdate: 0`, `Labels`, `Privileges`).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::service::opts::effective_caps;
use crate::units::size::nano_cpus;

/// The merged compose model: services and the four top-level sections by name.
#[derive(Debug, Default)]
pub struct Model {
    pub services: Map<String, Value>,
    pub networks: Map<String, Value>,
    pub volumes: Map<String, Value>,
    pub secrets: Map<String, Value>,
    pub configs: Map<String, Value>,
}

const LABEL_NAMESPACE: &str = "com.docker.stack.namespace";
const LABEL_IMAGE: &str = "com.docker.stack.image";

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(super::model::go_sprint)
        .collect()
}

fn stack_labels(ns: &str, labels: Option<&Value>) -> Map<String, Value> {
    let mut m = labels
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    m.insert(LABEL_NAMESPACE.into(), json!(ns));
    m
}

/// Sets `key` when `v` is not Go's zero value (omitempty).
fn put(m: &mut Map<String, Value>, key: &str, v: Value) {
    let empty = match &v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    };
    if !empty {
        m.insert(key.into(), v);
    }
}

/// `container.NetworkMode(name).IsUserDefined()` on Linux.
fn user_defined(name: &str) -> bool {
    !matches!(name, "default" | "bridge" | "host" | "none") && !name.starts_with("container:")
}

/// The networks the services use (`default` for one without any).
fn used_networks(model: &Model) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for svc in model.services.values() {
        match svc.get("networks").and_then(Value::as_object) {
            Some(n) if !n.is_empty() => used.extend(n.keys().cloned()),
            _ => {
                used.insert("default".into());
            }
        }
    }
    used
}

/// `convert.Networks`: create bodies, sorted by name, and the external names.
pub fn networks(ns: &str, model: &Model) -> (Vec<Value>, Vec<String>) {
    let mut create = BTreeMap::new();
    let mut external = BTreeSet::new();
    for name in used_networks(model) {
        let nw = model.networks.get(&name).cloned().unwrap_or(json!({}));
        let nw = if nw.is_null() { json!({}) } else { nw };
        if nw["external"] == json!(true) {
            external.insert(s(&nw, "name").to_string());
            continue;
        }
        let ipam = nw.get("ipam");
        let ipam_driver = ipam.map(|i| s(i, "driver")).unwrap_or_default();
        let pools: Vec<Value> = ipam
            .and_then(|i| i.get("config"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                let mut m = Map::new();
                put(&mut m, "Subnet", json!(s(c, "subnet")));
                Value::Object(m)
            })
            .collect();
        let ipam = if !ipam_driver.is_empty() || !pools.is_empty() {
            json!({"Driver": ipam_driver, "Options": null,
                   "Config": if pools.is_empty() { Value::Null } else { json!(pools) }})
        } else {
            Value::Null
        };
        let full_name = match s(&nw, "name") {
            "" => format!("{ns}_{name}"),
            n => n.to_string(),
        };
        let driver = match s(&nw, "driver") {
            "" => "overlay",
            d => d,
        };
        let options = nw.get("driver_opts").cloned().unwrap_or(Value::Null);
        create.insert(
            full_name.clone(),
            json!({
                "Name": full_name, "Driver": driver, "Scope": "", "IPAM": ipam,
                "Internal": nw.get("internal").and_then(Value::as_bool).unwrap_or(false),
                "Attachable": nw.get("attachable").and_then(Value::as_bool).unwrap_or(false),
                "Ingress": false, "ConfigOnly": false, "ConfigFrom": null,
                "Options": options, "Labels": stack_labels(ns, nw.get("labels")),
            }),
        );
    }
    (
        create.into_values().collect(),
        external.into_iter().collect(),
    )
}

/// `convert.Secrets`/`convert.Configs`: specs of the non-external objects, sorted.
pub fn file_objects(ns: &str, kind: &str, objs: &Map<String, Value>) -> Result<Vec<Value>, String> {
    let mut out = BTreeMap::new();
    for (name, obj) in objs {
        if obj["external"] == json!(true) {
            continue;
        }
        let full_name = match s(obj, "name") {
            "" => format!("{ns}_{name}"),
            n => n.to_string(),
        };
        let mut spec = Map::new();
        spec.insert("Name".into(), json!(full_name));
        spec.insert(
            "Labels".into(),
            Value::Object(stack_labels(ns, obj.get("labels"))),
        );
        let driver = s(obj, "driver");
        if kind == "secret" && !driver.is_empty() {
            let mut d = Map::new();
            d.insert("Name".into(), json!(driver));
            put(
                &mut d,
                "Options",
                obj.get("driver_opts").cloned().unwrap_or(Value::Null),
            );
            spec.insert("Driver".into(), Value::Object(d));
        } else {
            let path = s(obj, "file");
            let data = std::fs::read(path).map_err(|e| super::io_error("open", path, &e))?;
            put(
                &mut spec,
                "Data",
                json!(base64::engine::general_purpose::STANDARD.encode(data)),
            );
        }
        let template = s(obj, "template_driver");
        if !template.is_empty() {
            spec.insert("Templating".into(), json!({ "Name": template }));
        }
        out.insert(full_name, Value::Object(spec));
    }
    Ok(out.into_values().collect())
}

/// `convertServiceSecrets`/`convertServiceConfigObjs`: references, sorted by name.
fn file_refs(
    ns: &str,
    kind: &str,
    refs: Option<&Value>,
    defs: &Map<String, Value>,
) -> Result<Vec<Value>, String> {
    let (name_key, id_key) = match kind {
        "secret" => ("SecretName", "SecretID"),
        _ => ("ConfigName", "ConfigID"),
    };
    let mut out: Vec<Value> = Vec::new();
    let mut targets = BTreeSet::new();
    for r in refs.and_then(Value::as_array).into_iter().flatten() {
        let source = s(r, "source");
        let Some(def) = defs.get(source) else {
            return Err(format!("undefined {kind} \"{source}\""));
        };
        let name = match s(def, "name") {
            "" => format!("{ns}_{source}"),
            n => n.to_string(),
        };
        let target = match s(r, "target") {
            "" => source,
            t => t,
        };
        if !targets.insert(target.to_string()) {
            return Err(format!("duplicate {kind} target for {target} not allowed"));
        }
        let or = |v: &str, d: &str| {
            if v.is_empty() {
                d.to_string()
            } else {
                v.to_string()
            }
        };
        let mode = r.get("mode").and_then(Value::as_u64).unwrap_or(0o444);
        out.push(json!({
            "File": {"Name": target, "UID": or(s(r, "uid"), "0"), "GID": or(s(r, "gid"), "0"),
                     "Mode": mode},
            id_key: "", name_key: name,
        }));
    }
    out.sort_by(|a, b| a[name_key].as_str().cmp(&b[name_key].as_str()));
    Ok(out)
}

fn mounts(ns: &str, svc: &Value, volumes: &Map<String, Value>) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for v in svc
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ty = s(v, "type");
        let mut m = Map::new();
        put(&mut m, "Type", json!(ty));
        put(&mut m, "Source", json!(s(v, "source")));
        put(&mut m, "Target", json!(s(v, "target")));
        put(
            &mut m,
            "ReadOnly",
            v.get("read_only").cloned().unwrap_or(Value::Null),
        );
        put(&mut m, "Consistency", json!(s(v, "consistency")));
        let has = |k: &str| v.get(k).is_some_and(|x| !x.is_null());
        let incompatible = |k: &str, t: &str| format!("{k} options are incompatible with type {t}");
        match ty {
            "volume" | "" => {
                for k in ["tmpfs", "bind"] {
                    if has(k) {
                        return Err(incompatible(k, "volume"));
                    }
                }
                let source = s(v, "source");
                if !source.is_empty() {
                    let Some(stack_vol) = volumes.get(source) else {
                        return Err(format!("undefined volume \"{source}\""));
                    };
                    let stack_vol = if stack_vol.is_null() {
                        &json!({})
                    } else {
                        stack_vol
                    };
                    let mut opts = Map::new();
                    put(
                        &mut opts,
                        "NoCopy",
                        v.pointer("/volume/nocopy").cloned().unwrap_or(Value::Null),
                    );
                    let real = match s(stack_vol, "name") {
                        "" => format!("{ns}_{source}"),
                        n => n.to_string(),
                    };
                    m.insert("Source".into(), json!(real));
                    if stack_vol["external"] != json!(true) {
                        opts.insert(
                            "Labels".into(),
                            Value::Object(stack_labels(ns, stack_vol.get("labels"))),
                        );
                        let driver = s(stack_vol, "driver");
                        let dopts = stack_vol.get("driver_opts").filter(|o| !o.is_null());
                        if !driver.is_empty() || dopts.is_some() {
                            let mut d = Map::new();
                            put(&mut d, "Name", json!(driver));
                            put(&mut d, "Options", dopts.cloned().unwrap_or(Value::Null));
                            opts.insert("DriverConfig".into(), Value::Object(d));
                        }
                    }
                    m.insert("VolumeOptions".into(), Value::Object(opts));
                }
            }
            "bind" => {
                for k in ["volume", "tmpfs"] {
                    if has(k) {
                        return Err(incompatible(k, "bind"));
                    }
                }
                if has("bind") {
                    let mut b = Map::new();
                    put(&mut b, "Propagation", json!(s(&v["bind"], "propagation")));
                    m.insert("BindOptions".into(), Value::Object(b));
                }
            }
            "tmpfs" => {
                if !s(v, "source").is_empty() {
                    return Err("invalid tmpfs source, source must be empty".into());
                }
                for k in ["bind", "volume"] {
                    if has(k) {
                        return Err(incompatible(k, "tmpfs"));
                    }
                }
                if has("tmpfs") {
                    let mut t = Map::new();
                    put(
                        &mut t,
                        "SizeBytes",
                        v.pointer("/tmpfs/size").cloned().unwrap_or(Value::Null),
                    );
                    m.insert("TmpfsOptions".into(), Value::Object(t));
                }
            }
            "npipe" | "cluster" | "image" => {}
            _ => return Err("volume type must be volume, bind, tmpfs, npipe, or cluster".into()),
        }
        out.push(Value::Object(m));
    }
    Ok(out)
}

fn update_config(c: Option<&Value>) -> Value {
    let Some(c) = c.filter(|c| c.is_object()) else {
        return Value::Null;
    };
    let mut m = Map::new();
    m.insert(
        "Parallelism".into(),
        c.get("parallelism").cloned().unwrap_or(json!(1)),
    );
    put(
        &mut m,
        "Delay",
        c.get("delay").cloned().unwrap_or(Value::Null),
    );
    put(&mut m, "FailureAction", json!(s(c, "failure_action")));
    put(
        &mut m,
        "Monitor",
        c.get("monitor").cloned().unwrap_or(Value::Null),
    );
    m.insert(
        "MaxFailureRatio".into(),
        c.get("max_failure_ratio").cloned().unwrap_or(json!(0)),
    );
    m.insert("Order".into(), json!(s(c, "order")));
    Value::Object(m)
}

/// `convertRestartPolicy`: deploy.restart_policy, else the service's `restart`.
fn restart_policy(svc: &Value) -> Result<Value, String> {
    if let Some(p) = svc
        .pointer("/deploy/restart_policy")
        .filter(|p| p.is_object())
    {
        let mut m = Map::new();
        put(&mut m, "Condition", json!(s(p, "condition")));
        for (from, to) in [
            ("delay", "Delay"),
            ("max_attempts", "MaxAttempts"),
            ("window", "Window"),
        ] {
            if let Some(v) = p.get(from).filter(|v| !v.is_null()) {
                m.insert(to.into(), v.clone());
            }
        }
        return Ok(Value::Object(m));
    }
    let restart = s(svc, "restart");
    let (name, count) = restart.split_once(':').unwrap_or((restart, ""));
    Ok(match name {
        "" | "no" => Value::Null,
        "always" | "unless-stopped" => json!({"Condition": "any"}),
        "on-failure" => {
            let n: u64 = if count.is_empty() {
                0
            } else {
                count.parse().map_err(|_| {
                    "invalid restart policy format: maximum retry count must be an integer"
                        .to_string()
                })?
            };
            json!({"Condition": "on-failure", "MaxAttempts": n})
        }
        _ => return Err(format!("unknown restart policy: {restart}")),
    })
}

fn resources(svc: &Value) -> Result<Value, String> {
    let mut out = Map::new();
    let cpus = |r: &Value| -> Result<i64, String> {
        match s(r, "cpus") {
            "" => Ok(0),
            c => nano_cpus(c).map_err(|_| format!("failed to parse {c} as a rational number")),
        }
    };
    if let Some(l) = svc
        .pointer("/deploy/resources/limits")
        .filter(|v| v.is_object())
    {
        let mut m = Map::new();
        put(&mut m, "NanoCPUs", json!(cpus(l)?));
        put(
            &mut m,
            "MemoryBytes",
            l.get("memory").cloned().unwrap_or(Value::Null),
        );
        put(
            &mut m,
            "Pids",
            l.get("pids").cloned().unwrap_or(Value::Null),
        );
        out.insert("Limits".into(), Value::Object(m));
    }
    if let Some(r) = svc
        .pointer("/deploy/resources/reservations")
        .filter(|v| v.is_object())
    {
        let mut m = Map::new();
        put(&mut m, "NanoCPUs", json!(cpus(r)?));
        put(
            &mut m,
            "MemoryBytes",
            r.get("memory").cloned().unwrap_or(Value::Null),
        );
        let generic: Vec<Value> = r
            .get("generic_resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|g| {
                let mut gr = Map::new();
                if let Some(d) = g.get("discrete_resource_spec").filter(|d| d.is_object()) {
                    let mut dm = Map::new();
                    put(&mut dm, "Kind", json!(s(d, "kind")));
                    put(
                        &mut dm,
                        "Value",
                        d.get("value").cloned().unwrap_or(Value::Null),
                    );
                    gr.insert("DiscreteResourceSpec".into(), Value::Object(dm));
                }
                Value::Object(gr)
            })
            .collect();
        put(&mut m, "GenericResources", json!(generic));
        out.insert("Reservations".into(), Value::Object(m));
    }
    Ok(Value::Object(out))
}

fn healthcheck(svc: &Value) -> Result<Value, String> {
    let Some(h) = svc.get("healthcheck").filter(|h| h.is_object()) else {
        return Ok(Value::Null);
    };
    let test = strs(h.get("test").unwrap_or(&Value::Null));
    if h.get("disable").and_then(Value::as_bool).unwrap_or(false) {
        if !test.is_empty() {
            return Err("test and disable can't be set at the same time".into());
        }
        return Ok(json!({"Test": ["NONE"]}));
    }
    let mut m = Map::new();
    put(&mut m, "Test", json!(test));
    for (from, to) in [
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start_period", "StartPeriod"),
        ("start_interval", "StartInterval"),
        ("retries", "Retries"),
    ] {
        put(&mut m, to, h.get(from).cloned().unwrap_or(Value::Null));
    }
    Ok(Value::Object(m))
}

fn mode(svc: &Value) -> Result<Value, String> {
    let replicas = svc
        .pointer("/deploy/replicas")
        .filter(|r| !r.is_null())
        .cloned();
    let only_replicated =
        || "replicas can only be used with replicated or replicated-job mode".to_string();
    Ok(
        match svc
            .pointer("/deploy/mode")
            .and_then(Value::as_str)
            .unwrap_or("")
        {
            "global" => {
                if replicas.is_some() {
                    return Err(only_replicated());
                }
                json!({"Global": {}})
            }
            "global-job" => {
                if replicas.is_some() {
                    return Err(only_replicated());
                }
                json!({"GlobalJob": {}})
            }
            "replicated-job" => match replicas {
                Some(r) => json!({"ReplicatedJob": {"MaxConcurrent": r, "TotalCompletions": r}}),
                None => json!({"ReplicatedJob": {}}),
            },
            "replicated" | "" => match replicas {
                Some(r) => json!({"Replicated": {"Replicas": r}}),
                None => json!({"Replicated": {}}),
            },
            other => return Err(format!("Unknown mode: {other}")),
        },
    )
}

fn endpoint(svc: &Value) -> Value {
    let mut ports: Vec<Value> = svc
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let mut m = Map::new();
            put(&mut m, "Protocol", json!(s(p, "protocol")));
            put(
                &mut m,
                "TargetPort",
                p.get("target").cloned().unwrap_or(Value::Null),
            );
            put(
                &mut m,
                "PublishedPort",
                p.get("published").cloned().unwrap_or(Value::Null),
            );
            put(&mut m, "PublishMode", json!(s(p, "mode")));
            Value::Object(m)
        })
        .collect();
    ports.sort_by_key(|p| p.get("PublishedPort").and_then(Value::as_u64).unwrap_or(0));
    let mut e = Map::new();
    put(
        &mut e,
        "Mode",
        json!(svc
            .pointer("/deploy/endpoint_mode")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase()),
    );
    put(&mut e, "Ports", json!(ports));
    Value::Object(e)
}

fn service_networks(
    ns: &str,
    name: &str,
    svc: &Value,
    defs: &Map<String, Value>,
) -> Result<Vec<Value>, String> {
    let mut nets: Vec<(String, Value)> = match svc.get("networks").and_then(Value::as_object) {
        Some(n) if !n.is_empty() => n.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => vec![("default".into(), Value::Null)],
    };
    nets.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for (net, cfg) in nets {
        let def = defs.get(&net);
        if def.is_none() && net != "default" {
            return Err(format!("undefined network \"{net}\""));
        }
        let target = match def.map(|d| s(d, "name")).unwrap_or_default() {
            "" => format!("{ns}_{net}"),
            n => n.to_string(),
        };
        let mut aliases = strs(cfg.get("aliases").unwrap_or(&Value::Null));
        if user_defined(&target) {
            aliases.push(name.to_string());
        }
        let mut m = Map::new();
        m.insert("Target".into(), json!(target));
        put(&mut m, "Aliases", json!(aliases));
        put(
            &mut m,
            "DriverOpts",
            cfg.get("driver_opts").cloned().unwrap_or(Value::Null),
        );
        out.push(Value::Object(m));
    }
    out.sort_by(|a, b| a["Target"].as_str().cmp(&b["Target"].as_str()));
    Ok(out)
}

fn ulimits(svc: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = svc
        .get("ulimits")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, u)| {
            let single = u.get("single").and_then(Value::as_i64).unwrap_or(0);
            let (soft, hard) = if single != 0 {
                (single, single)
            } else {
                (
                    u.get("soft").and_then(Value::as_i64).unwrap_or(0),
                    u.get("hard").and_then(Value::as_i64).unwrap_or(0),
                )
            };
            json!({"Name": name, "Hard": hard, "Soft": soft})
        })
        .collect();
    out.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
    out
}

fn credential_spec(svc: &Value) -> Result<Value, String> {
    let Some(c) = svc.get("credential_spec").filter(|c| c.is_object()) else {
        return Ok(Value::Null);
    };
    let set: Vec<&str> = [
        ("config", "\"Config\""),
        ("file", "\"File\""),
        ("registry", "\"Registry\""),
    ]
    .iter()
    .filter(|(k, _)| !s(c, k).is_empty())
    .map(|(_, q)| *q)
    .collect();
    match set.len() {
        0 => Ok(Value::Null),
        1 => Ok(
            json!({"Config": s(c, "config"), "File": s(c, "file"), "Registry": s(c, "registry")}),
        ),
        2 => Err(format!(
            "invalid credential spec: cannot specify both {} and {}",
            set[0], set[1]
        )),
        _ => Err(format!(
            "invalid credential spec: cannot specify both {}, and {}",
            set[..2].join(", "),
            set[2]
        )),
    }
}

/// `convert.Service` for one service.
pub fn service(ns: &str, name: &str, svc: &Value, model: &Model) -> Result<Value, String> {
    let secrets = file_refs(ns, "secret", svc.get("secrets"), &model.secrets)?;
    let configs = file_refs(ns, "config", svc.get("configs"), &model.configs)?;
    let endpoint = endpoint(svc);
    let mode = mode(svc)?;
    let mounts = mounts(ns, svc, &model.volumes)?;
    let resources = resources(svc)?;
    let restart = restart_policy(svc)?;
    let health = healthcheck(svc)?;
    let networks = service_networks(ns, name, svc, &model.networks)?;
    let cred = credential_spec(svc)?;

    let image = s(svc, "image");
    let mut cs = Map::new();
    put(&mut cs, "Image", json!(image));
    cs.insert(
        "Labels".into(),
        Value::Object(stack_labels(ns, svc.get("labels"))),
    );
    put(
        &mut cs,
        "Command",
        svc.get("entrypoint").cloned().unwrap_or(Value::Null),
    );
    put(
        &mut cs,
        "Args",
        svc.get("command").cloned().unwrap_or(Value::Null),
    );
    put(&mut cs, "Hostname", json!(s(svc, "hostname")));
    let mut env: Vec<String> = svc
        .get("environment")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| match v.as_str() {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    env.sort();
    put(&mut cs, "Env", json!(env));
    put(&mut cs, "Dir", json!(s(svc, "working_dir")));
    put(&mut cs, "User", json!(s(svc, "user")));
    cs.insert(
        "Privileges".into(),
        json!({"CredentialSpec": cred, "SELinuxContext": null, "NoNewPrivileges": false}),
    );
    if let Some(init) = svc.get("init").filter(|v| v.is_boolean()) {
        cs.insert("Init".into(), init.clone());
    }
    put(&mut cs, "StopSignal", json!(s(svc, "stop_signal")));
    put(
        &mut cs,
        "TTY",
        svc.get("tty").cloned().unwrap_or(Value::Null),
    );
    put(
        &mut cs,
        "OpenStdin",
        svc.get("stdin_open").cloned().unwrap_or(Value::Null),
    );
    put(
        &mut cs,
        "ReadOnly",
        svc.get("read_only").cloned().unwrap_or(Value::Null),
    );
    put(&mut cs, "Mounts", json!(mounts));
    if let Some(g) = svc.get("stop_grace_period").filter(|v| v.is_number()) {
        cs.insert("StopGracePeriod".into(), g.clone());
    }
    put(&mut cs, "Healthcheck", health);
    let hosts: Vec<String> = strs(svc.get("extra_hosts").unwrap_or(&Value::Null))
        .iter()
        .filter_map(|h| h.split_once(':').map(|(host, ip)| format!("{ip} {host}")))
        .collect();
    put(&mut cs, "Hosts", json!(hosts));
    if svc.get("dns").is_some() || svc.get("dns_search").is_some() {
        let mut d = Map::new();
        put(
            &mut d,
            "Nameservers",
            svc.get("dns").cloned().unwrap_or(Value::Null),
        );
        put(
            &mut d,
            "Search",
            svc.get("dns_search").cloned().unwrap_or(Value::Null),
        );
        cs.insert("DNSConfig".into(), Value::Object(d));
    }
    put(&mut cs, "Secrets", json!(secrets));
    put(&mut cs, "Configs", json!(configs));
    put(&mut cs, "Isolation", json!(s(svc, "isolation")));
    put(
        &mut cs,
        "Sysctls",
        svc.get("sysctls").cloned().unwrap_or(Value::Null),
    );
    let (add, drop) = effective_caps(
        &strs(svc.get("cap_add").unwrap_or(&Value::Null)),
        &strs(svc.get("cap_drop").unwrap_or(&Value::Null)),
    );
    put(&mut cs, "CapabilityAdd", json!(add));
    put(&mut cs, "CapabilityDrop", json!(drop));
    put(&mut cs, "Ulimits", json!(ulimits(svc)));
    put(
        &mut cs,
        "OomScoreAdj",
        svc.get("oom_score_adj").cloned().unwrap_or(Value::Null),
    );

    let mut placement = Map::new();
    put(
        &mut placement,
        "Constraints",
        svc.pointer("/deploy/placement/constraints")
            .cloned()
            .unwrap_or(Value::Null),
    );
    let prefs: Vec<Value> = svc
        .pointer("/deploy/placement/preferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| json!({"Spread": {"SpreadDescriptor": s(p, "spread")}}))
        .collect();
    put(&mut placement, "Preferences", json!(prefs));
    put(
        &mut placement,
        "MaxReplicas",
        svc.pointer("/deploy/placement/max_replicas_per_node")
            .cloned()
            .unwrap_or(Value::Null),
    );

    let mut task = Map::new();
    task.insert("ContainerSpec".into(), Value::Object(cs));
    task.insert("Resources".into(), resources);
    put(&mut task, "RestartPolicy", restart);
    task.insert("Placement".into(), Value::Object(placement));
    put(&mut task, "Networks", json!(networks));
    if let Some(l) = svc.get("logging").filter(|l| l.is_object()) {
        let mut d = Map::new();
        put(&mut d, "Name", json!(s(l, "driver")));
        let opts: Map<String, Value> = l
            .get("options")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), json!(super::model::go_sprint(v))))
            .collect();
        put(&mut d, "Options", Value::Object(opts));
        task.insert("LogDriver".into(), Value::Object(d));
    }
    task.insert("ForceUpdate".into(), json!(0));

    let mut labels = stack_labels(ns, svc.pointer("/deploy/labels"));
    labels.insert(LABEL_IMAGE.into(), json!(image));
    let mut spec = Map::new();
    spec.insert("Name".into(), json!(format!("{ns}_{name}")));
    spec.insert("Labels".into(), Value::Object(labels));
    spec.insert("TaskTemplate".into(), Value::Object(task));
    spec.insert("Mode".into(), mode);
    put(
        &mut spec,
        "UpdateConfig",
        update_config(svc.pointer("/deploy/update_config")),
    );
    put(
        &mut spec,
        "RollbackConfig",
        update_config(svc.pointer("/deploy/rollback_config")),
    );
    spec.insert("EndpointSpec".into(), endpoint);
    Ok(Value::Object(spec))
}
