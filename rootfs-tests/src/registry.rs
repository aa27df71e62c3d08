//! A real registry for the suites: Debian's `docker-registry` (CNCF distribution 2.8) on a
//! free loopback port with its storage in a temp dir, optional htpasswd or bearer-token
//! auth, pushes with `skopeo` in the four manifest kinds, its access log for counting
//! requests, and a loopback proxy that can stall or cut connections mid-transfer.
//!
//! ```text
//!  test ─▶ Proxy (127.0.0.1:P2, stall/cut after N response bytes) ─▶ Registry (127.0.0.1:P1)
//!                                                                      storage: <tmp>/storage
//!                                                                      access log: <tmp>/access.log
//!  token mode: Registry ──401 Bearer realm=http://127.0.0.1:P3/token──▶ client
//!              client ──GET /token?service&scope (basic creds or none)──▶ TokenServer (P3)
//!              TokenServer ──JWT (ES256, x5c = its self-signed cert)──▶ client ──▶ Registry
//!              Registry trusts the cert: it is its `rootcertbundle`
//! ```

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
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
    /// Where it listens: a loopback port, or a test bridge's address (see [`Registry::start_on`]).
    addr: SocketAddr,
    dir: tempfile::TempDir,
    auth: Option<(String, String)>,
    token: Option<TokenServer>,
    sentinel: AtomicU64,
}

impl Registry {
    /// An anonymous registry.
    pub fn start() -> Result<Registry> {
        Self::spawn(Ipv4Addr::LOCALHOST, None, false)
    }

    /// An anonymous registry listening on `ip` (a local address, such as the gateway of a
    /// test bridge that network-namespace hosts reach it through) instead of loopback.
    pub fn start_on(ip: Ipv4Addr) -> Result<Registry> {
        Self::spawn(ip, None, false)
    }

    /// A registry that wants HTTP basic auth (htpasswd, bcrypt) for every request.
    pub fn start_with_auth(user: &str, password: &str) -> Result<Registry> {
        Self::spawn(
            Ipv4Addr::LOCALHOST,
            Some((user.to_string(), password.to_string())),
            false,
        )
    }

    /// A registry that wants bearer tokens (Docker Hub style): it answers 401 with
    /// `WWW-Authenticate: Bearer realm=..,service=..,scope=..` and accepts only JWTs
    /// from its [`TokenServer`], which gives `user`/`password` pull and push on every
    /// repository and anonymous clients a token with no access.
    pub fn start_with_token(user: &str, password: &str) -> Result<Registry> {
        Self::spawn(
            Ipv4Addr::LOCALHOST,
            Some((user.to_string(), password.to_string())),
            true,
        )
    }

    fn spawn(ip: Ipv4Addr, auth: Option<(String, String)>, token: bool) -> Result<Registry> {
        ensure!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} missing: install Debian's docker-registry (scripts/install-deps)"
        );
        let dir = tempfile::Builder::new().prefix("registry-").tempdir()?;
        let addr = SocketAddr::from((ip, free_port_on(ip)?));
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
             http:\n  addr: {addr}\n  secret: rootfs-tests\n",
            storage = dir.path().join("storage").display(),
        );
        let token = match (&auth, token) {
            (Some((user, password)), true) => Some(TokenServer::start(user, password)?),
            _ => None,
        };
        if let Some(server) = &token {
            let bundle = dir.path().join("token-ca.pem");
            std::fs::write(&bundle, server.cert_pem())?;
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    \
                 issuer: {issuer}\n    rootcertbundle: {bundle}\n",
                realm = server.realm(),
                service = TOKEN_SERVICE,
                issuer = TOKEN_ISSUER,
                bundle = bundle.display(),
            ));
        } else if let Some((user, password)) = &auth {
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
            addr,
            dir,
            auth,
            token,
            sentinel: AtomicU64::new(0),
        };
        registry.wait_ready(Duration::from_secs(20))?;
        Ok(registry)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok((status, _)) = http_get(self.addr, "/v2/", &[]) {
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
        self.addr.port()
    }

    /// The token server of a registry started with [`Registry::start_with_token`].
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token.as_ref()
    }

    /// Stop the token server (its port refuses connections from now on); the registry
    /// keeps running and keeps pointing clients at it.
    pub fn stop_token_server(&mut self) {
        self.token = None;
    }

    /// `IP:PORT` (`127.0.0.1:PORT` unless started on another address): the registry part
    /// of references, and what `insecure` lists.
    pub fn host(&self) -> String {
        self.addr.to_string()
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
        self.manifest_header(name, reference, "content-type")
    }

    /// The digest the registry gives `name:reference` (`Docker-Content-Digest`).
    pub fn manifest_digest(&self, name: &str, reference: &str) -> Result<String> {
        self.manifest_header(name, reference, "docker-content-digest")
    }

    fn manifest_header(&self, name: &str, reference: &str, header: &str) -> Result<String> {
        let accept = swarm_runtime::image::manifest::ACCEPT.join(", ");
        let mut headers = vec![("Accept".to_string(), accept)];
        if let (Some(server), Some((user, _))) = (&self.token, &self.auth) {
            // Minted directly (not counted as a token request).
            let scope = format!("repository:{name}:pull");
            let jwt = server.mint(Some(user), &[scope])?;
            headers.push(("Authorization".into(), format!("Bearer {jwt}")));
        } else if let Some((user, password)) = &self.auth {
            use base64::Engine;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            headers.push(("Authorization".into(), format!("Basic {token}")));
        }
        let (status, head) = http_get(
            self.addr,
            &format!("/v2/{name}/manifests/{reference}"),
            &headers,
        )?;
        ensure!(status == 200, "manifest {name}:{reference}: HTTP {status}");
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(header).then(|| v.trim().to_string())
            })
            .with_context(|| format!("no {header}"))
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
        let _ = http_get(self.addr, &path, &[])?;
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

/// `service` of the token-mode registry: the `aud` its tokens must carry.
pub const TOKEN_SERVICE: &str = "rootfs-tests-registry";
/// `issuer` of the token-mode registry: the `iss` its tokens must carry.
pub const TOKEN_ISSUER: &str = "rootfs-tests-token-server";

/// One request the token server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The user of the request's basic credentials (`None`: anonymous).
    pub user: Option<String>,
    /// The `scope` parameters, as sent (`repository:NAME:pull,push`).
    pub scopes: Vec<String>,
    /// A token was issued (false: 401, wrong credentials).
    pub issued: bool,
}

/// A minimal token server (distribution's token auth, what Docker Hub's auth service
/// does) on a loopback port, in a thread of the test process: `GET /token?service=..&
/// scope=..` with basic credentials gets a JWT granting the requested `pull`/`push`
/// actions on repositories; wrong credentials get 401 `{"details": "incorrect username
/// or password"}`; no credentials get a token with no access. The JWT is ES256-signed,
/// its header carries the signing key's self-signed certificate in `x5c`, and that
/// certificate is the registry's `rootcertbundle` (distribution 2.8 verifies the chain
/// against it, then `iss`, `aud` = service, `exp`/`nbf`, then the signature).
pub struct TokenServer {
    port: u16,
    state: Arc<TokenState>,
    accept: Option<std::thread::JoinHandle<()>>,
}

struct TokenState {
    user: String,
    password: String,
    cert_pem: String,
    cert_der_b64: String,
    key: jsonwebtoken::EncodingKey,
    requests: std::sync::Mutex<Vec<TokenRequest>>,
    jti: AtomicU64,
    stop: AtomicBool,
}

impl TokenServer {
    pub fn start(user: &str, password: &str) -> Result<TokenServer> {
        use base64::Engine;
        // P-256 (ES256) by default.
        let signer = rcgen::generate_simple_self_signed(vec!["rootfs-tests-token".to_string()])
            .context("generate the token signing certificate")?;
        let state = Arc::new(TokenState {
            user: user.to_string(),
            password: password.to_string(),
            cert_pem: signer.cert.pem(),
            cert_der_b64: base64::engine::general_purpose::STANDARD.encode(signer.cert.der()),
            key: jsonwebtoken::EncodingKey::from_ec_der(&signer.key_pair.serialize_der()),
            requests: Default::default(),
            jti: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let shared = state.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let shared = shared.clone();
                    std::thread::spawn(move || {
                        let _ = serve_token(conn, &shared);
                    });
                }
            }
        });
        Ok(TokenServer {
            port,
            state,
            accept: Some(accept),
        })
    }

    /// The `realm` of the registry's challenge.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The signing key's self-signed certificate (PEM): the registry's root bundle.
    pub fn cert_pem(&self) -> &str {
        &self.state.cert_pem
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// A token for `user` (`None`: anonymous, no access) and `scopes`, without a request.
    pub fn mint(&self, user: Option<&str>, scopes: &[String]) -> Result<String> {
        self.state.mint(user, scopes)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stop`, and wait until the port is closed.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

impl TokenState {
    fn mint(&self, user: Option<&str>, scopes: &[String]) -> Result<String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        // Authenticated users get what they ask of pull and push; anonymous nothing.
        let access: Vec<serde_json::Value> = match user {
            None => vec![],
            Some(_) => scopes
                .iter()
                .filter_map(|scope| {
                    let (kind, rest) = scope.split_once(':')?;
                    let (name, actions) = rest.rsplit_once(':')?;
                    let actions: Vec<&str> = actions
                        .split(',')
                        .filter(|a| matches!(*a, "pull" | "push"))
                        .collect();
                    (kind == "repository").then(
                        || serde_json::json!({"type": kind, "name": name, "actions": actions}),
                    )
                })
                .collect(),
        };
        let claims = serde_json::json!({
            "iss": TOKEN_ISSUER,
            "sub": user.unwrap_or(""),
            "aud": TOKEN_SERVICE,
            "exp": now + 300,
            "nbf": now.saturating_sub(10),
            "iat": now,
            "jti": format!("rootfs-tests-{}", self.jti.fetch_add(1, Ordering::SeqCst)),
            "access": access,
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.x5c = Some(vec![self.cert_der_b64.clone()]);
        jsonwebtoken::encode(&header, &claims, &self.key).context("sign token")
    }

    /// The user of valid basic credentials; `Ok(None)` without credentials, `Err(user
    /// sent)` for wrong or malformed ones.
    fn authenticate(&self, authorization: Option<&str>) -> Result<Option<String>, Option<String>> {
        use base64::Engine;
        let Some(value) = authorization else {
            return Ok(None);
        };
        let decoded = value
            .strip_prefix("Basic ")
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(None)?;
        match decoded.split_once(':') {
            Some((u, p)) if u == self.user && p == self.password => Ok(Some(u.to_string())),
            Some((u, _)) => Err(Some(u.to_string())),
            None => Err(None),
        }
    }
}

/// One HTTP/1.1 exchange on a token server connection (then closed).
fn serve_token(mut conn: TcpStream, state: &TokenState) -> Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf)?;
        ensure!(n > 0, "connection closed before the request head");
        head.extend_from_slice(&buf[..n]);
        ensure!(head.len() < 64 * 1024, "request head too long");
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let authorization = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("authorization").then(|| v.trim())
    });
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string))
        .filter(|s| !s.is_empty())
        .collect();
    let service_ok = params
        .iter()
        .all(|(k, v)| k != "service" || v == TOKEN_SERVICE);
    let (status, body, request) = if !request_line.starts_with("GET ") || path != "/token" {
        (404, r#"{"details":"not found"}"#.to_string(), None)
    } else if !service_ok {
        (400, r#"{"details":"unknown service"}"#.to_string(), None)
    } else {
        match state.authenticate(authorization) {
            Err(user) => (
                401,
                r#"{"details":"incorrect username or password"}"#.to_string(),
                Some(TokenRequest {
                    user,
                    scopes,
                    issued: false,
                }),
            ),
            Ok(user) => {
                let token = state.mint(user.as_deref(), &scopes)?;
                let body = serde_json::json!({
                    "token": token,
                    "access_token": token,
                    "expires_in": 300,
                })
                .to_string();
                (
                    200,
                    body,
                    Some(TokenRequest {
                        user,
                        scopes,
                        issued: true,
                    }),
                )
            }
        }
    };
    if let Some(request) = request {
        state.requests.lock().unwrap().push(request);
    }
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(response.as_bytes())?;
    conn.flush()?;
    let _ = conn.shutdown(Shutdown::Write);
    Ok(())
}

/// A port nothing listens on right now (nor, most likely, soon).
pub fn free_port() -> Result<u16> {
    free_port_on(Ipv4Addr::LOCALHOST)
}

/// A port nothing listens on right now on the local address `ip`.
pub fn free_port_on(ip: Ipv4Addr) -> Result<u16> {
    Ok(TcpListener::bind((ip, 0))?.local_addr()?.port())
}

/// A minimal HTTP/1.0 GET: (status, response head).
fn http_get(addr: SocketAddr, path: &str, headers: &[(String, String)]) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
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

/// The registry as an image for a service on the swarm (the seeds run `registry:2`):
/// Debian's `docker-registry` binary with the C library it links, serving plain HTTP on
/// :5000 with its storage in the container (`/var/lib/registry`).
pub fn registry_image() -> Result<crate::busybox::TestImage> {
    let read = |p: &str| std::fs::read(p).with_context(|| format!("read {p}"));
    let (bin, libc, ld) = (
        read(REGISTRY_BIN)?,
        read("/lib/x86_64-linux-gnu/libc.so.6")?,
        read("/lib64/ld-linux-x86-64.so.2")?,
    );
    let config = b"version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n  delete:\n    enabled: true\nhttp:\n  addr: :5000\n";
    let layer = crate::busybox::tar_files_with_modes(&[
        ("usr/bin/docker-registry", &bin, 0o755),
        ("lib/x86_64-linux-gnu/libc.so.6", &libc, 0o755),
        ("lib64/ld-linux-x86-64.so.2", &ld, 0o755),
        ("etc/docker/registry/config.yml", config, 0o644),
        ("var/lib/registry/.keep", b"", 0o644),
    ])?;
    Ok(crate::busybox::TestImage {
        layers: vec![layer],
        config: swarm_runtime::image::ImageConfig {
            entrypoint: vec!["/usr/bin/docker-registry".into()],
            cmd: vec!["serve".into(), "/etc/docker/registry/config.yml".into()],
            ..Default::default()
        },
        arch: swarm_runtime::image::manifest::node_arch().to_string(),
        compression: crate::busybox::Compression::Gzip,
    })
}
