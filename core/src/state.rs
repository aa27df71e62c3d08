//! The task state machine: Docker's task states in swarmkit's order, and the rule that a
//! task only ever moves forward.
//!
//! ```text
//! new -> pending -> assigned -> accepted -> preparing -> ready -> starting -> running
//!   (manager: orchestrator,      (agent: controller drives the container)        |
//!    allocator, scheduler)                                                        v
//!                          terminal: complete | shutdown | failed | rejected | remove | orphaned
//! ```
//!
//! The state is a Lamport clock (swarmkit's words): of two observations the greater one
//! wins, so any state may jump straight to a later one (pending -> rejected, running ->
//! failed), never back. `Desired state` uses the same values (running, shutdown, remove).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Docker's task states, ordered as swarmkit numbers them (`NEW = 0` ... `ORPHANED = 832`).
/// `allocated` is in Docker's list but no longer in swarmkit; it keeps its old place
/// between new and pending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskState {
    #[default]
    New,
    Allocated,
    Pending,
    Assigned,
    Accepted,
    Preparing,
    Ready,
    Starting,
    Running,
    Complete,
    Shutdown,
    Failed,
    Rejected,
    Remove,
    Orphaned,
}

impl TaskState {
    /// Every state, in order.
    pub const ALL: [TaskState; 15] = [
        TaskState::New,
        TaskState::Allocated,
        TaskState::Pending,
        TaskState::Assigned,
        TaskState::Accepted,
        TaskState::Preparing,
        TaskState::Ready,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Complete,
        TaskState::Shutdown,
        TaskState::Failed,
        TaskState::Rejected,
        TaskState::Remove,
        TaskState::Orphaned,
    ];

    /// Docker's JSON spelling (lowercase).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::New => "new",
            TaskState::Allocated => "allocated",
            TaskState::Pending => "pending",
            TaskState::Assigned => "assigned",
            TaskState::Accepted => "accepted",
            TaskState::Preparing => "preparing",
            TaskState::Ready => "ready",
            TaskState::Starting => "starting",
            TaskState::Running => "running",
            TaskState::Complete => "complete",
            TaskState::Shutdown => "shutdown",
            TaskState::Failed => "failed",
            TaskState::Rejected => "rejected",
            TaskState::Remove => "remove",
            TaskState::Orphaned => "orphaned",
        }
    }

    /// Parses Docker's spelling, ignoring case (`service ps --filter desired-state=Running`).
    pub fn parse(s: &str) -> Option<TaskState> {
        TaskState::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }

    /// As `service ps` shows it: `Running`, `Shutdown`, ...
    pub fn display_name(self) -> &'static str {
        match self {
            TaskState::New => "New",
            TaskState::Allocated => "Allocated",
            TaskState::Pending => "Pending",
            TaskState::Assigned => "Assigned",
            TaskState::Accepted => "Accepted",
            TaskState::Preparing => "Preparing",
            TaskState::Ready => "Ready",
            TaskState::Starting => "Starting",
            TaskState::Running => "Running",
            TaskState::Complete => "Complete",
            TaskState::Shutdown => "Shutdown",
            TaskState::Failed => "Failed",
            TaskState::Rejected => "Rejected",
            TaskState::Remove => "Remove",
            TaskState::Orphaned => "Orphaned",
        }
    }

    /// Complete, shutdown, failed, rejected, remove or orphaned: the task will not run
    /// (again). Its container may still need cleaning up.
    pub fn is_terminal(self) -> bool {
        self >= TaskState::Complete
    }

    /// Running or any state before it: the task holds (or will hold) its slot.
    pub fn is_running_or_earlier(self) -> bool {
        self <= TaskState::Running
    }

    /// Before running: not yet started on a node.
    pub fn is_before_running(self) -> bool {
        self < TaskState::Running
    }

    /// Assigned to a node and not terminal: the agent owns it.
    pub fn is_on_node(self) -> bool {
        self >= TaskState::Assigned && !self.is_terminal()
    }

    /// Ended because of an error (failed or rejected): what restart-on-failure reacts to.
    pub fn is_failure(self) -> bool {
        matches!(self, TaskState::Failed | TaskState::Rejected)
    }
}

/// Whether a task may move from `from` to `to`: strictly forward, never out of a
/// terminal state. (The store enforces only "never backwards", see `docs/model.md`.)
pub fn can_transition(from: TaskState, to: TaskState) -> bool {
    to > from && !from.is_terminal()
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TaskState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TaskState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(TaskState::New);
        }
        TaskState::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid task state: {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_dockers_list() {
        let names: Vec<_> = TaskState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names.join(" "),
            "new allocated pending assigned accepted preparing ready starting running \
             complete shutdown failed rejected remove orphaned"
        );
        for pair in TaskState::ALL.windows(2) {
            assert!(pair[0] < pair[1]);
        }
    }

    #[test]
    fn serializes_lowercase_and_parses_back() {
        for s in TaskState::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<TaskState>(&json).unwrap(), s);
        }
        assert_eq!(TaskState::parse("Running"), Some(TaskState::Running));
        assert_eq!(TaskState::parse("nope"), None);
        assert!(serde_json::from_str::<TaskState>("\"nope\"").is_err());
    }

    #[test]
    fn transitions_only_move_forward_and_terminal_is_final() {
        use TaskState::*;
        assert!(can_transition(New, Pending));
        assert!(can_transition(Pending, Rejected));
        assert!(can_transition(Assigned, Running));
        assert!(can_transition(Running, Failed));
        assert!(can_transition(Running, Complete));
        assert!(!can_transition(Running, Running));
        assert!(!can_transition(Running, Starting));
        assert!(!can_transition(Failed, Orphaned));
        assert!(!can_transition(Complete, Failed));
        assert!(!can_transition(Shutdown, Running));
        for from in TaskState::ALL {
            for to in TaskState::ALL {
                if can_transition(from, to) {
                    assert!(to > from && !from.is_terminal());
                }
            }
        }
    }

    #[test]
    fn classification() {
        use TaskState::*;
        let terminal: Vec<_> = TaskState::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            vec![Complete, Shutdown, Failed, Rejected, Remove, Orphaned]
        );
        assert!(Running.is_running_or_earlier());
        assert!(!Complete.is_running_or_earlier());
        assert!(Starting.is_before_running());
        assert!(Assigned.is_on_node() && Running.is_on_node() && !Pending.is_on_node());
        assert!(Failed.is_failure() && Rejected.is_failure() && !Shutdown.is_failure());
    }
}
