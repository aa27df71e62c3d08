//! OCI bundles, backend-neutral: turn a [`ContainerSpec`] into a directory that any OCI
//! runtime runs, and take it apart again.
//!
//! ```text
//! <data>/containers/<id>/
//!   config.json     the OCI spec (never holds secret data: only paths)
//!   rootfs/         overlay: image layers (via l/<n> short links) + upper/ + work/
//!   files/          tmpfs (memory only): secrets and configs, bind-mounted read-only
//!   hostname, hosts, resolv.conf   the container's /etc files (etc.rs), bind-mounted
//!   json.log        the container's stdout/stderr (logs::LogWriter)
//! <data>/volumes/<name>/_data   named volumes, made on first use
//! ```
//!
//! Mounts made here live in the caller's mount namespace; [`cleanup`] unmounts every
//! mount under the container dir before removing it, and refuses to remove a dir that
//! still has one.

mod etc;
mod rootfs;
mod spec;

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

pub use self::rootfs::{check_executable, lookup_user, resolve_in_root, ExecUser, NotExecutable};
pub use self::spec::{capabilities, DEFAULT_CAPS, DEFAULT_PATH};
use super::{ContainerSpec, MountKind, RuntimeConfig};
use crate::{Error, Result};

/// Where `--init` puts the reaper and its loader and libraries inside the container:
/// on the container's own `/dev` tmpfs, so the image's files are never shadowed and a
/// read-only rootfs still works.
pub const INIT_DIR: &str = "/dev/.swarm-init";

/// A prepared bundle: the rootfs is mounted and `config.json` written.
#[derive(Debug)]
pub struct Bundle {
    /// `<data>/containers/<id>`, the OCI bundle dir.
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub spec: oci_spec::runtime::Spec,
    pub log_path: PathBuf,
}

pub fn container_dir(cfg: &RuntimeConfig, id: &str) -> PathBuf {
    cfg.data_dir.join("containers").join(id)
}

pub fn log_path(cfg: &RuntimeConfig, id: &str) -> PathBuf {
    log_path_in(&container_dir(cfg, id))
}

/// The log file inside a container dir.
pub fn log_path_in(dir: &Path) -> PathBuf {
    dir.join("json.log")
}

pub fn volume_dir(cfg: &RuntimeConfig, name: &str) -> PathBuf {
    cfg.data_dir.join("volumes").join(name).join("_data")
}

/// The container's cgroup path, relative to each hierarchy's root.
pub fn cgroups_path(cfg: &RuntimeConfig, id: &str) -> String {
    format!("/{}/{id}", cfg.cgroup_parent.trim_matches('/'))
}

/// Container IDs: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, as Docker's names.
pub fn validate_id(id: &str) -> Result<()> {
    let mut chars = id.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && id.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSpec(format!("invalid container id: {id:?}")))
    }
}

/// Mount the rootfs, volumes and the files tmpfs, and write `config.json`. On error
/// nothing is left behind.
pub fn prepare(cfg: &RuntimeConfig, spec: &ContainerSpec) -> Result<Bundle> {
    validate_id(&spec.id)?;
    let dir = container_dir(cfg, &spec.id);
    std::fs::create_dir_all(dir.parent().expect("containers dir"))
        .map_err(Error::path(dir.parent().expect("containers dir")))?;
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::ContainerExists(spec.id.clone()))
        }
        Err(e) => return Err(Error::path(&dir)(e)),
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))
        .map_err(Error::path(&dir))?;
    match prepare_in(cfg, spec, &dir) {
        Ok(b) => Ok(b),
        Err(e) => {
            if let Err(c) = cleanup(cfg, &spec.id) {
                tracing::warn!(id = %spec.id, "cleanup after failed prepare: {c}");
            }
            Err(e)
        }
    }
}

fn prepare_in(cfg: &RuntimeConfig, spec: &ContainerSpec, dir: &Path) -> Result<Bundle> {
    let image = spec
        .image
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec("no image".into()))?;
    let rootfs = dir.join("rootfs");
    for d in ["rootfs", "upper", "work"] {
        std::fs::create_dir(dir.join(d)).map_err(Error::path(dir.join(d)))?;
    }
    let mut layers = image.layers.clone();
    if layers.is_empty() {
        // overlayfs needs a lower layer.
        let empty = dir.join("empty");
        std::fs::create_dir(&empty).map_err(Error::path(&empty))?;
        layers.push(empty);
    }
    rootfs::mount_overlay(
        &dir.join("l"),
        &layers,
        &dir.join("upper"),
        &dir.join("work"),
        &rootfs,
    )?;

    let cfg_img = &image.config;
    let user_spec = spec
        .user
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| cfg_img.user.clone());
    let user = lookup_user(&rootfs, &user_spec)?;
    let hostname = spec
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| spec.id.chars().take(12).collect());
    let env = spec::process_env(spec, cfg_img, &hostname, &user.home);
    let cwd = spec
        .workdir
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| Some(cfg_img.working_dir.clone()).filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(Error::InvalidSpec(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }
    let host_cwd = resolve_in_root(&rootfs, &cwd);
    if !host_cwd.exists() {
        std::fs::create_dir_all(&host_cwd).map_err(Error::path(&host_cwd))?;
        let _ = std::os::unix::fs::chown(&host_cwd, Some(user.uid), Some(user.gid));
    }

    let mut args = spec::process_args(spec, cfg_img)?;
    let path_env = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    check_executable(&rootfs, &args[0], path_env, &cwd)?;

    let mut mounts = Vec::new();
    for m in &spec.mounts {
        mounts.push(user_mount(cfg, &rootfs, m)?);
    }
    mounts.extend(files_mounts(dir, spec)?);
    if spec.init {
        let (init_mounts, prefix) = init_mounts(&cfg.shim_exe)?;
        mounts.extend(init_mounts);
        args.splice(0..0, prefix);
    }
    mounts.extend(etc_mounts(dir, spec, &hostname)?);

    let oci = spec::build(
        spec,
        spec::Resolved {
            cgroups_path: cgroups_path(cfg, &spec.id),
            args,
            env,
            user: &user,
            cwd,
            hostname,
            mounts,
        },
    )?;
    let config = dir.join("config.json");
    let tmp = dir.join("config.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&oci)?).map_err(Error::path(&tmp))?;
    std::fs::rename(&tmp, &config).map_err(Error::path(&config))?;
    Ok(Bundle {
        dir: dir.to_path_buf(),
        rootfs,
        spec: oci,
        log_path: log_path_in(dir),
    })
}

/// The host's resolver file, read for each container (it may change while the node
/// runs, as dockerd re-reads it).
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`: written in the container dir and
/// bind-mounted, read-write as Docker mounts them (read-only with `--read-only`).
fn etc_mounts(dir: &Path, spec: &ContainerSpec, hostname: &str) -> Result<Vec<Value>> {
    // A host without the file (a bare chroot) gives the fallback nameservers.
    let host_resolv = std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default();
    let files = [
        ("hostname", "/etc/hostname", etc::hostname_file(hostname)),
        ("hosts", "/etc/hosts", etc::hosts_file(&spec.extra_hosts)),
        (
            "resolv.conf",
            "/etc/resolv.conf",
            etc::resolv_conf(&host_resolv, &spec.dns),
        ),
    ];
    let mode = if spec.read_only { "ro" } else { "rw" };
    let mut mounts = Vec::new();
    for (name, target, content) in files {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(Error::path(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(Error::path(&path))?;
        mounts.push(
            json!({"destination": target, "type": "bind", "source": path,
            "options": ["rbind", "rprivate", mode]}),
        );
    }
    Ok(mounts)
}

/// A bind, volume or tmpfs mount as an OCI mount entry.
fn user_mount(cfg: &RuntimeConfig, rootfs: &Path, m: &super::Mount) -> Result<Value> {
    if !m.target.starts_with('/') {
        return Err(Error::InvalidSpec(format!(
            "invalid mount config: mount path must be absolute: {}",
            m.target
        )));
    }
    let ro = if m.read_only { "ro" } else { "rw" };
    Ok(match m.kind {
        MountKind::Bind => {
            if !Path::new(&m.source).exists() {
                return Err(Error::InvalidSpec(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {}",
                    m.source
                )));
            }
            json!({"destination": m.target, "type": "bind", "source": m.source,
                   "options": ["rbind", "rprivate", ro]})
        }
        MountKind::Volume => {
            if m.source.is_empty() || m.source.contains('/') || m.source.starts_with('.') {
                return Err(Error::InvalidSpec(format!(
                    "invalid mount config for type \"volume\": invalid volume name: {:?}",
                    m.source
                )));
            }
            let data = volume_dir(cfg, &m.source);
            if !data.exists() {
                make_volume(&data, &resolve_in_root(rootfs, &m.target))?;
            }
            json!({"destination": m.target, "type": "bind", "source": data,
                   "options": ["rbind", "rprivate", ro]})
        }
        MountKind::Tmpfs => {
            let mut opts = vec!["nosuid".to_string(), "nodev".into(), ro.into()];
            if m.tmpfs_size > 0 {
                opts.push(format!("size={}", m.tmpfs_size));
            }
            json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": opts})
        }
    })
}

/// A new named volume, filled with what the image has at the mount target (as Docker
/// does). Built in a temp dir and renamed, so a half-copied volume never appears.
fn make_volume(data: &Path, image_content: &Path) -> Result<()> {
    let parent = data.parent().expect("volume dir");
    std::fs::create_dir_all(parent).map_err(Error::path(parent))?;
    let tmp = parent.join(format!("_data.tmp.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(Error::path(&tmp))?;
    if image_content.is_dir() {
        rootfs::copy_tree(image_content, &tmp).map_err(Error::path(image_content))?;
    }
    match std::fs::rename(&tmp, data) {
        Ok(()) => Ok(()),
        // Another container made it first: use theirs.
        Err(_) if data.exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => Err(Error::path(data)(e)),
    }
}

/// Secrets and configs: a tmpfs at `<dir>/files` (memory only), one file per entry with
/// its owner and mode, each bind-mounted read-only at its target.
fn files_mounts(dir: &Path, spec: &ContainerSpec) -> Result<Vec<Value>> {
    if spec.files.is_empty() {
        return Ok(Vec::new());
    }
    let files = dir.join("files");
    std::fs::create_dir(&files).map_err(Error::path(&files))?;
    let size: u64 = spec
        .files
        .iter()
        .map(|f| (f.data.len() as u64).div_ceil(4096) * 4096 + 4096)
        .sum::<u64>()
        + (64 << 10);
    nix::mount::mount(
        Some("tmpfs"),
        &files,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        Some(format!("mode=0700,size={size}").as_str()),
    )
    .map_err(|e| Error::io(format!("mount tmpfs at {}", files.display()))(e.into()))?;
    let mut mounts = Vec::new();
    for (i, f) in spec.files.iter().enumerate() {
        if !f.target.starts_with('/') {
            return Err(Error::InvalidSpec(format!(
                "file target must be absolute: {}",
                f.target
            )));
        }
        let path = files.join(i.to_string());
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(Error::path(&path))?;
        file.write_all(&f.data).map_err(Error::path(&path))?;
        std::os::unix::fs::fchown(&file, Some(f.uid), Some(f.gid)).map_err(Error::path(&path))?;
        file.set_permissions(std::fs::Permissions::from_mode(f.mode & 0o7777))
            .map_err(Error::path(&path))?;
        mounts.push(
            json!({"destination": f.target, "type": "bind", "source": path,
            "options": ["rbind", "rprivate", "ro", "nosuid", "nodev", "noexec"]}),
        );
    }
    Ok(mounts)
}

/// `--init`: no static reaper binary exists on these hosts, so the reaper is the shim
/// executable itself (`<shim_exe> init -- cmd...`), run through the host's dynamic loader
/// with the libraries `ldd` names, all bind-mounted read-only under [`INIT_DIR`].
/// Returns the mounts and the argv prefix.
fn init_mounts(shim_exe: &Path) -> Result<(Vec<Value>, Vec<String>)> {
    let out = std::process::Command::new("ldd")
        .arg(shim_exe)
        .output()
        .map_err(Error::io("run ldd for --init"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut mounts = Vec::new();
    let mut loader = None;
    let ro = json!(["bind", "ro", "nosuid", "nodev"]);
    for line in text.lines() {
        let line = line.trim();
        let path = match line.split_once(" => ") {
            Some((_, rest)) => rest.split(' ').next().unwrap_or(""),
            None => line.split(' ').next().unwrap_or(""),
        };
        if !path.starts_with('/') {
            continue; // linux-vdso
        }
        let soname = match line.split_once(" => ") {
            Some((name, _)) => name.trim().to_string(),
            None => Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        if line.split_once(" => ").is_none() {
            loader = Some(soname.clone());
        }
        mounts.push(
            json!({"destination": format!("{INIT_DIR}/{soname}"), "type": "bind",
            "source": path, "options": ro}),
        );
    }
    let loader = loader.ok_or_else(|| {
        Error::Other(format!(
            "--init: no dynamic loader found for {}",
            shim_exe.display()
        ))
    })?;
    mounts.push(
        json!({"destination": format!("{INIT_DIR}/init"), "type": "bind",
        "source": shim_exe, "options": ro}),
    );
    let prefix = vec![
        format!("{INIT_DIR}/{loader}"),
        "--library-path".into(),
        INIT_DIR.into(),
        format!("{INIT_DIR}/init"),
        "init".into(),
        "--".into(),
    ];
    Ok((mounts, prefix))
}

/// `rm -rf --one-file-system` of `dir` (a volume being removed): never reaches into a
/// mount below it.
pub fn remove_tree(dir: &Path) -> Result<()> {
    rootfs::remove_tree_one_fs(dir)
}

/// The volume mounts of a bundle made before containers' records kept their mounts:
/// from its `config.json`, the binds whose source is a volume's `_data`.
pub fn volume_mounts_in_config(cfg: &RuntimeConfig, id: &str) -> Vec<super::Mount> {
    let Ok(bytes) = std::fs::read(container_dir(cfg, id).join("config.json")) else {
        return Vec::new();
    };
    let Ok(spec) = serde_json::from_slice::<Value>(&bytes) else {
        return Vec::new();
    };
    let volumes = cfg.data_dir.join("volumes");
    spec["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let source = Path::new(m["source"].as_str()?);
            let rest = source.strip_prefix(&volumes).ok()?;
            let mut parts = rest.components();
            let name = parts.next()?.as_os_str().to_str()?.to_string();
            (parts.as_path() == Path::new("_data")).then(|| super::Mount {
                kind: MountKind::Volume,
                source: name,
                target: m["destination"].as_str().unwrap_or_default().to_string(),
                read_only: m["options"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|x| x == "ro")),
                tmpfs_size: 0,
            })
        })
        .collect()
}

/// Unmount everything under the container dir and remove it. Idempotent. Never removes
/// a dir that still has a mount below it (that would reach into image layers or volumes).
pub fn cleanup(cfg: &RuntimeConfig, id: &str) -> Result<()> {
    validate_id(id)?;
    let dir = container_dir(cfg, id);
    // The mounts we make, by name: mountinfo read while other containers mount and
    // unmount can miss lines. Then whatever else mountinfo shows.
    let known = [dir.join("rootfs"), dir.join("files")];
    for m in known.iter().cloned().chain(rootfs::mounts_under(&dir)) {
        if let Err(e) = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH) {
            if e != nix::errno::Errno::EINVAL && e != nix::errno::Errno::ENOENT {
                return Err(Error::io(format!("unmount {}", m.display()))(e.into()));
            }
        }
    }
    let left = rootfs::mounts_under(&dir);
    if !left.is_empty() {
        return Err(Error::Other(format!(
            "container {id}: still mounted: {}",
            left[0].display()
        )));
    }
    rootfs::remove_tree_one_fs(&dir)
}
