//! `swarm stack rm STACK...`: everything labelled with the stack removed, services
//! first (sorted by name), then secrets, configs and networks, as docker's `runRemove`.

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use super::{list_of, validate_name};
use crate::client::Client;
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// Do not wait for stack removal
    #[arg(short, long, num_args = 0..=1, default_missing_value = "true", value_name = "bool")]
    pub detach: Option<bool>,
    /// STACK [STACK...]
    #[arg(required = true, value_name = "STACK")]
    pub stacks: Vec<String>,
}

/// DELETE each object, printing `Removing <kind> <name>`; true when one failed.
async fn remove_all(client: &Client, kind: &str, path: &str, objects: &[Value]) -> bool {
    let mut failed = false;
    for o in objects {
        let name = o["Spec"]["Name"]
            .as_str()
            .or(o["Name"].as_str())
            .unwrap_or("");
        let id = o["ID"].as_str().or(o["Id"].as_str()).unwrap_or("");
        println!("Removing {kind} {name}");
        if let Err(e) = client.delete(&format!("/{path}/{id}")).await {
            failed = true;
            eprint!("Failed to remove {kind} {id}: {}", crate::user_message(&e));
        }
    }
    failed
}

pub async fn run(client: &Client, a: RmArgs) -> Result<()> {
    for s in &a.stacks {
        validate_name(s)?;
    }
    let mut errors = Vec::new();
    for ns in &a.stacks {
        let mut services = list_of(client, "services", ns).await?;
        let networks = list_of(client, "networks", ns).await?;
        let secrets = list_of(client, "secrets", ns).await?;
        let configs = list_of(client, "configs", ns).await?;
        if services.len() + networks.len() + secrets.len() + configs.len() == 0 {
            eprintln!("Nothing found in stack: {ns}");
            continue;
        }
        services.sort_by(|x, y| x["Spec"]["Name"].as_str().cmp(&y["Spec"]["Name"].as_str()));
        let mut failed = remove_all(client, "service", "services", &services).await;
        failed |= remove_all(client, "secret", "secrets", &secrets).await;
        failed |= remove_all(client, "config", "configs", &configs).await;
        failed |= remove_all(client, "network", "networks", &networks).await;
        if failed {
            errors.push(format!("failed to remove some resources from stack: {ns}"));
            continue;
        }
        if a.detach == Some(false) {
            wait_for_tasks(client, ns).await?;
        }
    }
    UserError::all(errors)
}

/// `--detach=false`: until every task of the stack reached a terminal state.
async fn wait_for_tasks(client: &Client, ns: &str) -> Result<()> {
    const TERMINAL: [&str; 6] = [
        "complete", "shutdown", "failed", "rejected", "orphaned", "remove",
    ];
    loop {
        let tasks = list_of(client, "tasks", ns).await?;
        if tasks
            .iter()
            .all(|t| TERMINAL.contains(&t["Status"]["State"].as_str().unwrap_or("")))
        {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
