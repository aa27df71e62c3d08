//! The content-addressed image store on disk, and what keeps it consistent: every file
//! is written under `tmp/`, fsynced and renamed into place, so a blob or layer that is
//! visible is complete and verified; one download or unpack per digest at a time in this
//! process; digests pinned by running pulls are never collected.
//!
//! ```text
//! <root>/blobs/sha256/<hex>     manifests, indexes, configs, compressed layers
//! <root>/layers/<diff_id hex>/  one unpacked layer (overlayfs whiteouts)
//! <root>/refs.json              reference -> { index/manifest digest, platform manifest digest }
//! <root>/tmp/                   work in progress; emptied on open
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::ConfigFile;
use super::manifest::{digest_hex, ImageManifest, Manifest};
use super::{unpack, Image};
use crate::{Error, Result};

/// A reference's entry in `refs.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RefRecord {
    /// What the reference resolved to: an index / manifest list, or a manifest.
    pub digest: String,
    /// The manifest chosen for this node's platform (equal to `digest` without an index).
    pub manifest: String,
}

/// The image store rooted at `<data>/image`. Cheap to clone; one per root per process
/// (the in-flight and pin maps are per instance).
#[derive(Clone)]
pub struct ImageStore {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    /// Serializes read-modify-write of refs.json.
    refs: Mutex<()>,
    /// digest -> lock held while that blob is downloaded or that layer unpacked.
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// digest -> number of pulls/loads that need it; gc keeps these.
    pinned: Mutex<HashMap<String, usize>>,
    /// Registry clients by (insecure registries, credentials): building one loads the system's
    /// CA certificates (~290 files), which dominated 50 concurrent task pulls.
    pub(crate) clients: Mutex<HashMap<String, oci_client::Client>>,
}

impl std::fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStore")
            .field("root", &self.inner.root)
            .finish()
    }
}

impl ImageStore {
    /// Open (creating if needed) the store at `root`. Leftovers in `tmp/` from a killed
    /// process are removed: nothing there was ever visible.
    pub fn open(root: impl Into<PathBuf>) -> Result<ImageStore> {
        let root = root.into();
        let tmp = root.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(Error::path(&tmp))?;
        }
        for dir in [root.join("blobs/sha256"), root.join("layers"), tmp] {
            std::fs::create_dir_all(&dir).map_err(Error::path(&dir))?;
        }
        Ok(ImageStore {
            inner: Arc::new(Inner {
                root,
                refs: Mutex::new(()),
                inflight: Mutex::default(),
                pinned: Mutex::default(),
                clients: Mutex::default(),
            }),
        })
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The registry client for these options, made once and shared (it is an `Arc`
    /// inside): connections, CA roots and tokens are reused across pulls.
    pub(crate) fn client(
        &self,
        opts: &super::RegistryOptions,
        reference: &oci_client::Reference,
    ) -> oci_client::Client {
        let mut insecure = opts.insecure.clone();
        // Docker's default: registries on 127.0.0.0/8 speak plain HTTP.
        let host = reference.resolve_registry();
        if super::is_loopback_registry(host) && !insecure.iter().any(|i| i == host) {
            insecure.push(host.to_string());
        }
        insecure.sort();
        // Keyed by the credentials too (the password only as a digest), so a token
        // cached for one set of credentials never serves another.
        let creds = opts.auth.as_ref().map_or(String::new(), |a| {
            use sha2::Digest;
            let secret = sha2::Sha256::digest(a.password.as_bytes());
            format!("{}:{}", a.username, hex::encode(secret))
        });
        let key = format!("{}\0{creds}", insecure.join(","));
        let mut clients = self.inner.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(key)
            .or_insert_with(|| super::pull::new_client(insecure))
            .clone()
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.inner.root.join("tmp")
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self
            .inner
            .root
            .join("blobs/sha256")
            .join(digest_hex(digest)?))
    }

    pub fn layer_path(&self, diff_id: &str) -> Result<PathBuf> {
        Ok(self.inner.root.join("layers").join(digest_hex(diff_id)?))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.exists())
    }

    pub fn has_layer(&self, diff_id: &str) -> bool {
        self.layer_path(diff_id).is_ok_and(|p| p.exists())
    }

    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let path = self.blob_path(digest)?;
        std::fs::read(&path).map_err(Error::path(path))
    }

    /// A temp file under `tmp/`, removed on drop unless committed.
    pub(crate) fn tmp_file(&self) -> Result<tempfile::NamedTempFile> {
        tempfile::NamedTempFile::new_in(self.tmp_dir()).map_err(Error::io("create temp file"))
    }

    /// Verify `bytes` against `digest` and store them.
    pub(crate) fn put_blob(&self, digest: &str, bytes: &[u8], what: &str) -> Result<()> {
        verify(digest, &sha256(bytes), what)?;
        if self.has_blob(digest) {
            return Ok(());
        }
        let mut tmp = self.tmp_file()?;
        tmp.write_all(bytes).map_err(Error::io("write temp blob"))?;
        self.commit_blob(digest, tmp)
    }

    /// fsync `tmp` (whose content the caller verified) and rename it to the blob's path.
    pub(crate) fn commit_blob(&self, digest: &str, tmp: tempfile::NamedTempFile) -> Result<()> {
        let path = self.blob_path(digest)?;
        tmp.as_file().sync_all().map_err(Error::io("fsync blob"))?;
        tmp.persist(&path)
            .map_err(|e| Error::path(&path)(e.error))?;
        sync_dir(path.parent().expect("blob dir"))
    }

    /// Unpack the layer blob `blob_digest` as `diff_id` unless present: into `tmp/`, check
    /// the diff_id, sync, rename. Blocking; call from a blocking thread.
    pub(crate) fn unpack_layer(&self, blob_digest: &str, diff_id: &str, what: &str) -> Result<()> {
        let path = self.layer_path(diff_id)?;
        if path.exists() {
            return Ok(());
        }
        let work = tempfile::Builder::new()
            .prefix("layer-")
            .tempdir_in(self.tmp_dir())
            .map_err(Error::io("create temp layer dir"))?;
        let actual = unpack::unpack_file(&self.blob_path(blob_digest)?, work.path())?;
        verify(diff_id, &actual, &format!("{what} diff_id"))?;
        // One syncfs instead of an fsync per file: the layer is complete on disk before
        // its name appears.
        let dir = std::fs::File::open(work.path()).map_err(Error::path(work.path()))?;
        nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir))?;
        let work = work.keep();
        if let Err(e) = std::fs::rename(&work, &path) {
            let _ = std::fs::remove_dir_all(&work);
            // Another process won the race with the same (verified) content.
            if !path.exists() {
                return Err(Error::path(&path)(e));
            }
        }
        sync_dir(path.parent().expect("layers dir"))
    }

    /// Run `work` unless `done()` holds, with at most one `work` per `key` at a time in
    /// this process: a second caller waits, then finds it done (or, if the first failed,
    /// tries itself).
    pub(crate) async fn once<F>(&self, key: &str, done: impl Fn() -> bool, work: F) -> Result<()>
    where
        F: Future<Output = Result<()>>,
    {
        if done() {
            return Ok(());
        }
        let lock = {
            let mut map = self.inner.inflight.lock().expect("inflight");
            map.entry(key.to_string()).or_default().clone()
        };
        let result = {
            let _guard = lock.lock().await;
            if done() {
                Ok(())
            } else {
                work.await
            }
        };
        let mut map = self.inner.inflight.lock().expect("inflight");
        // Only the map and this caller hold it: nobody is waiting, forget the key.
        if Arc::strong_count(&lock) == 2 {
            map.remove(key);
        }
        result
    }

    /// Downloads and unpacks under way in this process: (`blob:<digest>` or
    /// `layer:<diff_id>`, number of pulls doing or waiting for it).
    pub fn in_flight(&self) -> Vec<(String, usize)> {
        let map = self.inner.inflight.lock().expect("inflight");
        let mut out: Vec<_> = map
            .iter()
            .map(|(k, lock)| (k.clone(), Arc::strong_count(lock) - 1))
            .collect();
        out.sort();
        out
    }

    /// Keep `digests` from gc until the returned guard drops.
    pub(crate) fn pin(&self, digests: impl IntoIterator<Item = String>) -> Pin {
        let digests: Vec<String> = digests.into_iter().collect();
        let mut pinned = self.inner.pinned.lock().expect("pinned");
        for d in &digests {
            *pinned.entry(d.clone()).or_default() += 1;
        }
        Pin {
            store: self.clone(),
            digests,
        }
    }

    pub(crate) fn refs(&self) -> Result<BTreeMap<String, RefRecord>> {
        let path = self.inner.root.join("refs.json");
        match std::fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(Error::path(path)(e)),
        }
    }

    /// Change refs.json atomically (temp file, fsync, rename).
    pub(crate) fn update_refs<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, RefRecord>) -> T,
    ) -> Result<T> {
        let _guard = self.inner.refs.lock().expect("refs");
        let mut refs = self.refs()?;
        let out = f(&mut refs);
        let mut tmp = self.tmp_file()?;
        serde_json::to_writer_pretty(&mut tmp, &refs)?;
        tmp.as_file().sync_all().map_err(Error::io("fsync refs"))?;
        let path = self.inner.root.join("refs.json");
        tmp.persist(&path)
            .map_err(|e| Error::path(&path)(e.error))?;
        sync_dir(&self.inner.root)?;
        Ok(out)
    }

    /// The [`Image`] for a manifest in the store.
    pub(crate) fn image(&self, reference: &str, manifest_digest: &str) -> Result<Image> {
        let manifest = self.image_manifest(manifest_digest)?;
        let config = ConfigFile::parse(&self.read_blob(&manifest.config.digest)?)?;
        let layers = config
            .diff_ids()
            .iter()
            .map(|d| self.layer_path(d))
            .collect::<Result<Vec<_>>>()?;
        if let Some(missing) = layers.iter().find(|p| !p.exists()) {
            return Err(Error::Other(format!(
                "image {reference}: layer {} is missing from the store",
                missing.display()
            )));
        }
        Ok(Image {
            reference: reference.to_string(),
            digest: manifest_digest.to_string(),
            config_digest: manifest.config.digest.clone(),
            config: config.image_config(),
            layers,
        })
    }

    pub(crate) fn image_manifest(&self, digest: &str) -> Result<ImageManifest> {
        match Manifest::parse(&self.read_blob(digest)?, None)? {
            Manifest::Image(m) => Ok(m),
            Manifest::Index(_) => Err(Error::Other(format!(
                "{digest} is an index, not an image manifest"
            ))),
        }
    }

    /// Every digest a record keeps alive: its blobs and its layers' diff_ids.
    pub(crate) fn live_digests(&self, rec: &RefRecord, live: &mut HashSet<String>) {
        live.insert(rec.digest.clone());
        live.insert(rec.manifest.clone());
        let Ok(m) = self.image_manifest(&rec.manifest) else {
            return;
        };
        live.insert(m.config.digest.clone());
        live.extend(m.layers.iter().map(|l| l.digest.clone()));
        if let Ok(cfg) = self
            .read_blob(&m.config.digest)
            .and_then(|b| ConfigFile::parse(&b))
        {
            live.extend(cfg.diff_ids().iter().cloned());
        }
    }

    pub(crate) fn pinned(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.inner.pinned.lock().expect("pinned")
    }
}

/// Digests kept from gc while a pull or load runs.
pub(crate) struct Pin {
    store: ImageStore,
    digests: Vec<String>,
}

impl Pin {
    pub(crate) fn add(&mut self, digests: impl IntoIterator<Item = String>) {
        let mut pinned = self.store.inner.pinned.lock().expect("pinned");
        for d in digests {
            *pinned.entry(d.clone()).or_default() += 1;
            self.digests.push(d);
        }
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut pinned = self.store.inner.pinned.lock().expect("pinned");
        for d in &self.digests {
            if let Some(n) = pinned.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    pinned.remove(d);
                }
            }
        }
    }
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

pub(crate) fn verify(expected: &str, actual: &str, what: &str) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::DigestMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        })
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::path(dir))
}
