//! The fields every stored object carries: its ID, `Version {Index}` (the Raft index of
//! the object's last write) and the creation and update times (RFC3339Nano strings).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::serde_util::rfc3339_nano;

/// `Version {Index}`: the Raft index at which the object was last written. A client
/// sends it back on update; a stale one is refused with `update out of sequence`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    #[serde(default)]
    pub index: u64,
}

impl Version {
    pub fn new(index: u64) -> Self {
        Version { index }
    }
}

/// `ID`, `Version`, `CreatedAt`, `UpdatedAt`: flattened into every object, as Go embeds
/// `Meta` (and the ID next to it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Meta {
    #[serde(rename = "ID", alias = "Id", alias = "id", default)]
    pub id: String,
    #[serde(default)]
    pub version: Version,
    #[serde(with = "rfc3339_nano", default)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "rfc3339_nano", default)]
    pub updated_at: DateTime<Utc>,
}

impl Meta {
    /// A meta with only the ID set; the store fills the rest on create.
    pub fn with_id(id: impl Into<String>) -> Self {
        Meta {
            id: id.into(),
            ..Meta::default()
        }
    }
}
