//! The value parsers of the service flags that are more than a string: secrets and
//! configs, network attachments, placement preferences, ulimits, capabilities, env
//! files, DNS servers. Each gives Docker's JSON and fails with Docker's words
//! (docker/cli `opts/`, `opts/swarmopts/`, `cli/command/service/opts.go`).

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

/// `--secret`/`--config`: `name` or `source=name,target=t,uid=0,gid=0,mode=0444`,
/// as a reference without its ID (filled in by [`super::resolve`]).
pub fn parse_file_ref(kind: &str, value: &str) -> Result<Value> {
    let name_key = if kind == "secret" {
        "SecretName"
    } else {
        "ConfigName"
    };
    let mut source = String::new();
    let mut file = json!({"Name": "", "UID": "0", "GID": "0", "Mode": 0o444});
    let fields: Vec<&str> = value.split(',').collect();
    if fields.len() == 1 && !fields[0].contains('=') {
        source = fields[0].to_string();
    } else {
        for field in fields {
            let (k, v) = match field.split_once('=') {
                Some((k, v)) if !k.is_empty() => (k, v),
                _ => bail!("invalid field '{field}' must be a key=value pair"),
            };
            match k.to_lowercase().as_str() {
                "source" | "src" => source = v.to_string(),
                "target" => file["Name"] = json!(v),
                "uid" => file["UID"] = json!(v),
                "gid" => file["GID"] = json!(v),
                "mode" => file["Mode"] = json!(parse_mode(v)?),
                _ if kind == "secret" => bail!("invalid field in secret request: {k}"),
                _ => bail!("invalid field in config request: {k}"),
            }
        }
    }
    if source.is_empty() {
        bail!("source is required");
    }
    if file["Name"] == "" {
        file["Name"] = json!(source);
    }
    Ok(json!({"File": file, name_key: source}))
}

/// Go's `strconv.ParseUint(v, 0, 32)`: `0444` and `0o444` are octal, `0x` hex.
fn parse_mode(v: &str) -> Result<u32> {
    let parsed = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u32::from_str_radix(h, 16)
    } else if let Some(o) = v.strip_prefix("0o").or_else(|| v.strip_prefix("0O")) {
        u32::from_str_radix(o, 8)
    } else if v.len() > 1 && v.starts_with('0') {
        u32::from_str_radix(&v[1..], 8)
    } else {
        v.parse()
    };
    parsed.map_err(|_| {
        anyhow::anyhow!(
            "invalid mode specified: strconv.ParseUint: parsing \"{v}\": invalid syntax"
        )
    })
}

/// `--network name` or `--network name=n,alias=a,driver-opt=k=v`: a
/// `NetworkAttachmentConfig` whose `Target` is still the name or ID given.
pub fn parse_network(value: &str) -> Result<Value> {
    let long = value.split(',').any(|f| {
        f.split_once('=')
            .is_some_and(|(k, v)| !k.is_empty() && !v.is_empty())
    });
    if !long {
        return Ok(json!({"Target": value}));
    }
    let mut target = String::new();
    let mut aliases = Vec::new();
    let mut driver_opts = Map::new();
    for field in value.split(',') {
        let lower = field.to_lowercase();
        let (k, v) = match lower.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => (k.trim().to_string(), v.trim().to_string()),
            _ => bail!("invalid field {field}"),
        };
        match k.as_str() {
            "name" => target = v,
            "alias" => aliases.push(v),
            "driver-opt" => {
                let (dk, dv) = v.split_once('=').with_context(|| {
                    format!("invalid key value pair format in driver options: {v}")
                })?;
                driver_opts.insert(dk.trim().to_string(), json!(dv.trim()));
            }
            "ip" | "ip6" | "mac-address" | "link-local-ip" | "gw-priority" => {}
            _ => bail!("invalid field key {k}"),
        }
    }
    if target.is_empty() {
        bail!("network name/id is not specified");
    }
    let mut n = json!({ "Target": target });
    if !aliases.is_empty() {
        n["Aliases"] = json!(aliases);
    }
    if !driver_opts.is_empty() {
        n["DriverOpts"] = Value::Object(driver_opts);
    }
    Ok(n)
}

/// `--placement-pref spread=node.labels.dc`.
pub fn parse_placement_pref(value: &str) -> Result<Value> {
    match value.split_once('=') {
        Some((strategy, arg)) if !strategy.is_empty() => {
            if strategy != "spread" {
                bail!("unsupported placement preference {strategy} (only spread is supported)");
            }
            Ok(json!({"Spread": {"SpreadDescriptor": arg}}))
        }
        _ => bail!("placement preference must be of the format \"<strategy>=<arg>\""),
    }
}

const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `--ulimit nofile=1024[:2048]` (go-units `ParseUlimit`): `{Name, Hard, Soft}`.
pub fn parse_ulimit(value: &str) -> Result<Value> {
    let Some((name, limits)) = value.split_once('=') else {
        bail!("invalid ulimit argument: {value}");
    };
    if !ULIMITS.contains(&name) {
        bail!("invalid ulimit type: {name}");
    }
    let int = |s: &str| -> Result<i64> {
        s.parse()
            .map_err(|_| anyhow::anyhow!("strconv.ParseInt: parsing \"{s}\": invalid syntax"))
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (int(s)?, int(h)?),
        None => (int(limits)?, int(limits)?),
    };
    if hard != -1 && soft > hard {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(json!({"Name": name, "Hard": hard, "Soft": soft}))
}

/// Ulimits by name, sorted, the later value of a name winning (`UlimitOpt`).
pub fn ulimit_list(values: &[String]) -> Result<Vec<Value>> {
    let mut by_name = BTreeMap::new();
    for v in values {
        let u = parse_ulimit(v)?;
        by_name.insert(u["Name"].as_str().unwrap_or_default().to_string(), u);
    }
    Ok(by_name.into_values().collect())
}

/// Docker's `NormalizeCapability`: upper case, `CAP_` prefixed (but `ALL`, `RESET`).
pub fn normalize_cap(c: &str) -> String {
    let c = c.trim().to_uppercase();
    if c == "ALL" || c == "RESET" || c.starts_with("CAP_") {
        c
    } else {
        format!("CAP_{c}")
    }
}

/// Docker's `EffectiveCapAddCapDrop` for `create`: add wins over drop, `ALL` alone
/// stands for all, `RESET` is dropped, both lists sorted.
pub fn effective_caps(add: &[String], drop: &[String]) -> (Vec<String>, Vec<String>) {
    let norm = |l: &[String]| -> std::collections::BTreeSet<String> {
        let s: std::collections::BTreeSet<String> = l.iter().map(|c| normalize_cap(c)).collect();
        if s.contains("ALL") {
            ["ALL".to_string()].into()
        } else {
            s
        }
    };
    let (a, d) = (norm(add), norm(drop));
    let cap_drop = d
        .iter()
        .filter(|c| !a.contains(*c) && *c != "RESET")
        .cloned()
        .collect();
    let cap_add = a.iter().filter(|c| *c != "RESET").cloned().collect();
    (cap_add, cap_drop)
}

/// Docker's `updateCapabilities`: adding a dropped capability un-drops it, dropping an
/// added one un-adds it, `RESET` clears the list first.
pub fn update_caps(
    cur_add: &[String],
    cur_drop: &[String],
    add: &[String],
    drop: &[String],
) -> (Vec<String>, Vec<String>) {
    use std::collections::BTreeSet;
    let set = |l: &[String]| -> BTreeSet<String> { l.iter().map(|c| normalize_cap(c)).collect() };
    let (mut cap_add, mut cap_drop) = (set(cur_add), set(cur_drop));
    let mut to_add = set(add);
    let mut to_drop = set(drop);
    if to_add.remove("RESET") {
        cap_add.clear();
    }
    if to_drop.remove("RESET") {
        cap_drop.clear();
    }
    for c in &to_drop {
        if !to_add.contains(c) && !cap_add.remove(c) {
            cap_drop.insert(c.clone());
        }
    }
    for c in &to_add {
        if !cap_drop.remove(c) {
            cap_add.insert(c.clone());
        }
    }
    let list = |s: BTreeSet<String>| -> Vec<String> {
        if s.contains("ALL") {
            vec!["ALL".into()]
        } else {
            s.into_iter().collect()
        }
    };
    (list(cap_add), list(cap_drop))
}

/// `--env-file`: `KEY=VALUE` lines, `#` comments and blank lines skipped, a bare
/// `KEY` taken from our environment (left out when unset), as `ReadKVEnvStrings`.
pub fn read_env_file(path: &str) -> Result<Vec<String>> {
    let text =
        std::fs::read(path).with_context(|| format!("open {path}: no such file or directory"))?;
    let text = String::from_utf8(text)
        .map_err(|_| anyhow::anyhow!("env file {path} contains invalid utf8 bytes"))?;
    parse_env_lines(path, &text, |k| std::env::var(k).ok())
}

pub(crate) fn parse_env_lines(
    path: &str,
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (key, value) = match trimmed.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (trimmed, None),
        };
        if key.is_empty() {
            bail!("no variable name on line '{line}'");
        }
        if key.contains(char::is_whitespace) {
            bail!("variable '{key}' contains whitespaces");
        }
        let _ = path;
        match value {
            Some(v) => out.push(format!("{key}={v}")),
            None => {
                if let Some(v) = lookup(key) {
                    out.push(format!("{key}={v}"));
                }
            }
        }
    }
    Ok(out)
}

/// `--dns`/`--dns-add`: an IP address (`ValidateIPAddress`), printed canonically.
pub fn parse_dns_server(value: &str) -> Result<String> {
    value
        .trim()
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| anyhow::anyhow!("IP address is not correctly formatted: {value}"))
}

/// `k=v` list items as a map (`ConvertKVStringsToMap`: a bare key maps to "").
pub fn kv_map(items: &[String]) -> Map<String, Value> {
    let mut m = Map::new();
    for i in items {
        let (k, v) = i.split_once('=').unwrap_or((i, ""));
        m.insert(k.to_string(), json!(v));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_and_config_references() {
        assert_eq!(
            parse_file_ref("secret", "db").unwrap(),
            json!({"File":{"Name":"db","UID":"0","GID":"0","Mode":292},"SecretName":"db"})
        );
        assert_eq!(
            parse_file_ref(
                "config",
                "source=site,target=/etc/nginx.conf,uid=33,mode=0440"
            )
            .unwrap(),
            json!({"File":{"Name":"/etc/nginx.conf","UID":"33","GID":"0","Mode":288},"ConfigName":"site"})
        );
        let err = |k, v| parse_file_ref(k, v).unwrap_err().to_string();
        assert_eq!(err("secret", "target=x"), "source is required");
        assert_eq!(
            err("secret", "src=a,foo=b"),
            "invalid field in secret request: foo"
        );
        assert_eq!(
            err("config", "src=a,foo=b"),
            "invalid field in config request: foo"
        );
        assert_eq!(
            err("secret", "src=a,bare"),
            "invalid field 'bare' must be a key=value pair"
        );
    }

    #[test]
    fn networks_prefs_ulimits() {
        assert_eq!(parse_network("front").unwrap(), json!({"Target":"front"}));
        assert_eq!(
            parse_network("name=front,alias=web,driver-opt=k=v").unwrap(),
            json!({"Target":"front","Aliases":["web"],"DriverOpts":{"k":"v"}})
        );
        assert_eq!(
            parse_network("alias=web,x=y").unwrap_err().to_string(),
            "invalid field key x"
        );
        assert_eq!(
            parse_placement_pref("spread=node.labels.dc").unwrap(),
            json!({"Spread":{"SpreadDescriptor":"node.labels.dc"}})
        );
        assert_eq!(
            parse_placement_pref("pack=x").unwrap_err().to_string(),
            "unsupported placement preference pack (only spread is supported)"
        );
        assert_eq!(
            parse_placement_pref("spread").unwrap_err().to_string(),
            "placement preference must be of the format \"<strategy>=<arg>\""
        );
        assert_eq!(
            parse_ulimit("nofile=1024:2048").unwrap(),
            json!({"Name":"nofile","Hard":2048,"Soft":1024})
        );
        assert_eq!(
            parse_ulimit("nproc=64").unwrap(),
            json!({"Name":"nproc","Hard":64,"Soft":64})
        );
        assert_eq!(
            parse_ulimit("bogus=1").unwrap_err().to_string(),
            "invalid ulimit type: bogus"
        );
        assert_eq!(
            parse_ulimit("nofile").unwrap_err().to_string(),
            "invalid ulimit argument: nofile"
        );
        assert_eq!(
            parse_ulimit("nofile=20:10").unwrap_err().to_string(),
            "ulimit soft limit must be less than or equal to hard limit: 20 > 10"
        );
    }

    #[test]
    fn capabilities_like_docker() {
        let s = |l: &[&str]| l.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            effective_caps(
                &s(&["net_admin", "CAP_SYS_TIME"]),
                &s(&["net_admin", "mknod"])
            ),
            (s(&["CAP_NET_ADMIN", "CAP_SYS_TIME"]), s(&["CAP_MKNOD"]))
        );
        assert_eq!(
            effective_caps(&s(&["ALL", "net_admin"]), &s(&[])),
            (s(&["ALL"]), s(&[]))
        );
        // Dropping an added capability un-adds it; adding a dropped one un-drops it.
        assert_eq!(
            update_caps(
                &s(&["CAP_NET_ADMIN"]),
                &s(&["CAP_MKNOD"]),
                &s(&["mknod", "chown"]),
                &s(&["net_admin"])
            ),
            (s(&["CAP_CHOWN"]), s(&[]))
        );
        assert_eq!(
            update_caps(&s(&["CAP_NET_ADMIN"]), &s(&[]), &s(&["RESET"]), &s(&[])),
            (s(&[]), s(&[]))
        );
    }

    #[test]
    fn env_file_lines() {
        let env = parse_env_lines(
            "f",
            "# comment\n\nA=1\n  B=two words\nHOME_X\nUNSET\n",
            |k| (k == "HOME_X").then(|| "/h".to_string()),
        )
        .unwrap();
        assert_eq!(env, ["A=1", "B=two words", "HOME_X=/h"]);
        assert_eq!(
            parse_env_lines("f", "A B=1\n", |_| None)
                .unwrap_err()
                .to_string(),
            "variable 'A B' contains whitespaces"
        );
        assert_eq!(
            parse_dns_server("1.1.1.x").unwrap_err().to_string(),
            "IP address is not correctly formatted: 1.1.1.x"
        );
    }
}
