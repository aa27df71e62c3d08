//! Fixtures shared by every root suite: deterministic busybox images, a real registry on a
//! loopback port, a real swarmd (`swarmd`), several hosts in network namespaces each with
//! its swarmd (`cluster`), helpers to find the built binaries. The suites live in `tests/`.

pub mod busybox;
pub mod cluster;
pub mod conformance;
pub mod containerd;
pub mod registry;
pub mod swarmd;

use std::path::PathBuf;

/// Root suites need root; say so plainly instead of failing obscurely.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the root suites need root (real containers, cgroups, mounts)"
    );
}

/// Path of a binary built in this workspace (`swarm-runtime`): next to the running
/// binary (benchmarks), or one level up from a test binary in `target/<profile>/deps/`.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir");
    let path = [dir.join(name), dir.parent().expect("target dir").join(name)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| dir.join(name));
    assert!(
        path.exists(),
        "{} not built; run `cargo build --bins` first",
        path.display()
    );
    path
}
