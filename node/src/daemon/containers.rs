//! The node's containers through the Engine API, as `docker ps`, `docker inspect` and
//! `docker logs` on a node read them: `GET /containers/json`, `/containers/{id}/json`,
//! `/containers/{id}/logs` (exec, top and stats are in their own rooms next door). Every container here is a task's (ID = task ID, named
//! `web.1.<task id>` with the `com.docker.swarm.*` labels, as Docker names a task's
//! container); what it runs comes from the agent's assignment, its state from the
//! runtime. Nothing goes through the manager.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{json, Value};
use swarm_core::human::{human_duration, since};
use swarm_runtime::container::logs::{self, LogStream, ReadOptions};
use swarm_runtime::container::{ContainerState, Status};

use super::Node;
use crate::agent::spec::{container_of, LABEL_IMAGE_ID};
use crate::api::filters::{label_matches, Filters};
use crate::api::{mux_frame, ApiError, LogsOptions, Reply};

/// What the API shows of one container.
pub(super) struct Shown {
    pub(super) st: ContainerState,
    pub(super) name: String,
    image: String,
    path: String,
    args: Vec<String>,
    created: DateTime<Utc>,
}

impl Node {
    pub(super) async fn containers(&self) -> Result<Vec<ContainerState>, ApiError> {
        self.rt
            .list()
            .await
            .map_err(|e| ApiError::internal(e.to_string()))
    }

    /// What it runs and when it was made: only for the containers an answer shows.
    fn shown(&self, st: ContainerState) -> Shown {
        let name = name_of(&st).to_string();
        let (image, mut command) = match self.agent.assignment(&st.id) {
            Some(a) => {
                let c = container_of(&a.spec);
                let command: Vec<String> = c.command.iter().chain(&c.args).cloned().collect();
                (c.image.clone(), command)
            }
            None => (String::new(), Vec::new()),
        };
        if command.is_empty() {
            // The image's own entrypoint and command.
            if let Ok(img) = self.images.get(&image) {
                let cfg = &img.config;
                command = cfg.entrypoint.iter().chain(&cfg.cmd).cloned().collect();
            }
        }
        let (path, args) = match command.split_first() {
            Some((p, rest)) => (p.clone(), rest.to_vec()),
            None => (String::new(), Vec::new()),
        };
        let created = std::fs::metadata(self.cfg.data_dir.join("containers").join(&st.id))
            .and_then(|m| m.modified())
            .map(DateTime::<Utc>::from)
            .unwrap_or_else(|_| st.started_at.unwrap_or_else(Utc::now));
        Shown {
            st,
            name,
            image,
            path,
            args,
            created,
        }
    }

    /// A container by ID, name (`web.1.xyz`, `/web.1.xyz`) or unique ID prefix.
    pub(super) async fn find_container(&self, key: &str) -> Result<Shown, ApiError> {
        let key = key.strip_prefix('/').unwrap_or(key);
        let all = self.containers().await?;
        let no_such = || ApiError::NotFound(format!("No such container: {key}"));
        if key.is_empty() {
            return Err(no_such());
        }
        if let Some(i) = all.iter().position(|c| c.id == key || name_of(c) == key) {
            return Ok(self.shown(all.into_iter().nth(i).expect("found")));
        }
        let mut by_prefix: Vec<ContainerState> =
            all.into_iter().filter(|c| c.id.starts_with(key)).collect();
        match by_prefix.len() {
            1 => Ok(self.shown(by_prefix.remove(0))),
            0 => Err(no_such()),
            _ => Err(ApiError::invalid(format!(
                "multiple IDs found with provided prefix: {key}"
            ))),
        }
    }

    /// `GET /containers/json`: running ones, or all with `all`; filters `id`, `name`,
    /// `label`, `status`.
    pub(super) async fn container_list(
        &self,
        filters: &Filters,
        all: bool,
    ) -> Result<Reply, ApiError> {
        filters.validate(&["id", "name", "label", "status"])?;
        let now = Utc::now();
        let mut out: Vec<(DateTime<Utc>, Value)> = self
            .containers()
            .await?
            .into_iter()
            .filter(|c| all || filters.get("status").is_some() || c.status == Status::Running)
            .filter(|c| filters.matches("id", |x| c.id.starts_with(x)))
            .filter(|c| filters.matches("name", |x| name_of(c).contains(x.trim_start_matches('/'))))
            .filter(|c| filters.matches("status", |x| x == state_word(c.status)))
            .filter(|c| {
                filters
                    .get("label")
                    .is_none_or(|ls| ls.iter().all(|l| label_matches(&c.labels, l)))
            })
            .map(|st| {
                let c = self.shown(st);
                let mut labels = c.st.labels.clone();
                let image_id = labels.remove(LABEL_IMAGE_ID).unwrap_or_default();
                // moby's `daemon/list.go`: an argument with a space in single quotes.
                let command = std::iter::once(c.path.clone())
                    .chain(c.args.iter().map(|a| {
                        if a.contains(' ') {
                            format!("'{a}'")
                        } else {
                            a.clone()
                        }
                    }))
                    .collect::<Vec<_>>()
                    .join(" ");
                (
                    c.created,
                    json!({
                        "Id": c.st.id,
                        "Names": [format!("/{}", c.name)],
                        "Image": c.image,
                        "ImageID": image_id,
                        "Command": command,
                        "Created": c.created.timestamp(),
                        "Ports": [],
                        "Labels": labels,
                        "State": state_word(c.st.status),
                        "Status": status_line(&c.st, now),
                        "HostConfig": {"NetworkMode": "default"},
                        "NetworkSettings": {"Networks": {}},
                        "Mounts": [],
                    }),
                )
            })
            .collect();
        // Newest first, as dockerd lists them.
        out.sort_by_key(|c| std::cmp::Reverse(c.0));
        Ok(Reply::Json(
            200,
            Value::Array(out.into_iter().map(|(_, v)| v).collect()),
        ))
    }

    /// `GET /containers/{id}/json`: what `docker inspect` reads of a task's container.
    pub(super) async fn container_inspect(&self, key: &str) -> Result<Reply, ApiError> {
        let c = self.find_container(key).await?;
        let mut labels = c.st.labels.clone();
        let image_id = labels.remove(LABEL_IMAGE_ID).unwrap_or_default();
        let zero = "0001-01-01T00:00:00Z".to_string();
        let time = |t: Option<DateTime<Utc>>| {
            t.map_or(zero.clone(), |t| {
                t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
            })
        };
        let exit = c.st.exit.as_ref();
        Ok(Reply::Json(
            200,
            json!({
                "Id": c.st.id,
                "Created": time(Some(c.created)),
                "Path": c.path,
                "Args": c.args,
                "State": {
                    "Status": state_word(c.st.status),
                    "Running": c.st.status == Status::Running,
                    "Paused": false,
                    "Restarting": false,
                    "OOMKilled": exit.is_some_and(|e| e.oom_killed),
                    "Dead": false,
                    "Pid": if c.st.status == Status::Running { c.st.pid.unwrap_or(0) } else { 0 },
                    "ExitCode": exit.map_or(0, |e| e.code),
                    "Error": "",
                    "StartedAt": time(c.st.started_at),
                    "FinishedAt": time(exit.map(|e| e.finished_at)),
                },
                "Image": image_id,
                "LogPath": self.rt.log_path(&c.st.id),
                "Name": format!("/{}", c.name),
                "RestartCount": 0,
                "Driver": "overlay",
                "Platform": "linux",
                "HostConfig": {"NetworkMode": "default"},
                "Mounts": [],
                "Config": {
                    "Image": c.image,
                    "Cmd": c.args,
                    "Entrypoint": [c.path],
                    "Labels": labels,
                },
                "NetworkSettings": {"Networks": {}},
            }),
        ))
    }

    /// `GET /containers/{id}/logs`: its log file, multiplexed (stdout 1, stderr 2), with
    /// `tail`, `since`, `timestamps` and `follow` (until the container exits).
    pub(super) async fn container_logs(
        &self,
        key: &str,
        opts: LogsOptions,
    ) -> Result<Reply, ApiError> {
        let c = self.find_container(key).await?;
        let id = c.st.id.clone();
        let until = (opts.follow && c.st.status == Status::Running).then(|| {
            let rt = self.rt.clone();
            let id = id.clone();
            Box::pin(async move {
                let _ = rt.wait(&id).await;
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        });
        let read = logs::read(
            self.rt.log_path(&id),
            ReadOptions {
                tail: opts.tail,
                follow: opts.follow && c.st.status == Status::Running,
                until,
            },
        );
        let since = opts.since.unwrap_or(i64::MIN);
        let stream = read.filter_map(move |entry| {
            let frame = entry.ok().and_then(|e| {
                let stream = match e.stream {
                    LogStream::Stdout if opts.stdout => 1,
                    LogStream::Stderr if opts.stderr => 2,
                    _ => return None,
                };
                if e.time.timestamp_nanos_opt().unwrap_or_default() < since {
                    return None;
                }
                let mut line = Vec::new();
                if opts.timestamps {
                    line.extend_from_slice(
                        e.time
                            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
                            .as_bytes(),
                    );
                    line.push(b' ');
                }
                line.extend_from_slice(&e.line);
                Some(Ok(mux_frame(stream, &line)))
            });
            futures::future::ready(frame)
        });
        Ok(Reply::Stream(stream.boxed()))
    }
}

/// Docker's name of a task's container (`web.1.<task id>`), else its ID.
fn name_of(st: &ContainerState) -> &str {
    st.labels
        .get("com.docker.swarm.task.name")
        .map_or(st.id.as_str(), String::as_str)
}

fn state_word(s: Status) -> &'static str {
    match s {
        Status::Created => "created",
        Status::Running => "running",
        Status::Exited => "exited",
    }
}

/// `docker ps`'s STATUS: `Up 5 minutes`, `Exited (137) 2 seconds ago`, `Created`.
fn status_line(st: &ContainerState, now: DateTime<Utc>) -> String {
    match st.status {
        Status::Running => format!(
            "Up {}",
            human_duration(since(now, st.started_at.unwrap_or(now)))
        ),
        Status::Exited => match &st.exit {
            Some(e) => format!(
                "Exited ({}) {} ago",
                e.code,
                human_duration(since(now, e.finished_at))
            ),
            None => "Exited".into(),
        },
        Status::Created => "Created".into(),
    }
}
