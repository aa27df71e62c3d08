//! Push and pull of a ~100 MB, 5-layer image of incompressible data through a real
//! swarmd (`swarm image push` / `swarm image pull`, the CLI binary, unix socket) vs
//! `skopeo copy` of the same image to and from the same loopback registry. Goal: within
//! 1.1x of skopeo. Each run pushes to a fresh registry per contender (no blob exists
//! anywhere to mount from: skopeo's blob-info cache would otherwise mount what an earlier
//! run uploaded) and pulls into an empty store (swarm pull also unpacks; skopeo writes a
//! `dir:`).
//!
//! ```text
//!  layout ──skopeo──▶ registry A (source) ──swarm pull (warm-up)──▶ swarmd store
//!  swarmd ──swarm image push──▶ registry B /ours-N      layout ──skopeo──▶ B /peer-N
//!  B /ours-N ──swarm image pull──▶ swarmd (image removed first)   B ──skopeo──▶ dir:
//! ```

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use rootfs_tests::registry::{ManifestKind, Registry};
use rootfs_tests::swarmd::{Swarmd, SwarmdConfig};

pub fn run(runs: usize) -> Result<()> {
    rootfs_tests::require_root();
    let tmp = tempfile::tempdir()?;
    let source = Registry::start()?;
    let layout = tmp.path().join("layout");
    let status = Command::new(std::env::current_exe()?)
        .arg("big-layout")
        .arg(&layout)
        .status()?;
    ensure!(status.success(), "building the image layout failed");
    source.push(&layout, "big", "bench/big:1", ManifestKind::OciManifest)?;
    let swarmd = Swarmd::start(SwarmdConfig {
        dir: tmp.path().join("swarmd"),
        hostname: "bench".into(),
        cgroup: format!("swarm-bench-push-{}", std::process::id()),
        registry: source.host(),
        netns: None,
        addr: None,
    })?;
    let big = format!("{}/bench/big:1", source.host());
    swarm(&swarmd, &["image", "pull", "-q", &big])?;
    println!("push and pull of 100 MiB in 5 layers, loopback registry, median of {runs}\n");

    let (mut ours_push, mut peer_push, mut ours_pull, mut peer_pull) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        // A fresh registry per contender and run: skopeo remembers where it saw each
        // blob (its blob-info cache) and would mount it from an earlier run's repository
        // instead of uploading it.
        let (target, peer_target) = (Registry::start()?, Registry::start()?);
        let ours = format!("{}/bench/ours-{i}:1", target.host());
        swarm(&swarmd, &["image", "tag", &big, &ours])?;
        ours_push.push(timed(|| swarm(&swarmd, &["image", "push", "-q", &ours]))?);

        let peer = format!("{}/bench/peer-{i}:1", peer_target.host());
        peer_push.push(timed(|| {
            skopeo(&[
                "--dest-tls-verify=false",
                &format!("oci:{}:big", layout.display()),
                &format!("docker://{peer}"),
            ])
        })?);

        // Pull back what we pushed into an empty store.
        swarm(&swarmd, &["image", "rm", "-f", &ours])?;
        swarm(&swarmd, &["image", "rm", "-f", &big])?;
        ours_pull.push(timed(|| swarm(&swarmd, &["image", "pull", "-q", &ours]))?);
        swarm(&swarmd, &["image", "tag", &ours, &big])?;
        swarm(&swarmd, &["image", "rm", &ours])?;

        let dest = tmp.path().join(format!("skopeo-{i}"));
        peer_pull.push(timed(|| {
            skopeo(&[
                "--src-tls-verify=false",
                &format!("docker://{peer}"),
                &format!("dir:{}", dest.display()),
            ])
        })?);
        std::fs::remove_dir_all(&dest)?;
    }
    for (what, ours, peer, peer_name) in [
        (
            "push",
            median(&mut ours_push),
            median(&mut peer_push),
            "skopeo copy oci: -> registry",
        ),
        (
            "pull (+ unpack)",
            median(&mut ours_pull),
            median(&mut peer_pull),
            "skopeo copy registry -> dir: (no unpack)",
        ),
    ] {
        println!(
            "{:<42} {:>10}",
            format!("swarm image {what}"),
            crate::util::ms(ours)
        );
        println!(
            "{:<42} {:>10}   swarm is {}",
            peer_name,
            crate::util::ms(peer),
            ratio(ours, peer)
        );
    }
    Ok(())
}

/// `1.05x slower` / `1.20x faster`: ours against the peer.
pub fn ratio(ours: Duration, peer: Duration) -> String {
    let (o, p) = (ours.as_secs_f64(), peer.as_secs_f64());
    if o > p {
        format!("{:.2}x slower", o / p)
    } else {
        format!("{:.2}x faster", p / o)
    }
}

fn swarm(swarmd: &Swarmd, args: &[&str]) -> Result<()> {
    let r = swarmd.swarm(args)?;
    ensure!(r.ok, "swarm {args:?}: {}{}", r.stdout, r.stderr);
    Ok(())
}

fn skopeo(args: &[&str]) -> Result<()> {
    let out = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--quiet"])
        .args(args)
        .stdout(Stdio::null())
        .output()
        .context("run skopeo")?;
    ensure!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn timed(f: impl FnOnce() -> Result<()>) -> Result<Duration> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_worded_right() {
        let ms = Duration::from_millis;
        assert_eq!(ratio(ms(1050), ms(1000)), "1.05x slower");
        assert_eq!(ratio(ms(1000), ms(1200)), "1.20x faster");
    }
}
