//! The container's root filesystem as seen from the host: the overlay mount, paths
//! resolved inside it (symlinks stay inside the rootfs), users and groups from its
//! `/etc/passwd` and `/etc/group`, and executables looked up on its `PATH`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::{Error, Result};

/// Mount an overlay of `layers` (lowest first) at `target`, with `upper` and `work`.
///
/// The mount option must stay under a page (4096 bytes): each layer gets a short symlink
/// `<links>/<n>` and the lowerdirs are given relative to `links`. The `chdir` that makes
/// them relative happens in a forked child, never in the (multi-threaded) caller.
pub fn mount_overlay(
    links: &Path,
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<()> {
    std::fs::create_dir_all(links).map_err(Error::path(links))?;
    // overlayfs lists the top layer first.
    let mut names = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().rev().enumerate() {
        let link = links.join(i.to_string());
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(layer, &link).map_err(Error::path(&link))?;
        names.push(i.to_string());
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        names.join(":"),
        upper.display(),
        work.display()
    );
    if opts.len() >= 4096 {
        return Err(Error::InvalidSpec(format!(
            "too many layers for one overlay mount ({})",
            layers.len()
        )));
    }
    let c = |p: &[u8]| CString::new(p).map_err(|_| Error::InvalidSpec("path has a NUL".into()));
    let dir = c(links.as_os_str().as_bytes())?;
    let target_c = c(target.as_os_str().as_bytes())?;
    let opts_c = c(opts.as_bytes())?;
    let fstype = c(b"overlay")?;

    // SAFETY: between fork and _exit the child only makes async-signal-safe syscalls
    // (chdir, mount, _exit) on memory prepared before the fork, so forking a
    // multi-threaded process is sound here.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::io("fork for overlay mount")(
            std::io::Error::last_os_error(),
        ));
    }
    if pid == 0 {
        // SAFETY: see above; the pointers are valid CStrings owned by the parent's copy.
        unsafe {
            if libc::chdir(dir.as_ptr()) != 0 {
                libc::_exit(*libc::__errno_location());
            }
            let rc = libc::mount(
                fstype.as_ptr(),
                target_c.as_ptr(),
                fstype.as_ptr(),
                0,
                opts_c.as_ptr().cast(),
            );
            libc::_exit(if rc == 0 {
                0
            } else {
                *libc::__errno_location()
            });
        }
    }
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None)?;
    match status {
        nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
        nix::sys::wait::WaitStatus::Exited(_, errno) => {
            Err(Error::io(format!(
                "mount overlay at {} ({} layers)",
                target.display(),
                layers.len()
            ))(std::io::Error::from_raw_os_error(errno)))
        }
        other => Err(Error::Other(format!("overlay mount helper: {other:?}"))),
    }
}

/// Resolve `path` (absolute as seen in the container) to a host path under `root`,
/// following symlinks as the container would: never leaving `root`. The last component
/// need not exist.
pub fn resolve_in_root(root: &Path, path: &str) -> PathBuf {
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = Path::new(path)
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            parts.pop();
            continue;
        }
        let mut host = root.to_path_buf();
        host.extend(&parts);
        host.push(&part);
        match std::fs::read_link(&host) {
            Ok(target) if hops < 40 => {
                hops += 1;
                if target.is_absolute() {
                    parts.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => parts.push(part),
        }
    }
    let mut host = root.to_path_buf();
    host.extend(&parts);
    host
}

/// A user resolved against the rootfs, as runc's `user.GetExecUser` does.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

/// Resolve `user[:group]` (names or numbers) against the rootfs' `/etc/passwd` and
/// `/etc/group`, with Docker's errors.
pub fn lookup_user(root: &Path, spec: &str) -> Result<ExecUser> {
    let passwd = std::fs::read_to_string(resolve_in_root(root, "/etc/passwd")).unwrap_or_default();
    let group = std::fs::read_to_string(resolve_in_root(root, "/etc/group")).unwrap_or_default();
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entries = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7);
    let mut found = None;
    for f in entries {
        let (Ok(uid), Ok(gid)) = (f[2].parse::<u32>(), f[3].parse::<u32>()) else {
            continue;
        };
        if f[0] == user || (user.parse::<u32>() == Ok(uid)) {
            found = Some((f[0].to_string(), uid, gid, f[5].to_string()));
            break;
        }
    }
    let (name, uid, mut gid, home) = match (found, user.parse::<u32>()) {
        (Some(f), _) => f,
        (None, Ok(uid)) => (String::new(), uid, 0, "/".to_string()),
        (None, Err(_)) if user.is_empty() => ("root".into(), 0, 0, "/root".into()),
        (None, Err(_)) => {
            return Err(Error::Start(format!(
                "unable to find user {user}: no matching entries in passwd file"
            )))
        }
    };
    let groups = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .filter_map(|f| Some((f[0], f[2].parse::<u32>().ok()?, f[3])))
        .collect::<Vec<_>>();
    if let Some(g) = grp {
        gid = match groups
            .iter()
            .find(|(n, id, _)| *n == g || g.parse() == Ok(*id))
        {
            Some((_, id, _)) => *id,
            None => g.parse().map_err(|_| {
                Error::Start(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
    }
    let additional_gids = if grp.is_none() && !name.is_empty() {
        groups
            .iter()
            .filter(|(_, id, members)| *id != gid && members.split(',').any(|m| m == name))
            .map(|(_, id, _)| *id)
            .collect()
    } else {
        Vec::new()
    };
    Ok(ExecUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// A command that cannot be run, in runc's words; `missing` when it is not there at all
/// (Docker's exit code 127 for an exec, else 126).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotExecutable {
    pub message: String,
    pub missing: bool,
}

impl From<NotExecutable> for Error {
    fn from(e: NotExecutable) -> Error {
        Error::Start(e.message)
    }
}

/// Check that `argv0` can be executed in the container, as Docker does before starting:
/// a name without `/` is looked up on the container's `PATH`.
pub fn check_executable(
    root: &Path,
    argv0: &str,
    path_env: &str,
    workdir: &str,
) -> std::result::Result<(), NotExecutable> {
    let fail = |missing: bool, message: String| Err(NotExecutable { message, missing });
    let is_exec = |host: &Path| {
        std::fs::metadata(host)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if argv0.contains('/') {
        let full = if argv0.starts_with('/') {
            argv0.to_string()
        } else {
            format!("{}/{argv0}", workdir.trim_end_matches('/'))
        };
        let host = resolve_in_root(root, &full);
        return match std::fs::metadata(&host) {
            Err(_) => fail(
                true,
                format!("exec: \"{argv0}\": stat {argv0}: no such file or directory"),
            ),
            Ok(m) if m.is_dir() => fail(false, format!("exec: \"{argv0}\": is a directory")),
            Ok(_) if !is_exec(&host) => {
                fail(false, format!("exec: \"{argv0}\": permission denied"))
            }
            Ok(_) => Ok(()),
        };
    }
    for dir in path_env.split(':').filter(|d| d.starts_with('/')) {
        if is_exec(&resolve_in_root(root, &format!("{dir}/{argv0}"))) {
            return Ok(());
        }
    }
    fail(
        true,
        format!("exec: \"{argv0}\": executable file not found in $PATH"),
    )
}

/// Copy a directory tree (a volume's first content from the image), keeping modes,
/// owners and symlinks.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let dest = to.join(entry.file_name());
        let ft = meta.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &dest)?;
            let _ = std::os::unix::fs::lchown(&dest, Some(meta.uid()), Some(meta.gid()));
            continue;
        } else if ft.is_dir() {
            std::fs::create_dir(&dest)?;
            copy_tree(&entry.path(), &dest)?;
        } else if ft.is_file() {
            std::fs::copy(entry.path(), &dest)?;
        } else {
            continue; // devices, fifos, sockets: not worth copying into a volume
        }
        std::os::unix::fs::chown(&dest, Some(meta.uid()), Some(meta.gid()))?;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    Ok(())
}

/// Every mount point at or below `dir`, deepest first, from `/proc/self/mountinfo`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// `rm -rf --one-file-system`: remove `dir` without ever descending into another
/// filesystem (a mount left behind would otherwise be emptied: a volume, a bind).
/// A missing `dir` is fine.
pub fn remove_tree_one_fs(dir: &Path) -> Result<()> {
    let dev = match std::fs::symlink_metadata(dir) {
        Ok(m) => m.dev(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::path(dir)(e)),
    };
    fn walk(p: &Path, dev: u64) -> Result<()> {
        for entry in std::fs::read_dir(p).map_err(Error::path(p))? {
            let entry = entry.map_err(Error::path(p))?;
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).map_err(Error::path(&path))?;
            if meta.is_dir() {
                if meta.dev() != dev {
                    return Err(Error::Other(format!("still mounted: {}", path.display())));
                }
                walk(&path, dev)?;
                std::fs::remove_dir(&path).map_err(Error::path(&path))?;
            } else {
                std::fs::remove_file(&path).map_err(Error::path(&path))?;
            }
        }
        Ok(())
    }
    walk(dir, dev)?;
    std::fs::remove_dir(dir).map_err(Error::path(dir))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap_or(b'?');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_cannot_run_and_whether_it_is_there() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/sh"), b"").unwrap();
        std::fs::set_permissions(root.join("bin/sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::write(root.join("bin/data"), b"").unwrap();
        std::fs::set_permissions(
            root.join("bin/data"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert_eq!(check_executable(root, "sh", "/bin", "/"), Ok(()));
        let e = check_executable(root, "nosuch", "/bin", "/").unwrap_err();
        assert!(e.missing && e.message.ends_with("executable file not found in $PATH"));
        assert!(
            check_executable(root, "/bin/nosuch", "/bin", "/")
                .unwrap_err()
                .missing
        );
        let e = check_executable(root, "/bin/data", "/bin", "/").unwrap_err();
        assert!(!e.missing && e.message.ends_with("permission denied"));
        assert!(
            !check_executable(root, "/bin", "/bin", "/")
                .unwrap_err()
                .missing
        );
    }

    #[test]
    fn resolves_symlinks_inside_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("/usr/bin", root.join("bin")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("usr/escape")).unwrap();
        assert_eq!(resolve_in_root(root, "/bin/sh"), root.join("usr/bin/sh"));
        assert_eq!(
            resolve_in_root(root, "/usr/escape/passwd"),
            root.join("etc/passwd")
        );
        assert_eq!(resolve_in_root(root, "/../../x"), root.join("x"));
    }

    #[test]
    fn users_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/group"),
            "root:x:0:\napp:x:1000:\nextra:x:2000:app\n",
        )
        .unwrap();
        let u = lookup_user(root, "app").unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone()),
            (1000, 1000, vec![2000])
        );
        assert_eq!(u.home, "/home/app");
        assert_eq!(lookup_user(root, "1000:extra").unwrap().gid, 2000);
        assert_eq!(lookup_user(root, "4242").unwrap().uid, 4242);
        assert_eq!(
            lookup_user(root, "foo").unwrap_err().to_string(),
            "unable to find user foo: no matching entries in passwd file"
        );
        assert_eq!(
            lookup_user(root, "app:nope").unwrap_err().to_string(),
            "unable to find group nope: no matching entries in group file"
        );
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
    }
}
