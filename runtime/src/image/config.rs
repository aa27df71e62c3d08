//! The image config blob (OCI `application/vnd.oci.image.config.v1+json` or Docker's
//! `application/vnd.docker.container.image.v1+json`): what a container runs with
//! ([`ImageConfig`]) and the layers' diff_ids. Docker's field names, Go's nanosecond
//! durations for the health check.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{HealthConfig, ImageConfig};
use crate::{Error, Result};

/// The parts of the config blob this runtime reads.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ConfigFile {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub rootfs: Option<RootFs>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// Docker's `config` section; `null` fields are common in the wild, hence `Option`s.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// Docker's `Healthcheck`: durations are Go `time.Duration`s, i.e. nanoseconds.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
}

fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl ConfigFile {
    pub fn parse(bytes: &[u8]) -> Result<ConfigFile> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::Other(format!("invalid image config: {e}")))
    }

    pub fn diff_ids(&self) -> &[String] {
        self.rootfs.as_ref().map(|r| &r.diff_ids[..]).unwrap_or(&[])
    }

    /// The runtime's view of the `config` section.
    pub fn image_config(&self) -> ImageConfig {
        let Some(c) = &self.config else {
            return ImageConfig::default();
        };
        ImageConfig {
            entrypoint: c.entrypoint.clone().unwrap_or_default(),
            cmd: c.cmd.clone().unwrap_or_default(),
            env: c.env.clone().unwrap_or_default(),
            working_dir: c.working_dir.clone().unwrap_or_default(),
            user: c.user.clone().unwrap_or_default(),
            stop_signal: c.stop_signal.clone().filter(|s| !s.is_empty()),
            healthcheck: c.healthcheck.as_ref().and_then(|h| {
                let test = h.test.clone().unwrap_or_default();
                // An empty test means "inherit", which for an image is "none set".
                (!test.is_empty()).then(|| HealthConfig {
                    test,
                    interval: Duration::from_nanos(h.interval),
                    timeout: Duration::from_nanos(h.timeout),
                    start_period: Duration::from_nanos(h.start_period),
                    retries: h.retries,
                })
            }),
            labels: c.labels.clone().unwrap_or_default(),
        }
    }
}

/// The Docker-shaped `config` section for an [`ImageConfig`]: what image builders
/// (and the test fixtures) write.
pub fn container_config(cfg: &ImageConfig) -> ContainerConfig {
    let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let some_str = |s: &String| (!s.is_empty()).then(|| s.clone());
    ContainerConfig {
        entrypoint: some(&cfg.entrypoint),
        cmd: some(&cfg.cmd),
        env: some(&cfg.env),
        working_dir: some_str(&cfg.working_dir),
        user: some_str(&cfg.user),
        stop_signal: cfg.stop_signal.clone(),
        healthcheck: cfg.healthcheck.as_ref().map(|h| Healthcheck {
            test: Some(h.test.clone()),
            interval: h.interval.as_nanos() as u64,
            timeout: h.timeout.as_nanos() as u64,
            start_period: h.start_period.as_nanos() as u64,
            retries: h.retries,
        }),
        labels: (!cfg.labels.is_empty()).then(|| cfg.labels.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_config_with_healthcheck() {
        let json = br#"{
          "architecture": "amd64", "os": "linux",
          "config": {
            "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"],
            "Env": ["PATH=/bin", "A=1"], "WorkingDir": "/srv", "User": "app:app",
            "StopSignal": "SIGQUIT", "Labels": {"a": "b"},
            "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 1500000000,
                            "Timeout": 2000000000, "StartPeriod": 3000000000, "Retries": 4}
          },
          "rootfs": {"type": "layers", "diff_ids": ["sha256:aa", "sha256:bb"]}
        }"#;
        let f = ConfigFile::parse(json).unwrap();
        assert_eq!(f.diff_ids(), ["sha256:aa", "sha256:bb"]);
        let c = f.image_config();
        assert_eq!(c.entrypoint, ["/bin/sh", "-c"]);
        assert_eq!(c.cmd, ["echo hi"]);
        assert_eq!(c.env, ["PATH=/bin", "A=1"]);
        assert_eq!(c.working_dir, "/srv");
        assert_eq!(c.user, "app:app");
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(c.labels.get("a").map(String::as_str), Some("b"));
        let h = c.healthcheck.unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "true"]);
        assert_eq!(h.interval, Duration::from_millis(1500));
        assert_eq!(h.timeout, Duration::from_secs(2));
        assert_eq!(h.start_period, Duration::from_secs(3));
        assert_eq!(h.retries, 4);
    }

    #[test]
    fn tolerates_nulls_and_missing_sections() {
        let f = ConfigFile::parse(br#"{"config": {"Cmd": null, "Env": null, "Labels": null, "Healthcheck": {"Test": []}}}"#)
            .unwrap();
        assert_eq!(f.image_config(), ImageConfig::default());
        assert!(f.diff_ids().is_empty());
        let f = ConfigFile::parse(b"{}").unwrap();
        assert_eq!(f.image_config(), ImageConfig::default());
        assert!(ConfigFile::parse(b"[1]").is_err());
    }

    #[test]
    fn round_trips_through_container_config() {
        let cfg = ImageConfig {
            entrypoint: vec!["/bin/busybox".into()],
            cmd: vec!["sleep".into(), "1".into()],
            env: vec!["X=1".into()],
            working_dir: "/tmp".into(),
            user: "1000".into(),
            stop_signal: Some("SIGUSR1".into()),
            healthcheck: Some(HealthConfig {
                test: vec!["CMD".into(), "true".into()],
                interval: Duration::from_secs(1),
                timeout: Duration::from_millis(500),
                start_period: Duration::ZERO,
                retries: 2,
            }),
            labels: [("k".to_string(), "v".to_string())].into(),
        };
        let file = ConfigFile {
            config: Some(container_config(&cfg)),
            ..Default::default()
        };
        let bytes = serde_json::to_vec(&file).unwrap();
        assert_eq!(ConfigFile::parse(&bytes).unwrap().image_config(), cfg);
    }
}
