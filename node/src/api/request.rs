//! HTTP requests parsed into one typed [`Request`]: the handlers behind it never see
//! HTTP (method, path, query strings, API version prefixes).
//!
//! Paths come versioned (`/v1.47/services`) or not (`/services`); both are accepted.
//! Bodies that are specs stay JSON here: the manager decodes them into the model, so a
//! spec's unknown fields survive the round trip.

use std::collections::HashMap;

use serde_json::Value;

use super::filters::Filters;
use super::ApiError;

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Ping,
    Version,
    Info,
    SwarmInit(Value),
    SwarmJoin(Value),
    SwarmUpdate {
        version: u64,
        spec: Value,
        rotate_worker_token: bool,
        rotate_manager_token: bool,
        rotate_unlock_key: bool,
    },
    SwarmInspect,
    SwarmUnlockKey,
    /// `GET /swarm/backup` (ours, not Docker's): the manager's state as a tar archive.
    SwarmBackup,
    SwarmUnlock(Value),
    SwarmLeave {
        force: bool,
    },
    NodeList {
        filters: Filters,
    },
    NodeInspect {
        id: String,
    },
    NodeUpdate {
        id: String,
        version: u64,
        spec: Value,
    },
    NodeRemove {
        id: String,
        force: bool,
    },
    ServiceList {
        filters: Filters,
        status: bool,
    },
    ServiceCreate {
        spec: Value,
    },
    ServiceInspect {
        id: String,
        /// `insertDefaults=true`: swarmkit's defaults filled in (`inspect --pretty`).
        insert_defaults: bool,
    },
    ServiceUpdate {
        id: String,
        version: u64,
        rollback: bool,
        spec: Value,
    },
    ServiceRemove {
        id: String,
    },
    ServiceLogs {
        id: String,
        opts: LogsOptions,
    },
    TaskList {
        filters: Filters,
    },
    TaskInspect {
        id: String,
    },
    TaskLogs {
        id: String,
        opts: LogsOptions,
    },
    Distribution {
        name: String,
    },
    /// Secrets and configs: the same five calls each ([`BlobKind`]).
    SecretList {
        kind: BlobKind,
        filters: Filters,
    },
    SecretCreate {
        kind: BlobKind,
        spec: Value,
    },
    SecretInspect {
        kind: BlobKind,
        id: String,
    },
    SecretUpdate {
        kind: BlobKind,
        id: String,
        version: u64,
        spec: Value,
    },
    SecretRemove {
        kind: BlobKind,
        id: String,
    },
    /// `/networks*` (handled in `manager::network`).
    Network(NetworkRequest),
    /// `docker load`: an image archive (OCI layout tarball, plain or gzip) for this
    /// node's image store.
    ImageLoad {
        archive: Vec<u8>,
    },
    /// `GET /containers/json`: this node's containers (`docker ps`).
    ContainerList {
        filters: Filters,
        all: bool,
    },
    /// `GET /containers/{id}/json`.
    ContainerInspect {
        id: String,
    },
    /// `GET /containers/{id}/logs`: one container's log, multiplexed.
    ContainerLogs {
        id: String,
        opts: LogsOptions,
    },
    /// `GET /containers/{id}/top?ps_args=`: its processes as `ps` shows them.
    ContainerTop {
        id: String,
        ps_args: String,
    },
    /// `GET /containers/{id}/stats?stream=&one-shot=`: its cgroup's counters.
    ContainerStats {
        id: String,
        stream: bool,
        one_shot: bool,
    },
    /// `POST /containers/{id}/exec`: an exec instance (ExecConfig), not started yet.
    ExecCreate {
        id: String,
        config: Value,
    },
    /// `POST /exec/{id}/start`: runs it, detached or on the hijacked connection.
    ExecStart {
        id: String,
        detach: bool,
        /// `ConsoleSize` [rows, columns], for a tty.
        console_size: Option<(u16, u16)>,
    },
    /// `POST /exec/{id}/resize?h=&w=`: the tty's size.
    ExecResize {
        id: String,
        rows: u16,
        cols: u16,
    },
    /// `GET /exec/{id}/json`.
    ExecInspect {
        id: String,
    },
    /// `GET /images/json`: this node's images.
    ImageList {
        filters: Filters,
        all: bool,
    },
    /// `POST /images/create?fromImage=X&tag=Y`: a pull, with progress.
    ImageCreate {
        from_image: String,
        tag: String,
        registry_auth: Option<RegistryCredentials>,
    },
    /// `GET /images/{name}/json`.
    ImageInspect {
        name: String,
    },
    /// `POST /images/{name}/tag?repo=R&tag=T`.
    ImageTag {
        name: String,
        repo: String,
        tag: String,
    },
    /// `POST /images/{name}/push?tag=T`: a push, with progress.
    ImagePush {
        name: String,
        tag: String,
        registry_auth: Option<RegistryCredentials>,
    },
    /// `DELETE /images/{name}?force=1`.
    ImageRemove {
        name: String,
        force: bool,
    },
    /// `/volumes*`: this node's named volumes (`daemon/volumes.rs`).
    Volume(VolumeRequest),
    /// `GET /events`: times in Unix nanoseconds (`manager/events.rs`).
    Events {
        since: Option<i64>,
        until: Option<i64>,
        filters: Filters,
    },
}

/// Credentials from an `X-Registry-Auth` header: URL-safe base64 (padded or not, or
/// standard) of `{"username","password","serveraddress"}`. An empty object (what the
/// docker CLI sends without credentials) is `None`.
#[derive(Clone, PartialEq)]
pub struct RegistryCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegistryCredentials({}, <redacted>)", self.username)
    }
}

impl RegistryCredentials {
    pub fn decode(header: &str) -> Option<RegistryCredentials> {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
        use base64::Engine;
        let header = header.trim();
        let bytes = [URL_SAFE, URL_SAFE_NO_PAD, STANDARD]
            .iter()
            .find_map(|e| e.decode(header).ok())?;
        let v: Value = serde_json::from_slice(&bytes).ok()?;
        let username = v["username"].as_str().unwrap_or_default();
        let password = v["password"].as_str().unwrap_or_default();
        (!username.is_empty()).then(|| RegistryCredentials {
            username: username.to_string(),
            password: password.to_string(),
        })
    }
}

impl Request {
    /// The `X-Registry-Auth` header, for the calls that talk to a registry.
    pub fn with_registry_auth(mut self, header: Option<&str>) -> Request {
        if let Request::ImageCreate { registry_auth, .. }
        | Request::ImagePush { registry_auth, .. } = &mut self
        {
            *registry_auth = header.and_then(RegistryCredentials::decode);
        }
        self
    }
}

/// The `/networks` calls.
#[derive(Debug, Clone, PartialEq)]
pub enum NetworkRequest {
    List { filters: Filters },
    Inspect { id: String },
    Create { body: Value },
    Remove { id: String },
    Prune { filters: Filters },
}

/// The `/volumes` calls.
#[derive(Debug, Clone, PartialEq)]
pub enum VolumeRequest {
    List {
        filters: Filters,
    },
    Inspect {
        name: String,
    },
    Create {
        body: Value,
    },
    Remove {
        name: String,
        force: bool,
    },
    /// `anonymous_only`: what a prune without `all` removes from API 1.42 on (older
    /// clients prune every unused volume, as their daemons did).
    Prune {
        filters: Filters,
        anonymous_only: bool,
    },
}

/// Which of the two named-blob tables a `/secrets` or `/configs` call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    Secret,
    Config,
}

impl BlobKind {
    fn of(seg: &str) -> Option<BlobKind> {
        match seg {
            "secrets" => Some(BlobKind::Secret),
            "configs" => Some(BlobKind::Config),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BlobKind::Secret => "secret",
            BlobKind::Config => "config",
        }
    }
}

/// `?stdout=1&stderr=1&follow=1&tail=all&details=1&timestamps=1`
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogsOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub details: bool,
    pub timestamps: bool,
    /// None: all lines.
    pub tail: Option<usize>,
    /// Unix nanoseconds: only lines from then on.
    pub since: Option<i64>,
}

/// The API version this server speaks (`Api-Version` on `/_ping`): the docker CLI 28
/// uses min(1.50, this).
pub const API_VERSION: &str = "1.47";
pub const MIN_API_VERSION: &str = "1.24";

/// Parse one HTTP request. `query` is the raw query string (no `?`).
pub fn parse(method: &str, path: &str, query: &str, body: &[u8]) -> Result<Request, ApiError> {
    let q: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let api_version = path_version(path);
    let path = strip_version(path);
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let filters = || Filters::parse(q.get("filters").map(String::as_str).unwrap_or(""));
    let json = || -> Result<Value, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_slice(body)
            .map(without_nulls)
            .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))
    };
    let version = || -> Result<u64, ApiError> {
        let v = q
            .get("version")
            .ok_or_else(|| ApiError::invalid("missing version parameter"))?;
        v.parse()
            .map_err(|_| ApiError::invalid(format!("invalid version: {v}")))
    };
    let flag = |k: &str| q.get(k).is_some_and(|v| is_true(v));
    let not_found = || ApiError::NotFound("page not found".into());
    let m = method.to_ascii_uppercase();
    let req = match (m.as_str(), segs.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => Request::Ping,
        ("GET", ["version"]) => Request::Version,
        ("GET", ["info"]) => Request::Info,
        ("POST", ["swarm", "init"]) => Request::SwarmInit(json()?),
        ("POST", ["swarm", "join"]) => Request::SwarmJoin(json()?),
        ("POST", ["swarm", "update"]) => Request::SwarmUpdate {
            version: version()?,
            spec: json()?,
            rotate_worker_token: flag("rotateWorkerToken"),
            rotate_manager_token: flag("rotateManagerToken"),
            rotate_unlock_key: flag("rotateManagerUnlockKey"),
        },
        ("GET", ["swarm"]) => Request::SwarmInspect,
        ("GET", ["swarm", "unlockkey"]) => Request::SwarmUnlockKey,
        ("GET", ["swarm", "backup"]) => Request::SwarmBackup,
        ("POST", ["swarm", "unlock"]) => Request::SwarmUnlock(json()?),
        ("POST", ["swarm", "leave"]) => Request::SwarmLeave {
            force: flag("force"),
        },
        ("GET", ["nodes"]) => Request::NodeList {
            filters: filters()?,
        },
        ("GET", ["nodes", id]) => Request::NodeInspect { id: id.to_string() },
        ("POST", ["nodes", id, "update"]) => Request::NodeUpdate {
            id: id.to_string(),
            version: version()?,
            spec: json()?,
        },
        ("DELETE", ["nodes", id]) => Request::NodeRemove {
            id: id.to_string(),
            force: flag("force"),
        },
        ("GET", ["services"]) => Request::ServiceList {
            filters: filters()?,
            status: flag("status"),
        },
        ("POST", ["services", "create"]) => Request::ServiceCreate { spec: json()? },
        ("GET", ["services", id]) => Request::ServiceInspect {
            id: id.to_string(),
            insert_defaults: q.get("insertDefaults").is_some_and(|v| is_true(v)),
        },
        ("POST", ["services", id, "update"]) => Request::ServiceUpdate {
            id: id.to_string(),
            version: version()?,
            rollback: q.get("rollback").is_some_and(|v| v == "previous"),
            spec: json()?,
        },
        ("DELETE", ["services", id]) => Request::ServiceRemove { id: id.to_string() },
        ("GET", ["services", id, "logs"]) => Request::ServiceLogs {
            id: id.to_string(),
            opts: logs_options(&q)?,
        },
        ("GET", ["tasks"]) => Request::TaskList {
            filters: filters()?,
        },
        ("GET", ["tasks", id]) => Request::TaskInspect { id: id.to_string() },
        ("GET", ["tasks", id, "logs"]) => Request::TaskLogs {
            id: id.to_string(),
            opts: logs_options(&q)?,
        },
        // Image names have slashes: everything between `distribution/` and `/json`.
        ("GET", ["distribution", rest @ .., "json"]) if !rest.is_empty() => Request::Distribution {
            name: rest.join("/"),
        },
        ("GET", [t]) if BlobKind::of(t).is_some() => Request::SecretList {
            kind: BlobKind::of(t).expect("matched"),
            filters: filters()?,
        },
        ("POST", [t, "create"]) if BlobKind::of(t).is_some() => Request::SecretCreate {
            kind: BlobKind::of(t).expect("matched"),
            spec: json()?,
        },
        ("GET", [t, id]) if BlobKind::of(t).is_some() => Request::SecretInspect {
            kind: BlobKind::of(t).expect("matched"),
            id: id.to_string(),
        },
        ("POST", [t, id, "update"]) if BlobKind::of(t).is_some() => Request::SecretUpdate {
            kind: BlobKind::of(t).expect("matched"),
            id: id.to_string(),
            version: version()?,
            spec: json()?,
        },
        ("DELETE", [t, id]) if BlobKind::of(t).is_some() => Request::SecretRemove {
            kind: BlobKind::of(t).expect("matched"),
            id: id.to_string(),
        },
        ("GET", ["networks"]) => Request::Network(NetworkRequest::List {
            filters: filters()?,
        }),
        ("POST", ["networks", "create"]) => {
            Request::Network(NetworkRequest::Create { body: json()? })
        }
        ("POST", ["networks", "prune"]) => Request::Network(NetworkRequest::Prune {
            filters: filters()?,
        }),
        ("GET", ["networks", id]) => {
            Request::Network(NetworkRequest::Inspect { id: id.to_string() })
        }
        ("DELETE", ["networks", id]) => {
            Request::Network(NetworkRequest::Remove { id: id.to_string() })
        }
        ("GET", ["volumes"]) => Request::Volume(VolumeRequest::List {
            filters: filters()?,
        }),
        ("POST", ["volumes", "create"]) => Request::Volume(VolumeRequest::Create { body: json()? }),
        ("POST", ["volumes", "prune"]) => Request::Volume(VolumeRequest::Prune {
            filters: filters()?,
            anonymous_only: api_version.is_none_or(|v| v >= (1, 42)),
        }),
        ("GET", ["volumes", name]) => Request::Volume(VolumeRequest::Inspect {
            name: name.to_string(),
        }),
        ("DELETE", ["volumes", name]) => Request::Volume(VolumeRequest::Remove {
            name: name.to_string(),
            force: flag("force"),
        }),
        ("GET", ["events"]) => {
            let time = |k: &str| -> Result<Option<i64>, ApiError> {
                match q.get(k).filter(|v| !v.is_empty()) {
                    Some(v) => crate::events::parse_time(v)
                        .map(Some)
                        .map_err(|e| ApiError::invalid(format!("invalid value for '{k}': {e}"))),
                    None => Ok(None),
                }
            };
            Request::Events {
                since: time("since")?,
                until: time("until")?,
                filters: filters()?,
            }
        }
        ("POST", ["images", "load"]) => Request::ImageLoad {
            archive: body.to_vec(),
        },
        ("GET", ["containers", "json"]) => Request::ContainerList {
            filters: filters()?,
            all: flag("all"),
        },
        ("GET", ["containers", id, "json"]) => Request::ContainerInspect { id: id.to_string() },
        ("GET", ["containers", id, "logs"]) => Request::ContainerLogs {
            id: id.to_string(),
            opts: logs_options(&q)?,
        },
        ("GET", ["containers", id, "top"]) => Request::ContainerTop {
            id: id.to_string(),
            ps_args: q.get("ps_args").cloned().unwrap_or_default(),
        },
        ("GET", ["containers", id, "stats"]) => Request::ContainerStats {
            id: id.to_string(),
            stream: q.get("stream").is_none_or(|v| is_true(v)),
            one_shot: flag("one-shot"),
        },
        ("POST", ["containers", id, "exec"]) => Request::ExecCreate {
            id: id.to_string(),
            config: json()?,
        },
        ("POST", ["exec", id, "start"]) => {
            let b = json()?;
            let size = b["ConsoleSize"].as_array().and_then(|a| {
                let n = |i: usize| a.get(i)?.as_u64().and_then(|n| u16::try_from(n).ok());
                Some((n(0)?, n(1)?))
            });
            Request::ExecStart {
                id: id.to_string(),
                detach: b["Detach"].as_bool().unwrap_or(false),
                console_size: size.filter(|&(h, w)| h > 0 && w > 0),
            }
        }
        ("POST", ["exec", id, "resize"]) => {
            let n = |k: &str| -> Result<u16, ApiError> {
                let v = q.get(k).map(String::as_str).unwrap_or("");
                v.parse()
                    .map_err(|_| ApiError::invalid(format!("invalid resize {k}: {v:?}")))
            };
            Request::ExecResize {
                id: id.to_string(),
                rows: n("h")?,
                cols: n("w")?,
            }
        }
        ("GET", ["exec", id, "json"]) => Request::ExecInspect { id: id.to_string() },
        ("GET", ["images", "json"]) => Request::ImageList {
            filters: filters()?,
            all: flag("all"),
        },
        ("POST", ["images", "create"]) => Request::ImageCreate {
            from_image: q.get("fromImage").cloned().unwrap_or_default(),
            tag: q.get("tag").cloned().unwrap_or_default(),
            registry_auth: None,
        },
        // Image names have slashes (and a registry's port): the segments between
        // `images/` and the action are the name.
        ("GET", ["images", rest @ .., "json"]) if !rest.is_empty() => Request::ImageInspect {
            name: rest.join("/"),
        },
        ("POST", ["images", rest @ .., "tag"]) if !rest.is_empty() => Request::ImageTag {
            name: rest.join("/"),
            repo: q.get("repo").cloned().unwrap_or_default(),
            tag: q.get("tag").cloned().unwrap_or_default(),
        },
        ("POST", ["images", rest @ .., "push"]) if !rest.is_empty() => Request::ImagePush {
            name: rest.join("/"),
            tag: q.get("tag").cloned().unwrap_or_default(),
            registry_auth: None,
        },
        ("DELETE", ["images", rest @ ..]) if !rest.is_empty() => Request::ImageRemove {
            name: rest.join("/"),
            force: flag("force"),
        },
        _ => return Err(not_found()),
    };
    Ok(req)
}

/// `/v1.47/services` -> `/services`.
fn strip_version(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some(i) = rest.find('/') {
            let v = &rest[..i];
            if v.split('.').count() == 2 && v.split('.').all(|p| p.parse::<u32>().is_ok()) {
                return &rest[i..];
            }
        }
    }
    path
}

/// `/v1.41/volumes/prune` -> (1, 41); None for an unversioned path.
fn path_version(path: &str) -> Option<(u32, u32)> {
    let rest = path.strip_prefix("/v")?;
    let (major, minor) = rest[..rest.find('/')?].split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn is_true(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes")
}

/// A request body as Go's decoder reads it: a member that is `null` leaves the field as
/// it was (its zero value), the same as a member that is not there. Clients send `null`
/// for every unset field (`"Labels": null`, `"Replicas": null`), which our typed decode
/// would refuse (`invalid type: null, expected i64`). Nulls inside arrays stay.
pub fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

fn logs_options(q: &HashMap<String, String>) -> Result<LogsOptions, ApiError> {
    let flag = |k: &str| q.get(k).is_some_and(|v| is_true(v));
    let tail = match q.get("tail").map(String::as_str) {
        None | Some("all") | Some("") => None,
        Some(n) => Some(
            n.parse()
                .map_err(|_| ApiError::invalid(format!("invalid tail: {n}")))?,
        ),
    };
    let since = match q.get("since").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(v) => Some(crate::events::parse_time(v).map_err(ApiError::invalid)?),
    };
    let mut opts = LogsOptions {
        stdout: flag("stdout"),
        stderr: flag("stderr"),
        follow: flag("follow"),
        details: flag("details"),
        timestamps: flag("timestamps"),
        tail,
        since,
    };
    if !opts.stdout && !opts.stderr {
        // Docker refuses this; be lenient with hand-written curl calls and send both.
        opts.stdout = true;
        opts.stderr = true;
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_are_absent_members_as_in_go() {
        let r = parse(
            "POST",
            "/swarm/init",
            "",
            br#"{"ListenAddr": null, "Spec": {"Labels": null, "Orchestration": {"TaskHistoryRetentionLimit": null}}, "Hosts": [null, {"A": null}]}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            Request::SwarmInit(serde_json::json!({
                "Spec": {"Orchestration": {}},
                "Hosts": [null, {}]
            }))
        );
    }

    #[test]
    fn exec_top_and_stats_as_the_docker_cli_sends_them() {
        assert_eq!(
            parse(
                "POST",
                "/v1.47/exec/abc/start",
                "",
                br#"{"Detach":false,"Tty":true,"ConsoleSize":[24,80]}"#
            )
            .unwrap(),
            Request::ExecStart {
                id: "abc".into(),
                detach: false,
                console_size: Some((24, 80)),
            }
        );
        assert_eq!(
            parse(
                "POST",
                "/exec/abc/start",
                "",
                br#"{"Detach":true,"ConsoleSize":[0,0]}"#
            )
            .unwrap(),
            Request::ExecStart {
                id: "abc".into(),
                detach: true,
                console_size: None,
            }
        );
        assert_eq!(
            parse("POST", "/exec/abc/resize", "h=40&w=120", b"").unwrap(),
            Request::ExecResize {
                id: "abc".into(),
                rows: 40,
                cols: 120,
            }
        );
        assert!(parse("POST", "/exec/abc/resize", "h=x&w=1", b"").is_err());
        assert_eq!(
            parse("GET", "/containers/web.1.x/stats", "stream=false", b"").unwrap(),
            Request::ContainerStats {
                id: "web.1.x".into(),
                stream: false,
                one_shot: false,
            }
        );
        assert_eq!(
            parse("GET", "/containers/c/stats", "", b"").unwrap(),
            Request::ContainerStats {
                id: "c".into(),
                stream: true,
                one_shot: false,
            }
        );
        assert_eq!(
            parse("GET", "/containers/c/top", "ps_args=aux", b"").unwrap(),
            Request::ContainerTop {
                id: "c".into(),
                ps_args: "aux".into(),
            }
        );
    }

    #[test]
    fn logs_since_as_the_cli_sends_it() {
        let since = |q: &str| match parse("GET", "/services/web/logs", q, b"") {
            Ok(Request::ServiceLogs { opts, .. }) => Ok(opts.since),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(
            since("since=1733580000.5").unwrap(),
            Some(1_733_580_000_500_000_000)
        );
        assert_eq!(since("since=0").unwrap(), None);
        assert_eq!(since("").unwrap(), None);
        assert!(since("since=yesterday").is_err());
    }

    #[test]
    fn versioned_and_unversioned_paths() {
        assert_eq!(parse("HEAD", "/_ping", "", b"").unwrap(), Request::Ping);
        assert_eq!(
            parse("GET", "/v1.47/services/web", "", b"").unwrap(),
            Request::ServiceInspect {
                id: "web".into(),
                insert_defaults: false
            }
        );
        assert_eq!(
            parse("GET", "/services/web", "insertDefaults=false", b"").unwrap(),
            Request::ServiceInspect {
                id: "web".into(),
                insert_defaults: false
            }
        );
        assert_eq!(
            parse("GET", "/services/web", "insertDefaults=true", b"").unwrap(),
            Request::ServiceInspect {
                id: "web".into(),
                insert_defaults: true
            }
        );
        assert_eq!(parse("GET", "/v1.24/info", "", b"").unwrap(), Request::Info);
        assert_eq!(
            parse("GET", "/v1.47/nope", "", b"").unwrap_err().status(),
            404
        );
    }

    #[test]
    fn service_list_with_filters_and_status() {
        let r = parse(
            "GET",
            "/v1.47/services",
            "filters=%7B%22name%22%3A%7B%22web%22%3Atrue%7D%7D&status=true",
            b"",
        )
        .unwrap();
        let Request::ServiceList { filters, status } = r else {
            panic!("{r:?}")
        };
        assert!(status);
        assert_eq!(filters.get("name"), Some(&["web".to_string()][..]));
    }

    #[test]
    fn update_needs_a_version_and_reads_rollback() {
        assert_eq!(
            parse("POST", "/services/x/update", "", b"{}")
                .unwrap_err()
                .status(),
            400
        );
        let r = parse(
            "POST",
            "/v1.47/services/x/update",
            "version=12&rollback=previous",
            br#"{"Name":"x"}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            Request::ServiceUpdate {
                id: "x".into(),
                version: 12,
                rollback: true,
                spec: serde_json::json!({"Name": "x"}),
            }
        );
    }

    #[test]
    fn secrets_and_configs() {
        assert_eq!(
            parse(
                "POST",
                "/v1.47/secrets/create",
                "",
                br#"{"Name":"s","Data":"YQ=="}"#
            )
            .unwrap(),
            Request::SecretCreate {
                kind: BlobKind::Secret,
                spec: serde_json::json!({"Name": "s", "Data": "YQ=="}),
            }
        );
        assert_eq!(
            parse("GET", "/configs/abc", "", b"").unwrap(),
            Request::SecretInspect {
                kind: BlobKind::Config,
                id: "abc".into()
            }
        );
        assert_eq!(
            parse("DELETE", "/v1.47/secrets/abc", "", b"").unwrap(),
            Request::SecretRemove {
                kind: BlobKind::Secret,
                id: "abc".into()
            }
        );
        let r = parse("POST", "/v1.47/configs/abc/update", "version=7", b"{}").unwrap();
        assert!(matches!(
            r,
            Request::SecretUpdate {
                kind: BlobKind::Config,
                version: 7,
                ..
            }
        ));
        let r = parse(
            "GET",
            "/v1.47/secrets",
            "filters=%7B%22name%22%3A%7B%22db%22%3Atrue%7D%7D",
            b"",
        )
        .unwrap();
        let Request::SecretList { kind, filters } = r else {
            panic!("{r:?}")
        };
        assert_eq!(kind, BlobKind::Secret);
        assert_eq!(filters.get("name"), Some(&["db".to_string()][..]));
    }

    #[test]
    fn image_routes_with_hosts_and_slashes() {
        assert_eq!(
            parse("GET", "/v1.47/images/127.0.0.1:5000/app:1.0/json", "", b"").unwrap(),
            Request::ImageInspect {
                name: "127.0.0.1:5000/app:1.0".into()
            }
        );
        assert_eq!(
            parse("GET", "/v1.47/images/json", "all=0", b"").unwrap(),
            Request::ImageList {
                filters: Filters::default(),
                all: false
            }
        );
        assert_eq!(
            parse(
                "POST",
                "/v1.47/images/busybox/tag",
                "repo=127.0.0.1%3A5000%2Fapp&tag=1.0",
                b""
            )
            .unwrap(),
            Request::ImageTag {
                name: "busybox".into(),
                repo: "127.0.0.1:5000/app".into(),
                tag: "1.0".into()
            }
        );
        let auth = {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE
                .encode(r#"{"username":"u","password":"p","serveraddress":"h"}"#)
        };
        assert_eq!(
            parse(
                "POST",
                "/v1.47/images/127.0.0.1:5000/team/app/push",
                "tag=1.0",
                b""
            )
            .unwrap()
            .with_registry_auth(Some(&auth)),
            Request::ImagePush {
                name: "127.0.0.1:5000/team/app".into(),
                tag: "1.0".into(),
                registry_auth: Some(RegistryCredentials {
                    username: "u".into(),
                    password: "p".into()
                })
            }
        );
        // What the docker CLI sends without credentials.
        assert_eq!(RegistryCredentials::decode("e30="), None);
        assert_eq!(
            parse(
                "POST",
                "/images/create",
                "fromImage=127.0.0.1%3A5000%2Fapp&tag=1.0",
                b""
            )
            .unwrap(),
            Request::ImageCreate {
                from_image: "127.0.0.1:5000/app".into(),
                tag: "1.0".into(),
                registry_auth: None
            }
        );
        assert_eq!(
            parse(
                "DELETE",
                "/v1.47/images/docker.io/library/busybox:1",
                "force=1",
                b""
            )
            .unwrap(),
            Request::ImageRemove {
                name: "docker.io/library/busybox:1".into(),
                force: true
            }
        );
    }

    #[test]
    fn volume_routes_and_prune_by_api_version() {
        assert_eq!(
            parse("DELETE", "/v1.47/volumes/v1", "force=1", b"").unwrap(),
            Request::Volume(VolumeRequest::Remove {
                name: "v1".into(),
                force: true
            })
        );
        assert_eq!(
            parse("GET", "/volumes/v1", "", b"").unwrap(),
            Request::Volume(VolumeRequest::Inspect { name: "v1".into() })
        );
        let prune = |path: &str| match parse("POST", path, "", b"").unwrap() {
            Request::Volume(VolumeRequest::Prune { anonymous_only, .. }) => anonymous_only,
            other => panic!("{other:?}"),
        };
        assert!(prune("/v1.47/volumes/prune"));
        assert!(prune("/v1.42/volumes/prune"));
        assert!(!prune("/v1.41/volumes/prune"));
        assert!(prune("/volumes/prune"));
    }

    #[test]
    fn bad_json_is_400() {
        let e = parse("POST", "/services/create", "", b"{nope").unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn logs_options_and_distribution_names() {
        let r = parse(
            "GET",
            "/v1.47/services/web/logs",
            "details=1&stderr=1&stdout=1&tail=all&follow=1",
            b"",
        )
        .unwrap();
        assert_eq!(
            r,
            Request::ServiceLogs {
                id: "web".into(),
                opts: LogsOptions {
                    stdout: true,
                    stderr: true,
                    follow: true,
                    details: true,
                    timestamps: false,
                    tail: None,
                    since: None,
                }
            }
        );
        assert_eq!(
            parse(
                "GET",
                "/v1.47/distribution/127.0.0.1:5000/busybox:1/json",
                "",
                b""
            )
            .unwrap(),
            Request::Distribution {
                name: "127.0.0.1:5000/busybox:1".into()
            }
        );
    }
}
