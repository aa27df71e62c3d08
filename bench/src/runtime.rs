//! Container create+start+exit latency, one busybox `true` at a time, median of N:
//! our libcontainer backend, our containerd backend, `runc run` on the same bundle and
//! `docker run --rm` (image from `docker import` of the same rootfs).
//! Goal (issue 2): ours at or below runc's median, at least 3x faster than docker run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use swarm_runtime::container::{ContainerRuntime, ContainerSpec, RuntimeConfig};
use swarm_runtime::image::{Image, ImageConfig};

use crate::util::{have, median, row};

pub fn run(runs: usize) -> Result<()> {
    anyhow::ensure!(
        nix::unistd::geteuid().is_root(),
        "the runtime benchmark needs root"
    );
    let tmp = tempfile::tempdir()?;
    let rootfs = tmp.path().join("rootfs");
    rootfs_tests::busybox::rootfs(&rootfs)?;
    let shim = rootfs_tests::workspace_bin("swarm-runtime");
    println!("create+start+exit+remove of busybox `true`, median of {runs} runs\n");

    let rt = tokio::runtime::Runtime::new()?;
    let ours = rt.block_on(bench_ours(
        "libcontainer",
        runs,
        tmp.path(),
        &rootfs,
        &shim,
        None,
    ));
    let ours_ok = ours.as_ref().ok().copied();
    row("swarm (libcontainer backend)", ours, None);

    let containerd = rt.block_on(async {
        let ctd = rootfs_tests::containerd::Containerd::start()
            .await
            .map_err(|e| format!("private containerd: {e:#}"))?;
        bench_ours("containerd", runs, tmp.path(), &rootfs, &shim, Some(&ctd)).await
    });
    row("swarm (containerd backend)", containerd, None);

    row(
        "runc run (same bundle)",
        bench_runc(runs, tmp.path(), &rootfs),
        ours_ok,
    );
    row(
        "docker run --rm (Docker Engine)",
        bench_docker(runs, &rootfs),
        ours_ok,
    );
    Ok(())
}

fn image(rootfs: &Path) -> Image {
    Image {
        reference: "bench/busybox".into(),
        digest: String::new(),
        config_digest: String::new(),
        config: ImageConfig {
            cmd: vec!["true".into()],
            env: vec!["PATH=/bin".into()],
            ..Default::default()
        },
        layers: vec![rootfs.to_path_buf()],
    }
}

async fn bench_ours(
    backend: &str,
    runs: usize,
    tmp: &Path,
    rootfs: &Path,
    shim: &Path,
    containerd: Option<&rootfs_tests::containerd::Containerd>,
) -> Result<Duration, String> {
    let cfg = RuntimeConfig {
        data_dir: tmp.join(format!("data-{backend}")),
        cgroup_parent: format!("swarm-bench-{backend}"),
        shim_exe: shim.to_path_buf(),
    };
    let image = image(rootfs);
    {
        let runtime: Arc<dyn ContainerRuntime> = match containerd {
            None => Arc::new(
                swarm_runtime::container::libcontainer::LibcontainerRuntime::new(cfg)
                    .map_err(|e| e.to_string())?,
            ),
            Some(ctd) => Arc::new(
                swarm_runtime::container::containerd::ContainerdRuntime::connect(
                    cfg,
                    &ctd.socket,
                    "swarm-bench",
                )
                .await
                .map_err(|e| e.to_string())?,
            ),
        };
        let mut times = Vec::with_capacity(runs);
        for i in 0..=runs {
            let spec = ContainerSpec {
                id: format!("bench-{backend}-{i}"),
                image: Some(image.clone()),
                ..Default::default()
            };
            let start = std::time::Instant::now();
            let once = async {
                runtime.create(&spec).await?;
                runtime.start(&spec.id).await?;
                let exit = runtime.wait(&spec.id).await?;
                runtime.remove(&spec.id).await?;
                Ok::<_, swarm_runtime::Error>(exit)
            };
            let exit = once.await.map_err(|e| e.to_string())?;
            if exit.code != 0 {
                return Err(format!("container exited {}", exit.code));
            }
            if i > 0 {
                times.push(start.elapsed()); // run 0 is the warm-up
            }
        }
        times.sort();
        Ok(times[times.len() / 2])
    }
}

fn bench_runc(runs: usize, tmp: &Path, rootfs: &Path) -> Result<Duration, String> {
    if !have("runc") {
        return Err("runc not installed".into());
    }
    let bundle = tmp.join("runc-bundle");
    let inner = || -> Result<Duration> {
        std::fs::create_dir_all(&bundle)?;
        let status = Command::new("runc")
            .arg("spec")
            .current_dir(&bundle)
            .status()?;
        anyhow::ensure!(status.success(), "runc spec failed");
        let path = bundle.join("config.json");
        let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        spec["process"]["terminal"] = false.into();
        spec["process"]["args"] = serde_json::json!(["true"]);
        spec["root"]["readonly"] = false.into();
        spec["root"]["path"] = rootfs.to_str().context("rootfs path")?.into();
        spec["linux"]["cgroupsPath"] = "/swarm-bench-runc/c".into();
        std::fs::write(&path, serde_json::to_vec_pretty(&spec)?)?;
        median(runs, |i| {
            let status = Command::new("runc")
                .args(["run", "--bundle"])
                .arg(&bundle)
                .arg(format!("bench-runc-{i}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()?;
            if !status.success() {
                bail!("runc run failed: {status}");
            }
            Ok(())
        })
    };
    inner().map_err(|e| format!("{e:#}"))
}

fn bench_docker(runs: usize, rootfs: &Path) -> Result<Duration, String> {
    let inner = || -> Result<Duration> {
        let ok = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output();
        anyhow::ensure!(
            ok.map(|o| o.status.success()).unwrap_or(false),
            "no Docker Engine"
        );
        // docker import of the same rootfs (no registry needed for Docker).
        let tar = Command::new("tar")
            .args(["-C"])
            .arg(rootfs)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()?;
        let status = Command::new("docker")
            .args(["import", "-", "swarm-bench/busybox:latest"])
            .stdin(tar.stdout.context("tar stdout")?)
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "docker import failed");
        let d = median(runs, |_| {
            let status = Command::new("docker")
                .args(["run", "--rm", "swarm-bench/busybox:latest", "true"])
                .stdout(Stdio::null())
                .status()?;
            anyhow::ensure!(status.success(), "docker run failed");
            Ok(())
        });
        let _ = Command::new("docker")
            .args(["rmi", "swarm-bench/busybox:latest"])
            .stdout(Stdio::null())
            .status();
        d
    };
    inner().map_err(|e| format!("{e:#}"))
}
