//! The node's configuration, as given on swarmd's command line.

use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeKind {
    Libcontainer,
    Containerd,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub socket: PathBuf,
    pub listen_addr: String,
    pub advertise_addr: String,
    /// The node's name (the machine's hostname unless `--hostname`).
    pub hostname: String,
    pub cgroup_parent: String,
    pub insecure_registries: Vec<String>,
    pub runtime: RuntimeKind,
    pub containerd_socket: PathBuf,
    /// swarmd itself: the libcontainer backend re-executes it as the shim.
    pub shim_exe: PathBuf,
    /// `--metrics-addr`: where `/metrics` is served (none: not served).
    pub metrics_addr: Option<String>,
    /// `--web-addr`: where the live web view is served (none: not served).
    pub web_addr: Option<String>,
}
