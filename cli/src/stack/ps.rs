//! `swarm stack ps STACK`: the tasks of the stack's services (the namespace label is
//! matched against the services' labels), in `service ps`'s table.

use std::collections::HashMap;

use anyhow::Result;
use clap::Args;

use super::{stack_filter, validate_name};
use crate::client::Client;
use crate::service::ps::{parse_filters, print_tasks, resolve_names, Ref, TaskListOptions};
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct PsArgs {
    #[command(flatten)]
    pub list: TaskListOptions,
    /// STACK
    #[arg(value_name = "STACK")]
    pub stack: String,
}

pub async fn run(client: &Client, a: PsArgs) -> Result<()> {
    validate_name(&a.stack)?;
    let user = parse_filters(&a.list.filter)?;
    let tasks = client
        .get_json(&format!("/tasks?filters={}", stack_filter(&a.stack, &user)))
        .await?;
    let tasks = tasks.as_array().cloned().unwrap_or_default();
    if tasks.is_empty() {
        return Err(UserError(format!("nothing found in stack: {}", a.stack)).into());
    }
    let mut service_names = HashMap::new();
    let mut node_names = HashMap::new();
    if !a.list.no_resolve {
        resolve_names(client, &tasks, Ref::Service, &mut service_names).await;
        resolve_names(client, &tasks, Ref::Node, &mut node_names).await;
    }
    print_tasks(&tasks, &service_names, &node_names, &a.list)
}
