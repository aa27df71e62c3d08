//! The API client: HTTP/1.1 to a manager's Docker Engine API, over a unix socket
//! (`unix:///run/swarm/swarm.sock`) or TCP (`tcp://host:port`).
//!
//! ```text
//!   connect(host) ── HEAD /_ping ──> Api-Version header ──> version = min(ours, theirs)
//!   get/post/delete("/services/..") ──> "/v1.xx/services/.." on a fresh connection
//!   non-2xx + {"message": m} ──> DaemonError ("Error response from daemon: m")
//! ```
//!
//! One connection per request, like the docker CLI's default transport on a socket:
//! the requests are few and the socket is local.

use std::fmt;
use std::path::PathBuf;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// The newest API version this client speaks; lower when the server says so.
pub const MAX_API_VERSION: &str = "1.47";
/// What the docker CLI assumes when `/_ping` carries no `Api-Version` header.
pub const FALLBACK_API_VERSION: &str = "1.24";
/// Where the manager listens when neither `-H` nor `SWARM_HOST` says otherwise.
pub const DEFAULT_HOST: &str = "unix:///run/swarm/swarm.sock";

/// Where the manager's API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

impl Endpoint {
    /// Parses `unix:///path`, `tcp://host:port`, or a bare absolute path.
    pub fn parse(host: &str) -> Result<Endpoint> {
        if let Some(path) = host.strip_prefix("unix://") {
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = host.strip_prefix("tcp://") {
            let addr = addr.trim_end_matches('/');
            let addr = if addr.contains(':') {
                addr.to_string()
            } else {
                format!("{addr}:2375")
            };
            return Ok(Endpoint::Tcp(addr));
        }
        if host.starts_with('/') {
            return Ok(Endpoint::Unix(PathBuf::from(host)));
        }
        anyhow::bail!("unable to parse docker host `{host}`")
    }
}

/// A non-2xx answer from the manager, with its `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonError {
    pub status: u16,
    pub message: String,
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for DaemonError {}

impl DaemonError {
    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }
}

/// The manager could not be reached at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    pub host: String,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Cannot connect to the swarm manager at {}. Is swarmd running?",
            self.host
        )
    }
}

impl std::error::Error for ConnectError {}

/// A connection target; the API version is negotiated on the first request, so that
/// flag errors are reported even when no manager runs (as the docker CLI does).
#[derive(Debug)]
pub struct Client {
    host: String,
    endpoint: Endpoint,
    version: tokio::sync::OnceCell<String>,
}

impl Client {
    /// Parses the host; nothing is sent yet.
    pub fn new(host: &str) -> Result<Client> {
        Ok(Client {
            host: host.to_string(),
            endpoint: Endpoint::parse(host)?,
            version: tokio::sync::OnceCell::new(),
        })
    }

    /// The negotiated version: `HEAD /_ping` once, then `min(ours, Api-Version)`.
    async fn version(&self) -> Result<&str> {
        let v = self
            .version
            .get_or_try_init(|| async {
                let resp = self
                    .send(Method::HEAD, "/_ping".into(), None, None, None)
                    .await?;
                let server = resp
                    .headers()
                    .get("Api-Version")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                anyhow::Ok(negotiate(server.as_deref()))
            })
            .await?;
        Ok(v)
    }

    /// Sends one request; `path` is unversioned (`/services`), the prefix is added here.
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
        registry_auth: Option<&str>,
    ) -> Result<http::Response<Incoming>> {
        let uri = format!("/v{}{}", self.version().await?, path);
        self.send(method, uri, body, content_type, registry_auth)
            .await
    }

    /// Sends one request to `uri` as given, on a fresh connection.
    async fn send(
        &self,
        method: Method,
        uri: String,
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
        registry_auth: Option<&str>,
    ) -> Result<http::Response<Incoming>> {
        let connect_err = || ConnectError {
            host: self.host.clone(),
        };
        let mut sender = match &self.endpoint {
            Endpoint::Unix(p) => {
                let stream = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(|_| connect_err())?;
                handshake(stream).await?
            }
            Endpoint::Tcp(a) => {
                let stream = tokio::net::TcpStream::connect(a)
                    .await
                    .map_err(|_| connect_err())?;
                handshake(stream).await?
            }
        };
        let host_header = match &self.endpoint {
            Endpoint::Unix(_) => "api.swarm".to_string(),
            Endpoint::Tcp(a) => a.clone(),
        };
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("Host", host_header)
            .header(
                "User-Agent",
                concat!("swarm-cli/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        if let Some(auth) = registry_auth {
            req = req.header("X-Registry-Auth", auth);
        }
        let req = req.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let resp = sender.send_request(req).await.map_err(|_| connect_err())?;
        Ok(resp)
    }

    /// Sends a request and turns a non-2xx answer into a [`DaemonError`].
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
    ) -> Result<http::Response<Incoming>> {
        self.call_with_auth(method, path, body, content_type, None)
            .await
    }

    /// [`Client::call`] with an `X-Registry-Auth` header (`--with-registry-auth`).
    pub async fn call_with_auth(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
        registry_auth: Option<&str>,
    ) -> Result<http::Response<Incoming>> {
        let resp = self
            .request(method, path, body, content_type, registry_auth)
            .await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Err(daemon_error(status, &bytes).into())
    }

    /// GET and decode JSON.
    pub async fn get_json(&self, path: &str) -> Result<Value> {
        let resp = self.call(Method::GET, path, None, None).await?;
        let bytes = resp.into_body().collect().await?.to_bytes();
        serde_json::from_slice(&bytes).with_context(|| format!("decoding the answer to GET {path}"))
    }

    /// GET the body as text, for output that keeps the server's field order.
    pub async fn get_raw(&self, path: &str) -> Result<String> {
        let resp = self.call(Method::GET, path, None, None).await?;
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// POST a JSON body and decode the JSON answer (`null` when empty).
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value> {
        self.post_json_with_auth(path, body, None).await
    }

    /// [`Client::post_json`] with an optional `X-Registry-Auth` header.
    pub async fn post_json_with_auth(
        &self,
        path: &str,
        body: &Value,
        registry_auth: Option<&str>,
    ) -> Result<Value> {
        let body = serde_json::to_vec(body)?;
        let resp = self
            .call_with_auth(
                Method::POST,
                path,
                Some(body),
                Some("application/json"),
                registry_auth,
            )
            .await?;
        let bytes = resp.into_body().collect().await?.to_bytes();
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .with_context(|| format!("decoding the answer to POST {path}"))
    }

    /// POST `body` asking to take the connection over (`Connection: Upgrade`,
    /// `Upgrade: tcp`), as `docker exec` does; after `101 UPGRADED` the connection is
    /// the stream both ways. Also whether the stream is raw (a tty) or multiplexed.
    pub async fn hijack(&self, path: &str, body: &Value) -> Result<(bool, Hijacked)> {
        let uri = format!("/v{}{}", self.version().await?, path);
        let connect_err = || ConnectError {
            host: self.host.clone(),
        };
        let io: Box<dyn Stream> = match &self.endpoint {
            Endpoint::Unix(p) => Box::new(
                tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(|_| connect_err())?,
            ),
            Endpoint::Tcp(a) => Box::new(
                tokio::net::TcpStream::connect(a)
                    .await
                    .map_err(|_| connect_err())?,
            ),
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("Host", "api.swarm")
            .header(
                "User-Agent",
                concat!("swarm-cli/", env!("CARGO_PKG_VERSION")),
            )
            .header("Content-Type", "application/json")
            .header("Connection", "Upgrade")
            .header("Upgrade", "tcp")
            .body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?;
        let resp = sender.send_request(req).await.map_err(|_| connect_err())?;
        let status = resp.status();
        if !status.is_success() && status != StatusCode::SWITCHING_PROTOCOLS {
            let bytes = resp.into_body().collect().await?.to_bytes();
            return Err(daemon_error(status, &bytes).into());
        }
        let raw = resp
            .headers()
            .get("Content-Type")
            .is_some_and(|v| v.as_bytes() == b"application/vnd.docker.raw-stream");
        let upgraded = hyper::upgrade::on(resp)
            .await
            .context("the daemon did not hand over the connection")?;
        Ok((raw, TokioIo::new(upgraded)))
    }

    /// DELETE, ignoring the body.
    pub async fn delete(&self, path: &str) -> Result<()> {
        let resp = self.call(Method::DELETE, path, None, None).await?;
        resp.into_body().collect().await?;
        Ok(())
    }
}

async fn handshake<S>(stream: S) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// A connection to the daemon, unix or TCP.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A connection after `101 UPGRADED`: our bytes in, the stream out.
pub type Hijacked = TokioIo<hyper::upgrade::Upgraded>;

/// The version to use given the server's `Api-Version` header.
pub fn negotiate(server: Option<&str>) -> String {
    let Some(server) = server.filter(|s| !s.is_empty()) else {
        return FALLBACK_API_VERSION.to_string();
    };
    match (parse_version(server), parse_version(MAX_API_VERSION)) {
        (Some(s), Some(m)) if s < m => server.to_string(),
        _ => MAX_API_VERSION.to_string(),
    }
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Builds the error for a non-2xx answer: the JSON `message`, else the body text.
pub fn daemon_error(status: StatusCode, body: &[u8]) -> DaemonError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body).trim().to_string();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_string()
            } else {
                text
            }
        });
    DaemonError {
        status: status.as_u16(),
        message,
    }
}

/// Go's unreserved characters (`url.PathEscape`/`QueryEscape` leave them as they are):
/// a service named `my-web.v2` stays readable in the path.
const ESCAPE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment or query value (names, filters JSON).
pub fn query_escape(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, ESCAPE).to_string()
}

/// `?filters=` value for `{"key": {"value": true}, ...}`, as the docker CLI sends it.
pub fn filters(pairs: &[(&str, &str)]) -> String {
    let mut map = serde_json::Map::new();
    for (k, v) in pairs {
        let entry = map
            .entry(k.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(o) = entry {
            o.insert(v.to_string(), Value::Bool(true));
        }
    }
    query_escape(&Value::Object(map).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_caps_and_falls_back() {
        assert_eq!(negotiate(Some("1.41")), "1.41");
        assert_eq!(negotiate(Some("1.56")), MAX_API_VERSION);
        assert_eq!(negotiate(None), "1.24");
        assert_eq!(negotiate(Some("")), "1.24");
    }

    #[test]
    fn hosts_parse() {
        assert_eq!(
            Endpoint::parse("unix:///run/swarm/swarm.sock").unwrap(),
            Endpoint::Unix("/run/swarm/swarm.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://10.0.0.1:2375").unwrap(),
            Endpoint::Tcp("10.0.0.1:2375".into())
        );
        assert!(Endpoint::parse("ftp://x").is_err());
    }

    #[test]
    fn daemon_error_message() {
        let e = daemon_error(
            StatusCode::NOT_FOUND,
            br#"{"message":"service nosuch not found"}"#,
        );
        assert_eq!(
            e.to_string(),
            "Error response from daemon: service nosuch not found"
        );
        assert!(e.is_not_found());
    }

    #[test]
    fn names_stay_readable() {
        assert_eq!(query_escape("my-web.v2_x~"), "my-web.v2_x~");
        assert_eq!(query_escape("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn filters_encode_like_docker() {
        assert_eq!(
            percent_encoding::percent_decode_str(&filters(&[
                ("service", "abc"),
                ("_up-to-date", "true")
            ]))
            .decode_utf8()
            .unwrap(),
            r#"{"_up-to-date":{"true":true},"service":{"abc":true}}"#
        );
    }
}
