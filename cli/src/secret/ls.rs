//! `swarm secret ls` / `swarm config ls`: GET /secrets (or /configs) with the filters,
//! sorted by name as the docker CLI sorts them, in its table.

use anyhow::Result;
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::{json, Value};

use super::Kind;
use crate::client::{filters, Client};
use crate::format::table::{choose_format, default_header, labels_text, render_list};
use crate::natural::natural_cmp;
use crate::units::human::human_duration;

pub const SECRET_FORMAT: &str =
    "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.CreatedAt}}\t{{.UpdatedAt}}";
pub const CONFIG_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.CreatedAt}}\t{{.UpdatedAt}}";

#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long, value_name = "string", help = crate::usage::LIST_FORMAT_HELP)]
    pub format: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
}

fn ago(v: &Value, now: DateTime<Utc>) -> String {
    let t = v
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    let d = (now - t).to_std().unwrap_or_default();
    format!("{} ago", human_duration(d))
}

/// One secret or config as the docker CLI's list context shows it.
fn row(x: &Value, now: DateTime<Utc>) -> Value {
    json!({
        "ID": x["ID"],
        "Name": x["Spec"]["Name"],
        "Driver": x["Spec"]["Driver"]["Name"].as_str().unwrap_or_default(),
        "CreatedAt": ago(&x["CreatedAt"], now),
        "UpdatedAt": ago(&x["UpdatedAt"], now),
        "Labels": labels_text(&x["Spec"]["Labels"]),
    })
}

pub fn render(
    kind: Kind,
    items: &[Value],
    now: DateTime<Utc>,
    format: Option<&str>,
    quiet: bool,
) -> Result<String> {
    let mut items: Vec<&Value> = items.iter().collect();
    items.sort_by(|a, b| {
        natural_cmp(
            a["Spec"]["Name"].as_str().unwrap_or(""),
            b["Spec"]["Name"].as_str().unwrap_or(""),
        )
    });
    let rows: Vec<Value> = items.iter().map(|x| row(x, now)).collect();
    let default = match kind {
        Kind::Secret => SECRET_FORMAT,
        Kind::Config => CONFIG_FORMAT,
    };
    render_list(choose_format(format, quiet, default), &rows, &|f| match f {
        "CreatedAt" => "CREATED".into(),
        "UpdatedAt" => "UPDATED".into(),
        f => default_header(f),
    })
}

pub async fn run(client: &Client, kind: Kind, a: LsArgs) -> Result<()> {
    let mut path = kind.path().to_string();
    if !a.filter.is_empty() {
        let pairs: Vec<(&str, &str)> = a
            .filter
            .iter()
            .map(|f| f.split_once('=').unwrap_or((f, "")))
            .collect();
        path = format!("{path}?filters={}", filters(&pairs));
    }
    let items = client.get_json(&path).await?;
    let items = items.as_array().cloned().unwrap_or_default();
    print!(
        "{}",
        render(kind, &items, Utc::now(), a.format.as_deref(), a.quiet)?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<Value> {
        serde_json::from_value(json!([
            {"ID": "zq3ymy6wx1ixhfydcaxa4kemb", "CreatedAt": "2026-11-22T12:00:00Z", "UpdatedAt": "2026-11-22T12:00:55Z",
             "Spec": {"Name": "web_key", "Labels": {}}},
            {"ID": "4ms1hgefmvz0qsnx6ymhh0h0d", "CreatedAt": "2026-11-22T11:58:30Z", "UpdatedAt": "2026-11-22T11:58:30Z",
             "Spec": {"Name": "db_pw", "Labels": {"env": "prod"}}}
        ]))
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T12:01:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn secret_ls_like_docker() {
        let out = render(Kind::Secret, &items(), now(), None, false).unwrap();
        assert_eq!(
            out,
            "ID                          NAME      DRIVER    CREATED              UPDATED\n\
             4ms1hgefmvz0qsnx6ymhh0h0d   db_pw               2 minutes ago        2 minutes ago\n\
             zq3ymy6wx1ixhfydcaxa4kemb   web_key             About a minute ago   5 seconds ago\n"
        );
        let q = render(Kind::Secret, &items(), now(), None, true).unwrap();
        assert_eq!(q, "4ms1hgefmvz0qsnx6ymhh0h0d\nzq3ymy6wx1ixhfydcaxa4kemb\n");
    }

    #[test]
    fn config_ls_like_docker() {
        let out = render(Kind::Config, &items(), now(), None, false).unwrap();
        assert_eq!(
            out,
            "ID                          NAME      CREATED              UPDATED\n\
             4ms1hgefmvz0qsnx6ymhh0h0d   db_pw     2 minutes ago        2 minutes ago\n\
             zq3ymy6wx1ixhfydcaxa4kemb   web_key   About a minute ago   5 seconds ago\n"
        );
        let f = render(
            Kind::Config,
            &items(),
            now(),
            Some("{{.Name}} {{.Labels}}"),
            false,
        )
        .unwrap();
        assert_eq!(f, "db_pw env=prod\nweb_key \n");
    }
}
