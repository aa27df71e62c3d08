//! Busybox rootfs and images built deterministically from Debian's `busybox-static`:
//! the same inputs give the same digests on every machine. [`rootfs`] fills a directory;
//! [`OciLayout`] writes OCI image layouts (single images, multi-platform indexes,
//! tarballs) from [`TestImage`]s such as [`busybox_image`] and [`big_image`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use swarm_runtime::image::manifest::{node_arch, OCI_INDEX, OCI_MANIFEST};
use swarm_runtime::image::ImageConfig;

pub const BUSYBOX: &str = "/bin/busybox";

/// Fill `dest` with a busybox rootfs: `/bin/busybox`, one symlink per applet in `/bin`,
/// and the few files a container expects (`/etc/passwd`, `/etc/group`, `/tmp`).
pub fn rootfs(dest: &Path) -> Result<()> {
    let bin = dest.join("bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::copy(BUSYBOX, bin.join("busybox")).context("copy /bin/busybox (busybox-static)")?;
    let list = std::process::Command::new(BUSYBOX).arg("--list").output()?;
    anyhow::ensure!(list.status.success(), "busybox --list failed");
    for applet in String::from_utf8(list.stdout)?.lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet))?;
        }
    }
    for d in [
        "etc", "tmp", "proc", "sys", "dev", "root", "home/app", "usr/bin",
    ] {
        std::fs::create_dir_all(dest.join(d))?;
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dest.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    std::fs::write(
        dest.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    std::fs::write(
        dest.join("etc/group"),
        "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n",
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Deterministic OCI image layouts.
//
//   layers (uncompressed tars: sorted names, uid/gid 0, mtime 0)
//     ─▶ gzip (no name, no time) ─▶ blobs/sha256/<digest>
//   config (Docker's field names) + manifest + index ─▶ blobs, index.json (ref names)
//
// Same inputs, same digests. The config JSON is written here by hand, not with the
// runtime's own serializer, so a round trip through the runtime proves its parser.
// ---------------------------------------------------------------------------------------

pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip, default level.
    Gzip,
    /// gzip with stored (uncompressed) deflate blocks: fast for incompressible data.
    GzipStored,
    /// A plain tar.
    None,
}

/// An image to build: layers as uncompressed tars, lowest first.
#[derive(Debug, Clone)]
pub struct TestImage {
    pub layers: Vec<Vec<u8>>,
    pub config: ImageConfig,
    /// GOARCH name (`amd64`, `arm64`).
    pub arch: String,
    pub compression: Compression,
}

/// The digests of a built image.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltImage {
    pub manifest_digest: String,
    pub manifest_size: u64,
    pub config_digest: String,
    pub layer_digests: Vec<String>,
    pub diff_ids: Vec<String>,
}

/// The digests of a built index and of its per-platform images.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltIndex {
    pub index_digest: String,
    /// (arch, image) in the order given.
    pub images: Vec<(String, BuiltImage)>,
}

impl BuiltIndex {
    pub fn for_arch(&self, arch: &str) -> &BuiltImage {
        &self.images.iter().find(|(a, _)| a == arch).expect("arch").1
    }
}

/// The architecture that is not this node's, for index entries that must not be chosen.
pub fn other_arch() -> &'static str {
    if node_arch() == "arm64" {
        "amd64"
    } else {
        "arm64"
    }
}

/// The config most test images use: `sh` with a PATH, a label, SIGTERM.
pub fn default_config() -> ImageConfig {
    ImageConfig {
        cmd: vec!["sh".into()],
        env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
        labels: [("org.swarm.test".to_string(), "busybox".to_string())].into(),
        ..Default::default()
    }
}

/// The busybox rootfs of [`rootfs`] as a deterministic tar (built once per process).
pub fn busybox_layer() -> Result<Vec<u8>> {
    static LAYER: OnceLock<Vec<u8>> = OnceLock::new();
    if let Some(l) = LAYER.get() {
        return Ok(l.clone());
    }
    let dir = tempfile::tempdir()?;
    rootfs(dir.path())?;
    let tar = tar_dir(dir.path())?;
    Ok(LAYER.get_or_init(|| tar).clone())
}

/// Busybox plus a layer with `/etc/swarm-version` containing `version`.
pub fn busybox_image(version: &str, config: ImageConfig) -> Result<TestImage> {
    Ok(TestImage {
        layers: vec![
            busybox_layer()?,
            tar_files(&[("etc/swarm-version", version.as_bytes())])?,
        ],
        config,
        arch: node_arch().to_string(),
        compression: Compression::Gzip,
    })
}

/// About `total` bytes of incompressible, seeded data in `layers` layers (one file each):
/// the pull benchmark's image.
pub fn big_image(total: usize, layers: usize, seed: u64) -> Result<TestImage> {
    let per = total / layers.max(1);
    let mut tars = Vec::with_capacity(layers);
    for i in 0..layers {
        let data = seeded_bytes(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15), per);
        tars.push(tar_files(&[(&format!("data/layer-{i}.bin"), &data)])?);
    }
    Ok(TestImage {
        layers: tars,
        config: default_config(),
        arch: node_arch().to_string(),
        compression: Compression::GzipStored,
    })
}

/// `len` pseudo-random bytes from `seed` (splitmix64): the same on every machine.
pub fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// A deterministic tar of `dir`: names sorted, uid/gid 0, mtime 0, modes kept.
pub fn tar_dir(dir: &Path) -> Result<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    fn walk(b: &mut tar::Builder<Vec<u8>>, root: &Path, rel: &Path) -> Result<()> {
        let mut names: Vec<_> = std::fs::read_dir(root.join(rel))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        for name in names {
            let rel = rel.join(&name);
            let path = root.join(&rel);
            let meta = std::fs::symlink_metadata(&path)?;
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                b.append_link(&mut h, &rel, std::fs::read_link(&path)?)?;
            } else if meta.is_dir() {
                let mut h = header(tar::EntryType::Directory, mode, 0);
                b.append_data(&mut h, format!("{}/", rel.display()), std::io::empty())?;
                walk(b, root, &rel)?;
            } else {
                let data = std::fs::read(&path)?;
                let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
                b.append_data(&mut h, &rel, &data[..])?;
            }
        }
        Ok(())
    }
    let mut b = tar::Builder::new(Vec::new());
    walk(&mut b, dir, Path::new(""))?;
    Ok(b.into_inner()?)
}

/// A small deterministic layer: `files` (path, content; mode 0644) with their parent
/// directories (0755), sorted. A name `.wh.X` is an OCI whiteout of `X`, and
/// `.wh..wh..opq` marks its directory opaque.
pub fn tar_files(files: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let files: Vec<(&str, &[u8], u32)> = files.iter().map(|(p, d)| (*p, *d, 0o644)).collect();
    tar_files_with_modes(&files)
}

/// [`tar_files`] with each file's mode (an executable script, a binary).
pub fn tar_files_with_modes(files: &[(&str, &[u8], u32)]) -> Result<Vec<u8>> {
    let mut entries: BTreeMap<PathBuf, Option<(&[u8], u32)>> = BTreeMap::new();
    for (path, data, mode) in files {
        let path = Path::new(path.trim_start_matches('/'));
        for dir in path.ancestors().skip(1) {
            if !dir.as_os_str().is_empty() {
                entries.entry(dir.to_path_buf()).or_insert(None);
            }
        }
        entries.insert(path.to_path_buf(), Some((data, *mode)));
    }
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        match data {
            None => {
                let mut h = header(tar::EntryType::Directory, 0o755, 0);
                b.append_data(&mut h, format!("{}/", path.display()), std::io::empty())?;
            }
            Some((data, mode)) => {
                let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
                b.append_data(&mut h, &path, data)?;
            }
        }
    }
    Ok(b.into_inner()?)
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn compress(tar: &[u8], how: Compression) -> Result<(Vec<u8>, &'static str)> {
    let level = match how {
        Compression::None => return Ok((tar.to_vec(), OCI_LAYER_TAR)),
        Compression::Gzip => flate2::Compression::default(),
        Compression::GzipStored => flate2::Compression::none(),
    };
    // GzBuilder writes mtime 0 and no file name unless told otherwise.
    let mut gz = flate2::GzBuilder::new().write(Vec::with_capacity(tar.len() / 2), level);
    gz.write_all(tar)?;
    Ok((gz.finish()?, OCI_LAYER_GZIP))
}

/// Docker's config JSON for `cfg`, written field by field.
pub fn config_json(cfg: &ImageConfig, arch: &str, diff_ids: &[String]) -> Value {
    let mut c = serde_json::Map::new();
    if !cfg.entrypoint.is_empty() {
        c.insert("Entrypoint".into(), json!(cfg.entrypoint));
    }
    if !cfg.cmd.is_empty() {
        c.insert("Cmd".into(), json!(cfg.cmd));
    }
    if !cfg.env.is_empty() {
        c.insert("Env".into(), json!(cfg.env));
    }
    if !cfg.working_dir.is_empty() {
        c.insert("WorkingDir".into(), json!(cfg.working_dir));
    }
    if !cfg.user.is_empty() {
        c.insert("User".into(), json!(cfg.user));
    }
    if let Some(s) = &cfg.stop_signal {
        c.insert("StopSignal".into(), json!(s));
    }
    if !cfg.labels.is_empty() {
        c.insert("Labels".into(), json!(cfg.labels));
    }
    if let Some(h) = &cfg.healthcheck {
        c.insert(
            "Healthcheck".into(),
            json!({
                "Test": h.test,
                "Interval": h.interval.as_nanos() as u64,
                "Timeout": h.timeout.as_nanos() as u64,
                "StartPeriod": h.start_period.as_nanos() as u64,
                "Retries": h.retries,
            }),
        );
    }
    json!({
        "architecture": arch,
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": c,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": diff_ids.iter().map(|_| json!({"created": "1970-01-01T00:00:00Z", "created_by": "rootfs-tests"})).collect::<Vec<_>>(),
    })
}

/// An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/`), the
/// input of `skopeo copy oci:DIR:REF` and of `ImageStore::load_oci_archive`.
#[derive(Debug)]
pub struct OciLayout {
    pub dir: PathBuf,
    entries: Vec<Value>,
}

impl OciLayout {
    pub fn create(dir: &Path) -> Result<OciLayout> {
        std::fs::create_dir_all(dir.join("blobs/sha256"))?;
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let layout = OciLayout {
            dir: dir.to_path_buf(),
            entries: Vec::new(),
        };
        layout.write_index()?;
        Ok(layout)
    }

    /// Write a blob; returns (digest, size).
    pub fn put_blob(&self, bytes: &[u8]) -> Result<(String, u64)> {
        let digest = sha256_digest(bytes);
        let path = self.blob_path(&digest);
        if !path.exists() {
            std::fs::write(&path, bytes)?;
        }
        Ok((digest, bytes.len() as u64))
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }

    /// The image's blobs and manifest, without an index.json entry.
    pub fn build_image(&self, img: &TestImage) -> Result<BuiltImage> {
        let mut layers = Vec::new();
        let (mut layer_digests, mut diff_ids) = (Vec::new(), Vec::new());
        for tar in &img.layers {
            let (blob, media_type) = compress(tar, img.compression)?;
            let (digest, size) = self.put_blob(&blob)?;
            layers.push(json!({"mediaType": media_type, "digest": digest, "size": size}));
            layer_digests.push(digest);
            diff_ids.push(sha256_digest(tar));
        }
        let config = serde_json::to_vec(&config_json(&img.config, &img.arch, &diff_ids))?;
        let (config_digest, config_size) = self.put_blob(&config)?;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": layers,
        }))?;
        let (manifest_digest, manifest_size) = self.put_blob(&manifest)?;
        Ok(BuiltImage {
            manifest_digest,
            manifest_size,
            config_digest,
            layer_digests,
            diff_ids,
        })
    }

    /// Add `img` under `ref_name` (a tag for skopeo, or a full reference for load).
    pub fn add_image(&mut self, ref_name: &str, img: &TestImage) -> Result<BuiltImage> {
        let built = self.build_image(img)?;
        self.add_entry(
            ref_name,
            OCI_MANIFEST,
            &built.manifest_digest,
            built.manifest_size,
        )?;
        Ok(built)
    }

    /// Add an image index of `imgs` (one per platform) under `ref_name`.
    pub fn add_index(&mut self, ref_name: &str, imgs: &[&TestImage]) -> Result<BuiltIndex> {
        let mut manifests = Vec::new();
        let mut images = Vec::new();
        for img in imgs {
            let built = self.build_image(img)?;
            manifests.push(json!({
                "mediaType": OCI_MANIFEST,
                "digest": built.manifest_digest,
                "size": built.manifest_size,
                "platform": {"architecture": img.arch, "os": "linux"},
            }));
            images.push((img.arch.clone(), built));
        }
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": manifests,
        }))?;
        let (index_digest, size) = self.put_blob(&index)?;
        self.add_entry(ref_name, OCI_INDEX, &index_digest, size)?;
        Ok(BuiltIndex {
            index_digest,
            images,
        })
    }

    /// `img` for this node's architecture plus the same layers as the other one.
    pub fn add_multiarch(&mut self, ref_name: &str, img: &TestImage) -> Result<BuiltIndex> {
        let other = TestImage {
            arch: other_arch().to_string(),
            ..img.clone()
        };
        self.add_index(ref_name, &[&other, img])
    }

    fn add_entry(
        &mut self,
        ref_name: &str,
        media_type: &str,
        digest: &str,
        size: u64,
    ) -> Result<()> {
        self.entries
            .retain(|e| e["annotations"][REF_NAME].as_str() != Some(ref_name));
        self.entries.push(json!({
            "mediaType": media_type,
            "digest": digest,
            "size": size,
            "annotations": {REF_NAME: ref_name},
        }));
        self.write_index()
    }

    fn write_index(&self) -> Result<()> {
        let index = json!({"schemaVersion": 2, "manifests": self.entries});
        std::fs::write(self.dir.join("index.json"), serde_json::to_vec(&index)?)?;
        Ok(())
    }

    /// The layout as a deterministic tarball (gzip-compressed if asked).
    pub fn write_tar(&self, dest: &Path, gzip: bool) -> Result<()> {
        let tar = tar_dir(&self.dir)?;
        let bytes = if gzip {
            compress(&tar, Compression::Gzip)?.0
        } else {
            tar
        };
        std::fs::write(dest, bytes)?;
        Ok(())
    }
}

/// A layout at `dir` holding the busybox image `version` under `tag`.
pub fn busybox_layout(
    dir: &Path,
    tag: &str,
    version: &str,
    config: ImageConfig,
) -> Result<(OciLayout, BuiltImage)> {
    let mut layout = OciLayout::create(dir)?;
    let built = layout.add_image(tag, &busybox_image(version, config)?)?;
    Ok((layout, built))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_digests() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (la, ia) = busybox_layout(a.path(), "1", "1", default_config()).unwrap();
        let (lb, ib) = busybox_layout(b.path(), "1", "1", default_config()).unwrap();
        assert_eq!(ia, ib);
        let (ta, tb) = (a.path().join("x.tar"), b.path().join("x.tar"));
        la.write_tar(&ta, true).unwrap();
        lb.write_tar(&tb, true).unwrap();
        assert_eq!(std::fs::read(ta).unwrap(), std::fs::read(tb).unwrap());
        let (_, i2) = busybox_layout(&a.path().join("v2"), "2", "2", default_config()).unwrap();
        assert_eq!(
            ia.layer_digests[0], i2.layer_digests[0],
            "shared base layer"
        );
        assert_ne!(ia.layer_digests[1], i2.layer_digests[1]);
        assert_eq!(seeded_bytes(7, 100), seeded_bytes(7, 100));
        assert_ne!(seeded_bytes(7, 100), seeded_bytes(8, 100));
    }
}
