//! Garbage collection: drop the references nobody keeps, then every blob and unpacked
//! layer that no remaining reference (and no running pull or load) needs.
//!
//! Mark and sweep under the pin lock: a pull pins its digests before it looks at the
//! store, so gc either sees the pin or has finished before the pull checks what exists.

use std::collections::HashSet;
use std::path::Path;

use super::pull::parse_reference;
use super::store::{ImageStore, RefRecord};
use crate::{Error, Result};

/// What a gc run removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GcReport {
    /// References removed from the store.
    pub images_removed: Vec<String>,
    pub blobs_removed: usize,
    pub layers_removed: usize,
    /// Bytes of blobs and layer files removed (file sizes, not disk blocks).
    pub bytes_freed: u64,
}

impl ImageStore {
    /// Remove images not in `keep` (references as given to pull, or digests of an
    /// index, manifest or config), then blobs and layers nothing references any more.
    pub fn gc(&self, keep: &[String]) -> Result<GcReport> {
        let pinned = self.pinned();
        let keep_refs: HashSet<String> = keep
            .iter()
            .filter(|k| !k.starts_with("sha256:"))
            .filter_map(|k| parse_reference(k).ok().map(|r| r.whole()))
            .chain(keep.iter().cloned())
            .collect();
        let kept = |key: &str, rec: &RefRecord| {
            keep_refs.contains(key)
                || keep.iter().any(|k| *k == rec.digest || *k == rec.manifest)
                || keep.iter().any(|k| {
                    k.starts_with("sha256:")
                        && self
                            .image_manifest(&rec.manifest)
                            .is_ok_and(|m| m.config.digest == *k)
                })
        };
        let images_removed = self.update_refs(|refs| {
            let gone: Vec<String> = refs
                .iter()
                .filter(|(k, r)| !kept(k, r))
                .map(|(k, _)| k.clone())
                .collect();
            for k in &gone {
                refs.remove(k);
            }
            gone
        })?;

        let mut live: HashSet<String> = pinned.keys().cloned().collect();
        for rec in self.refs()?.values() {
            self.live_digests(rec, &mut live);
        }
        let mut report = GcReport {
            images_removed,
            ..Default::default()
        };
        for (dir, is_layer) in [
            (self.root().join("blobs/sha256"), false),
            (self.root().join("layers"), true),
        ] {
            for entry in std::fs::read_dir(&dir).map_err(Error::path(&dir))? {
                let entry = entry.map_err(Error::path(&dir))?;
                let digest = format!("sha256:{}", entry.file_name().to_string_lossy());
                if live.contains(&digest) {
                    continue;
                }
                let path = entry.path();
                report.bytes_freed += size_of(&path);
                if is_layer {
                    std::fs::remove_dir_all(&path).map_err(Error::path(&path))?;
                    report.layers_removed += 1;
                } else {
                    std::fs::remove_file(&path).map_err(Error::path(&path))?;
                    report.blobs_removed += 1;
                }
            }
        }
        drop(pinned);
        Ok(report)
    }
}

fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| size_of(&e.path())).sum())
        .unwrap_or(0)
}
