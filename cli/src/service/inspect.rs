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
        if ns(&l["NanoCPUs"]) > 0 || ns(&l["MemoryBytes"]) > 0 {
            o += "\n Limits:";
            if ns(&l["NanoCPUs"]) > 0 {
                o += &format!("\n  CPU:\t\t{}", cpus(&l["NanoCPUs"]));
            }
            if ns(&l["MemoryBytes"]) > 0 {
                o += &format!("\n  Memory:\t{}", bytes_size(ns(&l["MemoryBytes"]) as f64));
            }
        }
        if ns(&l["Pids"]) > 0 {
            o += &format!("\n  PIDs:\t\t{}", ns(&l["Pids"]));
        }
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
    if let Some(ports) = ep["Ports"].as_array().filter(|p| !p.is_empty()) {
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
    let defaults = if a.pretty { "true" } else { "false" };
    for name in &a.services {
        match client
            .get_raw(&format!(
                "/services/{}?insertDefaults={defaults}",
                query_escape(name)
            ))
            .await
        {
            Ok(r) => raws.push(r),
            Err(e) if super::is_not_found(&e) => errors.push(format!("no such service: {name}")),
            Err(e) => return Err(e),
        }
    }
    if a.pretty {
        for r in &raws {
            print!("{}", render_pretty(&serde_json::from_str(r)?, Utc::now()));
        }
    } else if let Some(f) = a.format {
        let tpl = Template::parse(&f)?;
        for r in &raws {
            println!("{}", tpl.render_inspect(r)?);
        }
    } else {
        print!("{}", json_array(&raws));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(UserError(errors.join("\n")).into())
    }
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
}
