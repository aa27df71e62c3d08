//! Health checks as Docker runs them: a probe (`CMD` or `CMD-SHELL`) executed inside the
//! container every interval, with a timeout; `retries` consecutive failures make it
//! unhealthy; failures during the start period do not count, a success does.
//!
//! ```text
//!  HealthMonitor task ──every interval──▶ rt.exec(probe, timeout) ──▶ HealthStatus::record
//!        │                                                                 (pure)
//!        └──▶ watch::Receiver<HealthStatus>  (the agent reports it with the task)
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;

use super::{ContainerRuntime, ExecSpec};
use crate::image::HealthConfig;

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_RETRIES: u32 = 3;
/// Docker keeps the last 5 probe results.
const MAX_LOG: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub exit_code: i32,
    pub output: String,
}

/// Docker's `State.Health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthStatus {
    pub status: Health,
    pub failing_streak: u32,
    pub log: VecDeque<Probe>,
}

/// The probe command to exec: `None` when health checking is disabled.
pub fn probe_args(cfg: &HealthConfig) -> Option<Vec<String>> {
    match cfg.test.first().map(String::as_str) {
        Some("CMD") if cfg.test.len() > 1 => Some(cfg.test[1..].to_vec()),
        Some("CMD-SHELL") if cfg.test.len() > 1 => {
            Some(vec!["/bin/sh".into(), "-c".into(), cfg.test[1..].join(" ")])
        }
        _ => None,
    }
}

impl HealthStatus {
    pub fn new() -> Self {
        HealthStatus {
            status: Health::Starting,
            failing_streak: 0,
            log: VecDeque::new(),
        }
    }

    /// Fold one probe result in. `in_start_period`: the container started less than
    /// the start period ago, so a failure does not count.
    pub fn record(&mut self, probe: Probe, retries: u32, in_start_period: bool) {
        let ok = probe.exit_code == 0;
        if self.log.len() == MAX_LOG {
            self.log.pop_front();
        }
        self.log.push_back(probe);
        if ok {
            self.status = Health::Healthy;
            self.failing_streak = 0;
        } else if !(in_start_period && self.status == Health::Starting) {
            self.failing_streak += 1;
            if self.failing_streak >= retries.max(1) {
                self.status = Health::Unhealthy;
            }
        }
    }
}

impl Default for HealthStatus {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs a container's health check until dropped or the container is gone.
pub struct HealthMonitor {
    rx: watch::Receiver<HealthStatus>,
    task: tokio::task::JoinHandle<()>,
}

impl HealthMonitor {
    /// Start probing `id`. With a disabled check (`NONE` or no test) the status stays
    /// `starting` forever and nothing runs; callers check [`probe_args`] first.
    pub fn spawn(rt: Arc<dyn ContainerRuntime>, id: String, cfg: HealthConfig) -> HealthMonitor {
        let (tx, rx) = watch::channel(HealthStatus::new());
        let task = tokio::spawn(async move {
            let Some(args) = probe_args(&cfg) else { return };
            let interval = nonzero(cfg.interval, DEFAULT_INTERVAL);
            let timeout = nonzero(cfg.timeout, DEFAULT_TIMEOUT);
            let retries = if cfg.retries == 0 {
                DEFAULT_RETRIES
            } else {
                cfg.retries
            };
            let started = tokio::time::Instant::now();
            let mut status = HealthStatus::new();
            loop {
                tokio::time::sleep(interval).await;
                let start = Utc::now();
                let exec = ExecSpec {
                    args: args.clone(),
                    timeout: Some(timeout),
                    ..Default::default()
                };
                let probe = match rt.exec(&id, &exec).await {
                    Ok(out) => Probe {
                        start,
                        end: Utc::now(),
                        // Docker: a probe that timed out counts as a failure (exit -1).
                        exit_code: if out.timed_out { -1 } else { out.exit_code },
                        output: if out.timed_out {
                            format!("Health check exceeded timeout ({timeout:?})")
                        } else {
                            String::from_utf8_lossy(&out.output).into_owned()
                        },
                    },
                    Err(_) => match rt.state(&id).await {
                        Ok(s) if s.status == super::Status::Running => Probe {
                            start,
                            end: Utc::now(),
                            exit_code: -1,
                            output: "health check could not be run".into(),
                        },
                        // Gone or exited: nothing left to watch.
                        _ => return,
                    },
                };
                let in_start = started.elapsed() < cfg.start_period;
                status.record(probe, retries, in_start);
                if tx.send(status.clone()).is_err() {
                    return;
                }
            }
        });
        HealthMonitor { rx, task }
    }

    pub fn watch(&self) -> watch::Receiver<HealthStatus> {
        self.rx.clone()
    }

    pub fn status(&self) -> HealthStatus {
        self.rx.borrow().clone()
    }
}

impl Drop for HealthMonitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn nonzero(d: Duration, default: Duration) -> Duration {
    if d.is_zero() {
        default
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(code: i32) -> Probe {
        let now = Utc::now();
        Probe {
            start: now,
            end: now,
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn probe_args_follow_dockers_forms() {
        let cfg = |t: &[&str]| HealthConfig {
            test: t.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(
            probe_args(&cfg(&["CMD", "true"])),
            Some(vec!["true".into()])
        );
        assert_eq!(
            probe_args(&cfg(&["CMD-SHELL", "exit 1"])),
            Some(vec!["/bin/sh".into(), "-c".into(), "exit 1".into()])
        );
        assert_eq!(probe_args(&cfg(&["NONE"])), None);
        assert_eq!(probe_args(&cfg(&[])), None);
    }

    #[test]
    fn retries_consecutive_failures_make_it_unhealthy() {
        let mut s = HealthStatus::new();
        s.record(probe(1), 3, false);
        s.record(probe(1), 3, false);
        assert_eq!((s.status, s.failing_streak), (Health::Starting, 2));
        s.record(probe(0), 3, false);
        assert_eq!((s.status, s.failing_streak), (Health::Healthy, 0));
        for _ in 0..3 {
            s.record(probe(1), 3, false);
        }
        assert_eq!((s.status, s.failing_streak), (Health::Unhealthy, 3));
        s.record(probe(0), 3, false);
        assert_eq!(s.status, Health::Healthy);
    }

    #[test]
    fn start_period_failures_do_not_count_but_success_does() {
        let mut s = HealthStatus::new();
        for _ in 0..10 {
            s.record(probe(1), 1, true);
        }
        assert_eq!((s.status, s.failing_streak), (Health::Starting, 0));
        s.record(probe(0), 1, true);
        assert_eq!(s.status, Health::Healthy);
        s.record(probe(1), 1, true);
        assert_eq!(
            s.status,
            Health::Unhealthy,
            "after the first success the period is over"
        );
    }

    #[test]
    fn log_keeps_the_last_five() {
        let mut s = HealthStatus::new();
        for code in 0..8 {
            s.record(probe(code), 3, false);
        }
        let codes: Vec<_> = s.log.iter().map(|p| p.exit_code).collect();
        assert_eq!(codes, [3, 4, 5, 6, 7]);
    }
}
