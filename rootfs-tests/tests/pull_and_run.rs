//! The whole chain on one node: push to a real registry, pull into the store, run
//! containers of the pulled image through both backends. Proves that the image config
//! (entrypoint, cmd, env, user, workdir) reaches the process, that layers stack with
//! their whiteouts and opaque dirs applied, and that containers of one image share its
//! unpacked layers while writing only to their own upper dirs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Result};
use rootfs_tests::busybox::{busybox_layer, tar_files, Compression, OciLayout, TestImage};
use rootfs_tests::containerd::Containerd;
use rootfs_tests::registry::{ManifestKind, Registry};
use swarm_runtime::container::containerd::ContainerdRuntime;
use swarm_runtime::container::libcontainer::LibcontainerRuntime;
use swarm_runtime::container::{logs, ContainerRuntime, ContainerSpec, RuntimeConfig};
use swarm_runtime::image::manifest::node_arch;
use swarm_runtime::image::{Image, ImageConfig, ImageStore, RegistryOptions};

/// Busybox, then a layer adding files, then one deleting a file (whiteout) and
/// replacing a directory's content (opaque dir).
fn layered_image() -> Result<TestImage> {
    Ok(TestImage {
        layers: vec![
            busybox_layer()?,
            tar_files(&[
                ("etc/swarm-version", b"2"),
                ("data/old/a", b"a"),
                ("data/removed", b"x"),
            ])?,
            tar_files(&[
                ("data/.wh.removed", b""),
                ("data/old/.wh..wh..opq", b""),
                ("data/old/b", b"b"),
            ])?,
        ],
        config: ImageConfig {
            entrypoint: vec!["/bin/sh".into(), "-c".into()],
            cmd: vec!["echo cmd-from-image".into()],
            env: vec!["PATH=/bin".into(), "GREETING=from image".into()],
            working_dir: "/home/app".into(),
            user: "app".into(),
            ..Default::default()
        },
        arch: node_arch().to_string(),
        compression: Compression::Gzip,
    })
}

/// Push the image in Docker's v2 schema 2 form and pull it into a fresh store.
async fn pulled(tmp: &std::path::Path, registry: &Registry) -> Result<(ImageStore, Image)> {
    let layout_dir = tmp.join("layout");
    let mut layout = OciLayout::create(&layout_dir)?;
    layout.add_image("app", &layered_image()?)?;
    registry.push(&layout_dir, "app", "e2e/app:2", ManifestKind::DockerV2S2)?;
    let store = ImageStore::open(tmp.join("data/image"))?;
    let opts = RegistryOptions {
        insecure: vec![registry.host()],
        auth: None,
    };
    let image = store
        .pull(&format!("{}/e2e/app:2", registry.host()), &opts)
        .await?;
    Ok((store, image))
}

async fn output(rt: &dyn ContainerRuntime, spec: &ContainerSpec) -> Result<(i32, String)> {
    rt.create(spec).await?;
    rt.start(&spec.id).await?;
    let exit = tokio::time::timeout(Duration::from_secs(60), rt.wait(&spec.id)).await??;
    let mut text = String::new();
    let entries = logs::read(rt.log_path(&spec.id), logs::ReadOptions::default());
    for e in futures::StreamExt::collect::<Vec<_>>(entries).await {
        text.push_str(&String::from_utf8_lossy(&e?.line));
    }
    Ok((exit.code, text))
}

async fn check(rt: Arc<dyn ContainerRuntime>, image: Image) -> Result<()> {
    let base = ContainerSpec {
        image: Some(image.clone()),
        ..Default::default()
    };

    // The image's entrypoint + cmd, user, workdir and env, untouched.
    let spec = ContainerSpec {
        id: "e2e-default".into(),
        ..base.clone()
    };
    let (code, out) = output(rt.as_ref(), &spec).await?;
    ensure!(
        code == 0 && out == "cmd-from-image\n",
        "default run: {code} {out:?}"
    );
    rt.remove(&spec.id).await?;

    // Args replace Cmd and go to the image's entrypoint (`sh -c`).
    let script = "echo $(id -un) $(pwd) \"$GREETING\"; cat /etc/swarm-version; echo; \
                  ls /data/old; test -e /data/removed && echo removed-visible; \
                  echo mine > /tmp/written; exit 4";
    let mut ids = Vec::new();
    for n in 0..2 {
        let spec = ContainerSpec {
            id: format!("e2e-{n}"),
            args: vec![script.into()],
            ..base.clone()
        };
        let (code, out) = output(rt.as_ref(), &spec).await?;
        ensure!(code == 4, "exit code {code}: {out}");
        ensure!(
            out == "app /home/app from image\n2\nb\n",
            "container output: {out:?}"
        );
        ids.push(spec.id);
    }
    // The writes went to each container's upper dir, never into the shared layers.
    for layer in &image.layers {
        ensure!(
            !layer.join("tmp/written").exists(),
            "a container wrote into {layer:?}"
        );
    }
    for id in ids {
        rt.remove(&id).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulled_image_runs_on_libcontainer() -> Result<()> {
    rootfs_tests::require_root();
    let tmp = tempfile::Builder::new().prefix("swarm-e2e-").tempdir()?;
    let registry = Registry::start()?;
    let (_store, image) = pulled(tmp.path(), &registry).await?;
    let cfg = RuntimeConfig {
        data_dir: tmp.path().join("data"),
        cgroup_parent: format!("swarm-e2e-lc-{}", std::process::id()),
        shim_exe: rootfs_tests::workspace_bin("swarm-runtime"),
    };
    check(Arc::new(LibcontainerRuntime::new(cfg)?), image).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulled_image_runs_on_containerd() -> Result<()> {
    rootfs_tests::require_root();
    let tmp = tempfile::Builder::new().prefix("swarm-e2e-").tempdir()?;
    let registry = Registry::start()?;
    let (_store, image) = pulled(tmp.path(), &registry).await?;
    let ctrd = Containerd::start().await?;
    let cfg = RuntimeConfig {
        data_dir: tmp.path().join("data"),
        cgroup_parent: format!("swarm-e2e-ctrd-{}", std::process::id()),
        shim_exe: rootfs_tests::workspace_bin("swarm-runtime"),
    };
    let ns = format!("e2e{}", std::process::id());
    let rt = ContainerdRuntime::connect(cfg, &ctrd.socket, &ns).await?;
    check(Arc::new(rt), image).await
}
