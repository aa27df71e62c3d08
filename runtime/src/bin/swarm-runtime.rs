//! `swarm-runtime`: the libcontainer shim and its helpers (internal subcommands run by
//! the runtime), the `--init` reaper, and a small debug CLI.
//!
//! The internal subcommands must not start a tokio runtime or any thread: libcontainer
//! forks with a raw clone3 and expects a single-threaded process.

use std::path::PathBuf;
use std::sync::Arc;

use std::io::Write;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use swarm_runtime::container::libcontainer::cli::{self, Internal};
use swarm_runtime::container::libcontainer::LibcontainerRuntime;
use swarm_runtime::container::{logs, ContainerRuntime, ContainerSpec, Resources, RuntimeConfig};
use swarm_runtime::image::{Image, ImageConfig, ImageStore, RegistryOptions};

#[derive(Parser)]
#[command(name = "swarm-runtime", about = "swarm container runtime helpers")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// the shim, its helpers and the `--init` reaper (run by the runtime)
    #[command(flatten)]
    Internal(Internal),
    /// pull an image from a registry into the node's store
    Pull {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// a registry spoken to over plain HTTP (HOST:PORT); repeatable
        #[arg(long = "insecure-registry")]
        insecure: Vec<String>,
        reference: String,
    },
    /// load an OCI image-layout tarball (plain or gzip) into the node's store
    Load {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        file: PathBuf,
    },
    /// list the images in the node's store
    Images {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// run a command in a container, print its output, exit with its exit code
    Run {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// an image from the node's store (pull or load it first)
        #[arg(long)]
        image: Option<String>,
        /// memory limit in bytes (k, m, g suffixes)
        #[arg(long, value_parser = parse_bytes)]
        memory: Option<i64>,
        /// CPU limit, e.g. 0.5
        #[arg(long)]
        cpus: Option<f64>,
        /// max number of processes
        #[arg(long)]
        pids: Option<i64>,
        #[arg(short = 'e', long = "env")]
        env: Vec<String>,
        #[arg(long, default_value = "swarm-debug")]
        cgroup_parent: String,
        /// image layer dirs, lowest first (unless --spec gives the image)
        #[arg(long)]
        layer: Vec<PathBuf>,
        /// a JSON `ContainerSpec` to run instead of building one from the arguments
        #[arg(long)]
        spec: Option<PathBuf>,
        /// container ID (default: run-<pid>)
        #[arg(long)]
        id: Option<String>,
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

fn main() {
    if let Err(e) = real_main() {
        // One line, as `docker run` prints its errors; 125 like docker run's own failures.
        eprintln!("swarm-runtime: {e:#}");
        std::process::exit(125);
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    match cli.cmd {
        Cmd::Internal(cmd) => std::process::exit(cli::run(cmd)),
        Cmd::Pull {
            data_dir,
            insecure,
            reference,
        } => {
            let opts = RegistryOptions {
                insecure,
                ..Default::default()
            };
            let image = tokio_rt()?.block_on(store(&data_dir)?.pull(&reference, &opts))?;
            println!("{}: Pulled {}", image.reference, image.digest);
            Ok(())
        }
        Cmd::Load { data_dir, file } => {
            for image in store(&data_dir)?.load_oci_archive(&file)? {
                println!("Loaded image: {} ({})", image.reference, image.digest);
            }
            Ok(())
        }
        Cmd::Images { data_dir } => {
            println!("{:<50} DIGEST", "REFERENCE");
            for (reference, record) in store(&data_dir)?.list()? {
                println!("{reference:<50} {}", record.digest);
            }
            Ok(())
        }
        Cmd::Run {
            data_dir,
            image,
            memory,
            cpus,
            pids,
            env,
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
                    id: id.unwrap_or_else(|| format!("run-{}", std::process::id())),
                    image: Some(match image {
                        Some(reference) => store(&data_dir)?.get(&reference)?,
                        None => Image {
                            reference: "debug".into(),
                            digest: String::new(),
                            config_digest: String::new(),
                            config: ImageConfig::default(),
                            layers: layer,
                        },
                    }),
                    args,
                    env,
                    init,
                    resources: Resources {
                        memory_bytes: memory.unwrap_or(0),
                        nano_cpus: cpus.map_or(0, |c| (c * 1e9) as i64),
                        pids: pids.unwrap_or(0),
                    },
                    ..Default::default()
                },
            };
            tokio_rt()?.block_on(run(data_dir, cgroup_parent, spec, detach))
        }
    }
}

const DEFAULT_DATA_DIR: &str = "/var/lib/swarm";

fn tokio_rt() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn store(data_dir: &std::path::Path) -> Result<ImageStore> {
    Ok(ImageStore::open(data_dir.join("image"))?)
}

/// `64m`, `1g`, `512k`, `1048576`.
fn parse_bytes(s: &str) -> Result<i64, String> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.strip_suffix(['b']).unwrap_or(&s) {
        n if n.ends_with('k') => (&n[..n.len() - 1], 1i64 << 10),
        n if n.ends_with('m') => (&n[..n.len() - 1], 1 << 20),
        n if n.ends_with('g') => (&n[..n.len() - 1], 1 << 30),
        n => (n, 1),
    };
    num.parse::<f64>()
        .map(|n| (n * mult as f64) as i64)
        .map_err(|_| format!("invalid size: {s}"))
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
    // Print the output as it comes, to stdout or stderr as the container wrote it.
    let waiter = rt.clone();
    let wait_id = id.clone();
    let opts = logs::ReadOptions {
        follow: true,
        until: Some(Box::pin(async move {
            let _ = waiter.wait(&wait_id).await;
        })),
        ..Default::default()
    };
    let mut lines = std::pin::pin!(logs::read(rt.log_path(&id), opts));
    while let Some(entry) = lines.next().await {
        let entry = entry?;
        match entry.stream {
            logs::LogStream::Stdout => std::io::stdout().write_all(&entry.line)?,
            logs::LogStream::Stderr => std::io::stderr().write_all(&entry.line)?,
        }
    }
    let exit = rt.wait(&id).await?;
    rt.remove(&id).await?;
    std::process::exit(exit.code)
}
