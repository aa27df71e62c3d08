//! Every string value of a compose file through [`template::substitute`], with the
//! docker CLI's casts: a value that changed and sits at a typed path (replicas,
//! ports' target, read_only, ...) becomes a number or a bool (`loader/interpolate.go`).

use serde_json::{Map, Value};

use super::template::{substitute, InvalidTemplate};

/// How the value at a path is cast after substitution.
#[derive(Clone, Copy)]
enum Cast {
    Int,
    Float,
    Bool,
}

/// Docker's `interpolateTypeCastMapping`; `*` any key, `[]` any list item.
const CASTS: &[(&str, Cast)] = &[
    ("services.*.configs.[].mode", Cast::Int),
    ("services.*.secrets.[].mode", Cast::Int),
    ("services.*.healthcheck.retries", Cast::Int),
    ("services.*.healthcheck.disable", Cast::Bool),
    ("services.*.deploy.replicas", Cast::Int),
    ("services.*.deploy.update_config.parallelism", Cast::Int),
    (
        "services.*.deploy.update_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.rollback_config.parallelism", Cast::Int),
    (
        "services.*.deploy.rollback_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.restart_policy.max_attempts", Cast::Int),
    (
        "services.*.deploy.placement.max_replicas_per_node",
        Cast::Int,
    ),
    ("services.*.ports.[].target", Cast::Int),
    ("services.*.ports.[].published", Cast::Int),
    ("services.*.ulimits.*", Cast::Int),
    ("services.*.ulimits.*.hard", Cast::Int),
    ("services.*.ulimits.*.soft", Cast::Int),
    ("services.*.privileged", Cast::Bool),
    ("services.*.oom_score_adj", Cast::Int),
    ("services.*.read_only", Cast::Bool),
    ("services.*.stdin_open", Cast::Bool),
    ("services.*.tty", Cast::Bool),
    ("services.*.volumes.[].read_only", Cast::Bool),
    ("services.*.volumes.[].volume.nocopy", Cast::Bool),
    ("networks.*.external", Cast::Bool),
    ("networks.*.internal", Cast::Bool),
    ("networks.*.attachable", Cast::Bool),
    ("volumes.*.external", Cast::Bool),
    ("secrets.*.external", Cast::Bool),
    ("configs.*.external", Cast::Bool),
];

fn cast_for(path: &[String]) -> Option<Cast> {
    CASTS.iter().find_map(|(pattern, cast)| {
        let parts: Vec<&str> = pattern.split('.').collect();
        let hit =
            parts.len() == path.len() && parts.iter().zip(path).all(|(p, k)| *p == "*" || p == k);
        hit.then_some(*cast)
    })
}

/// Go's `%#v` of a string: double-quoted with Go escapes.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn cast(value: &str, how: Cast) -> Result<Value, String> {
    match how {
        Cast::Int => value
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("strconv.Atoi: parsing {}: invalid syntax", go_quote(value))),
        Cast::Float => value.parse::<f64>().map(Value::from).map_err(|_| {
            format!(
                "strconv.ParseFloat: parsing {}: invalid syntax",
                go_quote(value)
            )
        }),
        Cast::Bool => match value.to_lowercase().as_str() {
            "y" | "yes" | "true" | "on" => Ok(Value::Bool(true)),
            "n" | "no" | "false" | "off" => Ok(Value::Bool(false)),
            _ => Err(format!("invalid boolean: {value}")),
        },
    }
}

/// Docker's `Interpolate` over a whole file; errors in its words.
pub fn interpolate(
    config: &Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Value, String> {
    let mut path = Vec::new();
    walk(config, &mut path, lookup)
}

fn walk(
    value: &Value,
    path: &mut Vec<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Value, String> {
    match value {
        Value::String(s) => {
            let new = substitute(s, lookup).map_err(|InvalidTemplate(t)| {
                format!(
                    "invalid interpolation format for {}: {}; you may need to escape any $ with another $",
                    path.join("."),
                    go_quote(&t)
                )
            })?;
            if &new == s {
                return Ok(value.clone());
            }
            match cast_for(path) {
                None => Ok(Value::String(new)),
                Some(how) => cast(&new, how).map_err(|e| {
                    format!(
                        "error while interpolating {}: failed to cast to expected type: {e}",
                        path.join(".")
                    )
                }),
            }
        }
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                path.push(k.clone());
                let r = walk(v, path, lookup);
                path.pop();
                out.insert(k.clone(), r?);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for v in items {
                path.push("[]".into());
                let r = walk(v, path, lookup);
                path.pop();
                out.push(r?);
            }
            Ok(Value::Array(out))
        }
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(v: Value) -> Result<Value, String> {
        interpolate(&v, &|k| match k {
            "N" => Some("3".into()),
            "T" => Some("yes".into()),
            "X" => Some("abc".into()),
            _ => None,
        })
    }

    #[test]
    fn casts_only_changed_values_at_typed_paths() {
        let out = run(json!({"services": {"web": {
            "image": "a:${N}", "read_only": "$T", "deploy": {"replicas": "${N}"},
            "ports": [{"target": "$N", "published": "80"}], "tty": "true"}}}))
        .unwrap();
        assert_eq!(
            out,
            json!({"services": {"web": {"image": "a:3", "read_only": true,
                "deploy": {"replicas": 3}, "ports": [{"target": 3, "published": "80"}],
                "tty": "true"}}})
        );
    }

    #[test]
    fn errors_in_dockers_words() {
        assert_eq!(
            run(json!({"services": {"web": {"image": "${NOPE:?set it}"}}})).unwrap_err(),
            "invalid interpolation format for services.web.image: \"required variable NOPE is missing a value: set it\"; you may need to escape any $ with another $"
        );
        assert_eq!(
            run(json!({"services": {"web": {"command": ["a", "$"]}}})).unwrap_err(),
            "invalid interpolation format for services.web.command.[]: \"$\"; you may need to escape any $ with another $"
        );
        assert_eq!(
            run(json!({"services": {"web": {"deploy": {"replicas": "$X"}}}})).unwrap_err(),
            "error while interpolating services.web.deploy.replicas: failed to cast to expected type: strconv.Atoi: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            run(json!({"services": {"web": {"tty": "$X"}}})).unwrap_err(),
            "error while interpolating services.web.tty: failed to cast to expected type: invalid boolean: abc"
        );
    }
}
