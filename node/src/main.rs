//! `swarmd`: one per machine, as root. Always a worker (the agent half); a manager too
//! once `swarm init` made it one.
//!
//! The same executable is also the libcontainer shim: the runtime re-executes
//! `swarmd shim|start|exec|delete|init ...` for every container. Those internal
//! subcommands are dispatched here, before any tokio runtime or thread exists, because
//! libcontainer forks with a raw clone3 and needs a single-threaded process.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser};
use swarm_node::config::{Config, RuntimeKind};
use swarm_runtime::container::libcontainer::cli::{self, Internal};

#[derive(Parser)]
#[command(
    name = "swarmd",
    version,
    about = "swarm node daemon (Docker Swarm mode, no Docker)"
)]
struct Cli {
    #[command(subcommand)]
    internal: Option<Internal>,
    #[command(flatten)]
    daemon: DaemonArgs,
}

#[derive(Args)]
struct DaemonArgs {
    /// Where the node keeps its state: Raft log, images, containers.
    #[arg(long, default_value = "/var/lib/swarm")]
    data_dir: PathBuf,
    /// The control API's unix socket (the Docker Engine API, Swarm part).
    #[arg(long, default_value = "/run/swarm/swarm.sock")]
    socket: PathBuf,
    /// Cluster port (Raft, CA, dispatcher); not used until nodes can join.
    #[arg(long, default_value = "0.0.0.0:2377")]
    listen_addr: String,
    /// Address other nodes reach this one at (default: the listen address).
    #[arg(long)]
    advertise_addr: Option<String>,
    /// Node name, when it must differ from the machine's hostname.
    #[arg(long)]
    hostname: Option<String>,
    /// cgroup parent of every container of this node.
    #[arg(long, default_value = "swarm")]
    cgroup_parent: String,
    /// A registry spoken to over plain HTTP (HOST:PORT); repeatable.
    #[arg(long = "insecure-registry")]
    insecure_registry: Vec<String>,
    #[arg(long, value_enum, default_value = "libcontainer")]
    runtime: RuntimeKind,
    /// containerd's socket (with `--runtime containerd`).
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    containerd_socket: PathBuf,
    /// Serve Prometheus metrics on HOST:PORT at /metrics (a bare :PORT is loopback only).
    #[arg(long)]
    metrics_addr: Option<String>,
    /// Serve the live web view on HOST:PORT, on managers (a bare :PORT is loopback only).
    #[arg(long)]
    web_addr: Option<String>,
    /// Lay the state of a `swarm backup` archive (`-`: stdin) into `--data-dir`, which
    /// must hold no swarm state yet, then start on it (`swarm init --force-new-cluster`
    /// next makes this node the only manager).
    #[arg(long, value_name = "FILE")]
    restore: Option<PathBuf>,
    /// tracing filter, e.g. `info` or `swarm_node=debug`.
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn main() {
    let cli = Cli::parse();
    if let Some(internal) = cli.internal {
        std::process::exit(cli::run(internal));
    }
    if let Err(e) = run_daemon(cli.daemon) {
        eprintln!("swarmd: {e:#}");
        std::process::exit(1);
    }
}

fn run_daemon(a: DaemonArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&a.log_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Some(file) = &a.restore {
        let m = swarm_node::manager::backup::restore(file, &a.data_dir)
            .with_context(|| format!("restore {}", file.display()))?;
        tracing::info!(
            node = %m.node_id,
            index = m.index,
            autolock = m.autolock,
            "restored a swarm backup into {}",
            a.data_dir.display()
        );
    }
    let hostname = match a.hostname {
        Some(h) => h,
        None => nix::unistd::gethostname()
            .context("hostname")?
            .to_string_lossy()
            .into_owned(),
    };
    let config = Config {
        data_dir: a.data_dir,
        socket: a.socket,
        listen_addr: a.listen_addr.clone(),
        advertise_addr: a.advertise_addr.unwrap_or(a.listen_addr),
        hostname,
        cgroup_parent: a.cgroup_parent,
        insecure_registries: a.insecure_registry,
        runtime: a.runtime,
        containerd_socket: a.containerd_socket,
        shim_exe: std::env::current_exe().context("own executable")?,
        metrics_addr: a.metrics_addr,
        web_addr: a.web_addr,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(swarm_node::daemon::run(config))?;
    Ok(())
}
