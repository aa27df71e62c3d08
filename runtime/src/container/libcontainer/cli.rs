//! The command line of the shim and its helpers (`<exe> shim|start|exec|delete|init`):
//! the runtime spawns these, so their arguments are defined here, next to the spawner,
//! and every binary that can be the shim (`swarmd`, `swarm-runtime`) flattens
//! [`Internal`] into its own commands. They run single-threaded, before any tokio runtime.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::init;
use super::shim::{self, ExecRequest, Target};

#[derive(Args, Clone)]
pub struct TargetArgs {
    #[arg(long)]
    pub bundle: PathBuf,
    #[arg(long)]
    pub root: PathBuf,
    #[arg(long)]
    pub id: String,
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

/// Run by the runtime, never by people: the same set as `swarm-runtime`'s.
#[derive(Subcommand)]
pub enum Internal {
    #[command(hide = true)]
    Shim(TargetArgs),
    #[command(hide = true)]
    Start(TargetArgs),
    #[command(hide = true)]
    Exec {
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long)]
        request: String,
    },
    #[command(hide = true)]
    Delete(TargetArgs),
    #[command(hide = true)]
    Init {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        cmd: Vec<String>,
    },
}

/// The shim and its helpers: single-threaded, no tokio.
pub fn run(cmd: Internal) -> i32 {
    match cmd {
        Internal::Shim(t) => shim::shim_main(&t.into()),
        Internal::Start(t) => match shim::start_main(&t.into()) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("{e}");
                1
            }
        },
        Internal::Delete(t) => match shim::delete_main(&t.into()) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("{e}");
                1
            }
        },
        Internal::Exec { target, request } => {
            let req: ExecRequest = match serde_json::from_str(&request) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("exec request: {e}");
                    return 1;
                }
            };
            if req.attach {
                return shim::exec_attached_main(&target.into(), &req);
            }
            let reply = shim::exec_main(&target.into(), &req);
            match serde_json::to_string(&reply) {
                Ok(s) => {
                    println!("{s}");
                    0
                }
                Err(e) => {
                    eprintln!("exec reply: {e}");
                    1
                }
            }
        }
        Internal::Init { cmd } => {
            let args = match cmd.first().map(String::as_str) {
                Some("--") => &cmd[1..],
                _ => &cmd[..],
            };
            init::run(args)
        }
    }
}
