//! The `swarm` binary end to end against a fake manager: a small HTTP/1.1 server on a
//! unix socket in a temp dir that answers with recorded Docker Engine API JSON and
//! records what the CLI sent. It fakes the server to test the CLI's logic only.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

/// One request the CLI made: method, path with query, body.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

struct Fake {
    _dir: tempfile::TempDir,
    sock: PathBuf,
    seen: Seen,
}

/// The created service as the fake manager returns it: converges at once and asks
/// for a 1 ms monitor period so the progress display finishes quickly.
fn created_service_raw() -> &'static str {
    // Field order as a Go server writes it (ID, Version, ...), not sorted.
    r#"{"ID":"newservice0000000000000001","Version":{"Index":7},"Spec":{"Name":"web","Mode":{"Replicated":{"Replicas":2}},"UpdateConfig":{"Monitor":1000000},"TaskTemplate":{"ContainerSpec":{"Image":"img","FutureField":"kept"}},"FutureTopLevel":{"a":1}}}"#
}

fn created_service() -> Value {
    serde_json::from_str(created_service_raw()).unwrap()
}

fn running_tasks() -> Value {
    json!([
        {"ID": "t1", "Slot": 1, "NodeID": "z0zdzsttw6s52d3mjc6ya9h92", "DesiredState": "running", "Status": {"State": "running"}},
        {"ID": "t2", "Slot": 2, "NodeID": "z0zdzsttw6s52d3mjc6ya9h92", "DesiredState": "running", "Status": {"State": "running"}}
    ])
}

/// Two multiplexed frames as `GET /services/lg/logs?details=1` sends them.
fn log_stream() -> Vec<u8> {
    let ctx = "com.docker.swarm.node.id=z0zdzsttw6s52d3mjc6ya9h92,com.docker.swarm.service.id=lv63s0fjsbozirw7b3ykgpz9r,com.docker.swarm.task.id=206ceen0zatem9j1szq9jnudr";
    let mut out = Vec::new();
    for (stream, msg) in [(1u8, "hello 966a4df9a963\n"), (2u8, "err\n")] {
        let payload = format!("{ctx} {msg}");
        out.extend_from_slice(&[stream, 0, 0, 0]);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload.as_bytes());
    }
    out
}

fn answer(method: &str, path: &str) -> (u16, String) {
    let p = path.strip_prefix("/v1.41").unwrap_or(path);
    let decoded = percent_decode(p);
    match (method, decoded.as_str()) {
        ("HEAD", "/_ping") => (200, String::new()),
        ("GET", "/services?status=true") => (200, fixture("api_services_status.json")),
        ("GET", q) if q.starts_with("/services?filters=") => (200, "[]".into()),
        ("GET", "/info") => (200, fixture("api_info.json")),
        ("GET", "/nodes") => (200, fixture("api_nodes.json")),
        ("GET", q) if q.starts_with("/tasks?filters=") => (200, running_tasks().to_string()),
        ("POST", "/services/create") => {
            (201, json!({"ID": "newservice0000000000000001"}).to_string())
        }
        ("GET", "/tasks/206ceen0zatem9j1szq9jnudr") => (
            200,
            json!({"ID": "206ceen0zatem9j1szq9jnudr", "Slot": 2}).to_string(),
        ),
        ("GET", "/nodes/z0zdzsttw6s52d3mjc6ya9h92") => {
            (200, json!({"Description": {"Hostname": "vm"}}).to_string())
        }
        ("GET", "/services/lv63s0fjsbozirw7b3ykgpz9r") => {
            (200, json!({"Spec": {"Name": "lg"}}).to_string())
        }
        ("GET", q) if q.starts_with("/services/web") || q.starts_with("/services/newservice") => {
            (200, created_service_raw().to_string())
        }
        ("POST", q) if q.starts_with("/services/newservice0000000000000001/update") => {
            (200, json!({"Warnings": null}).to_string())
        }
        (_, q) if q.starts_with("/services/nosuch") => (
            404,
            json!({"message": "service nosuch not found"}).to_string(),
        ),
        _ => (
            500,
            json!({"message": format!("fake: unexpected {method} {path}")}).to_string(),
        ),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn start_fake() -> Fake {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("swarm.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("").to_string();
                let mut len = 0;
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                log.lock().unwrap().push((
                    method.clone(),
                    path.clone(),
                    String::from_utf8_lossy(&body).into(),
                ));
                let (status, text) = if path.contains("/logs?") {
                    (200, log_stream())
                } else {
                    let (status, text) = answer(&method, &path);
                    (status, text.into_bytes())
                };
                let body: &[u8] = if method == "HEAD" { &[] } else { &text };
                let head = format!(
                    "HTTP/1.1 {status} X\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(body);
            });
        }
    });
    Fake {
        _dir: dir,
        sock,
        seen,
    }
}

fn swarm(fake: &Fake, args: &[&str]) -> Output {
    swarm_at(&fake.sock, args)
}

/// Runs the binary, killed after 30 s so that a CLI that never stops fails the test
/// instead of hanging it.
fn swarm_at(sock: &Path, args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_swarm"))
        .arg("-H")
        .arg(format!("unix://{}", sock.display()))
        .args(args)
        .env_remove("SWARM_HOST")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("swarm {args:?} did not finish within 30 s");
        }
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into()
}

#[test]
fn service_ls_prints_dockers_table() {
    let fake = start_fake();
    let o = swarm(&fake, &["service", "ls"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), fixture("ls.txt").replace("5/3", "2/3"));
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen[0].0, "HEAD");
    assert_eq!(seen[0].1, "/_ping");
    assert_eq!(seen[1].1, "/v1.41/services?status=true");
}

#[test]
fn node_ls_marks_self() {
    let fake = start_fake();
    let o = swarm(&fake, &["node", "ls"]);
    assert_eq!(stdout(&o), fixture("node_ls.txt"));
}

#[test]
fn errors_in_dockers_words() {
    let fake = start_fake();
    let o = swarm(&fake, &["service", "ps", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "no such service: nosuch\n");
    assert_eq!(stdout(&o), "");

    let o = swarm(&fake, &["service", "rm", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error response from daemon: service nosuch not found\n"
    );

    let o = swarm(&fake, &["service", "inspect", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        (stdout(&o), stderr(&o)),
        (
            "[]\n".to_string(),
            "Error: no such service: nosuch\n".to_string()
        )
    );

    let absent = fake.sock.with_file_name("absent.sock");
    // Flags are checked before the manager is contacted, as with the docker CLI.
    let o = swarm_at(
        &absent,
        &["service", "create", "--mount", "type=bind,dst=/x", "img"],
    );
    assert_eq!(
        stderr(&o),
        "source is required when specifying bind mount\n"
    );

    let o = swarm_at(&absent, &["service", "ls"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "Cannot connect to the swarm manager at unix://{}. Is swarmd running?\n",
            absent.display()
        )
    );
}

#[test]
fn create_waits_for_convergence_like_docker_without_a_tty() {
    let fake = start_fake();
    let o = swarm(
        &fake,
        &[
            "service",
            "create",
            "--name",
            "web",
            "--replicas",
            "2",
            "img",
            "sleep",
            "1d",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "newservice0000000000000001\n\
         overall progress: 0 out of 2 tasks\n\
         1/2:  \n\
         2/2:  \n\
         overall progress: 2 out of 2 tasks\n\
         verify: Waiting 1 seconds to verify that tasks are stable...\n\
         verify: Service newservice0000000000000001 converged\n"
    );
    let seen = fake.seen.lock().unwrap();
    let create = seen
        .iter()
        .find(|(m, p, _)| m == "POST" && p == "/v1.41/services/create")
        .unwrap();
    let body: Value = serde_json::from_str(&create.2).unwrap();
    assert_eq!(body["Mode"], json!({"Replicated": {"Replicas": 2}}));
    assert_eq!(
        body["TaskTemplate"]["ContainerSpec"]["Args"],
        json!(["sleep", "1d"])
    );
    let tasks = seen
        .iter()
        .find(|(_, p, _)| p.starts_with("/v1.41/tasks?filters="))
        .unwrap();
    assert_eq!(
        percent_decode(&tasks.1),
        r#"/v1.41/tasks?filters={"_up-to-date":{"true":true},"service":{"newservice0000000000000001":true}}"#
    );
}

#[test]
fn scale_and_update_post_the_whole_spec_back() {
    let fake = start_fake();
    let o = swarm(&fake, &["service", "scale", "-d", "web=3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "web scaled to 3\n");
    let o = swarm(
        &fake,
        &["service", "update", "-d", "--image", "img:2", "web"],
    );
    assert_eq!(stdout(&o), "web\n");
    let o = swarm(&fake, &["service", "rollback", "-d", "web"]);
    assert_eq!(stdout(&o), "web\n");

    let seen = fake.seen.lock().unwrap();
    let posts: Vec<_> = seen.iter().filter(|(m, _, _)| m == "POST").collect();
    assert_eq!(
        posts[0].1,
        "/v1.41/services/newservice0000000000000001/update?version=7"
    );
    let mut expected = created_service()["Spec"].clone();
    expected["Mode"]["Replicated"]["Replicas"] = json!(3);
    assert_eq!(
        serde_json::from_str::<Value>(&posts[0].2).unwrap(),
        expected
    );

    assert_eq!(
        posts[1].1,
        "/v1.41/services/newservice0000000000000001/update?registryAuthFrom=spec&version=7"
    );
    let mut expected = created_service()["Spec"].clone();
    expected["TaskTemplate"]["ContainerSpec"]["Image"] = json!("img:2");
    assert_eq!(
        serde_json::from_str::<Value>(&posts[1].2).unwrap(),
        expected
    );

    assert_eq!(
        posts[2].1,
        "/v1.41/services/newservice0000000000000001/update?rollback=previous&version=7"
    );
}

#[test]
fn logs_prefix_each_line_like_docker() {
    let fake = start_fake();
    let o = swarm(&fake, &["service", "logs", "web"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let recorded = fixture("logs_lg.txt");
    let mut lines = recorded.lines();
    assert_eq!(stdout(&o), format!("{}\n", lines.next().unwrap()));
    assert_eq!(stderr(&o), format!("{}\n", lines.next().unwrap()));
}

#[test]
fn inspect_keeps_the_servers_field_order() {
    let fake = start_fake();
    let o = swarm(&fake, &["service", "inspect", "web"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("[\n    {\n        \"ID\": \"newservice0000000000000001\",\n        \"Version\": {\n            \"Index\": 7\n        },"));
    let o = swarm(
        &fake,
        &[
            "service",
            "inspect",
            "--format",
            "{{.Spec.Name}} {{.Version.Index}}",
            "web",
        ],
    );
    assert_eq!(stdout(&o), "web 7\n");
}

/// Runs `swarm` with no manager reachable: command-line errors come before any
/// connection, as with the docker CLI.
fn swarm_offline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swarm"))
        .args(args)
        .env("SWARM_HOST", "unix:///nonexistent/swarm.sock")
        .output()
        .unwrap()
}

/// docker 28.2's words for these (run with `docker`, then `docker` -> `swarm`).
#[test]
fn command_line_errors_in_dockers_words_and_codes() {
    let create_usage = "\n\nUsage:  swarm service create [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'swarm service create --help' for more information\n";
    let cases: &[(&[&str], i32, String)] = &[
        (
            &["service", "create", "--repliaces", "3", "busybox"],
            125,
            format!("unknown flag: --repliaces{create_usage}"),
        ),
        (
            &["service", "create", "-z", "busybox"],
            125,
            format!("unknown shorthand flag: 'z' in -z{create_usage}"),
        ),
        (
            &["service", "create", "--replicas", "x", "nginx"],
            125,
            format!("invalid argument \"x\" for \"--replicas\" flag: strconv.ParseUint: parsing \"x\": invalid syntax{create_usage}"),
        ),
        (
            &["service", "create", "--replicas"],
            125,
            format!("flag needs an argument: --replicas{create_usage}"),
        ),
        (
            &["service", "create"],
            1,
            "swarm: 'swarm service create' requires at least 1 argument\n\nUsage:  swarm service create [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nSee 'swarm service create --help' for more information\n".into(),
        ),
        (
            &["service", "scale"],
            1,
            "swarm: 'swarm service scale' requires at least 1 argument\n\nUsage:  swarm service scale SERVICE=REPLICAS [SERVICE=REPLICAS...]\n\nSee 'swarm service scale --help' for more information\n".into(),
        ),
        (
            &["node", "ls", "extra"],
            1,
            "swarm: 'swarm node ls' accepts no arguments\n\nUsage:  swarm node ls [OPTIONS]\n\nRun 'swarm node ls --help' for more information\n".into(),
        ),
        (
            &["swarm", "join", "a", "b"],
            1,
            "swarm: 'swarm swarm join' requires 1 argument\n\nUsage:  swarm swarm join [OPTIONS] HOST:PORT\n\nRun 'swarm swarm join --help' for more information\n".into(),
        ),
        (
            &["service", "frob"],
            1,
            "swarm: unknown command: swarm service frob\n\nUsage:  swarm service\n\nRun 'swarm service --help' for more information\n".into(),
        ),
    ];
    for (args, code, want) in cases {
        let o = swarm_offline(args);
        assert_eq!(o.status.code(), Some(*code), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), *want, "{args:?}");
        assert_eq!(stdout(&o), "", "{args:?}");
    }
    // A bare group prints its help on stderr and succeeds, as docker does.
    let o = swarm_offline(&["service"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).starts_with("Usage:  swarm service COMMAND\n\nManage Swarm services\n\nCommands:\n  create      Create a new service\n"));
}

/// Where the docker CLI is installed: the same bad command lines, compared with it
/// (`docker` -> `swarm`). Skipped without docker.
#[test]
fn command_line_errors_match_the_docker_cli() {
    let Ok(v) = Command::new("docker").arg("--version").output() else {
        eprintln!("docker not installed: skipped");
        return;
    };
    if !v.status.success() {
        return;
    }
    let cases: &[&[&str]] = &[
        &["service", "create", "--repliaces", "3", "nginx"],
        &["service", "create", "-dz", "nginx"],
        &["service", "create", "--replicas", "x", "nginx"],
        &["service", "create", "--replicas", "-1", "nginx"],
        &["service", "create", "--detach=foo", "nginx"],
        &["service", "create", "--replicas"],
        &["service", "create"],
        &["service", "rm"],
        &["service", "logs"],
        &["service", "update"],
        &["node", "ls", "extra"],
        &["node", "update"],
        &["secret", "create"],
        &["swarm", "init", "extra"],
        &["swarm", "join-token"],
        &["swarm", "frob"],
        &["service", "frob"],
        &["frob"],
        &["service"],
        &["swarm"],
        &["node"],
        &["service", "--help"],
        &["node", "--help"],
        &["swarm", "--help"],
        &["service", "ls", "--help"],
        &["service", "ps", "--help"],
        &["node", "ls", "--help"],
    ];
    for args in cases {
        let d = Command::new("docker")
            .args(*args)
            .env("DOCKER_HOST", "unix:///nonexistent")
            .output()
            .unwrap();
        let s = swarm_offline(args);
        let theirs = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .replace("docker", "swarm")
                .replace("docs.swarm.com", "docs.docker.com")
        };
        assert_eq!(s.status.code(), d.status.code(), "{args:?}");
        assert_eq!(stderr(&s), theirs(&d.stderr), "{args:?}");
        assert_eq!(stdout(&s), theirs(&d.stdout), "{args:?}");
    }
}
