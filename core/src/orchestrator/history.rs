//! Task history: how many ended tasks each slot keeps (what `service ps` shows under
//! `\_`), and deleting the rest.
//!
//! ```text
//! slot 1: [failed] [failed] [failed] [failed] [failed] [running]   limit 5
//!          ^ deleted (oldest first, only tasks that no longer run)
//! ```
//!
//! The limit is the swarm's `Orchestration.TaskHistoryRetentionLimit` (Docker's default
//! 5, counting the live task); a negative limit keeps everything. A restart policy with
//! `MaxAttempts` keeps `MaxAttempts + 1` instead, so its restarts can be counted.

use super::restart::is_stopped;
use super::slot::Working;
use super::task::is_live;
use super::view::ClusterView;
use crate::model::Service;

/// Docker's default `TaskHistoryRetentionLimit`.
pub const DEFAULT_RETENTION: i64 = 5;

/// How many tasks a slot of this service keeps, or `None` for all.
pub fn retention(view: &dyn ClusterView, service: &Service) -> Option<usize> {
    let max_attempts = service
        .spec
        .task_template
        .restart_policy
        .as_ref()
        .and_then(|p| p.max_attempts)
        .unwrap_or(0);
    let limit = if max_attempts > 0 {
        i64::try_from(max_attempts)
            .unwrap_or(i64::MAX)
            .saturating_add(1)
    } else {
        view.swarm()
            .and_then(|s| s.cluster.spec.orchestration.task_history_retention_limit)
            .unwrap_or(DEFAULT_RETENTION)
    };
    usize::try_from(limit).ok()
}

/// Step 5: delete each slot's oldest stopped tasks beyond the limit.
pub fn reap(ws: &mut Working, view: &dyn ClusterView, limit: Option<usize>) {
    let Some(limit) = limit else {
        return;
    };
    for slot in ws.slots() {
        let tasks = ws.slot(&slot);
        let mut excess = tasks.len().saturating_sub(limit);
        let mut doomed = Vec::new();
        for t in &tasks {
            if excess == 0 {
                break;
            }
            if !is_live(t) && is_stopped(view, t) {
                doomed.push(t.id().to_string());
                excess -= 1;
            }
        }
        for id in doomed {
            ws.delete(&id);
        }
    }
}
