//! Several files' canonical models into one, as the docker CLI's `loader/merge.go`
//! (mergo with override and append): a later file's non-empty value wins, maps merge
//! key by key, lists append, except `command`/`entrypoint` (replaced), `ports` (keyed
//! by published port), `volumes` (by target), `secrets`/`configs` (by source), which
//! come out sorted by that key. Top-level networks, volumes, secrets and configs are
//! replaced whole, by name.

use serde_json::{Map, Value};

/// Go's "empty value" as mergo sees it.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(_) => false,
    }
}

fn keyed(base: &[Value], over: &[Value], key: &str) -> Vec<Value> {
    let k = |v: &Value| -> (u8, String, i64) {
        match &v[key] {
            Value::Number(n) => (0, String::new(), n.as_i64().unwrap_or(0)),
            Value::String(s) => (1, s.clone(), 0),
            _ => (0, String::new(), 0),
        }
    };
    let mut m: Vec<((u8, String, i64), Value)> = Vec::new();
    for v in base.iter().chain(over) {
        let key = k(v);
        match m.iter_mut().find(|(mk, _)| *mk == key) {
            Some(slot) => slot.1 = v.clone(),
            None => m.push((key, v.clone())),
        }
    }
    m.sort_by(|a, b| a.0.cmp(&b.0));
    m.into_iter().map(|(_, v)| v).collect()
}

fn merge_value(path: &str, base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, ov) in o {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                merge_field(&sub, b, k, ov);
            }
        }
        (b, o) => {
            if !is_empty(o) {
                *b = o.clone();
            }
        }
    }
}

fn merge_field(path: &str, base: &mut Map<String, Value>, key: &str, over: &Value) {
    let Some(b) = base.get_mut(key) else {
        if !is_empty(over) || over.is_object() {
            base.insert(key.into(), over.clone());
        }
        return;
    };
    match path {
        "command" | "entrypoint" => {
            if !is_empty(over) {
                *b = over.clone();
            }
        }
        "ports" | "volumes" | "secrets" | "configs" => {
            let key = match path {
                "ports" => "published",
                "volumes" => "target",
                _ => "source",
            };
            let empty = Vec::new();
            let merged = keyed(
                b.as_array().unwrap_or(&empty),
                over.as_array().unwrap_or(&empty),
                key,
            );
            *b = Value::Array(merged);
        }
        "networks" => {
            // `mergeServiceNetworkConfig`: aliases replaced, addresses when set
            let (Value::Object(bm), Value::Object(om)) = (b, over) else {
                return;
            };
            for (net, oc) in om {
                match (bm.get_mut(net), oc) {
                    (Some(Value::Object(bc)), Value::Object(oc)) => {
                        bc.insert(
                            "aliases".into(),
                            oc.get("aliases").cloned().unwrap_or(Value::Null),
                        );
                        for a in ["ipv4_address", "ipv6_address"] {
                            if let Some(v) = oc.get(a).filter(|v| !is_empty(v)) {
                                bc.insert(a.into(), v.clone());
                            }
                        }
                    }
                    (Some(slot @ Value::Null), oc) => *slot = oc.clone(),
                    (Some(_), _) => {}
                    (None, oc) => {
                        bm.insert(net.clone(), oc.clone());
                    }
                }
            }
        }
        "deploy.replicas" => {
            if !over.is_null() {
                *b = over.clone();
            }
        }
        _ => match (b, over) {
            (Value::Array(bl), Value::Array(ol)) => bl.extend(ol.iter().cloned()),
            (b @ Value::Object(_), Value::Object(_)) => merge_value(path, b, over),
            (b, o) => {
                if !is_empty(o) {
                    *b = o.clone();
                }
            }
        },
    }
}

/// Merge `over` (a later file) into `base`, both maps of name to service.
pub fn merge_services(base: &mut Map<String, Value>, over: &Map<String, Value>) {
    for (name, svc) in over {
        match base.get_mut(name) {
            Some(b) => merge_value("", b, svc),
            None => {
                base.insert(name.clone(), svc.clone());
            }
        }
    }
}

/// `mergo.Map` with override on networks/volumes/secrets/configs: whole entries.
pub fn merge_objects(base: &mut Map<String, Value>, over: &Map<String, Value>) {
    for (name, v) in over {
        base.insert(name.clone(), v.clone());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn services_merge_like_docker() {
        let mut base = json!({"web": {
            "image": "a:1", "command": ["x", "y"], "read_only": true,
            "environment": {"A": "1", "B": "2"}, "cap_add": ["NET_ADMIN"],
            "ports": [{"target": 80, "published": 8080}, {"target": 443, "published": 8443}],
            "volumes": [{"type": "volume", "source": "d", "target": "/d"}],
            "networks": {"front": {"aliases": ["w"]}, "back": null},
            "deploy": {"replicas": 3, "labels": {"l": "1"}}}});
        let over = json!({"web": {
            "image": "a:2", "command": ["z"], "read_only": false,
            "environment": {"B": "3", "C": null}, "cap_add": ["SYS_ADMIN"],
            "ports": [{"target": 81, "published": 8080}],
            "volumes": [{"type": "bind", "source": "/x", "target": "/a"}],
            "networks": {"front": {"aliases": ["v"]}, "extra": null},
            "deploy": {"replicas": 0}}, "db": {"image": "db"}});
        merge_services(base.as_object_mut().unwrap(), over.as_object().unwrap());
        assert_eq!(
            base,
            json!({"web": {
                "image": "a:2", "command": ["z"], "read_only": true,
                "environment": {"A": "1", "B": "3"}, "cap_add": ["NET_ADMIN", "SYS_ADMIN"],
                "ports": [{"target": 81, "published": 8080}, {"target": 443, "published": 8443}],
                "volumes": [{"type": "bind", "source": "/x", "target": "/a"},
                            {"type": "volume", "source": "d", "target": "/d"}],
                "networks": {"front": {"aliases": ["v"]}, "back": null, "extra": null},
                "deploy": {"replicas": 0, "labels": {"l": "1"}}},
             "db": {"image": "db"}})
        );
    }
}
