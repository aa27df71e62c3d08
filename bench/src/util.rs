//! Timing and printing helpers shared by the benchmarks.

use std::time::{Duration, Instant};

/// Median of `runs` timings of `f` (one warm-up run first).
pub fn median(
    runs: usize,
    mut f: impl FnMut(usize) -> anyhow::Result<()>,
) -> anyhow::Result<Duration> {
    f(usize::MAX)?;
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let start = Instant::now();
        f(i)?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Print one row: name, figure, and for a peer how ours compares ("ours is 1.70x
/// faster" or "ours is 1.40x slower", never a ratio below 1 called faster).
pub fn row(name: &str, value: Result<Duration, String>, ours: Option<Duration>) {
    match (value, ours) {
        (Ok(v), Some(o)) => println!("{name:<36} {:>10}   {}", ms(v), compare(v, o)),
        (Ok(v), None) => println!("{name:<36} {:>10}", ms(v)),
        (Err(why), _) => println!("{name:<36} {:>10}   ({why})", "n/a"),
    }
}

pub fn have(cmd: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {cmd} >/dev/null")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// VmRSS of a process in KiB (0 if it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// VmHWM (the peak RSS) of a process in KiB (0 if it is gone).
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// How `ours` compares with the peer's `theirs`, for durations (less is better).
pub fn compare(theirs: Duration, ours: Duration) -> String {
    let r = theirs.as_secs_f64() / ours.as_secs_f64().max(1e-9);
    if r >= 1.0 {
        format!("ours is {r:.2}x faster")
    } else {
        format!("ours is {:.2}x slower", 1.0 / r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_read_right() {
        let ms = Duration::from_millis;
        assert_eq!(compare(ms(300), ms(100)), "ours is 3.00x faster");
        assert_eq!(compare(ms(100), ms(170)), "ours is 1.70x slower");
    }
}
