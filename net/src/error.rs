//! The crate's one error type: what failed, on what, and the kernel's answer.

use std::path::PathBuf;

use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel refused a netlink request (`op` names it: "add link vxlan0").
    #[error("netlink {op}: {source}")]
    Netlink {
        op: String,
        #[source]
        source: std::io::Error,
    },
    /// Creating, entering or removing a network namespace failed.
    #[error("network namespace {}: {what}: {source}", path.display())]
    Netns {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: nix::Error,
    },
    /// `nft` refused a ruleset or could not be run.
    #[error("nftables in {netns}: {message}")]
    Nft { netns: String, message: String },
    /// A link we need is not where it should be.
    #[error("no link {name} in {netns}")]
    NoSuchLink { name: String, netns: String },
    /// A value the caller gave cannot be used as is.
    #[error("invalid {what}: {value}")]
    Invalid { what: &'static str, value: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The errno of a kernel refusal, when there was one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Netlink { source, .. } | Error::Io(source) => source.raw_os_error(),
            Error::Netns { source, .. } => Some(*source as i32),
            _ => None,
        }
    }

    /// The thing is already there (ensure paths treat this as success).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(Errno::EEXIST as i32)
    }

    /// The thing is already gone (remove paths treat this as success).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NoSuchLink { .. })
            || [Errno::ENOENT, Errno::ENODEV, Errno::ESRCH]
                .iter()
                .any(|e| self.errno() == Some(*e as i32))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
