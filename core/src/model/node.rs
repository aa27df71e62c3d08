//! `Node`: a machine in the swarm — the spec its operator sets (role, availability,
//! labels), the description its agent reports, and its status as the managers see it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::meta::Meta;
use super::platform::Platform;
use super::serde_util::{is_default, null_as_default, string_enum};
use super::task::NetworkAttachment;
use super::task_spec::Resources;

string_enum! {
    /// `Spec.Role`.
    pub enum NodeRole {
        Worker => "worker",
        Manager => "manager",
    }
}

string_enum! {
    /// `Spec.Availability`: `active` takes tasks, `pause` keeps its tasks but takes no
    /// new ones, `drain` has its tasks moved away.
    pub enum NodeAvailability {
        Active => "active",
        Pause => "pause",
        Drain => "drain",
    }
}

string_enum! {
    /// `Status.State`.
    pub enum NodeState {
        Unknown => "unknown",
        Down => "down",
        Ready => "ready",
        Disconnected => "disconnected",
    }
}

string_enum! {
    /// `ManagerStatus.Reachability`.
    pub enum Reachability {
        Unknown => "unknown",
        Unreachable => "unreachable",
        Reachable => "reachable",
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Node {
    #[serde(flatten)]
    pub meta: Meta,
    #[serde(default)]
    pub spec: NodeSpec,
    #[serde(default)]
    pub description: NodeDescription,
    #[serde(default)]
    pub status: NodeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_status: Option<ManagerStatus>,
    /// The node's own addresses on networks (swarmkit's `Node.Attachments`): one on
    /// `ingress` for the routing mesh, given by the allocator.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub attachments: Vec<NetworkAttachment>,
}

impl Node {
    pub fn id(&self) -> &str {
        &self.meta.id
    }

    /// `Spec.Name` if set, else the hostname: what `docker node` commands match a name on.
    pub fn name(&self) -> &str {
        if self.spec.name.is_empty() {
            &self.description.hostname
        } else {
            &self.spec.name
        }
    }
}

/// What `POST /nodes/{id}/update` carries. Lossless.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeSpec {
    #[serde(default, skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<NodeRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<NodeAvailability>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeDescription {
    #[serde(default, skip_serializing_if = "is_default")]
    pub hostname: String,
    #[serde(default)]
    pub platform: Platform,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub engine: EngineDescription,
    #[serde(rename = "TLSInfo", alias = "TlsInfo", default)]
    pub tls_info: TlsInfo,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EngineDescription {
    #[serde(default, skip_serializing_if = "is_default")]
    pub engine_version: String,
    /// `engine.labels.*` in constraints.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub plugins: Vec<PluginDescription>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PluginDescription {
    #[serde(rename = "Type", default, skip_serializing_if = "is_default")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub name: String,
}

/// The root CA and the issuer of a node's (or the cluster's) certificate. The byte
/// fields are base64 strings, as Go's `[]byte` is in JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TlsInfo {
    #[serde(default, skip_serializing_if = "is_default")]
    pub trust_root: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub cert_issuer_subject: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub cert_issuer_public_key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<NodeState>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub message: String,
    /// The address the node's agent connected from.
    #[serde(default, skip_serializing_if = "is_default")]
    pub addr: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManagerStatus {
    #[serde(default, skip_serializing_if = "is_default")]
    pub leader: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reachability: Option<Reachability>,
    /// The manager's cluster address, `IP:2377`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub addr: String,
}

/// The node's address (CIDR) on the ingress network `ingress_id`, once the allocator
/// gave it one.
pub fn node_ingress_addr<'a>(node: &'a Node, ingress_id: &str) -> Option<&'a str> {
    node.attachments
        .iter()
        .find(|a| a.network.id() == ingress_id)
        .and_then(|a| a.addresses.first())
        .map(String::as_str)
}
