//! Docker's convergence progress, as pure state machines.
//!
//! ```text
//!   (service, up-to-date tasks, active nodes) ──Updater::update──> [Event] + converged?
//!   [Event] ──Display::write (tty or not)──> bytes for stdout
//! ```
//!
//! `Updater` follows docker/cli `service/progress/progress.go` (replicated: one bar per
//! slot; global: one per node); `Display` follows moby's `jsonmessage` rendering: on a
//! terminal each ID owns a line that is redrawn in place with cursor moves; elsewhere
//! only lines without a bar are printed, one per event.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use crate::UserError;

/// One progress message (`jsonmessage` with an ID and an action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub action: String,
    /// Bar position out of `total`; 0/0 means no bar.
    pub current: i64,
    pub total: i64,
}

impl Event {
    pub fn text(id: &str, action: impl Into<String>) -> Event {
        Event {
            id: id.to_string(),
            action: action.into(),
            current: 0,
            total: 0,
        }
    }
}

/// Task states in the order Docker numbers them; 0 for states it does not show.
pub fn state_number(state: &str) -> i64 {
    match state {
        "new" => 1,
        "allocated" => 2,
        "pending" => 3,
        "assigned" => 4,
        "accepted" => 5,
        "preparing" => 6,
        "ready" => 7,
        "starting" => 8,
        "running" => 9,
        "complete" => 10,
        "shutdown" => 11,
        "failed" => 12,
        "rejected" => 13,
        _ => 0,
    }
}

const MAX_PROGRESS: i64 = 9;
const MAX_PROGRESS_BARS: u64 = 20;
/// The longest state name shown ("preparing", "allocated").
const LONGEST_STATE: usize = 9;

fn terminal(state: &str) -> bool {
    state_number(state) > state_number("running")
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

/// Docker's `truncError`: one line, at most 75 bytes.
pub fn trunc_error(e: &str) -> String {
    let e = e.replace('\n', " ");
    if e.len() > 75 {
        let mut cut = 74;
        while !e.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}…", &e[..cut])
    } else {
        e
    }
}

fn overall(n: u64, d: u64, rollback: bool) -> Event {
    if rollback {
        Event::text(
            "overall progress",
            format!("rolling back update: {n} out of {d} tasks"),
        )
    } else {
        Event::text("overall progress", format!("{n} out of {d} tasks"))
    }
}

fn task_event(id: String, task: &Value) -> Option<Event> {
    let err = s(&task["Status"], "Err");
    if !err.is_empty() {
        return Some(Event::text(&id, trunc_error(err)));
    }
    let state = s(&task["Status"], "State");
    if !terminal(s(task, "DesiredState")) && !terminal(state) {
        return Some(Event {
            id,
            action: format!("{state:<LONGEST_STATE$}"),
            current: state_number(state),
            total: MAX_PROGRESS,
        });
    }
    None
}

/// Among tasks for the same key, keep the lowest desired state, then lowest state.
fn better(existing: &Value, task: &Value) -> bool {
    let (ed, td) = (
        state_number(s(existing, "DesiredState")),
        state_number(s(task, "DesiredState")),
    );
    if ed < td {
        return false;
    }
    !(ed == td
        && state_number(s(&existing["Status"], "State"))
            <= state_number(s(&task["Status"], "State")))
}

/// Progress of one service's convergence.
#[derive(Debug, Default)]
pub struct Updater {
    initialized: bool,
    done: bool,
    slot_map: HashMap<u64, u64>,
}

impl Updater {
    /// One poll: returns the events to show and whether the service has converged. A
    /// mode it cannot follow is docker's `unrecognized service mode`, never a wait
    /// without end (a replicated mode without `Replicas` included, as docker/cli's
    /// `initializeUpdater`).
    pub fn update(
        &mut self,
        service: &Value,
        tasks: &[Value],
        active_nodes: &HashSet<String>,
        rollback: bool,
    ) -> Result<(Vec<Event>, bool), UserError> {
        let mode = &service["Spec"]["Mode"];
        if let Some(replicas) = mode.get("Replicated").and_then(|r| r["Replicas"].as_u64()) {
            Ok(self.replicated(replicas, tasks, active_nodes, rollback))
        } else if mode.get("Global").is_some() {
            Ok(self.global(tasks, active_nodes, rollback))
        } else if mode.get("ReplicatedJob").is_some() || mode.get("GlobalJob").is_some() {
            // Jobs: converged once every up-to-date task completed.
            let done =
                !tasks.is_empty() && tasks.iter().all(|t| s(&t["Status"], "State") == "complete");
            Ok((vec![], done))
        } else {
            Err(UserError("unrecognized service mode".into()))
        }
    }

    fn replicated(
        &mut self,
        replicas: u64,
        tasks: &[Value],
        active: &HashSet<String>,
        rollback: bool,
    ) -> (Vec<Event>, bool) {
        let mut ev = Vec::new();
        if !self.initialized {
            ev.push(overall(0, replicas, rollback));
            if replicas <= MAX_PROGRESS_BARS {
                for i in 1..=replicas {
                    ev.push(Event::text(&format!("{i}/{replicas}"), " "));
                }
            }
            self.initialized = true;
        }
        let mut by_slot: BTreeMap<u64, &Value> = BTreeMap::new();
        for t in tasks {
            if state_number(s(t, "DesiredState")) == 0
                || state_number(s(&t["Status"], "State")) == 0
            {
                continue;
            }
            let slot = t["Slot"].as_u64().unwrap_or(0);
            if let Some(e) = by_slot.get(&slot) {
                if !better(e, t) {
                    continue;
                }
            }
            let node = s(t, "NodeID");
            if !node.is_empty() && !active.contains(node) {
                continue;
            }
            by_slot.insert(slot, t);
        }
        if self.done
            && by_slot
                .values()
                .any(|t| s(&t["Status"], "State") != "running")
        {
            self.done = false;
        }
        let mut running = 0;
        for (slot, t) in &by_slot {
            let next = self.slot_map.len() as u64 + 1;
            let mapped = *self.slot_map.entry(*slot).or_insert(next);
            if !terminal(s(t, "DesiredState")) && s(&t["Status"], "State") == "running" {
                running += 1;
            }
            if self.done || replicas > MAX_PROGRESS_BARS || mapped > replicas {
                continue;
            }
            ev.extend(task_event(format!("{mapped}/{replicas}"), t));
        }
        if !self.done {
            ev.push(overall(running, replicas, rollback));
            if running == replicas {
                self.done = true;
            }
        }
        (ev, running == replicas)
    }

    fn global(
        &mut self,
        tasks: &[Value],
        active: &HashSet<String>,
        rollback: bool,
    ) -> (Vec<Event>, bool) {
        let mut ev = Vec::new();
        let mut by_node: BTreeMap<String, &Value> = BTreeMap::new();
        for t in tasks {
            if state_number(s(t, "DesiredState")) == 0
                || state_number(s(&t["Status"], "State")) == 0
            {
                continue;
            }
            let node = s(t, "NodeID").to_string();
            if let Some(e) = by_node.get(&node) {
                if !better(e, t) {
                    continue;
                }
            }
            by_node.insert(node, t);
        }
        let count = by_node.len() as u64;
        if !self.initialized {
            if count == 0 {
                return (
                    vec![Event::text("overall progress", "waiting for new tasks")],
                    false,
                );
            }
            ev.push(overall(0, count, rollback));
            self.initialized = true;
        }
        if self.done
            && by_node
                .values()
                .any(|t| s(&t["Status"], "State") != "running")
        {
            self.done = false;
        }
        let mut running = 0;
        for (node, t) in &by_node {
            if !active.contains(node) {
                continue;
            }
            if !terminal(s(t, "DesiredState")) && s(&t["Status"], "State") == "running" {
                running += 1;
            }
            if self.done || count > MAX_PROGRESS_BARS {
                continue;
            }
            ev.extend(task_event(node.chars().take(12).collect(), t));
        }
        if !self.done {
            ev.push(overall(running, count, rollback));
            if running == count {
                self.done = true;
            }
        }
        (ev, running == count)
    }
}

/// moby's `JSONProgress.String` for the bars we draw (counts hidden, no timing).
pub fn bar(current: i64, total: i64, width: usize) -> String {
    if current <= 0 && total <= 0 {
        return String::new();
    }
    if width <= 110 {
        return String::new();
    }
    let pct = ((current as f64 / total as f64 * 100.0) as i64 / 2).min(50) as usize;
    format!("[{}>{}] ", "=".repeat(pct), " ".repeat(50 - pct))
}

/// Renders events as `jsonmessage.DisplayJSONMessagesStream` does.
#[derive(Debug)]
pub struct Display {
    tty: bool,
    width: usize,
    lines: HashMap<String, usize>,
}

impl Display {
    pub fn new(tty: bool, width: usize) -> Display {
        Display {
            tty,
            width,
            lines: HashMap::new(),
        }
    }

    /// A progress event with an ID.
    pub fn write(&mut self, e: &Event) -> String {
        let mut o = String::new();
        let has_bar = e.current > 0 || e.total > 0;
        if !self.tty {
            // Without a terminal, bars are dropped and the rest printed line by line.
            if has_bar {
                return o;
            }
            return format!("{}: {}\n", e.id, e.action);
        }
        let n = self.lines.len();
        let line = *self.lines.entry(e.id.clone()).or_insert_with(|| {
            o.push('\n');
            n
        });
        let diff = self.lines.len() - line;
        o += &format!(
            "\x1b[{diff}A\x1b[2K\r{}: {} {}\r\x1b[{diff}B",
            e.id,
            e.action,
            bar(e.current, e.total, self.width)
        );
        o
    }

    /// A message without an ID (`job complete`): starts a fresh block of lines.
    pub fn message(&mut self, text: &str) -> String {
        self.lines.clear();
        format!("{text}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(slot: u64, state: &str) -> Value {
        json!({"Slot": slot, "NodeID": "n1", "DesiredState": "running", "Status": {"State": state}})
    }

    fn replicated(n: u64) -> Value {
        json!({"Spec": {"Mode": {"Replicated": {"Replicas": n}}}})
    }

    fn nodes() -> HashSet<String> {
        HashSet::from(["n1".to_string()])
    }

    #[test]
    fn a_mode_it_cannot_follow_is_an_error_not_a_wait() {
        let mut u = Updater::default();
        for mode in [json!({"Replicated": {}}), json!({}), json!({"Frob": {}})] {
            let e = u.update(&json!({"Spec": {"Mode": mode}}), &[], &nodes(), false);
            assert_eq!(e.unwrap_err().0, "unrecognized service mode");
        }
        let job = json!({"Spec": {"Mode": {"ReplicatedJob": {"MaxConcurrent": 1}}}});
        let (_, done) = u
            .update(&job, &[task(1, "complete")], &nodes(), false)
            .unwrap();
        assert!(done);
    }

    #[test]
    fn replicated_non_tty_like_docker() {
        let mut u = Updater::default();
        let mut d = Display::new(false, 0);
        let mut out = String::new();
        let (ev, done) = u.update(&replicated(2), &[], &nodes(), false).unwrap();
        assert!(!done);
        ev.iter().for_each(|e| out += &d.write(e));
        let (ev, _) = u
            .update(
                &replicated(2),
                &[task(1, "running"), task(2, "starting")],
                &nodes(),
                false,
            )
            .unwrap();
        ev.iter().for_each(|e| out += &d.write(e));
        let (ev, done) = u
            .update(
                &replicated(2),
                &[task(1, "running"), task(2, "running")],
                &nodes(),
                false,
            )
            .unwrap();
        assert!(done);
        ev.iter().for_each(|e| out += &d.write(e));
        assert_eq!(
            out,
            "overall progress: 0 out of 2 tasks\n1/2:  \n2/2:  \noverall progress: 0 out of 2 tasks\n\
             overall progress: 1 out of 2 tasks\noverall progress: 2 out of 2 tasks\n"
        );
        // Once done, nothing more until something changes.
        let (ev, done) = u
            .update(
                &replicated(2),
                &[task(1, "running"), task(2, "running")],
                &nodes(),
                false,
            )
            .unwrap();
        assert!(done && ev.is_empty());
    }

    #[test]
    fn tty_redraws_in_place_like_docker() {
        let mut d = Display::new(true, 120);
        let mut out = String::new();
        out += &d.write(&Event::text("overall progress", "0 out of 4 tasks"));
        for i in 1..=4 {
            out += &d.write(&Event::text(&format!("{i}/4"), " "));
        }
        out += &d.write(&Event {
            id: "1/4".into(),
            action: format!("{:<9}", "running"),
            current: 9,
            total: 9,
        });
        out += &d.write(&Event {
            id: "3/4".into(),
            action: format!("{:<9}", "new"),
            current: 1,
            total: 9,
        });
        // The bytes docker wrote (recorded with `script`, ^[ = ESC, ^M = CR; the tty
        // turned each \n into \r\n).
        let recorded = include_str!("../../tests/fixtures/scale_tty.txt");
        let ours = out
            .replace('\x1b', "^[")
            .replace('\r', "^M")
            .replace('\n', "^M\n");
        let start = recorded
            .find("^M\n^[[1A^[[2K^Moverall progress: 0 out of 4 tasks")
            .unwrap();
        assert!(recorded[start..].starts_with(&ours[..ours.find("^[[4A^[[2K^M1/4").unwrap()]));
        assert!(ours.contains("^[[4A^[[2K^M1/4: running   [==================================================>] ^M^[[4B"));
        assert!(ours.contains("^[[2A^[[2K^M3/4: new       [=====>                                             ] ^M^[[2B"));
        assert!(recorded.contains("^[[4A^[[2K^M1/4: running   [==================================================>] ^M^[[4B"));
        assert!(recorded.contains("^[[2A^[[2K^M3/4: new       [=====>                                             ] ^M^[[2B"));
    }

    #[test]
    fn errors_and_rollback_wording() {
        let mut u = Updater::default();
        let t = json!({"Slot": 1, "NodeID": "n1", "DesiredState": "running",
                       "Status": {"State": "rejected", "Err": "No such image: x"}});
        let (ev, done) = u.update(&replicated(1), &[t], &nodes(), true).unwrap();
        assert!(!done);
        assert_eq!(
            ev[0],
            Event::text("overall progress", "rolling back update: 0 out of 1 tasks")
        );
        assert_eq!(ev[2], Event::text("1/1", "No such image: x"));
        assert_eq!(trunc_error(&"x".repeat(80)).chars().count(), 75);
    }

    #[test]
    fn global_waits_for_tasks() {
        let mut u = Updater::default();
        let g = json!({"Spec": {"Mode": {"Global": {}}}});
        let (ev, _) = u.update(&g, &[], &nodes(), false).unwrap();
        assert_eq!(
            ev,
            vec![Event::text("overall progress", "waiting for new tasks")]
        );
        let (ev, done) = u
            .update(&g, &[task(0, "running")], &nodes(), false)
            .unwrap();
        assert!(done);
        assert_eq!(
            ev.last().unwrap(),
            &Event::text("overall progress", "1 out of 1 tasks")
        );
    }
}
