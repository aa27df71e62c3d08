//! `swarm stack deploy -c FILE... STACK`: the compose files converted here, then
//! created or updated on the manager in docker's order (`deployCompose`): prune,
//! external networks checked, networks, secrets, configs, services.
//!
//! ```text
//!   compose::load ──> Stack ──> GET /info (a manager?)
//!     networks: GET /networks?filters=label ns, POST /networks/create for the missing
//!     secrets/configs: GET /{kind}/{name}: 200 update, 404 create
//!     services: GET /services?filters=label ns: POST update (same ID) or create
//! ```

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use super::{compose, list_of, validate_name, LABEL_IMAGE};
use crate::client::{filters, query_escape, Client};
use crate::service::{is_not_found, pin, registry_auth, wait};
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// Path to a Compose file, or "-" to read from stdin
    #[arg(
        short = 'c',
        long = "compose-file",
        value_name = "strings",
        value_delimiter = ','
    )]
    pub compose_file: Vec<String>,
    /// Send registry authentication details to Swarm agents
    #[arg(long = "with-registry-auth")]
    pub with_registry_auth: bool,
    /// Prune services that are no longer referenced
    #[arg(long)]
    pub prune: bool,
    /// Query the registry to resolve image digest and supported platforms ("always", "changed", "never")
    #[arg(
        long = "resolve-image",
        default_value = "always",
        value_name = "string"
    )]
    pub resolve_image: String,
    /// Exit immediately instead of waiting for the stack services to converge
    #[arg(short, long, num_args = 0..=1, default_missing_value = "true", value_name = "bool")]
    pub detach: Option<bool>,
    /// Suppress progress output
    #[arg(short, long)]
    pub quiet: bool,
    /// STACK
    #[arg(value_name = "STACK")]
    pub stack: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolve {
    Always,
    Changed,
    Never,
}

pub async fn run(client: &Client, a: DeployArgs) -> Result<()> {
    validate_name(&a.stack)?;
    if a.compose_file.is_empty() {
        return Err(UserError("specify a Compose file (with --compose-file)".into()).into());
    }
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let stack = compose::load(&a.stack, &a.compose_file, &env)?;
    for w in &stack.warnings {
        // Docker ends its `Ignoring ...` paragraphs with a blank line.
        if w.starts_with("Ignoring") {
            eprint!("{w}\n\n");
        } else {
            eprintln!("{w}");
        }
    }
    let resolve = match a.resolve_image.as_str() {
        "always" => Resolve::Always,
        "changed" => Resolve::Changed,
        "never" => Resolve::Never,
        other => {
            return Err(
                UserError(format!("invalid option {other} for flag --resolve-image")).into(),
            )
        }
    };
    let detach = a.detach.unwrap_or(true);
    if a.detach.is_none() {
        eprintln!(
            "Since --detach=false was not specified, tasks will be created in the background.\n\
             In a future release, --detach=false will become the default."
        );
    }
    check_manager(client).await?;
    if a.prune {
        prune(client, &a.stack, &stack).await;
    }
    check_external_networks(client, &stack.external_networks).await?;
    create_networks(client, &a.stack, &stack.networks).await?;
    upsert_blobs(client, "secret", &stack.secrets).await?;
    upsert_blobs(client, "config", &stack.configs).await?;
    let ids = deploy_services(client, &a, resolve, stack.services).await?;
    if detach {
        return Ok(());
    }
    let mut errors = Vec::new();
    for id in &ids {
        if let Err(e) = wait::wait_for_service(client, id, a.quiet).await {
            errors.push(format!("{id}: {}", crate::user_message(&e)));
        }
    }
    UserError::all(errors)
}

/// Docker's `checkDaemonIsSwarmManager`.
async fn check_manager(client: &Client) -> Result<()> {
    let info = client.get_json("/info").await?;
    if info["Swarm"]["ControlAvailable"].as_bool() != Some(true) {
        return Err(UserError(
            "this node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again".into(),
        )
        .into());
    }
    Ok(())
}

fn spec_name(v: &Value) -> &str {
    v["Spec"]["Name"].as_str().unwrap_or("")
}

/// `--prune`: the stack's services the files no longer name.
async fn prune(client: &Client, ns: &str, stack: &compose::Stack) {
    let old = match list_of(client, "services", ns).await {
        Ok(old) => old,
        Err(e) => {
            eprintln!("Failed to list services: {}", crate::user_message(&e));
            return;
        }
    };
    let mut gone: Vec<&Value> = old
        .iter()
        .filter(|s| {
            !stack
                .services
                .iter()
                .any(|n| n["Name"] == s["Spec"]["Name"])
        })
        .collect();
    gone.sort_by(|x, y| spec_name(x).cmp(spec_name(y)));
    for s in gone {
        println!("Removing service {}", spec_name(s));
        let id = s["ID"].as_str().unwrap_or("");
        if let Err(e) = client.delete(&format!("/services/{id}")).await {
            eprint!("Failed to remove service {id}: {}", crate::user_message(&e));
        }
    }
}

/// `container.NetworkMode(name).IsUserDefined()`: not one of the engine's own.
fn user_defined(name: &str) -> bool {
    !matches!(name, "default" | "bridge" | "host" | "none") && !name.starts_with("container:")
}

/// Docker's `validateExternalNetworks`.
async fn check_external_networks(client: &Client, names: &[String]) -> Result<()> {
    for name in names.iter().filter(|n| user_defined(n)) {
        match client
            .get_json(&format!("/networks/{}", query_escape(name)))
            .await
        {
            Ok(n) if n["Scope"] != "swarm" => {
                return Err(UserError(format!(
                    "network {name:?} is declared as external, but it is not in the right scope: {:?} instead of \"swarm\"",
                    n["Scope"].as_str().unwrap_or("")
                ))
                .into())
            }
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {
                return Err(UserError(format!(
                    "network {name:?} is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed"
                ))
                .into())
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Docker's `createNetworks`: the stack's networks that do not exist yet.
async fn create_networks(client: &Client, ns: &str, networks: &[Value]) -> Result<()> {
    let existing = list_of(client, "networks", ns).await?;
    for body in networks {
        let name = body["Name"].as_str().unwrap_or_default();
        if existing.iter().any(|n| n["Name"] == name) {
            continue;
        }
        let mut body = body.clone();
        if body["Driver"].as_str().unwrap_or("").is_empty() {
            body["Driver"] = json!("overlay");
        }
        println!("Creating network {name}");
        client
            .post_json("/networks/create", &body)
            .await
            .map_err(|e| wrap(e, &format!("failed to create network {name}")))?;
    }
    Ok(())
}

/// Docker's `createSecrets`/`createConfigs`: by name, update what exists (labels; the
/// data must be the same), create the rest.
async fn upsert_blobs(client: &Client, kind: &str, specs: &[Value]) -> Result<()> {
    for spec in specs {
        let name = spec["Name"].as_str().unwrap_or_default();
        match client
            .get_json(&format!("/{kind}s/{}", query_escape(name)))
            .await
        {
            Ok(existing) => {
                let id = existing["ID"].as_str().unwrap_or_default();
                let version = existing["Version"]["Index"].as_u64().unwrap_or(0);
                client
                    .post_json(&format!("/{kind}s/{id}/update?version={version}"), spec)
                    .await
                    .map_err(|e| wrap(e, &format!("failed to update {kind} {name}")))?;
            }
            Err(e) if is_not_found(&e) => {
                println!("Creating {kind} {name}");
                client
                    .post_json(&format!("/{kind}s/create"), spec)
                    .await
                    .map_err(|e| wrap(e, &format!("failed to create {kind} {name}")))?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `context: error`, the way Go's `fmt.Errorf("...: %w")` reads.
fn wrap(e: anyhow::Error, context: &str) -> anyhow::Error {
    UserError(format!("{context}: {}", crate::user_message(&e))).into()
}

/// Name -> ID of every secret (or config) the services refer to, as docker's
/// `ParseSecrets`/`ParseConfigs` look them up.
async fn ids_of(
    client: &Client,
    kind: &str,
    names: Vec<String>,
) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    if names.is_empty() {
        return Ok(out);
    }
    let pairs: Vec<(&str, &str)> = names.iter().map(|n| ("name", n.as_str())).collect();
    let list = client
        .get_json(&format!("/{kind}s?filters={}", filters(&pairs)))
        .await?;
    for item in list.as_array().into_iter().flatten() {
        if let (Some(name), Some(id)) = (item["Spec"]["Name"].as_str(), item["ID"].as_str()) {
            out.insert(name.to_string(), id.to_string());
        }
    }
    if let Some(missing) = names.iter().find(|n| !out.contains_key(*n)) {
        return Err(UserError(format!("{kind} not found: {missing}")).into());
    }
    Ok(out)
}

/// The names `key` (`Secrets`/`Configs`) refers to across the services.
fn referenced(services: &[Value], key: &str, name_key: &str) -> Vec<String> {
    let mut names: Vec<String> = services
        .iter()
        .flat_map(|s| {
            s["TaskTemplate"]["ContainerSpec"][key]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|r| r[name_key].as_str().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn fill_ids(
    spec: &mut Value,
    key: &str,
    name_key: &str,
    id_key: &str,
    ids: &HashMap<String, String>,
) {
    if let Some(refs) = spec["TaskTemplate"]["ContainerSpec"][key].as_array_mut() {
        for r in refs {
            if let Some(id) = r[name_key].as_str().and_then(|n| ids.get(n)) {
                r[id_key] = json!(id);
            }
        }
    }
}

/// Docker's `deployServices`: update the stack's services that exist (same IDs, the
/// image kept pinned when unchanged under `--resolve-image changed|never`), create the
/// rest. Returns the services' IDs.
async fn deploy_services(
    client: &Client,
    a: &DeployArgs,
    resolve: Resolve,
    mut services: Vec<Value>,
) -> Result<Vec<String>> {
    let secret_ids = ids_of(
        client,
        "secret",
        referenced(&services, "Secrets", "SecretName"),
    )
    .await?;
    let config_ids = ids_of(
        client,
        "config",
        referenced(&services, "Configs", "ConfigName"),
    )
    .await?;
    for s in services.iter_mut() {
        fill_ids(s, "Secrets", "SecretName", "SecretID", &secret_ids);
        fill_ids(s, "Configs", "ConfigName", "ConfigID", &config_ids);
    }
    let existing = list_of(client, "services", &a.stack).await?;
    let mut ids = Vec::new();
    for mut spec in services {
        let name = spec["Name"].as_str().unwrap_or_default().to_string();
        let image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let auth = if a.with_registry_auth {
            registry_auth::encoded_for(&image)?
        } else {
            None
        };
        let (id, warnings) = match existing.iter().find(|s| spec_name(s) == name) {
            Some(svc) => {
                let id = svc["ID"].as_str().unwrap_or_default().to_string();
                println!("Updating service {name} (id: {id})");
                let unchanged = svc["Spec"]["Labels"][LABEL_IMAGE].as_str() == Some(image.as_str());
                let query = match resolve {
                    Resolve::Always => true,
                    Resolve::Changed => !unchanged,
                    Resolve::Never => false,
                };
                let mut warnings = Vec::new();
                if !query && unchanged {
                    spec["TaskTemplate"]["ContainerSpec"]["Image"] =
                        svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].clone();
                }
                // The docker client tags the image (`nginx` -> `nginx:latest`, in
                // its familiar form) on every update, and pins it when asked to.
                warnings.extend(pin::pin_image(client, &mut spec, query).await);
                spec["TaskTemplate"]["ForceUpdate"] =
                    svc["Spec"]["TaskTemplate"]["ForceUpdate"].clone();
                if spec["TaskTemplate"]["ForceUpdate"].is_null() {
                    spec["TaskTemplate"]["ForceUpdate"] = json!(0);
                }
                let resp = crate::service::post_update(client, svc, &spec, "", auth.as_deref())
                    .await
                    .map_err(|e| wrap(e, &format!("failed to update service {name}")))?;
                let _ = resp;
                (id, warnings)
            }
            None => {
                println!("Creating service {name}");
                let mut warnings = Vec::new();
                warnings.extend(pin::pin_image(client, &mut spec, resolve != Resolve::Never).await);
                let resp = client
                    .post_json_with_auth("/services/create", &spec, auth.as_deref())
                    .await
                    .map_err(|e| wrap(e, &format!("failed to create service {name}")))?;
                warnings.extend(
                    resp["Warnings"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_string),
                );
                (
                    resp["ID"].as_str().unwrap_or_default().to_string(),
                    warnings,
                )
            }
        };
        for w in warnings {
            eprintln!("{w}");
        }
        ids.push(id);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_filled_by_name() {
        let mut spec = json!({"TaskTemplate": {"ContainerSpec": {"Secrets": [
            {"SecretName": "bank_db", "SecretID": "", "File": {"Name": "db"}},
            {"SecretName": "ext", "SecretID": ""}
        ]}}});
        let refs = referenced(std::slice::from_ref(&spec), "Secrets", "SecretName");
        assert_eq!(refs, ["bank_db", "ext"]);
        let ids = HashMap::from([
            ("bank_db".to_string(), "s1".to_string()),
            ("ext".to_string(), "s2".to_string()),
        ]);
        fill_ids(&mut spec, "Secrets", "SecretName", "SecretID", &ids);
        assert_eq!(
            spec["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretID"],
            "s1"
        );
        assert_eq!(
            spec["TaskTemplate"]["ContainerSpec"]["Secrets"][1]["SecretID"],
            "s2"
        );
    }

    #[test]
    fn engine_networks_are_not_checked() {
        assert!(!user_defined("host"));
        assert!(!user_defined("container:x"));
        assert!(user_defined("bank_front"));
    }
}
