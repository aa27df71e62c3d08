//! Pull suite: a real registry (Debian's docker-registry 2.8) on loopback, images built
//! deterministically and pushed with skopeo in all four manifest kinds, pulled and
//! unpacked by `swarm_runtime::image::ImageStore`. Traffic stays on 127.0.0.1.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use rootfs_tests::busybox::{self, busybox_image, default_config, tar_files, OciLayout, TestImage};
use rootfs_tests::registry::{free_port, ManifestKind, Proxy, Registry, TokenRequest};
use swarm_runtime::image::manifest::node_arch;
use swarm_runtime::image::{
    HealthConfig, Image, ImageConfig, ImageStore, RegistryAuth, RegistryOptions,
};
use swarm_runtime::Error;

fn insecure(host: &str) -> RegistryOptions {
    RegistryOptions {
        insecure: vec![host.to_string()],
        auth: None,
    }
}

/// A config that exercises every field the runtime reads.
fn full_config() -> ImageConfig {
    ImageConfig {
        entrypoint: vec!["/bin/sh".into(), "-c".into()],
        cmd: vec!["cat /etc/swarm-version".into()],
        env: vec!["PATH=/bin".into(), "GREETING=hello world".into()],
        working_dir: "/home/app".into(),
        user: "1000:1000".into(),
        stop_signal: Some("SIGQUIT".into()),
        healthcheck: Some(HealthConfig {
            test: vec!["CMD-SHELL".into(), "test -f /etc/swarm-version".into()],
            interval: Duration::from_millis(1500),
            timeout: Duration::from_secs(2),
            start_period: Duration::from_secs(3),
            retries: 4,
        }),
        labels: [("org.swarm.test".to_string(), "full".to_string())].into(),
    }
}

/// Files below `root` that are not named by the sha256 of their content.
fn unverified_blobs(store: &ImageStore) -> Vec<String> {
    let dir = store.root().join("blobs/sha256");
    std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            let want = format!("sha256:{}", e.file_name().to_string_lossy());
            busybox::sha256_digest(&std::fs::read(e.path()).unwrap()) != want
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn count(dir: &Path) -> usize {
    let names: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    names.len()
}

fn check_busybox(image: &Image, version: &str) {
    assert_eq!(image.layers.len(), 2, "{image:?}");
    assert!(image.layers[0].join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_link(image.layers[0].join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        std::fs::read_to_string(image.layers[1].join("etc/swarm-version")).unwrap(),
        version
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn four_manifest_kinds_pull_and_unpack_with_their_config() -> Result<()> {
    let registry = Registry::start()?;
    let tmp = tempfile::tempdir()?;
    let mut layout = OciLayout::create(&tmp.path().join("layout"))?;
    let img = busybox_image("1", full_config())?;
    let single = layout.add_image("single", &img)?;
    let multi = layout.add_multiarch("multi", &img)?;

    for kind in ManifestKind::ALL {
        let name = format!("kinds/{kind:?}").to_lowercase();
        let ref_name = if kind.is_index() { "multi" } else { "single" };
        registry.push(&layout.dir, ref_name, &format!("{name}:1"), kind)?;
        assert_eq!(
            registry.manifest_content_type(&name, "1")?,
            kind.media_type(),
            "{kind:?}"
        );

        let store = ImageStore::open(tmp.path().join(format!("store-{kind:?}")))?;
        let reference = format!("{}/{name}:1", registry.host());
        let image = store.pull(&reference, &insecure(&registry.host())).await?;
        assert_eq!(image.reference, reference);
        assert_eq!(image.config, full_config(), "{kind:?}: config");
        check_busybox(&image, "1");
        // OCI pushes keep our bytes: the digests are the fixture's.
        match kind {
            ManifestKind::OciManifest => {
                assert_eq!(image.digest, single.manifest_digest);
                assert_eq!(image.config_digest, single.config_digest);
            }
            ManifestKind::OciIndex => {
                assert_eq!(image.digest, multi.for_arch(node_arch()).manifest_digest);
                let by_index = store.get(&multi.index_digest)?;
                assert_eq!(by_index.digest, image.digest);
            }
            _ => {}
        }
        // Local lookups: by reference, by manifest digest, by config digest, by ID prefix.
        for key in [
            reference.clone(),
            image.digest.clone(),
            image.config_digest.clone(),
            image.config_digest["sha256:".len()..][..12].to_string(),
            format!("{}/{name}@{}", registry.host(), image.digest),
        ] {
            assert_eq!(store.get(&key)?.digest, image.digest, "get {key}");
        }
        assert!(matches!(
            store.get("nothing:here"),
            Err(Error::NoSuchImage(_))
        ));
        assert!(unverified_blobs(&store).is_empty());
        assert_eq!(count(&store.root().join("tmp")), 0);

        // By digest, straight from the registry.
        let by_digest = format!("{}/{name}@{}", registry.host(), image.digest);
        let again = store.pull(&by_digest, &insecure(&registry.host())).await?;
        assert_eq!(again.digest, image.digest);
        assert_eq!(again.layers, image.layers);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn whiteouts_in_a_pulled_layer_become_overlayfs_whiteouts() -> Result<()> {
    rootfs_tests::require_root();
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let registry = Registry::start()?;
    let tmp = tempfile::tempdir()?;
    let mut layout = OciLayout::create(&tmp.path().join("layout"))?;
    let mut img = busybox_image("1", default_config())?;
    img.layers.push(tar_files(&[
        ("etc/.wh.swarm-version", b""),
        ("home/.wh..wh..opq", b""),
        ("home/fresh", b"new"),
    ])?);
    layout.add_image("wh", &img)?;
    registry.push(&layout.dir, "wh", "wh:1", ManifestKind::OciManifest)?;
    let store = ImageStore::open(tmp.path().join("store"))?;
    let image = store
        .pull(
            &format!("{}/wh:1", registry.host()),
            &insecure(&registry.host()),
        )
        .await?;
    let top = &image.layers[2];
    let wh = std::fs::symlink_metadata(top.join("etc/swarm-version"))?;
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert_eq!(
        xattr::get(top.join("home"), "trusted.overlay.opaque")?,
        Some(b"y".to_vec())
    );
    assert!(!top.join("home/.wh..wh..opq").exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_blob_is_detected_and_nothing_becomes_visible() -> Result<()> {
    let registry = Registry::start()?;
    let tmp = tempfile::tempdir()?;
    let (layout, built) =
        busybox::busybox_layout(&tmp.path().join("layout"), "t", "1", default_config())?;
    registry.push(&layout.dir, "t", "tamper:1", ManifestKind::OciManifest)?;

    // Flip one byte in the middle of the top layer, keeping its size.
    let bad = built.layer_digests[1].clone();
    let data = registry.blob_data_path(&bad);
    let mut bytes = std::fs::read(&data)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data, &bytes)?;

    let store = ImageStore::open(tmp.path().join("store"))?;
    let reference = format!("{}/tamper:1", registry.host());
    let err = store
        .pull(&reference, &insecure(&registry.host()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&reference) && msg.contains(&bad), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(!err.is_retryable());

    assert!(!store.has_blob(&bad), "tampered blob stored");
    assert_eq!(
        count(&store.root().join("layers")),
        0,
        "a layer was unpacked"
    );
    assert!(matches!(store.get(&reference), Err(Error::NoSuchImage(_))));
    assert!(store.list()?.is_empty());
    assert!(unverified_blobs(&store).is_empty());
    assert_eq!(count(&store.root().join("tmp")), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_pulls_download_each_blob_once() -> Result<()> {
    let registry = Registry::start()?;
    let proxy = Proxy::start(registry.port())?;
    let tmp = tempfile::tempdir()?;
    let mut layout = OciLayout::create(&tmp.path().join("layout"))?;
    let mut img = busybox::big_image(12 << 20, 3, 42)?;
    img.layers.insert(0, busybox::busybox_layer()?);
    let built = layout.add_image("c", &img)?;
    registry.push(&layout.dir, "c", "conc:1", ManifestKind::OciManifest)?;
    let store = ImageStore::open(tmp.path().join("store"))?;
    let spawn = |host: String| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .pull(&format!("{host}/conc:1"), &insecure(&host))
                .await
        })
    };

    // The first pull is held mid-download by the proxy: it owns the in-flight downloads.
    proxy.stall_after(2 << 20);
    let first = spawn(proxy.host());
    wait_for("the first pull to stall", Duration::from_secs(20), || {
        proxy.stalled()
    })
    .await?;
    // Three more pulls, straight to the registry, join every download still under way.
    let others: Vec<_> = (0..3).map(|_| spawn(registry.host())).collect();
    wait_for(
        "the other pulls to wait on the first",
        Duration::from_secs(20),
        || {
            let flying = store.in_flight();
            !flying.is_empty() && flying.iter().all(|(_, pulls)| *pulls == 4)
        },
    )
    .await?;
    proxy.pass();
    let mut images = vec![first.await??];
    for p in others {
        images.push(p.await??);
    }
    assert!(images.windows(2).all(|w| w[0].layers == w[1].layers));
    // The registry's own log: every blob was sent once.
    for digest in built.layer_digests.iter().chain([&built.config_digest]) {
        assert_eq!(registry.blob_gets("conc", digest)?, 1, "GETs of {digest}");
    }
    // A later pull finds everything in the store.
    store
        .pull(
            &format!("{}/conc:1", registry.host()),
            &insecure(&registry.host()),
        )
        .await?;
    for digest in &built.layer_digests {
        assert_eq!(registry.blob_gets("conc", digest)?, 1, "GETs of {digest}");
    }
    assert!(store.in_flight().is_empty());
    Ok(())
}

async fn wait_for(what: &str, timeout: Duration, cond: impl Fn() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !cond() {
        ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_dying_mid_pull_leaves_nothing_half_written() -> Result<()> {
    let registry = Registry::start()?;
    let proxy = Proxy::start(registry.port())?;
    let tmp = tempfile::tempdir()?;
    let mut layout = OciLayout::create(&tmp.path().join("layout"))?;
    let img = busybox::big_image(8 << 20, 2, 7)?;
    layout.add_image("k", &img)?;
    registry.push(&layout.dir, "k", "killed:1", ManifestKind::OciManifest)?;
    let root = tmp.path().join("store");
    let reference = format!("{}/killed:1", proxy.host());
    let opts = insecure(&proxy.host());

    // 1. The connection is cut in the middle of the layers.
    let store = ImageStore::open(&root)?;
    proxy.cut_after(3 << 20);
    let err = store.pull(&reference, &opts).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains(&reference), "{err}");
    assert_eq!(count(&root.join("layers")), 0);
    assert_eq!(count(&root.join("tmp")), 0, "temp files left behind");
    assert!(unverified_blobs(&store).is_empty());
    assert!(store.list()?.is_empty());

    // 2. The pull is stopped while a blob is half downloaded (the task is dropped, as
    //    when the node process dies); the half blob is only ever in tmp/.
    proxy.stall_after(5 << 20);
    let task = {
        let (store, reference, opts) = (store.clone(), reference.clone(), opts.clone());
        tokio::spawn(async move { store.pull(&reference, &opts).await })
    };
    wait_for("the proxy to stall", Duration::from_secs(20), || {
        proxy.stalled()
    })
    .await?;
    assert!(unverified_blobs(&store).is_empty());
    assert_eq!(count(&root.join("layers")), 0);
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(store.list()?.is_empty());
    // What a killed process leaves in tmp/ is removed when the store is opened again.
    std::fs::write(root.join("tmp/half-written"), b"junk")?;
    drop(store);
    let store = ImageStore::open(&root)?;
    assert_eq!(count(&root.join("tmp")), 0);

    // 3. The next pull succeeds.
    proxy.pass();
    let image = store.pull(&reference, &opts).await?;
    assert_eq!(image.layers.len(), 2);
    assert_eq!(
        std::fs::metadata(image.layers[1].join("data/layer-1.bin"))?.len(),
        (8 << 20) / 2
    );
    assert!(unverified_blobs(&store).is_empty());
    Ok(())
}

/// Pull and return the error's one-line message, checking it names the image.
async fn pull_err(store: &ImageStore, reference: &str, opts: &RegistryOptions) -> Error {
    let err = store.pull(reference, opts).await.unwrap_err();
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(msg.contains(reference), "names the image: {msg}");
    err
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gives_one_clear_line() -> Result<()> {
    let registry = Registry::start()?;
    let tmp = tempfile::tempdir()?;
    let store = ImageStore::open(tmp.path().join("store"))?;
    let host = registry.host();
    let opts = insecure(&host);

    // Unknown image: repository and tag.
    let mut layout = OciLayout::create(&tmp.path().join("layout"))?;
    layout.add_image("1", &busybox_image("1", default_config())?)?;
    registry.push(&layout.dir, "1", "known:1", ManifestKind::OciManifest)?;
    for reference in [format!("{host}/nope:1"), format!("{host}/known:2")] {
        let err = pull_err(&store, &reference, &opts).await;
        assert_eq!(
            err.to_string(),
            format!("pull {reference}: manifest unknown")
        );
        assert!(!err.is_retryable());
    }

    // Bad reference.
    let err = store.pull("Not/A//Reference", &opts).await.unwrap_err();
    assert!(matches!(err, Error::InvalidReference { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("invalid reference format"),
        "{err}"
    );

    // Unreachable registry.
    let dead = format!("127.0.0.1:{}", free_port()?);
    let reference = format!("{dead}/busybox:1");
    let err = pull_err(&store, &reference, &insecure(&dead)).await;
    assert_eq!(
        err.to_string(),
        format!("pull {reference}: dial tcp {dead}: connect: connection refused")
    );
    assert!(err.is_retryable());

    // No platform match.
    let other = TestImage {
        arch: busybox::other_arch().into(),
        ..busybox_image("1", default_config())?
    };
    layout.add_index("other", &[&other])?;
    registry.push(&layout.dir, "other", "foreign:1", ManifestKind::OciIndex)?;
    let reference = format!("{host}/foreign:1");
    let err = pull_err(&store, &reference, &opts).await;
    assert_eq!(
        err.to_string(),
        format!(
            "pull {reference}: no matching manifest for linux/{} in the manifest list entries",
            node_arch()
        )
    );

    assert!(store.list()?.is_empty());

    // A registry on 127.0.0.0/8 speaks plain HTTP without being listed as insecure, as
    // with Docker (other hosts are spoken to over TLS unless listed).
    let reference = format!("{host}/known:1");
    store.pull(&reference, &RegistryOptions::default()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_registry() -> Result<()> {
    let registry = Registry::start_with_auth("swarm", "s3cret")?;
    let tmp = tempfile::tempdir()?;
    let (layout, _) =
        busybox::busybox_layout(&tmp.path().join("layout"), "1", "1", default_config())?;
    registry.push(&layout.dir, "1", "private:1", ManifestKind::OciManifest)?;
    assert_eq!(
        registry.manifest_content_type("private", "1")?,
        ManifestKind::OciManifest.media_type()
    );
    let store = ImageStore::open(tmp.path().join("store"))?;
    let reference = format!("{}/private:1", registry.host());
    let with = |user: &str, password: &str| RegistryOptions {
        insecure: vec![registry.host()],
        auth: Some(RegistryAuth {
            username: user.into(),
            password: password.into(),
        }),
    };
    for opts in [
        insecure(&registry.host()),
        with("swarm", "wrong"),
        with("nobody", "s3cret"),
    ] {
        let err = pull_err(&store, &reference, &opts).await;
        assert_eq!(
            err.to_string(),
            format!("pull {reference}: unauthorized: authentication required")
        );
        assert!(!err.is_retryable());
    }
    let image = store.pull(&reference, &with("swarm", "s3cret")).await?;
    check_busybox(&image, "1");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_token_auth() -> Result<()> {
    let mut registry = Registry::start_with_token("swarm", "s3cret")?;
    let tokens = registry.token_server().context("token mode")?;
    let realm_host = tokens.realm()["http://".len()..]
        .trim_end_matches("/token")
        .to_string();
    let tmp = tempfile::tempdir()?;
    let (layout, _) =
        busybox::busybox_layout(&tmp.path().join("layout"), "1", "1", default_config())?;
    // skopeo pushes through the token server too (`--dest-creds`).
    registry.push(&layout.dir, "1", "private:1", ManifestKind::OciManifest)?;
    assert!(
        tokens.requests().iter().any(|r| r.issued
            && r.user.as_deref() == Some("swarm")
            && r.scopes
                .iter()
                .any(|s| s.starts_with("repository:private:") && s.contains("push"))),
        "skopeo's push token: {:?}",
        tokens.requests()
    );
    assert_eq!(
        registry.manifest_content_type("private", "1")?,
        ManifestKind::OciManifest.media_type()
    );
    let store = ImageStore::open(tmp.path().join("store"))?;
    let reference = format!("{}/private:1", registry.host());
    let host = registry.host();
    let with = |user: &str, password: &str| RegistryOptions {
        insecure: vec![host.clone()],
        auth: Some(RegistryAuth {
            username: user.into(),
            password: password.into(),
        }),
    };
    let pulled_token = |user: Option<&str>, issued: bool| {
        let want = TokenRequest {
            user: user.map(str::to_string),
            scopes: vec!["repository:private:pull".into()],
            issued,
        };
        tokens.requests().contains(&want)
    };

    // Anonymous: the token server gives a token with no access; the registry refuses it.
    let before = tokens.requests().len();
    let err = pull_err(&store, &reference, &insecure(&registry.host())).await;
    assert_eq!(
        err.to_string(),
        format!("pull {reference}: unauthorized: authentication required")
    );
    assert!(!err.is_retryable());
    assert!(tokens.requests().len() > before);
    assert!(pulled_token(None, true), "{:?}", tokens.requests());

    // Wrong credentials: the token server's own words, as Docker reports them.
    for (user, password) in [("swarm", "wrong"), ("nobody", "s3cret")] {
        let err = pull_err(&store, &reference, &with(user, password)).await;
        assert_eq!(
            err.to_string(),
            format!("pull {reference}: unauthorized: incorrect username or password")
        );
        assert!(!err.is_retryable());
        assert!(pulled_token(Some(user), false), "{:?}", tokens.requests());
    }
    assert!(store.list()?.is_empty());

    // The right credentials: a token is issued (the bearer path, not basic: the registry
    // accepts nothing else) and the image is pulled.
    let before = tokens.requests().len();
    let image = store.pull(&reference, &with("swarm", "s3cret")).await?;
    check_busybox(&image, "1");
    let issued: Vec<_> = tokens.requests()[before..]
        .iter()
        .filter(|r| r.issued && r.user.as_deref() == Some("swarm"))
        .cloned()
        .collect();
    assert!(!issued.is_empty(), "{:?}", tokens.requests());
    assert!(
        issued
            .iter()
            .all(|r| r.scopes == ["repository:private:pull".to_string()]),
        "{issued:?}"
    );
    // The token is fetched once per pull (oci-client caches it), not once per request.
    assert_eq!(issued.len(), 1, "{issued:?}");

    // The token server is down: the error names it, and a retry may succeed.
    registry.stop_token_server();
    let err = pull_err(&store, &reference, &with("swarm", "s3cret")).await;
    assert_eq!(
        err.to_string(),
        format!("pull {reference}: dial tcp {realm_host}: connect: connection refused")
    );
    assert!(err.is_retryable());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn load_oci_archive_round_trip() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut layout = OciLayout::create(&tmp.path().join("layout"))?;
    let one = layout.add_image("busybox:1", &busybox_image("1", full_config())?)?;
    let multi = layout.add_multiarch(
        "127.0.0.1:5000/multi:2",
        &busybox_image("2", default_config())?,
    )?;
    let untagged = layout.add_image("latest", &busybox_image("3", default_config())?)?;

    for gzip in [false, true] {
        let archive = tmp.path().join(format!("images-{gzip}.tar"));
        layout.write_tar(&archive, gzip)?;
        let store = ImageStore::open(tmp.path().join(format!("store-{gzip}")))?;
        let images = store.load_oci_archive(&archive)?;
        assert_eq!(images.len(), 3);

        let a = store.get("busybox:1")?;
        assert_eq!(a.reference, "docker.io/library/busybox:1");
        assert_eq!(a.digest, one.manifest_digest);
        assert_eq!(a.config, full_config());
        check_busybox(&a, "1");

        let b = store.get("127.0.0.1:5000/multi:2")?;
        assert_eq!(b.digest, multi.for_arch(node_arch()).manifest_digest);
        check_busybox(&b, "2");

        let c = store.get(&untagged.manifest_digest)?;
        assert_eq!(c.reference, untagged.manifest_digest);
        check_busybox(&c, "3");
        // The base layer is stored once.
        assert_eq!(a.layers[0], b.layers[0]);
        assert_eq!(count(&store.root().join("layers")), 4);
        assert_eq!(count(&store.root().join("tmp")), 0);

        // Loading again changes nothing.
        store.load_oci_archive(&archive)?;
        assert_eq!(store.list()?.len(), 3);
    }

    // A corrupted blob in the archive is refused and nothing is named.
    let bad = layout.blob_path(&one.layer_digests[1]);
    let mut bytes = std::fs::read(&bad)?;
    bytes[10] ^= 0xff;
    std::fs::write(&bad, bytes)?;
    let archive = tmp.path().join("bad.tar");
    layout.write_tar(&archive, false)?;
    let store = ImageStore::open(tmp.path().join("store-bad"))?;
    let err = store.load_oci_archive(&archive).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
    assert!(store.list()?.is_empty());
    assert!(unverified_blobs(&store).is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_removes_what_nothing_uses() -> Result<()> {
    let registry = Registry::start()?;
    let tmp = tempfile::tempdir()?;
    let mut layout = OciLayout::create(&tmp.path().join("layout"))?;
    let v1 = layout.add_image("1", &busybox_image("1", default_config())?)?;
    let v2 = layout.add_image("2", &busybox_image("2", default_config())?)?;
    registry.push(&layout.dir, "1", "app:1", ManifestKind::OciManifest)?;
    registry.push(&layout.dir, "2", "app:2", ManifestKind::OciManifest)?;
    let store = ImageStore::open(tmp.path().join("store"))?;
    let opts = insecure(&registry.host());
    let r1 = format!("{}/app:1", registry.host());
    let r2 = format!("{}/app:2", registry.host());
    let i1 = store.pull(&r1, &opts).await?;
    let i2 = store.pull(&r2, &opts).await?;
    assert_eq!(i1.layers[0], i2.layers[0]);
    let blobs = store.root().join("blobs/sha256");
    assert_eq!(
        count(&blobs),
        1 + 2 * 3,
        "shared base + (manifest, config, top) x 2"
    );
    assert_eq!(count(&store.root().join("layers")), 3);

    // Nothing unused yet.
    let report = store.gc(&[r1.clone(), i2.digest.clone()])?;
    assert_eq!((report.blobs_removed, report.layers_removed), (0, 0));

    let report = store.gc(std::slice::from_ref(&r2))?;
    assert_eq!(report.images_removed, vec![r1.clone()]);
    assert_eq!((report.blobs_removed, report.layers_removed), (3, 1));
    assert!(report.bytes_freed > 0);
    for gone in [&v1.manifest_digest, &v1.config_digest, &v1.layer_digests[1]] {
        assert!(!store.has_blob(gone), "{gone} kept");
    }
    assert!(store.has_blob(&v2.layer_digests[0]) && store.has_blob(&v2.layer_digests[1]));
    assert!(!i1.layers[1].exists() && i2.layers[1].exists() && i2.layers[0].exists());
    assert!(matches!(store.get(&r1), Err(Error::NoSuchImage(_))));
    assert_eq!(store.get(&r2)?.digest, i2.digest);

    // Pulled again: only what was collected is downloaded again.
    store.pull(&r1, &opts).await?;
    assert_eq!(registry.blob_gets("app", &v1.layer_digests[0])?, 1);
    assert_eq!(registry.blob_gets("app", &v1.layer_digests[1])?, 2);

    let report = store.gc(&[])?;
    assert_eq!(report.images_removed.len(), 2);
    assert_eq!(count(&blobs), 0);
    assert_eq!(count(&store.root().join("layers")), 0);
    Ok(())
}

#[test]
fn registry_fixture_cleans_up() -> Result<()> {
    let registry = Registry::start()?;
    let port = registry.port();
    drop(registry);
    // The port is free again: the registry process is gone.
    std::net::TcpListener::bind(("127.0.0.1", port)).context("port still taken")?;
    Ok(())
}
