//! `--mount type=volume|bind|tmpfs,source=..,target=..,readonly` as Docker parses it
//! into a `Mount` object.

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

fn parse_bool(k: &str, v: Option<&str>) -> Result<bool> {
    match v.map(str::to_lowercase).as_deref() {
        None | Some("1") | Some("true") => Ok(true),
        Some("0") | Some("false") => Ok(false),
        Some(other) => bail!("invalid value for {k}: {other}"),
    }
}

/// Parses one `--mount` value.
pub fn parse_mount(value: &str) -> Result<Value> {
    let mut m = Map::new();
    let mut kind = "volume".to_string();
    let mut volume_opts = Map::new();
    let mut bind_opts = Map::new();
    let mut tmpfs_opts = Map::new();
    let mut labels = Map::new();
    for field in value.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v)),
            None => (field.to_lowercase(), None),
        };
        let need =
            || v.with_context(|| format!("invalid field '{field}' must be a key=value pair"));
        match k.as_str() {
            "type" => kind = need()?.to_lowercase(),
            "source" | "src" => {
                m.insert("Source".into(), json!(need()?));
            }
            "target" | "dst" | "destination" => {
                m.insert("Target".into(), json!(need()?));
            }
            "readonly" | "ro" => {
                if parse_bool(&k, v)? {
                    m.insert("ReadOnly".into(), json!(true));
                }
            }
            "consistency" => {
                m.insert("Consistency".into(), json!(need()?));
            }
            "bind-propagation" => {
                bind_opts.insert("Propagation".into(), json!(need()?));
            }
            "volume-nocopy" => {
                volume_opts.insert("NoCopy".into(), json!(parse_bool(&k, v)?));
            }
            "volume-label" => {
                let (lk, lv) = need()?.split_once('=').unwrap_or((need()?, ""));
                labels.insert(lk.into(), json!(lv));
            }
            "volume-driver" => {
                volume_opts.insert("DriverConfig".into(), json!({"Name": need()?}));
            }
            "tmpfs-size" => {
                let n = crate::units::size::ram_in_bytes(need()?)?;
                tmpfs_opts.insert("SizeBytes".into(), json!(n));
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(need()?, 8)
                    .with_context(|| format!("invalid value for {k}: {}", need().unwrap_or("")))?;
                tmpfs_opts.insert("Mode".into(), json!(mode));
            }
            _ => bail!("unexpected key '{k}' in '{field}'"),
        }
    }
    if !["volume", "bind", "tmpfs", "npipe", "cluster"].contains(&kind.as_str()) {
        bail!("invalid value for 'type': {kind}");
    }
    if !m.contains_key("Target") {
        bail!("target is required");
    }
    if kind == "bind" && !m.contains_key("Source") {
        bail!("source is required when specifying bind mount");
    }
    if kind == "tmpfs" && m.contains_key("Source") {
        bail!("source must not be specified for tmpfs mount");
    }
    if !labels.is_empty() {
        volume_opts.insert("Labels".into(), Value::Object(labels));
    }
    m.insert("Type".into(), json!(kind));
    if !volume_opts.is_empty() {
        m.insert("VolumeOptions".into(), Value::Object(volume_opts));
    }
    if !bind_opts.is_empty() {
        m.insert("BindOptions".into(), Value::Object(bind_opts));
    }
    if !tmpfs_opts.is_empty() {
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs_opts));
    }
    Ok(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_mount_forms() {
        assert_eq!(
            parse_mount("type=volume,src=data,dst=/data").unwrap(),
            json!({"Type":"volume","Source":"data","Target":"/data"})
        );
        assert_eq!(
            parse_mount("type=bind,src=/tmp,dst=/hosttmp,readonly").unwrap(),
            json!({"Type":"bind","Source":"/tmp","Target":"/hosttmp","ReadOnly":true})
        );
        assert_eq!(
            parse_mount("type=tmpfs,dst=/t,tmpfs-size=64m").unwrap(),
            json!({"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":67108864}})
        );
        assert!(parse_mount("type=bind,dst=/x").is_err());
        assert!(parse_mount("src=x").is_err());
    }
}
