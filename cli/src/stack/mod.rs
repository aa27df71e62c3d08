//! `swarm stack ...`: compose files deployed as a stack, client-side as the docker CLI
//! does it: the files become Engine API objects here ([`compose`]), and the manager
//! sees ordinary networks, secrets, configs and services labelled with the stack.
//!
//! ```text
//!   deploy   ──compose::load──> Stack ──> networks, secrets, configs, services (create or update)
//!   ls       GET /services?filters={"label":{"com.docker.stack.namespace"}} ──> NAME SERVICES
//!   services GET /services?filters=label ns&status=true ──> service ls's table
//!   ps       GET /tasks?filters=label ns ──> service ps's table
//!   rm       GET services, networks, secrets, configs by label ──> DELETE each
//! ```

pub mod compose;
pub mod deploy;
pub mod ls;
pub mod ps;
pub mod rm;
pub mod services;

use anyhow::Result;
use clap::Subcommand;

use crate::client::{filters, Client};
use crate::UserError;

/// The label on everything a stack made, valued with the stack's name.
pub const LABEL_NAMESPACE: &str = "com.docker.stack.namespace";
/// The image as the compose file names it, on each service (`--resolve-image changed`).
pub const LABEL_IMAGE: &str = "com.docker.stack.image";

#[derive(Debug, Subcommand)]
pub enum StackCommand {
    /// Deploy a new stack or update an existing stack
    #[command(visible_alias = "up")]
    Deploy(deploy::DeployArgs),
    /// List stacks
    #[command(visible_alias = "list")]
    Ls(ls::LsArgs),
    /// List the tasks in the stack
    Ps(ps::PsArgs),
    /// Remove one or more stacks
    #[command(visible_aliases = ["remove", "down"])]
    Rm(rm::RmArgs),
    /// List the services in the stack
    Services(services::ServicesArgs),
}

pub async fn run(client: &Client, c: StackCommand) -> Result<()> {
    match c {
        StackCommand::Deploy(a) => deploy::run(client, a).await,
        StackCommand::Ls(a) => ls::run(client, a).await,
        StackCommand::Ps(a) => ps::run(client, a).await,
        StackCommand::Rm(a) => rm::run(client, a).await,
        StackCommand::Services(a) => services::run(client, a).await,
    }
}

/// Docker's `validateStackName`: nothing but quotes and spaces is no name.
pub fn validate_name(name: &str) -> Result<()> {
    let trimmed = name.trim_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'');
    if trimmed.is_empty() {
        return Err(UserError(format!("invalid stack name: {name:?}")).into());
    }
    Ok(())
}

/// `label=com.docker.stack.namespace=NAME`, plus the user's own `--filter`s.
pub fn stack_filter(namespace: &str, user: &[(String, String)]) -> String {
    let label = format!("{LABEL_NAMESPACE}={namespace}");
    let mut pairs: Vec<(&str, &str)> = vec![("label", label.as_str())];
    pairs.extend(user.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    filters(&pairs)
}

/// What `GET /{kind}?filters=label ns` lists: services, networks, secrets, configs.
pub async fn list_of(
    client: &Client,
    kind: &str,
    namespace: &str,
) -> Result<Vec<serde_json::Value>> {
    let v = client
        .get_json(&format!("/{kind}?filters={}", stack_filter(namespace, &[])))
        .await?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_filters() {
        assert!(validate_name("bank").is_ok());
        assert_eq!(
            validate_name(" '' ").unwrap_err().to_string(),
            "invalid stack name: \" '' \""
        );
        let f = stack_filter("bank", &[("name".into(), "web".into())]);
        let decoded = percent_encoding::percent_decode_str(&f)
            .decode_utf8()
            .unwrap();
        assert_eq!(
            decoded,
            r#"{"label":{"com.docker.stack.namespace=bank":true},"name":{"web":true}}"#
        );
    }
}
