//! Unpacking one layer blob into one directory that overlayfs can stack as a lowerdir.
//!
//! ```text
//! blob ─▶ gzip? ─▶ sha256 (diff_id) ─▶ tar entries ─┬─ .wh..wh..opq  ─▶ xattr trusted.overlay.opaque=y on the dir
//!                                                   ├─ .wh.NAME      ─▶ char device 0/0 at NAME
//!                                                   ├─ char/block/fifo ─▶ mknod (the tar crate writes these as files)
//!                                                   └─ the rest      ─▶ tar's unpack_in (owners, modes, xattrs,
//!                                                                       symlinks, hardlinks within the layer)
//! ```
//!
//! Paths with `..` or that lead through a symlink out of the layer are refused, not
//! skipped: such a layer is hostile or broken, and half of it is worse than none.

use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{mknod, Mode, SFlag};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Unpack the layer blob at `blob` into the existing, empty directory `dest`; returns the
/// diff_id (`sha256:` of the uncompressed tar, trailing padding included).
pub fn unpack_file(blob: &Path, dest: &Path) -> Result<String> {
    let file = std::fs::File::open(blob).map_err(Error::path(blob))?;
    unpack(file, dest)
}

/// Unpack a layer stream (gzip or plain tar, told apart by magic bytes, as Docker does).
pub fn unpack(reader: impl Read, dest: &Path) -> Result<String> {
    let ctx = |what: &str| format!("unpack layer into {}: {what}", dest.display());
    let mut input = BufReader::with_capacity(1 << 20, reader);
    let magic = input.fill_buf().map_err(Error::io(ctx("read")))?;
    let decompressed: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(input))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(Error::Other(ctx(
            "zstd-compressed layers are not supported yet",
        )));
    } else {
        Box::new(input)
    };
    let mut hashed = HashingReader {
        inner: decompressed,
        hasher: Sha256::new(),
    };
    // The layer root must be traversable by every user in the container.
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755))
        .map_err(Error::path(dest))?;
    let root = nix::unistd::geteuid().is_root();
    {
        let mut archive = tar::Archive::new(&mut hashed);
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(root);
        archive.set_unpack_xattrs(true);
        archive.set_preserve_mtime(true);
        archive.set_overwrite(true);
        for entry in archive.entries().map_err(Error::io(ctx("read tar")))? {
            let mut entry = entry.map_err(Error::io(ctx("read tar entry")))?;
            unpack_entry(&mut entry, dest, root)?;
        }
    }
    // The tar reader stops at the end-of-archive blocks; the diff_id covers every byte.
    io::copy(&mut hashed, &mut io::sink()).map_err(Error::io(ctx("read")))?;
    Ok(format!("sha256:{}", hex::encode(hashed.hasher.finalize())))
}

fn unpack_entry<R: Read>(entry: &mut tar::Entry<'_, R>, dest: &Path, root: bool) -> Result<()> {
    let raw = entry
        .path()
        .map_err(Error::io(format!("layer entry path in {}", dest.display())))?
        .into_owned();
    let rel = relative(&raw)?;
    let Some(name) = rel.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
        return Ok(()); // "./": the layer root itself
    };
    let parent_rel = rel.parent().unwrap_or(Path::new(""));
    let kind = entry.header().entry_type();

    if name == OPAQUE_MARKER {
        let dir = ensure_dirs(dest, parent_rel)?;
        xattr::set(&dir, "trusted.overlay.opaque", b"y").map_err(Error::path(&dir))?;
        return Ok(());
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
        let target = ensure_dirs(dest, parent_rel)?.join(hidden);
        remove_existing(&target)?;
        // overlayfs whiteout: a character device with device number 0/0.
        mknod(&target, SFlag::S_IFCHR, Mode::empty(), 0).map_err(|e| Error::Path {
            path: target.clone(),
            source: e.into(),
        })?;
        return Ok(());
    }
    if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
        let target = ensure_dirs(dest, parent_rel)?.join(&name);
        remove_existing(&target)?;
        let h = entry.header();
        let bad = |e: io::Error| Error::Path {
            path: target.clone(),
            source: e,
        };
        let mode = h.mode().map_err(bad)? & 0o7777;
        // Writers leave the device fields blank for fifos; blank is 0.
        let (major, minor) = (
            h.device_major().ok().flatten().unwrap_or(0),
            h.device_minor().ok().flatten().unwrap_or(0),
        );
        let flag = if kind.is_character_special() {
            SFlag::S_IFCHR
        } else if kind.is_block_special() {
            SFlag::S_IFBLK
        } else {
            SFlag::S_IFIFO
        };
        let dev = nix::sys::stat::makedev(major.into(), minor.into());
        mknod(&target, flag, Mode::from_bits_truncate(mode), dev).map_err(|e| Error::Path {
            path: target.clone(),
            source: e.into(),
        })?;
        // mknod applies the umask; set the mode the layer asked for.
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
            .map_err(Error::path(&target))?;
        if root {
            let (uid, gid) = (h.uid().map_err(bad)?, h.gid().map_err(bad)?);
            std::os::unix::fs::lchown(&target, Some(uid as u32), Some(gid as u32))
                .map_err(Error::path(&target))?;
        }
        return Ok(());
    }
    // Regular files, dirs, symlinks, hardlinks. unpack_in checks (by canonicalizing) that
    // the parent and any hardlink source stay inside `dest`.
    let unpacked = entry.unpack_in(dest).map_err(Error::io(format!(
        "unpack {} into {}",
        rel.display(),
        dest.display()
    )))?;
    if !unpacked {
        return Err(escape(&raw));
    }
    Ok(())
}

/// The entry's path below the layer root: leading `/` and `.` dropped, `..` refused.
fn relative(path: &Path) -> Result<PathBuf> {
    let mut rel = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => rel.push(p),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return Err(escape(path)),
        }
    }
    Ok(rel)
}

fn escape(path: &Path) -> Error {
    Error::Other(format!(
        "layer entry {} escapes the layer directory",
        path.display()
    ))
}

/// Create the directories of `rel` below `dest` without following any symlink, so a
/// whiteout or device node can never land outside the layer.
fn ensure_dirs(dest: &Path, rel: &Path) -> Result<PathBuf> {
    let mut dir = dest.to_path_buf();
    for c in rel.components() {
        dir.push(c);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(escape(rel)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir(&dir).map_err(Error::path(&dir))?;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                    .map_err(Error::path(&dir))?;
            }
            Err(e) => return Err(Error::path(&dir)(e)),
        }
    }
    Ok(dir)
}

/// A later entry replaces an earlier one at the same path within a layer.
fn remove_existing(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).map_err(Error::path(path)),
        Ok(_) => std::fs::remove_file(path).map_err(Error::path(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::path(path)(e)),
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use super::*;

    fn header(path: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        h
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let h = header(path, tar::EntryType::Regular, 0o644, data.len() as u64);
        b.append(&h, data).unwrap();
    }

    fn dir(b: &mut tar::Builder<Vec<u8>>, path: &str) {
        let h = header(path, tar::EntryType::Directory, 0o755, 0);
        b.append(&h, io::empty()).unwrap();
    }

    fn sha(data: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(data)))
    }

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn unpacks_files_symlinks_hardlinks_and_reports_diff_id() {
        let mut b = tar::Builder::new(Vec::new());
        dir(&mut b, "etc/");
        file(&mut b, "etc/hello", b"hi\n");
        let mut h = header("etc/link", tar::EntryType::Symlink, 0o777, 0);
        h.set_link_name("hello").unwrap();
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
        let mut h = header("etc/hard", tar::EntryType::Link, 0o644, 0);
        h.set_link_name("etc/hello").unwrap();
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
        let mut h = header("bin/tool", tar::EntryType::Regular, 0o4755, 2);
        h.set_cksum();
        b.append(&h, &b"#!"[..]).unwrap();
        let tar = b.into_inner().unwrap();

        // Gzip and plain give the same diff_id: the digest of the uncompressed stream.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        for blob in [&tar, &gz] {
            let dest = tempfile::tempdir().unwrap();
            let diff_id = unpack(&blob[..], dest.path()).unwrap();
            assert_eq!(diff_id, sha(&tar));
            let p = dest.path();
            assert_eq!(std::fs::read(p.join("etc/hello")).unwrap(), b"hi\n");
            assert_eq!(
                std::fs::read_link(p.join("etc/link")).unwrap(),
                Path::new("hello")
            );
            let (a, b) = (
                std::fs::metadata(p.join("etc/hello")).unwrap(),
                std::fs::metadata(p.join("etc/hard")).unwrap(),
            );
            assert_eq!(a.ino(), b.ino(), "hardlink within the layer");
            assert_eq!(
                std::fs::metadata(p.join("bin/tool")).unwrap().mode() & 0o7777,
                0o4755
            );
            assert_eq!(std::fs::metadata(p).unwrap().mode() & 0o777, 0o755);
        }
    }

    #[test]
    fn refuses_paths_escaping_the_layer() {
        // `..` in a path (written raw: the tar crate's set_path refuses it).
        let mut h = header("x", tar::EntryType::Regular, 0o644, 1);
        h.as_old_mut().name[..9].copy_from_slice(b"../escape");
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, &b"x"[..]).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let err = unpack(&b.into_inner().unwrap()[..], &dest.path().join("")).unwrap_err();
        assert!(err.to_string().contains("escapes the layer"), "{err}");

        // Through a symlink that points outside.
        let outside = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header("out", tar::EntryType::Symlink, 0o777, 0);
        h.set_link_name(outside.path()).unwrap();
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
        file(&mut b, "out/pwned", b"x");
        let dest = tempfile::tempdir().unwrap();
        assert!(unpack(&b.into_inner().unwrap()[..], dest.path()).is_err());
        assert!(!outside.path().join("pwned").exists());

        // A whiteout under that symlink.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header("out", tar::EntryType::Symlink, 0o777, 0);
        h.set_link_name(outside.path()).unwrap();
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
        file(&mut b, "out/.wh.victim", b"");
        let dest = tempfile::tempdir().unwrap();
        assert!(unpack(&b.into_inner().unwrap()[..], dest.path()).is_err());
        assert!(!outside.path().join("victim").exists());
    }

    #[test]
    fn converts_whiteouts_and_opaque_dirs_to_overlayfs_form() {
        if !is_root() {
            eprintln!("skipped: whiteouts need root (mknod, trusted.* xattrs)");
            return;
        }
        let mut b = tar::Builder::new(Vec::new());
        dir(&mut b, "etc/");
        file(&mut b, "etc/.wh.passwd", b"");
        dir(&mut b, "var/");
        dir(&mut b, "var/cache/");
        file(&mut b, "var/cache/.wh..wh..opq", b"");
        file(&mut b, "var/cache/new", b"n");
        // A whiteout in a directory the tar never declared.
        file(&mut b, "opt/deep/.wh.gone", b"");
        let mut h = header("dev/null", tar::EntryType::Char, 0o666, 0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
        let mut h = header("run/fifo", tar::EntryType::Fifo, 0o600, 0);
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
        let dest = tempfile::tempdir().unwrap();
        unpack(&b.into_inner().unwrap()[..], dest.path()).unwrap();
        let p = dest.path();

        for wh in ["etc/passwd", "opt/deep/gone"] {
            let m = std::fs::symlink_metadata(p.join(wh)).unwrap();
            assert!(m.file_type().is_char_device(), "{wh} is a whiteout");
            assert_eq!(m.rdev(), 0);
        }
        assert!(!p.join("etc/.wh.passwd").exists());
        assert_eq!(
            xattr::get(p.join("var/cache"), "trusted.overlay.opaque").unwrap(),
            Some(b"y".to_vec())
        );
        assert!(!p.join("var/cache/.wh..wh..opq").exists());
        assert_eq!(std::fs::read(p.join("var/cache/new")).unwrap(), b"n");
        let null = std::fs::symlink_metadata(p.join("dev/null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
        assert_eq!(null.mode() & 0o7777, 0o666);
        let fifo = std::fs::symlink_metadata(p.join("run/fifo")).unwrap();
        assert!(fifo.file_type().is_fifo());
    }

    #[test]
    fn keeps_owners_when_root() {
        if !is_root() {
            eprintln!("skipped: chown needs root");
            return;
        }
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header("home/app/file", tar::EntryType::Regular, 0o600, 1);
        h.set_uid(1000);
        h.set_gid(1001);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let dest = tempfile::tempdir().unwrap();
        unpack(&b.into_inner().unwrap()[..], dest.path()).unwrap();
        let m = std::fs::metadata(dest.path().join("home/app/file")).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (1000, 1001, 0o600));
    }
}
