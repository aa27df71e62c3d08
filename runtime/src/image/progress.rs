//! What a pull or a push reports while it runs: typed events, which the API turns into
//! Docker's JSON progress lines (`abc123def456: Pushed`). Nothing here knows HTTP.

use tokio::sync::mpsc::UnboundedSender;

#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Pull: the reference resolved (`Pulling from library/busybox`, id `latest`).
    PullingFrom { repository: String, tag: String },
    /// Push: `The push refers to repository [127.0.0.1:5000/app]`.
    PushRefersTo { repository: String },
    /// One blob of the image (layers; short ids are its digest's first 12 hex digits).
    Layer { digest: String, stage: LayerStage },
    /// Pull: done; `new` when anything was downloaded or a tag moved.
    Pulled { digest: String, new: bool },
    /// Push: done; the manifest's digest and size as the registry holds it.
    Pushed {
        tag: String,
        digest: String,
        size: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum LayerStage {
    /// Pull: `Pulling fs layer`.
    PullingFsLayer,
    /// Pull: the blob is in the store already.
    AlreadyExists,
    Downloading {
        current: u64,
        total: u64,
    },
    DownloadComplete,
    PullComplete,
    /// Push: `Preparing`.
    Preparing,
    Pushing {
        current: u64,
        total: u64,
    },
    Pushed,
    /// Push: the registry has the blob (HEAD answered 200).
    LayerAlreadyExists,
    /// Push: mounted from another repository of the same registry.
    Mounted {
        from: String,
    },
}

/// Where progress goes: nowhere (agent pulls) or a channel (API streams).
#[derive(Debug, Clone, Default)]
pub struct Reporter(Option<UnboundedSender<Progress>>);

impl Reporter {
    pub fn new(tx: UnboundedSender<Progress>) -> Reporter {
        Reporter(Some(tx))
    }

    pub fn send(&self, p: Progress) {
        if let Some(tx) = &self.0 {
            // A client that went away stops listening; the work goes on.
            let _ = tx.send(p);
        }
    }

    pub fn layer(&self, digest: &str, stage: LayerStage) {
        self.send(Progress::Layer {
            digest: digest.to_string(),
            stage,
        });
    }

    pub fn is_silent(&self) -> bool {
        self.0.is_none()
    }
}

/// `sha256:abcdef...` -> `abcdef123456`, the id Docker shows for a layer.
pub fn short_id(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    &hex[..hex.len().min(12)]
}
