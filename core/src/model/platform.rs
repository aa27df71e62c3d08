//! `Platform {Architecture, OS}`: what a node runs on, and what an image can run on.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::serde_util::is_default;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Platform {
    #[serde(default, skip_serializing_if = "is_default")]
    pub architecture: String,
    #[serde(
        rename = "OS",
        alias = "Os",
        default,
        skip_serializing_if = "is_default"
    )]
    pub os: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
