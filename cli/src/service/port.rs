//! `-p/--publish` as Docker parses it: the short form `[published:]target[/protocol]`
//! (ranges `8080-8081:80-81` too) and the long form
//! `published=8080,target=80,protocol=udp,mode=host`.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// Parses one `--publish` value into `PortConfig` objects (several for a range).
pub fn parse_publish(value: &str) -> Result<Vec<Value>> {
    if value.contains('=') {
        return parse_long(value).map(|p| vec![p]);
    }
    let (ports, proto) = match value.split_once('/') {
        Some((p, proto)) => (p, proto.to_lowercase()),
        None => (value, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        bail!("invalid proto: {proto}");
    }
    let (published, target) = match ports.rsplit_once(':') {
        Some((p, t)) => {
            if p.contains(':') {
                bail!("hostip is not supported: {value}");
            }
            (Some(p), t)
        }
        None => (None, ports),
    };
    let (t0, t1) =
        parse_range(target).with_context(|| format!("invalid containerPort: {target}"))?;
    let pubs = match published {
        Some(p) if !p.is_empty() => {
            Some(parse_range(p).with_context(|| format!("invalid hostPort: {p}"))?)
        }
        _ => None,
    };
    if let Some((p0, p1)) = pubs {
        if p1 - p0 != t1 - t0 && p1 != p0 {
            bail!(
                "invalid ranges specified for container and host Ports: {target} and {}",
                published.unwrap_or("")
            );
        }
    }
    let mut out = Vec::new();
    for (i, t) in (t0..=t1).enumerate() {
        let mut port = serde_json::Map::new();
        port.insert("Protocol".into(), json!(proto));
        port.insert("TargetPort".into(), json!(t));
        if let Some((p0, p1)) = pubs {
            let p = if p1 == p0 { p0 } else { p0 + i as u32 };
            port.insert("PublishedPort".into(), json!(p));
        }
        port.insert("PublishMode".into(), json!("ingress"));
        out.push(Value::Object(port));
    }
    Ok(out)
}

fn parse_range(s: &str) -> Result<(u32, u32)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u32 = a.parse()?;
    let b: u32 = b.parse()?;
    if a == 0 || b < a || b > 65535 {
        bail!("invalid port range");
    }
    Ok((a, b))
}

fn parse_long(value: &str) -> Result<Value> {
    let mut port = serde_json::Map::new();
    let mut proto = "tcp".to_string();
    let mut mode = "ingress".to_string();
    for field in value.split(',') {
        let (k, v) = field
            .split_once('=')
            .with_context(|| format!("invalid field {field}"))?;
        match k.to_lowercase().as_str() {
            "mode" => {
                if v != "ingress" && v != "host" {
                    bail!("invalid publish mode value ({v}): must be either 'ingress' or 'host'");
                }
                mode = v.to_string();
            }
            "target" => {
                let t: u32 = v.parse().with_context(|| {
                    format!("invalid target port ({v}): value must be an integer")
                })?;
                port.insert("TargetPort".into(), json!(t));
            }
            "published" => {
                let p: u32 = v.parse().with_context(|| {
                    format!("invalid published port ({v}): value must be an integer")
                })?;
                port.insert("PublishedPort".into(), json!(p));
            }
            "protocol" => {
                if !matches!(v, "tcp" | "udp" | "sctp") {
                    bail!("invalid protocol value '{v}'");
                }
                proto = v.to_string();
            }
            _ => bail!("invalid field key {k}"),
        }
    }
    if !port.contains_key("TargetPort") {
        bail!("missing mandatory field 'target'");
    }
    port.insert("Protocol".into(), json!(proto));
    port.insert("PublishMode".into(), json!(mode));
    Ok(Value::Object(port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_forms() {
        assert_eq!(
            parse_publish("8080:80").unwrap(),
            vec![
                json!({"Protocol":"tcp","TargetPort":80,"PublishedPort":8080,"PublishMode":"ingress"})
            ]
        );
        assert_eq!(
            parse_publish("53/udp").unwrap(),
            vec![json!({"Protocol":"udp","TargetPort":53,"PublishMode":"ingress"})]
        );
        assert_eq!(
            parse_publish("published=9090,target=90,protocol=udp,mode=host").unwrap(),
            vec![
                json!({"Protocol":"udp","TargetPort":90,"PublishedPort":9090,"PublishMode":"host"})
            ]
        );
        assert_eq!(parse_publish("8080-8081:80-81").unwrap().len(), 2);
        assert!(parse_publish("published=1").is_err());
        assert!(parse_publish("x:80").is_err());
    }
}
