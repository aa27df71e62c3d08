//! Manifests and indexes in both dialects (OCI and Docker v2 schema 2), the Accept list
//! registries need, and choosing this node's platform from an index / manifest list.

use serde::Deserialize;

use crate::{Error, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// What we ask a registry for. Registry 2.8 answers 404 to an OCI manifest unless the
/// request accepts its media type.
pub const ACCEPT: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// A single-platform image manifest (OCI or Docker v2 schema 2: same shape).
#[derive(Debug, Clone, Deserialize)]
pub struct ImageManifest {
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// An OCI index or a Docker manifest list.
#[derive(Debug, Clone, Deserialize)]
pub struct Index {
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

#[derive(Debug, Clone)]
pub enum Manifest {
    Image(ImageManifest),
    Index(Index),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
}

impl Manifest {
    /// Parse by the `mediaType` in the body, falling back to the shape (an OCI index may
    /// omit `mediaType`); `content_type` (from the registry) is used when both are silent.
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest> {
        let bad = |e: String| Error::Other(format!("invalid manifest: {e}"));
        let probe: Probe = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if probe.schema_version != Some(2) {
            return Err(bad(format!(
                "unsupported schema version {:?} (only schema 2 manifests are supported)",
                probe.schema_version
            )));
        }
        let media_type = probe.media_type.as_deref().or(content_type).unwrap_or("");
        let is_index = match media_type {
            OCI_INDEX | DOCKER_LIST => true,
            OCI_MANIFEST | DOCKER_MANIFEST => false,
            _ => probe.manifests.is_some(),
        };
        if is_index {
            Ok(Manifest::Index(
                serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?,
            ))
        } else {
            Ok(Manifest::Image(
                serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?,
            ))
        }
    }
}

/// This node's platform in Go's words (`GOARCH`), as indexes name it.
pub fn node_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// Choose the entry for linux/`arch` from an index. Docker's words when none matches.
/// Entries without a platform (attestations, nested artifacts) never match.
pub fn choose_platform<'a>(index: &'a Index, arch: &str) -> Result<&'a Descriptor, String> {
    index
        .manifests
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
        })
        .ok_or_else(|| {
            format!("no matching manifest for linux/{arch} in the manifest list entries")
        })
}

/// `sha256:<64 hex>` only: the store names files by the hex, so nothing else may reach a path.
pub fn digest_hex(digest: &str) -> Result<&str> {
    match digest.split_once(':') {
        Some(("sha256", hex))
            if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(hex)
        }
        _ => Err(Error::Other(format!(
            "unsupported digest {digest:?} (only sha256 is supported)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
      "manifests":[
        {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:aa","size":1,
         "platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
        {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:bb","size":1,
         "platform":{"os":"linux","architecture":"amd64"}}]}"#;

    #[test]
    fn parses_index_and_chooses_platform() {
        let Manifest::Index(index) = Manifest::parse(INDEX.as_bytes(), None).unwrap() else {
            panic!("not an index")
        };
        assert_eq!(
            choose_platform(&index, "amd64").unwrap().digest,
            "sha256:bb"
        );
        assert_eq!(
            choose_platform(&index, "arm64").unwrap().digest,
            "sha256:aa"
        );
        assert_eq!(
            choose_platform(&index, "s390x").unwrap_err(),
            "no matching manifest for linux/s390x in the manifest list entries"
        );
    }

    #[test]
    fn parses_image_manifest_without_media_type() {
        let m = r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:cc","size":2},
                    "layers":[{"mediaType":"y","digest":"sha256:dd","size":3}]}"#;
        let Manifest::Image(m) = Manifest::parse(m.as_bytes(), None).unwrap() else {
            panic!("not an image manifest")
        };
        assert_eq!(m.config.digest, "sha256:cc");
        assert_eq!(m.layers[0].digest, "sha256:dd");
        assert!(Manifest::parse(br#"{"schemaVersion":1}"#, None).is_err());
    }

    #[test]
    fn digest_hex_refuses_paths() {
        let ok = format!("sha256:{}", "a".repeat(64));
        assert_eq!(digest_hex(&ok).unwrap(), "a".repeat(64));
        assert!(digest_hex("sha256:../../etc").is_err());
        assert!(digest_hex(&format!("sha512:{}", "a".repeat(64))).is_err());
    }
}
