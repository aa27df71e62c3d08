//! How values are turned into bytes on disk.
//!
//! JSON, because the core's objects keep unknown fields as `serde_json::Value` and flattened
//! maps, which non-self-describing formats (bincode, postcard) cannot decode.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::StorageError;

pub fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(value).map_err(|source| StorageError::Encode { what, source })
}

pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(bytes).map_err(|source| StorageError::Decode { what, source })
}
