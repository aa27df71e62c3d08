//! `swarm ca [--rotate] [-d] [-q]`: the swarm's root CA, and its rotation.

use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use serde_json::{json, Value};

use crate::client::Client;

#[derive(Debug, Clone, Args)]
pub struct CaArgs {
    /// Rotate the swarm CA - if no certificate or key are provided, new ones will be generated
    #[arg(long)]
    pub rotate: bool,
    /// Exit immediately instead of waiting for the root rotation to converge
    #[arg(short, long)]
    pub detach: bool,
    /// Suppress progress output
    #[arg(short, long)]
    pub quiet: bool,
}

fn trust_root(swarm: &Value) -> Result<String> {
    match swarm["TLSInfo"]["TrustRoot"].as_str() {
        Some(r) if !r.is_empty() => Ok(format!("{}\n", r.trim())),
        _ => bail!("No CA information available"),
    }
}

/// The rotation is over: the swarm says so and every node that is not down holds a
/// certificate from the root it trusts now.
fn converged(swarm: &Value, nodes: &Value) -> bool {
    let issuer = &swarm["TLSInfo"]["CertIssuerPublicKey"];
    swarm["RootRotationInProgress"] != json!(true)
        && nodes.as_array().is_some_and(|ns| {
            ns.iter()
                .filter(|n| n["Status"]["State"] != "down")
                .all(|n| &n["Description"]["TLSInfo"]["CertIssuerPublicKey"] == issuer)
        })
}

pub async fn run(client: &Client, a: CaArgs) -> Result<()> {
    let swarm = client.get_json("/swarm").await?;
    if !a.rotate {
        print!("{}", trust_root(&swarm)?);
        return Ok(());
    }
    let version = swarm["Version"]["Index"].as_u64().unwrap_or(0);
    let mut spec = swarm["Spec"].clone();
    let n = spec["CAConfig"]["ForceRotate"].as_u64().unwrap_or(0);
    spec["CAConfig"]["ForceRotate"] = json!(n + 1);
    client
        .post_json(&format!("/swarm/update?version={version}"), &spec)
        .await?;
    if a.detach {
        return Ok(());
    }
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let swarm = client.get_json("/swarm").await?;
        let nodes = client.get_json("/nodes").await?;
        if converged(&swarm, &nodes) {
            if !a.quiet {
                print!("{}", trust_root(&swarm)?);
            }
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converged_once_every_live_node_has_the_new_issuer() {
        let swarm =
            json!({"RootRotationInProgress": false, "TLSInfo": {"CertIssuerPublicKey": "new"}});
        let node = |issuer: &str, state: &str| json!({"Status": {"State": state}, "Description": {"TLSInfo": {"CertIssuerPublicKey": issuer}}});
        assert!(converged(
            &swarm,
            &json!([node("new", "ready"), node("old", "down")])
        ));
        assert!(!converged(
            &swarm,
            &json!([node("new", "ready"), node("old", "ready")])
        ));
        let rotating =
            json!({"RootRotationInProgress": true, "TLSInfo": {"CertIssuerPublicKey": "new"}});
        assert!(!converged(&rotating, &json!([node("new", "ready")])));
        assert_eq!(
            trust_root(&json!({"TLSInfo": {}})).unwrap_err().to_string(),
            "No CA information available"
        );
    }
}
