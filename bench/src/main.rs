//! Benchmarks: figures printed next to the peer's, with the ratio. Never asserted.
//!
//! `swarm-bench runtime`: median create+start+exit(+remove) latency of one busybox `true`
//! through our libcontainer backend, our containerd backend, `runc run` on the same
//! bundle and `docker run --rm` on the Docker Engine (image from `docker import`).
//!
//! `swarm-bench pull`: pull + unpack of a ~100 MB 5-layer image from a local registry,
//! ours vs `skopeo copy` to a directory, with peak RSS.
//!
//! `swarm-bench services`: one node, `service create --replicas 50` of busybox `sleep 1d`
//! until all running and scale 50 -> 0 until every container is gone, real `swarmd` vs
//! Docker Swarm on the same machine; idle RSS of the daemons and shims.
//!
//! `swarm-bench cluster`: leader failover and worker loss on netns hosts.
//!
//! `swarm-bench net`: overlay throughput and new connections/s over a VIP vs direct, the
//! embedded DNS vs Docker's, and service create until the name answers.
//!
//! `swarm-bench events`: a service scaled to 1,000 tasks with 10 clients on `/events`:
//! every container start seen by every client, and the delay p50/p99, ours vs Docker's.
//!
//! `swarm-bench web`: the web view's redraws while a service scales, and its draw
//! function on 100 nodes x 5,000 tasks, in headless Chromium.
//!
//! `swarm-bench mesh`: throughput and new connections/s to a published port through the
//! routing mesh vs the direct path, and service create until the port answers everywhere.

mod cluster;
mod events;
mod mesh;
mod net;
mod pull;
mod push;
mod runtime;
mod scale;
mod services;
mod stack;
mod util;
mod web;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "swarm-bench",
    about = "Benchmarks against the peer (printed, not asserted)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Container create+start+exit latency: ours vs runc vs docker run.
    Runtime {
        /// Runs per contender (median reported).
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Pull + unpack of a 100 MB, 5-layer image: ours vs skopeo.
    Pull {
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Push and pull of a 100 MB, 5-layer image through swarmd: ours vs skopeo.
    Push {
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// One-node service create N -> running and scale N -> 0: swarmd vs Docker Swarm.
    Services {
        #[arg(long, default_value_t = 50)]
        replicas: usize,
        /// Give swarmd the image by digest (no registry lookup) instead of by tag.
        #[arg(long)]
        pinned: bool,
    },
    /// One-node stack deploy of N services -> running and stack rm: swarm vs Docker Swarm.
    Stack {
        #[arg(long, default_value_t = 20)]
        services: usize,
        /// Give swarmd the image by digest (no registry lookup) instead of by tag.
        #[arg(long)]
        pinned: bool,
    },
    /// A scale to N tasks with S clients on /events: none lost, delay p99: swarmd vs Docker.
    Events {
        #[arg(long, default_value_t = 1000)]
        tasks: usize,
        #[arg(long, default_value_t = 10)]
        subscribers: usize,
    },
    /// The web view: redraws during a scale to N, and 100 nodes x 5,000 tasks drawn.
    Web {
        #[arg(long, default_value_t = 200)]
        tasks: usize,
    },
    /// Leader failover and worker loss on netns hosts (3 managers, 1 worker).
    Cluster,
    /// Overlay throughput and connections/s VIP vs direct, DNS vs Docker's, create→answer.
    Net {
        /// Bytes per throughput transfer.
        #[arg(long, default_value_t = 1 << 30)]
        bytes: u64,
        /// Transfers per path (median reported).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Seconds per rate figure (connections/s, DNS).
        #[arg(long, default_value_t = 4.0)]
        seconds: f64,
    },
    /// Published ports: routing mesh vs direct throughput and connections/s, create→answer.
    Mesh {
        /// Bytes per throughput transfer.
        #[arg(long, default_value_t = 256 << 20)]
        bytes: u64,
        /// Transfers per route (median reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Seconds per connection-rate figure.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Service creates timed until the port answers (median reported).
        #[arg(long, default_value_t = 3)]
        creates: usize,
        /// Docker's mesh: every connection SNATed (cluster label swarm.mesh.snat=true).
        #[arg(long)]
        snat: bool,
    },
    /// Placement through the manager path: 3 Raft managers in one process, fake agents.
    Scale {
        #[arg(long, default_value_t = 1000)]
        nodes: usize,
        #[arg(long, default_value_t = 100_000)]
        tasks: usize,
    },
    /// (internal) Write the pull benchmark's image layout.
    #[command(hide = true)]
    BigLayout { dir: std::path::PathBuf },
    /// (internal) One pull into a fresh store, measured by `pull`.
    #[command(hide = true)]
    PullOnce {
        #[arg(long)]
        reference: String,
        #[arg(long)]
        store: std::path::PathBuf,
        #[arg(long)]
        insecure: String,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Runtime { runs } => runtime::run(runs),
        Cmd::Pull { runs } => pull::run(runs),
        Cmd::Push { runs } => push::run(runs),
        Cmd::Services { replicas, pinned } => services::run(replicas, pinned),
        Cmd::Stack { services, pinned } => stack::run(services, pinned),
        Cmd::Cluster => cluster::run(),
        Cmd::Events { tasks, subscribers } => events::run(tasks, subscribers),
        Cmd::Web { tasks } => web::run(tasks),
        Cmd::Net {
            bytes,
            rounds,
            seconds,
        } => net::run(net::Opts {
            bytes,
            rounds,
            seconds,
        }),
        Cmd::Mesh {
            bytes,
            rounds,
            seconds,
            creates,
            snat,
        } => mesh::run(mesh::Opts {
            bytes,
            rounds,
            seconds,
            creates,
            snat,
        }),
        Cmd::Scale { nodes, tasks } => scale::run(nodes, tasks),
        Cmd::BigLayout { dir } => pull::big_layout(&dir),
        Cmd::PullOnce {
            reference,
            store,
            insecure,
        } => pull::pull_once(&reference, &store, &insecure),
    }
}
