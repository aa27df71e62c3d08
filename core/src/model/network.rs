//! `Network`: a swarm-scoped (overlay) network as Docker's `swarm.Network` JSON shows it
//! (in `Task.NetworksAttachments[].Network`, and what the API converts for
//! `GET /networks/{id}`): the spec as asked, and what the allocator gave it —
//! `DriverState` (the VXLAN ID) and `IPAMOptions` (the subnets and gateways).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::driver::Driver;
use super::meta::Meta;
use super::serde_util::{is_default, null_as_default};

/// The only driver swarm networks have here.
pub const OVERLAY_DRIVER: &str = "overlay";
/// The IPAM driver the allocator is (libnetwork's built-in one).
pub const DEFAULT_IPAM_DRIVER: &str = "default";
/// `DriverState.Options` key holding the network's VXLAN ID (VNI), as a decimal string.
pub const VXLANID_OPTION: &str = "com.docker.network.driver.overlay.vxlanid_list";
/// The name and label of the routing-mesh network `swarm init` makes.
pub const INGRESS_NAME: &str = "ingress";
/// Marks networks swarm makes itself; users may not set it (swarmkit's `PredefinedLabel`).
pub const PREDEFINED_LABEL: &str = "com.docker.swarm.predefined";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    #[serde(flatten)]
    pub meta: Meta,
    #[serde(default)]
    pub spec: NetworkSpec,
    /// Written by the allocator: `{Name: "overlay", Options: {vxlanid_list: "4097"}}`.
    /// A Go struct value: always written (`{}` before allocation).
    #[serde(default)]
    pub driver_state: Driver,
    /// Written by the allocator: the subnets the network got. Absent until then.
    #[serde(
        rename = "IPAMOptions",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipam_options: Option<IpamOptions>,
}

impl Network {
    pub fn id(&self) -> &str {
        &self.meta.id
    }

    /// The network's VNI, once the allocator gave it one.
    pub fn vni(&self) -> Option<u32> {
        self.driver_state
            .options
            .get(VXLANID_OPTION)
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
    }

    /// Whether the allocator has given it a VNI and its subnets.
    pub fn is_allocated(&self) -> bool {
        self.vni().is_some()
            && self
                .ipam_options
                .as_ref()
                .is_some_and(|o| !o.configs.is_empty())
    }

    /// The driver asked for, `overlay` when unset.
    pub fn driver_name(&self) -> &str {
        self.spec.driver_name()
    }
}

/// `NetworkSpec`: what `POST /networks/create` (swarm scope) asks for. Lossless.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSpec {
    #[serde(default, skip_serializing_if = "is_default")]
    pub name: String,
    /// Go's `Annotations.Labels` has no `omitempty`: always written.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_configuration: Option<Driver>,
    #[serde(rename = "IPv6Enabled", default, skip_serializing_if = "is_default")]
    pub ipv6_enabled: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub internal: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub attachable: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub ingress: bool,
    /// The subnets asked for (`--subnet`, `--gateway`, `--ip-range`), if any.
    #[serde(
        rename = "IPAMOptions",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipam_options: Option<IpamOptions>,
    /// `swarm` for every network here.
    #[serde(default, skip_serializing_if = "is_default")]
    pub scope: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl NetworkSpec {
    /// The driver asked for, `overlay` when unset.
    pub fn driver_name(&self) -> &str {
        match &self.driver_configuration {
            Some(d) if !d.name.is_empty() => &d.name,
            _ => OVERLAY_DRIVER,
        }
    }

    /// The IPAM configs asked for (none: the allocator picks a subnet).
    pub fn ipam_configs(&self) -> &[IpamConfig] {
        self.ipam_options
            .as_ref()
            .map_or(&[][..], |o| o.configs.as_slice())
    }
}

/// `IPAMOptions {Driver, Configs}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamOptions {
    /// A Go struct value: always written.
    #[serde(default)]
    pub driver: Driver,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub configs: Vec<IpamConfig>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `IPAMConfig {Subnet, Range, Gateway}`, CIDR and address strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    #[serde(default, skip_serializing_if = "is_default")]
    pub subnet: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub range: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub gateway: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
