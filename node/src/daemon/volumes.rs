//! The node's named volumes through the Engine API, as dockerd answers `docker volume`:
//! `GET /volumes`, `GET /volumes/{name}`, `POST /volumes/create`, `DELETE
//! /volumes/{name}`, `POST /volumes/prune`. The store and its lock are the runtime's
//! (`swarm_runtime::volume`); which containers use a volume comes from the runtime's
//! container states. Nothing goes through the manager: volumes are local, as Docker's.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use swarm_runtime::volume::{Volume, Volumes, ANONYMOUS_LABEL, LOCAL_DRIVER};
use swarm_runtime::Error as RtError;

use super::Node;
use crate::api::filters::{label_matches, Filters};
use crate::api::{ApiError, Reply, VolumeRequest};

impl Node {
    pub(super) async fn volume(&self, req: VolumeRequest) -> Result<Reply, ApiError> {
        match req {
            VolumeRequest::List { filters } => self.volume_list(&filters).await,
            VolumeRequest::Inspect { name } => {
                let v = self.volumes.get(&name).map_err(volume_error)?;
                Ok(Reply::Json(200, volume_json(&v)))
            }
            VolumeRequest::Create { body } => self.volume_create(&body).await,
            VolumeRequest::Remove { name, force } => {
                self.volumes
                    .remove(self.rt.as_ref(), &name, force)
                    .await
                    .map_err(volume_error)?;
                Ok(Reply::Empty(204))
            }
            VolumeRequest::Prune {
                filters,
                anonymous_only,
            } => self.volume_prune(&filters, anonymous_only).await,
        }
    }

    /// Filters `name` (a substring, as moby's regexp match of a plain name), `driver`,
    /// `label` (`k` or `k=v`, all must match), `dangling` (no container mounts it).
    async fn volume_list(&self, filters: &Filters) -> Result<Reply, ApiError> {
        filters.validate(&["name", "driver", "label", "dangling"])?;
        let dangling = match filters.get("dangling").and_then(|v| v.first()) {
            None => None,
            Some(v) => Some(match v.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(ApiError::invalid(format!("invalid filter 'dangling={v}'"))),
            }),
        };
        let vols = self.volumes.list().map_err(volume_error)?;
        let states = match dangling {
            Some(_) => self
                .rt
                .list()
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?,
            None => Vec::new(),
        };
        let out: Vec<Value> = vols
            .iter()
            .filter(|v| filters.matches("name", |x| v.name.contains(x)))
            .filter(|_| filters.matches("driver", |x| x == LOCAL_DRIVER))
            .filter(|v| {
                filters
                    .get("label")
                    .is_none_or(|ls| ls.iter().all(|l| label_matches(&v.labels, l)))
            })
            .filter(|v| dangling.is_none_or(|d| Volumes::users(&states, &v.name).is_empty() == d))
            .map(volume_json)
            .collect();
        Ok(Reply::Json(
            200,
            json!({"Volumes": out, "Warnings": Value::Null}),
        ))
    }

    /// `POST /volumes/create`: 201 with the volume.
    async fn volume_create(&self, body: &Value) -> Result<Reply, ApiError> {
        let map = |k: &str| -> Result<BTreeMap<String, String>, ApiError> {
            match body.get(k) {
                None => Ok(BTreeMap::new()),
                Some(v) => serde_json::from_value(v.clone())
                    .map_err(|e| ApiError::invalid(format!("invalid {k}: {e}"))),
            }
        };
        let name = body.get("Name").and_then(Value::as_str);
        let driver = body.get("Driver").and_then(Value::as_str);
        let v = self
            .volumes
            .create(name, driver, map("Labels")?, map("DriverOpts")?)
            .await
            .map_err(volume_error)?;
        Ok(Reply::Json(201, volume_json(&v)))
    }

    /// `POST /volumes/prune`: unused volumes, only anonymous ones unless `all=true`
    /// (API 1.42 and later); `label` / `label!` filters as Docker's.
    async fn volume_prune(
        &self,
        filters: &Filters,
        anonymous_only: bool,
    ) -> Result<Reply, ApiError> {
        filters.validate(&["label", "label!", "all"])?;
        let all = match filters.get("all").and_then(|v| v.first()) {
            None => !anonymous_only,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(ApiError::invalid(format!("invalid filter 'all={v}'"))),
            },
        };
        let labels = filters.get("label").unwrap_or_default().to_vec();
        let not_labels = filters.get("label!").unwrap_or_default().to_vec();
        let keep = move |v: &Volume| {
            (!all && !v.labels.contains_key(ANONYMOUS_LABEL))
                || !labels.iter().all(|l| label_matches(&v.labels, l))
                || not_labels.iter().any(|l| label_matches(&v.labels, l))
        };
        let pruned = self
            .volumes
            .prune(self.rt.as_ref(), keep)
            .await
            .map_err(volume_error)?;
        Ok(Reply::Json(
            200,
            json!({"VolumesDeleted": pruned.names, "SpaceReclaimed": pruned.space}),
        ))
    }
}

/// moby's `volume.Volume`, as `docker volume inspect` prints it (null for no labels
/// or options, as dockerd answers).
fn volume_json(v: &Volume) -> Value {
    let map = |m: &BTreeMap<String, String>| {
        if m.is_empty() {
            Value::Null
        } else {
            json!(m)
        }
    };
    json!({
        "CreatedAt": v.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "Driver": LOCAL_DRIVER,
        "Labels": map(&v.labels),
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": map(&v.options),
        "Scope": "local",
    })
}

fn volume_error(e: RtError) -> ApiError {
    match e {
        RtError::NoSuchVolume(_) => ApiError::NotFound(e.to_string()),
        RtError::VolumeInUse { .. } => ApiError::Conflict(e.to_string()),
        RtError::InvalidVolume(_) => ApiError::InvalidArgument(e.to_string()),
        e => ApiError::internal(e.to_string()),
    }
}
