//! `Mount`: a bind, volume or tmpfs mount of a container, with its per-type options.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::driver::Driver;
use super::serde_util::{is_default, null_as_default, string_enum};

string_enum! {
    /// `Mount.Type`.
    pub enum MountType {
        Bind => "bind",
        Volume => "volume",
        Tmpfs => "tmpfs",
        Npipe => "npipe",
        Cluster => "cluster",
        Image => "image",
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Mount {
    #[serde(rename = "Type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MountType>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub source: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub target: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
    /// Consistency, ImageOptions, ClusterOptions and anything newer.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BindOptions {
    /// `private`, `rprivate`, `shared`, `rshared`, `slave`, `rslave`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub propagation: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub non_recursive: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub create_mountpoint: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeOptions {
    #[serde(default, skip_serializing_if = "is_default")]
    pub no_copy: bool,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub subpath: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_config: Option<Driver>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TmpfsOptions {
    #[serde(default, skip_serializing_if = "is_default")]
    pub size_bytes: i64,
    /// Permission bits, e.g. 1023 for 01777.
    #[serde(default, skip_serializing_if = "is_default")]
    pub mode: u32,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
