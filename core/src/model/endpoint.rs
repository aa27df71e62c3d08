//! The service endpoint: `EndpointSpec {Mode, Ports}` as asked, and `Endpoint {Spec,
//! Ports, VirtualIPs}` as the allocator made it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::serde_util::{is_default, null_as_default, string_enum};

string_enum! {
    /// `EndpointSpec.Mode`: a virtual IP or DNS round robin.
    pub enum ResolutionMode {
        Vip => "vip",
        Dnsrr => "dnsrr",
    }
}

string_enum! {
    /// `PortConfig.Protocol`.
    pub enum PortProtocol {
        Tcp => "tcp",
        Udp => "udp",
        Sctp => "sctp",
    }
}

string_enum! {
    /// `PortConfig.PublishMode`: through the routing mesh, or on the task's node only.
    pub enum PublishMode {
        Ingress => "ingress",
        Host => "host",
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ResolutionMode>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<PortConfig>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One published port. `PublishedPort` 0 asks the allocator to pick one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortConfig {
    #[serde(default, skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<PortProtocol>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub target_port: u32,
    #[serde(default, skip_serializing_if = "is_default")]
    pub published_port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_mode: Option<PublishMode>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PortConfig {
    /// The protocol, `tcp` when unset.
    pub fn protocol_or_default(&self) -> PortProtocol {
        self.protocol.clone().unwrap_or(PortProtocol::Tcp)
    }

    /// The publish mode, `ingress` when unset.
    pub fn publish_mode_or_default(&self) -> PublishMode {
        self.publish_mode.clone().unwrap_or(PublishMode::Ingress)
    }
}

/// `Endpoint`: the spec the allocator last acted on, the ports it published, the VIPs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Endpoint {
    #[serde(default)]
    pub spec: EndpointSpec,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<PortConfig>,
    #[serde(
        rename = "VirtualIPs",
        alias = "VirtualIps",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub virtual_ips: Vec<EndpointVirtualIp>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointVirtualIp {
    #[serde(rename = "NetworkID", default, skip_serializing_if = "is_default")]
    pub network_id: String,
    /// CIDR form, e.g. `10.0.0.5/24`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub addr: String,
}
