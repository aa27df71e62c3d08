//! `swarmd --metrics-addr` (issue 16): a real swarmd serves `/metrics` on a free loopback
//! port; every line of a scrape is valid exposition text, and the values follow the
//! swarm: a manager once initialized, one node ready, a service's desired replicas and its
//! running tasks, the API's latency by route, the image pulled.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use rootfs_tests::registry::free_port;
use rootfs_tests::swarmd::{wait_for, Node};

/// `GET /metrics` over plain HTTP/1.0: (content type, body).
fn scrape(addr: &str) -> Result<(String, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let (head, body) = resp.split_once("\r\n\r\n").context("no HTTP head")?;
    ensure!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    let ct = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    Ok((ct, body.to_string()))
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

/// Parses the exposition text, refusing any line that is not a comment of the known
/// kinds or a `name{k="v",...} value` sample; samples keyed by `name{labels}`.
fn parse(text: &str) -> Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    ensure!(text.ends_with("# EOF\n"), "no # EOF at the end");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut w = rest.splitn(3, ' ');
            let (kind, name) = (w.next().unwrap_or(""), w.next().unwrap_or(""));
            match kind {
                "EOF" if name.is_empty() => {}
                "HELP" | "TYPE" | "UNIT" if is_name(name) => {}
                _ => bail!("bad comment line: {line}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').context(format!("no value: {line}"))?;
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().with_context(|| format!("bad value: {line}"))?,
        };
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels
                    .strip_suffix('}')
                    .context(format!("labels: {line}"))?;
                for pair in split_labels(labels) {
                    let (k, v) = pair.split_once('=').context(format!("label: {line}"))?;
                    ensure!(is_name(k), "label name: {line}");
                    ensure!(
                        v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                        "label value: {line}"
                    );
                }
                name
            }
            None => series,
        };
        ensure!(is_name(name), "metric name: {line}");
        out.insert(series.to_string(), v);
    }
    Ok(out)
}

/// `a="x",b="y,z"` -> [`a="x"`, `b="y,z"`] (commas inside quotes stay).
fn split_labels(s: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

#[test]
fn metrics_follow_the_swarm() -> Result<()> {
    let addr = format!("127.0.0.1:{}", free_port()?);
    let node = Node::start_with("metrics", &["--metrics-addr", &addr])?;
    let (ct, text) = wait_for("the metrics port", Duration::from_secs(20), || {
        Ok(scrape(&addr).ok())
    })?;
    ensure!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let m = parse(&text)?;
    ensure!(m.get("swarm_node_manager") == Some(&0.0), "{text}");

    node.swarm_ok(&["init"])?;
    let img = node.image("1");
    node.swarm_ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--replicas",
        "3",
        &img,
        "sleep",
        "1d",
    ])?;
    let get = |m: &BTreeMap<String, f64>, k: &str| m.get(k).copied();
    let m = wait_for(
        "3 running tasks in the metrics",
        Duration::from_secs(60),
        || {
            let (_, text) = scrape(&addr)?;
            let m = parse(&text)?;
            Ok(
                (get(&m, r#"swarm_service_replicas_running{service="web"}"#) == Some(3.0))
                    .then_some(m),
            )
        },
    )?;
    let want = [
        ("swarm_node_manager", 1.0),
        ("swarm_manager_leader", 1.0),
        (r#"swarm_manager_nodes{state="ready"}"#, 1.0),
        (r#"swarm_manager_nodes{state="down"}"#, 0.0),
        (
            r#"swarm_manager_nodes_by_availability{availability="active"}"#,
            1.0,
        ),
        (r#"swarm_service_replicas_desired{service="web"}"#, 3.0),
        (r#"swarm_service_tasks{service="web",state="running"}"#, 3.0),
        (r#"swarm_manager_tasks_total{state="running"}"#, 3.0),
        ("swarm_manager_services_total", 1.0),
        ("swarm_dispatcher_sessions", 1.0),
    ];
    for (k, v) in want {
        ensure!(
            get(&m, k) == Some(v),
            "{k}: {:?} (want {v})\n{m:#?}",
            get(&m, k)
        );
    }
    ensure!(get(&m, "swarm_raft_term").unwrap_or(0.0) >= 1.0, "{m:#?}");
    let applied = get(&m, "swarm_raft_applied_index").unwrap_or(0.0);
    ensure!(
        applied > 0.0 && applied <= get(&m, "swarm_raft_last_log_index").unwrap_or(0.0),
        "{m:#?}"
    );
    ensure!(
        get(&m, "swarm_raft_leader_changes_total").unwrap_or(0.0) >= 1.0,
        "{m:#?}"
    );
    ensure!(
        get(&m, r#"swarm_image_pulls_total{result="success"}"#).unwrap_or(0.0) >= 1.0,
        "{m:#?}"
    );
    let creates = r#"swarm_api_request_duration_seconds_count{route="POST /services/create"}"#;
    ensure!(get(&m, creates) == Some(1.0), "{m:#?}");
    ensure!(
        get(
            &m,
            r#"swarm_api_request_duration_seconds_bucket{le="+Inf",route="POST /services/create"}"#
        )
        .or(get(
            &m,
            r#"swarm_api_request_duration_seconds_bucket{route="POST /services/create",le="+Inf"}"#
        )) == Some(1.0),
        "{m:#?}"
    );

    // Scaled down: desired follows at once, running once the tasks stopped.
    node.swarm_ok(&["service", "scale", "web=1"])?;
    wait_for(
        "1 running task in the metrics",
        Duration::from_secs(60),
        || {
            let m = parse(&scrape(&addr)?.1)?;
            Ok(
                (get(&m, r#"swarm_service_replicas_desired{service="web"}"#) == Some(1.0)
                    && get(&m, r#"swarm_service_replicas_running{service="web"}"#) == Some(1.0))
                .then_some(()),
            )
        },
    )?;
    Ok(())
}
