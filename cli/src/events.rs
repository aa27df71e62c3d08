//! `swarm events`: GET /events, one line per event as the docker CLI prints it
//! (docker/cli `cli/command/system/events.go`).
//!
//! ```text
//!   --since/--until ──(durations, dates ─▶ "sec.nanos")──▶ GET /events?since&until&filters
//!   body: one JSON object a line ──▶ pretty line, or --format's template
//! ```

use anyhow::{bail, Result};
use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use clap::Args;
use http::Method;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::client::{filters, query_escape, Client};
use crate::format::template::Template;
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct EventsArgs {
    /// Show all events created since timestamp
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long, value_name = "string")]
    pub until: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template:
    /// 'json':             Print in JSON format
    /// 'TEMPLATE':         Print output using the given Go template.
    /// Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates
    #[arg(long, value_name = "string", verbatim_doc_comment)]
    pub format: Option<String>,
}

pub async fn run(client: &Client, a: EventsArgs) -> Result<()> {
    let template = match a.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(Template::parse("{{json .}}")?),
        Some(f) => Some(Template::parse(f)?),
    };
    let now = Utc::now();
    let mut query = Vec::new();
    for (key, v) in [("since", &a.since), ("until", &a.until)] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            query.push(format!("{key}={}", query_escape(&timestamp(v, now)?)));
        }
    }
    let mut pairs = Vec::new();
    for f in &a.filter {
        match f.split_once('=') {
            Some(p) => pairs.push(p),
            None => bail!(UserError(format!(
                "invalid argument \"{f}\" for \"-f, --filter\" flag: bad format of filter (expected name=value)"
            ))),
        }
    }
    if !pairs.is_empty() {
        query.push(format!("filters={}", filters(&pairs)));
    }
    let path = if query.is_empty() {
        "/events".to_string()
    } else {
        format!("/events?{}", query.join("&"))
    };
    let resp = client.call(Method::GET, &path, None, None).await?;
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    use std::io::Write;
    let mut out = std::io::stdout();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let text = match &template {
                None => pretty(&serde_json::from_str(line)?),
                Some(t) => t.render_inspect(line)?,
            };
            writeln!(out, "{text}")?;
            out.flush()?;
        }
    }
    Ok(())
}

/// The docker CLI's line: `TIME TYPE ACTION ID (k=v, ...)`, attributes sorted by key,
/// the time in the local zone with nine decimals (Go's `RFC3339NanoFixed`).
pub fn pretty(m: &Value) -> String {
    let mut out = String::new();
    let nanos = m["timeNano"].as_i64().unwrap_or(0);
    let secs = m["time"].as_i64().unwrap_or(0);
    let nanos = if nanos != 0 {
        Some(nanos)
    } else if secs != 0 {
        Some(secs * 1_000_000_000)
    } else {
        None
    };
    if let Some(n) = nanos {
        let t = Local.timestamp_nanos(n);
        out.push_str(&rfc3339_nano_fixed(&t));
        out.push(' ');
    }
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    out.push_str(&format!(
        "{} {} {}",
        s(&m["Type"]),
        s(&m["Action"]),
        s(&m["Actor"]["ID"])
    ));
    if let Some(attrs) = m["Actor"]["Attributes"]
        .as_object()
        .filter(|a| !a.is_empty())
    {
        let mut keys: Vec<&String> = attrs.keys().collect();
        keys.sort();
        let parts: Vec<String> = keys
            .iter()
            .map(|k| format!("{k}={}", s(&attrs[k.as_str()])))
            .collect();
        out.push_str(&format!(" ({})", parts.join(", ")));
    }
    out
}

/// Go's `2006-01-02T15:04:05.000000000Z07:00`: `Z` for UTC, else `+hh:mm`.
fn rfc3339_nano_fixed<Tz: TimeZone>(t: &DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let offset = t.offset().fix().local_minus_utc();
    let base = t.format("%Y-%m-%dT%H:%M:%S%.9f");
    if offset == 0 {
        format!("{base}Z")
    } else {
        format!("{base}{}", t.format("%:z"))
    }
}

/// docker/cli's `timetypes.GetTimestamp`: a Go duration (`10m`, `1h30m`) is that long
/// before `now` (whole seconds); a date (RFC 3339, or without a zone: local time) becomes
/// `sec.nanos`; a Unix timestamp passes as it is.
pub fn timestamp(value: &str, now: DateTime<Utc>) -> Result<String> {
    if value != "0" {
        if let Some(d) = go_duration(value) {
            return Ok((now.timestamp_nanos_opt().unwrap_or_default() - d)
                .div_euclid(1_000_000_000)
                .to_string());
        }
    }
    let fmt = |t: DateTime<Utc>| format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos());
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(fmt(t.with_timezone(&Utc)));
    }
    let local = |n: NaiveDateTime| Local.from_local_datetime(&n).single();
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H",
    ] {
        if let Some(t) = NaiveDateTime::parse_from_str(value, f).ok().and_then(local) {
            return Ok(fmt(t.with_timezone(&Utc)));
        }
    }
    if let Some(t) = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(local)
    {
        return Ok(fmt(t.with_timezone(&Utc)));
    }
    let (sec, frac) = value.split_once('.').unwrap_or((value, "0"));
    if !value.contains('-')
        && sec.parse::<i64>().is_ok()
        && frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Ok(value.to_string());
    }
    bail!(UserError(format!(
        "failed to parse value as time or duration: \"{value}\""
    )))
}

/// Go's `time.ParseDuration`, in nanoseconds: `[-+]` then number-unit pairs.
fn go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += num * unit;
    }
    Some(if neg { -total } else { total } as i64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pretty_is_dockers_line() {
        let m = json!({"Type":"service","Action":"update","Actor":{"ID":"8v0","Attributes":{"replicas.old":"1","name":"web","replicas.new":"3"}},"scope":"swarm","time":1796655071,"timeNano":1796655071951326361i64});
        let line = pretty(&m);
        let t = Local.timestamp_nanos(1796655071951326361);
        assert_eq!(
            line,
            format!(
                "{} service update 8v0 (name=web, replicas.new=3, replicas.old=1)",
                rfc3339_nano_fixed(&t)
            )
        );
        assert_eq!(
            rfc3339_nano_fixed(&Utc.timestamp_nanos(1796655071951326361)),
            "2026-12-07T14:51:11.951326361Z"
        );
    }

    #[test]
    fn timestamps_as_docker_cli_sends_them() {
        let now = Utc.timestamp_opt(1_000_000, 0).unwrap();
        assert_eq!(timestamp("10m", now).unwrap(), "999400");
        assert_eq!(
            timestamp("1h30m", now).unwrap(),
            (1_000_000 - 5400).to_string()
        );
        assert_eq!(timestamp("0s", now).unwrap(), "1000000");
        assert_eq!(timestamp("1700000000", now).unwrap(), "1700000000");
        assert_eq!(timestamp("1700000000.5", now).unwrap(), "1700000000.5");
        assert_eq!(
            timestamp("2026-12-07T14:00:00.5Z", now).unwrap(),
            "1796652000.500000000"
        );
        assert!(timestamp("yesterday", now).is_err());
    }
}
