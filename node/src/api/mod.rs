//! The control API: the Docker Engine API's Swarm part, on a unix socket.
//!
//! ```text
//!   HTTP (axum) ──request::parse──▶ Request ──Backend::handle──▶ Reply ──▶ HTTP
//! ```
//!
//! Everything HTTP-shaped (paths, versions, query strings, status codes, the `/_ping`
//! headers) stays in this module; the [`Backend`] gets and returns typed values.
//!
//! A hijacked stream (`docker exec`) is a [`Reply::Hijack`]: the client asked for
//! `Connection: Upgrade` / `Upgrade: tcp`, gets `101 UPGRADED` with Docker's stream
//! content type, and the backend's session then owns the raw connection both ways.

pub mod error;
pub mod filters;
pub mod request;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use futures::stream::BoxStream;
use serde_json::Value;

pub use self::error::ApiError;
pub use self::request::{
    BlobKind, LogsOptions, NetworkRequest, RegistryCredentials, Request, VolumeRequest,
    API_VERSION, MIN_API_VERSION,
};
use crate::error::{Error, Result};

/// What a handler answers.
pub enum Reply {
    /// A JSON body with a status (200, 201).
    Json(u16, Value),
    /// No body (204 or 200).
    Empty(u16),
    /// A chunked body: Docker's multiplexed log stream.
    Stream(BoxStream<'static, std::io::Result<Bytes>>),
    /// A chunked body of JSON objects, one a line (`/events`).
    JsonLines(BoxStream<'static, std::io::Result<Bytes>>),
    /// A tar archive (`GET /swarm/backup`).
    Tar(Vec<u8>),
    /// `101 UPGRADED`, then `session` owns the connection (stdin in, output out).
    Hijack {
        /// Docker's raw stream (a tty) or its multiplexed one.
        raw: bool,
        session: HijackSession,
    },
}

const NEEDS_UPGRADE: &str = "this call needs an upgraded connection (Upgrade: tcp)";

/// The connection after the upgrade: the client's bytes in, ours out.
pub trait Hijacked: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Hijacked for T {}

/// What runs on a hijacked connection; dropped unrun when the upgrade fails.
pub type HijackSession =
    Box<dyn FnOnce(Box<dyn Hijacked>) -> futures::future::BoxFuture<'static, ()> + Send>;

/// The code behind the API: the manager when this node is one, the node alone before.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    async fn handle(&self, req: Request) -> Result<Reply, ApiError>;
    /// The `Swarm` header of `/_ping`: `inactive`, `active/manager` or `active/worker`.
    fn swarm_state(&self) -> &'static str;
}

/// Serve the API on `socket` (mode 0660: root and its group only) until the future is
/// dropped.
pub async fn serve(socket: &Path, backend: Arc<dyn Backend>) -> Result<()> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io(format!("create {}", dir.display())))?;
    }
    // A socket left by a killed swarmd: nobody listens on it any more.
    let _ = std::fs::remove_file(socket);
    let listener = tokio::net::UnixListener::bind(socket)
        .map_err(Error::io(format!("listen on {}", socket.display())))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .map_err(Error::io(format!("chmod {}", socket.display())))?;
    // Image archives (`POST /images/load`) are far above axum's 2 MiB default.
    let app = axum::Router::new()
        .fallback(handle)
        .layer(axum::extract::DefaultBodyLimit::max(8 << 30))
        .with_state(backend);
    axum::serve(listener, app)
        .await
        .map_err(Error::io("serve the API"))
}

async fn handle(
    axum::extract::State(backend): axum::extract::State<Arc<dyn Backend>>,
    method: Method,
    uri: Uri,
    request: axum::extract::Request,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let headers = parts.headers;
    let body = match axum::body::to_bytes(body, 8 << 30).await {
        Ok(b) => b,
        Err(e) => return json(400, &ApiError::invalid(e).body()),
    };
    let wants_upgrade = headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"tcp"));
    let on_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let registry_auth = headers.get("X-Registry-Auth").and_then(|v| v.to_str().ok());
    let parsed = request::parse(
        method.as_str(),
        uri.path(),
        uri.query().unwrap_or(""),
        &body,
    )
    .map(|r| r.with_registry_auth(registry_auth));
    tracing::debug!(%method, %uri, "api request");
    let started = std::time::Instant::now();
    let reply = match parsed {
        Ok(Request::Ping) => return ping(&method, backend.swarm_state()),
        // Refused before anything starts: the stream needs the connection.
        Ok(Request::ExecStart { detach: false, .. }) if !wants_upgrade || on_upgrade.is_none() => {
            Err(ApiError::invalid(NEEDS_UPGRADE))
        }
        Ok(req) => backend.handle(req).await,
        Err(e) => Err(e),
    };
    crate::metrics::api_request(method.as_str(), uri.path(), started.elapsed());
    match reply {
        Ok(Reply::Json(status, v)) => json(status, &v),
        Ok(Reply::Empty(status)) => with_status(status, Body::empty()),
        Ok(Reply::Stream(s)) => {
            let mut r = with_status(200, Body::from_stream(s));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/vnd.docker.multiplexed-stream"),
            );
            r
        }
        Ok(Reply::JsonLines(s)) => {
            let mut r = with_status(200, Body::from_stream(s));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Ok(Reply::Hijack { raw, session }) => {
            let content_type = if raw {
                "application/vnd.docker.raw-stream"
            } else {
                "application/vnd.docker.multiplexed-stream"
            };
            let Some(on_upgrade) = on_upgrade.filter(|_| wants_upgrade) else {
                return json(400, &ApiError::invalid(NEEDS_UPGRADE).body());
            };
            tokio::spawn(async move {
                match on_upgrade.await {
                    Ok(upgraded) => {
                        session(Box::new(hyper_util::rt::TokioIo::new(upgraded))).await;
                    }
                    Err(e) => tracing::warn!("hijack: upgrade failed: {e}"),
                }
            });
            let mut r = with_status(101, Body::empty());
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
            r
        }
        Ok(Reply::Tar(bytes)) => {
            let mut r = with_status(200, Body::from(bytes));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-tar"),
            );
            r
        }
        Err(e) => {
            if e.status() >= 500 {
                tracing::warn!(%method, %uri, "api error: {e}");
            }
            json(e.status(), &e.body())
        }
    }
}

fn ping(method: &Method, swarm: &'static str) -> Response {
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from("OK")
    };
    let mut r = with_status(200, body);
    let h = r.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Swarm", HeaderValue::from_static(swarm));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json(status: u16, v: &Value) -> Response {
    let mut body = serde_json::to_vec(v).unwrap_or_default();
    body.push(b'\n');
    let mut r = with_status(status, Body::from(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn with_status(status: u16, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r
}

/// One frame of Docker's multiplexed stream: stream byte (1 stdout, 2 stderr), three
/// zero bytes, the payload's length big-endian, the payload.
pub fn mux_frame(stream: u8, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.push(stream);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn mux_frames() {
        let f = super::mux_frame(2, b"hi\n");
        assert_eq!(&f[..], &[2, 0, 0, 0, 0, 0, 0, 3, b'h', b'i', b'\n']);
    }
}
