//! A compose file's bytes to a JSON tree, as the docker CLI's `loader.ParseYAML`
//! (yaml.v3): anchors and `<<` merge keys applied, keys made strings, and its error
//! lines (`yaml: line 3: mapping values are not allowed in this context`).
//!
//! The parser is libyaml's (through serde_yaml_ng) where Docker's is yaml.v3, a Go
//! port of libyaml: the problem texts are the same, the line can differ by one for
//! some errors, and errors that yaml.v3 reports after parsing (duplicate keys) read
//! differently.

use serde_json::{Map, Number, Value};
use serde_yaml_ng::Value as Yaml;

fn key_string(k: &Yaml) -> String {
    match k {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Null => "<nil>".into(),
        Yaml::Tagged(t) => key_string(&t.value),
        other => format!("{other:?}"),
    }
}

fn to_json(y: Yaml) -> Value {
    match y {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Yaml::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(key_string(&k), to_json(v));
            }
            Value::Object(out)
        }
        Yaml::Tagged(t) => to_json(t.value),
    }
}

/// `yaml: line N: problem`, the way yaml.v3 words libyaml's errors: its line is the
/// context's (`while parsing a block mapping`) when there is one, else the problem's,
/// counted from 0 for parser errors and from 1 for scanner errors (yaml.v3's
/// `parser.fail`). serde_yaml_ng prints `problem at line P column C, context at line
/// N column M` (1-based; the context's mark left out when it is the problem's).
fn yaml_error(e: &serde_yaml_ng::Error) -> String {
    let text = e.to_string();
    let problem = text.split(" at line ").next().unwrap_or(&text).to_string();
    let line_after =
        |s: &str| -> Option<usize> { s.split_once("at line ")?.1.split(' ').next()?.parse().ok() };
    let (head, context) = match text.split_once(", while ") {
        Some((h, c)) => (h, Some(c)),
        None => (text.as_str(), None),
    };
    let scanner = context.is_none_or(|c| c.starts_with("scanning"));
    let problem_line = line_after(head).or(e.location().map(|l| l.line()));
    let context_line = context.and_then(line_after).or(context.and(problem_line));
    // 1-based lines from the text; yaml.v3 prints the 0-based mark (+1 for scanners).
    let pick = |l: usize| if scanner { l } else { l - 1 };
    let line = [context_line, problem_line]
        .into_iter()
        .flatten()
        .find(|l| *l > 1)
        .map(pick);
    match line {
        Some(l) => format!("yaml: line {l}: {problem}"),
        None => format!("yaml: {problem}"),
    }
}

/// yaml.v3 reads a plain `0440` as the octal number 288 (YAML 1.1); libyaml's YAML
/// 1.2 leaves it a string. File modes are where compose files write octal, so there
/// (secrets' and configs' `mode`) such a string is read as Go's `ParseInt(s, 0, 64)`
/// would. (A quoted `"0440"` is read the same way here; Docker would refuse it.)
fn octal_modes(v: &mut Value) {
    let services = v.get_mut("services").and_then(Value::as_object_mut);
    for svc in services.into_iter().flat_map(|m| m.values_mut()) {
        for key in ["secrets", "configs"] {
            let refs = svc.get_mut(key).and_then(Value::as_array_mut);
            for r in refs.into_iter().flatten() {
                let Some(mode) = r.get_mut("mode") else {
                    continue;
                };
                let Some(text) = mode.as_str() else { continue };
                let parsed = if let Some(o) = text.strip_prefix("0o") {
                    i64::from_str_radix(o, 8).ok()
                } else if let Some(h) = text.strip_prefix("0x") {
                    i64::from_str_radix(h, 16).ok()
                } else if text.len() > 1 && text.starts_with('0') {
                    i64::from_str_radix(&text[1..], 8).ok()
                } else {
                    None
                };
                if let Some(n) = parsed {
                    *mode = Value::from(n);
                }
            }
        }
    }
}

/// Parse one file; the top level must be a mapping.
pub fn parse(bytes: &[u8]) -> Result<Value, String> {
    let text = String::from_utf8_lossy(bytes);
    let mut doc: Yaml = if text.trim().is_empty() {
        Yaml::Null
    } else {
        serde_yaml_ng::from_str(&text).map_err(|e| yaml_error(&e))?
    };
    doc.apply_merge().map_err(|e| yaml_error(&e))?;
    match to_json(doc) {
        mut v @ Value::Object(_) => {
            octal_modes(&mut v);
            Ok(v)
        }
        _ => Err("top-level object must be a mapping".into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn anchors_merge_keys_and_errors() {
        let v = parse(
            b"x-base: &base\n  image: busybox:latest\n  environment: {A: '1'}\nservices:\n  web:\n    <<: *base\n    command: [\"true\"]\n",
        )
        .unwrap();
        assert_eq!(
            v["services"]["web"],
            json!({"image": "busybox:latest", "environment": {"A": "1"}, "command": ["true"]})
        );
        assert_eq!(
            parse(b"services:\n  web:\n    image: a: b\n").unwrap_err(),
            "yaml: line 3: mapping values are not allowed in this context"
        );
        // A parser error: yaml.v3 names the line of the mapping it was parsing, counted
        // from 0 (what `docker stack deploy` printed for this file).
        assert_eq!(
            parse(b"version: \"3.8\"\nservices:\n  web:\n    image: busybox:latest\n    ports:\n      - \"8080:80\"\n     networks: [front]\n").unwrap_err(),
            "yaml: line 3: did not find expected key"
        );
        assert_eq!(
            parse(b"- a\n").unwrap_err(),
            "top-level object must be a mapping"
        );
        assert_eq!(
            parse(b"").unwrap_err(),
            "top-level object must be a mapping"
        );
    }
}
