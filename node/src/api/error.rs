//! API errors: Docker's status codes, and a `{"message": ...}` body in Docker's words.

/// What the docker CLI prints after `Error response from daemon: `.
pub const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \
     \"docker swarm join\" to connect this node to swarm and try again.";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 404: `service web not found`, `page not found`.
    #[error("{0}")]
    NotFound(String),
    /// 409: a name already in use, an update out of sequence.
    #[error("{0}")]
    Conflict(String),
    /// 400: an invalid spec, a bad query parameter.
    #[error("{0}")]
    InvalidArgument(String),
    /// 401: `swarm unlock` with the wrong key.
    #[error("{0}")]
    Unauthorized(String),
    /// 503 before `swarm init`.
    #[error("{}", NOT_A_MANAGER)]
    NotManager,
    /// 503: the swarm exists but cannot answer now (no leader).
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or a failed disk.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::NotFound(_) => 404,
            ApiError::Conflict(_) => 409,
            ApiError::InvalidArgument(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::NotManager | ApiError::Unavailable(_) => 503,
            ApiError::Internal(_) => 500,
        }
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "message": self.to_string() })
    }

    pub fn invalid(msg: impl std::fmt::Display) -> ApiError {
        ApiError::InvalidArgument(msg.to_string())
    }

    pub fn internal(msg: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(msg.to_string())
    }
}

/// A write Raft did not apply: 503, in Docker's words where Docker has them (no leader, no
/// quorum: "The swarm does not have a leader. ...").
impl From<swarm_raft::ProposeError> for ApiError {
    fn from(e: swarm_raft::ProposeError) -> ApiError {
        use swarm_raft::ProposeError as P;
        match e {
            // One manager for now: nobody to forward to (forwarding comes with joins).
            P::NotLeader { .. } | P::NoLeader | P::NoQuorum { .. } | P::Stopped(_) => {
                ApiError::Unavailable(e.to_string())
            }
        }
    }
}

/// The core's errors, by kind, as Docker's daemon answers them (moby maps gRPC codes:
/// InvalidArgument and FailedPrecondition 400, NotFound 404, AlreadyExists 409). The
/// gRPC prefix is what Docker's messages carry; `service x not found` goes bare, as users
/// grep for it.
pub fn from_kind(kind: swarm_core::ErrorKind, message: &str) -> ApiError {
    use swarm_core::ErrorKind as K;
    match kind {
        K::InvalidArgument => ApiError::InvalidArgument(format!(
            "rpc error: code = InvalidArgument desc = {message}"
        )),
        K::NotFound => ApiError::NotFound(message.to_string()),
        K::AlreadyExists => {
            ApiError::Conflict(format!("rpc error: code = AlreadyExists desc = {message}"))
        }
        // Docker answers a stale version with gRPC Unknown; we keep a 409.
        K::OutOfSequence => {
            ApiError::Conflict(format!("rpc error: code = Unknown desc = {message}"))
        }
        K::FailedPrecondition => ApiError::InvalidArgument(format!(
            "rpc error: code = FailedPrecondition desc = {message}"
        )),
    }
}

impl From<swarm_core::Error> for ApiError {
    fn from(e: swarm_core::Error) -> ApiError {
        from_kind(e.kind(), &e.to_string())
    }
}

impl From<crate::manager::store::ApplyError> for ApiError {
    fn from(e: crate::manager::store::ApplyError) -> ApiError {
        from_kind(e.kind, &e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_bodies() {
        let e = ApiError::NotFound("service web not found".into());
        assert_eq!(e.status(), 404);
        assert_eq!(
            e.body(),
            serde_json::json!({"message": "service web not found"})
        );
        assert_eq!(ApiError::NotManager.status(), 503);
        assert!(ApiError::NotManager
            .to_string()
            .starts_with("This node is not a swarm manager."));
        assert_eq!(ApiError::Conflict("x".into()).status(), 409);
        assert_eq!(ApiError::invalid("bad").status(), 400);
    }

    #[test]
    fn raft_refusals_are_503_with_dockers_words() {
        let e = ApiError::from(swarm_raft::ProposeError::NoLeader);
        assert_eq!(e.status(), 503);
        assert_eq!(
            e.body()["message"],
            "The swarm does not have a leader. It's possible that too few managers are \
             online. Make sure more than half of the managers are online."
        );
        let e = ApiError::from(swarm_raft::ProposeError::NoQuorum {
            waited: std::time::Duration::from_secs(5),
        });
        assert_eq!(e.status(), 503);
        assert!(e
            .to_string()
            .starts_with("The swarm does not have a leader."));
    }

    #[test]
    fn core_errors_map_to_dockers_statuses() {
        use swarm_core::store::ObjectKind;
        let e = ApiError::from(swarm_core::Error::NotFound {
            kind: ObjectKind::Service,
            name: "web".into(),
        });
        assert_eq!(
            (e.status(), e.to_string().as_str()),
            (404, "service web not found")
        );
        let e = ApiError::from(swarm_core::Error::OutOfSequence);
        assert_eq!(e.status(), 409);
        assert!(e.to_string().ends_with("update out of sequence"), "{e}");
        assert_eq!(
            ApiError::from(swarm_core::Error::invalid("x")).status(),
            400
        );
        let e = ApiError::from(swarm_core::Error::NameConflict {
            kind: ObjectKind::Service,
            name: "web".into(),
        });
        assert_eq!(e.status(), 409);
    }
}
