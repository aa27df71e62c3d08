//! `swarm-runtime`: the libcontainer shim and its helpers (internal subcommands run by
//! the runtime), the `--init` reaper, and a small debug CLI.
//!
//! The internal subcommands must not start a tokio runtime or any thread: libcontainer
//! forks with a raw clone3 and expects a single-threaded process.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use swarm_runtime::container::libcontainer::shim::{self, ExecRequest, Target};
use swarm_runtime::container::libcontainer::{init, LibcontainerRuntime};
use swarm_runtime::container::{ContainerRuntime, ContainerSpec, RuntimeConfig};
use swarm_runtime::image::{Image, ImageConfig};

#[derive(Parser)]
#[command(name = "swarm-runtime", about = "swarm container runtime helpers")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct TargetArgs {
    #[arg(long)]
    bundle: PathBuf,
    #[arg(long)]
    root: PathBuf,
    #[arg(long)]
    id: String,
}

impl From<TargetArgs> for Target {
    fn from(a: TargetArgs) -> Target {
        Target {
            bundle: a.bundle,
            root: a.root,
            id: a.id,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// (internal) create a container and stay with it until it exits
    #[command(hide = true)]
    Shim(TargetArgs),
    /// (internal) start a created container
    #[command(hide = true)]
    Start(TargetArgs),
    /// (internal) run one process in a running container; prints a JSON reply
    #[command(hide = true)]
    Exec {
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long)]
        request: String,
    },
    /// (internal) delete libcontainer's state of a container
    #[command(hide = true)]
    Delete(TargetArgs),
    /// the `--init` reaper: run CMD as a child, forward signals, reap zombies
    Init {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        cmd: Vec<String>,
    },
    /// debug: run a command in a rootfs (one or more layer dirs, lowest first)
    Run {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value = "swarm-debug")]
        cgroup_parent: String,
        /// image layer dirs, lowest first (unless --spec gives the image)
        #[arg(long)]
        layer: Vec<PathBuf>,
        /// a JSON `ContainerSpec` to run instead of building one from the arguments
        #[arg(long)]
        spec: Option<PathBuf>,
        #[arg(long, default_value = "debug")]
        id: String,
        /// create and start, print the pid, then block until killed (a stand-in for a
        /// node process to kill -9) without waiting for or removing the container
        #[arg(long)]
        detach: bool,
        #[arg(long)]
        init: bool,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    match cli.cmd {
        Cmd::Shim(t) => std::process::exit(shim::shim_main(&t.into())),
        Cmd::Start(t) => {
            if let Err(e) = shim::start_main(&t.into()) {
                eprintln!("{e}");
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Delete(t) => {
            if let Err(e) = shim::delete_main(&t.into()) {
                eprintln!("{e}");
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Exec { target, request } => {
            let req: ExecRequest = serde_json::from_str(&request).context("exec request")?;
            let reply = shim::exec_main(&target.into(), &req);
            println!("{}", serde_json::to_string(&reply)?);
            Ok(())
        }
        Cmd::Init { cmd } => {
            let args = match cmd.first().map(String::as_str) {
                Some("--") => &cmd[1..],
                _ => &cmd[..],
            };
            std::process::exit(init::run(args))
        }
        Cmd::Run {
            data_dir,
            cgroup_parent,
            layer,
            spec,
            id,
            detach,
            init,
            args,
        } => {
            let spec = match spec {
                Some(path) => serde_json::from_slice(&std::fs::read(&path)?)
                    .with_context(|| format!("read {}", path.display()))?,
                None => ContainerSpec {
                    id,
                    image: Some(Image {
                        reference: "debug".into(),
                        digest: String::new(),
                        config_digest: String::new(),
                        config: ImageConfig::default(),
                        layers: layer,
                    }),
                    args,
                    init,
                    ..Default::default()
                },
            };
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(run(data_dir, cgroup_parent, spec, detach))
        }
    }
}

async fn run(
    data_dir: PathBuf,
    cgroup_parent: String,
    spec: ContainerSpec,
    detach: bool,
) -> Result<()> {
    let rt = Arc::new(LibcontainerRuntime::new(RuntimeConfig {
        data_dir,
        cgroup_parent,
        shim_exe: std::env::current_exe()?,
    })?);
    let id = spec.id.clone();
    rt.create(&spec).await?;
    rt.start(&id).await?;
    if detach {
        let state = rt.state(&id).await?;
        println!("{}", state.pid.unwrap_or(0));
        std::future::pending::<()>().await;
    }
    let exit = rt.wait(&id).await?;
    let log = std::fs::read_to_string(rt.log_path(&id)).unwrap_or_default();
    print!("{log}");
    rt.remove(&id).await?;
    std::process::exit(exit.code)
}
