//! Fixtures shared by every root suite: deterministic busybox images, a real registry on a
//! loopback port, a real swarmd (`swarmd`), several hosts in network namespaces each with
//! its swarmd (`cluster`), helpers to find the built binaries. The suites live in `tests/`.

pub mod browser;
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

/// `GET path` over HTTP/1.0 on `addr` from the calling thread's network namespace: the
/// body, or None when nothing answered (refused, reset, timed out after `read_timeout`)
/// or the answer was not HTTP. A CGI's own headers may end with a bare "\n\n" (busybox
/// httpd passes them through).
pub fn http_get(
    addr: std::net::SocketAddr,
    path: &str,
    read_timeout: std::time::Duration,
) -> Option<String> {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(read_timeout)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out
        .split_once("\r\n\r\n")
        .or_else(|| out.split_once("\n\n"))?;
    head.starts_with("HTTP/1.").then(|| body.trim().to_string())
}
