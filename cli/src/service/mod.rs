//! `swarm service ...`: the commands, the spec they build, and the views they print.
//!
//! ```text
//!   create/update/scale/rollback ──spec.rs──> POST ──(no -d)──> wait.rs ──> progress.rs
//!   ls / ps / inspect / logs     ──GET──> ls.rs / ps.rs / inspect.rs / logs.rs
//! ```

pub mod create;
pub mod flags;
pub mod inspect;
pub mod logs;
pub mod ls;
pub mod mount;
pub mod opts;
pub mod pin;
pub mod port;
pub mod progress;
pub mod ps;
pub mod registry_auth;
pub mod resolve;
pub mod rm;
pub mod rollback;
pub mod scale;
pub mod spec;
pub mod update;
pub mod wait;

use anyhow::Result;
use clap::Subcommand;
use serde_json::Value;

use crate::client::{Client, DaemonError};

// Parsed once per run: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Create a new service
    Create(create::CreateArgs),
    /// Display detailed information on one or more services
    Inspect(inspect::InspectArgs),
    /// Fetch the logs of a service or task
    Logs(logs::LogsArgs),
    /// List services
    #[command(visible_alias = "list")]
    Ls(ls::LsArgs),
    /// List the tasks of one or more services
    Ps(ps::PsArgs),
    /// Remove one or more services
    #[command(visible_alias = "remove")]
    Rm(rm::RmArgs),
    /// Revert changes to a service's configuration
    Rollback(rollback::RollbackArgs),
    /// Scale one or multiple replicated services
    Scale(scale::ScaleArgs),
    /// Update a service
    Update(update::UpdateArgs),
}

pub async fn run(client: &Client, c: ServiceCommand) -> Result<()> {
    match c {
        ServiceCommand::Create(a) => create::run(client, a).await,
        ServiceCommand::Inspect(a) => inspect::run(client, a).await,
        ServiceCommand::Logs(a) => logs::run(client, a).await,
        ServiceCommand::Ls(a) => ls::run(client, a).await,
        ServiceCommand::Ps(a) => ps::run(client, a).await,
        ServiceCommand::Rm(a) => rm::run(client, a).await,
        ServiceCommand::Rollback(a) => rollback::run(client, a).await,
        ServiceCommand::Scale(a) => scale::run(client, a).await,
        ServiceCommand::Update(a) => update::run(client, a).await,
    }
}

/// GET /services/{name-or-id}?insertDefaults=false, as `update`, `scale` and
/// `rollback` do (the server resolves names, IDs and unique ID prefixes).
pub async fn get_service(client: &Client, name: &str) -> Result<Value> {
    client
        .get_json(&format!(
            "/services/{}?insertDefaults=false",
            crate::client::query_escape(name)
        ))
        .await
}

/// POST the whole spec back with the version it was read at.
pub async fn post_update(
    client: &Client,
    service: &Value,
    spec: &Value,
    extra_query: &str,
    registry_auth: Option<&str>,
) -> Result<Value> {
    let id = service["ID"].as_str().unwrap_or_default();
    let version = service["Version"]["Index"].as_u64().unwrap_or(0);
    let resp = client
        .post_json_with_auth(
            &format!("/services/{id}/update?{extra_query}version={version}"),
            spec,
            registry_auth,
        )
        .await?;
    for w in resp["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("{w}");
        }
    }
    Ok(resp)
}

/// Whether an error is the manager's 404.
pub fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<DaemonError>()
        .is_some_and(DaemonError::is_not_found)
}

/// `abcdefghijklmnop` -> `abcdefghijkl`, Docker's `TruncateID`.
pub fn truncate_id(id: &str) -> String {
    id.chars().take(12).collect()
}

/// The image for display: the digest stripped when a tag is present, and the
/// `docker.io/library/` prefix dropped, as `reference.FamiliarString` does.
pub fn display_image(image: &str) -> String {
    let without_digest = match image.split_once('@') {
        Some((name, _)) if has_tag(name) => name,
        _ => image,
    };
    familiar(without_digest)
}

fn has_tag(name: &str) -> bool {
    let last = name.rsplit('/').next().unwrap_or(name);
    last.contains(':')
}

fn familiar(s: &str) -> String {
    if let Some(rest) = s.strip_prefix("docker.io/library/") {
        return rest.to_string();
    }
    if let Some(rest) = s.strip_prefix("docker.io/") {
        return rest.to_string();
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_display() {
        assert_eq!(display_image("busybox:1@sha256:abc"), "busybox:1");
        assert_eq!(display_image("docker.io/library/nginx:1"), "nginx:1");
        assert_eq!(display_image("reg:5000/x/y:2"), "reg:5000/x/y:2");
        assert_eq!(display_image("busybox@sha256:abc"), "busybox@sha256:abc");
    }
}
