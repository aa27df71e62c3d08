//! Flags to `ServiceSpec` JSON, built exactly as the docker CLI builds it
//! (`opts.go` `ToService` for create, `update.go` `updateService` for update).
//!
//! ```text
//!   create: CreateFlags + CommonFlags ──build_spec──> ServiceSpec (new)
//!   update: GET spec ──apply_update(UpdateFlags + CommonFlags)──> same spec, only
//!           the fields the user named changed, unknown fields untouched
//! ```
//!
//! The spec is a `serde_json::Value` on purpose: `update` and `scale` must send back
//! every field the server returned, including ones this client does not know.

use anyhow::{bail, Result};
use serde_json::{json, Map, Value};

use super::flags::{CommonFlags, CreateFlags, UpdateFlags};
use super::mount::parse_mount;
use super::opts::{
    effective_caps, kv_map, parse_dns_server, parse_file_ref, parse_network, parse_placement_pref,
    read_env_file, ulimit_list,
};
use super::port::parse_publish;
use super::resolve::Lookups;
use crate::shlex;
use crate::units::duration::parse_go_duration;
use crate::units::size::{nano_cpus, ram_in_bytes};

/// swarmkit's defaults, which the CLI fills in when it creates an UpdateConfig,
/// RollbackConfig or RestartPolicy from scratch.
fn default_update_config() -> Value {
    json!({"Parallelism": 1, "FailureAction": "pause", "Monitor": 5_000_000_000i64,
           "MaxFailureRatio": 0, "Order": "stop-first"})
}

fn default_restart_policy() -> Value {
    json!({"Condition": "any", "Delay": 5_000_000_000i64, "MaxAttempts": 0})
}

/// The object at `key` in `v`, created (or replaced if not an object) when missing.
pub fn obj<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    let m = v.as_object_mut().expect("object");
    let e = m.entry(key.to_string()).or_insert_with(|| json!({}));
    if !e.is_object() {
        *e = json!({});
    }
    e.as_object_mut().expect("object")
}

/// `KEY` alone takes its value from our environment when set, as Docker's `ValidateEnv`.
fn env_entry(e: &str) -> String {
    if e.contains('=') {
        return e.to_string();
    }
    match std::env::var(e) {
        Ok(v) => format!("{e}={v}"),
        Err(_) => e.to_string(),
    }
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map(|(k, _)| k).unwrap_or(e)
}

fn parse_refs(kind: &str, values: &[String]) -> Result<Vec<Value>> {
    values.iter().map(|v| parse_file_ref(kind, v)).collect()
}

/// Docker's `ToServiceMode`.
fn service_mode(mode: &str, f: &CommonFlags) -> Result<Value> {
    const REPLICAS: &str = "replicas can only be used with replicated or replicated-job mode";
    const MAX_PER_NODE: &str =
        "replicas-max-per-node can only be used with replicated or replicated-job mode";
    const CONCURRENT: &str = "max-concurrent can only be used with replicated-job mode";
    let max_per_node = f.replicas_max_per_node.is_some_and(|n| n > 0);
    Ok(match mode {
        "global" => {
            if f.replicas.is_some() {
                bail!(REPLICAS);
            }
            if max_per_node {
                bail!(MAX_PER_NODE);
            }
            if f.max_concurrent.is_some() {
                bail!(CONCURRENT);
            }
            json!({"Global": {}})
        }
        "replicated" => {
            if f.max_concurrent.is_some() {
                bail!(CONCURRENT);
            }
            match f.replicas {
                Some(n) => json!({"Replicated": {"Replicas": n}}),
                None => json!({"Replicated": {}}),
            }
        }
        "replicated-job" => {
            let mut j = Map::new();
            if let Some(n) = f.max_concurrent.or(f.replicas) {
                j.insert("MaxConcurrent".into(), json!(n));
            }
            if let Some(n) = f.replicas {
                j.insert("TotalCompletions".into(), json!(n));
            }
            json!({ "ReplicatedJob": j })
        }
        "global-job" => {
            if max_per_node {
                bail!(MAX_PER_NODE);
            }
            if f.max_concurrent.is_some() {
                bail!(CONCURRENT);
            }
            if f.replicas.is_some() {
                bail!(REPLICAS);
            }
            json!({"GlobalJob": {}})
        }
        other => bail!("unknown mode: {other}, only replicated and global supported"),
    })
}

fn dur(s: &Option<String>) -> Result<Option<i64>> {
    s.as_deref().map(parse_go_duration).transpose()
}

/// Builds a new service's spec from `service create` flags.
pub fn build_spec(
    image: &str,
    args: &[String],
    c: &CreateFlags,
    f: &CommonFlags,
    lk: &Lookups,
) -> Result<Value> {
    let mut spec = json!({});
    if let Some(name) = &c.name {
        spec["Name"] = json!(name);
    }
    spec["Labels"] = Value::Object(kv_map(&c.label));

    let mut cs = Map::new();
    cs.insert("Image".into(), json!(image));
    if !c.container_label.is_empty() {
        cs.insert("Labels".into(), Value::Object(kv_map(&c.container_label)));
    }
    if !args.is_empty() {
        cs.insert("Args".into(), json!(args));
    }
    let mut env: Vec<String> = Vec::new();
    let mut given = Vec::new();
    for file in &c.env_file {
        given.extend(read_env_file(file)?);
    }
    given.extend(c.env.iter().map(|e| env_entry(e)));
    for e in given {
        if env.contains(&e) {
            continue;
        }
        let k = env_key(&e).to_string();
        env.retain(|x| env_key(x) != k);
        env.push(e);
    }
    if !env.is_empty() {
        cs.insert("Env".into(), json!(env));
    }
    cs.insert("Init".into(), json!(f.init.unwrap_or(false)));
    if !c.mount.is_empty() {
        let mounts = c
            .mount
            .iter()
            .map(|m| parse_mount(m))
            .collect::<Result<Vec<_>>>()?;
        cs.insert("Mounts".into(), Value::Array(mounts));
    }
    let mut dns = Map::new();
    let servers = c
        .dns
        .iter()
        .map(|d| parse_dns_server(d))
        .collect::<Result<Vec<_>>>()?;
    for (k, v) in [
        ("Nameservers", servers),
        ("Search", c.dns_search.clone()),
        ("Options", c.dns_option.clone()),
    ] {
        if !v.is_empty() {
            dns.insert(k.into(), json!(v));
        }
    }
    cs.insert("DNSConfig".into(), Value::Object(dns));
    if !c.sysctl.is_empty() {
        cs.insert("Sysctls".into(), Value::Object(kv_map(&c.sysctl)));
    }
    let (cap_add, cap_drop) = effective_caps(&f.cap_add, &f.cap_drop);
    if !cap_add.is_empty() {
        cs.insert("CapabilityAdd".into(), json!(cap_add));
    }
    if !cap_drop.is_empty() {
        cs.insert("CapabilityDrop".into(), json!(cap_drop));
    }
    if !c.ulimit.is_empty() {
        cs.insert("Ulimits".into(), json!(ulimit_list(&c.ulimit)?));
    }
    let secrets = lk.file_refs("secret", parse_refs("secret", &c.secret)?)?;
    if !secrets.is_empty() {
        cs.insert("Secrets".into(), json!(secrets));
    }
    let configs = lk.file_refs("config", parse_refs("config", &c.config)?)?;
    if !configs.is_empty() {
        cs.insert("Configs".into(), json!(configs));
    }
    let mut spec_v = Value::Object(cs);
    apply_container_flags(&mut spec_v, f)?;
    if let Some(h) = health_config(f)? {
        spec_v["Healthcheck"] = h;
    }

    let mut task = json!({"ContainerSpec": spec_v});
    task["Resources"] = json!({"Limits": {}, "Reservations": {}});
    apply_resources(&mut task, f)?;
    if any_restart(f) {
        task["RestartPolicy"] = default_restart_policy();
        apply_restart(&mut task, f)?;
    }
    let mut placement = Map::new();
    if !c.constraint.is_empty() {
        placement.insert("Constraints".into(), json!(c.constraint));
    }
    if !c.placement_pref.is_empty() {
        let prefs = c
            .placement_pref
            .iter()
            .map(|p| parse_placement_pref(p))
            .collect::<Result<Vec<_>>>()?;
        placement.insert("Preferences".into(), json!(prefs));
    }
    if let Some(n) = f.replicas_max_per_node.filter(|n| *n > 0) {
        placement.insert("MaxReplicas".into(), json!(n));
    }
    task["Placement"] = Value::Object(placement);
    if !c.network.is_empty() {
        let mut nets = Vec::new();
        for n in &c.network {
            let mut n = parse_network(n)?;
            n["Target"] = json!(lk.network_id(n["Target"].as_str().unwrap_or_default()));
            nets.push(n);
        }
        nets.sort_by(|a, b| a["Target"].as_str().cmp(&b["Target"].as_str()));
        task["Networks"] = json!(nets);
    }
    task["ForceUpdate"] = json!(0);
    spec["TaskTemplate"] = task;

    spec["Mode"] = service_mode(c.mode.as_deref().unwrap_or("replicated"), f)?;
    let is_job =
        spec["Mode"].get("ReplicatedJob").is_some() || spec["Mode"].get("GlobalJob").is_some();
    if is_job && (any_update(f) || any_rollback(f)) {
        bail!("update and rollback configuration is not supported for jobs");
    }
    if any_update(f) {
        spec["UpdateConfig"] = default_update_config();
        apply_update_config(&mut spec, f)?;
    }
    if any_rollback(f) {
        spec["RollbackConfig"] = default_update_config();
        apply_rollback_config(&mut spec, f)?;
    }
    let mut endpoint = json!({"Mode": f.endpoint_mode.as_deref().unwrap_or("vip")});
    if !c.publish.is_empty() {
        let mut ports = Vec::new();
        for p in &c.publish {
            ports.extend(parse_publish(p)?);
        }
        endpoint["Ports"] = Value::Array(ports);
    }
    spec["EndpointSpec"] = endpoint;
    Ok(spec)
}

/// Container fields that create and update set the same way.
fn apply_container_flags(cs: &mut Value, f: &CommonFlags) -> Result<()> {
    if let Some(e) = &f.entrypoint {
        cs["Command"] = json!(shlex::split(e)?);
    }
    let strings = [
        ("Hostname", &f.hostname),
        ("Dir", &f.workdir),
        ("User", &f.user),
        ("StopSignal", &f.stop_signal),
    ];
    for (k, v) in strings {
        if let Some(v) = v {
            cs[k] = json!(v);
        }
    }
    if let Some(r) = f.read_only {
        cs["ReadOnly"] = json!(r);
    }
    if let Some(g) = dur(&f.stop_grace_period)? {
        cs["StopGracePeriod"] = json!(g);
    }
    Ok(())
}

fn have_health_settings(f: &CommonFlags) -> bool {
    f.health_cmd.as_deref().is_some_and(|c| !c.is_empty())
        || f.health_interval.is_some()
        || f.health_timeout.is_some()
        || f.health_start_period.is_some()
        || f.health_retries.is_some_and(|r| r != 0)
}

/// Docker's `toHealthConfig`.
fn health_config(f: &CommonFlags) -> Result<Option<Value>> {
    let have = have_health_settings(f);
    if f.no_healthcheck.unwrap_or(false) {
        if have {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        return Ok(Some(json!({"Test": ["NONE"]})));
    }
    if !have {
        return Ok(None);
    }
    let mut h = Map::new();
    if let Some(cmd) = f.health_cmd.as_deref().filter(|c| !c.is_empty()) {
        h.insert("Test".into(), json!(["CMD-SHELL", cmd]));
    }
    for (k, v) in [
        ("Interval", &f.health_interval),
        ("Timeout", &f.health_timeout),
        ("StartPeriod", &f.health_start_period),
    ] {
        if let Some(d) = dur(v)?.filter(|d| *d != 0) {
            h.insert(k.into(), json!(d));
        }
    }
    if let Some(r) = f.health_retries.filter(|r| *r != 0) {
        h.insert("Retries".into(), json!(r));
    }
    Ok(Some(Value::Object(h)))
}

fn apply_resources(task: &mut Value, f: &CommonFlags) -> Result<()> {
    let limits = obj(obj_value(task, "Resources"), "Limits");
    if let Some(c) = &f.limit_cpu {
        set_nonzero(limits, "NanoCPUs", nano_cpus(c)?);
    }
    if let Some(m) = &f.limit_memory {
        set_nonzero(limits, "MemoryBytes", ram_in_bytes(m)?);
    }
    if let Some(p) = f.limit_pids {
        set_nonzero(limits, "Pids", p);
    }
    let res = obj(obj_value(task, "Resources"), "Reservations");
    if let Some(c) = &f.reserve_cpu {
        set_nonzero(res, "NanoCPUs", nano_cpus(c)?);
    }
    if let Some(m) = &f.reserve_memory {
        set_nonzero(res, "MemoryBytes", ram_in_bytes(m)?);
    }
    Ok(())
}

/// Zero is Go's omitted value: setting 0 removes the field.
fn set_nonzero(m: &mut Map<String, Value>, k: &str, v: i64) {
    if v == 0 {
        m.remove(k);
    } else {
        m.insert(k.into(), json!(v));
    }
}

fn obj_value<'a>(v: &'a mut Value, key: &str) -> &'a mut Value {
    obj(v, key);
    &mut v[key]
}

fn any_restart(f: &CommonFlags) -> bool {
    f.restart_condition.is_some()
        || f.restart_delay.is_some()
        || f.restart_max_attempts.is_some()
        || f.restart_window.is_some()
}

fn apply_restart(task: &mut Value, f: &CommonFlags) -> Result<()> {
    let rp = obj(task, "RestartPolicy");
    if let Some(c) = &f.restart_condition {
        rp.insert("Condition".into(), json!(c));
    }
    if let Some(d) = dur(&f.restart_delay)? {
        rp.insert("Delay".into(), json!(d));
    }
    if let Some(n) = f.restart_max_attempts {
        rp.insert("MaxAttempts".into(), json!(n));
    }
    if let Some(w) = dur(&f.restart_window)? {
        rp.insert("Window".into(), json!(w));
    }
    Ok(())
}

fn any_update(f: &CommonFlags) -> bool {
    f.update_parallelism.is_some()
        || f.update_delay.is_some()
        || f.update_monitor.is_some()
        || f.update_failure_action.is_some()
        || f.update_max_failure_ratio.is_some()
        || f.update_order.is_some()
}

fn any_rollback(f: &CommonFlags) -> bool {
    f.rollback_parallelism.is_some()
        || f.rollback_delay.is_some()
        || f.rollback_monitor.is_some()
        || f.rollback_failure_action.is_some()
        || f.rollback_max_failure_ratio.is_some()
        || f.rollback_order.is_some()
}

#[allow(clippy::too_many_arguments)]
fn apply_config(
    cfg: &mut Map<String, Value>,
    parallelism: Option<u64>,
    delay: &Option<String>,
    monitor: &Option<String>,
    action: &Option<String>,
    ratio: Option<f32>,
    order: &Option<String>,
) -> Result<()> {
    if let Some(p) = parallelism {
        cfg.insert("Parallelism".into(), json!(p));
    }
    if let Some(d) = dur(delay)? {
        set_nonzero(cfg, "Delay", d);
    }
    if let Some(m) = dur(monitor)? {
        set_nonzero(cfg, "Monitor", m);
    }
    if let Some(a) = action {
        cfg.insert("FailureAction".into(), json!(a));
    }
    if let Some(r) = ratio {
        cfg.insert("MaxFailureRatio".into(), json!(r));
    }
    if let Some(o) = order {
        cfg.insert("Order".into(), json!(o));
    }
    Ok(())
}

fn apply_update_config(spec: &mut Value, f: &CommonFlags) -> Result<()> {
    apply_config(
        obj(spec, "UpdateConfig"),
        f.update_parallelism,
        &f.update_delay,
        &f.update_monitor,
        &f.update_failure_action,
        f.update_max_failure_ratio,
        &f.update_order,
    )
}

fn apply_rollback_config(spec: &mut Value, f: &CommonFlags) -> Result<()> {
    apply_config(
        obj(spec, "RollbackConfig"),
        f.rollback_parallelism,
        &f.rollback_delay,
        &f.rollback_monitor,
        &f.rollback_failure_action,
        f.rollback_max_failure_ratio,
        &f.rollback_order,
    )
}

/// Sets the replica count of a replicated (or replicated-job) service, as `--replicas`
/// and `scale` do.
pub fn set_replicas(spec: &mut Value, n: u64) -> Result<()> {
    let mode = obj(spec, "Mode");
    if let Some(r) = mode.get_mut("Replicated") {
        obj_value_map(r).insert("Replicas".into(), json!(n));
        return Ok(());
    }
    if let Some(r) = mode.get_mut("ReplicatedJob") {
        obj_value_map(r).insert("TotalCompletions".into(), json!(n));
        return Ok(());
    }
    bail!("replicas can only be used with replicated or replicated-job mode")
}

fn obj_value_map(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().expect("object")
}

fn update_kv(m: &mut Map<String, Value>, add: &[String], rm: &[String]) {
    for a in add {
        let (k, v) = a.split_once('=').unwrap_or((a, ""));
        m.insert(k.into(), json!(v));
    }
    for r in rm {
        m.remove(r);
    }
}

fn string_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Applies `service update` flags to the spec the server returned, in the order of
/// docker's `updateService`.
pub fn apply_update(
    spec: &mut Value,
    u: &UpdateFlags,
    f: &CommonFlags,
    lk: &Lookups,
) -> Result<()> {
    if !u.label_add.is_empty() || !u.label_rm.is_empty() {
        update_kv(obj(spec, "Labels"), &u.label_add, &u.label_rm);
    }
    let task = obj_value(spec, "TaskTemplate");
    let cs = obj_value(task, "ContainerSpec");
    if !u.container_label_add.is_empty() || !u.container_label_rm.is_empty() {
        update_kv(
            obj(cs, "Labels"),
            &u.container_label_add,
            &u.container_label_rm,
        );
    }
    if let Some(image) = &u.image {
        cs["Image"] = json!(image);
    }
    if let Some(a) = &u.args {
        cs["Args"] = json!(shlex::split(a)?);
    }
    if !u.env_add.is_empty() || !u.env_rm.is_empty() {
        // Docker rebuilds Env through a Go map (random order); we keep the order:
        // replaced variables stay in place, new ones are appended.
        let mut env = string_list(&cs["Env"]);
        env.retain(|e| !u.env_rm.iter().any(|r| r == env_key(e)));
        for a in u.env_add.iter().map(|e| env_entry(e)) {
            match env.iter_mut().find(|e| env_key(e) == env_key(&a)) {
                Some(e) => *e = a,
                None => env.push(a),
            }
        }
        cs["Env"] = json!(env);
    }
    apply_container_flags(cs, f)?;
    if let Some(i) = f.init {
        cs["Init"] = json!(i);
    }
    update_mounts(cs, u)?;
    if !u.sysctl_add.is_empty() || !u.sysctl_rm.is_empty() {
        let rm: Vec<String> = kv_map(&u.sysctl_rm).keys().cloned().collect();
        let m = obj(cs, "Sysctls");
        update_kv(m, &u.sysctl_add, &rm);
        if m.is_empty() {
            remove(cs, "Sysctls");
        }
    }
    if !u.ulimit_add.is_empty() || !u.ulimit_rm.is_empty() {
        let mut by_name: std::collections::BTreeMap<String, Value> = cs["Ulimits"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| {
                (
                    x["Name"].as_str().unwrap_or_default().to_string(),
                    x.clone(),
                )
            })
            .collect();
        for r in kv_map(&u.ulimit_rm).keys() {
            by_name.remove(r);
        }
        for x in ulimit_list(&u.ulimit_add)? {
            by_name.insert(x["Name"].as_str().unwrap_or_default().to_string(), x);
        }
        set_list(cs, "Ulimits", by_name.into_values().collect());
    }

    if f.limit_cpu.is_some()
        || f.limit_memory.is_some()
        || f.limit_pids.is_some()
        || f.reserve_cpu.is_some()
        || f.reserve_memory.is_some()
    {
        apply_resources(task, f)?;
    }
    if any_restart(f) {
        if !task["RestartPolicy"].is_object() {
            task["RestartPolicy"] = default_restart_policy();
        }
        apply_restart(task, f)?;
    }
    if !u.constraint_add.is_empty() || !u.constraint_rm.is_empty() {
        let p = obj(task, "Placement");
        let mut cons = p.get("Constraints").map(string_list).unwrap_or_default();
        cons.extend(u.constraint_add.iter().cloned());
        cons.retain(|c| !u.constraint_rm.contains(c));
        cons.sort();
        p.insert("Constraints".into(), json!(cons));
    }
    if !u.placement_pref_add.is_empty() || !u.placement_pref_rm.is_empty() {
        let rm = u
            .placement_pref_rm
            .iter()
            .map(|p| parse_placement_pref(p))
            .collect::<Result<Vec<_>>>()?;
        let add = u
            .placement_pref_add
            .iter()
            .map(|p| parse_placement_pref(p))
            .collect::<Result<Vec<_>>>()?;
        let p = obj(task, "Placement");
        let mut prefs: Vec<Value> = p
            .get("Preferences")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        prefs.retain(|x| {
            !rm.iter().any(|r| {
                x["Spread"].is_object()
                    && r["Spread"]["SpreadDescriptor"] == x["Spread"]["SpreadDescriptor"]
            })
        });
        prefs.extend(add);
        if prefs.is_empty() {
            p.remove("Preferences");
        } else {
            p.insert("Preferences".into(), json!(prefs));
        }
    }
    if !u.network_add.is_empty() || !u.network_rm.is_empty() {
        update_networks(task, u, lk)?;
    }
    if let Some(n) = f.replicas {
        let mode = obj(spec, "Mode");
        match mode.get_mut("Replicated") {
            Some(r) => {
                obj_value_map(r).insert("Replicas".into(), json!(n));
            }
            None => bail!("replicas can only be used with replicated mode"),
        }
    }
    let task = obj_value(spec, "TaskTemplate");
    if let Some(n) = f.replicas_max_per_node {
        obj(task, "Placement").insert("MaxReplicas".into(), json!(n));
    }
    if any_update(f) {
        if !spec["UpdateConfig"].is_object() {
            spec["UpdateConfig"] = default_update_config();
        }
        apply_update_config(spec, f)?;
    }
    if any_rollback(f) {
        if !spec["RollbackConfig"].is_object() {
            spec["RollbackConfig"] = default_update_config();
        }
        apply_rollback_config(spec, f)?;
    }
    if let Some(m) = &f.endpoint_mode {
        obj(spec, "EndpointSpec").insert("Mode".into(), json!(m));
    }
    if !u.publish_add.is_empty() || !u.publish_rm.is_empty() {
        update_ports(obj_value(spec, "EndpointSpec"), u)?;
    }
    let cs = obj_value(obj_value(spec, "TaskTemplate"), "ContainerSpec");
    let dns_flags = [
        &u.dns_add,
        &u.dns_rm,
        &u.dns_option_add,
        &u.dns_option_rm,
        &u.dns_search_add,
        &u.dns_search_rm,
    ];
    if dns_flags.iter().any(|l| !l.is_empty()) {
        update_dns(cs, u)?;
    }
    let task = obj_value(spec, "TaskTemplate");
    if u.force.unwrap_or(false) {
        let n = task["ForceUpdate"].as_u64().unwrap_or(0);
        task["ForceUpdate"] = json!(n + 1);
    }
    let cs = obj_value(task, "ContainerSpec");
    update_health(cs, f)?;
    if !f.cap_add.is_empty() || !f.cap_drop.is_empty() {
        let (add, drop) = super::opts::update_caps(
            &string_list(&cs["CapabilityAdd"]),
            &string_list(&cs["CapabilityDrop"]),
            &f.cap_add,
            &f.cap_drop,
        );
        set_list(
            cs,
            "CapabilityAdd",
            add.into_iter().map(Value::String).collect(),
        );
        set_list(
            cs,
            "CapabilityDrop",
            drop.into_iter().map(Value::String).collect(),
        );
    }
    for kind in ["secret", "config"] {
        let (add, rm) = if kind == "secret" {
            (&u.secret_add, &u.secret_rm)
        } else {
            (&u.config_add, &u.config_rm)
        };
        if add.is_empty() && rm.is_empty() {
            continue;
        }
        let (key, name_key) = if kind == "secret" {
            ("Secrets", "SecretName")
        } else {
            ("Configs", "ConfigName")
        };
        let mut refs: Vec<Value> = cs[key].as_array().cloned().unwrap_or_default();
        refs.retain(|r| {
            // A config for the credential spec (a Runtime target) is never removed here.
            r.get("Runtime").is_some()
                || !rm.iter().any(|n| r[name_key].as_str() == Some(n.as_str()))
        });
        refs.extend(lk.file_refs(kind, parse_refs(kind, add)?)?);
        set_list(cs, key, refs);
    }
    Ok(())
}

/// Sets a list, or removes it when empty (Go's `omitempty`).
fn set_list(v: &mut Value, key: &str, list: Vec<Value>) {
    if list.is_empty() {
        remove(v, key);
    } else {
        v[key] = Value::Array(list);
    }
}

fn remove(v: &mut Value, key: &str) {
    if let Some(m) = v.as_object_mut() {
        m.remove(key);
    }
}

/// Docker's `updateMounts`: added mounts replace those with the same target, the
/// removed go, and the list is sorted by source then target.
fn update_mounts(cs: &mut Value, u: &UpdateFlags) -> Result<()> {
    let mut added: Vec<Value> = Vec::new();
    for a in &u.mount_add {
        let m = parse_mount(a)?;
        if added.iter().any(|x| x["Target"] == m["Target"]) {
            bail!("duplicate mount target");
        }
        added.push(m);
    }
    let Some(existing) = cs["Mounts"].as_array().cloned() else {
        if !added.is_empty() {
            added.retain(|x| !u.mount_rm.iter().any(|r| x["Target"].as_str() == Some(r)));
            sort_mounts(&mut added);
            set_list(cs, "Mounts", added);
        }
        return Ok(());
    };
    let mut mounts = added;
    for m in existing {
        if !mounts.iter().any(|x| x["Target"] == m["Target"]) {
            mounts.push(m);
        }
    }
    mounts.retain(|x| !u.mount_rm.iter().any(|r| x["Target"].as_str() == Some(r)));
    sort_mounts(&mut mounts);
    cs["Mounts"] = Value::Array(mounts);
    Ok(())
}

fn sort_mounts(m: &mut [Value]) {
    let key = |x: &Value| {
        (
            x["Source"].as_str().unwrap_or_default().to_string(),
            x["Target"].as_str().unwrap_or_default().to_string(),
        )
    };
    m.sort_by_key(key);
}

/// Docker's `updateNetworks`: removed by ID, added by ID (once), sorted by target.
fn update_networks(task: &mut Value, u: &UpdateFlags, lk: &Lookups) -> Result<()> {
    let rm: Vec<String> = u.network_rm.iter().map(|n| lk.network_id(n)).collect();
    let mut nets: Vec<Value> = task["Networks"].as_array().cloned().unwrap_or_default();
    nets.retain(|n| !rm.iter().any(|r| n["Target"].as_str() == Some(r)));
    for a in &u.network_add {
        let mut n = parse_network(a)?;
        let given = n["Target"].as_str().unwrap_or_default().to_string();
        let id = lk.network_id(&given);
        if nets.iter().any(|x| x["Target"].as_str() == Some(&id)) {
            bail!("service is already attached to network {given}");
        }
        n["Target"] = json!(id);
        nets.push(n);
    }
    nets.sort_by(|a, b| a["Target"].as_str().cmp(&b["Target"].as_str()));
    set_list(task, "Networks", nets);
    Ok(())
}

/// `published:target/protocol/mode`, the key docker sorts and compares ports by.
fn port_key(p: &Value) -> String {
    format!(
        "{}:{}/{}/{}",
        p["PublishedPort"].as_u64().unwrap_or(0),
        p["TargetPort"].as_u64().unwrap_or(0),
        p["Protocol"].as_str().unwrap_or(""),
        p["PublishMode"].as_str().unwrap_or("")
    )
}

/// Docker's `updatePorts`: `--publish-rm` takes a port spec and removes the ports with
/// its target, protocol and mode; `--publish-add` skips ports already there.
fn update_ports(ep: &mut Value, u: &UpdateFlags) -> Result<()> {
    let same = |a: &Value, b: &Value, k: &str, dflt: &str| {
        a[k].as_str().unwrap_or(dflt) == b[k].as_str().unwrap_or(dflt)
    };
    let mut existing: Vec<Value> = Vec::new();
    for p in ep["Ports"].as_array().cloned().unwrap_or_default() {
        if !existing.iter().any(|x| port_key(x) == port_key(&p)) {
            existing.push(p);
        }
    }
    let mut rm = Vec::new();
    for r in &u.publish_rm {
        rm.extend(parse_publish(r)?);
    }
    let mut ports: Vec<Value> = existing
        .iter()
        .filter(|p| {
            !rm.iter().any(|r| {
                r["TargetPort"] == p["TargetPort"]
                    && same(p, r, "Protocol", "tcp")
                    && same(p, r, "PublishMode", "ingress")
            })
        })
        .cloned()
        .collect();
    for a in &u.publish_add {
        for p in parse_publish(a)? {
            if !existing.iter().any(|x| port_key(x) == port_key(&p)) {
                ports.push(p);
            }
        }
    }
    ports.sort_by_key(port_key);
    ep["Ports"] = Value::Array(ports);
    Ok(())
}

/// Docker's `updateDNSConfig`: each list gets its additions, loses its removals, and
/// is sorted (servers by address).
fn update_dns(cs: &mut Value, u: &UpdateFlags) -> Result<()> {
    let cur = cs["DNSConfig"].clone();
    let mut servers: Vec<std::net::IpAddr> = Vec::new();
    let given = string_list(&cur["Nameservers"])
        .into_iter()
        .chain(u.dns_add.iter().cloned());
    for s in given {
        let ip: std::net::IpAddr = parse_dns_server(&s)?.parse()?;
        if !servers.contains(&ip) {
            servers.push(ip);
        }
    }
    servers.retain(|ip| !u.dns_rm.iter().any(|r| r.trim() == ip.to_string()));
    servers.sort();
    let edit = |key: &str, add: &[String], rm: &[String]| -> Vec<String> {
        let mut l = string_list(&cur[key]);
        l.extend(add.iter().cloned());
        l.dedup();
        l.retain(|x| !rm.contains(x));
        l.sort();
        l
    };
    let mut dns = Map::new();
    let lists = [
        (
            "Nameservers",
            servers.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        ),
        (
            "Search",
            edit("Search", &u.dns_search_add, &u.dns_search_rm),
        ),
        (
            "Options",
            edit("Options", &u.dns_option_add, &u.dns_option_rm),
        ),
    ];
    for (k, l) in lists {
        if !l.is_empty() {
            dns.insert(k.into(), json!(l));
        }
    }
    cs["DNSConfig"] = Value::Object(dns);
    Ok(())
}

/// Docker's `updateHealthcheck`: `--no-healthcheck` replaces, `--health-*` edit.
fn update_health(cs: &mut Value, f: &CommonFlags) -> Result<()> {
    let have = have_health_settings(f) || f.health_cmd.is_some() || f.health_retries.is_some();
    if f.no_healthcheck.unwrap_or(false) {
        if have {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        cs["Healthcheck"] = json!({"Test": ["NONE"]});
        return Ok(());
    }
    if !have {
        return Ok(());
    }
    let h = obj(cs, "Healthcheck");
    if h.get("Test").map(string_list).as_deref() == Some(&["NONE".to_string()][..]) {
        h.remove("Test");
    }
    if let Some(cmd) = &f.health_cmd {
        if cmd.is_empty() {
            h.remove("Test");
        } else {
            h.insert("Test".into(), json!(["CMD-SHELL", cmd]));
        }
    }
    for (k, v) in [
        ("Interval", &f.health_interval),
        ("Timeout", &f.health_timeout),
        ("StartPeriod", &f.health_start_period),
    ] {
        if let Some(d) = dur(v)? {
            set_nonzero(h, k, d);
        }
    }
    if let Some(r) = f.health_retries {
        set_nonzero(h, "Retries", r);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::service::create::CreateArgs;
    use crate::service::update::UpdateArgs;

    #[derive(Parser)]
    struct Create {
        #[command(flatten)]
        a: CreateArgs,
    }

    #[derive(Parser)]
    struct Update {
        #[command(flatten)]
        a: UpdateArgs,
    }

    /// What the manager answered for the names the tests use.
    fn lookups() -> Lookups {
        let m = |l: &[(&str, &str)]| {
            l.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Lookups {
            secrets: m(&[("db_pw", "sec1"), ("tls", "sec2")]),
            configs: m(&[("site", "cfg1")]),
            networks: m(&[("front", "net1"), ("back", "net0")]),
        }
    }

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn create(args: &[&str]) -> Value {
        let argv = std::iter::once("create").chain(args.iter().copied());
        Create::try_parse_from(argv)
            .unwrap()
            .a
            .spec(&lookups())
            .unwrap()
    }

    #[test]
    fn create_every_flag_like_docker() {
        let path = format!(
            "{}/tests/fixtures/create_full2.args",
            env!("CARGO_MANIFEST_DIR")
        );
        let args = crate::shlex::split(&std::fs::read_to_string(path).unwrap()).unwrap();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(create(&args), fixture("create_full2.json"));
    }

    #[test]
    fn create_minimal_and_global_like_docker() {
        assert_eq!(
            create(&["--name", "min", "swarmfx/busybox:1"]),
            fixture("create_min.json")
        );
        assert_eq!(
            create(&[
                "--name",
                "gl2",
                "--mode",
                "global",
                "--no-healthcheck",
                "swarmfx/busybox:1"
            ]),
            fixture("create_gl2.json")
        );
    }

    #[test]
    fn command_after_image_keeps_its_flags() {
        let spec = create(&["--name", "w", "-d", "img", "httpd", "-f", "-p", "8080"]);
        assert_eq!(
            spec["TaskTemplate"]["ContainerSpec"]["Args"],
            json!(["httpd", "-f", "-p", "8080"])
        );
        assert!(spec["EndpointSpec"].get("Ports").is_none());
    }

    #[test]
    fn create_errors_in_dockers_words() {
        let bad = |args: &[&str]| {
            let argv = std::iter::once("create").chain(args.iter().copied());
            Create::try_parse_from(argv)
                .unwrap()
                .a
                .spec(&lookups())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad(&["--mode", "global", "--replicas", "2", "img"]),
            "replicas can only be used with replicated or replicated-job mode"
        );
        assert_eq!(
            bad(&["--no-healthcheck", "--health-cmd", "true", "img"]),
            "--no-healthcheck conflicts with --health-* options"
        );
        assert_eq!(
            bad(&["--mode", "x", "img"]),
            "unknown mode: x, only replicated and global supported"
        );
        assert_eq!(
            bad(&["--limit-memory", "lots", "img"]),
            "invalid size: 'lots'"
        );
        assert_eq!(
            bad(&["--update-delay", "5", "img"]),
            "time: missing unit in duration \"5\""
        );
    }

    fn update(spec: &mut Value, args: &[&str]) {
        let argv = std::iter::once("update")
            .chain(args.iter().copied())
            .chain(std::iter::once("svc"));
        let u = Update::try_parse_from(argv).unwrap().a;
        apply_update(spec, &u.update, &u.common, &lookups()).unwrap();
    }

    #[test]
    fn update_env_add_force_like_docker() {
        // What the manager returned before the update: docker's body minus the change.
        let expected = fixture("update_full2_body.json");
        let mut before = expected.clone();
        before["TaskTemplate"]["ContainerSpec"]["Env"] = json!(["A=1", "B=two"]);
        before["TaskTemplate"]["ForceUpdate"] = json!(0);
        let mut ours = before.clone();
        update(&mut ours, &["--env-add", "C=3", "--force"]);
        assert_eq!(ours, expected);
    }

    #[test]
    fn update_and_scale_keep_unknown_fields() {
        let mut spec = fixture("scale_min_body.json");
        spec["Mode"]["Replicated"]["Replicas"] = json!(1);
        spec["FutureField"] = json!({"Nested": [1, 2]});
        spec["TaskTemplate"]["ContainerSpec"]["Unknown"] = json!("kept");
        let mut scaled = spec.clone();
        set_replicas(&mut scaled, 2).unwrap();
        let mut expected = spec.clone();
        expected["Mode"]["Replicated"]["Replicas"] = json!(2);
        assert_eq!(scaled, expected);

        let mut updated = spec.clone();
        update(
            &mut updated,
            &[
                "--image",
                "busybox:2",
                "--env-rm",
                "NOPE",
                "--limit-memory",
                "64M",
            ],
        );
        assert_eq!(updated["FutureField"], json!({"Nested": [1, 2]}));
        assert_eq!(
            updated["TaskTemplate"]["ContainerSpec"]["Unknown"],
            json!("kept")
        );
        assert_eq!(
            updated["TaskTemplate"]["ContainerSpec"]["Image"],
            json!("busybox:2")
        );
        assert_eq!(
            updated["TaskTemplate"]["Resources"]["Limits"],
            json!({"MemoryBytes": 67108864})
        );
        assert_eq!(updated["TaskTemplate"]["ContainerSpec"]["Env"], json!([]));
    }

    #[test]
    fn scale_body_like_docker() {
        let expected = fixture("scale_min_body.json");
        let mut before = expected.clone();
        before["Mode"]["Replicated"]["Replicas"] = json!(1);
        set_replicas(&mut before, 2).unwrap();
        assert_eq!(before, expected);
        let mut global = json!({"Mode": {"Global": {}}});
        assert_eq!(
            set_replicas(&mut global, 2).unwrap_err().to_string(),
            "replicas can only be used with replicated or replicated-job mode"
        );
    }

    #[test]
    fn update_config_from_defaults_and_env_order() {
        let mut spec = fixture("create_min.json");
        spec["TaskTemplate"]["ContainerSpec"]["Env"] = json!(["A=1", "B=2"]);
        update(
            &mut spec,
            &[
                "--update-parallelism",
                "3",
                "--env-add",
                "A=9",
                "--env-add",
                "Z=1",
                "--env-rm",
                "B",
                "--replicas",
                "4",
            ],
        );
        assert_eq!(
            spec["UpdateConfig"],
            json!({"Parallelism": 3, "FailureAction": "pause", "Monitor": 5000000000i64, "MaxFailureRatio": 0, "Order": "stop-first"})
        );
        assert_eq!(
            spec["TaskTemplate"]["ContainerSpec"]["Env"],
            json!(["A=9", "Z=1"])
        );
        assert_eq!(spec["Mode"]["Replicated"]["Replicas"], json!(4));
        update(
            &mut spec,
            &[
                "--publish-add",
                "8080:80",
                "--constraint-add",
                "node.role==manager",
            ],
        );
        assert_eq!(
            spec["EndpointSpec"]["Ports"][0]["PublishedPort"],
            json!(8080)
        );
        update(&mut spec, &["--publish-rm", "80"]);
        assert_eq!(spec["EndpointSpec"]["Ports"], json!([]));
        assert_eq!(
            spec["TaskTemplate"]["Placement"]["Constraints"],
            json!(["node.role==manager"])
        );
    }

    #[test]
    fn create_container_and_placement_flags_like_docker() {
        let spec = create(&[
            "--name",
            "x",
            "--mode",
            "replicated-job",
            "--replicas",
            "6",
            "--max-concurrent",
            "2",
            "--placement-pref",
            "spread=node.labels.dc",
            "--replicas-max-per-node",
            "3",
            "--network",
            "front",
            "--network",
            "name=back,alias=db",
            "--secret",
            "db_pw",
            "--secret",
            "source=tls,target=/etc/tls.pem,mode=0400",
            "--config",
            "src=site,target=/etc/site.conf",
            "--cap-add",
            "net_admin",
            "--cap-drop",
            "mknod",
            "--sysctl",
            "net.core.somaxconn=1024",
            "--ulimit",
            "nofile=1024:2048",
            "--ulimit",
            "core=0",
            "--dns",
            "8.8.8.8",
            "--dns-search",
            "example.com",
            "--dns-option",
            "ndots:2",
            "img",
        ]);
        let cs = &spec["TaskTemplate"]["ContainerSpec"];
        assert_eq!(
            spec["Mode"],
            json!({"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 6}})
        );
        assert_eq!(
            spec["TaskTemplate"]["Placement"],
            json!({"Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.dc"}}], "MaxReplicas": 3})
        );
        assert_eq!(
            spec["TaskTemplate"]["Networks"],
            json!([{"Target": "net0", "Aliases": ["db"]}, {"Target": "net1"}])
        );
        assert_eq!(
            cs["Secrets"],
            json!([
                {"File": {"Name": "db_pw", "UID": "0", "GID": "0", "Mode": 292}, "SecretID": "sec1", "SecretName": "db_pw"},
                {"File": {"Name": "/etc/tls.pem", "UID": "0", "GID": "0", "Mode": 256}, "SecretID": "sec2", "SecretName": "tls"}
            ])
        );
        assert_eq!(
            cs["Configs"],
            json!([{"File": {"Name": "/etc/site.conf", "UID": "0", "GID": "0", "Mode": 292}, "ConfigID": "cfg1", "ConfigName": "site"}])
        );
        assert_eq!(cs["CapabilityAdd"], json!(["CAP_NET_ADMIN"]));
        assert_eq!(cs["CapabilityDrop"], json!(["CAP_MKNOD"]));
        assert_eq!(cs["Sysctls"], json!({"net.core.somaxconn": "1024"}));
        assert_eq!(
            cs["Ulimits"],
            json!([{"Name": "core", "Hard": 0, "Soft": 0}, {"Name": "nofile", "Hard": 2048, "Soft": 1024}])
        );
        assert_eq!(
            cs["DNSConfig"],
            json!({"Nameservers": ["8.8.8.8"], "Search": ["example.com"], "Options": ["ndots:2"]})
        );
        // Without the flags, none of these keys is sent (Go's omitempty).
        let min = create(&["img"]);
        let cs = min["TaskTemplate"]["ContainerSpec"].as_object().unwrap();
        for k in ["Secrets", "Configs", "CapabilityAdd", "Sysctls", "Ulimits"] {
            assert!(!cs.contains_key(k), "{k}");
        }
        assert!(min["TaskTemplate"].get("Networks").is_none());
        assert_eq!(
            create(&["--mode", "replicated-job", "img"])["Mode"],
            json!({"ReplicatedJob": {}})
        );
        assert_eq!(
            create(&["--mode", "replicated-job", "--replicas", "4", "img"])["Mode"],
            json!({"ReplicatedJob": {"MaxConcurrent": 4, "TotalCompletions": 4}})
        );
    }

    #[test]
    fn create_env_file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env");
        std::fs::write(&path, "# c\nA=1\nB=2\n").unwrap();
        let spec = create(&["--env-file", path.to_str().unwrap(), "-e", "A=9", "img"]);
        assert_eq!(
            spec["TaskTemplate"]["ContainerSpec"]["Env"],
            json!(["B=2", "A=9"])
        );
    }

    #[test]
    fn create_mode_and_name_errors_in_dockers_words() {
        let bad = |args: &[&str]| {
            let argv = std::iter::once("create").chain(args.iter().copied());
            Create::try_parse_from(argv)
                .unwrap()
                .a
                .spec(&lookups())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad(&["--max-concurrent", "2", "img"]),
            "max-concurrent can only be used with replicated-job mode"
        );
        assert_eq!(
            bad(&["--mode", "global", "--replicas-max-per-node", "2", "img"]),
            "replicas-max-per-node can only be used with replicated or replicated-job mode"
        );
        assert_eq!(
            bad(&["--mode", "global-job", "--replicas", "2", "img"]),
            "replicas can only be used with replicated or replicated-job mode"
        );
        assert_eq!(
            bad(&["--mode", "replicated-job", "--update-delay", "1s", "img"]),
            "update and rollback configuration is not supported for jobs"
        );
        assert_eq!(
            bad(&["--secret", "nosuch", "img"]),
            "secret not found: nosuch"
        );
        assert_eq!(
            bad(&["--config", "nosuch", "img"]),
            "config not found: nosuch"
        );
        assert_eq!(
            bad(&[
                "--secret",
                "db_pw",
                "--secret",
                "source=tls,target=db_pw",
                "img"
            ]),
            "duplicate secret target for tls not allowed"
        );
        assert_eq!(
            bad(&["--ulimit", "nofile=x", "img"]),
            "strconv.ParseInt: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            bad(&["--dns", "nope", "img"]),
            "IP address is not correctly formatted: nope"
        );
        assert_eq!(
            bad(&["--placement-pref", "binpack=x", "img"]),
            "unsupported placement preference binpack (only spread is supported)"
        );
        assert_eq!(
            bad(&["--publish", "published=1", "img"]),
            "missing mandatory field 'target'"
        );
    }

    #[test]
    fn update_add_rm_forms_like_docker() {
        let mut spec = create(&[
            "--name",
            "x",
            "--network",
            "front",
            "--secret",
            "db_pw",
            "--cap-add",
            "NET_ADMIN",
            "--sysctl",
            "a=1",
            "--ulimit",
            "nofile=10",
            "--dns",
            "9.9.9.9",
            "--placement-pref",
            "spread=node.labels.dc",
            "--mount",
            "type=volume,src=b,dst=/b",
            "-p",
            "8080:80",
            "img",
        ]);
        update(
            &mut spec,
            &[
                "--network-rm",
                "front",
                "--network-add",
                "back",
                "--secret-rm",
                "db_pw",
                "--secret-add",
                "tls",
                "--config-add",
                "site",
                "--cap-drop",
                "net_admin",
                "--cap-add",
                "chown",
                "--sysctl-rm",
                "a",
                "--sysctl-add",
                "b=2",
                "--ulimit-add",
                "nofile=20:30",
                "--ulimit-add",
                "nproc=5",
                "--dns-add",
                "1.1.1.1",
                "--dns-rm",
                "9.9.9.9",
                "--dns-search-add",
                "x.org",
                "--placement-pref-rm",
                "spread=node.labels.dc",
                "--placement-pref-add",
                "spread=node.id",
                "--mount-add",
                "type=volume,src=a,dst=/a",
                "--mount-rm",
                "/b",
                "--publish-add",
                "9090:90",
                "--publish-rm",
                "80",
                "--replicas-max-per-node",
                "2",
            ],
        );
        let task = &spec["TaskTemplate"];
        let cs = &task["ContainerSpec"];
        assert_eq!(task["Networks"], json!([{"Target": "net0"}]));
        assert_eq!(
            cs["Secrets"],
            json!([{"File": {"Name": "tls", "UID": "0", "GID": "0", "Mode": 292}, "SecretID": "sec2", "SecretName": "tls"}])
        );
        assert_eq!(cs["Configs"][0]["ConfigID"], json!("cfg1"));
        assert_eq!(cs["CapabilityAdd"], json!(["CAP_CHOWN"]));
        assert!(cs.get("CapabilityDrop").is_none());
        assert_eq!(cs["Sysctls"], json!({"b": "2"}));
        assert_eq!(
            cs["Ulimits"],
            json!([{"Name": "nofile", "Hard": 30, "Soft": 20}, {"Name": "nproc", "Hard": 5, "Soft": 5}])
        );
        assert_eq!(
            cs["DNSConfig"],
            json!({"Nameservers": ["1.1.1.1"], "Search": ["x.org"]})
        );
        assert_eq!(
            task["Placement"]["Preferences"],
            json!([{"Spread": {"SpreadDescriptor": "node.id"}}])
        );
        assert_eq!(task["Placement"]["MaxReplicas"], json!(2));
        assert_eq!(
            cs["Mounts"],
            json!([{"Type": "volume", "Source": "a", "Target": "/a"}])
        );
        assert_eq!(
            spec["EndpointSpec"]["Ports"],
            json!([{"Protocol": "tcp", "TargetPort": 90, "PublishedPort": 9090, "PublishMode": "ingress"}])
        );
    }

    #[test]
    fn update_errors_in_dockers_words() {
        let bad = |spec: &mut Value, args: &[&str]| {
            let argv = std::iter::once("update")
                .chain(args.iter().copied())
                .chain(std::iter::once("svc"));
            let u = Update::try_parse_from(argv).unwrap().a;
            apply_update(spec, &u.update, &u.common, &lookups())
                .unwrap_err()
                .to_string()
        };
        let mut spec = create(&["--network", "front", "--mode", "global", "img"]);
        assert_eq!(
            bad(&mut spec, &["--network-add", "front"]),
            "service is already attached to network front"
        );
        assert_eq!(
            bad(&mut spec, &["--replicas", "2"]),
            "replicas can only be used with replicated mode"
        );
        assert_eq!(
            bad(
                &mut spec,
                &["--mount-add", "dst=/a", "--mount-add", "type=tmpfs,dst=/a"]
            ),
            "duplicate mount target"
        );
        assert_eq!(
            bad(&mut spec, &["--secret-add", "nope"]),
            "secret not found: nope"
        );
    }
}
