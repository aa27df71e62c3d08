//! `swarm-bench web`: how fast the web view draws. A real `swarmd` (release) serves the
//! page (`--web-addr` on a free loopback port); headless Chromium loads it once:
//! - live: a service scaled 1 -> N on the node while the page follows the swarm; every
//!   redraw it made (`window.swarmDraws`, layout included) until all N cards are drawn;
//! - synthetic: the page's draw function fed 100 nodes and 5,000 tasks (50 services),
//!   the first draw and 10 updates of 5% of the tasks each (a rolling update's step).
//!
//! No peer: Docker's visualizer is a container image this machine cannot pull. Goal
//! (issue 16): every update drawn in under 50 ms with 100 nodes and 5,000 tasks.

use std::time::Instant;

use anyhow::{Context, Result};
use rootfs_tests::browser::{synthetic_draws, Browser};
use serde_json::Value;

use crate::services;

pub fn run(tasks: usize) -> Result<()> {
    anyhow::ensure!(
        nix::unistd::geteuid().is_root(),
        "the web benchmark needs root"
    );
    let tmp = tempfile::Builder::new()
        .prefix("swarm-bench-web-")
        .tempdir()?;
    let addr = format!("127.0.0.1:{}", rootfs_tests::registry::free_port()?);
    let ours = services::start_ours_with(tmp.path(), true, &["--web-addr", &addr])?;
    let mut browser = Browser::open(&format!("http://{addr}/"))?;
    let drawn = |b: &mut Browser| -> Result<(usize, Vec<f64>)> {
        let v = b.eval(
            r#"JSON.stringify({cards: document.querySelectorAll("li.task[data-state=running]").length,
                draws: window.swarmDraws ?? []})"#,
        )?;
        let v: Value = serde_json::from_str(v.as_str().context("a JSON string")?)?;
        Ok((
            v["cards"].as_u64().unwrap_or(0) as usize,
            serde_json::from_value(v["draws"].clone())?,
        ))
    };
    ours.api.create(&ours.image, 1)?;
    services::wait_for("the first card", || {
        Ok((drawn(&mut browser)?.0 == 1).then_some(()))
    })?;
    let before = drawn(&mut browser)?.1.len();
    let start = Instant::now();
    ours.api.scale(tasks)?;
    let (live, all_drawn) = services::wait_for(&format!("{tasks} running cards"), || {
        let (cards, draws) = drawn(&mut browser)?;
        Ok((cards == tasks).then(|| (draws[before..].to_vec(), start.elapsed())))
    })?;
    let (cold, updates) = synthetic_draws(&mut browser)?;
    drop(browser);
    ours.api.scale(0)?;
    let _ = services::wait_for("every task gone", || {
        Ok(ours.api.running()?.is_empty().then_some(()))
    });

    let stats = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let pick = |q: f64| s.get(((s.len() as f64 * q) as usize).min(s.len().saturating_sub(1)));
        (
            pick(0.5).copied().unwrap_or(0.0),
            s.last().copied().unwrap_or(0.0),
        )
    };
    let (p50, max) = stats(&live);
    println!(
        "live: scale 1 -> {tasks} on one node, all {tasks} cards drawn {:.0} ms after the scale; \
         {} redraws, p50 {p50:.1} ms, max {max:.1} ms",
        all_drawn.as_secs_f64() * 1e3,
        live.len()
    );
    let (p50, max) = stats(&updates);
    println!(
        "synthetic 100 nodes x 5,000 tasks: first draw {cold:.1} ms; 10 updates (5% of tasks \
         each) p50 {p50:.1} ms, max {max:.1} ms (goal < 50 ms)"
    );
    drop(ours);
    Ok(())
}
