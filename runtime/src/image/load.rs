//! Loading an OCI image-layout tarball (`index.json` + `blobs/sha256/*`, optionally
//! gzip-compressed) into the store without a registry: `swarm image load FILE`.
//!
//! Blobs are streamed from the tarball into `tmp/`, verified and committed as they come
//! (a layout's blobs are in no useful order); then each `index.json` entry is resolved
//! (an index to this node's platform), its layers unpacked and verified, and only then
//! its reference written.
//!
//! Names: `io.containerd.image.name` if present (what `docker save` writes), else
//! `org.opencontainers.image.ref.name` when it is a full reference (`busybox:1`,
//! `registry/app:tag`). A bare tag (`latest`, what `skopeo copy oci:DIR:TAG` writes)
//! names nothing: the image is stored untagged, by digest, as `docker load` does.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::config::ConfigFile;
use super::manifest::{choose_platform, digest_hex, node_arch, Descriptor, Manifest};
use super::pull::parse_reference;
use super::store::{verify, ImageStore, RefRecord};
use super::Image;
use crate::{Error, Result};

const NAME_ANNOTATIONS: [&str; 2] = [
    "io.containerd.image.name",
    "org.opencontainers.image.ref.name",
];

impl ImageStore {
    /// Load every image of an OCI layout tarball into the store; same verification as a
    /// pull (every blob's digest, every layer's diff_id).
    pub fn load_oci_archive(&self, path: &Path) -> Result<Vec<Image>> {
        let what = |m: &str| format!("load {}: {m}", path.display());
        let file = std::fs::File::open(path).map_err(Error::path(path))?;
        let mut input = BufReader::with_capacity(1 << 20, file);
        let magic = input.fill_buf().map_err(Error::path(path))?;
        let reader: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::bufread::MultiGzDecoder::new(input))
        } else {
            Box::new(input)
        };
        let mut pin = self.pin([]);
        let mut index_json = None;
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(Error::io(what("read tar")))? {
            let mut entry = entry.map_err(Error::io(what("read tar entry")))?;
            let name = entry
                .path()
                .map_err(Error::io(what("entry path")))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            if name == "index.json" {
                let mut buf = Vec::new();
                entry
                    .read_to_end(&mut buf)
                    .map_err(Error::io(what("read index.json")))?;
                index_json = Some(buf);
            } else if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                if !entry.header().entry_type().is_file() || hex.is_empty() {
                    continue;
                }
                let digest = format!("sha256:{hex}");
                digest_hex(&digest)?;
                pin.add([digest.clone()]);
                self.load_blob(&digest, &mut entry, path)?;
            }
        }
        let index_json = index_json.ok_or_else(|| Error::Other(what("no index.json")))?;
        let Manifest::Index(index) = Manifest::parse(&index_json, None)? else {
            return Err(Error::Other(what("index.json is not an image index")));
        };

        let mut loaded = Vec::new();
        for desc in &index.manifests {
            let name = image_name(desc);
            let label = name.clone().unwrap_or_else(|| desc.digest.clone());
            let manifest_digest = self.resolve(desc, &label)?;
            let m = self.image_manifest(&manifest_digest)?;
            let config = ConfigFile::parse(&self.read_blob(&m.config.digest)?)?;
            let diff_ids = config.diff_ids();
            if diff_ids.len() != m.layers.len() {
                return Err(Error::Other(format!(
                    "image {label}: config lists {} diff_ids for {} layers",
                    diff_ids.len(),
                    m.layers.len()
                )));
            }
            pin.add(diff_ids.iter().cloned());
            for (layer, diff_id) in m.layers.iter().zip(diff_ids) {
                self.require_blob(&layer.digest, &label)?;
                self.unpack_layer(
                    &layer.digest,
                    diff_id,
                    &format!("image {label} layer {}", layer.digest),
                )?;
            }
            let key = name.unwrap_or_else(|| desc.digest.clone());
            let image = self.image(&key, &manifest_digest)?;
            self.update_refs(|refs| {
                refs.insert(
                    key.clone(),
                    RefRecord {
                        digest: desc.digest.clone(),
                        manifest: manifest_digest.clone(),
                    },
                )
            })?;
            loaded.push(image);
        }
        drop(pin);
        Ok(loaded)
    }

    /// Stream one blob into `tmp/`, verify, commit.
    fn load_blob(&self, digest: &str, entry: &mut impl Read, archive: &Path) -> Result<()> {
        if self.has_blob(digest) {
            return Ok(());
        }
        let mut tmp = self.tmp_file()?;
        let mut hashing = HashingWrite {
            inner: &mut tmp,
            hasher: Sha256::new(),
        };
        std::io::copy(entry, &mut hashing).map_err(Error::io(format!(
            "load {}: copy blob {digest}",
            archive.display()
        )))?;
        let actual = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
        verify(
            digest,
            &actual,
            &format!("archive {} blob", archive.display()),
        )?;
        self.commit_blob(digest, tmp)
    }

    fn require_blob(&self, digest: &str, label: &str) -> Result<()> {
        if self.has_blob(digest) {
            Ok(())
        } else {
            Err(Error::Other(format!(
                "image {label}: blob {digest} is not in the archive"
            )))
        }
    }

    /// The manifest digest for an index.json entry: itself, or this platform's entry of
    /// the index it names.
    fn resolve(&self, desc: &Descriptor, label: &str) -> Result<String> {
        self.require_blob(&desc.digest, label)?;
        match Manifest::parse(&self.read_blob(&desc.digest)?, Some(&desc.media_type))? {
            Manifest::Image(_) => Ok(desc.digest.clone()),
            Manifest::Index(index) => {
                let entry = choose_platform(&index, node_arch()).map_err(|cause| Error::Pull {
                    reference: label.to_string(),
                    cause,
                    retryable: false,
                })?;
                self.require_blob(&entry.digest, label)?;
                Ok(entry.digest.clone())
            }
        }
    }
}

/// The reference an index.json entry names, normalized; `None` for bare tags.
fn image_name(desc: &Descriptor) -> Option<String> {
    let annotations = desc.annotations.as_ref()?;
    NAME_ANNOTATIONS.iter().find_map(|key| {
        let value = annotations.get(*key)?;
        if !value.contains(':') && !value.contains('/') {
            return None;
        }
        parse_reference(value).ok().map(|r| r.whole())
    })
}

struct HashingWrite<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: std::io::Write> std::io::Write for HashingWrite<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(annotations: &[(&str, &str)]) -> Descriptor {
        Descriptor {
            media_type: String::new(),
            digest: "sha256:00".into(),
            size: 0,
            platform: None,
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    #[test]
    fn names_from_annotations() {
        let ref_name = "org.opencontainers.image.ref.name";
        assert_eq!(
            image_name(&desc(&[(ref_name, "busybox:1")])).as_deref(),
            Some("docker.io/library/busybox:1")
        );
        assert_eq!(
            image_name(&desc(&[(ref_name, "127.0.0.1:5000/app:2")])).as_deref(),
            Some("127.0.0.1:5000/app:2")
        );
        assert_eq!(image_name(&desc(&[(ref_name, "latest")])), None);
        assert_eq!(
            image_name(&desc(&[
                ("io.containerd.image.name", "docker.io/library/app:3"),
                (ref_name, "3")
            ]))
            .as_deref(),
            Some("docker.io/library/app:3")
        );
    }
}
