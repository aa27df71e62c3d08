//! `swarm-bench events`: one node, a service scaled 1 -> N while S clients stream `GET
//! /events` (the task containers' events, `type=container`): every subscriber must see
//! every new task's container `start` (none lost), and each event's delay is the time
//! from its `timeNano` (when the daemon made it) to its arrival at the subscriber. Ours
//! (`swarmd`, release) and the peer (Docker Swarm on this machine, its containers'
//! events from dockerd) are driven the same way: the Engine API over the unix socket,
//! one `curl -N` per subscriber. Goal (issue 16): 1,000 tasks, 10 subscribers, p99 under
//! 100 ms and no event lost.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::services::{self, Api};

/// One event as a subscriber got it.
struct Got {
    id: String,
    action: String,
    delay_ns: i64,
}

/// A client streaming `/events`, its events gathered by a reader thread.
struct Subscriber {
    curl: Child,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Subscriber {
    fn start(api: &Api) -> Result<Subscriber> {
        let filters = json!({"type": {"container": true}}).to_string();
        let mut curl = Command::new("curl")
            .args(["-sN", "--unix-socket"])
            .arg(&api.socket)
            .arg(format!(
                "http://localhost{}/events?filters={}",
                api.prefix,
                services::urlencode(&filters)
            ))
            .stdout(Stdio::piped())
            .spawn()?;
        let out = curl.stdout.take().context("curl stdout")?;
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let now = now_nanos();
                let Ok(e) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if e["Actor"]["Attributes"]["com.docker.swarm.service.name"] != services::SERVICE {
                    continue;
                }
                sink.lock().expect("events lock").push(Got {
                    id: e["Actor"]["ID"].as_str().unwrap_or_default().to_string(),
                    action: e["Action"].as_str().unwrap_or_default().to_string(),
                    delay_ns: now - e["timeNano"].as_i64().unwrap_or(now),
                });
            }
        });
        Ok(Subscriber { curl, got })
    }

    /// The containers it saw start.
    fn started(&self) -> BTreeSet<String> {
        self.got
            .lock()
            .expect("events lock")
            .iter()
            .filter(|g| g.action == "start")
            .map(|g| g.id.clone())
            .collect()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.curl.kill();
        let _ = self.curl.wait();
    }
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as i64
}

#[derive(Default)]
struct Figures {
    /// Scale issued -> every subscriber saw every new container start.
    all_seen: Option<Duration>,
    /// Events per subscriber (container events of the service), and starts missed.
    events: usize,
    lost: usize,
    /// Delays over every subscriber's events, in ms: p50, p99, max.
    delays: Option<(f64, f64, f64)>,
    note: Option<String>,
}

pub fn run(tasks: usize, subscribers: usize) -> Result<()> {
    anyhow::ensure!(
        nix::unistd::geteuid().is_root(),
        "the events benchmark needs root"
    );
    let tmp = tempfile::Builder::new()
        .prefix("swarm-bench-events-")
        .tempdir()?;
    println!(
        "one node: service scale 1 -> {tasks} (busybox sleep 1d) with {subscribers} clients \
         on GET /events (type=container); delay = arrival - timeNano\n"
    );
    let ours = {
        let o = services::start_ours(tmp.path(), true)?;
        let f = measure(&o.api, &o.image, tasks, subscribers).context("swarmd")?;
        let _ = o
            .api
            .call("DELETE", &format!("/services/{}", services::SERVICE), None);
        let data = o.data.clone();
        let _ = services::wait_for("our containers gone", || {
            let left = std::fs::read_dir(data.join("containers"))
                .map(|d| d.count())
                .unwrap_or(0);
            Ok((left == 0).then_some(()))
        });
        f
    };
    let peer = services::start_docker(tmp.path())
        .and_then(|(guard, api)| {
            let f = measure(&api, services::DOCKER_IMAGE, tasks, subscribers);
            drop(guard);
            f
        })
        .unwrap_or_else(|e| Figures {
            note: Some(format!("{e:#}")),
            ..Figures::default()
        });
    for (who, f) in [("swarm", &ours), ("docker swarm", &peer)] {
        match (f.all_seen, f.delays) {
            (Some(seen), Some((p50, p99, max))) => println!(
                "{who:<13} all {tasks} starts seen by all {subscribers}: {:>8.0} ms   \
                 events/subscriber {:>5}   lost {:>3}   delay p50 {p50:.1} ms  p99 {p99:.1} ms  \
                 max {max:.1} ms",
                seen.as_secs_f64() * 1e3,
                f.events,
                f.lost
            ),
            _ => println!("{who:<13} n/a ({})", f.note.as_deref().unwrap_or("failed")),
        }
    }
    if let (Some((_, o, _)), Some((_, p, _))) = (ours.delays, peer.delays) {
        println!(
            "p99 delay: {}",
            crate::util::compare(
                Duration::from_secs_f64(p / 1e3),
                Duration::from_secs_f64(o / 1e3)
            )
        );
    }
    if let (Some(o), Some(p)) = (ours.all_seen, peer.all_seen) {
        println!("scale -> every start seen: {}", crate::util::compare(p, o));
    }
    Ok(())
}

/// Scale 1 -> `tasks` with `n` subscribers listening; then back to 0.
fn measure(api: &Api, image: &str, tasks: usize, n: usize) -> Result<Figures> {
    let subs: Vec<Subscriber> = (0..n)
        .map(|_| Subscriber::start(api))
        .collect::<Result<_>>()?;
    api.create(image, 1)?;
    // Every subscriber is connected once it saw the first task start.
    let first = services::wait_for("every subscriber to see the first task", || {
        let seen: Vec<BTreeSet<String>> = subs.iter().map(Subscriber::started).collect();
        Ok((seen.iter().all(|s| s.len() == 1)).then(|| seen[0].clone()))
    })?;
    for s in &subs {
        s.got.lock().expect("events lock").clear();
    }
    let start = Instant::now();
    api.scale(tasks)?;
    services::wait_for(&format!("{tasks} running tasks"), || {
        Ok((api.running()?.len() == tasks).then_some(()))
    })?;
    // Running as the manager sees it; the starts reach the subscribers by then or soon.
    let deadline = Instant::now() + Duration::from_secs(30);
    let all_seen = loop {
        if subs.iter().all(|s| s.started().len() >= tasks - 1) {
            break Some(start.elapsed());
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // What every task's start looked like to every subscriber.
    let running: BTreeSet<String> = api
        .list(
            "/tasks",
            &json!({"service": {services::SERVICE: true}, "desired-state": {"running": true}}),
        )?
        .iter()
        .filter_map(|t| t["Status"]["ContainerStatus"]["ContainerID"].as_str())
        .map(str::to_string)
        .filter(|id| !first.contains(id))
        .collect();
    let mut delays = Vec::new();
    let mut events = BTreeMap::new();
    let mut lost = 0;
    for (i, s) in subs.iter().enumerate() {
        let got = s.got.lock().expect("events lock");
        events.insert(i, got.len());
        delays.extend(got.iter().map(|g| g.delay_ns));
        let started: BTreeSet<&str> = got
            .iter()
            .filter(|g| g.action == "start")
            .map(|g| g.id.as_str())
            .collect();
        lost += running
            .iter()
            .filter(|id| !started.contains(id.as_str()))
            .count();
    }
    drop(subs);
    api.scale(0)?;
    services::wait_for("every task gone", || {
        Ok(api.running()?.is_empty().then_some(()))
    })?;
    delays.sort_unstable();
    let pick = |q: f64| {
        delays
            .get(((delays.len() as f64 * q) as usize).min(delays.len().saturating_sub(1)))
            .map_or(0.0, |d| *d as f64 / 1e6)
    };
    Ok(Figures {
        all_seen,
        events: events.values().sum::<usize>() / n.max(1),
        lost,
        delays: (!delays.is_empty()).then(|| (pick(0.5), pick(0.99), pick(1.0))),
        note: (running.len() + 1 != tasks).then(|| {
            format!(
                "{} task containers known running, {tasks} expected",
                running.len() + 1
            )
        }),
    })
}
