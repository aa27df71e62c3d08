//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// Everything that can fail while handling the cluster's identity.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Docker's wording, for any token that does not parse.
    #[error("invalid join token")]
    InvalidJoinToken,
    #[error("invalid key string")]
    InvalidUnlockKey,
    /// The root CA a manager served does not hash to the digest in the join token.
    #[error("remote CA does not match fingerprint. Expected: {expected}")]
    RootDigestMismatch { expected: String },
    #[error("invalid root CA certificate: {0}")]
    InvalidRootCa(String),
    #[error("this root CA has no signing key")]
    NoSigningKey,
    #[error("invalid certificate signing request: {0}")]
    InvalidCsr(String),
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    #[error("invalid private key: {0}")]
    InvalidKey(String),
    #[error("the certificate does not match the private key")]
    KeyMismatch,
    #[error("unknown node role {0:?}")]
    UnknownRole(String),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Rcgen(#[from] rcgen::Error),
    #[error(transparent)]
    Tls(#[from] rustls::Error),
    #[error(transparent)]
    Transport(#[from] tonic::transport::Error),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
