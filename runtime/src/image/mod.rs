//! Images: pull from OCI distribution registries, a content-addressed store on disk,
//! layers unpacked once by diff_id, OCI layout tarballs loaded without a registry,
//! garbage collection.
//!
//! ```text
//! <data>/image/
//!   blobs/sha256/<hex>        manifests, configs, compressed layers (verified, immutable)
//!   layers/<diff_id hex>/     one unpacked layer, overlayfs whiteouts applied
//!   refs.json                 name:tag -> index/manifest digest + the platform manifest
//!   tmp/                      half-written files; never visible elsewhere
//! ```
//!
//! `pull.rs` talks to registries, `load.rs` reads layout tarballs, both feed `store.rs`
//! (atomic commits, single-flight, pins); `push.rs` sends a tagged image back to a
//! registry; `tags.rs` tags, untags and removes; `info.rs` describes images for
//! `image ls`/`inspect`; `progress.rs` types what pulls and pushes report; `unpack.rs`
//! turns a layer blob into a directory; `config.rs` and `manifest.rs` parse; `gc.rs`
//! collects.

pub mod config;
mod gc;
mod info;
mod load;
pub mod manifest;
pub mod progress;
mod pull;
mod push;
mod store;
mod tags;
pub mod unpack;

pub use gc::GcReport;
pub use info::ImageInfo;
pub use progress::{LayerStage, Progress, Reporter};
pub use pull::{parse_reference, DistributionInfo};
pub use push::PushResult;
pub use store::{ImageStore, RefRecord};
pub use tags::{ContainerUse, Removed};

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

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

impl RegistryOptions {
    /// The credentials as the distribution client takes them.
    pub(crate) fn oci_auth(&self) -> oci_client::secrets::RegistryAuth {
        use oci_client::secrets::RegistryAuth as OciAuth;
        match &self.auth {
            Some(a) => OciAuth::Basic(a.username.clone(), a.password.clone()),
            None => OciAuth::Anonymous,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

impl ImageStore {
    /// Pull `reference` (by tag or digest) from its registry into the store and return
    /// the image for this node's platform. Blobs and layers already present are reused;
    /// concurrent pulls in this process download each blob once.
    pub async fn pull(&self, reference: &str, opts: &RegistryOptions) -> Result<Image> {
        pull::pull(self, reference, opts, &Reporter::default()).await
    }

    /// [`ImageStore::pull`], reporting its stages (`POST /images/create`).
    pub async fn pull_with_progress(
        &self,
        reference: &str,
        opts: &RegistryOptions,
        progress: &Reporter,
    ) -> Result<Image> {
        pull::pull(self, reference, opts, progress).await
    }

    /// Push the tagged image `reference` to its registry, reporting as it goes.
    pub async fn push(
        &self,
        reference: &str,
        opts: &RegistryOptions,
        progress: &Reporter,
    ) -> Result<PushResult> {
        push::push(self, reference, opts, progress).await
    }

    /// The registry's descriptor and platforms for `reference` (`docker service create`
    /// pins images with it), without pulling the image.
    pub async fn distribution(
        &self,
        reference: &str,
        opts: &RegistryOptions,
    ) -> Result<DistributionInfo> {
        pull::distribution(self, reference, opts).await
    }

    /// The local image for a reference (`busybox:1`, `host:port/name@sha256:...`), a
    /// digest (`sha256:...` of its index, manifest or config) or an image ID prefix
    /// (12 or more hex digits of the config digest).
    pub fn get(&self, reference: &str) -> Result<Image> {
        let (key, rec) = self.find(reference)?;
        self.image(&key, &rec.manifest)
    }

    /// The store's entry for a reference, digest or image ID prefix (as [`ImageStore::get`]
    /// takes them): its key in refs.json (for `name@digest` of an image pulled by tag,
    /// the reference itself) and its record.
    pub fn find(&self, reference: &str) -> Result<(String, RefRecord)> {
        let refs = self.refs()?;
        let none = || Error::NoSuchImage(reference.to_string());
        let config_of = |rec: &RefRecord| {
            self.image_manifest(&rec.manifest)
                .map(|m| m.config.digest)
                .unwrap_or_default()
        };
        let by_digest = |digest: &str| {
            refs.iter()
                .find(|(_, r)| r.digest == digest || r.manifest == digest || config_of(r) == digest)
        };
        if reference.starts_with("sha256:") {
            let (key, rec) = by_digest(reference).ok_or_else(none)?;
            return Ok((key.clone(), rec.clone()));
        }
        if reference.len() >= 12 && reference.bytes().all(|b| b.is_ascii_hexdigit()) {
            let prefix = format!("sha256:{reference}");
            if let Some((key, rec)) = refs.iter().find(|(_, r)| config_of(r).starts_with(&prefix)) {
                return Ok((key.clone(), rec.clone()));
            }
        }
        let parsed = parse_reference(reference)?;
        let key = parsed.whole();
        if let Some(rec) = refs.get(&key) {
            return Ok((key, rec.clone()));
        }
        // `name@digest` of an image pulled by tag: same repository, same content.
        if let Some(digest) = parsed.digest() {
            let repo = format!("{}/{}", parsed.registry(), parsed.repository());
            if let Some((_, rec)) = refs.iter().find(|(k, r)| {
                (r.digest == digest || r.manifest == digest)
                    && parse_reference(k)
                        .is_ok_and(|p| format!("{}/{}", p.registry(), p.repository()) == repo)
            }) {
                return Ok((key, rec.clone()));
            }
        }
        Err(none())
    }

    /// Every reference in the store with its record.
    pub fn list(&self) -> Result<Vec<(String, RefRecord)>> {
        Ok(self.refs()?.into_iter().collect())
    }
}

/// The name Docker shows: `docker.io/library/busybox:1` is `busybox:1`,
/// `docker.io/user/app` is `user/app`, others stay whole.
pub fn familiar(name: &str) -> String {
    name.strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name)
        .to_string()
}

/// A registry host (`127.0.0.1:5000`, `localhost`) on the loopback network: Docker speaks
/// plain HTTP to 127.0.0.0/8 without `--insecure-registry`, and so do we.
pub fn is_loopback_registry(host: &str) -> bool {
    let bare = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') {
                h
            } else {
                host
            }
        }),
    };
    bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_and_familiar_names() {
        assert!(is_loopback_registry("127.0.0.1:5000"));
        assert!(is_loopback_registry("127.3.2.1"));
        assert!(is_loopback_registry("localhost:5000"));
        assert!(is_loopback_registry("[::1]:5000"));
        assert!(!is_loopback_registry("10.0.0.1:5000"));
        assert!(!is_loopback_registry("docker.io"));
        assert!(!is_loopback_registry("127.0.0.1.example.com:5000"));
        assert_eq!(familiar("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(familiar("docker.io/user/app"), "user/app");
        assert_eq!(familiar("127.0.0.1:5000/app:1.0"), "127.0.0.1:5000/app:1.0");
    }
}
