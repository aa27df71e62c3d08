//! The crate's one error type. Messages are Docker's (swarmkit's) words, because they
//! reach users verbatim through the API: `service web not found`, `update out of sequence`.
//! Classify with [`Error::kind`], never by matching the text.

use crate::store::ObjectKind;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the API should answer an error (it maps these to HTTP 400/404/409/...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ErrorKind {
    /// 400: the request is malformed or the spec invalid.
    InvalidArgument,
    /// 404: nothing by that ID, name or prefix.
    NotFound,
    /// 409: the name is taken, or the object exists already.
    AlreadyExists,
    /// 409 (Docker answers 500 via gRPC `Unknown`; we use a conflict): a stale version.
    OutOfSequence,
    /// 400/412: the object cannot go where it was asked to (task moving backwards,
    /// changing node).
    FailedPrecondition,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A spec failed validation; the message is Docker's.
    #[error("{0}")]
    InvalidArgument(String),

    /// `service web not found`, as Docker's daemon words every lookup (moby's
    /// `daemon/cluster/helpers.go`: services, nodes, tasks, secrets, configs, networks).
    #[error("{kind} {name} not found")]
    NotFound { kind: ObjectKind, name: String },

    /// `service w is ambiguous (2 matches found)`.
    #[error("{kind} {name} is ambiguous ({matches} matches found)")]
    Ambiguous {
        kind: ObjectKind,
        name: String,
        matches: usize,
    },

    /// Unique names: services, secrets, configs, networks (networks in moby's words:
    /// `network with name web already exists`).
    #[error("{}", name_conflict(*kind, name))]
    NameConflict { kind: ObjectKind, name: String },

    /// A network that services or live tasks use cannot be removed (swarmkit's words).
    #[error("network {network} is in use by {user_kind} {user}")]
    NetworkInUse {
        network: String,
        user_kind: ObjectKind,
        user: String,
    },

    /// The ingress network cannot go while a service publishes a port through it.
    #[error("ingress network cannot be removed because service {service} depends on it")]
    IngressInUse { service: String },

    /// A subnet that overlaps another network's (libnetwork's words).
    #[error("invalid pool request: Pool overlaps with other one on this address space")]
    PoolOverlap,

    /// A secret or config that services still reference cannot be removed (swarmkit's
    /// words: `secret 'db' is in use by the following service: web`).
    #[error("{kind} '{name}' is in use by the following {}: {}", if services.len() == 1 { "service" } else { "services" }, services.join(", "))]
    InUse {
        kind: ObjectKind,
        name: String,
        services: Vec<String>,
    },

    /// A published port another service holds (swarmkit's `checkPortConflicts` words):
    /// `as an ingress port` when the other service publishes it through the mesh, `as a
    /// host-published port` when it publishes it on its nodes and this one asks for it
    /// through the mesh.
    #[error("port '{port}' is already in use by service '{name}' ({id}) as {}", match held_as { crate::model::PublishMode::Host => "a host-published port", _ => "an ingress port" })]
    PortInUse {
        port: u32,
        name: String,
        id: String,
        held_as: crate::model::PublishMode,
    },

    /// A create with an ID that is already stored.
    #[error("object already exists: {kind} {id}")]
    Exists { kind: ObjectKind, id: String },

    /// An update whose `Version.Index` is not the stored one.
    #[error("update out of sequence")]
    OutOfSequence,

    /// A create or update of an object without an ID.
    #[error("{kind} has no ID")]
    MissingId { kind: ObjectKind },

    /// A task's observed state may never move backwards.
    #[error("task {id}: state cannot move from {from} to {to}")]
    TaskStateBackwards {
        id: String,
        from: crate::TaskState,
        to: crate::TaskState,
    },

    /// A task, once assigned, stays on its node; and stays in its service.
    #[error("task {id}: {field} cannot change from {from:?} to {to:?}")]
    TaskImmutable {
        id: String,
        field: &'static str,
        from: String,
        to: String,
    },

    /// A snapshot or log entry that does not decode.
    #[error("decoding store data: {0}")]
    Decode(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument(_)
            | Error::MissingId { .. }
            | Error::Ambiguous { .. }
            | Error::InUse { .. }
            | Error::PortInUse { .. } => ErrorKind::InvalidArgument,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::NameConflict { .. } | Error::Exists { .. } => ErrorKind::AlreadyExists,
            Error::OutOfSequence => ErrorKind::OutOfSequence,
            Error::TaskStateBackwards { .. }
            | Error::TaskImmutable { .. }
            | Error::Decode(_)
            | Error::NetworkInUse { .. }
            | Error::IngressInUse { .. } => ErrorKind::FailedPrecondition,
            Error::PoolOverlap => ErrorKind::InvalidArgument,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// Shorthand for validation errors.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
}

fn name_conflict(kind: ObjectKind, name: &str) -> String {
    match kind {
        ObjectKind::Network => format!("network with name {name} already exists"),
        _ => format!("name conflicts with an existing object: {kind} {name} already exists"),
    }
}
