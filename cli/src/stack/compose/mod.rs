//! Compose files to the Engine API objects of a stack, as the docker CLI's
//! `cli/compose` packages (loader, interpolation, schema, convert) do it, client-side.
//!
//! ```text
//!   -c a.yml -c b.yml ──load (YAML, .env, ${VAR}, merge, check)──> model
//!        model ──convert(namespace)──> Stack { networks, secrets, configs, services }
//! ```
//!
//! The deploy command (`super::deploy`) creates what [`Stack`] lists, in Docker's order.
//!
//! Stages, one file each: `yaml` (parse), `interpolate` + `template` (`${VAR}`),
//! `schema` (shape, Docker's error lines), `model` (per-file loading to one canonical
//! shape), `merge` (`-c a -c b`), `convert` (Engine API JSON).
//!
//! Known differences with the docker CLI 28.2:
//! - errors are found before anything is created: Docker creates the networks and
//!   secrets first and only then fails on, say, an undefined network in a service;
//! - Docker's choice among several errors of one file follows Go's random map order;
//!   here the first service/key in sorted order wins;
//! - the shape is checked against the v3.13 schema for every `3.x` version (Docker
//!   uses each version's own schema, so an old `version:` can refuse newer keys);
//! - YAML errors come from libyaml, not yaml.v3: same problem texts, the line may
//!   differ for some, duplicate keys read differently; a plain `0440` is octal only
//!   in secrets'/configs' `mode` (yaml.v3 reads it as octal everywhere);
//! - image references are only checked for presence (Docker also parses them);
//! - `credential_spec.config` gets no runtime config reference (Windows only);
//! - `warnings` hold Docker's logrus warnings (`network x: network.external.name is
//!   deprecated ...`) as plain lines, without the `WARN[0000]` prefix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Map, Value};

mod convert;
mod interpolate;
mod merge;
mod model;
mod schema;
mod template;
mod yaml;

#[cfg(test)]
mod tests;

/// Everything a stack deploy sends, converted from the compose files.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Stack {
    /// `POST /networks/create` bodies (Name `<ns>_<net>`, Driver, Labels with
    /// `com.docker.stack.namespace`, Attachable, Internal, Options, IPAM), for the
    /// networks the services use that are not external, sorted by name.
    pub networks: Vec<Value>,
    /// The external networks the services use, by their real name: they must exist.
    pub external_networks: Vec<String>,
    /// `SecretSpec`s (Name, Labels, Data base64) of the file secrets; external ones
    /// are not here.
    pub secrets: Vec<Value>,
    /// `ConfigSpec`s, as secrets.
    pub configs: Vec<Value>,
    /// `ServiceSpec`s (Name `<ns>_<svc>`), sorted by name. Secret and config
    /// references carry `SecretName`/`ConfigName` (the real name) with the ID left
    /// empty: the deploy looks the IDs up once they exist. Network targets are names.
    pub services: Vec<Value>,
    /// Lines the docker CLI prints on stderr before deploying (`Ignoring unsupported
    /// options: build`, ...).
    pub warnings: Vec<String>,
}

/// Load `files` (a path, or `-` for stdin), interpolated from `env` and the `.env` file
/// beside the first one, merged in order, checked, and converted for `namespace`.
/// Errors are one line in Docker's words.
///
/// Beyond `docker stack deploy` (28.2, whose loader reads `os.Environ()` only, moby#29133):
/// a `.env` file beside the first compose file supplies the variables the environment
/// does not set, as `docker compose` reads it; the environment wins.
pub fn load(namespace: &str, files: &[String], env: &BTreeMap<String, String>) -> Result<Stack> {
    let stdin = || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut s).map(|_| s)
    };
    load_with(namespace, files, env, &stdin).map_err(|e| crate::UserError(e).into())
}

/// What Go's `os` package says for a failed `op` on `path`.
pub(crate) fn io_error(op: &str, path: &str, e: &std::io::Error) -> String {
    let why = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ if e.raw_os_error() == Some(21) => return format!("read {path}: is a directory"),
        _ => e.to_string(),
    };
    format!("{op} {path}: {why}")
}

/// Docker's unsupported (ignored) service keys, `types.UnsupportedProperties`.
const UNSUPPORTED: &[&str] = &[
    "build",
    "cgroupns_mode",
    "cgroup_parent",
    "devices",
    "domainname",
    "external_links",
    "ipc",
    "links",
    "mac_address",
    "network_mode",
    "pid",
    "privileged",
    "restart",
    "security_opt",
    "shm_size",
    "userns_mode",
];

const DEPRECATED: &[(&str, &str)] = &[
    ("container_name", "Setting the container name is not supported."),
    ("expose", "Exposing ports is unnecessary - services on the same network can access each other's containers on any port."),
];

const FORBIDDEN: &[(&str, &str)] = &[
    ("extends", "Support for `extends` is not implemented yet."),
    ("volume_driver", "Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there."),
    ("volumes_from", "To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option."),
    ("cpu_quota", "Set resource limits using deploy.resources"),
    ("cpu_shares", "Set resource limits using deploy.resources"),
    ("cpuset", "Set resource limits using deploy.resources"),
    ("mem_limit", "Set resource limits using deploy.resources"),
    ("memswap_limit", "Set resource limits using deploy.resources"),
];

/// Supported `version`s (the docker CLI has a schema for each).
const VERSIONS: &[&str] = &[
    "3.0", "3.1", "3.2", "3.3", "3.4", "3.5", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12",
    "3.13",
];

/// `schema.Version`: the file's `version`, `3` and none meaning 3.13.
fn version_of(config: &Value) -> String {
    match config.get("version") {
        None => "3.13".into(),
        Some(v) => match model::go_sprint(v).as_str() {
            "" | "3" => "3.13".into(),
            other => other.to_string(),
        },
    }
}

/// Every service (as written) of every file.
fn services_of(dicts: &[Value]) -> impl Iterator<Item = &Value> {
    dicts.iter().flat_map(|d| {
        d.get("services")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.values())
    })
}

/// `getProperties` over the services of every file: `(key, description)` sorted.
fn service_keys_used(dicts: &[Value], table: &[(&str, &str)]) -> Vec<String> {
    let mut found = std::collections::BTreeSet::new();
    for svc in services_of(dicts) {
        for (k, desc) in table {
            if svc.get(*k).is_some() {
                found.insert(format!("{k}: {desc}"));
            }
        }
    }
    found.into_iter().collect()
}

/// `env` plus the `KEY=VALUE` lines of `path` (when it exists) for the keys `env` lacks.
/// Blank lines and `#` comments are skipped, `export ` is allowed, and a value in
/// matching single or double quotes loses them, as `docker compose` reads `.env`.
fn with_dot_env(
    env: &BTreeMap<String, String>,
    path: &Path,
) -> Result<BTreeMap<String, String>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(env.clone()),
        Err(e) => return Err(io_error("open", &path.display().to_string(), &e)),
    };
    let mut out = env.clone();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!(
                "{}: line {}: unexpected character in variable name {line:?}",
                path.display(),
                n + 1
            ));
        };
        let v = v.trim();
        let v = ['"', '\'']
            .iter()
            .find_map(|q| v.strip_prefix(*q).and_then(|x| x.strip_suffix(*q)))
            .unwrap_or(v);
        out.entry(k.trim().to_string())
            .or_insert_with(|| v.to_string());
    }
    Ok(out)
}

fn load_with(
    namespace: &str,
    files: &[String],
    env: &BTreeMap<String, String>,
    stdin: &dyn Fn() -> std::io::Result<Vec<u8>>,
) -> Result<Stack, String> {
    if files.is_empty() {
        return Err("Specify a Compose file (with --compose-file)".into());
    }
    let working_dir: PathBuf = if files[0] == "-" && files.len() == 1 {
        std::env::current_dir().map_err(|e| e.to_string())?
    } else {
        let p = Path::new(&files[0]);
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().map_err(|e| e.to_string())?.join(p)
        };
        abs.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let mut dicts = Vec::new();
    for f in files {
        let bytes = if f == "-" {
            stdin().map_err(|e| e.to_string())?
        } else {
            std::fs::read(f).map_err(|e| io_error("open", f, &e))?
        };
        dicts.push(yaml::parse(&bytes)?);
    }

    let env = &with_dot_env(env, &working_dir.join(".env"))?;
    let lookup = |k: &str| env.get(k).cloned();
    let mut warnings = Vec::new();
    let mut version = String::new();
    let mut model = convert::Model::default();
    for (i, dict) in dicts.iter().enumerate() {
        let v = version_of(dict);
        if version.is_empty() {
            version = version_of(&dicts[0]);
        }
        if v != version {
            return Err(format!(
                "version mismatched between two composefiles : {version} and {v}"
            ));
        }
        let forbidden = service_keys_used(std::slice::from_ref(dict), FORBIDDEN);
        if !forbidden.is_empty() {
            return Err(format!(
                "Compose file contains unsupported options:\n\n{}\n",
                forbidden.join("\n\n")
            ));
        }
        let dict = interpolate::interpolate(dict, &lookup)?;
        if !VERSIONS.contains(&version.as_str()) {
            return Err(format!("unsupported Compose file version: {version}"));
        }
        schema::validate(&dict)?;

        let mut services = Map::new();
        for (name, svc) in dict
            .get("services")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            services.insert(name.clone(), model::load_service(svc, &working_dir, env)?);
        }
        let mut section = |key: &str, kind: &str| {
            model::load_objects(kind, dict.get(key), &working_dir, &mut warnings, &version)
        };
        let networks = section("networks", "network")?;
        let volumes = section("volumes", "volume")?;
        let secrets = section("secrets", "secret")?;
        let configs = section("configs", "config")?;
        if i == 0 {
            model = convert::Model {
                services,
                networks,
                volumes,
                secrets,
                configs,
            };
        } else {
            merge::merge_services(&mut model.services, &services);
            merge::merge_objects(&mut model.volumes, &volumes);
            merge::merge_objects(&mut model.networks, &networks);
            merge::merge_objects(&mut model.secrets, &secrets);
            merge::merge_objects(&mut model.configs, &configs);
        }
    }

    let mut unsupported = std::collections::BTreeSet::new();
    for svc in services_of(&dicts) {
        unsupported.extend(UNSUPPORTED.iter().filter(|k| svc.get(**k).is_some()));
    }
    if !unsupported.is_empty() {
        let list: Vec<&str> = unsupported.into_iter().copied().collect();
        warnings.push(format!("Ignoring unsupported options: {}", list.join(", ")));
    }
    let deprecated = service_keys_used(&dicts, DEPRECATED);
    if !deprecated.is_empty() {
        warnings.push(format!(
            "Ignoring deprecated options:\n\n{}",
            deprecated.join("\n\n")
        ));
    }
    let mut names: Vec<&String> = model.services.keys().collect();
    names.sort();
    for name in names {
        let svc = &model.services[name];
        if svc
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty()
        {
            return Err(format!(
                "invalid image reference for service {name}: no image specified"
            ));
        }
    }

    let (networks, external_networks) = convert::networks(namespace, &model);
    let secrets = convert::file_objects(namespace, "secret", &model.secrets)?;
    let configs = convert::file_objects(namespace, "config", &model.configs)?;
    let mut services = Vec::new();
    let mut names: Vec<&String> = model.services.keys().collect();
    names.sort();
    for name in names {
        let svc = &model.services[name];
        let spec = convert::service(namespace, name, svc, &model)
            .map_err(|e| format!("service {name}: {e}"))?;
        services.push(spec);
    }
    Ok(Stack {
        networks,
        external_networks,
        secrets,
        configs,
        services,
        warnings,
    })
}
