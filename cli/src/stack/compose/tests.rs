//! `load` end to end: each error in Docker's words, and the corpus under
//! `cli/tests/compose/corpus` (each directory's compose files against its
//! `expected.json`; `UPDATE_EXPECT=1` rewrites them, to be reviewed by hand).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{load_with, Stack};

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

fn run_in(dir: &Path, names: &[&str], env: &[(&str, &str)]) -> Result<Stack, String> {
    let files: Vec<String> = names
        .iter()
        .map(|n| dir.join(n).display().to_string())
        .collect();
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_with("st", &files, &env, &|| Ok(Vec::new()))
}

fn err(compose: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("c.yml", compose)]);
    run_in(dir.path(), &["c.yml"], &[]).unwrap_err()
}

#[test]
fn errors_in_dockers_words() {
    assert_eq!(
        err("services:\n  web:\n    image: a\n    foo: 1\n"),
        "services.web Additional property foo is not allowed"
    );
    assert_eq!(
        err("foo: 1\nservices: {}\n"),
        "(root) Additional property foo is not allowed"
    );
    assert_eq!(
        err("services:\n  web:\n    image: ${TAG:?tag please}\n"),
        "invalid interpolation format for services.web.image: \"required variable TAG is missing a value: tag please\"; you may need to escape any $ with another $"
    );
    assert_eq!(
        err("services:\n  web:\n    command: echo hi\n"),
        "invalid image reference for service web: no image specified"
    );
    assert_eq!(
        err("services:\n  web:\n    image: a\n    networks: [foo]\n"),
        "service web: undefined network \"foo\""
    );
    assert_eq!(
        err("services:\n  web:\n    image: a\n    secrets: [s]\n"),
        "service web: undefined secret \"s\""
    );
    assert_eq!(
        err("services:\n  web:\n    image: a\n    configs: [c]\n"),
        "service web: undefined config \"c\""
    );
    assert_eq!(
        err("services:\n  web:\n    image: a\n    volumes: [data:/d]\n"),
        "service web: undefined volume \"data\""
    );
    assert_eq!(
        err("version: '2'\nservices:\n  web:\n    image: a\n"),
        "unsupported Compose file version: 2"
    );
    assert_eq!(
        err("version: 3.14\nservices:\n  web:\n    image: a\n"),
        "unsupported Compose file version: 3.14"
    );
    assert_eq!(
        err("services:\n  web:\n    image: a: b\n"),
        "yaml: line 3: mapping values are not allowed in this context"
    );
    assert_eq!(
        err(
            "services:\n  web:\n    image: a\n    deploy:\n      mode: global\n      replicas: 2\n"
        ),
        "service web: replicas can only be used with replicated or replicated-job mode"
    );
    assert_eq!(
        err("services:\n  web:\n    image: a\n    volumes_from: [x]\n    cpu_shares: 2\n"),
        "Compose file contains unsupported options:\n\ncpu_shares: Set resource limits using deploy.resources\n\nvolumes_from: To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option.\n"
    );
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[("c.yml", "services:\n  web:\n    image: a\n    secrets: [s]\nsecrets:\n  s:\n    file: ./nope.txt\n")],
    );
    assert_eq!(
        run_in(dir.path(), &["c.yml"], &[]).unwrap_err(),
        format!(
            "open {}/nope.txt: no such file or directory",
            dir.path().display()
        )
    );
    write(
        dir.path(),
        &[
            ("a.yml", "version: '3.8'\nservices: {}\n"),
            ("b.yml", "services: {}\n"),
        ],
    );
    assert_eq!(
        run_in(dir.path(), &["a.yml", "b.yml"], &[]).unwrap_err(),
        "version mismatched between two composefiles : 3.8 and 3.13"
    );
    assert_eq!(
        run_in(dir.path(), &["missing.yml"], &[]).unwrap_err(),
        format!(
            "open {}/missing.yml: no such file or directory",
            dir.path().display()
        )
    );
}

#[test]
fn warnings_like_docker() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[(
            "c.yml",
            "services:\n  web:\n    image: a\n    links: [db]\n    build: .\n    restart: always\n    container_name: w\n  db:\n    image: b\n    expose: [5432]\n",
        )],
    );
    let st = run_in(dir.path(), &["c.yml"], &[]).unwrap();
    assert_eq!(
        st.warnings,
        vec![
            "Ignoring unsupported options: build, links, restart".to_string(),
            "Ignoring deprecated options:\n\ncontainer_name: Setting the container name is not supported.\n\nexpose: Exposing ports is unnecessary - services on the same network can access each other's containers on any port.".to_string(),
        ]
    );
    // `restart` is still used when deploy.restart_policy is absent
    assert_eq!(
        st.services[1]["TaskTemplate"]["RestartPolicy"],
        json!({"Condition": "any"})
    );
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compose/corpus")
}

/// A corpus case: `files` (one compose file name a line, default
/// `docker-compose.yml`), `env` (`KEY=VALUE` lines for interpolation), namespace =
/// the directory name without its `NN-` prefix.
fn run_case(dir: &Path) -> Value {
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).ok();
    let files: Vec<String> = read("files")
        .map(|t| {
            t.lines()
                .filter(|l| !l.trim().is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_else(|| vec!["docker-compose.yml".into()]);
    let files: Vec<String> = files
        .iter()
        .map(|f| dir.join(f).display().to_string())
        .collect();
    let env: BTreeMap<String, String> = read("env")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let ns = name.split_once('-').map(|(_, n)| n).unwrap_or(&name);
    let out = match load_with(ns, &files, &env, &|| Ok(Vec::new())) {
        Ok(st) => json!({"networks": st.networks, "external_networks": st.external_networks,
            "secrets": st.secrets, "configs": st.configs, "services": st.services,
            "warnings": st.warnings}),
        Err(e) => json!({ "error": e }),
    };
    // absolute paths (bind sources, error texts) are written relative to `$DIR`
    let text = out.to_string().replace(&dir.display().to_string(), "$DIR");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn corpus_converts_as_docker_would() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 20, "corpus has {} cases", dirs.len());
    let update = std::env::var("UPDATE_EXPECT").is_ok();
    let mut failed = Vec::new();
    for dir in dirs {
        let got = run_case(&dir);
        let path = dir.join("expected.json");
        if update {
            std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
            continue;
        }
        let want: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if got != want {
            failed.push(format!(
                "{}:\n{}",
                dir.display(),
                serde_json::to_string_pretty(&got).unwrap()
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn dot_env_beside_the_first_file_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("c.yml", "services:\n  web:\n    image: ${REG}/app:${TAG}\n    deploy:\n      replicas: ${N}\n"),
            (".env", "# the registry\nREG=127.0.0.1:5000\nexport TAG=\"1.0\"\n\nN=3\n"),
        ],
    );
    let stack = run_in(dir.path(), &["c.yml"], &[("TAG", "2.0")]).unwrap();
    let spec = &stack.services[0];
    assert_eq!(
        spec["TaskTemplate"]["ContainerSpec"]["Image"],
        "127.0.0.1:5000/app:2.0"
    );
    assert_eq!(spec["Mode"]["Replicated"]["Replicas"], 3);
    write(dir.path(), &[(".env", "NOEQUALS\n")]);
    let e = run_in(dir.path(), &["c.yml"], &[]).unwrap_err();
    assert!(
        e.ends_with("line 1: unexpected character in variable name \"NOEQUALS\""),
        "{e}"
    );
}
