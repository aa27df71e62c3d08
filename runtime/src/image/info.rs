//! Images as `image ls` and `image inspect` see them: the store's references grouped by
//! image ID (the config digest, as Docker names images), with the config and sizes.

use std::collections::BTreeMap;

use super::store::{ImageStore, RefRecord};
use super::{familiar, parse_reference};
use crate::Result;

/// One image: every reference naming it, its config as stored.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// The config digest (`sha256:...`): Docker's image ID.
    pub id: String,
    /// The platform manifest's digest.
    pub manifest: String,
    /// Keys of refs.json that name this image, with their records, sorted.
    pub references: Vec<(String, RefRecord)>,
    /// The config blob as JSON (`created`, `config`, `rootfs`, `architecture`, `os`).
    pub config: serde_json::Value,
    /// Compressed layers and config, as stored and as a registry serves them.
    pub size: u64,
}

impl ImageInfo {
    /// `repo:tag` of every tag (familiar names), sorted.
    pub fn repo_tags(&self) -> Vec<String> {
        self.references
            .iter()
            .filter_map(|(k, _)| {
                let r = named(k)?;
                r.tag()?;
                (r.digest().is_none()).then(|| familiar(k))
            })
            .collect()
    }

    /// `repo@digest` of every repository naming it (the digest its reference resolved
    /// to), sorted and unique.
    pub fn repo_digests(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .references
            .iter()
            .filter_map(|(k, rec)| {
                let r = named(k)?;
                let repo = familiar(&format!("{}/{}", r.registry(), r.repository()));
                Some(format!("{repo}@{}", r.digest().unwrap_or(&rec.digest)))
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// The reference a refs.json key names; `None` for the bare digests of untagged
/// (dangling) images, which would otherwise parse as `sha256:<tag>`.
pub(crate) fn named(key: &str) -> Option<oci_client::Reference> {
    if key.starts_with("sha256:") {
        return None;
    }
    parse_reference(key).ok()
}

impl ImageStore {
    /// Every image in the store, by ID.
    pub fn images(&self) -> Result<Vec<ImageInfo>> {
        let mut by_id: BTreeMap<String, ImageInfo> = BTreeMap::new();
        for (key, rec) in self.refs()? {
            // A reference whose manifest went missing names nothing we can show.
            let Ok(m) = self.image_manifest(&rec.manifest) else {
                continue;
            };
            let id = m.config.digest.clone();
            if let Some(info) = by_id.get_mut(&id) {
                info.references.push((key, rec));
                continue;
            }
            let config = self
                .read_blob(&id)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            let size = m.config.size.max(0) as u64
                + m.layers.iter().map(|l| l.size.max(0) as u64).sum::<u64>();
            by_id.insert(
                id.clone(),
                ImageInfo {
                    id,
                    manifest: rec.manifest.clone(),
                    references: vec![(key, rec)],
                    config,
                    size,
                },
            );
        }
        Ok(by_id.into_values().collect())
    }

    /// The image a reference, digest or ID prefix names.
    pub fn image_info(&self, reference: &str) -> Result<ImageInfo> {
        let (_, rec) = self.find(reference)?;
        let id = self.image_manifest(&rec.manifest)?.config.digest;
        self.images()?
            .into_iter()
            .find(|i| i.id == id)
            .ok_or_else(|| crate::Error::NoSuchImage(reference.to_string()))
    }
}
