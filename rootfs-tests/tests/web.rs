//! `swarmd --web-addr` (issue 16): the live web view in a real browser. A real swarmd
//! serves the page on a free loopback port; headless Chromium (Debian `chromium`) loads
//! it once and is driven over the DevTools protocol; the test reads the DOM after the
//! page's scripts ran: one node column, one running card of `web`; after `service scale
//! web=3` three running cards, and after a drain the column says `drain` and holds no
//! card, all on the same page (never reloaded). Then the page's draw function is fed a
//! synthetic swarm of 100 nodes and 5,000 tasks and its update time printed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use rootfs_tests::browser::{get, synthetic_draws, Browser};
use rootfs_tests::registry::free_port;
use rootfs_tests::swarmd::{wait_for, Node};

/// The status line's code of `method path` with `host`, the body ignored.
fn status_of(addr: &str, method: &str, path: &str, host: &str) -> Result<u16> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    let line = String::from_utf8_lossy(&head);
    line.get(9..12)
        .and_then(|c| c.parse().ok())
        .context(format!("status line: {line}"))
}

/// What the page drew, as the test reads it.
fn drawn(browser: &mut Browser) -> Result<Drawn> {
    let v = browser.eval(
        r#"JSON.stringify({
            marker: window.testMarker ?? null,
            loads: window.swarmLoads ?? 0,
            navigations: performance.getEntriesByType("navigation").length,
            summary: document.getElementById("summary").textContent,
            error: document.getElementById("error").textContent,
            draws: window.swarmDraws ?? [],
            columns: [...document.querySelectorAll("section.node")].map((s) => ({
                id: s.dataset.nodeId,
                heading: s.querySelector("h2").textContent,
                availability: (s.querySelector(".availability") || {}).textContent ?? "",
                list_label: s.querySelector("ul").getAttribute("aria-label"),
                cards: [...s.querySelectorAll("li.task")].map((li) => ({
                    service: li.dataset.service,
                    state: li.dataset.state,
                    focusable: li.tabIndex === 0,
                })),
            })),
        })"#,
    )?;
    Ok(serde_json::from_str(v.as_str().context("a JSON string")?)?)
}

#[derive(Debug, serde::Deserialize)]
struct Drawn {
    marker: Option<i64>,
    loads: i64,
    navigations: i64,
    summary: String,
    error: String,
    draws: Vec<f64>,
    columns: Vec<Column>,
}

#[derive(Debug, serde::Deserialize)]
struct Column {
    id: String,
    heading: String,
    availability: String,
    list_label: Option<String>,
    cards: Vec<Card>,
}

#[derive(Debug, serde::Deserialize)]
struct Card {
    service: String,
    state: String,
    focusable: bool,
}

impl Drawn {
    fn column(&self, hostname: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.heading == hostname)
    }

    /// Cards of `service` in state running in `hostname`'s column.
    fn running(&self, hostname: &str, service: &str) -> usize {
        self.column(hostname).map_or(0, |c| {
            c.cards
                .iter()
                .filter(|k| k.service == service && k.state == "running")
                .count()
        })
    }

    /// Still the page loaded first: never reloaded nor navigated.
    fn same_page(&self) -> Result<()> {
        ensure!(
            self.marker == Some(16) && self.loads == 1 && self.navigations == 1,
            "the page was reloaded: {self:?}"
        );
        Ok(())
    }
}

const HOST: &str = "node-test";

#[test]
fn the_web_view_follows_the_swarm() -> Result<()> {
    let started = Instant::now();
    let addr = format!("127.0.0.1:{}", free_port()?);
    let node = Node::start_with("web", &["--web-addr", &addr])?;

    // Not a manager yet: one line, 503.
    let (status, body) = wait_for("the web port", Duration::from_secs(20), || {
        Ok(get(&addr, "/api/state").ok())
    })?;
    ensure!(
        status == 503 && body.trim().lines().count() == 1,
        "{status} {body}"
    );

    node.swarm_ok(&["init"])?;
    let img = node.image("1");
    node.swarm_ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--replicas",
        "1",
        &img,
        "sleep",
        "1d",
    ])?;
    node.wait_running("web", 1)?;
    let (status, state) = get(&addr, "/api/state")?;
    ensure!(status == 200, "{status} {state}");
    // Read-only, and on loopback only for pages that name loopback (DNS rebinding).
    ensure!(status_of(&addr, "POST", "/api/state", &addr)? == 405);
    ensure!(status_of(&addr, "GET", "/api/state", "evil.example:80")? == 403);

    let url = format!("http://{addr}/");
    let mut browser = Browser::open(&url)?;
    let limit = Duration::from_secs(60);
    let d = wait_for("1 running card of web", limit, || {
        let d = drawn(&mut browser)?;
        Ok((d.running(HOST, "web") == 1).then_some(d))
    })?;
    ensure!(d.columns.len() == 1, "one node, one column: {d:?}");
    let col = &d.columns[0];
    ensure!(col.availability == "active", "{d:?}");
    ensure!(
        col.list_label.as_deref() == Some("Tasks on node-test"),
        "{d:?}"
    );
    ensure!(col.cards.iter().all(|c| c.focusable), "{d:?}");
    ensure!(
        d.summary.contains("1 node") && d.summary.contains("1 task running"),
        "{d:?}"
    );
    ensure!(d.error.is_empty(), "{d:?}");
    // Set once: a reload would lose it.
    browser.eval("window.testMarker = 16")?;
    let node_id = col.id.clone();

    node.swarm_ok(&["service", "scale", "web=3"])?;
    let scaled = Instant::now();
    let d = wait_for("3 running cards of web", limit, || {
        let d = drawn(&mut browser)?;
        Ok((d.running(HOST, "web") == 3).then_some(d))
    })?;
    d.same_page()?;
    ensure!(d.summary.contains("3 tasks running"), "{d:?}");
    // `service scale` waits for the tasks to run: the page is at most this far behind.
    println!(
        "3 cards drawn {:?} after `service scale` returned",
        scaled.elapsed()
    );

    node.swarm_ok(&["node", "update", "--availability", "drain", HOST])?;
    let d = wait_for("the drained node, its cards gone", limit, || {
        let d = drawn(&mut browser)?;
        Ok(d.column(HOST)
            .is_some_and(|c| c.availability == "drain" && c.cards.is_empty())
            .then_some(d))
    })?;
    d.same_page()?;
    ensure!(
        d.column(HOST).map(|c| c.id.as_str()) == Some(&node_id),
        "{d:?}"
    );
    let max = d.draws.iter().copied().fold(0.0, f64::max);
    println!(
        "{} draws of the live page, the longest {max:.1} ms",
        d.draws.len()
    );

    // The page's draw function on a big synthetic swarm (printed; `swarm-bench web`
    // measures it).
    let (cold, updates) = synthetic_draws(&mut browser)?;
    println!(
        "synthetic 100 nodes x 5,000 tasks: first draw {cold:.1} ms, updates max {:.1} ms (goal < 50 ms): {updates:.1?}",
        updates.iter().copied().fold(0.0, f64::max),
    );
    drop(browser);
    println!("web view suite took {:?}", started.elapsed());
    Ok(())
}
