//! `swarm backup FILE`: a manager's swarm state, taken while it runs (ours; Docker backs
//! up by stopping dockerd and copying `/var/lib/docker/swarm`). The manager answers
//! `GET /swarm/backup` with a tar archive; this writes it to FILE (`-`: stdout), through a
//! temporary file and a rename so a failed backup never leaves half an archive. Restore
//! with `swarmd --restore FILE` (see docs/operating.md).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use http::Method;
use http_body_util::BodyExt;

use crate::client::Client;

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// Where to write the archive (`-` for standard output)
    pub file: PathBuf,
}

pub async fn run(client: &Client, a: BackupArgs) -> Result<()> {
    let resp = client
        .call(Method::GET, "/swarm/backup", None, None)
        .await?;
    let bytes = resp.into_body().collect().await?.to_bytes();
    if a.file.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes)?;
        return Ok(out.flush()?);
    }
    let mut tmp = a.file.clone().into_os_string();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    // 0600: the archive holds this manager's certificates and sealed state.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, &a.file).with_context(|| format!("write {}", a.file.display()))?;
    Ok(())
}
