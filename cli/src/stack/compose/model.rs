//! One compose file's sections in one canonical shape, as the docker CLI's
//! `loader.LoadService`/`LoadNetworks`/... leave them (`compose/types`): short forms
//! expanded (ports, volumes, secrets, networks lists), strings split (command),
//! durations in nanoseconds, sizes in bytes, `environment` resolved from `env_file`
//! and the environment, bind sources made absolute.
//!
//! The shape stays JSON (compose's own key names) so that `merge` and `convert` read
//! it as Docker's typed structs: a missing key is Go's zero value.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::units::duration::parse_go_duration;
use crate::units::size::ram_in_bytes;

pub type Env = BTreeMap<String, String>;

/// Go's `fmt.Sprint` of a decoded YAML scalar.
pub fn go_sprint(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !(n.is_i64() || n.is_u64()) && f.fract() == 0.0 && f.abs() < 1e21 => {
                format!("{}", f as i64)
            }
            _ => n.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

/// `nat.ParsePortSpec` + `ConvertPortToPortConfig`: one short-syntax port to its
/// `{mode, target, published, protocol}` entries (several for a range).
pub fn parse_port_spec(spec: &str) -> Result<Vec<Value>, String> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p),
        None => (spec, "tcp"),
    };
    // an optional host IP in front: `ip:host:container` or `[v6]:host:container`
    let without_ip = if let Some(r) = rest.strip_prefix('[') {
        match r.split_once("]:") {
            Some((_, tail)) => tail.to_string(),
            None => return Err(format!("invalid port specification: \"{spec}\"")),
        }
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => rest.to_string(),
            3 => format!("{}:{}", parts[1], parts[2]),
            _ => return Err(format!("invalid port specification: \"{spec}\"")),
        }
    };
    let ports = crate::service::port::parse_publish(&format!("{without_ip}/{proto}"))
        .map_err(|e| e.to_string())?;
    Ok(ports
        .into_iter()
        .map(|p| {
            json!({"mode": p["PublishMode"], "target": p["TargetPort"],
                   "published": p.get("PublishedPort").cloned().unwrap_or(json!(0)),
                   "protocol": p["Protocol"]})
        })
        .collect())
}

/// `ParseVolume`: `[source:]target[:mode]` to the long form.
pub fn parse_volume(spec: &str) -> Result<Value, String> {
    let mut v = Map::new();
    if spec.is_empty() {
        return Err("invalid empty volume spec".into());
    }
    if spec.chars().count() <= 2 {
        v.insert("target".into(), json!(spec));
        v.insert("type".into(), json!("volume"));
        return Ok(Value::Object(v));
    }
    let (mut source, mut target) = (String::new(), String::new());
    let mut buffer = String::new();
    let chars: Vec<char> = spec.chars().chain(std::iter::once('\0')).collect();
    let populate_type = |v: &mut Map<String, Value>, source: &str| {
        let bind = source.starts_with(['.', '/', '~'])
            || source.starts_with("\\\\")
            || (source.len() > 1 && {
                let mut c = source.chars();
                c.next().is_some_and(|a| a.is_alphabetic()) && c.next() == Some(':')
            });
        let ty = if !source.is_empty() && bind {
            "bind"
        } else {
            "volume"
        };
        v.insert("type".into(), json!(ty));
    };
    for &c in &chars {
        let windows_drive =
            c == ':' && buffer.chars().count() == 1 && buffer.chars().all(char::is_alphabetic);
        if windows_drive || (c != ':' && c != '\0') {
            buffer.push(c);
            continue;
        }
        let err = |m: &str| format!("invalid spec: {spec}: {m}");
        if buffer.is_empty() {
            return Err(err("empty section between colons"));
        } else if source.is_empty() && c == '\0' {
            target = buffer.clone();
        } else if source.is_empty() {
            source = buffer.clone();
        } else if target.is_empty() {
            target = buffer.clone();
        } else if c == ':' {
            return Err(err("too many colons"));
        } else {
            for option in buffer.split(',') {
                match option {
                    "ro" => {
                        v.insert("read_only".into(), json!(true));
                    }
                    "rw" => {
                        v.remove("read_only");
                    }
                    "nocopy" => {
                        v.insert("volume".into(), json!({"nocopy": true}));
                    }
                    "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave" => {
                        v.insert("bind".into(), json!({"propagation": option}));
                    }
                    _ => {}
                }
            }
        }
        buffer.clear();
    }
    if !source.is_empty() {
        v.insert("source".into(), json!(source));
    }
    v.insert("target".into(), json!(target));
    populate_type(&mut v, &source);
    Ok(Value::Object(v))
}

/// `transformMappingOrList`: a map or a `K=V` list to a map; `K` alone is null when
/// `allow_nil`, else "".
fn mapping(v: &Value, sep: char, allow_nil: bool) -> Value {
    let mut out = Map::new();
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                let s = match val {
                    Value::Null if allow_nil => Value::Null,
                    Value::Null => json!(""),
                    other => json!(go_sprint(other)),
                };
                out.insert(k.clone(), s);
            }
        }
        Value::Array(items) => {
            for item in items {
                let item = go_sprint(item);
                match item.split_once(sep) {
                    Some((k, val)) => out.insert(k.into(), json!(val)),
                    None if allow_nil => out.insert(item, Value::Null),
                    None => out.insert(item, json!("")),
                };
            }
        }
        _ => {}
    }
    Value::Object(out)
}

/// `transformHostsList`: `host:ip` strings, a map sorted, brackets off IPv6.
fn hosts_list(v: &Value) -> Value {
    let raw: Vec<String> = match v {
        Value::Object(m) => {
            let mut l: Vec<String> = m
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k}:{}", go_sprint(v)))
                .collect();
            l.sort();
            l
        }
        Value::Array(items) => items
            .iter()
            .filter_map(|e| {
                let e = go_sprint(e);
                ["=", ":"]
                    .iter()
                    .find_map(|sep| e.split_once(sep).map(|(k, v)| format!("{k}:{v}")))
            })
            .collect(),
        _ => vec![],
    };
    raw.into_iter()
        .map(|h| {
            let (host, ip) = h.split_once(':').unwrap_or((&h, ""));
            let ip = if ip.len() > 2 && ip.starts_with('[') && ip.ends_with(']') {
                &ip[1..ip.len() - 1]
            } else {
                ip
            };
            json!(format!("{host}:{ip}"))
        })
        .collect()
}

fn string_list(v: &Value) -> Value {
    match v {
        Value::String(s) => json!([s]),
        other => other.clone(),
    }
}

fn duration(v: &Value) -> Result<Value, String> {
    match v {
        Value::String(s) => parse_go_duration(s)
            .map(Value::from)
            .map_err(|_| format!("time: invalid duration {}", super::interpolate::go_quote(s))),
        other => Err(format!("invalid type {} for duration", go_type(other))),
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => "int",
        Value::Number(_) => "float64",
        Value::Bool(_) => "bool",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
        Value::Null => "<nil>",
    }
}

fn size(v: &Value) -> Result<Value, String> {
    match v {
        Value::String(s) => ram_in_bytes(s).map(Value::from).map_err(|e| e.to_string()),
        other => Ok(other.clone()),
    }
}

fn map_durations(m: &mut Map<String, Value>, keys: &[&str]) -> Result<(), String> {
    for k in keys {
        if let Some(v) = m.get(*k) {
            let d = duration(v)?;
            m.insert(k.to_string(), d);
        }
    }
    Ok(())
}

fn abs_path(dir: &Path, p: &str) -> String {
    if Path::new(p).is_absolute() {
        p.to_string()
    } else {
        clean(&dir.join(p))
    }
}

/// Go's `filepath.Join` cleans the path (`a/./b/../c` is `a/c`).
fn clean(p: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    let abs = p.is_absolute();
    for c in p.components() {
        match c {
            std::path::Component::Normal(s) => parts.push(s.to_string_lossy().into()),
            std::path::Component::ParentDir if parts.pop().is_none() && !abs => {
                parts.push("..".into());
            }
            _ => {}
        }
    }
    let joined = parts.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// `env_file` lines as `opts.ParseEnvFile`, bare keys from `env`.
fn read_env_file(path: &str, env: &Env) -> Result<Vec<String>, String> {
    let bytes = std::fs::read(path).map_err(|e| super::io_error("open", path, &e))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("env file {path} contains invalid utf8 bytes"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    crate::service::opts::parse_env_lines(path, text, |k| env.get(k).cloned())
        .map_err(|e| e.to_string())
}

/// `resolveEnvironment`: env files first, then `environment`; an empty or bare value
/// is taken from `env` when set there.
fn resolve_environment(svc: &mut Map<String, Value>, dir: &Path, env: &Env) -> Result<(), String> {
    let mut out = Map::new();
    let mut update = |vars: &Map<String, Value>| {
        for (k, v) in vars {
            let empty = v.as_str().is_none_or(str::is_empty);
            match env.get(k) {
                Some(e) if empty => out.insert(k.clone(), json!(e)),
                _ => out.insert(k.clone(), v.clone()),
            };
        }
    };
    if let Some(files) = svc.remove("env_file") {
        let mut lines = Vec::new();
        for f in string_list(&files).as_array().into_iter().flatten() {
            let path = abs_path(dir, f.as_str().unwrap_or_default());
            lines.extend(read_env_file(&path, env)?);
        }
        let vars = mapping(&json!(lines), '=', true);
        update(vars.as_object().expect("object"));
    }
    if let Some(e) = svc.get("environment") {
        let vars = mapping(e, '=', true);
        update(vars.as_object().expect("object"));
    }
    if !out.is_empty() {
        svc.insert("environment".into(), Value::Object(out));
    } else {
        svc.remove("environment");
    }
    Ok(())
}

/// `LoadService`: one service's dict to the canonical shape.
pub fn load_service(dict: &Value, dir: &Path, env: &Env) -> Result<Value, String> {
    let mut s = dict.as_object().cloned().unwrap_or_default();
    s.retain(|k, _| !k.starts_with("x-"));
    for key in ["command", "entrypoint"] {
        if let Some(Value::String(cmd)) = s.get(key) {
            let words = crate::shlex::split(cmd).map_err(|e| e.to_string())?;
            s.insert(key.into(), json!(words));
        }
    }
    for key in ["labels", "sysctls"] {
        if let Some(v) = s.get(key) {
            let m = mapping(v, '=', false);
            s.insert(key.into(), m);
        }
    }
    if let Some(v) = s.get("extra_hosts") {
        let h = hosts_list(v);
        s.insert("extra_hosts".into(), h);
    }
    for key in ["dns", "dns_search", "tmpfs"] {
        if let Some(v) = s.get(key) {
            let l = string_list(v);
            s.insert(key.into(), l);
        }
    }
    if let Some(Value::Array(ports)) = s.get("ports") {
        let mut out = Vec::new();
        for p in ports {
            match p {
                Value::Object(_) => out.push(p.clone()),
                other => out.extend(parse_port_spec(&go_sprint(other))?),
            }
        }
        s.insert("ports".into(), Value::Array(out));
    }
    if let Some(Value::Array(vols)) = s.get("volumes") {
        let mut out = Vec::new();
        for v in vols {
            let mut v = match v {
                Value::String(spec) => parse_volume(spec)?,
                other => other.clone(),
            };
            if v["type"] == "bind" {
                let src = v["source"].as_str().unwrap_or_default().to_string();
                if src.is_empty() {
                    return Err(
                        "invalid mount config for type \"bind\": field Source must not be empty"
                            .into(),
                    );
                }
                let src = match src.strip_prefix('~') {
                    Some(rest) => match env.get("HOME") {
                        Some(home) => format!("{home}{rest}"),
                        None => src.clone(),
                    },
                    None => src.clone(),
                };
                let src = if src.starts_with('/') {
                    src
                } else {
                    abs_path(dir, &src)
                };
                v["source"] = json!(src);
            }
            if let Some(size) = v.pointer("/tmpfs/size").cloned() {
                v["tmpfs"]["size"] = self::size(&size)?;
            }
            out.push(v);
        }
        s.insert("volumes".into(), Value::Array(out));
    }
    for key in ["secrets", "configs"] {
        if let Some(Value::Array(refs)) = s.get(key) {
            let out: Vec<Value> = refs
                .iter()
                .map(|r| match r {
                    Value::String(src) => json!({ "source": src }),
                    other => other.clone(),
                })
                .collect();
            s.insert(key.into(), Value::Array(out));
        }
    }
    if let Some(Value::Array(nets)) = s.get("networks") {
        let m: Map<String, Value> = nets.iter().map(|n| (go_sprint(n), Value::Null)).collect();
        s.insert("networks".into(), Value::Object(m));
    }
    if let Some(Value::Object(hc)) = s.get_mut("healthcheck") {
        if let Some(Value::String(t)) = hc.get("test") {
            let t = json!(["CMD-SHELL", t]);
            hc.insert("test".into(), t);
        }
        map_durations(
            hc,
            &["interval", "timeout", "start_period", "start_interval"],
        )?;
    }
    if let Some(v) = s.get("stop_grace_period") {
        let d = duration(v)?;
        s.insert("stop_grace_period".into(), d);
    }
    if let Some(Value::Object(ul)) = s.get_mut("ulimits") {
        for (_, u) in ul.iter_mut() {
            if let Some(n) = u.as_i64() {
                *u = json!({ "single": n });
            }
        }
    }
    if let Some(Value::Object(d)) = s.get_mut("deploy") {
        if let Some(l) = d.get("labels") {
            let m = mapping(l, '=', false);
            d.insert("labels".into(), m);
        }
        for key in ["update_config", "rollback_config", "restart_policy"] {
            if let Some(Value::Object(c)) = d.get_mut(key) {
                map_durations(c, &["delay", "monitor", "window"])?;
            }
        }
        for key in ["limits", "reservations"] {
            if let Some(Value::Object(r)) = d.get_mut("resources").and_then(|r| r.get_mut(key)) {
                if let Some(m) = r.get("memory") {
                    let b = size(m)?;
                    r.insert("memory".into(), b);
                }
            }
        }
    } else if s.get("deploy").is_some_and(Value::is_null) {
        s.remove("deploy");
    }
    resolve_environment(&mut s, dir, env)?;
    Ok(Value::Object(s))
}

/// `transformExternal` and the `external.name` rules of `LoadNetworks`/`LoadVolumes`/
/// `loadFileObjectConfig`: an external object gets its real name in `name`.
pub fn load_external(
    kind: &str,
    name: &str,
    def: &mut Map<String, Value>,
    warnings: &mut Vec<String>,
    version: &str,
) -> Result<(), String> {
    let (external, ext_name) = match def.get("external") {
        Some(Value::Bool(b)) => (*b, None),
        Some(Value::Object(m)) => (
            true,
            m.get("name").and_then(Value::as_str).map(String::from),
        ),
        _ => (false, None),
    };
    def.insert("external".into(), json!(external));
    if !external {
        return Ok(());
    }
    if kind == "volume" {
        for key in ["driver", "driver_opts", "labels"] {
            let set = match def.get(key) {
                Some(Value::String(s)) => !s.is_empty(),
                Some(Value::Object(m)) => !m.is_empty(),
                Some(Value::Array(l)) => !l.is_empty(),
                _ => false,
            };
            if set {
                return Err(format!(
                    "conflicting parameters \"external\" and \"{key}\" specified for volume \"{name}\""
                ));
            }
        }
    }
    let has_name = def
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    match ext_name {
        Some(ext) if !ext.is_empty() => {
            if has_name {
                return Err(format!(
                    "{kind} {name}: {kind}.external.name and {kind}.name conflict; only use {kind}.name"
                ));
            }
            let since = if kind == "volume" { "3.4" } else { "3.5" };
            if version_ge(version, since) {
                warnings.push(format!(
                    "{kind} {name}: {kind}.external.name is deprecated in favor of {kind}.name"
                ));
            }
            def.insert("name".into(), json!(ext));
        }
        _ if !has_name => {
            def.insert("name".into(), json!(name));
        }
        _ => {}
    }
    Ok(())
}

/// Docker's `versions.GreaterThanOrEqualTo` on dotted numbers.
pub fn version_ge(a: &str, b: &str) -> bool {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    let (a, b) = (parse(a), parse(b));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        if x != y {
            return x > y;
        }
    }
    true
}

/// One file's top-level section `networks`/`volumes`/`secrets`/`configs`, canonical.
pub fn load_objects(
    kind: &str,
    section: Option<&Value>,
    dir: &Path,
    warnings: &mut Vec<String>,
    version: &str,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (name, def) in section.and_then(Value::as_object).into_iter().flatten() {
        let mut def = def.as_object().cloned().unwrap_or_default();
        def.retain(|k, _| !k.starts_with("x-"));
        if let Some(l) = def.get("labels") {
            let m = mapping(l, '=', false);
            def.insert("labels".into(), m);
        }
        for key in ["driver_opts"] {
            if let Some(Value::Object(o)) = def.get(key) {
                let m: Map<String, Value> = o
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(go_sprint(v))))
                    .collect();
                def.insert(key.into(), Value::Object(m));
            }
        }
        load_external(kind, name, &mut def, warnings, version)?;
        if matches!(kind, "secret" | "config") && def["external"] != json!(true) {
            let driver = def
                .get("driver")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !driver.is_empty() {
                if def
                    .get("file")
                    .and_then(Value::as_str)
                    .is_some_and(|f| !f.is_empty())
                {
                    return Err(format!(
                        "{kind} {name}: {kind}.driver and {kind}.file conflict; only use {kind}.driver"
                    ));
                }
            } else {
                let file = def.get("file").and_then(Value::as_str).unwrap_or_default();
                def.insert("file".into(), json!(abs_path(dir, file)));
            }
        }
        out.insert(name.clone(), Value::Object(def));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ports_like_docker() {
        assert_eq!(
            parse_port_spec("127.0.0.1:8080-8081:80-81/udp").unwrap(),
            vec![
                json!({"mode": "ingress", "target": 80, "published": 8080, "protocol": "udp"}),
                json!({"mode": "ingress", "target": 81, "published": 8081, "protocol": "udp"}),
            ]
        );
        assert_eq!(
            parse_port_spec("3000").unwrap(),
            vec![json!({"mode": "ingress", "target": 3000, "published": 0, "protocol": "tcp"})]
        );
        assert!(parse_port_spec("abc").is_err());
    }

    #[test]
    fn short_volumes_like_docker() {
        assert_eq!(
            parse_volume("./data:/data:ro").unwrap(),
            json!({"type": "bind", "source": "./data", "target": "/data", "read_only": true})
        );
        assert_eq!(
            parse_volume("db:/var/lib/db:nocopy").unwrap(),
            json!({"type": "volume", "source": "db", "target": "/var/lib/db", "volume": {"nocopy": true}})
        );
        assert_eq!(
            parse_volume("/anon").unwrap(),
            json!({"type": "volume", "target": "/anon"})
        );
        assert_eq!(
            parse_volume("/a:/b:rshared").unwrap(),
            json!({"type": "bind", "source": "/a", "target": "/b", "bind": {"propagation": "rshared"}})
        );
        assert_eq!(
            parse_volume("ab::c").unwrap_err(),
            "invalid spec: ab::c: empty section between colons"
        );
    }

    #[test]
    fn environment_from_files_and_env() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.env"), "# c\nA=file\nB=\nC\nD=keep\n").unwrap();
        let env: Env = [("B", "envb"), ("C", "envc"), ("E", "enve")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let svc = load_service(
            &json!({"image": "x", "env_file": "a.env", "environment": ["D=over", "E", "F"]}),
            dir.path(),
            &env,
        )
        .unwrap();
        assert_eq!(
            svc["environment"],
            json!({"A": "file", "B": "envb", "C": "envc", "D": "over", "E": "enve", "F": null})
        );
    }
}
