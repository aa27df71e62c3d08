//! Pushing a tagged image from the store to an OCI distribution registry.
//!
//! ```text
//! reference ─▶ local tag? (else "An image does not exist locally with the tag")
//!           ─▶ authenticate (push + pull scopes: HEAD needs pull)
//!           ─▶ per layer, concurrently:  HEAD blob ── 200 ─▶ Layer already exists
//!                                        └ 404 ─▶ mount from a repository of the same
//!                                                 registry that holds it (201 ─▶ Mounted)
//!                                        └ else ─▶ POST upload, PUT ?digest= with the
//!                                                  file streamed in 1 MiB chunks
//!           ─▶ config blob (the same, silently) ─▶ PUT manifest, its bytes and media
//!              type exactly as stored, so its digest is the one we hold
//! ```
//!
//! The platform manifest is pushed, not an index we pulled it from: only this
//! platform's blobs are here (what dockerd does without the containerd store).

use bytes::Bytes;
use futures::future::join_all;
use oci_client::errors::OciDistributionError;
use oci_client::{Reference, RegistryOperation};
use tokio::io::AsyncReadExt;

use super::manifest::{Descriptor, DOCKER_MANIFEST, OCI_MANIFEST};
use super::progress::{LayerStage, Progress, Reporter};
use super::pull::{parse_reference, Puller};
use super::store::ImageStore;
use super::RegistryOptions;
use crate::{Error, Result};

/// Bytes read from a layer file per request body chunk.
const CHUNK: usize = 1 << 20;

/// What a push sent: the manifest as the registry holds it now.
#[derive(Debug, Clone, PartialEq)]
pub struct PushResult {
    pub reference: String,
    pub tag: String,
    pub digest: String,
    pub size: usize,
}

/// The media type to PUT a stored manifest with: its own `mediaType`, else by its
/// config's (Docker configs mean a Docker manifest), else OCI.
pub fn manifest_media_type(bytes: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    if let Some(t) = v["mediaType"].as_str() {
        return t.to_string();
    }
    match v["config"]["mediaType"].as_str() {
        Some("application/vnd.docker.container.image.v1+json") => DOCKER_MANIFEST.to_string(),
        _ => OCI_MANIFEST.to_string(),
    }
}

pub(crate) async fn push(
    store: &ImageStore,
    reference: &str,
    opts: &RegistryOptions,
    progress: &Reporter,
) -> Result<PushResult> {
    let parsed = parse_reference(reference)?;
    let name = parsed.whole();
    let familiar_repo = format!("{}/{}", parsed.registry(), parsed.repository());
    let refs = store.refs()?;
    let rec = refs
        .get(&name)
        .ok_or_else(|| Error::NoSuchTag(super::familiar(&familiar_repo)))?;
    let manifest_bytes = store.read_blob(&rec.manifest)?;
    let manifest = store.image_manifest(&rec.manifest)?;
    let media_type = manifest_media_type(&manifest_bytes);

    let client = store.client(opts, &parsed);
    let auth = opts.oci_auth();
    let puller = Puller {
        store,
        client: &client,
        reference: &parsed,
        name: &name,
    };
    let fail = |e: OciDistributionError| push_error(puller.error(e), &name);
    progress.send(Progress::PushRefersTo {
        repository: familiar_repo.clone(),
    });
    // Push first: a token server that refuses it says so here, in its words.
    client
        .auth(&parsed, &auth, RegistryOperation::Push)
        .await
        .map_err(fail)?;
    client
        .auth(&parsed, &auth, RegistryOperation::Pull)
        .await
        .map_err(fail)?;

    for l in &manifest.layers {
        progress.layer(&l.digest, LayerStage::Preparing);
    }
    let sources = mount_sources(store, &parsed, &refs);
    let pusher = Pusher {
        store,
        client: &client,
        reference: &parsed,
        name: &name,
        puller: &puller,
        sources: &sources,
    };
    let results = join_all(manifest.layers.iter().map(|l| pusher.blob(l, progress))).await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    pusher.blob(&manifest.config, &Reporter::default()).await?;

    let content_type = media_type
        .parse()
        .map_err(|_| Error::Other(format!("invalid media type {media_type:?}")))?;
    client
        .push_manifest_raw(&parsed, manifest_bytes.clone(), content_type)
        .await
        .map_err(fail)?;
    let tag = parsed.tag().unwrap_or("latest").to_string();
    let result = PushResult {
        reference: name,
        tag: tag.clone(),
        digest: rec.manifest.clone(),
        size: manifest_bytes.len(),
    };
    progress.send(Progress::Pushed {
        tag,
        digest: result.digest.clone(),
        size: result.size,
    });
    Ok(result)
}

/// A pull error (same registry client, same wording) as a push error.
fn push_error(e: Error, name: &str) -> Error {
    match e {
        Error::Pull {
            cause, retryable, ..
        } => Error::Push {
            reference: name.to_string(),
            cause,
            retryable,
        },
        e => e,
    }
}

/// Per blob digest, the other repositories of this registry that the store has
/// images of: a registry that holds the blob there mounts it instead of an upload.
fn mount_sources(
    store: &ImageStore,
    target: &Reference,
    refs: &std::collections::BTreeMap<String, super::RefRecord>,
) -> Vec<(String, Reference)> {
    let mut out = Vec::new();
    for (key, rec) in refs {
        let Some(r) = super::info::named(key) else {
            continue;
        };
        if r.registry() != target.registry() || r.repository() == target.repository() {
            continue;
        }
        if let Ok(m) = store.image_manifest(&rec.manifest) {
            for l in std::iter::once(&m.config).chain(&m.layers) {
                out.push((l.digest.clone(), r.clone()));
            }
        }
    }
    out
}

struct Pusher<'a> {
    store: &'a ImageStore,
    client: &'a oci_client::Client,
    reference: &'a Reference,
    name: &'a str,
    puller: &'a Puller<'a>,
    sources: &'a [(String, Reference)],
}

impl Pusher<'_> {
    async fn blob(&self, desc: &Descriptor, progress: &Reporter) -> Result<()> {
        let fail = |e: OciDistributionError| push_error(self.puller.error(e), self.name);
        if self
            .client
            .blob_exists(self.reference, &desc.digest)
            .await
            .map_err(fail)?
        {
            progress.layer(&desc.digest, LayerStage::LayerAlreadyExists);
            return Ok(());
        }
        for (digest, source) in self.sources.iter().filter(|(d, _)| *d == desc.digest) {
            // Not mounted (202: the registry opened an upload instead, or the source
            // is not readable): upload it.
            if self
                .client
                .mount_blob(self.reference, source, digest)
                .await
                .is_ok()
            {
                progress.layer(
                    &desc.digest,
                    LayerStage::Mounted {
                        from: source.repository().to_string(),
                    },
                );
                return Ok(());
            }
        }
        let path = self.store.blob_path(&desc.digest)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(Error::path(&path))?;
        let size = file.metadata().await.map_err(Error::path(&path))?.len();
        let stream = file_stream(file, desc.digest.clone(), size, progress.clone());
        self.client
            .push_blob_stream(self.reference, stream, &desc.digest, Some(size))
            .await
            .map_err(fail)?;
        progress.layer(&desc.digest, LayerStage::Pushed);
        Ok(())
    }
}

/// A file as a stream of 1 MiB chunks, reporting `Pushing` as they go: a layer is
/// never held in memory whole.
fn file_stream(
    file: tokio::fs::File,
    digest: String,
    total: u64,
    progress: Reporter,
) -> impl futures::Stream<Item = oci_client::errors::Result<Bytes>> + Send + 'static {
    futures::stream::unfold((file, 0u64), move |(mut file, sent)| {
        let (digest, progress) = (digest.clone(), progress.clone());
        async move {
            let mut buf = vec![0u8; CHUNK];
            let mut filled = 0;
            // Full chunks: a short read is not the end of the file.
            while filled < CHUNK {
                match file.read(&mut buf[filled..]).await {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) => return Some((Err(OciDistributionError::IoError(e)), (file, sent))),
                }
            }
            if filled == 0 {
                return None;
            }
            buf.truncate(filled);
            let sent = sent + filled as u64;
            progress.layer(
                &digest,
                LayerStage::Pushing {
                    current: sent,
                    total,
                },
            );
            Some((Ok(Bytes::from(buf)), (file, sent)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_as_stored() {
        assert_eq!(
            manifest_media_type(br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#),
            DOCKER_MANIFEST
        );
        assert_eq!(
            manifest_media_type(
                br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json"}}"#
            ),
            DOCKER_MANIFEST
        );
        assert_eq!(
            manifest_media_type(br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json"}}"#),
            OCI_MANIFEST
        );
    }

    #[tokio::test]
    async fn file_stream_chunks_and_reports() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let data: Vec<u8> = (0..(CHUNK * 2 + 10)).map(|i| i as u8).collect();
        std::fs::write(tmp.path(), &data).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let file = tokio::fs::File::open(tmp.path()).await.unwrap();
        let chunks: Vec<Bytes> = futures::StreamExt::collect::<Vec<_>>(file_stream(
            file,
            "sha256:abc".into(),
            data.len() as u64,
            Reporter::new(tx),
        ))
        .await
        .into_iter()
        .map(|c| c.unwrap())
        .collect();
        assert_eq!(
            chunks.iter().map(Bytes::len).collect::<Vec<_>>(),
            [CHUNK, CHUNK, 10]
        );
        assert_eq!(chunks.concat(), data);
        let mut last = None;
        while let Ok(p) = rx.try_recv() {
            last = Some(p);
        }
        assert_eq!(
            last,
            Some(Progress::Layer {
                digest: "sha256:abc".into(),
                stage: LayerStage::Pushing {
                    current: data.len() as u64,
                    total: data.len() as u64
                }
            })
        );
    }
}
