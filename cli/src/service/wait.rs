//! Waiting for a service to converge after create/update/scale/rollback, as
//! docker/cli's `ServiceProgress` does: poll, feed the updater, print, and stop once
//! the tasks stayed running for `UpdateConfig.Monitor` (5 s by default).
//!
//! ```text
//!   every 200 ms: GET /services/{id} ─┐
//!                 GET /tasks?filters={"service":{id},"_up-to-date":{"true"}}
//!                 GET /nodes ─────────┴─> Updater ─> Display ─> stdout
//! ```

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::progress::{Display, Event, Updater};
use crate::client::{filters, Client};
use crate::UserError;

const POLL: Duration = Duration::from_millis(200);
const DEFAULT_MONITOR: Duration = Duration::from_secs(5);

/// The terminal's width, or 0 when stdout is not a terminal.
fn terminal_width() -> usize {
    rustix::termios::tcgetwinsize(std::io::stdout())
        .map(|w| w.ws_col as usize)
        .unwrap_or(0)
}

/// Polls until the service `id` converges, printing progress unless `quiet`.
/// `id` is what the user typed (an ID after create, the name after update/scale), which
/// Docker echoes in `verify: Service web converged`.
pub async fn wait_for_service(client: &Client, id: &str, quiet: bool) -> Result<()> {
    let tty = std::io::stdout().is_terminal();
    let mut display = Display::new(tty, if tty { terminal_width() } else { 0 });
    let mut out = std::io::stdout();
    let mut emit = |text: String| {
        if !quiet {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    };
    let mut updater = Updater::default();
    let mut converged_at: Option<Instant> = None;
    let mut rollback = false;
    let mut final_message: Option<Event> = None;
    let mut converged = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let service = client.get_json(&format!("/services/{id}")).await?;
        let monitor = service["Spec"]["UpdateConfig"]["Monitor"]
            .as_u64()
            .filter(|m| *m != 0)
            .map(Duration::from_nanos)
            .unwrap_or(DEFAULT_MONITOR);
        let us = &service["UpdateStatus"];
        let message = us["Message"].as_str().unwrap_or("");
        match us["State"].as_str().unwrap_or("") {
            "updating" => rollback = false,
            "completed" if !converged => return Ok(()),
            "paused" => return Err(UserError(format!("service update paused: {message}")).into()),
            "rollback_started" => {
                if !rollback && !message.is_empty() {
                    emit(display.write(&Event::text("rollback", message)));
                }
                rollback = true;
            }
            "rollback_paused" => {
                return Err(UserError(format!("service rollback paused: {message}")).into())
            }
            "rollback_completed" => {
                if !converged {
                    final_message = Some(Event::text("rollback", message));
                }
                rollback = true;
            }
            _ => {}
        }
        if let Some(at) = converged_at.filter(|_| converged) {
            if at.elapsed() >= monitor {
                emit(display.write(&Event::text("verify", format!("Service {id} converged"))));
                if let Some(m) = &final_message {
                    emit(display.message(&format!("{}: {}", m.id, m.action)));
                }
                return Ok(());
            }
        }
        let sid = service["ID"].as_str().unwrap_or(id);
        let tasks = client
            .get_json(&format!(
                "/tasks?filters={}",
                filters(&[("_up-to-date", "true"), ("service", sid)])
            ))
            .await?;
        let tasks = tasks.as_array().cloned().unwrap_or_default();
        let nodes = client.get_json("/nodes").await?;
        let active: HashSet<String> = nodes
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["Status"]["State"].as_str() != Some("down"))
            .filter_map(|n| n["ID"].as_str().map(str::to_string))
            .collect();
        let (events, now_converged) = updater.update(&service, &tasks, &active, rollback)?;
        converged = now_converged;
        for e in &events {
            emit(display.write(e));
        }
        if converged {
            if service.get("JobStatus").is_some_and(|j| !j.is_null()) {
                emit(display.message("job complete"));
                return Ok(());
            }
            let at = *converged_at.get_or_insert_with(Instant::now);
            if let Some(wait) = monitor.checked_sub(at.elapsed()) {
                let secs = wait.as_secs() + 1;
                emit(display.write(&Event::text(
                    "verify",
                    format!("Waiting {secs} seconds to verify that tasks are stable..."),
                )));
            }
        } else {
            if converged_at.is_some() {
                emit(display.write(&Event::text("verify", "Detected task failure")));
            }
            converged_at = None;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = &mut ctrl_c => {
                if !converged {
                    emit(display.message("Operation continuing in background."));
                    emit(display.message(&format!("Use `swarm service ps {id}` to check progress.")));
                }
                return Ok(());
            }
        }
    }
}
