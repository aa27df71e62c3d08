//! `swarm secret|config inspect [--pretty] [-f FORMAT] NAME...`: GET each by ID or name;
//! JSON as Docker indents it, a template, or Docker's pretty text (configs show their
//! data there, secrets never have any to show: the API does not return it).

use anyhow::Result;
use base64::Engine;
use clap::Args;
use serde_json::Value;

use super::Kind;
use crate::client::{query_escape, Client};
use crate::node::inspect::go_time_string;
use crate::node::text;
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long, value_name = "string")]
    pub format: Option<String>,
    /// Print the information in a human friendly format
    #[arg(long)]
    pub pretty: bool,
    /// NAME [NAME...]
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

fn labels(x: &Value) -> String {
    let mut o = String::new();
    if let Some(l) = x["Spec"]["Labels"].as_object().filter(|l| !l.is_empty()) {
        o += "\nLabels:";
        for (k, v) in l {
            let v = text(v);
            if v.is_empty() {
                o += &format!("\n - {k}");
            } else {
                o += &format!("\n - {k}={v}");
            }
        }
    }
    o
}

fn time(x: &Value, key: &str) -> String {
    go_time_string(x[key].as_str().unwrap_or(""))
}

/// Docker's `secretInspectPrettyTemplate` / `configInspectPrettyTemplate`, each
/// followed by a newline as the formatter writes them.
pub fn render_pretty(kind: Kind, x: &Value) -> String {
    match kind {
        Kind::Secret => format!(
            "ID:              {}\nName:              {}{}\nDriver:            {}\nCreated at:        {}\nUpdated at:        {}\n",
            text(&x["ID"]),
            text(&x["Spec"]["Name"]),
            labels(x),
            x["Spec"]["Driver"]["Name"].as_str().unwrap_or_default(),
            time(x, "CreatedAt"),
            time(x, "UpdatedAt"),
        ),
        Kind::Config => {
            let data = x["Spec"]["Data"]
                .as_str()
                .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
                .unwrap_or_default();
            format!(
                "ID:\t\t\t{}\nName:\t\t\t{}{}\nCreated at:            \t{}\nUpdated at:            \t{}\nData:\n{}\n",
                text(&x["ID"]),
                text(&x["Spec"]["Name"]),
                labels(x),
                time(x, "CreatedAt"),
                time(x, "UpdatedAt"),
                String::from_utf8_lossy(&data),
            )
        }
    }
}

pub async fn run(client: &Client, kind: Kind, a: InspectArgs) -> Result<()> {
    // As `docker secret inspect`: print what was found, then the daemon's error per miss.
    let mut raws = Vec::new();
    let mut errors = Vec::new();
    for name in &a.names {
        match client
            .get_raw(&format!("{}/{}", kind.path(), query_escape(name)))
            .await
        {
            Ok(r) => raws.push(r),
            Err(e) => errors.push(crate::user_message(&e)),
        }
    }
    if a.pretty {
        for r in &raws {
            print!("{}", render_pretty(kind, &serde_json::from_str(r)?));
        }
    } else {
        crate::service::inspect::print_found(&raws, a.format.as_deref())?;
    }
    UserError::all(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_like_docker() {
        let x: Value = serde_json::from_str(
            r#"{"ID":"4ms1hgefmvz0qsnx6ymhh0h0d","Version":{"Index":11},
                "CreatedAt":"2026-11-22T12:00:00.123456789Z","UpdatedAt":"2026-11-22T12:00:00.123456789Z",
                "Spec":{"Name":"app","Labels":{"env":"prod","flag":""},"Data":"aGVsbG8K"}}"#,
        )
        .unwrap();
        assert_eq!(
            render_pretty(Kind::Secret, &x),
            "ID:              4ms1hgefmvz0qsnx6ymhh0h0d\n\
             Name:              app\n\
             Labels:\n - env=prod\n - flag\n\
             Driver:            \n\
             Created at:        2026-11-22 12:00:00.123456789 +0000 utc\n\
             Updated at:        2026-11-22 12:00:00.123456789 +0000 utc\n"
        );
        assert_eq!(
            render_pretty(Kind::Config, &x),
            "ID:\t\t\t4ms1hgefmvz0qsnx6ymhh0h0d\n\
             Name:\t\t\tapp\n\
             Labels:\n - env=prod\n - flag\n\
             Created at:            \t2026-11-22 12:00:00.123456789 +0000 utc\n\
             Updated at:            \t2026-11-22 12:00:00.123456789 +0000 utc\n\
             Data:\nhello\n\n"
        );
    }
}
