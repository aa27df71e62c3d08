//! `swarm service inspect [--pretty] SERVICE...`: the JSON array Docker prints (the
//! server's field order kept, indented by four), `--format`, or Docker's pretty text.

use anyhow::Result;
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::Value;

use crate::client::{query_escape, Client};
use crate::format::indent::indent_json;
use crate::format::template::Template;
use crate::node::text;
use crate::units::duration::format_go_duration;
use crate::units::human::{human_duration, since};
use crate::units::size::bytes_size;
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long, value_name = "string")]
    pub format: Option<String>,
    /// Print the information in a human friendly format
    #[arg(long)]
    pub pretty: bool,
    /// SERVICE [SERVICE...]
    #[arg(required = true, value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// What `docker inspect` prints for the objects found: each through `--format`, or
/// the JSON array.
pub fn print_found(raws: &[String], format: Option<&str>) -> anyhow::Result<()> {
    match format {
        Some(f) => {
            let tpl = Template::parse(f)?;
            for r in raws {
                println!("{}", tpl.render_inspect(r)?);
            }
        }
        None => print!("{}", json_array(raws)),
    }
    Ok(())
}

/// `[` + each object indented + `]`, as `docker inspect` prints a list.
pub fn json_array(raws: &[String]) -> String {
    if raws.is_empty() {
        return "[]\n".into();
    }
    let items: Vec<String> = raws
        .iter()
        .map(|r| {
            indent_json(r.trim())
                .lines()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    format!("[\n{}\n]\n", items.join(",\n"))
}

fn ns(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn cpus(v: &Value) -> String {
    // Go prints the float64 NanoCPUs/1e9 with %v: 0.5, 2, 0.25.
    let f = ns(v) as f64 / 1e9;
    format!("{f}")
}

/// What `?insertDefaults=true` adds for the pretty view, filled in here as well
/// in case a manager leaves them out: swarmkit's update and rollback defaults.
fn with_defaults(s: &Value) -> Value {
    let mut s = s.clone();
    for key in ["UpdateConfig", "RollbackConfig"] {
        if !s["Spec"][key].is_object() {
            s["Spec"][key] = serde_json::json!({"Parallelism": 1, "FailureAction": "pause",
                "Monitor": 5_000_000_000i64, "MaxFailureRatio": 0, "Order": "stop-first"});
        }
    }
    s
}

/// Docker's `serviceInspectPrettyTemplate` for one service.
pub fn render_pretty(s: &Value, now: DateTime<Utc>) -> String {
    let s = &with_defaults(s);
    let spec = &s["Spec"];
    let task = &spec["TaskTemplate"];
    let cs = &task["ContainerSpec"];
    let mut o = String::from("\n");
    o += &format!("ID:\t\t{}\n", text(&s["ID"]));
    o += &format!("Name:\t\t{}", text(&spec["Name"]));
    if let Some(l) = spec["Labels"].as_object().filter(|l| !l.is_empty()) {
        o += "\nLabels:";
        for (k, v) in l {
            let v = text(v);
            o += &if v.is_empty() {
                format!("\n {k}")
            } else {
                format!("\n {k}={v}")
            };
        }
    }
    o += "\nService Mode:";
    if spec["Mode"].get("Global").is_some() {
        o += "\tGlobal";
    } else if let Some(r) = spec["Mode"].get("Replicated") {
        o += "\tReplicated";
        if let Some(n) = r["Replicas"].as_u64() {
            o += &format!("\n Replicas:\t{n}");
        }
    }
    let us = &s["UpdateStatus"];
    if us.is_object() {
        o += &format!("\nUpdateStatus:\n State:\t\t{}", text(&us["State"]));
        if let Some(t) = us["StartedAt"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        {
            let ago = human_duration(since(now, t.with_timezone(&Utc)));
            o += &format!("\n Started:\t{ago} ago");
        }
        if us["State"] == "completed" {
            if let Some(t) = us["CompletedAt"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            {
                let ago = human_duration(since(now, t.with_timezone(&Utc)));
                o += &format!("\n Completed:\t{ago} ago");
            }
        }
        o += &format!("\n Message:\t{}", text(&us["Message"]));
    }
    o += "\nPlacement:";
    let pl = &task["Placement"];
    if let Some(c) = pl["Constraints"].as_array().filter(|c| !c.is_empty()) {
        let c: Vec<String> = c.iter().map(text).collect();
        o += &format!("\n Constraints:\t[{}]", c.join(" "));
    }
    let prefs: Vec<String> = pl["Preferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["Spread"].is_object())
        .map(|p| format!("spread={}", text(&p["Spread"]["SpreadDescriptor"])))
        .collect();
    if !prefs.is_empty() {
        o += &format!("\n Preferences:   [{}]", prefs.join(" "));
    }
    if let Some(m) = pl["MaxReplicas"].as_u64().filter(|m| *m > 0) {
        o += &format!("\n Max Replicas Per Node:   {m}");
    }
    for (key, title, order) in [
        ("UpdateConfig", "UpdateConfig", "Update order:      "),
        ("RollbackConfig", "RollbackConfig", "Rollback order:    "),
    ] {
        let c = &spec[key];
        if !c.is_object() {
            continue;
        }
        o += &format!(
            "\n{title}:\n Parallelism:\t{}",
            c["Parallelism"].as_u64().unwrap_or(0)
        );
        if ns(&c["Delay"]) > 0 {
            o += &format!("\n Delay:\t\t{}", format_go_duration(ns(&c["Delay"])));
        }
        o += &format!("\n On failure:\t{}", text(&c["FailureAction"]));
        if ns(&c["Monitor"]) > 0 {
            o += &format!(
                "\n Monitoring Period: {}",
                format_go_duration(ns(&c["Monitor"]))
            );
        }
        o += &format!(
            "\n Max failure ratio: {}",
            c["MaxFailureRatio"].as_f64().unwrap_or(0.0)
        );
        o += &format!("\n {order}{}", text(&c["Order"]));
    }
    o += &format!("\nContainerSpec:\n Image:\t\t{}", text(&cs["Image"]));
    let words = |v: &Value| -> String {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|a| format!("{} ", text(a)))
            .collect()
    };
    if cs["Args"].as_array().is_some_and(|a| !a.is_empty()) {
        o += &format!("\n Args:\t\t{}", words(&cs["Args"]));
    }
    if cs["Env"].as_array().is_some_and(|a| !a.is_empty()) {
        o += &format!("\n Env:\t\t{}", words(&cs["Env"]));
    }
    if let Some(d) = cs["Dir"].as_str().filter(|d| !d.is_empty()) {
        o += &format!("\n Dir:\t\t{d}");
    }
    if let Some(i) = cs["Init"].as_bool() {
        o += &format!("\n Init:\t\t{i}");
    }
    if let Some(u) = cs["User"].as_str().filter(|u| !u.is_empty()) {
        o += &format!("\n User: {u}");
    }
    let caps =
        |k: &str| -> Vec<String> { cs[k].as_array().into_iter().flatten().map(text).collect() };
    let (add, drop) = (caps("CapabilityAdd"), caps("CapabilityDrop"));
    if !add.is_empty() || !drop.is_empty() {
        o += "\nCapabilities:";
        if !add.is_empty() {
            o += &format!("\n Add: {}", add.join(", "));
        }
        if !drop.is_empty() {
            o += &format!("\n Drop: {}", drop.join(", "));
        }
    }
    if let Some(sys) = cs["Sysctls"].as_object().filter(|m| !m.is_empty()) {
        o += "\nSysCtls:";
        let mut keys: Vec<&String> = sys.keys().collect();
        keys.sort();
        for k in keys {
            let v = text(&sys[k]);
            o += &if v.is_empty() {
                format!("\n {k}")
            } else {
                format!("\n {k}: {v}")
            };
        }
    }
    if let Some(ul) = cs["Ulimits"].as_array().filter(|m| !m.is_empty()) {
        o += "\nUlimits:";
        let mut by_name: Vec<(String, String)> = ul
            .iter()
            .map(|u| {
                (
                    text(&u["Name"]),
                    format!("{}:{}", ns(&u["Soft"]), ns(&u["Hard"])),
                )
            })
            .collect();
        by_name.sort();
        by_name.dedup_by(|a, b| a.0 == b.0);
        for (k, v) in by_name {
            o += &format!("\n {k}: {v}");
        }
    }
    if let Some(mounts) = cs["Mounts"].as_array().filter(|m| !m.is_empty()) {
        o += "\nMounts:";
        for m in mounts {
            o += &format!(
                "\n Target:\t{}\n  Source:\t{}\n  ReadOnly:\t{}\n  Type:\t\t{}",
                text(&m["Target"]),
                text(&m["Source"]),
                m["ReadOnly"].as_bool().unwrap_or(false),
                text(&m["Type"])
            );
        }
    }
    for (key, title, name_key) in [
        ("Configs", "Configs", "ConfigName"),
        ("Secrets", "Secrets", "SecretName"),
    ] {
        if let Some(refs) = cs[key].as_array().filter(|r| !r.is_empty()) {
            o += &format!("\n{title}:");
            for r in refs {
                o += &format!(
                    "\n Target:\t{}\n  Source:\t{}",
                    text(&r["File"]["Name"]),
                    text(&r[name_key])
                );
            }
        }
    }
    let log = &task["LogDriver"];
    if log.is_object() {
        o += "\nLog Driver:";
        if let Some(n) = log["Name"].as_str().filter(|n| !n.is_empty()) {
            o += &format!("\n Name:\t\t{n}");
        }
        if let Some(opts) = log["Options"].as_object().filter(|m| !m.is_empty()) {
            o += "\n LogOpts:";
            let mut keys: Vec<&String> = opts.keys().collect();
            keys.sort();
            for k in keys {
                let v = text(&opts[k]);
                o += &if v.is_empty() {
                    format!("\n  {k}")
                } else {
                    format!("\n  {k}:       {v}")
                };
            }
        }
        o += "\n";
    }
    let res = &task["Resources"];
    if res.is_object() {
        o += "\nResources:";
        let r = &res["Reservations"];
        if ns(&r["NanoCPUs"]) > 0 || ns(&r["MemoryBytes"]) > 0 {
            o += "\n Reservations:";
            if ns(&r["NanoCPUs"]) > 0 {
                o += &format!("\n  CPU:\t\t{}", cpus(&r["NanoCPUs"]));
            }
            if ns(&r["MemoryBytes"]) > 0 {
                o += &format!("\n  Memory:\t{}", bytes_size(ns(&r["MemoryBytes"]) as f64));
            }
        }
        let l = &res["Limits"];
        if ns(&l["NanoCPUs"]) > 0 || ns(&l["MemoryBytes"]) > 0 || ns(&l["Pids"]) > 0 {
            o += "\n Limits:";
            if ns(&l["NanoCPUs"]) > 0 {
                o += &format!("\n  CPU:\t\t{}", cpus(&l["NanoCPUs"]));
            }
            if ns(&l["MemoryBytes"]) > 0 {
                o += &format!("\n  Memory:\t{}", bytes_size(ns(&l["MemoryBytes"]) as f64));
            }
        }
    }
    let pids = ns(&res["Limits"]["Pids"]);
    if pids > 0 {
        o += &format!("\n  PIDs:\t\t{pids}");
    }
    if let Some(nets) = task["Networks"].as_array().filter(|n| !n.is_empty()) {
        o += "\nNetworks:";
        for n in nets {
            o += &format!(" {}", text(&n["Target"]));
        }
        o += " ";
    }
    let ep = &spec["EndpointSpec"];
    o += &format!("\nEndpoint Mode:\t{}", text(&ep["Mode"]));
    // The ports the manager assigned (`Endpoint.Ports`), not the spec's.
    if let Some(ports) = s["Endpoint"]["Ports"].as_array().filter(|p| !p.is_empty()) {
        o += "\nPorts:";
        for p in ports {
            o += &format!(
                "\n PublishedPort = {}\n  Protocol = {}\n  TargetPort = {}\n  PublishMode = {}",
                p["PublishedPort"].as_u64().unwrap_or(0),
                text(&p["Protocol"]),
                p["TargetPort"].as_u64().unwrap_or(0),
                text(&p["PublishMode"])
            );
        }
        o += " ";
    }
    let h = &cs["Healthcheck"];
    if h.is_object() {
        o += &format!(
            "\n Healthcheck:\n  Interval = {}\n  Retries = {}\n  StartPeriod =\t{}\n  Timeout =\t{}",
            format_go_duration(ns(&h["Interval"])),
            ns(&h["Retries"]),
            format_go_duration(ns(&h["StartPeriod"])),
            format_go_duration(ns(&h["Timeout"]))
        );
        if let Some(t) = h["Test"].as_array().filter(|t| !t.is_empty()) {
            o += "\n  Tests:";
            for x in t {
                o += &format!("\n\t Test = {}", text(x));
            }
            o += " ";
        }
    }
    o += "\n\n";
    o
}

pub async fn run(client: &Client, a: InspectArgs) -> Result<()> {
    // As `docker service inspect`: print what was found, then one error per miss.
    let mut raws = Vec::new();
    let mut errors = Vec::new();
    // docker/cli asks for swarmkit's defaults in both views.
    for name in &a.services {
        match client
            .get_raw(&format!(
                "/services/{}?insertDefaults=true",
                query_escape(name)
            ))
            .await
        {
            Ok(r) => raws.push(r),
            Err(e) if super::is_not_found(&e) => {
                errors.push(format!("Error: no such service: {name}"))
            }
            Err(e) => return Err(e),
        }
    }
    if a.pretty {
        for r in &raws {
            print!("{}", render_pretty(&serde_json::from_str(r)?, Utc::now()));
        }
    } else {
        crate::service::inspect::print_found(&raws, a.format.as_deref())?;
    }
    UserError::all(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services() -> Vec<Value> {
        serde_json::from_str(include_str!(
            "../../tests/fixtures/api_services_status.json"
        ))
        .unwrap()
    }

    #[test]
    fn pretty_like_docker() {
        let s = services();
        let now = DateTime::parse_from_rfc3339("2026-11-22T06:08:48.5Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            render_pretty(&s[0], now),
            include_str!("../../tests/fixtures/inspect_web_pretty.txt")
        );
        assert_eq!(
            render_pretty(&s[1], now),
            include_str!("../../tests/fixtures/inspect_web2_pretty.txt")
        );
    }

    #[test]
    fn json_like_docker() {
        let fixture = include_str!("../../tests/fixtures/inspect_web.json");
        let inner = &fixture[fixture.find('{').unwrap()..fixture.rfind('}').unwrap() + 1];
        let compact = crate::format::indent::compact_json(inner);
        assert_eq!(json_array(std::slice::from_ref(&compact)), fixture);
        let two = json_array(&[compact.clone(), compact]);
        assert!(two.contains("    },\n    {\n"));
    }

    #[test]
    fn format_spec_name() {
        let s = services();
        let t = Template::parse("{{.Spec.Name}}").unwrap();
        assert_eq!(
            t.render(&s[0], false).unwrap() + "\n",
            include_str!("../../tests/fixtures/inspect_fmt.txt")
        );
    }

    #[test]
    fn pretty_every_section_like_dockers_template() {
        let svc = serde_json::json!({
            "ID": "svc1",
            "Spec": {
                "Name": "full",
                "Labels": {"k": "v"},
                "TaskTemplate": {
                    "ContainerSpec": {
                        "Image": "img", "Args": ["sleep", "1d"], "Env": ["A=1"], "Dir": "/w",
                        "Init": true, "User": "1000",
                        "CapabilityAdd": ["CAP_NET_ADMIN"], "CapabilityDrop": ["CAP_MKNOD"],
                        "Sysctls": {"net.core.somaxconn": "1024"},
                        "Ulimits": [{"Name": "nofile", "Hard": 2048, "Soft": 1024}],
                        "Mounts": [{"Type": "volume", "Source": "data", "Target": "/data"}],
                        "Configs": [{"File": {"Name": "/etc/site.conf", "UID": "0", "GID": "0", "Mode": 292}, "ConfigID": "c1", "ConfigName": "site"}],
                        "Secrets": [{"File": {"Name": "db_pw", "UID": "0", "GID": "0", "Mode": 292}, "SecretID": "s1", "SecretName": "db_pw"}],
                        "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 10_000_000_000i64, "Timeout": 2_000_000_000i64, "Retries": 3}
                    },
                    "Resources": {"Limits": {"Pids": 100}, "Reservations": {"NanoCPUs": 250_000_000}},
                    "Placement": {
                        "Constraints": ["node.role==manager"],
                        "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.dc"}}],
                        "MaxReplicas": 1
                    },
                    "LogDriver": {"Name": "json-file", "Options": {"max-size": "1m"}},
                    "Networks": [{"Target": "net1"}]
                },
                "Mode": {"Replicated": {"Replicas": 2}},
                "UpdateConfig": {"Parallelism": 2, "Delay": 10_000_000_000i64, "FailureAction": "pause", "Monitor": 5_000_000_000i64, "MaxFailureRatio": 0, "Order": "stop-first"},
                "EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress"}]}
            },
            "Endpoint": {"Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 30000, "PublishMode": "ingress"}]}
        });
        let expected = "\nID:\t\tsvc1\nName:\t\tfull\nLabels:\n k=v\nService Mode:\tReplicated\n Replicas:\t2\n\
Placement:\n Constraints:\t[node.role==manager]\n Preferences:   [spread=node.labels.dc]\n Max Replicas Per Node:   1\n\
UpdateConfig:\n Parallelism:\t2\n Delay:\t\t10s\n On failure:\tpause\n Monitoring Period: 5s\n Max failure ratio: 0\n Update order:      stop-first\n\
RollbackConfig:\n Parallelism:\t1\n On failure:\tpause\n Monitoring Period: 5s\n Max failure ratio: 0\n Rollback order:    stop-first\n\
ContainerSpec:\n Image:\t\timg\n Args:\t\tsleep 1d \n Env:\t\tA=1 \n Dir:\t\t/w\n Init:\t\ttrue\n User: 1000\n\
Capabilities:\n Add: CAP_NET_ADMIN\n Drop: CAP_MKNOD\nSysCtls:\n net.core.somaxconn: 1024\nUlimits:\n nofile: 1024:2048\n\
Mounts:\n Target:\t/data\n  Source:\tdata\n  ReadOnly:\tfalse\n  Type:\t\tvolume\n\
Configs:\n Target:\t/etc/site.conf\n  Source:\tsite\nSecrets:\n Target:\tdb_pw\n  Source:\tdb_pw\n\
Log Driver:\n Name:\t\tjson-file\n LogOpts:\n  max-size:       1m\n\n\
Resources:\n Reservations:\n  CPU:\t\t0.25\n Limits:\n  PIDs:\t\t100\nNetworks: net1 \nEndpoint Mode:\tvip\n\
Ports:\n PublishedPort = 30000\n  Protocol = tcp\n  TargetPort = 80\n  PublishMode = ingress \n Healthcheck:\n  Interval = 10s\n  Retries = 3\n  StartPeriod =\t0s\n  Timeout =\t2s\n  Tests:\n\t Test = CMD-SHELL\n\t Test = true \n\n";
        assert_eq!(render_pretty(&svc, Utc::now()), expected);
    }
}
