//! `swarm secret create [-l k=v] NAME FILE|-` and `swarm config create`: reads the
//! content (`-` is stdin), POSTs `{Name, Labels, Data (base64)}`, prints the new ID.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{bail, Result};
use base64::Engine;
use clap::Args;
use serde_json::{json, Value};

use super::Kind;
use crate::client::Client;
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Secret driver
    #[arg(short, long, value_name = "string")]
    pub driver: Option<String>,
    /// Secret labels
    #[arg(short, long, value_name = "list")]
    pub label: Vec<String>,
    /// Template driver
    #[arg(long, value_name = "string")]
    pub template_driver: Option<String>,
    /// SECRET
    #[arg(value_name = "SECRET")]
    pub name: String,
    /// file|-
    #[arg(value_name = "file|-")]
    pub file: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ConfigCreateArgs {
    /// Config labels
    #[arg(short, long, value_name = "list")]
    pub label: Vec<String>,
    /// Template driver
    #[arg(long, value_name = "string")]
    pub template_driver: Option<String>,
    /// CONFIG
    #[arg(value_name = "CONFIG")]
    pub name: String,
    /// file|-
    #[arg(value_name = "file|-")]
    pub file: String,
}

impl From<ConfigCreateArgs> for CreateArgs {
    fn from(a: ConfigCreateArgs) -> CreateArgs {
        CreateArgs {
            driver: None,
            label: a.label,
            template_driver: a.template_driver,
            name: a.name,
            file: Some(a.file),
        }
    }
}

/// Docker's `ConvertKVStringsToMap`: `k=v`, or `k` with an empty value.
fn labels(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect()
}

/// The create request's body.
pub fn create_body(a: &CreateArgs, data: &[u8]) -> Value {
    let mut body = json!({
        "Name": a.name,
        "Labels": labels(&a.label),
        "Data": base64::engine::general_purpose::STANDARD.encode(data),
    });
    if let Some(d) = a.driver.as_deref().filter(|d| !d.is_empty()) {
        body["Driver"] = json!({"Name": d});
    }
    if let Some(d) = a.template_driver.as_deref().filter(|d| !d.is_empty()) {
        body["Templating"] = json!({"Name": d});
    }
    body
}

/// Go's words for an I/O error: `open x: no such file or directory`.
fn go_io_error(path: &str, e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut cs = text.chars();
    let lower = cs
        .next()
        .map(|c| c.to_lowercase().chain(cs).collect::<String>())
        .unwrap_or_default();
    format!("open {path}: {lower}")
}

/// docker's `readSecretData` (28.2): stdin or a file, refused when empty. `config
/// create` wraps its error: `Error reading content from "-": ...`.
fn read_content(kind: Kind, path: &str) -> Result<Vec<u8>> {
    let read = || -> Result<Vec<u8>, String> {
        let (data, from) = if path == "-" {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| format!("error reading from STDIN: {e}"))?;
            (buf, "STDIN")
        } else {
            let data = std::fs::read(path)
                .map_err(|e| format!("error reading from {path}: {}", go_io_error(path, &e)))?;
            (data, path)
        };
        if data.is_empty() {
            return Err(format!("error reading from {from}: data is empty"));
        }
        Ok(data)
    };
    read().map_err(|e| match kind {
        Kind::Secret => UserError(e).into(),
        Kind::Config => UserError(format!("Error reading content from \"{path}\": {e}")).into(),
    })
}

pub async fn run(client: &Client, kind: Kind, a: CreateArgs) -> Result<()> {
    let data = match (&a.file, &a.driver) {
        (Some(_), Some(_)) => bail!(UserError(
            "When using secret driver secret data must be empty".into()
        )),
        (Some(f), None) => read_content(kind, f)?,
        (None, Some(_)) => Vec::new(),
        (None, None) => bail!(UserError("secret file is required".into())),
    };
    let r = client
        .post_json(&format!("{}/create", kind.path()), &create_body(&a, &data))
        .await?;
    println!("{}", r["ID"].as_str().unwrap_or_default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_dockers() {
        let a = CreateArgs {
            driver: None,
            label: vec!["env=prod".into(), "flag".into()],
            template_driver: None,
            name: "db".into(),
            file: Some("-".into()),
        };
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(go_io_error("/x", &e), "open /x: no such file or directory");
        assert_eq!(
            create_body(&a, b"pw"),
            json!({"Name": "db", "Labels": {"env": "prod", "flag": ""}, "Data": "cHc="})
        );
    }
}
