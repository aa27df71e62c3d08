//! Pull + unpack of a ~100 MB, 5-layer image of incompressible data from a registry on
//! loopback: ours (a fresh store each run, in a child process so its peak RSS is its own)
//! vs `skopeo copy` of the same image to a directory. Goal (issue 2): within 1.2x of
//! skopeo. Prints medians and peak RSS.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use rootfs_tests::busybox::{big_image, OciLayout};
use rootfs_tests::registry::{ManifestKind, Registry};

const SIZE: usize = 100 << 20;
const LAYERS: usize = 5;

pub fn run(runs: usize) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let registry = Registry::start()?;
    let layout_dir = tmp.path().join("layout");
    let me = std::env::current_exe()?;
    // Built in a child: a peak RSS is inherited through fork+exec (the kernel records the
    // parent's high-water mark at exec), so this process must stay small.
    let status = Command::new(&me)
        .arg("big-layout")
        .arg(&layout_dir)
        .status()?;
    ensure!(status.success(), "building the image layout failed");
    registry.push(&layout_dir, "big", "bench/big:1", ManifestKind::OciManifest)?;
    let reference = format!("{}/bench/big:1", registry.host());
    println!(
        "pull + unpack of {} MiB in {LAYERS} layers from {reference}, median of {runs}\n",
        SIZE >> 20
    );

    let mut ours = Vec::new();
    let mut ours_rss = 0u64;
    let mut peer = Vec::new();
    let mut peer_rss = 0u64;
    for i in 0..runs {
        let data = tmp.path().join(format!("store-{i}"));
        let (d, rss) = timed(
            Command::new(&me)
                .args([
                    "pull-once",
                    "--reference",
                    &reference,
                    "--insecure",
                    &registry.host(),
                ])
                .arg("--store")
                .arg(&data),
        )?;
        ours.push(d);
        ours_rss = ours_rss.max(rss);
        std::fs::remove_dir_all(&data)?;

        let dest = tmp.path().join(format!("skopeo-{i}"));
        let (d, rss) = timed(
            Command::new("skopeo")
                .args([
                    "--insecure-policy",
                    "copy",
                    "--quiet",
                    "--src-tls-verify=false",
                ])
                .arg(format!("docker://{reference}"))
                .arg(format!("dir:{}", dest.display())),
        )?;
        peer.push(d);
        peer_rss = peer_rss.max(rss);
        std::fs::remove_dir_all(&dest)?;
    }
    let (o, p) = (median(&mut ours), median(&mut peer));
    println!(
        "{:<36} {:>10}   peak RSS {:>6.1} MiB",
        "swarm pull + unpack",
        crate::util::ms(o),
        ours_rss as f64 / 1024.0
    );
    println!(
        "{:<36} {:>10}   peak RSS {:>6.1} MiB   ours/skopeo = {:.2}x",
        "skopeo copy to dir: (no unpack)",
        crate::util::ms(p),
        peer_rss as f64 / 1024.0,
        o.as_secs_f64() / p.as_secs_f64()
    );
    Ok(())
}

/// The benchmark image as an OCI layout in `dir`, entry `big`.
pub fn big_layout(dir: &Path) -> Result<()> {
    let mut layout = OciLayout::create(dir)?;
    layout.add_image("big", &big_image(SIZE, LAYERS, 42)?)?;
    Ok(())
}

/// The pull, in this (child) process.
pub fn pull_once(reference: &str, store: &Path, insecure: &str) -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let store = swarm_runtime::image::ImageStore::open(store)?;
        let opts = swarm_runtime::image::RegistryOptions {
            insecure: vec![insecure.to_string()],
            ..Default::default()
        };
        store.pull(reference, &opts).await?;
        Ok(())
    })
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Run a command to completion; its wall time and its own peak RSS in KiB (wait4).
fn timed(cmd: &mut Command) -> Result<(Duration, u64)> {
    let start = Instant::now();
    let child = cmd.stdout(Stdio::null()).spawn().context("spawn")?;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter; the pid is our own child, waited once.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed();
    ensure!(pid > 0, "wait4: {}", std::io::Error::last_os_error());
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed: {status}"
    );
    Ok((elapsed, usage.ru_maxrss as u64))
}
