//! Images: pull from OCI distribution registries, a content-addressed store on disk,
//! layers unpacked once by diff_id, OCI layout tarballs loaded without a registry.
//!
//! ```text
//! <data>/image/
//!   blobs/sha256/<hex>        manifests, configs, compressed layers (verified, immutable)
//!   layers/<diff_id hex>/     one unpacked layer, overlayfs whiteouts applied
//!   refs.json                 name:tag -> manifest digest
//!   tmp/                      half-written files; never visible elsewhere
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a container needs from its image: the config to run and the unpacked layers
/// to stack, lowest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    /// The reference as the user gave it, normalized (`127.0.0.1:5000/busybox:1`).
    pub reference: String,
    /// Digest of the manifest chosen for this platform (`sha256:...`).
    pub digest: String,
    /// Digest of the image config blob: the image ID, as Docker names it.
    pub config_digest: String,
    pub config: ImageConfig,
    /// Unpacked layer directories, lowest first.
    pub layers: Vec<PathBuf>,
}

/// The parts of the OCI image config that decide how a container runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<HealthConfig>,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Docker's health check: `test` is `["CMD", args...]`, `["CMD-SHELL", "script"]`,
/// or `["NONE"]` (disabled). Zero durations mean Docker's defaults
/// (interval 30 s, timeout 30 s, start period 0, retries 3).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HealthConfig {
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: u32,
}

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// `host:port` of registries spoken to over plain HTTP.
    pub insecure: Vec<String>,
    /// Credentials for the registry of this pull (basic; bearer tokens are fetched with them).
    pub auth: Option<RegistryAuth>,
}

#[derive(Debug, Clone)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}
