//! The conformance suite against the containerd backend (root; real containers), each
//! check with its own private containerd. Build the binaries first (`--init` runs the
//! `swarm-runtime` executable): `cargo build --workspace --bins && cargo test ...`.
//!
//! The "node process" the adoption check kills is this test binary re-run as
//! [`zz_creator_process`]: `sh` execs it with fd 3 on the check's pipe and stdout on
//! /dev/null, so the pid line is the first thing the check reads (libtest prints its own
//! header on stdout) and the process the check kills is the one that created the container.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use rootfs_tests::conformance::{self, Creator, Ctx};
use rootfs_tests::containerd::Containerd;
use swarm_runtime::container::containerd::ContainerdRuntime;
use swarm_runtime::container::{ContainerRuntime, ContainerSpec, RuntimeConfig, Status};

const CREATOR_ENV: &str = "SWARM_CTRD_CREATOR";

/// Connect from sync code (the suite's `make`/`reopen` hooks) inside the test's runtime.
fn connect(cfg: &RuntimeConfig, socket: &Path, ns: &str) -> Arc<dyn ContainerRuntime> {
    let rt = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(ContainerdRuntime::connect(
            cfg.clone(),
            socket,
            ns,
        ))
    });
    Arc::new(rt.expect("connect to the test containerd"))
}

async fn ctx(name: &str) -> (Ctx, Containerd) {
    let ctrd = Containerd::start()
        .await
        .expect("start a private containerd");
    let socket = ctrd.socket.clone();
    let shim = rootfs_tests::workspace_bin("swarm-runtime");
    // A namespace per check: runc's state dir (/run/containerd/runc/<ns>) is shared by
    // every containerd on the machine.
    let ns = format!("t{}-{name}", std::process::id());
    let (sock, ns2) = (socket.clone(), ns.clone());
    let make = move |cfg: &RuntimeConfig| connect(cfg, &sock, &ns2);
    let cfg_cell: Arc<std::sync::Mutex<Option<RuntimeConfig>>> = Arc::default();
    let cell = cfg_cell.clone();
    let creator: Creator = Arc::new(move |spec: &Path| {
        let cfg = cell.lock().unwrap().clone().expect("config set");
        let exe = std::env::current_exe().expect("test exe");
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(r#"exec "$0" --exact zz_creator_process --nocapture --test-threads=1 3>&1 >/dev/null"#)
            .arg(exe)
            .env(CREATOR_ENV, spec)
            .env("SWARM_CTRD_SOCKET", &socket)
            .env("SWARM_CTRD_NS", &ns)
            .env("SWARM_CTRD_DATA", &cfg.data_dir)
            .env("SWARM_CTRD_CGROUP", &cfg.cgroup_parent)
            .env("SWARM_CTRD_SHIM", &cfg.shim_exe);
        cmd
    });
    let ctx = Ctx::new(name, shim, make, creator).expect("conformance context");
    *cfg_cell.lock().unwrap() = Some(ctx.cfg.clone());
    (ctx, ctrd)
}

/// Not a check: the node stand-in of `adoption_after_caller_killed`. Without its
/// environment it does nothing. With it: create and start the container of the spec
/// file, write its pid on fd 3, then block until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zz_creator_process() -> Result<()> {
    let Some(spec_file) = std::env::var_os(CREATOR_ENV) else {
        return Ok(());
    };
    let var = |k: &str| {
        std::env::var_os(k)
            .map(PathBuf::from)
            .context(k.to_string())
    };
    let cfg = RuntimeConfig {
        data_dir: var("SWARM_CTRD_DATA")?,
        cgroup_parent: std::env::var("SWARM_CTRD_CGROUP")?,
        shim_exe: var("SWARM_CTRD_SHIM")?,
    };
    let ns = std::env::var("SWARM_CTRD_NS")?;
    let rt = ContainerdRuntime::connect(cfg, &var("SWARM_CTRD_SOCKET")?, &ns).await?;
    let spec: ContainerSpec = serde_json::from_slice(&std::fs::read(spec_file)?)?;
    rt.create(&spec).await?;
    rt.start(&spec.id).await?;
    let pid = rt.state(&spec.id).await?.pid.context("no pid")?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/fd/3")?;
    writeln!(out, "{pid}")?;
    drop(out);
    std::future::pending::<()>().await;
    Ok(())
}

rootfs_tests::conformance_suite!(ctx);

fn log_lines(rt: &dyn ContainerRuntime, id: &str) -> usize {
    std::fs::read_to_string(rt.log_path(id))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// containerd specifics: a container that exits while no caller watches keeps its exit
/// code (containerd holds it until we delete the task), and log copying resumes for a
/// running one after the caller comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adoption_of_exited_and_running() {
    let (ctx, _ctrd) = ctx("adopt_both").await;
    conformance::run(&ctx, |ctx: &Ctx| async move {
        let long = ctx.spec(
            "long",
            "trap 'exit 143' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
        );
        let short = ctx.spec("short", "sleep 0.3; exit 5");
        // A caller of its own (ctx.rt never looks at these until cleanup)...
        let rt = (ctx.reopen)();
        for s in [&long, &short] {
            rt.create(s).await?;
            rt.start(&s.id).await?;
        }
        let pid = rt.state(&long.id).await?.pid;
        let short_pid = rt.state(&short.id).await?.pid.context("short pid")?;
        // ...that "dies": nothing watches or copies any more.
        drop(rt);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{short_pid}")).exists() {
            ensure!(Instant::now() < deadline, "short did not exit");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let rt = (ctx.reopen)();
        let ids: Vec<String> = rt.list().await?.into_iter().map(|s| s.id).collect();
        ensure!(ids == [long.id.clone(), short.id.clone()], "{ids:?}");
        let st = rt.state(&long.id).await?;
        ensure!(st.status == Status::Running && st.pid == pid, "{st:?}");
        ensure!(rt.wait(&short.id).await?.code == 5);
        let before = log_lines(&*rt, &long.id);
        let deadline = Instant::now() + Duration::from_secs(10);
        while log_lines(&*rt, &long.id) < before + 3 {
            ensure!(Instant::now() < deadline, "log copying did not resume");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ensure!(rt.stop(&long.id, None, Duration::from_secs(5)).await?.code == 143);
        Ok(())
    })
    .await
    .unwrap();
}
