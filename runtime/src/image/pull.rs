//! Pulling an image from an OCI distribution registry with `oci-client`.
//!
//! ```text
//! reference ─▶ manifest (Accept: OCI + Docker, index or image) ─▶ index? choose linux/<arch>
//!           ─▶ pin digests ─▶ download config + layer blobs (once per digest, verified,
//!              tmp/ + fsync + rename) ─▶ unpack layers (once per diff_id, verified)
//!           ─▶ store manifests ─▶ write the ref: only now is the image visible
//! ```
//!
//! All blobs are verified before any layer is unpacked, so a tampered blob leaves no
//! layer behind. Verified blobs of a failed pull stay (content-addressed, reused by the
//! next pull, collected by gc).

use std::pin::Pin as StdPin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::join_all;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth as OciAuth;
use oci_client::{Client, Reference, RegistryOperation};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::config::ConfigFile;
use super::manifest::{choose_platform, node_arch, Descriptor, Manifest, ACCEPT};
use super::progress::{LayerStage, Progress, Reporter};
use super::store::{sha256, verify, ImageStore, RefRecord};
use super::{Image, RegistryOptions};
use crate::{Error, Result};

/// Parse and normalize a reference the way Docker does (`busybox` is
/// `docker.io/library/busybox:latest`).
pub fn parse_reference(reference: &str) -> Result<Reference> {
    reference
        .parse::<Reference>()
        .map_err(|e| Error::InvalidReference {
            reference: reference.to_string(),
            reason: e.to_string(),
        })
}

/// A registry client speaking plain HTTP only to the `insecure` registries.
pub(crate) fn new_client(insecure: Vec<String>) -> Client {
    Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(insecure),
        // We choose the platform ourselves, with Docker's error when none matches.
        platform_resolver: None,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(120)),
        // Pushes stream each blob in one PUT (push.rs): no chunk round trips.
        use_monolithic_push: true,
        ..Default::default()
    })
}

/// What `GET /distribution/{name}/json` answers: the descriptor of the manifest the
/// reference names in its registry (an index or an image manifest) and the platforms
/// it offers. The docker CLI pins services to this digest (`image:tag@sha256:...`).
#[derive(Debug, Clone)]
pub struct DistributionInfo {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
    pub platforms: Vec<super::manifest::Platform>,
}

/// Asks the registry for `reference`'s manifest without pulling anything else than,
/// for a single-platform image, its config (where its platform is written).
pub(crate) async fn distribution(
    store: &ImageStore,
    reference: &str,
    opts: &RegistryOptions,
) -> Result<DistributionInfo> {
    let parsed = parse_reference(reference)?;
    let name = parsed.whole();
    let client = store.client(opts, &parsed);
    let auth = opts.oci_auth();
    let puller = Puller {
        store,
        client: &client,
        reference: &parsed,
        name: &name,
    };
    let (bytes, digest) = puller.top_manifest(&auth).await?;
    let declared = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["mediaType"].as_str().map(str::to_string));
    let (media_type, platforms) = match Manifest::parse(&bytes, None).map_err(|e| puller.wrap(e))? {
        Manifest::Index(index) => (
            declared.unwrap_or_else(|| "application/vnd.oci.image.index.v1+json".into()),
            index
                .manifests
                .iter()
                .filter_map(|d| d.platform.clone())
                .filter(|p| p.os != "unknown")
                .collect(),
        ),
        Manifest::Image(m) => {
            let mut config = Vec::new();
            client
                .pull_blob(&parsed, m.config.digest.as_str(), &mut config)
                .await
                .map_err(|e| puller.error(e))?;
            verify(
                &m.config.digest,
                &sha256(&config),
                &format!("image {name} config"),
            )?;
            let platform: super::manifest::Platform = serde_json::from_slice(&config)
                .map_err(|e| puller.fail(&format!("image config: {e}")))?;
            (
                declared.unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into()),
                vec![platform],
            )
        }
    };
    Ok(DistributionInfo {
        media_type,
        digest,
        size: bytes.len(),
        platforms,
    })
}

pub(crate) async fn pull(
    store: &ImageStore,
    reference: &str,
    opts: &RegistryOptions,
    progress: &Reporter,
) -> Result<Image> {
    let parsed = parse_reference(reference)?;
    let name = parsed.whole();
    let client = store.client(opts, &parsed);
    let auth = opts.oci_auth();
    let puller = Puller {
        store,
        client: &client,
        reference: &parsed,
        name: &name,
    };
    // The manifest the reference names, then this platform's manifest if it is an index.
    let (top_bytes, top_digest) = puller.top_manifest(&auth).await?;
    let (manifest_digest, manifest_bytes, manifest) =
        match Manifest::parse(&top_bytes, None).map_err(|e| puller.wrap(e))? {
            Manifest::Image(m) => (top_digest.clone(), top_bytes.clone(), m),
            Manifest::Index(index) => {
                let entry = choose_platform(&index, node_arch()).map_err(|cause| Error::Pull {
                    reference: name.clone(),
                    cause,
                    retryable: false,
                })?;
                let by_digest = parsed.clone_with_digest(entry.digest.clone());
                let (bytes, _) = client
                    .pull_manifest_raw(&by_digest, &auth, ACCEPT)
                    .await
                    .map_err(|e| puller.error(e))?;
                verify(
                    &entry.digest,
                    &sha256(&bytes),
                    &format!("image {name} platform manifest"),
                )?;
                match Manifest::parse(&bytes, None).map_err(|e| puller.wrap(e))? {
                    Manifest::Image(m) => (entry.digest.clone(), bytes, m),
                    Manifest::Index(_) => {
                        return Err(puller.fail("nested index instead of a platform manifest"))
                    }
                }
            }
        };

    progress.send(Progress::PullingFrom {
        repository: parsed.repository().to_string(),
        tag: parsed
            .digest()
            .or(parsed.tag())
            .unwrap_or("latest")
            .to_string(),
    });
    let mut pin = store.pin(
        [&top_digest, &manifest_digest, &manifest.config.digest]
            .into_iter()
            .cloned()
            .chain(manifest.layers.iter().map(|l| l.digest.clone())),
    );
    let missing: Vec<bool> = manifest
        .layers
        .iter()
        .map(|l| !store.has_blob(&l.digest))
        .collect();
    for (l, missing) in manifest.layers.iter().zip(&missing) {
        let stage = if *missing {
            LayerStage::PullingFsLayer
        } else {
            LayerStage::AlreadyExists
        };
        progress.layer(&l.digest, stage);
    }
    let fresh = missing.iter().any(|m| *m) || !store.has_blob(&manifest.config.digest);
    let blobs = std::iter::once(&manifest.config).chain(&manifest.layers);
    settle(join_all(blobs.map(|d| puller.blob(d, progress))).await)?;

    let config = ConfigFile::parse(&store.read_blob(&manifest.config.digest)?)?;
    let diff_ids = config.diff_ids().to_vec();
    if diff_ids.len() != manifest.layers.len() {
        return Err(puller.fail(&format!(
            "config lists {} diff_ids for {} layers",
            diff_ids.len(),
            manifest.layers.len()
        )));
    }
    pin.add(diff_ids.iter().cloned());
    let name_ref = name.as_str();
    settle(
        join_all(manifest.layers.iter().zip(&diff_ids).zip(&missing).map(
            |((l, d), missing)| async move {
                unpack(store, &l.digest, d, name_ref).await?;
                if *missing {
                    progress.layer(&l.digest, LayerStage::PullComplete);
                }
                Ok(())
            },
        ))
        .await,
    )?;

    store.put_blob(&manifest_digest, &manifest_bytes, "manifest")?;
    store.put_blob(&top_digest, &top_bytes, "index")?;
    let image = store.image(&name, &manifest_digest)?;
    let record = RefRecord {
        digest: top_digest.clone(),
        manifest: manifest_digest,
    };
    let previous = store.update_refs(|refs| refs.insert(name.clone(), record.clone()))?;
    drop(pin);
    progress.send(Progress::Pulled {
        digest: top_digest,
        new: fresh || previous.as_ref() != Some(&record),
    });
    Ok(image)
}

/// The first error of a batch. The batch runs to the end (not try_join_all): a commit
/// on a blocking thread must not land after the pull has returned.
fn settle(results: Vec<Result<()>>) -> Result<()> {
    results.into_iter().collect()
}

/// Unpack one layer once per diff_id, off the async threads.
pub(crate) async fn unpack(
    store: &ImageStore,
    blob: &str,
    diff_id: &str,
    image: &str,
) -> Result<()> {
    let key = format!("layer:{diff_id}");
    store
        .once(&key, || store.has_layer(diff_id), async {
            let (s, b, d) = (store.clone(), blob.to_string(), diff_id.to_string());
            let what = format!("image {image} layer {blob}");
            tokio::task::spawn_blocking(move || s.unpack_layer(&b, &d, &what))
                .await
                .map_err(|e| Error::Other(format!("unpack task: {e}")))?
        })
        .await
}

pub(crate) struct Puller<'a> {
    pub(crate) store: &'a ImageStore,
    pub(crate) client: &'a Client,
    pub(crate) reference: &'a Reference,
    pub(crate) name: &'a str,
}

impl Puller<'_> {
    /// Authenticates, then fetches the manifest the reference names (checked against its
    /// digest when it has one): its bytes and digest. Authentication comes first,
    /// explicitly: later requests authenticate lazily and drop a token server's refusal
    /// (wrong credentials) for a bare 401. It probes `/v2/` and, on a `Bearer` challenge,
    /// fetches (and caches) a token from the realm.
    async fn top_manifest(&self, auth: &OciAuth) -> Result<(bytes::Bytes, String)> {
        self.client
            .auth(self.reference, auth, RegistryOperation::Pull)
            .await
            .map_err(|e| self.error(e))?;
        let (bytes, _) = self
            .client
            .pull_manifest_raw(self.reference, auth, ACCEPT)
            .await
            .map_err(|e| self.error(e))?;
        let digest = sha256(&bytes);
        if let Some(wanted) = self.reference.digest() {
            verify(wanted, &digest, &format!("image {} manifest", self.name))?;
        }
        Ok((bytes, digest))
    }

    /// Download one blob into the store unless present; one download per digest at a time.
    async fn blob(&self, desc: &Descriptor, progress: &Reporter) -> Result<()> {
        let key = format!("blob:{}", desc.digest);
        let store = self.store;
        store
            .once(&key, || store.has_blob(&desc.digest), async {
                self.download(desc).await?;
                progress.layer(&desc.digest, LayerStage::DownloadComplete);
                Ok(())
            })
            .await
    }

    async fn download(&self, desc: &Descriptor) -> Result<()> {
        let tmp = self.store.tmp_file()?;
        let file = tmp.reopen().map_err(Error::io("open temp blob"))?;
        let mut out = HashingWriter {
            inner: tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file)),
            hasher: Sha256::new(),
            written: 0,
        };
        self.client
            .pull_blob(self.reference, desc.digest.as_str(), &mut out)
            .await
            .map_err(|e| self.error(e))?;
        out.flush().await.map_err(Error::io("write temp blob"))?;
        let what = format!("image {} blob {}", self.name, desc.digest);
        let actual = format!("sha256:{}", hex::encode(out.hasher.finalize()));
        verify(&desc.digest, &actual, &what)?;
        if desc.size > 0 && out.written != desc.size as u64 {
            return Err(self.fail(&format!(
                "blob {} is {} bytes, manifest says {}",
                desc.digest, out.written, desc.size
            )));
        }
        let (store, digest) = (self.store.clone(), desc.digest.clone());
        tokio::task::spawn_blocking(move || store.commit_blob(&digest, tmp))
            .await
            .map_err(|e| Error::Other(format!("commit task: {e}")))?
    }

    fn fail(&self, cause: &str) -> Error {
        Error::Pull {
            reference: self.name.to_string(),
            cause: cause.to_string(),
            retryable: false,
        }
    }

    /// Name the image on errors from the store that do not already.
    fn wrap(&self, e: Error) -> Error {
        match e {
            Error::Other(cause) => self.fail(&cause),
            e => e,
        }
    }

    /// One line, Docker's words, classified by the error's variant.
    pub(crate) fn error(&self, e: OciDistributionError) -> Error {
        let name = self.name.to_string();
        let host = self.reference.resolve_registry().to_string();
        let pull = |cause: String, retryable: bool| Error::Pull {
            reference: name.clone(),
            cause,
            retryable,
        };
        let not_found = || pull("manifest unknown".to_string(), false);
        match e {
            OciDistributionError::RegistryError { envelope, .. } => {
                let Some(first) = envelope.errors.first() else {
                    return pull("registry error without details".into(), true);
                };
                let msg = first.message.clone();
                match &first.code {
                    OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound => not_found(),
                    OciErrorCode::BlobUnknown => pull(format!("blob unknown: {msg}"), false),
                    OciErrorCode::Unauthorized | OciErrorCode::Denied => {
                        pull(format!("unauthorized: {msg}"), false)
                    }
                    OciErrorCode::Toomanyrequests => pull(format!("toomanyrequests: {msg}"), true),
                    code => pull(format!("{code:?}: {msg}").to_lowercase(), false),
                }
            }
            OciDistributionError::UnauthorizedError { .. } => {
                pull("unauthorized: authentication required".into(), false)
            }
            OciDistributionError::AuthenticationFailure(body) => {
                pull(format!("unauthorized: {}", token_error(&body)), false)
            }
            OciDistributionError::ServerError { code, message, .. } => match code {
                404 => not_found(),
                401 | 403 => pull("unauthorized: authentication required".into(), false),
                429 | 500..=599 => pull(
                    format!("registry {host} answered {code}: {}", first_line(&message)),
                    true,
                ),
                _ => pull(
                    format!("registry {host} answered {code}: {}", first_line(&message)),
                    false,
                ),
            },
            OciDistributionError::DigestError(
                oci_client::errors::DigestError::VerificationError { expected, actual },
            ) => Error::DigestMismatch {
                what: format!("image {name} blob"),
                expected,
                actual,
            },
            OciDistributionError::RequestError(err) => {
                // The host actually dialled: the registry's, or its token realm's.
                let host = err
                    .url()
                    .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
                    .unwrap_or(host);
                let refused = io_kind(&err) == Some(std::io::ErrorKind::ConnectionRefused);
                let status = err.status().map(|s| s.as_u16());
                if matches!(status, Some(401 | 403)) {
                    // A HEAD (no body to carry the registry's error): its status says it.
                    pull("unauthorized: authentication required".into(), false)
                } else if refused {
                    pull(
                        format!("dial tcp {host}: connect: connection refused"),
                        true,
                    )
                } else {
                    pull(format!("registry {host}: {}", chain(&err)), true)
                }
            }
            OciDistributionError::IoError(err) => pull(format!("registry {host}: {err}"), true),
            other => pull(first_line(&other.to_string()).to_string(), false),
        }
    }
}

/// What a token server said when it refused to issue a token, as Docker reports it:
/// `{"details": ".."}` (Docker Hub), else the first error of `{"errors": [..]}`, else
/// `authentication required`.
fn token_error(body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let message = json["details"]
        .as_str()
        .or_else(|| json["errors"][0]["message"].as_str())
        .map(first_line)
        .unwrap_or("");
    if message.is_empty() {
        "authentication required".to_string()
    } else {
        message.to_string()
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

/// The io::ErrorKind at the bottom of an error chain, if any.
fn io_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = e.source();
    }
    None
}

/// `outer: inner: innermost` on one line (reqwest's own Display hides the cause).
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        parts.push(e.to_string());
        cur = e.source();
    }
    parts.dedup();
    parts.join(": ")
}

/// Hashes what it writes: our own check of every blob, independent of the client's.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for HashingWriter<W> {
    fn poll_write(
        mut self: StdPin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let poll = StdPin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            this.hasher.update(&buf[..n]);
            this.written += n as u64;
        }
        poll
    }

    fn poll_flush(mut self: StdPin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        StdPin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: StdPin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        StdPin::new(&mut self.inner).poll_shutdown(cx)
    }
}
