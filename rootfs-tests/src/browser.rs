//! Headless Chromium (Debian `chromium`) driven over the DevTools protocol, for the web
//! view's suite and benchmark: one page, `Runtime.evaluate` in it, and the whole browser
//! (its process group, profile and scratch files) gone when dropped, failures too.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::swarmd::wait_for;

/// `GET path` with a loopback `Host`: (status, body). Read up to its `Content-Length`:
/// Chromium's DevTools server keeps the connection open (and answers no HTTP/1.0).
pub fn get(addr: &str, path: &str) -> Result<(u16, String)> {
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

/// Headless Chromium with its DevTools socket on one page; killed with its whole process
/// group, its profile removed, when dropped (failures too).
pub struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn open(url: &str) -> Result<Browser> {
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
    pub fn eval(&mut self, expr: &str) -> Result<Value> {
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

/// The web view's draw function (`window.swarmDraw`) on a synthetic swarm of 100 nodes
/// and 5,000 tasks (50 services): the first draw, then 10 updates where 5% of the tasks
/// change state (a rolling update's step); each in ms, layout included.
pub fn synthetic_draws(browser: &mut Browser) -> Result<(f64, Vec<f64>)> {
    let v = browser.eval(
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
    ensure!(
        v["cards"] == 5000,
        "the page drew {} cards, not 5000",
        v["cards"]
    );
    let cold = v["cold"].as_f64().context("first draw time")?;
    let updates: Vec<f64> = serde_json::from_value(v["updates"].clone())?;
    Ok((cold, updates))
}
