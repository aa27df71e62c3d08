//! Spec validation, with Docker's messages (swarmkit's `controlapi` and moby's spec
//! conversion). Every error is `Error::InvalidArgument` (HTTP 400). Checks that need the
//! store (secrets and networks existing, published ports taken) belong to the API;
//! networks' are in `network.rs`.

use std::collections::{BTreeMap, HashSet};

use crate::error::{Error, Result};
use crate::model::{
    ConfigSpec, ContainerSpec, FailureAction, Healthcheck, ModeKind, Mount, MountType, NodeSpec,
    PortProtocol, PublishMode, ResolutionMode, Resources, RestartPolicy, SecretSpec, Service,
    ServiceSpec, TaskSpec, UpdateConfig, UpdateOrder,
};

/// The largest TCP/UDP/SCTP port number.
pub const MAX_PORT: u32 = 65535;

/// The largest secret or config, decoded (swarmkit's `MaxSecretSize`).
pub const MAX_SECRET_SIZE: usize = 500 * 1024;

fn invalid(msg: impl Into<String>) -> Error {
    Error::invalid(msg)
}

/// A whole service spec, as `POST /services/create` and `/update` receive it.
pub fn validate_service_spec(spec: &ServiceSpec) -> Result<()> {
    validate_service_name(&spec.name)?;
    validate_task_spec(&spec.task_template)?;
    let kind = validate_mode(spec)?;
    if kind.is_job() {
        if spec.update_config.is_some() {
            return Err(invalid("Jobs may not have an update config"));
        }
    } else {
        validate_update_config(spec.update_config.as_ref())?;
    }
    validate_update_config(spec.rollback_config.as_ref())?;
    validate_endpoint_spec(spec)
}

/// What may not change on `POST /services/{id}/update`.
pub fn validate_service_update(current: &Service, spec: &ServiceSpec) -> Result<()> {
    if spec.name != current.spec.name {
        return Err(invalid("renaming services is not supported"));
    }
    if spec.mode.kind_or_default() != current.spec.mode.kind_or_default() {
        return Err(invalid("service mode change is not allowed"));
    }
    Ok(())
}

/// swarmkit's `isValidDNSName`: letters, digits, `-` and `_`, starting and ending with
/// a letter or digit; at most 63 characters.
pub fn validate_service_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(invalid("meta: name must be provided"));
    }
    let ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        return Err(invalid("name must be valid as a DNS name component"));
    }
    if name.len() > 63 {
        return Err(invalid("name must be 63 characters or fewer"));
    }
    Ok(())
}

fn validate_mode(spec: &ServiceSpec) -> Result<ModeKind> {
    let mode = &spec.mode;
    if mode.global.is_some() && mode.replicated.is_some() {
        return Err(invalid(
            "cannot specify both replicated mode and global mode",
        ));
    }
    let kind = mode
        .kind_or_default()
        .ok_or_else(|| invalid("Unrecognized service mode"))?;
    let sets_replicas = |extra: &serde_json::Map<String, serde_json::Value>| {
        extra.keys().any(|k| k.eq_ignore_ascii_case("replicas"))
    };
    let global_replicas = match kind {
        ModeKind::Global => mode
            .global
            .as_ref()
            .is_some_and(|g| sets_replicas(&g.extra)),
        ModeKind::GlobalJob => mode
            .global_job
            .as_ref()
            .is_some_and(|g| sets_replicas(&g.extra)),
        _ => false,
    };
    if global_replicas {
        return Err(invalid(
            "replicas can only be used with replicated or replicated-job mode",
        ));
    }
    Ok(kind)
}

/// `TaskTemplate`: runtime, container, resources, restart policy, placement.
pub fn validate_task_spec(task: &TaskSpec) -> Result<()> {
    validate_resources(task.resources.as_ref().and_then(|r| {
        r.limits.as_ref().map(|l| Resources {
            nano_cpus: l.nano_cpus,
            memory_bytes: l.memory_bytes,
            ..Resources::default()
        })
    }))?;
    validate_resources(task.resources.as_ref().and_then(|r| r.reservations.clone()))?;
    if let Some(policy) = &task.restart_policy {
        validate_restart_policy(policy)?;
    }
    if let Some(placement) = &task.placement {
        for c in &placement.constraints {
            validate_constraint(c)?;
        }
    }
    match task.runtime.as_str() {
        "" | "container" => {}
        _ => {
            return Err(invalid(
                "RuntimeSpec: unimplemented runtime in service spec",
            ))
        }
    }
    let container = task
        .container_spec
        .as_ref()
        .ok_or_else(|| invalid("TaskSpec: missing runtime"))?;
    validate_container_spec(container)
}

fn validate_resources(r: Option<Resources>) -> Result<()> {
    let Some(r) = r else { return Ok(()) };
    if r.nano_cpus != 0 && r.nano_cpus < 1_000_000 {
        return Err(invalid(format!(
            "invalid cpu value {}: Must be at least 0.001",
            r.nano_cpus as f64 / 1e9
        )));
    }
    if r.memory_bytes != 0 && r.memory_bytes < 4 * 1024 * 1024 {
        return Err(invalid(format!(
            "invalid memory value {}: Must be at least 4MiB",
            r.memory_bytes
        )));
    }
    Ok(())
}

fn validate_restart_policy(p: &RestartPolicy) -> Result<()> {
    if let Some(c) = p.condition.as_ref().filter(|c| !c.is_known()) {
        return Err(invalid(format!(
            "invalid RestartCondition: {:?}",
            c.as_str()
        )));
    }
    if p.delay.is_some_and(|d| d < 0) {
        return Err(invalid("TaskSpec: restart-delay cannot be negative"));
    }
    if p.window.is_some_and(|w| w < 0) {
        return Err(invalid("TaskSpec: restart-window cannot be negative"));
    }
    Ok(())
}

/// `key==value` or `key!=value` (the scheduler parses and evaluates them).
fn validate_constraint(c: &str) -> Result<()> {
    let ops = ["==", "!="];
    let found: Vec<_> = ops.iter().filter(|op| c.contains(*op)).collect();
    let well_formed = found.len() == 1 && {
        let (key, value) = c.split_once(*found[0]).expect("contains");
        !key.trim().is_empty() && !value.trim().is_empty() && !value.contains(['=', '!'])
    };
    if !well_formed {
        return Err(invalid("constraint expected one operator from ==, !="));
    }
    Ok(())
}

/// `ContainerSpec`: image, mounts, health check, secret and config references.
pub fn validate_container_spec(c: &ContainerSpec) -> Result<()> {
    validate_image(&c.image)?;
    validate_mounts(&c.mounts)?;
    if let Some(h) = &c.healthcheck {
        validate_healthcheck(h)?;
    }
    validate_secret_refs(c)?;
    validate_config_refs(c)
}

/// Empty, or not a `name[:tag][@digest]` reference.
pub fn validate_image(image: &str) -> Result<()> {
    if image.is_empty() {
        return Err(invalid("ContainerSpec: image reference must be provided"));
    }
    let name = image.split('@').next().unwrap_or("");
    // The tag is after the last ':' that follows the last '/' (a ':' before it is a
    // registry port).
    let repo = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    };
    let tag_ok = name.len() == repo.len() || name.len() > repo.len() + 1;
    let repo_path = repo.split_once('/').map_or(repo, |(first, rest)| {
        // A first component with '.', ':' or "localhost" is a registry host, which may
        // have upper case; the path may not.
        if first.contains(['.', ':']) || first == "localhost" {
            rest
        } else {
            repo
        }
    });
    let ok = !repo.is_empty()
        && tag_ok
        && !image.chars().any(char::is_whitespace)
        && !repo.starts_with(['/', '-', '.'])
        && !repo.ends_with(['/', '-', '.'])
        && !repo_path.chars().any(|c| c.is_ascii_uppercase())
        && !repo.contains("//");
    if !ok {
        return Err(invalid(format!(
            "ContainerSpec: {image:?} is not a valid repository/tag"
        )));
    }
    Ok(())
}

fn validate_mounts(mounts: &[Mount]) -> Result<()> {
    let mut targets = HashSet::new();
    for m in mounts {
        let kind = m.kind.clone().unwrap_or(MountType::Volume);
        let config_err = |what: &str| {
            invalid(format!(
                "invalid mount config for type {:?}: {what}",
                kind.as_str()
            ))
        };
        if !kind.is_known() {
            return Err(config_err("mount type unknown"));
        }
        if m.target.is_empty() {
            return Err(config_err("field Target must not be empty"));
        }
        if kind == MountType::Bind && m.source.is_empty() {
            return Err(config_err("field Source must not be empty"));
        }
        if kind == MountType::Tmpfs && !m.source.is_empty() {
            return Err(config_err("field Source must not be specified"));
        }
        if !targets.insert(m.target.as_str()) {
            return Err(invalid(format!(
                "ContainerSpec: duplicate mount point: {}",
                m.target
            )));
        }
    }
    Ok(())
}

fn validate_healthcheck(h: &Healthcheck) -> Result<()> {
    const MIN: i64 = 1_000_000; // 1ms
    for (field, value) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
    ] {
        if value != 0 && value < MIN {
            return Err(invalid(format!(
                "ContainerSpec: {field} in HealthConfig cannot be less than 1ms"
            )));
        }
    }
    if h.retries < 0 {
        return Err(invalid(
            "ContainerSpec: Retries in HealthConfig cannot be negative",
        ));
    }
    Ok(())
}

fn validate_secret_refs(c: &ContainerSpec) -> Result<()> {
    let mut targets: BTreeMap<&str, &str> = BTreeMap::new();
    for r in &c.secrets {
        if r.secret_id.is_empty() || r.secret_name.is_empty() {
            return Err(invalid("malformed secret reference"));
        }
        let file = r
            .file
            .as_ref()
            .ok_or_else(|| invalid("malformed secret reference, no target provided"))?;
        if file.name.is_empty() {
            return Err(invalid(
                "malformed file secret reference, invalid target file name provided",
            ));
        }
        if let Some(prev) = targets.insert(&file.name, &r.secret_name) {
            return Err(invalid(format!(
                "secret references '{prev}' and '{}' have a conflicting target: '{}'",
                r.secret_name, file.name
            )));
        }
    }
    Ok(())
}

fn validate_config_refs(c: &ContainerSpec) -> Result<()> {
    let mut targets: BTreeMap<&str, &str> = BTreeMap::new();
    for r in &c.configs {
        if r.config_id.is_empty() || r.config_name.is_empty() {
            return Err(invalid("malformed config reference"));
        }
        let Some(file) = &r.file else {
            // A `Runtime` target (credential specs) has no file.
            if r.extra.contains_key("Runtime") {
                continue;
            }
            return Err(invalid("malformed config reference, no target provided"));
        };
        if file.name.is_empty() {
            return Err(invalid(
                "malformed file config reference, invalid target file name provided",
            ));
        }
        if let Some(prev) = targets.insert(&file.name, &r.config_name) {
            return Err(invalid(format!(
                "config references '{prev}' and '{}' have a conflicting target: '{}'",
                r.config_name, file.name
            )));
        }
    }
    Ok(())
}

fn validate_update_config(u: Option<&UpdateConfig>) -> Result<()> {
    let Some(u) = u else { return Ok(()) };
    if u.delay < 0 {
        return Err(invalid("TaskSpec: update-delay cannot be negative"));
    }
    if u.monitor < 0 {
        return Err(invalid("TaskSpec: update-monitor cannot be negative"));
    }
    if !(0.0..=1.0).contains(&u.max_failure_ratio) {
        return Err(invalid(
            "TaskSpec: update-maxfailureratio cannot be less than 0 or bigger than 1",
        ));
    }
    match &u.failure_action {
        Some(FailureAction::Other(a)) if !a.is_empty() => {
            return Err(invalid(format!("unrecognized update failure action {a}")))
        }
        _ => {}
    }
    match &u.order {
        Some(UpdateOrder::Other(o)) if !o.is_empty() => {
            return Err(invalid(format!("unrecognized update order {o}")))
        }
        _ => {}
    }
    Ok(())
}

fn validate_endpoint_spec(spec: &ServiceSpec) -> Result<()> {
    let Some(ep) = &spec.endpoint_spec else {
        return Ok(());
    };
    if let Some(ResolutionMode::Other(m)) = &ep.mode {
        if !m.is_empty() {
            return Err(invalid(format!("invalid resolution mode: {m:?}")));
        }
    }
    let mut published = HashSet::new();
    for p in &ep.ports {
        if let Some(PortProtocol::Other(x)) = &p.protocol {
            return Err(invalid(format!("EndpointSpec: invalid protocol {x:?}")));
        }
        if let Some(PublishMode::Other(x)) = &p.publish_mode {
            return Err(invalid(format!("EndpointSpec: invalid publish mode {x:?}")));
        }
        // Docker's API takes any uint32 here and fails late; we refuse early, in the
        // same form as the rest. A published port of 0 asks for a dynamic one.
        if p.target_port == 0 || p.target_port > MAX_PORT {
            return Err(invalid(format!(
                "EndpointSpec: invalid target port {}: must be between 1 and {MAX_PORT}",
                p.target_port
            )));
        }
        if p.published_port > MAX_PORT {
            return Err(invalid(format!(
                "EndpointSpec: invalid published port {}: must be between 1 and {MAX_PORT}",
                p.published_port
            )));
        }
        if ep.mode == Some(ResolutionMode::Dnsrr)
            && p.publish_mode_or_default() == PublishMode::Ingress
        {
            return Err(invalid(
                "EndpointSpec: port published with ingress mode can't be used with dnsrr mode",
            ));
        }
        if p.published_port == 0 {
            continue;
        }
        if !published.insert((p.published_port, p.protocol_or_default())) {
            return Err(invalid("EndpointSpec: duplicate published ports provided"));
        }
    }
    Ok(())
}

/// `POST /nodes/{id}/update`'s body.
pub fn validate_node_spec(spec: &NodeSpec) -> Result<()> {
    if let Some(role) = spec.role.as_ref().filter(|r| !r.is_known()) {
        return Err(invalid(format!("invalid Role: {:?}", role.as_str())));
    }
    if let Some(a) = spec.availability.as_ref().filter(|a| !a.is_known()) {
        return Err(invalid(format!("invalid Availability: {:?}", a.as_str())));
    }
    Ok(())
}

/// A secret's or config's name: letters, digits, `-`, `_`, `.`, starting and ending with
/// a letter or digit, at most 64 characters.
pub fn validate_secret_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(invalid("name must be provided"));
    }
    let ok = name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        return Err(invalid(
            "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]",
        ));
    }
    Ok(())
}

/// `Data` (base64): not empty, smaller than [`MAX_SECRET_SIZE`] bytes decoded
/// (swarmkit's `len(data) >= MaxSecretSize || len(data) < 1`). `what` is `secret` or
/// `config`.
pub fn validate_secret_data(what: &str, data_base64: &str) -> Result<()> {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .decode(data_base64)
        .map_err(|e| invalid(format!("invalid {what} data: {e}")))?;
    if data.is_empty() || data.len() >= MAX_SECRET_SIZE {
        return Err(invalid(format!(
            "{what} data must be larger than 0 and less than {MAX_SECRET_SIZE} bytes"
        )));
    }
    Ok(())
}

/// `POST /secrets/create`'s body: a name, data; no driver (external secret stores are
/// not supported).
pub fn validate_secret_spec(spec: &SecretSpec) -> Result<()> {
    validate_secret_name(&spec.name)?;
    if let Some(d) = spec.driver.as_ref().filter(|d| !d.name.is_empty()) {
        return Err(invalid(format!(
            "secret driver {:?} is not supported: secrets are stored in the swarm",
            d.name
        )));
    }
    validate_secret_data("secret", &spec.data)
}

/// `POST /configs/create`'s body.
pub fn validate_config_spec(spec: &ConfigSpec) -> Result<()> {
    validate_secret_name(&spec.name)?;
    validate_secret_data("config", &spec.data)
}

mod network;
pub use network::{validate_addr_pools, validate_ipam_config, validate_network_spec};

#[cfg(test)]
mod tests;
