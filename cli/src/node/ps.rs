//! `swarm node ps [NODE...]`: the tasks on one or more nodes (default: this one), in the
//! table `service ps` prints, as the docker CLI's `node ps` does.
//!
//! ```text
//!   per NODE: GET /info for `self`, GET /nodes/{ref} ──> node ID (or the error, kept)
//!             GET /tasks?filters={"node":{id},..user filters} ──> rows
//!   GET /services/{id}, GET /nodes/{id} ──> NAME and NODE columns (unless --no-resolve)
//! ```

use std::collections::HashMap;

use anyhow::Result;
use clap::Args;

use crate::client::{filters, query_escape, Client};
use crate::service::ps::{parse_filters, print_tasks, resolve_names, Ref, TaskListOptions};
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct PsArgs {
    #[command(flatten)]
    pub list: TaskListOptions,
    /// [NODE...] (default: self)
    #[arg(value_name = "NODE")]
    pub nodes: Vec<String>,
}

pub async fn run(client: &Client, args: PsArgs) -> Result<()> {
    let a = &args.list;
    let user_filters = parse_filters(&a.filter)?;
    let nodes = if args.nodes.is_empty() {
        vec!["self".to_string()]
    } else {
        args.nodes.clone()
    };
    let mut errs: Vec<String> = Vec::new();
    let mut tasks = Vec::new();
    for reference in &nodes {
        let reference = if reference == "self" {
            let info = client.get_json("/info").await?;
            info["Swarm"]["NodeID"].as_str().unwrap_or("").to_string()
        } else {
            reference.clone()
        };
        let node = match client
            .get_json(&format!("/nodes/{}", query_escape(&reference)))
            .await
        {
            Ok(n) => n,
            Err(e) => {
                errs.push(e.to_string());
                continue;
            }
        };
        let id = node["ID"].as_str().unwrap_or("").to_string();
        let mut pairs: Vec<(&str, &str)> = vec![("node", id.as_str())];
        pairs.extend(user_filters.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let list = client
            .get_json(&format!("/tasks?filters={}", filters(&pairs)))
            .await?;
        tasks.extend(list.as_array().cloned().unwrap_or_default());
    }
    let (mut service_names, mut node_names) = (HashMap::new(), HashMap::new());
    if !a.no_resolve {
        resolve_names(client, &tasks, Ref::Service, &mut service_names).await;
        resolve_names(client, &tasks, Ref::Node, &mut node_names).await;
    }
    if errs.is_empty() || !tasks.is_empty() {
        print_tasks(&tasks, &service_names, &node_names, a)?;
    }
    UserError::all(errs)
}
