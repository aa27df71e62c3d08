//! A real registry for the suites: Debian's `docker-registry` (CNCF distribution 2.8) on a
//! free loopback port with its storage in a temp dir, optional htpasswd auth, pushes with
//! `skopeo` in the four manifest kinds, its access log for counting requests, and a
//! loopback proxy that can stall or cut connections mid-transfer.
//!
//! ```text
//!  test ─▶ Proxy (127.0.0.1:P2, stall/cut after N response bytes) ─▶ Registry (127.0.0.1:P1)
//!                                                                      storage: <tmp>/storage
//!                                                                      access log: <tmp>/access.log
//! ```

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// The four manifest kinds a push can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// `application/vnd.oci.image.manifest.v1+json`
    OciManifest,
    /// `application/vnd.docker.distribution.manifest.v2+json`
    DockerV2S2,
    /// `application/vnd.oci.image.index.v1+json` (push a layout entry that is an index)
    OciIndex,
    /// `application/vnd.docker.distribution.manifest.list.v2+json` (same, converted)
    DockerList,
}

impl ManifestKind {
    pub const ALL: [ManifestKind; 4] = [
        ManifestKind::OciManifest,
        ManifestKind::DockerV2S2,
        ManifestKind::OciIndex,
        ManifestKind::DockerList,
    ];

    /// The Content-Type the registry serves for it.
    pub fn media_type(self) -> &'static str {
        use swarm_runtime::image::manifest::*;
        match self {
            ManifestKind::OciManifest => OCI_MANIFEST,
            ManifestKind::DockerV2S2 => DOCKER_MANIFEST,
            ManifestKind::OciIndex => OCI_INDEX,
            ManifestKind::DockerList => DOCKER_LIST,
        }
    }

    pub fn is_index(self) -> bool {
        matches!(self, ManifestKind::OciIndex | ManifestKind::DockerList)
    }

    fn skopeo_args(self) -> &'static [&'static str] {
        match self {
            ManifestKind::OciManifest => &["--format", "oci"],
            ManifestKind::DockerV2S2 => &["--format", "v2s2"],
            ManifestKind::OciIndex => &["--all", "--format", "oci"],
            ManifestKind::DockerList => &["--all", "--format", "v2s2"],
        }
    }
}

/// A running `docker-registry`, killed and cleaned up on drop.
pub struct Registry {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    auth: Option<(String, String)>,
    sentinel: AtomicU64,
}

impl Registry {
    /// An anonymous registry.
    pub fn start() -> Result<Registry> {
        Self::spawn(None)
    }

    /// A registry that wants HTTP basic auth (htpasswd, bcrypt) for every request.
    pub fn start_with_auth(user: &str, password: &str) -> Result<Registry> {
        Self::spawn(Some((user.to_string(), password.to_string())))
    }

    fn spawn(auth: Option<(String, String)>) -> Result<Registry> {
        ensure!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} missing: install Debian's docker-registry (scripts/install-deps)"
        );
        let dir = tempfile::Builder::new().prefix("registry-").tempdir()?;
        let port = free_port()?;
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: rootfs-tests\n",
            storage = dir.path().join("storage").display(),
        );
        if let Some((user, password)) = &auth {
            let hash = bcrypt::hash(password, 4)?;
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n"))?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: rootfs-tests\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        // The access log goes to stdout, the application log to stderr.
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("access.log"))?)
            .stderr(std::fs::File::create(dir.path().join("registry.log"))?)
            .spawn()
            .context("start docker-registry")?;
        let mut registry = Registry {
            child: Some(child),
            port,
            dir,
            auth,
            sentinel: AtomicU64::new(0),
        };
        registry.wait_ready(Duration::from_secs(20))?;
        Ok(registry)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok((status, _)) = http_get(self.port, "/v2/", &[]) {
                if status == 200 || status == 401 {
                    return Ok(());
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("docker-registry exited ({status}): {}", self.app_log());
            }
            if Instant::now() > deadline {
                bail!(
                    "docker-registry not answering /v2/ after {timeout:?}: {}",
                    self.app_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`: the registry part of references, and what `insecure` lists.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Push the layout entry `ref_name` of `layout` to `name:tag` as `kind`.
    pub fn push(
        &self,
        layout: &Path,
        ref_name: &str,
        name_tag: &str,
        kind: ManifestKind,
    ) -> Result<()> {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "--insecure-policy",
            "copy",
            "--dest-tls-verify=false",
            "--quiet",
        ])
        .args(kind.skopeo_args());
        if let Some((user, password)) = &self.auth {
            cmd.arg(format!("--dest-creds={user}:{password}"));
        }
        cmd.arg(format!("oci:{}:{ref_name}", layout.display()))
            .arg(format!("docker://{}/{name_tag}", self.host()));
        let out = cmd.output().context("run skopeo")?;
        ensure!(
            out.status.success(),
            "skopeo copy {ref_name} -> {name_tag} ({kind:?}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// The Content-Type the registry serves for `name:reference` (with the Accept list
    /// registries need for OCI media types).
    pub fn manifest_content_type(&self, name: &str, reference: &str) -> Result<String> {
        let accept = swarm_runtime::image::manifest::ACCEPT.join(", ");
        let mut headers = vec![("Accept".to_string(), accept)];
        if let Some((user, password)) = &self.auth {
            use base64::Engine;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            headers.push(("Authorization".into(), format!("Basic {token}")));
        }
        let (status, head) = http_get(
            self.port,
            &format!("/v2/{name}/manifests/{reference}"),
            &headers,
        )?;
        ensure!(status == 200, "manifest {name}:{reference}: HTTP {status}");
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-type")
                    .then(|| v.trim().to_string())
            })
            .context("no Content-Type")
    }

    /// Where the registry keeps a blob's bytes (to tamper with in tests).
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// The access log (Apache combined format, one line per request).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    pub fn app_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// How many `GET`s of `/v2/<name>/blobs/<digest>` the registry has logged. Makes a
    /// sentinel request first and waits until it is logged, so that every request
    /// answered before this call is counted.
    pub fn blob_gets(&self, name: &str, digest: &str) -> Result<usize> {
        self.sync_log()?;
        let needle = format!("\"GET /v2/{name}/blobs/{digest} ");
        Ok(self
            .access_log()
            .lines()
            .filter(|l| l.contains(&needle))
            .count())
    }

    fn sync_log(&self) -> Result<()> {
        let n = self.sentinel.fetch_add(1, Ordering::SeqCst);
        let path = format!("/v2/sentinel-{n}/tags/list");
        let _ = http_get(self.port, &path, &[])?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.access_log().contains(&path) {
            ensure!(Instant::now() < deadline, "sentinel {path} never logged");
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Kill the registry now (a registry that dies mid-pull).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nothing listens on right now (nor, most likely, soon).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A minimal HTTP/1.0 GET: (status, response head).
fn http_get(port: u16, path: &str, headers: &[(String, String)]) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let resp = String::from_utf8_lossy(&resp);
    let head = resp.split("\r\n\r\n").next().unwrap_or("").to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("bad HTTP status line")?;
    Ok((status, head))
}

/// A loopback TCP proxy in front of a registry that can stall or cut every connection
/// once it has passed a number of response bytes: a registry dying mid-pull, on cue.
pub struct Proxy {
    port: u16,
    shared: Arc<ProxyState>,
}

struct ProxyState {
    upstream: u16,
    /// Response bytes passed since the last `pass`/`cut_after`/`stall_after`.
    served: AtomicU64,
    limit: AtomicU64,
    /// At the limit: true = hold the connection open and send nothing, false = cut it.
    stall: AtomicBool,
    stalled: AtomicBool,
    stop: AtomicBool,
}

impl Proxy {
    pub fn start(upstream_port: u16) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(ProxyState {
            upstream: upstream_port,
            served: AtomicU64::new(0),
            limit: AtomicU64::new(u64::MAX),
            stall: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let state = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if state.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(client) = conn {
                    let state = state.clone();
                    std::thread::spawn(move || {
                        let _ = proxy_conn(client, &state);
                    });
                }
            }
        });
        Ok(Proxy { port, shared })
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Forward everything.
    pub fn pass(&self) {
        self.set(u64::MAX, false);
    }

    /// Close every connection once `bytes` more response bytes have been passed.
    pub fn cut_after(&self, bytes: u64) {
        self.set(bytes, false);
    }

    /// Stop forwarding (but keep connections open) once `bytes` more response bytes
    /// have been passed; [`Proxy::stalled`] tells when that happened. [`Proxy::pass`]
    /// resumes the held connections; [`Proxy::cut_after`] closes them.
    pub fn stall_after(&self, bytes: u64) {
        self.set(bytes, true);
    }

    pub fn stalled(&self) -> bool {
        self.shared.stalled.load(Ordering::SeqCst)
    }

    pub fn served(&self) -> u64 {
        self.shared.served.load(Ordering::SeqCst)
    }

    fn set(&self, limit: u64, stall: bool) {
        let s = &self.shared;
        s.stall.store(stall, Ordering::SeqCst);
        s.stalled.store(false, Ordering::SeqCst);
        s.served.store(0, Ordering::SeqCst);
        s.limit.store(limit, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.pass();
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn proxy_conn(client: TcpStream, state: &Arc<ProxyState>) -> Result<()> {
    let upstream = TcpStream::connect(("127.0.0.1", state.upstream))?;
    let (mut c_read, mut u_write) = (client.try_clone()?, upstream.try_clone()?);
    // Requests flow freely; only responses are metered.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(Shutdown::Write);
    });
    let (mut u_read, mut c_write) = (upstream, client);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if state.stop.load(Ordering::SeqCst) {
            break;
        }
        let n = u_read.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let limit = state.limit.load(Ordering::SeqCst);
        let before = state.served.fetch_add(n as u64, Ordering::SeqCst);
        if before.saturating_add(n as u64) > limit {
            // Pass exactly up to the limit, then stall or cut.
            let allowed = limit.saturating_sub(before) as usize;
            c_write.write_all(&buf[..allowed.min(n)])?;
            if state.stall.load(Ordering::SeqCst) {
                state.stalled.store(true, Ordering::SeqCst);
                while state.limit.load(Ordering::SeqCst) == limit
                    && !state.stop.load(Ordering::SeqCst)
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                // Released with `pass`: carry on where it stopped.
                if state.limit.load(Ordering::SeqCst) == u64::MAX
                    && !state.stop.load(Ordering::SeqCst)
                {
                    c_write.write_all(&buf[allowed.min(n)..n])?;
                    continue;
                }
            }
            let _ = c_write.shutdown(Shutdown::Both);
            let _ = u_read.shutdown(Shutdown::Both);
            break;
        }
        c_write.write_all(&buf[..n])?;
    }
    let _ = c_write.shutdown(Shutdown::Both);
    Ok(())
}
