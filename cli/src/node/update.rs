//! `swarm node update` and `swarm node rm`: GET the node, POST its changed spec; DELETE.

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use crate::client::{query_escape, Client};
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    /// Availability of the node ("active", "pause", "drain")
    #[arg(long, value_name = "string")]
    pub availability: Option<String>,
    /// Add or update a node label (key=value)
    #[arg(long = "label-add", value_name = "list")]
    pub label_add: Vec<String>,
    /// Remove a node label if exists
    #[arg(long = "label-rm", value_name = "list")]
    pub label_rm: Vec<String>,
    /// Role of the node ("worker", "manager")
    #[arg(long, value_name = "string")]
    pub role: Option<String>,
    pub node: String,
}

/// The node's spec with the flags applied, as docker's `node update` builds it.
pub fn updated_spec(spec: &Value, a: &UpdateArgs) -> Result<Value> {
    let mut spec = spec.clone();
    if let Some(av) = &a.availability {
        if !["active", "pause", "drain"].contains(&av.as_str()) {
            return Err(UserError(format!(
                "invalid argument \"{av}\" for \"--availability\" flag: invalid availability: {av}"
            ))
            .into());
        }
        spec["Availability"] = json!(av);
    }
    if let Some(role) = &a.role {
        if !["worker", "manager"].contains(&role.as_str()) {
            return Err(UserError(format!(
                "invalid argument \"{role}\" for \"--role\" flag: invalid role: {role}"
            ))
            .into());
        }
        spec["Role"] = json!(role);
    }
    if !spec["Labels"].is_object() {
        spec["Labels"] = json!({});
    }
    for l in &a.label_add {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        spec["Labels"][k] = json!(v);
    }
    for k in &a.label_rm {
        if spec["Labels"].get(k).is_none() {
            return Err(UserError(format!("key {k} doesn't exist in node's labels")).into());
        }
        spec["Labels"].as_object_mut().expect("object").remove(k);
    }
    Ok(spec)
}

async fn node_id(client: &Client, node: &str) -> Result<String> {
    if node == "self" {
        let info = client.get_json("/info").await?;
        return Ok(info["Swarm"]["NodeID"]
            .as_str()
            .unwrap_or_default()
            .to_string());
    }
    Ok(node.to_string())
}

pub async fn update(client: &Client, a: UpdateArgs) -> Result<()> {
    let id = node_id(client, &a.node).await?;
    let node = client
        .get_json(&format!("/nodes/{}", query_escape(&id)))
        .await?;
    let spec = updated_spec(&node["Spec"], &a)?;
    let version = node["Version"]["Index"].as_u64().unwrap_or(0);
    let nid = node["ID"].as_str().unwrap_or_default();
    client
        .post_json(&format!("/nodes/{nid}/update?version={version}"), &spec)
        .await?;
    println!("{}", a.node);
    Ok(())
}

#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// Force remove a node from the swarm
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub nodes: Vec<String>,
}

pub async fn rm(client: &Client, a: RmArgs) -> Result<()> {
    let mut errors = Vec::new();
    for n in &a.nodes {
        let id = node_id(client, n).await?;
        match client
            .delete(&format!("/nodes/{}?force={}", query_escape(&id), a.force))
            .await
        {
            Ok(()) => println!("{n}"),
            Err(e) => errors.push(e.to_string()),
        }
    }
    UserError::all(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> UpdateArgs {
        UpdateArgs {
            availability: None,
            label_add: vec![],
            label_rm: vec![],
            role: None,
            node: "n".into(),
        }
    }

    #[test]
    fn drain_and_labels() {
        let spec = json!({"Role": "worker", "Availability": "active", "Labels": {"a": "1"}});
        let a = UpdateArgs {
            availability: Some("drain".into()),
            label_add: vec!["zone=b".into()],
            label_rm: vec!["a".into()],
            ..args()
        };
        assert_eq!(
            updated_spec(&spec, &a).unwrap(),
            json!({"Role": "worker", "Availability": "drain", "Labels": {"zone": "b"}})
        );
    }

    #[test]
    fn bad_values_in_dockers_words() {
        let spec = json!({"Labels": {}});
        let a = UpdateArgs {
            availability: Some("off".into()),
            ..args()
        };
        assert_eq!(
            updated_spec(&spec, &a).unwrap_err().to_string(),
            "invalid argument \"off\" for \"--availability\" flag: invalid availability: off"
        );
        let a = UpdateArgs {
            label_rm: vec!["x".into()],
            ..args()
        };
        assert_eq!(
            updated_spec(&spec, &a).unwrap_err().to_string(),
            "key x doesn't exist in node's labels"
        );
    }
}

#[derive(Debug, Clone, Args)]
pub struct RoleArgs {
    #[arg(required = true)]
    pub nodes: Vec<String>,
}

/// `node promote` / `node demote`: the role update, with docker's words.
pub async fn set_role(client: &Client, a: RoleArgs, manager: bool) -> Result<()> {
    let role = if manager { "manager" } else { "worker" };
    for n in &a.nodes {
        let id = node_id(client, n).await?;
        let node = client
            .get_json(&format!("/nodes/{}", query_escape(&id)))
            .await?;
        if node["Spec"]["Role"] == role {
            println!("Node {n} is already a {role}.");
            continue;
        }
        let mut spec = node["Spec"].clone();
        spec["Role"] = json!(role);
        let version = node["Version"]["Index"].as_u64().unwrap_or(0);
        let nid = node["ID"].as_str().unwrap_or_default();
        client
            .post_json(&format!("/nodes/{nid}/update?version={version}"), &spec)
            .await?;
        if manager {
            println!("Node {n} promoted to a manager in the swarm.");
        } else {
            println!("Manager {n} demoted in the swarm.");
        }
    }
    Ok(())
}
