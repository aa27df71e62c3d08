//! `swarmd --web-addr` (issue 16): the live web view in a real browser. A real swarmd
//! serves the page on a free loopback port; headless Chromium (Debian `chromium`) loads
//! it once and is driven over the DevTools protocol; the test reads the DOM after the
//! page's scripts ran: one node column, one running card of `web`; after `service scale
//! web=3` three running cards, and after a drain the column says `drain` and holds no
//! card, all on the same page (never reloaded). Then the page's draw function is fed a
//! synthetic swarm of 100 nodes and 5,000 tasks and its update time printed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rootfs_tests::registry::free_port;
use rootfs_tests::swarmd::{wait_for, Node};
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// `GET path` with a loopback `Host`: (status, body). Read up to its `Content-Length`:
/// Chromium's DevTools server keeps the connection open (and answers no HTTP/1.0).
fn get(addr: &str, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let n = s.read(&mut chunk)?;
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            });
            if n == 0 || length.is_some_and(|len| body.len() >= len) {
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .context(format!("status line: {head}"))?;
                return Ok((status, body.to_string()));
            }
        }
        ensure!(n > 0, "no HTTP head: {text}");
    }
}

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

/// Headless Chromium with its DevTools socket on one page; killed with its whole process
/// group, its profile removed, when dropped (failures too).
struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn open(url: &str) -> Result<Browser> {
        let profile = tempfile::Builder::new()
            .prefix("swarm-web-chromium-")
            .tempdir()?;
        // Its scratch files (`org.chromium.Chromium.*`) too: a killed browser leaves them.
        let scratch = profile.path().join("tmp");
        std::fs::create_dir(&scratch)?;
        let spawned = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .env("TMPDIR", &scratch)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own group: the renderers and helpers go with it.
            .process_group(0)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "chromium is not installed: the web view suite needs Debian's `chromium` \
                 (scripts/install-deps installs it)"
            ),
            Err(e) => return Err(e).context("start chromium"),
        };
        // Chromium says where DevTools listens on stderr; the rest of stderr keeps being
        // drained so it never blocks on a full pipe.
        let stderr = child.stderr.take().context("chromium stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(ws) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(ws.trim().to_string());
                }
            }
        });
        let browser_ws = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(ws) => ws,
            Err(_) => {
                kill_group(&mut child);
                bail!("chromium printed no `DevTools listening on ws://...` within 30 s");
            }
        };
        let guard = Started { child: Some(child) };
        let devtools = browser_ws
            .strip_prefix("ws://")
            .and_then(|r| r.split('/').next())
            .context(format!("devtools address in {browser_ws}"))?
            .to_string();
        // The page's own target: the one showing our URL.
        let page_ws = wait_for(
            "the page's DevTools target",
            Duration::from_secs(20),
            || {
                let (_, body) = get(&devtools, "/json/list")?;
                let targets: Vec<Value> = serde_json::from_str(&body)?;
                Ok(targets
                    .iter()
                    .find(|t| {
                        t["type"] == "page" && t["url"].as_str().unwrap_or("").starts_with(url)
                    })
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(String::from)))
            },
        )?;
        let (ws, _) = tungstenite::connect(page_ws.as_str()).context("DevTools websocket")?;
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
        }
        Ok(Browser {
            child: guard.take(),
            ws,
            next_id: 0,
            _profile: profile,
        })
    }

    /// `Runtime.evaluate` of `expr` in the page, its value (promises awaited).
    fn eval(&mut self, expr: &str) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let call = json!({
            "id": id,
            "method": "Runtime.evaluate",
            "params": {"expression": expr, "returnByValue": true, "awaitPromise": true},
        });
        self.ws.send(Message::text(call.to_string()))?;
        loop {
            let msg = self.ws.read().context("DevTools reply")?;
            let Message::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(text.as_str())?;
            if v["id"] != id {
                continue; // an event
            }
            if let Some(e) = v.get("error") {
                bail!("Runtime.evaluate: {e}");
            }
            if let Some(e) = v["result"].get("exceptionDetails") {
                bail!("the page threw: {e}");
            }
            return Ok(v["result"]["result"]["value"].clone());
        }
    }

    /// What the page drew, as the test reads it.
    fn drawn(&mut self) -> Result<Drawn> {
        let v = self.eval(
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
}

/// A chromium being started: killed if the start fails half way.
struct Started {
    child: Option<Child>,
}

impl Started {
    fn take(mut self) -> Child {
        self.child.take().expect("taken once")
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            kill_group(c);
        }
    }
}

fn kill_group(child: &mut Child) {
    // The group we made for it (its pid), then the browser itself is reaped.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
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
        let d = browser.drawn()?;
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
        let d = browser.drawn()?;
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
        let d = browser.drawn()?;
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

    // The page's draw function on a big synthetic swarm: 100 nodes, 5,000 tasks, then
    // updates where 5% of the tasks change state (a rolling update's step).
    let bench = browser.eval(
        r#"(() => {
            const now = new Date().toISOString();
            const nodes = [], tasks = [];
            for (let i = 0; i < 100; i++) nodes.push({id: "n" + i, hostname: "node-" + i,
                role: i < 3 ? "manager" : "worker", leader: i === 0, state: "ready",
                availability: "active", addr: "", nano_cpus: 4e9, memory_bytes: 8 << 30});
            for (let i = 0; i < 5000; i++) tasks.push({id: "t" + i, service_id: "s" + (i % 50),
                service: "svc-" + (i % 50), slot: 1 + Math.floor(i / 50), node_id: "n" + (i % 100),
                image: "busybox:1", state: "running", desired_state: "running", err: "",
                created_at: now, since: now, health: null});
            const services = [];
            for (let i = 0; i < 50; i++) services.push({id: "s" + i, name: "svc-" + i,
                mode: "replicated", image: "busybox:1", desired: 100, running: 100, update_state: null});
            const view = {now, manager: "n0", nodes, services, tasks};
            const t0 = performance.now();
            window.swarmDraw(view);
            const cold = performance.now() - t0;
            const updates = [];
            for (let round = 0; round < 10; round++) {
                const v = {...view, tasks: view.tasks.map((t, i) => i % 20 === round ?
                    {...t, state: "preparing", since: new Date(Date.now() + round).toISOString()} : t)};
                const t1 = performance.now();
                window.swarmDraw(v);
                updates.push(performance.now() - t1);
            }
            return {cold, updates, cards: document.querySelectorAll("li.task").length};
        })()"#,
    )?;
    ensure!(bench["cards"] == 5000, "{bench}");
    let updates: Vec<f64> = serde_json::from_value(bench["updates"].clone())?;
    println!(
        "synthetic 100 nodes x 5,000 tasks: first draw {:.1} ms, updates max {:.1} ms (goal < 50 ms): {updates:.1?}",
        bench["cold"].as_f64().unwrap_or(0.0),
        updates.iter().copied().fold(0.0, f64::max),
    );
    drop(browser);
    println!("web view suite took {:?}", started.elapsed());
    Ok(())
}
