//! The conformance suite against the libcontainer backend (root; real containers).
//! Build the binaries first: `cargo build --workspace --bins && cargo test ...`.

use std::path::Path;
use std::sync::Arc;

use rootfs_tests::conformance::{Creator, Ctx};
use swarm_runtime::container::libcontainer::LibcontainerRuntime;
use swarm_runtime::container::{ContainerRuntime, RuntimeConfig};

async fn ctx(name: &str) -> (Ctx, ()) {
    let shim = rootfs_tests::workspace_bin("swarm-runtime");
    let creator_shim = shim.clone();
    let make = |cfg: &RuntimeConfig| -> Arc<dyn ContainerRuntime> {
        Arc::new(LibcontainerRuntime::new(cfg.clone()).expect("libcontainer runtime"))
    };
    // The node stand-in: `swarm-runtime run --spec F --detach` creates and starts the
    // container, prints its pid and blocks until killed.
    let ctx_cell: Arc<std::sync::Mutex<Option<RuntimeConfig>>> = Arc::default();
    let cell = ctx_cell.clone();
    let creator: Creator = Arc::new(move |spec: &Path| {
        let cfg = cell.lock().unwrap().clone().expect("config set");
        let mut cmd = std::process::Command::new(&creator_shim);
        cmd.arg("run")
            .arg("--data-dir")
            .arg(&cfg.data_dir)
            .arg("--cgroup-parent")
            .arg(&cfg.cgroup_parent)
            .arg("--spec")
            .arg(spec)
            .arg("--detach");
        cmd
    });
    let ctx = Ctx::new(name, shim, make, creator).expect("conformance context");
    *ctx_cell.lock().unwrap() = Some(ctx.cfg.clone());
    (ctx, ())
}

rootfs_tests::conformance_suite!(ctx);
