//! The node's images through the Engine API, as dockerd answers: list, inspect, tag,
//! remove, and pull and push with Docker's JSON progress stream.
//!
//! ```text
//!  POST /images/create, /images/{name}/push
//!    ─▶ ImageStore::pull_with_progress / push (Reporter ─▶ channel of Progress)
//!    ─▶ an error before the first report: an HTTP error (dockerd has not flushed yet)
//!    ─▶ else JSON lines: progress_lines(Progress), and a failure as an `errorDetail` line
//! ```
//!
//! Images are this node's (its store); nothing here goes through the manager.

use std::collections::BTreeMap;

use axum::body::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};
use swarm_runtime::container::Status;
use swarm_runtime::image::progress::short_id;
use swarm_runtime::image::{
    familiar, parse_reference, ContainerUse, ImageInfo, LayerStage, Progress, RegistryAuth,
    RegistryOptions, Removed, Reporter,
};
use swarm_runtime::Error as RtError;

use super::Node;
use crate::agent::spec::LABEL_IMAGE_ID;
use crate::api::filters::{label_matches, Filters};
use crate::api::{ApiError, RegistryCredentials, Reply};

impl Node {
    fn registry_options(&self, creds: Option<RegistryCredentials>) -> RegistryOptions {
        RegistryOptions {
            insecure: self.cfg.insecure_registries.clone(),
            auth: creds.map(|c| RegistryAuth {
                username: c.username,
                password: c.password,
            }),
        }
    }

    /// `GET /images/json`.
    pub(super) fn image_list(&self, filters: &Filters, _all: bool) -> Result<Reply, ApiError> {
        filters.validate(&["reference", "dangling", "label"])?;
        let images = self.images.images().map_err(|e| image_error(&e, ""))?;
        let mut out: Vec<Value> = images
            .iter()
            .filter(|i| image_matches(i, filters))
            .map(|i| {
                let mut s = summary(i);
                // As dockerd: a reference filter shows only the tags it matched.
                if let Some(patterns) = filters.get("reference") {
                    if let Some(tags) = s["RepoTags"].as_array_mut() {
                        tags.retain(|t| {
                            t.as_str()
                                .is_some_and(|t| patterns.iter().any(|p| tag_matches(p, t)))
                        });
                    }
                }
                s
            })
            .collect();
        // Newest first, as dockerd answers.
        out.sort_by_key(|v| std::cmp::Reverse(v["Created"].as_i64().unwrap_or(0)));
        Ok(Reply::Json(200, Value::Array(out)))
    }

    /// `GET /images/{name}/json`.
    pub(super) fn image_inspect(&self, name: &str) -> Result<Reply, ApiError> {
        let info = self
            .images
            .image_info(name)
            .map_err(|e| image_error(&e, name))?;
        Ok(Reply::Json(200, inspect(&info)))
    }

    /// `POST /images/{name}/tag?repo=R&tag=T`: 201, as dockerd.
    pub(super) fn image_tag(&self, name: &str, repo: &str, tag: &str) -> Result<Reply, ApiError> {
        if repo.is_empty() {
            return Err(ApiError::invalid(
                "repository name must have at least one component",
            ));
        }
        let target = if tag.is_empty() {
            repo.to_string()
        } else {
            format!("{repo}:{tag}")
        };
        self.images
            .tag(name, &target)
            .map_err(|e| image_error(&e, name))?;
        Ok(Reply::Empty(201))
    }

    /// `DELETE /images/{name}`: `[{"Untagged": ..}, {"Deleted": ..}]`.
    pub(super) async fn image_remove(&self, name: &str, force: bool) -> Result<Reply, ApiError> {
        let uses: Vec<ContainerUse> = self
            .rt
            .list()
            .await
            .map_err(ApiError::internal)?
            .into_iter()
            .filter_map(|c| {
                Some(ContainerUse {
                    image: c.labels.get(LABEL_IMAGE_ID)?.clone(),
                    running: c.status == Status::Running,
                    container: c.id,
                })
            })
            .collect();
        let (images, name_owned) = (self.images.clone(), name.to_string());
        let removed = tokio::task::spawn_blocking(move || images.remove(&name_owned, force, &uses))
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| image_error(&e, name))?;
        let out = removed
            .into_iter()
            .map(|r| match r {
                Removed::Untagged(n) => json!({ "Untagged": n }),
                Removed::Deleted(id) => json!({ "Deleted": id }),
            })
            .collect();
        Ok(Reply::Json(200, Value::Array(out)))
    }

    /// `POST /images/create?fromImage=X&tag=Y`: a pull with Docker's progress lines.
    pub(super) async fn image_pull(
        &self,
        from_image: &str,
        tag: &str,
        creds: Option<RegistryCredentials>,
    ) -> Result<Reply, ApiError> {
        let reference = pull_reference(from_image, tag);
        let name = parse_reference(&reference)
            .map_err(|e| image_error(&e, &reference))?
            .whole();
        let (images, opts) = (self.images.clone(), self.registry_options(creds));
        let shown = familiar(&name);
        progress_reply(
            move |r| async move {
                images
                    .pull_with_progress(&name, &opts, &r)
                    .await
                    .map(|_| ())
            },
            move |p| progress_lines(p, &shown),
            move |e| image_error(e, &reference),
        )
        .await
    }

    /// `POST /images/{name}/push?tag=T`.
    pub(super) async fn image_push(
        &self,
        name: &str,
        tag: &str,
        creds: Option<RegistryCredentials>,
    ) -> Result<Reply, ApiError> {
        let reference = pull_reference(name, tag);
        let (images, opts) = (self.images.clone(), self.registry_options(creds));
        let shown = reference.clone();
        progress_reply(
            move |r| async move { images.push(&reference, &opts, &r).await.map(|_| ()) },
            move |p| progress_lines(p, &shown),
            |e| image_error(e, ""),
        )
        .await
    }
}

/// `fromImage` + `tag` as one reference: the tag may be a digest; a name that already
/// has one keeps it.
fn pull_reference(from_image: &str, tag: &str) -> String {
    if tag.is_empty() {
        from_image.to_string()
    } else if tag.contains(':') {
        format!("{from_image}@{tag}")
    } else {
        format!("{from_image}:{tag}")
    }
}

/// Runs a pull or push with a reporter. A failure before its first report is an HTTP
/// error (the docker CLI prints `Error response from daemon: ...`); after, the stream
/// ends with Docker's error line.
async fn progress_reply<W, F>(
    work: W,
    render: impl Fn(&Progress) -> Vec<Value> + Send + 'static,
    error: impl Fn(&RtError) -> ApiError + Send + 'static,
) -> Result<Reply, ApiError>
where
    W: FnOnce(Reporter) -> F,
    F: std::future::Future<Output = swarm_runtime::Result<()>> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(work(Reporter::new(tx)));
    let Some(first) = rx.recv().await else {
        task.await
            .map_err(ApiError::internal)?
            .map_err(|e| error(&e))?;
        return Ok(Reply::JsonLines(futures::stream::empty().boxed()));
    };
    let (out, lines) = tokio::sync::mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        let mut next = Some(first);
        while let Some(p) = next {
            for line in render(&p) {
                let _ = out.send(line);
            }
            next = rx.recv().await;
        }
        let failed = match task.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(error(&e).to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(message) = failed {
            let _ = out.send(json!({"errorDetail": {"message": message}, "error": message}));
        }
    });
    let stream = futures::stream::unfold(lines, |mut lines| async move {
        let v = lines.recv().await?;
        let mut bytes = serde_json::to_vec(&v).unwrap_or_default();
        bytes.extend_from_slice(b"\r\n");
        Some((Ok(Bytes::from(bytes)), lines))
    });
    Ok(Reply::JsonLines(stream.boxed()))
}

/// Docker's JSON progress lines for one report. `reference` is the familiar name of
/// what is pulled or pushed (`Status: Downloaded newer image for busybox:1`).
pub fn progress_lines(p: &Progress, reference: &str) -> Vec<Value> {
    let empty = json!({});
    match p {
        Progress::PullingFrom { repository, tag } => {
            vec![json!({"status": format!("Pulling from {repository}"), "id": tag})]
        }
        Progress::PushRefersTo { repository } => {
            vec![json!({"status": format!("The push refers to repository [{repository}]")})]
        }
        Progress::Layer { digest, stage } => {
            let id = short_id(digest);
            let (status, detail) = match stage {
                LayerStage::PullingFsLayer => ("Pulling fs layer".to_string(), None),
                LayerStage::AlreadyExists => ("Already exists".to_string(), None),
                LayerStage::Downloading { current, total } => {
                    ("Downloading".to_string(), Some((*current, *total)))
                }
                LayerStage::DownloadComplete => ("Download complete".to_string(), None),
                LayerStage::PullComplete => ("Pull complete".to_string(), None),
                LayerStage::Preparing => ("Preparing".to_string(), None),
                LayerStage::Pushing { current, total } => {
                    ("Pushing".to_string(), Some((*current, *total)))
                }
                LayerStage::Pushed => ("Pushed".to_string(), None),
                LayerStage::LayerAlreadyExists => ("Layer already exists".to_string(), None),
                LayerStage::Mounted { from } => (format!("Mounted from {from}"), None),
            };
            match detail {
                Some((current, total)) => vec![json!({
                    "status": status,
                    "progressDetail": {"current": current, "total": total},
                    "progress": progress_bar(current, total),
                    "id": id,
                })],
                None => vec![json!({"status": status, "progressDetail": empty, "id": id})],
            }
        }
        Progress::Pulled { digest, new } => {
            let status = if *new {
                format!("Status: Downloaded newer image for {reference}")
            } else {
                format!("Status: Image is up to date for {reference}")
            };
            vec![
                json!({"status": format!("Digest: {digest}")}),
                json!({ "status": status }),
            ]
        }
        Progress::Pushed { tag, digest, size } => vec![
            json!({"status": format!("{tag}: digest: {digest} size: {size}"), "progressDetail": empty}),
            json!({"progressDetail": empty, "aux": {"Tag": tag, "Digest": digest, "Size": size}}),
        ],
    }
}

/// Docker's text bar: `[=====>      ]  1.2MB/4.5MB`.
fn progress_bar(current: u64, total: u64) -> String {
    const WIDTH: u64 = 50;
    let filled = (current.min(total) * WIDTH)
        .checked_div(total)
        .map_or(0, |f| f.max(1));
    let bar = format!(
        "{}>{}",
        "=".repeat(filled.saturating_sub(1) as usize),
        " ".repeat((WIDTH - filled) as usize)
    );
    format!("[{bar}]  {}/{}", human(current), human(total))
}

fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.3}{}", units[i])
    }
}

/// The runtime's errors in dockerd's words and statuses.
fn image_error(e: &RtError, name: &str) -> ApiError {
    match e {
        RtError::NoSuchImage(_) => ApiError::NotFound(format!("No such image: {}", shown(name))),
        RtError::NoSuchTag(_) => ApiError::NotFound(e.to_string()),
        RtError::InvalidReference { .. } => ApiError::invalid(e.to_string()),
        RtError::ImageConflict(m) => ApiError::Conflict(m.clone()),
        RtError::Pull { cause, .. } if cause == "manifest unknown" => ApiError::NotFound(format!(
            "manifest for {} not found: manifest unknown: manifest unknown",
            shown(name)
        )),
        RtError::Pull { cause, .. } | RtError::Push { cause, .. } => {
            ApiError::internal(cause.clone())
        }
        other => ApiError::internal(other.to_string()),
    }
}

/// A name as dockerd shows it in errors: the familiar reference with its tag
/// (`busybox:latest`), IDs and digests as given.
fn shown(name: &str) -> String {
    let is_id = name.starts_with("sha256:")
        || (name.len() >= 12 && name.bytes().all(|b| b.is_ascii_hexdigit()));
    match parse_reference(name) {
        Ok(r) if !is_id => familiar(&r.whole()),
        _ => name.to_string(),
    }
}

fn created_unix(info: &ImageInfo) -> i64 {
    info.config["created"]
        .as_str()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map_or(0, |t| t.timestamp())
}

fn labels(info: &ImageInfo) -> BTreeMap<String, String> {
    serde_json::from_value(info.config["config"]["Labels"].clone()).unwrap_or_default()
}

fn image_matches(info: &ImageInfo, f: &Filters) -> bool {
    let tags = info.repo_tags();
    let dangling_ok = match f.bool("dangling") {
        Some(d) => d == tags.is_empty(),
        None => true,
    };
    let labels = labels(info);
    dangling_ok
        && f.matches("label", |l| label_matches(&labels, l))
        && f.matches("reference", |pattern| {
            tags.iter().any(|t| tag_matches(pattern, t))
        })
}

/// A `reference` filter against `repo:tag`: the whole, or the repository alone.
fn tag_matches(pattern: &str, tag: &str) -> bool {
    let repo = tag.rsplit_once(':').filter(|(_, t)| !t.contains('/'));
    glob(pattern, tag) || repo.is_some_and(|(r, _)| glob(pattern, r))
}

/// Go's `path.Match` for what `reference` filters use: `*` (not across `/`) and `?`.
fn glob(pattern: &str, s: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != b'/')
                .any(|i| go(&p[1..], &s[i..])),
            Some(b'?') => !s.is_empty() && s[0] != b'/' && go(&p[1..], &s[1..]),
            Some(c) => s.first() == Some(c) && go(&p[1..], &s[1..]),
        }
    }
    go(pattern.as_bytes(), s.as_bytes())
}

/// One entry of `GET /images/json` (API 1.4x `ImageSummary`).
fn summary(info: &ImageInfo) -> Value {
    json!({
        "Id": info.id,
        "ParentId": "",
        "RepoTags": info.repo_tags(),
        "RepoDigests": info.repo_digests(),
        "Created": created_unix(info),
        "Size": info.size,
        "SharedSize": -1,
        "Labels": labels(info),
        "Containers": -1,
    })
}

/// `GET /images/{name}/json` (API 1.4x `ImageInspect`).
fn inspect(info: &ImageInfo) -> Value {
    let c = &info.config;
    let mut v = json!({
        "Id": info.id,
        "RepoTags": info.repo_tags(),
        "RepoDigests": info.repo_digests(),
        "Parent": "",
        "Comment": c["comment"].as_str().unwrap_or(""),
        "Created": c["created"].as_str().unwrap_or("0001-01-01T00:00:00Z"),
        "DockerVersion": c["docker_version"].as_str().unwrap_or(""),
        "Author": c["author"].as_str().unwrap_or(""),
        "Config": c.get("config").cloned().unwrap_or(Value::Null),
        "Architecture": c["architecture"].as_str().unwrap_or(""),
        "Os": c["os"].as_str().unwrap_or(""),
        "Size": info.size,
        "GraphDriver": {"Data": null, "Name": "overlayfs"},
        "RootFS": {
            "Type": c["rootfs"]["type"].as_str().unwrap_or("layers"),
            "Layers": c["rootfs"]["diff_ids"].clone(),
        },
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    });
    if let Some(variant) = c["variant"].as_str() {
        v["Variant"] = json!(variant);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_lines_as_dockerd_sends_them() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            progress_lines(
                &Progress::Layer {
                    digest: d.clone(),
                    stage: LayerStage::LayerAlreadyExists
                },
                "x"
            ),
            [json!({"status": "Layer already exists", "progressDetail": {}, "id": "abababababab"})]
        );
        let lines = progress_lines(
            &Progress::Pushed {
                tag: "1.0".into(),
                digest: d.clone(),
                size: 527,
            },
            "x",
        );
        assert_eq!(lines[0]["status"], format!("1.0: digest: {d} size: 527"));
        assert_eq!(
            lines[1]["aux"],
            json!({"Tag": "1.0", "Digest": d, "Size": 527})
        );
        let lines = progress_lines(
            &Progress::Pulled {
                digest: d.clone(),
                new: false,
            },
            "busybox:1",
        );
        assert_eq!(
            lines[1]["status"],
            "Status: Image is up to date for busybox:1"
        );
        let bar = progress_lines(
            &Progress::Layer {
                digest: d,
                stage: LayerStage::Pushing {
                    current: 500_000,
                    total: 1_000_000,
                },
            },
            "x",
        );
        assert_eq!(bar[0]["progressDetail"]["total"], 1_000_000);
        assert!(bar[0]["progress"]
            .as_str()
            .unwrap()
            .ends_with("500.000kB/1.000MB"));
    }

    #[test]
    fn references_and_globs() {
        assert_eq!(pull_reference("busybox", "latest"), "busybox:latest");
        assert_eq!(
            pull_reference("127.0.0.1:5000/app", "sha256:ab"),
            "127.0.0.1:5000/app@sha256:ab"
        );
        assert_eq!(pull_reference("app:1", ""), "app:1");
        assert!(glob("busy*", "busybox"));
        assert!(glob("127.0.0.1:5000/*", "127.0.0.1:5000/app"));
        assert!(!glob("127.0.0.1:5000/*", "127.0.0.1:5000/team/app"));
        assert!(glob("app:1.?", "app:1.0"));
        assert_eq!(shown("nope"), "nope:latest");
        assert_eq!(shown("abcdef123456"), "abcdef123456");
        assert_eq!(
            image_error(&RtError::NoSuchImage("x".into()), "x").to_string(),
            "No such image: x:latest"
        );
    }
}
