//! The crate's error type. What reaches an API client is [`crate::api::ApiError`];
//! this one is for the daemon's own failures (startup, runtime, storage).

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Runtime(#[from] swarm_runtime::Error),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Json(#[from] serde_json::Error),

    #[error(transparent)]
    Raft(#[from] swarm_raft::RaftError),

    #[error(transparent)]
    Identity(#[from] swarm_identity::Error),

    /// Sealed under the unlock key, and no key (or the wrong one) to open it.
    #[error("swarm could not be unlocked: invalid key provided")]
    Locked,

    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}
