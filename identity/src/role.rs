//! A node's role as certificates carry it: the subject's OU.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// OU of a manager's certificate, also one of its DNS SANs (and the TLS server name).
pub const MANAGER_OU: &str = "swarm-manager";
/// OU of a worker's certificate.
pub const WORKER_OU: &str = "swarm-worker";
/// Extra DNS SAN managers carry: they are the ones that issue certificates.
pub const CA_SAN: &str = "swarm-ca";

/// Manager or worker, as written in a node certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Manager,
    Worker,
}

impl Role {
    /// The certificate OU for this role (`swarm-manager`, `swarm-worker`).
    pub fn as_ou(self) -> &'static str {
        match self {
            Role::Manager => MANAGER_OU,
            Role::Worker => WORKER_OU,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_ou())
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            MANAGER_OU => Ok(Role::Manager),
            WORKER_OU => Ok(Role::Worker),
            other => Err(Error::UnknownRole(other.to_string())),
        }
    }
}
