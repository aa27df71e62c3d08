//! `swarm node ls|inspect|ps|update|promote|demote|rm`.

pub mod inspect;
pub mod ls;
pub mod ps;
pub mod update;

use anyhow::Result;
use clap::Subcommand;
use serde_json::Value;

use crate::client::Client;

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// List nodes in the swarm
    #[command(visible_alias = "list")]
    Ls(ls::LsArgs),
    /// Display detailed information on one or more nodes
    Inspect(inspect::InspectArgs),
    /// List tasks running on one or more nodes, defaults to current node
    Ps(ps::PsArgs),
    /// Update a node
    Update(update::UpdateArgs),
    /// Promote one or more nodes to manager in the swarm
    Promote(update::RoleArgs),
    /// Demote one or more nodes from manager in the swarm
    Demote(update::RoleArgs),
    /// Remove one or more nodes from the swarm
    #[command(visible_alias = "remove")]
    Rm(update::RmArgs),
}

pub async fn run(client: &Client, c: NodeCommand) -> Result<()> {
    match c {
        NodeCommand::Ls(a) => ls::run(client, a).await,
        NodeCommand::Inspect(a) => inspect::run(client, a).await,
        NodeCommand::Ps(a) => ps::run(client, a).await,
        NodeCommand::Update(a) => update::update(client, a).await,
        NodeCommand::Promote(a) => update::set_role(client, a, true).await,
        NodeCommand::Demote(a) => update::set_role(client, a, false).await,
        NodeCommand::Rm(a) => update::rm(client, a).await,
    }
}

/// Docker's `PrettyPrint`: first letter upper case, the rest lower case.
pub fn pretty(s: &str) -> String {
    let mut cs = s.chars();
    match cs.next() {
        Some(f) => f
            .to_uppercase()
            .chain(cs.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// A JSON value as display text (`""` for null).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}
