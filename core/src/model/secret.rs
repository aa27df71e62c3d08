//! `Secret` and `Config`: named blobs given to tasks as files. `Data` is base64, as
//! Go's `[]byte` is in JSON; the store keeps it as sent and never decodes it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::driver::Driver;
use super::meta::Meta;
use super::serde_util::{is_default, null_as_default};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Secret {
    #[serde(flatten)]
    pub meta: Meta,
    #[serde(default)]
    pub spec: SecretSpec,
}

impl Secret {
    pub fn id(&self) -> &str {
        &self.meta.id
    }
}

/// Lossless.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretSpec {
    #[serde(default, skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    /// Base64. The API leaves it out of GET answers, as Docker does.
    #[serde(default, skip_serializing_if = "is_default")]
    pub data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<Driver>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templating: Option<Driver>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    #[serde(flatten)]
    pub meta: Meta,
    #[serde(default)]
    pub spec: ConfigSpec,
}

impl Config {
    pub fn id(&self) -> &str {
        &self.meta.id
    }
}

/// Lossless.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigSpec {
    #[serde(default, skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    /// Base64.
    #[serde(default, skip_serializing_if = "is_default")]
    pub data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templating: Option<Driver>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
