//! `swarm volume create [-d local] [--label k=v] [-o k=v] [VOLUME]`: POST
//! /volumes/create with the docker CLI's body, print the volume's name.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use clap::Args;
use serde_json::{json, Value};

use crate::client::Client;

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, value_name = "string", default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long, value_name = "list")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long, value_name = "map")]
    pub opt: Vec<String>,
    /// Specify volume name
    #[arg(long, hide = true, value_name = "string")]
    pub name: Option<String>,
    /// VOLUME
    #[arg(value_name = "VOLUME")]
    pub volume: Option<String>,
}

fn map(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.clone(), String::new()),
        })
        .collect()
}

/// The docker CLI's `CreateOptions`; a name given twice (argument and `--name`) must be
/// the same, as the docker CLI checks.
pub fn create_body(a: &CreateArgs) -> Result<Value> {
    let name = match (&a.name, &a.volume) {
        (Some(n), Some(v)) if n != v => {
            bail!("conflicting options: cannot specify a volume-name through both --name and as a positional arg")
        }
        (Some(n), _) | (None, Some(n)) => n.clone(),
        (None, None) => String::new(),
    };
    Ok(json!({
        "Driver": a.driver,
        "DriverOpts": map(&a.opt),
        "Labels": map(&a.label),
        "Name": name,
    }))
}

pub async fn run(client: &Client, a: CreateArgs) -> Result<()> {
    let v = client
        .post_json("/volumes/create", &create_body(&a)?)
        .await?;
    println!("{}", v["Name"].as_str().unwrap_or_default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: CreateArgs,
    }

    #[test]
    fn body_like_docker() {
        let t = T::parse_from(["x", "--label", "a=b", "-o", "k=v", "v1"]);
        assert_eq!(
            create_body(&t.a).unwrap(),
            json!({"Driver": "local", "DriverOpts": {"k": "v"}, "Labels": {"a": "b"}, "Name": "v1"})
        );
        let t = T::parse_from(["x"]);
        assert_eq!(create_body(&t.a).unwrap()["Name"], "");
        let t = T::parse_from(["x", "--name", "a", "b"]);
        assert!(create_body(&t.a).is_err());
    }
}
