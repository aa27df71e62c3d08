//! The compose file's shape, checked as the docker CLI's JSON schema (v3.13) checks it,
//! with gojsonschema's error lines as Docker prints them: `services.web Additional
//! property foo is not allowed`, `services.web.ports must be a list`, ...
//!
//! Not a JSON-schema engine: the shape is written out below as a small tree, and the
//! one error Docker would pick (the deepest; a type error wins a tie) is returned.

use serde_json::Value;

use crate::units::duration::parse_go_duration;

/// A node of the compose file's shape.
enum S {
    Str,
    Int,
    Num,
    Bool,
    Any,
    /// A string that Go's `time.ParseDuration` accepts.
    Dur,
    /// One of these JSON-schema type names (`["string", "number", "null"]`).
    Types(&'static [&'static str]),
    /// A string from a fixed set.
    Enum(&'static [&'static str]),
    /// A closed object; `x-` keys allowed when the flag says so; `required` keys.
    Obj(Vec<(&'static str, S)>, bool, &'static [&'static str]),
    /// An object whose keys match `^[a-zA-Z0-9._-]+$` (or any key when false).
    Named(Box<S>, bool),
    /// An object, nullable.
    NullableObj(Vec<(&'static str, S)>, bool),
    List(Box<S>),
    OneOf(Vec<S>),
    /// `ports` items: a number or string in Docker's port syntax.
    PortSpec(&'static str),
}

use S::*;

fn obj(props: Vec<(&'static str, S)>) -> S {
    Obj(props, false, &[])
}

fn list(s: S) -> S {
    List(Box::new(s))
}

fn strings() -> S {
    list(Str)
}

fn string_or_list() -> S {
    OneOf(vec![Str, strings()])
}

fn list_or_dict() -> S {
    OneOf(vec![
        Named(Box::new(Types(&["string", "number", "null"])), false),
        strings(),
    ])
}

fn str_or_num_map() -> S {
    Named(Box::new(Types(&["string", "number"])), false)
}

fn file_ref() -> S {
    OneOf(vec![
        Str,
        obj(vec![
            ("source", Str),
            ("target", Str),
            ("uid", Str),
            ("gid", Str),
            ("mode", Num),
        ]),
    ])
}

fn update_config() -> S {
    obj(vec![
        ("parallelism", Int),
        ("delay", Dur),
        ("failure_action", Str),
        ("monitor", Dur),
        ("max_failure_ratio", Num),
        ("order", Enum(&["start-first", "stop-first"])),
    ])
}

fn deployment() -> S {
    NullableObj(
        vec![
            ("mode", Str),
            ("endpoint_mode", Str),
            ("replicas", Int),
            ("labels", list_or_dict()),
            ("rollback_config", update_config()),
            ("update_config", update_config()),
            (
                "resources",
                obj(vec![
                    (
                        "limits",
                        obj(vec![("cpus", Str), ("memory", Str), ("pids", Int)]),
                    ),
                    (
                        "reservations",
                        obj(vec![
                            ("cpus", Str),
                            ("memory", Str),
                            (
                                "generic_resources",
                                list(obj(vec![(
                                    "discrete_resource_spec",
                                    obj(vec![("kind", Str), ("value", Num)]),
                                )])),
                            ),
                        ]),
                    ),
                ]),
            ),
            (
                "restart_policy",
                obj(vec![
                    ("condition", Str),
                    ("delay", Dur),
                    ("max_attempts", Int),
                    ("window", Dur),
                ]),
            ),
            (
                "placement",
                obj(vec![
                    ("constraints", strings()),
                    ("preferences", list(obj(vec![("spread", Str)]))),
                    ("max_replicas_per_node", Int),
                ]),
            ),
        ],
        false,
    )
}

fn service() -> S {
    let build = OneOf(vec![
        Str,
        obj(vec![
            ("context", Str),
            ("dockerfile", Str),
            ("args", list_or_dict()),
            ("labels", list_or_dict()),
            ("cache_from", strings()),
            ("network", Str),
            ("target", Str),
            ("shm_size", Types(&["integer", "string"])),
            ("extra_hosts", list_or_dict()),
        ]),
    ]);
    let healthcheck = obj(vec![
        ("disable", Bool),
        ("interval", Dur),
        ("retries", Num),
        ("test", OneOf(vec![Str, strings()])),
        ("timeout", Dur),
        ("start_period", Dur),
        ("start_interval", Dur),
    ]);
    let networks = OneOf(vec![
        strings(),
        Named(
            Box::new(OneOf(vec![
                obj(vec![
                    ("aliases", strings()),
                    ("driver_opts", str_or_num_map()),
                    ("ipv4_address", Str),
                    ("ipv6_address", Str),
                ]),
                Types(&["null"]),
            ])),
            true,
        ),
    ]);
    let ports = list(OneOf(vec![
        PortSpec("number"),
        PortSpec("string"),
        obj(vec![
            ("mode", Str),
            ("target", Int),
            ("published", Int),
            ("protocol", Str),
        ]),
    ]));
    let volumes = list(OneOf(vec![
        Str,
        Obj(
            vec![
                ("type", Str),
                ("source", Str),
                ("target", Str),
                ("read_only", Bool),
                ("consistency", Str),
                ("bind", Obj(vec![("propagation", Str)], false, &[])),
                ("volume", Obj(vec![("nocopy", Bool)], false, &[])),
                ("tmpfs", Obj(vec![("size", Int)], false, &[])),
            ],
            false,
            &["type"],
        ),
    ]));
    let ulimits = Named(
        Box::new(OneOf(vec![
            Int,
            Obj(vec![("hard", Int), ("soft", Int)], false, &["soft", "hard"]),
        ])),
        false,
    );
    Obj(
        vec![
            ("deploy", deployment()),
            ("build", build),
            ("cap_add", strings()),
            ("cap_drop", strings()),
            ("cgroupns_mode", Str),
            ("cgroup_parent", Str),
            ("command", OneOf(vec![Str, strings()])),
            ("configs", list(file_ref())),
            ("container_name", Str),
            (
                "credential_spec",
                obj(vec![("config", Str), ("file", Str), ("registry", Str)]),
            ),
            ("depends_on", strings()),
            ("devices", strings()),
            ("dns", string_or_list()),
            ("dns_search", string_or_list()),
            ("domainname", Str),
            ("entrypoint", OneOf(vec![Str, strings()])),
            ("env_file", string_or_list()),
            ("environment", list_or_dict()),
            ("expose", list(Types(&["string", "number"]))),
            ("external_links", strings()),
            ("extra_hosts", list_or_dict()),
            ("healthcheck", healthcheck),
            ("hostname", Str),
            ("image", Str),
            ("init", Bool),
            ("ipc", Str),
            ("isolation", Str),
            ("labels", list_or_dict()),
            ("links", strings()),
            (
                "logging",
                obj(vec![
                    ("driver", Str),
                    ("options", Named(Box::new(Any), false)),
                ]),
            ),
            ("mac_address", Str),
            ("network_mode", Str),
            ("networks", networks),
            ("pid", Types(&["string", "null"])),
            ("ports", ports),
            ("privileged", Bool),
            ("read_only", Bool),
            ("restart", Str),
            ("security_opt", strings()),
            ("shm_size", Types(&["number", "string"])),
            ("secrets", list(file_ref())),
            ("sysctls", list_or_dict()),
            ("stdin_open", Bool),
            ("stop_grace_period", Dur),
            ("stop_signal", Str),
            ("tmpfs", string_or_list()),
            ("tty", Bool),
            ("ulimits", ulimits),
            ("oom_score_adj", Int),
            ("user", Str),
            ("userns_mode", Str),
            ("volumes", volumes),
            ("working_dir", Str),
        ],
        true,
        &[],
    )
}

fn external() -> S {
    OneOf(vec![Bool, obj(vec![("name", Str)])])
}

fn root() -> S {
    let network = NullableObj(
        vec![
            ("name", Str),
            ("driver", Str),
            ("driver_opts", str_or_num_map()),
            (
                "ipam",
                obj(vec![
                    ("driver", Str),
                    ("config", list(obj(vec![("subnet", Str)]))),
                ]),
            ),
            ("external", external()),
            ("internal", Bool),
            ("attachable", Bool),
            ("labels", list_or_dict()),
        ],
        true,
    );
    let volume = NullableObj(
        vec![
            ("name", Str),
            ("driver", Str),
            ("driver_opts", str_or_num_map()),
            ("external", external()),
            ("labels", list_or_dict()),
            ("x-cluster-spec", Any),
        ],
        true,
    );
    let secret = Obj(
        vec![
            ("name", Str),
            ("file", Str),
            ("external", external()),
            ("labels", list_or_dict()),
            ("driver", Str),
            ("driver_opts", str_or_num_map()),
            ("template_driver", Str),
        ],
        true,
        &[],
    );
    let config = Obj(
        vec![
            ("name", Str),
            ("file", Str),
            ("external", external()),
            ("labels", list_or_dict()),
            ("template_driver", Str),
        ],
        true,
        &[],
    );
    Obj(
        vec![
            ("version", Str),
            ("services", Named(Box::new(service()), true)),
            ("networks", Named(Box::new(network), true)),
            ("volumes", Named(Box::new(volume), true)),
            ("secrets", Named(Box::new(secret), true)),
            ("configs", Named(Box::new(config), true)),
        ],
        true,
        &[],
    )
}

/// One finding: where, whether it is a type error (they win ties), and the text.
struct Finding {
    depth: usize,
    type_error: bool,
    line: String,
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(v: &Value, ty: &str) -> bool {
    let t = json_type(v);
    t == ty || (ty == "number" && t == "integer")
}

fn human(ty: &str) -> &str {
    match ty {
        "object" => "mapping",
        "array" => "list",
        t => t,
    }
}

fn human_types(types: &[&str]) -> String {
    let names: Vec<&str> = types.iter().map(|t| human(t)).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// The JSON type a node wants first (for "must be a ..." lines).
fn primary_type(s: &S) -> Vec<&'static str> {
    match s {
        Str | Dur | Enum(_) => vec!["string"],
        Int => vec!["integer"],
        Num => vec!["number"],
        Bool => vec!["boolean"],
        Any => vec![],
        Types(t) => t.to_vec(),
        Obj(..) | Named(..) => vec!["object"],
        NullableObj(..) => vec!["object", "null"],
        List(_) => vec!["array"],
        OneOf(alts) => alts.first().map(primary_type).unwrap_or_default(),
        PortSpec(t) => vec![if *t == "number" { "number" } else { "string" }],
    }
}

fn accepts_type(s: &S, v: &Value) -> bool {
    match s {
        Any => true,
        OneOf(alts) => alts.iter().any(|a| accepts_type(a, v)),
        other => primary_type(other).iter().any(|t| type_matches(v, t)),
    }
}

fn field(path: &[String]) -> String {
    if path.is_empty() {
        "(root)".into()
    } else {
        path.join(".")
    }
}

fn valid_name(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn check(s: &S, v: &Value, path: &mut Vec<String>, out: &mut Vec<Finding>) {
    let depth = path.len().max(1);
    let type_error = |out: &mut Vec<Finding>, path: &[String], types: &[&str]| {
        out.push(Finding {
            depth,
            type_error: true,
            line: format!("{} must be a {}", field(path), human_types(types)),
        })
    };
    if !matches!(s, OneOf(_) | Any) && !accepts_type(s, v) {
        type_error(out, path, &primary_type(s));
        return;
    }
    match s {
        Dur if parse_go_duration(v.as_str().unwrap_or_default()).is_err() => {
            out.push(Finding {
                depth,
                type_error: false,
                line: format!("{} Does not match format 'duration'", field(path)),
            });
        }
        PortSpec(_) => {
            let spec = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if super::model::parse_port_spec(&spec).is_err() {
                out.push(Finding {
                    depth,
                    type_error: false,
                    line: format!("{} Does not match format 'ports'", field(path)),
                });
            }
        }
        Enum(allowed) => {
            let value = v.as_str().unwrap_or_default();
            if !allowed.contains(&value) {
                let quoted: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
                out.push(Finding {
                    depth,
                    type_error: false,
                    line: format!(
                        "{} must be one of the following: {}",
                        field(path),
                        quoted.join(", ")
                    ),
                });
            }
        }
        Obj(props, x_ok, _) | NullableObj(props, x_ok) if v.is_object() => {
            let required: &[&str] = match s {
                Obj(_, _, r) => r,
                _ => &[],
            };
            let m = v.as_object().expect("object");
            for r in required {
                if !m.contains_key(*r) {
                    out.push(Finding {
                        depth,
                        type_error: false,
                        line: format!("{} {r} is required", field(path)),
                    });
                }
            }
            for (k, val) in m {
                match props.iter().find(|(name, _)| name == k) {
                    Some((_, sub)) => {
                        path.push(k.clone());
                        check(sub, val, path, out);
                        path.pop();
                    }
                    None if *x_ok && k.starts_with("x-") => {}
                    None => out.push(Finding {
                        depth,
                        type_error: false,
                        line: format!("{} Additional property {k} is not allowed", field(path)),
                    }),
                }
            }
            let _ = x_ok;
        }
        Named(sub, restricted) => {
            for (k, val) in v.as_object().expect("object") {
                if *restricted && !valid_name(k) {
                    out.push(Finding {
                        depth,
                        type_error: false,
                        line: format!("{} Additional property {k} is not allowed", field(path)),
                    });
                    continue;
                }
                path.push(k.clone());
                check(sub, val, path, out);
                path.pop();
            }
        }
        List(sub) => {
            for (i, val) in v.as_array().expect("array").iter().enumerate() {
                path.push(i.to_string());
                check(sub, val, path, out);
                path.pop();
            }
        }
        OneOf(alts) => match alts.iter().find(|a| accepts_type(a, v)) {
            Some(alt) => check(alt, v, path, out),
            None => type_error(out, path, &primary_type(s)),
        },
        _ => {}
    }
}

/// The error Docker's schema validation prints for `config`, if any.
pub fn validate(config: &Value) -> Result<(), String> {
    let mut out = Vec::new();
    check(&root(), config, &mut Vec::new(), &mut out);
    let mut best: Option<&Finding> = None;
    for f in &out {
        best = match best {
            None => Some(f),
            Some(b)
                if f.depth > b.depth || (f.depth == b.depth && f.type_error && !b.type_error) =>
            {
                Some(f)
            }
            keep => keep,
        };
    }
    match best {
        Some(f) => Err(f.line.clone()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn errors_as_docker_prints_them() {
        let e = |v: Value| validate(&v).unwrap_err();
        assert_eq!(
            e(json!({"foo": 1})),
            "(root) Additional property foo is not allowed"
        );
        assert_eq!(
            e(json!({"services": {"web": {"image": "a", "foo": 1}}})),
            "services.web Additional property foo is not allowed"
        );
        assert_eq!(
            e(json!({"services": {"web": {"image": "a", "ports": "80"}}})),
            "services.web.ports must be a list"
        );
        assert_eq!(
            e(json!({"services": {"web": {"image": "a", "environment": "A=1"}}})),
            "services.web.environment must be a mapping"
        );
        assert_eq!(
            e(json!({"services": {"web": null}})),
            "services.web must be a mapping"
        );
        assert_eq!(
            e(json!({"services": {"web": {"image": "a", "deploy": {"replicas": "two"}}}})),
            "services.web.deploy.replicas must be a integer"
        );
        assert_eq!(
            e(json!({"services": {"web": {"image": "a", "stop_grace_period": "10"}}})),
            "services.web.stop_grace_period Does not match format 'duration'"
        );
        assert_eq!(
            e(
                json!({"services": {"web": {"image": "a", "volumes": [{"source": "a", "target": "/b"}]}}})
            ),
            "services.web.volumes.0 type is required"
        );
        assert_eq!(
            e(json!({"services": {"web": {"image": "a", "deploy": {"update_config": {"order": "x"}}}}})),
            "services.web.deploy.update_config.order must be one of the following: \"start-first\", \"stop-first\""
        );
        assert_eq!(
            e(json!({"services": {"we b": {"image": "a"}}})),
            "services Additional property we b is not allowed"
        );
        assert!(validate(
            &json!({"version": "3.8", "x-a": 1, "services": {"web": {"image": "a", "x-b": 2,
            "deploy": null, "networks": {"n": null}}}, "networks": {"n": null}})
        )
        .is_ok());
    }
}
