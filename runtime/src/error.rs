//! The crate's one error type. Messages are lowercase and name what failed and with what;
//! what reaches a user is one line, in Docker's words where Docker has them.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A reference that does not parse (`invalid reference format`).
    #[error("invalid reference format: {reference}: {reason}")]
    InvalidReference { reference: String, reason: String },

    /// Pulling an image failed; `cause` is Docker's wording where it has one
    /// (`manifest unknown`, `no matching manifest for linux/amd64 in the manifest list entries`).
    #[error("pull {reference}: {cause}")]
    Pull {
        reference: String,
        cause: String,
        retryable: bool,
    },

    /// A blob or layer whose content does not match its digest.
    #[error("{what} digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    #[error("no such image: {0}")]
    NoSuchImage(String),

    /// A push of a reference that names no local image (Docker's words, familiar name).
    #[error("An image does not exist locally with the tag: {0}")]
    NoSuchTag(String),

    /// Pushing an image failed; `cause` in Docker's words (`unauthorized: ...`).
    #[error("push {reference}: {cause}")]
    Push {
        reference: String,
        cause: String,
        retryable: bool,
    },

    /// Removing an image that something still needs (Docker's `conflict: ...` words).
    #[error("{0}")]
    ImageConflict(String),

    #[error("no such container: {0}")]
    NoSuchContainer(String),

    #[error("container {0} already exists")]
    ContainerExists(String),

    /// Docker's words for a volume that is not there.
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),

    /// Removing a volume that containers (running or not) mount, in Docker's words.
    #[error("remove {name}: volume is in use - [{}]", containers.join(", "))]
    VolumeInUse {
        name: String,
        containers: Vec<String>,
    },

    /// A volume create refused (`create NAME: ...`, the local driver's words).
    #[error("{0}")]
    InvalidVolume(String),

    /// Starting the container's process failed, e.g.
    /// `exec: "foo": executable file not found in $PATH`.
    #[error("{0}")]
    Start(String),

    /// An exec whose process could not start (`exec: "x": executable file not found in
    /// $PATH`), with the exit code Docker gives it (127 missing, 126 not runnable).
    #[error("{message}")]
    ExecStart { message: String, exit_code: i32 },

    #[error("invalid container spec: {0}")]
    InvalidSpec(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: {source}")]
    Path {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Json(#[from] serde_json::Error),

    #[error(transparent)]
    Nix(#[from] nix::Error),

    #[error("containerd: {0}")]
    Containerd(String),

    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Whether trying the same operation again may succeed (a registry that was down,
    /// a connection reset), as opposed to bad input (unknown image, bad reference).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Pull { retryable, .. } | Error::Push { retryable, .. } => *retryable,
            Error::Io { .. } | Error::Path { .. } => true,
            _ => false,
        }
    }

    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }

    pub fn path(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Path { path, source }
    }
}
