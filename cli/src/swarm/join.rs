//! `swarm join`, `swarm join-token`, `swarm leave`: the docker CLI's calls and words.

use anyhow::Result;
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use crate::client::{query_escape, Client};
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct JoinArgs {
    /// Token for entry into the swarm
    #[arg(long, value_name = "string")]
    pub token: String,
    /// Advertised address (format: "<ip|interface>[:port]")
    #[arg(long = "advertise-addr", value_name = "string")]
    pub advertise_addr: Option<String>,
    /// Listen address (format: "<ip|interface>[:port]") (default 0.0.0.0:2377)
    #[arg(
        long = "listen-addr",
        value_name = "node-addr",
        default_value = "0.0.0.0:2377"
    )]
    pub listen_addr: String,
    /// Availability of the node ("active", "pause", "drain")
    #[arg(long, value_name = "string", default_value = "active")]
    pub availability: String,
    /// A manager's address (HOST:PORT)
    pub remote: String,
}

/// The request body of POST /swarm/join.
pub fn join_request(a: &JoinArgs) -> Value {
    json!({
        "ListenAddr": a.listen_addr,
        "AdvertiseAddr": a.advertise_addr.clone().unwrap_or_default(),
        "RemoteAddrs": [a.remote],
        "JoinToken": a.token,
        "Availability": a.availability,
    })
}

pub async fn join(client: &Client, a: JoinArgs) -> Result<()> {
    client.post_json("/swarm/join", &join_request(&a)).await?;
    let info = client.get_json("/info").await?;
    if info["Swarm"]["ControlAvailable"] == true {
        println!("This node joined a swarm as a manager.");
    } else {
        println!("This node joined a swarm as a worker.");
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Role {
    Worker,
    Manager,
}

#[derive(Debug, Clone, Args)]
pub struct JoinTokenArgs {
    /// Only display token
    #[arg(short, long)]
    pub quiet: bool,
    /// Rotate join token
    #[arg(long)]
    pub rotate: bool,
    pub role: Role,
}

/// What docker prints for `join-token` (with `swarm` for `docker swarm`).
pub fn join_token_message(role: Role, token: &str, addr: &str) -> String {
    let who = match role {
        Role::Worker => "worker",
        Role::Manager => "manager",
    };
    format!(
        "To add a {who} to this swarm, run the following command:\n\n    swarm join --token {token} {addr}\n\n"
    )
}

pub async fn join_token(client: &Client, a: JoinTokenArgs) -> Result<()> {
    let key = match a.role {
        Role::Worker => "Worker",
        Role::Manager => "Manager",
    };
    if a.rotate {
        let flag = match a.role {
            Role::Worker => "rotateWorkerToken",
            Role::Manager => "rotateManagerToken",
        };
        super::update::rotate(client, &client.get_json("/swarm").await?, flag).await?;
        if !a.quiet {
            println!("Successfully rotated {} join token.\n", key.to_lowercase());
        }
    }
    let swarm = client.get_json("/swarm").await?;
    let token = swarm["JoinTokens"][key].as_str().unwrap_or_default();
    if a.quiet {
        println!("{token}");
        return Ok(());
    }
    let info = client.get_json("/info").await?;
    let node_id = info["Swarm"]["NodeID"].as_str().unwrap_or_default();
    let node = client
        .get_json(&format!("/nodes/{}", query_escape(node_id)))
        .await?;
    let addr = node["ManagerStatus"]["Addr"].as_str().unwrap_or_default();
    print!("{}", join_token_message(a.role, token, addr));
    Ok(())
}

#[derive(Debug, Clone, Args)]
pub struct LeaveArgs {
    /// Force this node to leave the swarm, ignoring warnings
    #[arg(short, long)]
    pub force: bool,
}

pub async fn leave(client: &Client, a: LeaveArgs) -> Result<()> {
    let info = client.get_json("/info").await?;
    if info["Swarm"]["LocalNodeState"] == "inactive" {
        return Err(UserError(
            "Error response from daemon: This node is not part of a swarm".into(),
        )
        .into());
    }
    client
        .post_json(&format!("/swarm/leave?force={}", a.force), &json!({}))
        .await?;
    println!("Node left the swarm.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_body_as_docker_sends_it() {
        let a = JoinArgs {
            token: "SWMTKN-1-x-y".into(),
            advertise_addr: Some("10.0.0.2".into()),
            listen_addr: "0.0.0.0:2377".into(),
            availability: "active".into(),
            remote: "10.0.0.1:2377".into(),
        };
        assert_eq!(
            join_request(&a),
            json!({"ListenAddr": "0.0.0.0:2377", "AdvertiseAddr": "10.0.0.2",
                   "RemoteAddrs": ["10.0.0.1:2377"], "JoinToken": "SWMTKN-1-x-y",
                   "Availability": "active"})
        );
    }

    #[test]
    fn join_token_words() {
        assert_eq!(
            join_token_message(Role::Manager, "SWMTKN-1-a-b", "10.0.0.1:2377"),
            "To add a manager to this swarm, run the following command:\n\n    swarm join --token SWMTKN-1-a-b 10.0.0.1:2377\n\n"
        );
    }
}
