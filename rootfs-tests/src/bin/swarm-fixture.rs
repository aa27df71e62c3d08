//! `swarm-fixture`: make the test images outside the test suites (for the README's demo
//! and for trying things by hand). Deterministic: the same busybox gives the same digests.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "swarm-fixture",
    about = "make deterministic busybox test images"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a busybox OCI image-layout tarball, loadable with `swarm-runtime load`.
    BusyboxArchive {
        /// where to write the tarball
        out: PathBuf,
        /// the image's name (org.opencontainers.image.ref.name)
        #[arg(long = "ref", default_value = "demo/busybox:1")]
        reference: String,
        /// content of /etc/swarm-version in the image
        #[arg(long, default_value = "1")]
        version: String,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::BusyboxArchive {
            out,
            reference,
            version,
        } => {
            let dir = tempfile::tempdir()?;
            let config = rootfs_tests::busybox::default_config();
            let (layout, built) =
                rootfs_tests::busybox::busybox_layout(dir.path(), &reference, &version, config)?;
            layout.write_tar(&out, true)?;
            println!("{} {}", out.display(), built.manifest_digest);
            Ok(())
        }
    }
}
