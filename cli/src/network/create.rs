//! `swarm network create [-d overlay] [--attachable] [--internal] [--subnet] [--gateway]
//! [--ip-range] [--label] [--opt k=v] NAME`: POST /networks/create with the docker CLI's
//! body, print the new ID.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use clap::Args;
use serde_json::{json, Value};

use crate::client::Client;

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long, value_name = "string", default_value = "overlay")]
    pub driver: String,
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Enable or disable IPv6 networking
    #[arg(long)]
    pub ipv6: bool,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long, value_name = "strings")]
    pub subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long, value_name = "strings")]
    pub gateway: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range", value_name = "strings")]
    pub ip_range: Vec<String>,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", value_name = "string", default_value = "default")]
    pub ipam_driver: String,
    /// Set metadata on a network
    #[arg(long, value_name = "list")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long, value_name = "map")]
    pub opt: Vec<String>,
    /// NETWORK
    #[arg(value_name = "NETWORK")]
    pub name: String,
}

fn map(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.clone(), String::new()),
        })
        .collect()
}

/// The docker CLI's `NetworkCreateRequest`; `--gateway` and `--ip-range` go with the
/// `--subnet` of the same position.
pub fn create_body(a: &CreateArgs) -> Result<Value> {
    if a.gateway.len() > a.subnet.len() || a.ip_range.len() > a.subnet.len() {
        bail!("every ip-range or gateway must have a corresponding subnet");
    }
    let configs: Vec<Value> = a
        .subnet
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut c = json!({ "Subnet": s });
            if let Some(r) = a.ip_range.get(i) {
                c["IPRange"] = json!(r);
            }
            if let Some(g) = a.gateway.get(i) {
                c["Gateway"] = json!(g);
            }
            c
        })
        .collect();
    Ok(json!({
        "Name": a.name,
        "CheckDuplicate": true,
        "Driver": a.driver,
        "Scope": "swarm",
        "EnableIPv6": a.ipv6,
        "IPAM": {"Driver": a.ipam_driver, "Options": {}, "Config": configs},
        "Internal": a.internal,
        "Attachable": a.attachable,
        "Ingress": false,
        "ConfigOnly": false,
        "Options": map(&a.opt),
        "Labels": map(&a.label),
    }))
}

pub async fn run(client: &Client, a: CreateArgs) -> Result<()> {
    let resp = client
        .post_json("/networks/create", &create_body(&a)?)
        .await?;
    println!("{}", resp["Id"].as_str().unwrap_or_default());
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
        let t = T::parse_from([
            "x",
            "--attachable",
            "--subnet",
            "10.9.0.0/24",
            "--gateway",
            "10.9.0.1",
            "--label",
            "a=b",
            "--opt",
            "k=v",
            "appnet",
        ]);
        let b = create_body(&t.a).unwrap();
        assert_eq!(b["Driver"], "overlay");
        assert_eq!(b["Attachable"], true);
        assert_eq!(
            b["IPAM"]["Config"],
            json!([{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1"}])
        );
        assert_eq!(b["Labels"], json!({"a": "b"}));
        assert_eq!(b["Options"], json!({"k": "v"}));
        let t = T::parse_from(["x", "--gateway", "10.9.0.1", "n"]);
        assert!(create_body(&t.a).is_err());
    }
}
