//! Named volumes of the `local` driver: a directory per volume, what Docker's
//! `docker volume` commands manage, and the lock that keeps a volume from being removed
//! while a container that mounts it is being made.
//!
//! ```text
//! <data>/volumes/<name>/
//!   _data/       the volume's files (a container's bind source)
//!   opts.json    labels, driver options, creation time (absent for a volume a
//!                container made on first use: it has none)
//! ```
//!
//! A volume appears whole or not at all: `create` builds it under a dot name and renames
//! it; `remove` renames it to a dot name before deleting its files. Dot names are never
//! volume names, so a crash in between leaves nothing that `list` shows (and the next
//! `list` clears them).
//!
//! Who uses a volume comes from the runtime's container states (their mounts), running
//! or not, as Docker counts them. [`Volumes::guard`] wraps a runtime so that creating a
//! container holds the volumes' lock shared while `remove` and `prune` hold it alone:
//! a container either exists (and is seen) before a removal looks, or is created after
//! it (and makes its volume again, empty).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::container::{
    ContainerRuntime, ContainerSpec, ContainerState, ExecOutput, ExecSpec, ExitStatus, MountKind,
};
use crate::{Error, Result};

/// The only driver there is.
pub const LOCAL_DRIVER: &str = "local";
/// The label Docker (API 1.42 and later) puts on a volume made without a name; a prune
/// without `all` removes only those.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";
const OPTS_FILE: &str = "opts.json";
const DATA_DIR: &str = "_data";
/// The local driver's option keys (moby's `volume/local`); see [`Volumes::create`].
const DRIVER_OPTS: [&str; 4] = ["type", "device", "o", "size"];

/// One volume, as `GET /volumes/{name}` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub name: String,
    pub mountpoint: PathBuf,
    pub created_at: DateTime<Utc>,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

impl Volume {
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// `opts.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Opts {
    created_at: DateTime<Utc>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    options: BTreeMap<String, String>,
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pruned {
    pub names: Vec<String>,
    /// Bytes of the removed volumes' files.
    pub space: u64,
}

/// This node's volumes (`<data>/volumes`).
pub struct Volumes {
    root: PathBuf,
    /// Shared while a container is created, alone while volumes are removed.
    lock: RwLock<()>,
}

impl Volumes {
    pub fn new(data_dir: &Path) -> Volumes {
        Volumes {
            root: data_dir.join("volumes"),
            lock: RwLock::new(()),
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>> {
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::path(&self.root)(e)),
        };
        let mut out = Vec::new();
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue; // being made or removed
            }
            match self.read(&name) {
                Ok(Some(v)) => out.push(v),
                Ok(None) => {}
                Err(e) => tracing::warn!(volume = %name, "unreadable volume: {e}"),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Volume `name`, or Docker's `get NAME: no such volume`.
    pub fn get(&self, name: &str) -> Result<Volume> {
        if validate_name(name).is_err() {
            return Err(Error::NoSuchVolume(name.into()));
        }
        self.read(name)?
            .ok_or_else(|| Error::NoSuchVolume(name.into()))
    }

    fn read(&self, name: &str) -> Result<Option<Volume>> {
        let dir = self.dir(name);
        let data = dir.join(DATA_DIR);
        let meta = match std::fs::metadata(&data) {
            Ok(m) if m.is_dir() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::path(data)(e)),
        };
        let opts: Option<Opts> = match std::fs::read(dir.join(OPTS_FILE)) {
            Ok(b) => Some(serde_json::from_slice(&b)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::path(dir.join(OPTS_FILE))(e)),
        };
        let (created_at, labels, options) = match opts {
            Some(o) => (o.created_at, o.labels, o.options),
            // Made by a container on first use: the data dir's own time.
            None => (
                DateTime::from_timestamp(meta.ctime(), 0).unwrap_or_default(),
                BTreeMap::new(),
                BTreeMap::new(),
            ),
        };
        Ok(Some(Volume {
            name: name.into(),
            mountpoint: data,
            created_at,
            labels,
            options,
        }))
    }

    /// `POST /volumes/create`. No name: a random 64-hex one, labelled anonymous (as
    /// Docker). A volume that exists is answered as it is (Docker's local driver keeps
    /// its labels too). Driver options are checked as the local driver checks them;
    /// those that would mount a device (`type`, `device`, `o`, `size`) are refused:
    /// swarmd's volumes are plain directories.
    pub async fn create(
        &self,
        name: Option<&str>,
        driver: Option<&str>,
        mut labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<Volume> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => {
                labels.insert(ANONYMOUS_LABEL.into(), String::new());
                random_name()
            }
        };
        let op = |msg: String| Error::InvalidVolume(format!("create {name}: {msg}"));
        match driver.filter(|d| !d.is_empty()) {
            None | Some(LOCAL_DRIVER) => {}
            Some(d) => return Err(op(format!("plugin \"{d}\" not found"))),
        }
        validate_name(&name).map_err(op)?;
        if let Some(k) = options.keys().find(|k| !DRIVER_OPTS.contains(&k.as_str())) {
            return Err(op(format!("invalid option: {k:?}")));
        }
        if let Some(k) = options.keys().next() {
            return Err(op(format!(
                "option {k:?}: volumes that mount a device are not supported by swarmd"
            )));
        }
        let _alone = self.lock.write().await;
        if let Some(v) = self.read(&name)? {
            return Ok(v);
        }
        std::fs::create_dir_all(&self.root).map_err(Error::path(&self.root))?;
        let tmp = self.root.join(format!(".new-{name}"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir(&tmp).map_err(Error::path(&tmp))?;
        let made = (|| {
            std::fs::create_dir(tmp.join(DATA_DIR)).map_err(Error::path(tmp.join(DATA_DIR)))?;
            let opts = Opts {
                created_at: DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_default(),
                labels,
                options,
            };
            write_atomic(&tmp.join(OPTS_FILE), &serde_json::to_vec(&opts)?)?;
            // A dir left by a container's half-made volume (no `_data`): replace it.
            let dir = self.dir(&name);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(Error::path(&dir))?;
            }
            std::fs::rename(&tmp, &dir).map_err(Error::path(&dir))?;
            sync_dir(&self.root);
            Ok(())
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        self.get(&name)
    }

    /// The IDs of the containers (running or not) that mount volume `name`.
    pub fn users(states: &[ContainerState], name: &str) -> Vec<String> {
        states
            .iter()
            .filter(|s| {
                s.mounts
                    .iter()
                    .any(|m| m.kind == MountKind::Volume && m.source == name)
            })
            .map(|s| s.id.clone())
            .collect()
    }

    /// `DELETE /volumes/{name}`: refused in Docker's words while a container of `rt`
    /// mounts it. With `force`, a volume that does not exist is no error (Docker's
    /// `force`); one in use is still refused.
    pub async fn remove(&self, rt: &dyn ContainerRuntime, name: &str, force: bool) -> Result<()> {
        let _alone = self.lock.write().await;
        if let Err(e) = self.get(name) {
            return match e {
                Error::NoSuchVolume(_) if force => Ok(()),
                e => Err(e),
            };
        }
        let states = rt.list().await?;
        let users = Self::users(&states, name);
        if !users.is_empty() {
            return Err(Error::VolumeInUse {
                name: name.into(),
                containers: users,
            });
        }
        self.delete(name).map(|_| ())
    }

    /// `POST /volumes/prune`: every volume no container mounts that `keep` does not
    /// keep (the caller's filters: anonymous only, labels).
    pub async fn prune(
        &self,
        rt: &dyn ContainerRuntime,
        keep: impl Fn(&Volume) -> bool,
    ) -> Result<Pruned> {
        let _alone = self.lock.write().await;
        let states = rt.list().await?;
        let mut pruned = Pruned::default();
        for v in self.list()? {
            if keep(&v) || !Self::users(&states, &v.name).is_empty() {
                continue;
            }
            match self.delete(&v.name) {
                Ok(space) => {
                    pruned.space += space;
                    pruned.names.push(v.name);
                }
                Err(e) => tracing::warn!(volume = %v.name, "prune: {e}"),
            }
        }
        Ok(pruned)
    }

    /// Take the volume out of sight (one rename), then delete its files; returns their
    /// size. Never follows into another filesystem.
    fn delete(&self, name: &str) -> Result<u64> {
        let dir = self.dir(name);
        let gone = self.root.join(format!(".rm-{name}"));
        let _ = std::fs::remove_dir_all(&gone);
        std::fs::rename(&dir, &gone).map_err(Error::path(&dir))?;
        sync_dir(&self.root);
        let space = tree_size(&gone.join(DATA_DIR));
        crate::container::bundle::remove_tree(&gone)?;
        Ok(space)
    }

    /// Leftovers of a create or remove that a crash interrupted.
    pub fn clean_interrupted(&self) {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return;
        };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(".new-") || n.starts_with(".rm-") {
                if let Err(err) = crate::container::bundle::remove_tree(&e.path()) {
                    tracing::warn!("remove {}: {err}", e.path().display());
                }
            }
        }
    }

    /// `rt`, with every create that mounts a volume holding this store's lock shared.
    pub fn guard(self: &Arc<Self>, rt: Arc<dyn ContainerRuntime>) -> Arc<dyn ContainerRuntime> {
        Arc::new(Guarded {
            inner: rt,
            volumes: self.clone(),
        })
    }
}

/// moby's local driver names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_name(name: &str) -> std::result::Result<(), String> {
    if name.len() == 1 {
        return Err(
            "volume name is too short, names should be at least two alphanumeric characters".into(),
        );
    }
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} includes invalid characters for a local volume name, only \
             \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host \
             directory, use absolute path"
        ))
    }
}

/// 64 random hex digits, as Docker names an anonymous volume.
fn random_name() -> String {
    let mut buf = [0u8; 32];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_err()
    {
        let t = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u128;
        buf[..16].copy_from_slice(&(t ^ ((std::process::id() as u128) << 64)).to_le_bytes());
    }
    hex::encode(buf)
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(Error::path(&tmp))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(Error::path(&tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::path(path))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The size of the files below `dir` (Docker's `directory.Size`), on its filesystem only.
fn tree_size(dir: &Path) -> u64 {
    let Ok(top) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    fn walk(p: &Path, dev: u64) -> u64 {
        let Ok(rd) = std::fs::read_dir(p) else {
            return 0;
        };
        rd.flatten()
            .filter_map(|e| std::fs::symlink_metadata(e.path()).ok().map(|m| (e, m)))
            .map(|(e, m)| {
                if m.is_dir() && m.dev() == dev {
                    walk(&e.path(), dev)
                } else if m.is_file() {
                    m.len()
                } else {
                    0
                }
            })
            .sum()
    }
    walk(dir, top.dev())
}

/// A runtime whose creates that mount volumes hold the volumes' lock shared.
struct Guarded {
    inner: Arc<dyn ContainerRuntime>,
    volumes: Arc<Volumes>,
}

#[async_trait::async_trait]
impl ContainerRuntime for Guarded {
    async fn create(&self, spec: &ContainerSpec) -> Result<ContainerState> {
        let _shared = if spec.mounts.iter().any(|m| m.kind == MountKind::Volume) {
            Some(self.volumes.lock.read().await)
        } else {
            None
        };
        self.inner.create(spec).await
    }
    async fn start(&self, id: &str) -> Result<()> {
        self.inner.start(id).await
    }
    async fn wait(&self, id: &str) -> Result<ExitStatus> {
        self.inner.wait(id).await
    }
    async fn stop(&self, id: &str, signal: Option<&str>, grace: Duration) -> Result<ExitStatus> {
        self.inner.stop(id, signal, grace).await
    }
    async fn kill(&self, id: &str, signal: &str) -> Result<()> {
        self.inner.kill(id, signal).await
    }
    async fn remove(&self, id: &str) -> Result<()> {
        self.inner.remove(id).await
    }
    async fn exec(&self, id: &str, exec: &ExecSpec) -> Result<ExecOutput> {
        self.inner.exec(id, exec).await
    }
    async fn exec_attached(
        &self,
        id: &str,
        exec: &ExecSpec,
        tty: bool,
        stdin: bool,
    ) -> Result<crate::container::attach::AttachedExec> {
        self.inner.exec_attached(id, exec, tty, stdin).await
    }
    fn cgroup_path(&self, id: &str) -> String {
        self.inner.cgroup_path(id)
    }
    async fn state(&self, id: &str) -> Result<ContainerState> {
        self.inner.state(id).await
    }
    async fn list(&self) -> Result<Vec<ContainerState>> {
        self.inner.list().await
    }
    fn log_path(&self, id: &str) -> PathBuf {
        self.inner.log_path(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{Mount, Status};

    fn state(id: &str, volume: &str) -> ContainerState {
        ContainerState {
            id: id.into(),
            status: Status::Exited,
            pid: None,
            started_at: None,
            exit: None,
            labels: BTreeMap::new(),
            mounts: vec![Mount {
                kind: MountKind::Volume,
                source: volume.into(),
                target: "/data".into(),
                read_only: false,
                tmpfs_size: 0,
            }],
        }
    }

    /// A runtime that only lists what it is given.
    struct Listed(std::sync::Mutex<Vec<ContainerState>>);

    #[async_trait::async_trait]
    impl ContainerRuntime for Listed {
        async fn create(&self, spec: &ContainerSpec) -> Result<ContainerState> {
            let mut s = state(&spec.id, "");
            s.mounts = spec.mounts.clone();
            self.0.lock().unwrap().push(s.clone());
            Ok(s)
        }
        async fn start(&self, _: &str) -> Result<()> {
            Ok(())
        }
        async fn wait(&self, id: &str) -> Result<ExitStatus> {
            Err(Error::NoSuchContainer(id.into()))
        }
        async fn stop(&self, id: &str, _: Option<&str>, _: Duration) -> Result<ExitStatus> {
            Err(Error::NoSuchContainer(id.into()))
        }
        async fn kill(&self, _: &str, _: &str) -> Result<()> {
            Ok(())
        }
        async fn remove(&self, id: &str) -> Result<()> {
            self.0.lock().unwrap().retain(|s| s.id != id);
            Ok(())
        }
        async fn exec(&self, id: &str, _: &ExecSpec) -> Result<ExecOutput> {
            Err(Error::NoSuchContainer(id.into()))
        }
        async fn exec_attached(
            &self,
            id: &str,
            _: &ExecSpec,
            _: bool,
            _: bool,
        ) -> Result<crate::container::attach::AttachedExec> {
            Err(Error::NoSuchContainer(id.into()))
        }
        fn cgroup_path(&self, id: &str) -> String {
            format!("/test/{id}")
        }
        async fn state(&self, id: &str) -> Result<ContainerState> {
            Err(Error::NoSuchContainer(id.into()))
        }
        async fn list(&self) -> Result<Vec<ContainerState>> {
            Ok(self.0.lock().unwrap().clone())
        }
        fn log_path(&self, id: &str) -> PathBuf {
            PathBuf::from(id)
        }
    }

    #[tokio::test]
    async fn create_list_get_remove_and_dockers_words() {
        let tmp = tempfile::tempdir().unwrap();
        let vols = Volumes::new(tmp.path());
        let rt = Listed(Default::default());
        let labels: BTreeMap<_, _> = [("a".to_string(), "b".to_string())].into();
        let v = vols
            .create(Some("v1"), Some("local"), labels.clone(), BTreeMap::new())
            .await
            .unwrap();
        assert_eq!(v.mountpoint, tmp.path().join("volumes/v1/_data"));
        assert!(v.mountpoint.is_dir());
        assert_eq!(v.labels, labels);
        // Again: the same volume, its labels kept.
        let again = vols
            .create(Some("v1"), None, BTreeMap::new(), BTreeMap::new())
            .await
            .unwrap();
        assert_eq!(again, v);
        let anon = vols
            .create(None, None, BTreeMap::new(), BTreeMap::new())
            .await
            .unwrap();
        assert_eq!(anon.name.len(), 64);
        assert!(anon.is_anonymous());
        assert_eq!(vols.list().unwrap().len(), 2);

        rt.0.lock().unwrap().push(state("c1", "v1"));
        let e = vols.remove(&rt, "v1", false).await.unwrap_err();
        assert_eq!(e.to_string(), "remove v1: volume is in use - [c1]");
        let e = vols.remove(&rt, "v1", true).await.unwrap_err();
        assert!(matches!(e, Error::VolumeInUse { .. }), "{e}");
        rt.0.lock().unwrap().clear();
        vols.remove(&rt, "v1", false).await.unwrap();
        assert!(!tmp.path().join("volumes/v1").exists());
        let e = vols.remove(&rt, "v1", false).await.unwrap_err();
        assert_eq!(e.to_string(), "get v1: no such volume");
        vols.remove(&rt, "v1", true).await.unwrap();
        assert_eq!(
            vols.get("nosuch").unwrap_err().to_string(),
            "get nosuch: no such volume"
        );
    }

    #[tokio::test]
    async fn refusals_as_the_local_driver() {
        let tmp = tempfile::tempdir().unwrap();
        let vols = Volumes::new(tmp.path());
        let none = BTreeMap::new;
        let e = |name: &str, driver: Option<&str>, opts: BTreeMap<String, String>| {
            let vols = &vols;
            let name = name.to_string();
            let driver = driver.map(str::to_string);
            async move {
                vols.create(Some(&name), driver.as_deref(), BTreeMap::new(), opts)
                    .await
                    .unwrap_err()
                    .to_string()
            }
        };
        assert_eq!(
            e("x", None, none()).await,
            "create x: volume name is too short, names should be at least two alphanumeric characters"
        );
        assert!(e("a/b", None, none())
            .await
            .starts_with("create a/b: \"a/b\" includes invalid characters"));
        assert_eq!(
            e("vv", Some("nfs"), none()).await,
            "create vv: plugin \"nfs\" not found"
        );
        let foo: BTreeMap<_, _> = [("foo".to_string(), "bar".to_string())].into();
        assert_eq!(
            e("vv", None, foo).await,
            "create vv: invalid option: \"foo\""
        );
        assert!(vols.list().unwrap().is_empty());
    }

    #[tokio::test]
    async fn prune_keeps_used_and_kept_volumes_and_counts_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let vols = Volumes::new(tmp.path());
        let rt = Listed(Default::default());
        for n in ["used", "named"] {
            vols.create(Some(n), None, BTreeMap::new(), BTreeMap::new())
                .await
                .unwrap();
        }
        let anon = vols
            .create(None, None, BTreeMap::new(), BTreeMap::new())
            .await
            .unwrap();
        std::fs::write(anon.mountpoint.join("f"), [0u8; 1000]).unwrap();
        rt.0.lock().unwrap().push(state("c1", "used"));
        let p = vols.prune(&rt, |v| !v.is_anonymous()).await.unwrap();
        assert_eq!(p.names, vec![anon.name.clone()]);
        assert_eq!(p.space, 1000);
        let p = vols.prune(&rt, |_| false).await.unwrap();
        assert_eq!(p.names, vec!["named".to_string()]);
        let left: Vec<String> = vols.list().unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(left, vec!["used".to_string()]);
    }

    #[tokio::test]
    async fn a_create_that_mounts_a_volume_and_a_remove_do_not_interleave() {
        let tmp = tempfile::tempdir().unwrap();
        let vols = Arc::new(Volumes::new(tmp.path()));
        vols.create(Some("v1"), None, BTreeMap::new(), BTreeMap::new())
            .await
            .unwrap();
        let inner = Arc::new(Listed(Default::default()));
        let rt = vols.guard(inner.clone());
        // A create holding the lock shared: the remove waits for it, then sees it.
        let shared = vols.lock.read().await;
        let remover = {
            let vols = vols.clone();
            let inner = inner.clone();
            tokio::spawn(async move { vols.remove(inner.as_ref(), "v1", false).await })
        };
        tokio::task::yield_now().await;
        assert!(!remover.is_finished());
        inner.0.lock().unwrap().push(state("c1", "v1"));
        drop(shared);
        let e = remover.await.unwrap().unwrap_err();
        assert!(matches!(e, Error::VolumeInUse { .. }), "{e}");
        // Through the guard: a create waits while a removal holds the lock.
        inner.0.lock().unwrap().clear();
        let alone = vols.lock.write().await;
        let creator = {
            let rt = rt.clone();
            tokio::spawn(async move {
                let spec = ContainerSpec {
                    id: "c2".into(),
                    mounts: state("c2", "v1").mounts,
                    ..Default::default()
                };
                rt.create(&spec).await
            })
        };
        tokio::task::yield_now().await;
        assert!(!creator.is_finished());
        assert!(inner.0.lock().unwrap().is_empty());
        drop(alone);
        creator.await.unwrap().unwrap();
        assert_eq!(Volumes::users(&inner.list().await.unwrap(), "v1"), ["c2"]);
    }
}
